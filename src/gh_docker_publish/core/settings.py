"""Settings: every input, validated before any network call. The only reader of ``INPUT_*``.

Defaults live here, not in ``action.yml`` expressions, so the action and the CLI behave the
same: ``load_settings(env)`` reads the inputs into a dict of kebab-case names and
``settings_from_values(values, env)`` does the rest; the CLI calls the latter with its flags.
``required: true`` in action.yml is not enforced by the runner, so requiredness is checked
here too (https://docs.github.com/en/actions/reference/workflows-and-actions/metadata-syntax).
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gh_docker_publish.core import build_inputs, buildx_flags, images, metadata, refs
from gh_docker_publish.core.builder_location import (
    TLS_INPUTS,
    BuilderLocation,
    parse_builder_location,
)
from gh_docker_publish.core.images import RegistryLogin
from gh_docker_publish.core.inputs import get_input
from gh_docker_publish.errors import InputError

PushMode = Literal["true", "false", "auto"]
AuthMode = Literal["auto", "github-token", "token"]
Mode = Literal["publish", "pull", "cleanup", "merge"]

# The action's inputs, in action.yml's (kebab-case) spelling.
INPUT_NAMES = (
    "image", "registry", "owner", "repository", "tags", "context", "file", "build-args",
    "labels", "target", "pull", "no-cache", "push", "github-token", "token", "username",
    "auth", "mode", "keep-latest", "delete-untagged-older-than", "protect-tags", "dry-run",
    "digest", "builder", "platforms", "secrets", "cache-from", "cache-to", "provenance",
    "sbom", "deadline", "subdomain-isolation", "builder-cacert", "builder-cert",
    "builder-key", "builder-servername", "flavor", "annotations", "sep-tags", "sep-labels",
    "sep-annotations", "push-by-digest", "digests",
    # docker/build-push-action's pass-through inputs (core/buildx_flags.py)
    "load", "outputs", "build-contexts", "ssh", "network", "add-hosts", "shm-size", "ulimit",
    "allow", "no-cache-filters", "call", "secret-files", "secret-envs",
    # several images (core/images.py)
    "images", "registry-auth",
)
# Inputs read as given, spaces included (docker/metadata-action reads them untrimmed).
SEPARATOR_INPUTS = ("sep-tags", "sep-labels", "sep-annotations")
ISOLATION_MODES = ("auto", "true", "false")
AUTH_MODES: tuple[AuthMode, ...] = ("auto", "github-token", "token")
MODES: tuple[Mode, ...] = ("publish", "pull", "cleanup", "merge")
# protect-tags when not given: the tag `latest` and every semver tag (keyword `semver`).
DEFAULT_PROTECT_TAGS = ("latest", "semver")

# YAML 1.2 core schema booleans, exactly what @actions/core getBooleanInput accepts.
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")

# GitHub logins: letters, digits, single hyphens; EMU logins add an _shortcode suffix.
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")
_REPO_NAME = re.compile(r"[A-Za-z0-9._-]+")


class Secret:
    """A token that never shows itself in ``repr``/``str``/f-strings; ``reveal()`` gets it."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str = "") -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The token itself: call this only where the token is handed to a client."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.reveal() == self.reveal()

    def __hash__(self) -> int:
        return hash(self.reveal())

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def __str__(self) -> str:
        return "***" if self else ""


@dataclass(frozen=True)
class Settings:
    """The validated inputs. ``notices`` holds what was fixed up (e.g. lowercased) for the log."""

    image: str  # the first image (``images[0]``), or the one image
    registry: str = "auto"
    owner: str = ""
    repository: str = ""
    tags: tuple[str, ...] = ()  # metadata-action rules and plain tags, one per item
    flavor: metadata.Flavor = field(default_factory=metadata.Flavor)
    context: str = "."
    file: str = "Dockerfile"
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    sep_tags: str = "\n"  # separators of the list outputs (metadata-action's sep-* inputs)
    sep_labels: str = "\n"
    sep_annotations: str = "\n"
    metadata_env: metadata.MetadataEnv = field(default_factory=metadata.MetadataEnv)
    target: str = ""
    pull: bool = False
    no_cache: bool = False
    push: PushMode = "auto"
    github_token: Secret = field(default_factory=Secret)
    token: Secret = field(default_factory=Secret)
    username: str = ""
    auth: AuthMode = "auto"
    # GHES: auto probes the registries; true/false say which one (registries.py).
    subdomain_isolation: Literal["auto", "true", "false"] = "auto"
    mode: Mode = "publish"
    keep_latest: int | None = None  # cleanup: keep the N newest versions (None: no such rule)
    delete_untagged_older_than: float | None = None  # cleanup: days (None: no such rule)
    protect_tags: tuple[str, ...] = DEFAULT_PROTECT_TAGS  # cleanup: fnmatch patterns
    dry_run: bool = True  # cleanup: print the plan, delete nothing
    digest: tuple[str, ...] = ()  # cleanup: digests this run pushed; never deleted
    builder: build_inputs.BuilderMode = "auto"
    # builder: an address: BuildKit elsewhere, which pushes itself (builder is "buildkit").
    builder_location: BuilderLocation | None = None
    platforms: tuple[str, ...] = ()
    build_secrets: tuple[build_inputs.BuildSecret, ...] = ()  # the `secrets` input
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    provenance: str = ""  # "" (off) or buildx's --provenance value (true, mode=max)
    sbom: str = ""  # "" (off) or buildx's --sbom value
    buildx: buildx_flags.BuildxFlags = field(default_factory=buildx_flags.BuildxFlags)
    deadline: float = 0.0  # seconds after which no retry starts (0: the attempts bound it)
    push_by_digest: bool = False  # a matrix job: one platform, pushed without tags (issue 16)
    digests: tuple[build_inputs.PlatformDigest, ...] = ()  # mode merge: the matrix's digests
    #: Every enabled image, ``image`` first (empty: just ``image``); core/images.py.
    images: tuple[str, ...] = ()
    registry_auth: tuple[RegistryLogin, ...] = ()  # registries that are not GitHub's
    notices: tuple[str, ...] = field(default=(), compare=False)

    @functools.cached_property
    def destination(self) -> refs.ImageName:
        """``image`` parsed once (optional host, lowercase path): what refs and registries
        read instead of parsing ``image`` again. Validated when the settings were made."""
        return refs.parse_image(self.image)

    def secrets(self) -> list[str]:
        """The non-empty secret values, for the caller to mask the moment settings load."""
        tokens = [s.reveal() for s in (self.github_token, self.token) if s]
        return (
            tokens + [s.value for s in self.build_secrets if s.value]
            + [login.password for login in self.registry_auth]
        )

    @property
    def image_names(self) -> tuple[str, ...]:
        """The images this run publishes: ``images``, or the one ``image``."""
        return self.images or (self.image,)


# -- list inputs ---------------------------------------------------------------------------


def _unquote(item: str) -> str:
    item = item.strip()
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'":
        return item[1:-1].strip()
    return item


def split_list(raw: str, *, commas: bool = True) -> tuple[str, ...]:
    """Split a list input like docker's ``getInputList``.

    Items are separated by newlines (CRLF too) and, when ``commas``, by commas with
    csv-style quoting (``"a,b"`` stays one item). Blank lines and lines *starting* with
    ``#`` are dropped; a ``#`` inside a value stays. Surrounding quotes are removed.
    """
    items: list[str] = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if commas:
            for record in csv.reader([line], skipinitialspace=True):
                items.extend(_unquote(cell) for cell in record)
        else:
            items.append(_unquote(line))
    return tuple(item for item in items if item)


def split_tags(raw: str) -> tuple[str, ...]:
    """Tags: a line holding a ``type=...`` rule stays whole (its own commas separate its
    attributes, as in docker/metadata-action); other lines split on commas."""
    items: list[str] = []
    for line in split_list(raw, commas=False):
        items.extend([line] if "=" in line else split_list(line))
    return tuple(items)


def parse_pairs(raw: str, input_name: str) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` lines (no comma splitting: values may hold commas)."""
    pairs: list[tuple[str, str]] = []
    for item in split_list(raw, commas=False):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(
                input_name,
                f"'{item}' is not KEY=VALUE.",
                hint=f"Write one KEY=VALUE per line in '{input_name}'.",
            )
        pairs.append((key.strip(), value))
    return tuple(pairs)


def parse_bool(raw: str, input_name: str, default: bool = False) -> bool:
    """A YAML 1.2 core boolean (``true|True|TRUE|false|False|FALSE``), like getBooleanInput."""
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InputError(
        input_name,
        f"'{raw}' is not a boolean.",
        hint="Use true or false (YAML 1.2 core schema: true | True | TRUE | false | False | "
        "FALSE).",
    )


def _parse_push(raw: str) -> PushMode:
    if raw.lower() == "auto" or not raw:
        return "auto"
    try:
        return "true" if parse_bool(raw, "push") else "false"
    except InputError:
        raise InputError(
            "push", f"'{raw}' is not true, false or auto.",
            hint="Use auto (push unless the token cannot), true or false.",
        ) from None


def _check_push_with_flags(flags: buildx_flags.BuildxFlags, push: PushMode) -> PushMode:
    """We push from the daemon, so an image not loaded there cannot be pushed: ``load:
    false``, ``outputs`` (another exporter) and ``call: check`` (no image) need ``push:
    false``; with ``call`` other than build, push auto means no push."""
    if not flags.builds_image:
        if push == "true":
            raise InputError(
                "push", f"is true, but call: {flags.call} builds no image to push.",
                hint="Drop push: true (call: check only evaluates), or drop call.",
            )
        return "false"
    if push == "false":
        return push
    for name, given in (("outputs", bool(flags.outputs)), ("load", not flags.load)):
        if given:
            raise InputError.not_loaded(name, push)
    return push


def _parse_mode(raw: str) -> Mode:
    mode = raw.lower() or "publish"
    for known in MODES:
        if mode == known:
            return known
    raise InputError.not_one_of(
        "mode", raw, MODES,
        hint="publish builds and pushes; pull fetches image:tags; cleanup prunes old versions.",
    )


def _parse_count(raw: str, input_name: str) -> int | None:
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]+", raw):  # not isdigit(): it takes "²", which int() refuses
        raise InputError(input_name, f"'{raw}' is not a whole number >= 0.")
    return int(raw)


def _parse_days(raw: str, input_name: str) -> float | None:
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    if not days >= 0 or days == float("inf"):
        raise InputError(input_name, f"'{raw}' is not a number of days >= 0 (e.g. 7 or 0.5).")
    return days


def _parse_digests(raw: str) -> tuple[str, ...]:
    digests = split_list(raw)
    for digest in digests:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise InputError(
                "digest", f"'{digest}' is not a manifest digest (sha256:<64 hex digits>).",
                hint="Pass the publish step's output: ${{ steps.<id>.outputs.digest }}.",
            )
    return digests


def _check_digest_inputs(
    mode: Mode, push_by_digest: bool, builder: str, platforms: tuple[str, ...]
) -> None:
    """``push-by-digest`` is one matrix job's half of issue 16: one platform, BuildKit."""
    if not push_by_digest:
        return
    if mode != "publish":
        raise InputError(
            "push-by-digest", f"is for the platform jobs (mode publish), not mode {mode}.",
            hint="Set push-by-digest in the matrix jobs; the last job uses mode: merge.",
        )
    if len(platforms) > 1:
        raise InputError(
            "push-by-digest", f"pushes one platform per job, but platforms lists "
            f"{len(platforms)}: {', '.join(platforms)}.",
            hint="Give each matrix job one platform (platforms: ${{ matrix.platform }}), or "
            "drop push-by-digest to publish them all from this job.",
        )
    if builder == "classic":
        raise InputError(
            "push-by-digest", "needs BuildKit, but builder is classic.",
            hint="Use builder: auto or buildkit.",
        )


def _parse_deadline(raw: str) -> float:
    """Seconds (``0``/empty: no deadline beyond the retry attempts). Like a step's
    ``timeout-minutes``, but it ends retries cleanly instead of killing the step."""
    if not raw:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise InputError(
            "deadline", f"'{raw}' is not a number of seconds >= 0.",
            hint="For example deadline: 600 (no retry starts after 10 minutes); 0 turns it off.",
        )
    return seconds


def _parse_separator(raw: str, input_name: str) -> str:
    """A list output's separator, as given (default a newline). One that could be part of
    an item would make the output impossible to split again, so it is refused."""
    if not raw:
        return "\n"
    if input_name == "sep-tags" and re.fullmatch(r"[A-Za-z0-9_.:/@-]+", raw):
        raise InputError(
            input_name, f"{raw!r} could be part of a tag, so the tags could not be split again.",
            hint="Use a separator such as ',' or ' ' (the default is a newline).",
        )
    if input_name != "sep-tags" and "=" in raw:
        raise InputError(
            input_name, f"{raw!r} holds '=', which separates each KEY=VALUE.",
            hint="Use a separator such as ',' or ';' (the default is a newline).",
        )
    return raw


# -- owner / repository --------------------------------------------------------------------


def _lower(value: str, what: str, notices: list[str]) -> str:
    lowered = value.lower()
    if lowered != value:
        notices.append(
            f"{what} '{value}' lowercased to '{lowered}': image names must be lowercase."
        )
    return lowered


def _check_repository(value: str, input_name: str) -> None:
    owner, sep, name = value.partition("/")
    if not sep or not _OWNER.fullmatch(owner) or not _REPO_NAME.fullmatch(name):
        raise InputError(
            input_name,
            f"'{value}' is not of the form OWNER/REPO.",
            hint="For example octo-org/hello-world (the default is the workflow's repository).",
        )


def _check_owner(value: str) -> None:
    if not _OWNER.fullmatch(value):
        raise InputError(
            "owner",
            f"'{value}' is not a GitHub user or organization name.",
            hint="Give just the owner, e.g. octo-org (no '/', no host).",
        )


def _image_list(
    raw_image: str, raw_images: str, ref_images: tuple[str, ...], notices: list[str]
) -> tuple[str, ...]:
    """The images from ``images`` or the references in ``tags`` (``()``: just ``image``).

    Raises:
        InputError: both ``image`` and ``images``; every image disabled; a reference in
        ``tags`` naming an image the run does not publish.
    """
    lines = split_list(raw_images, commas=False)
    if raw_image and lines:
        raise InputError(
            "images", "is set together with 'image'.",
            hint="Give one image in 'image' or several in 'images', not both.",
        )
    names, disabled = images.parse_images(lines)
    notices += disabled
    if lines and not names:
        raise InputError(
            "images", "every image is disabled (enable=false), so there is nothing to publish.",
            hint="Enable one, or skip the step with an `if:` condition.",
        )
    given = names or ((images.image_name(raw_image, "image"),) if raw_image else ())
    if not given:
        return ref_images
    stray = [name for name in ref_images if name not in given]
    if stray:
        raise InputError(
            "tags", f"the reference {stray[0]}:… names an image that is not in "
            f"'{'images' if names else 'image'}' ({', '.join(given)}).",
            hint="Give only the tag in 'tags', or add the image to 'images'.",
        )
    return names


# -- the settings --------------------------------------------------------------------------


#: Inputs whose values are secrets: masked before any of them is validated.
SECRET_INPUTS = ("github-token", "token")


def token_flaw(token: str) -> str:
    """What makes ``token`` unusable in an HTTP header, or ``""``: GitHub tokens are
    printable ASCII, and a pasted zero-width space (not Latin-1: requests cannot encode
    it) or a line break (an invalid header) would otherwise fail deep in the first call
    with a traceback or a misleading timeout (issue 17 item 4). Never quotes the token."""
    for index, char in enumerate(token, start=1):
        if "!" <= char <= "~":
            continue
        if char in "\r\n":
            kind = "a line break"
        elif char.isspace():
            kind = "a space or tab" if char in " \t" else f"a Unicode space (U+{ord(char):04X})"
        else:
            name = unicodedata.name(char, "")
            kind = f"the character U+{ord(char):04X}" + (f" ({name})" if name else "")
        return f"contains {kind} at position {index}"
    return ""


def _check_token(token: str, input_name: str) -> Secret:
    if flaw := token_flaw(token):
        raise InputError.unusable_token(input_name, flaw)
    return Secret(token)


def raw_secrets(env: Mapping[str, str]) -> list[str]:
    """The secret inputs as given, before validation, so an error about any input can
    never print one unmasked."""
    values = [value for name in SECRET_INPUTS if (value := get_input(env, name))]
    # build-push-action's `secrets: KEY=value` lines carry the value itself.
    values += build_inputs.inline_values(split_list(get_input(env, "secrets"), commas=False))
    return values + images.raw_passwords(get_input(env, "registry-auth"))


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read every ``INPUT_*`` the action declares and validate them."""
    values = {
        name: get_input(env, name, trim=name not in SEPARATOR_INPUTS) for name in INPUT_NAMES
    }
    return settings_from_values(values, env)


def settings_from_values(values: Mapping[str, str], env: Mapping[str, str]) -> Settings:
    """Validate input values (kebab-case names; missing or ``""`` = default) into Settings.

    ``env`` supplies defaults only: GITHUB_REPOSITORY(_OWNER) and GITHUB_TOKEN (so the CLI
    can pick the token up from the environment).

    Raises:
        InputError: naming the first bad input and how to fix it.
    """
    unknown = set(values) - set(INPUT_NAMES)
    if unknown:
        raise ValueError(f"unknown inputs: {sorted(unknown)}")

    def get(name: str) -> str:
        return values.get(name, "").strip()

    notices: list[str] = []

    # repository (OWNER/REPO the package belongs to) and owner (the image namespace).
    repository_input = get("repository")
    repository = repository_input or env.get("GITHUB_REPOSITORY", "")
    if not repository:
        raise InputError(
            "repository",
            "is not set and GITHUB_REPOSITORY is empty.",
            hint="Outside GitHub Actions set the `repository` input to OWNER/REPO, or run in "
            "a git checkout whose `origin` remote names it.",
        )
    _check_repository(repository, "repository")
    repository = _lower(repository, "repository", notices)

    owner = get("owner")
    if not owner:
        # The repository's owner when 'repository' was given; else the workflow's owner.
        owner = (
            repository.partition("/")[0] if repository_input
            else env.get("GITHUB_REPOSITORY_OWNER", "") or repository.partition("/")[0]
        )
    _check_owner(owner)
    owner = _lower(owner, "owner", notices)

    # images: `images` (several), full references in `tags`, or the one `image`.
    ref_images, tags = images.split_full_refs(split_tags(values.get("tags", "")))
    image_list = _image_list(get("image"), values.get("images", ""), ref_images, notices)
    # image: a name or a full reference without tag; default the repository's name.
    raw_image = get("image")
    if image_list:
        image = image_list[0]
    elif raw_image:
        parsed = refs.parse_image(raw_image, "image")
        image = f"{parsed.domain}/{parsed.path}" if parsed.domain else parsed.path
        if image != raw_image:
            notices.append(
                f"image '{raw_image}' lowercased to '{image}': image names must be lowercase."
            )
    else:
        image = repository.partition("/")[2]
        try:
            refs.parse_image(image, "image")
        except InputError:
            raise InputError(
                "image",
                f"is not set and the repository name '{image}' is not a valid image name.",
                hint="Set 'image' to a name such as my-app.",
            ) from None

    registry = get("registry").lower() or "auto"
    if registry != "auto":
        registry = refs.validate_host(registry.rstrip("/"), "registry")

    metadata.parse_rules(tags)  # a wrong rule fails here, whatever the event
    flavor = metadata.parse_flavor(split_list(values.get("flavor", ""), commas=False))
    image_labels, ignored = metadata.parse_key_values(
        split_list(values.get("labels", ""), commas=False), "labels"
    )
    image_annotations, ignored_annotations = metadata.parse_key_values(
        split_list(values.get("annotations", ""), commas=False), "annotations"
    )
    notices += [*ignored, *ignored_annotations]
    separators = {name: _parse_separator(values.get(name, ""), name) for name in SEPARATOR_INPUTS}

    mode = _parse_mode(get("mode"))
    keep_latest = _parse_count(get("keep-latest"), "keep-latest")
    untagged_days = _parse_days(get("delete-untagged-older-than"), "delete-untagged-older-than")
    if mode == "cleanup" and keep_latest is None and untagged_days is None:
        raise InputError(
            "keep-latest",
            "mode cleanup needs a rule: neither 'keep-latest' nor "
            "'delete-untagged-older-than' is set.",
            hint="For example keep-latest: 10, or delete-untagged-older-than: 7.",
        )
    protect_tags = split_list(values.get("protect-tags", "")) or DEFAULT_PROTECT_TAGS

    context_dir = get("context") or "."
    # Only publish builds: pull and cleanup run without a checkout.
    if mode == "publish" and not Path(context_dir).is_dir():
        raise InputError(
            "context",
            f"'{context_dir}' is not a directory.",
            hint="Check out the repository first (actions/checkout) or fix the path.",
        )
    dockerfile = get("file") or str(Path(context_dir) / "Dockerfile")
    if mode == "publish" and not Path(dockerfile).is_file():
        raise InputError(
            "file",
            f"no Dockerfile at '{dockerfile}'.",
            hint="Set 'file' to your Dockerfile's path (relative to the workspace).",
        )

    location = parse_builder_location(get("builder"), {name: get(name) for name in TLS_INPUTS})
    builder = "buildkit" if location else build_inputs.parse_builder(get("builder"))
    platforms = build_inputs.parse_platforms(split_list(values.get("platforms", "")))
    secrets_lines, secret_files, secret_envs = (
        split_list(values.get(name, ""), commas=False)
        for name in ("secrets", "secret-files", "secret-envs")
    )
    build_secrets = build_inputs.parse_all_secrets(
        secrets_lines, secret_files, secret_envs, env
    )
    cache_from = build_inputs.parse_cache(
        split_list(values.get("cache-from", ""), commas=False), "cache-from"
    )
    cache_to = build_inputs.parse_cache(
        split_list(values.get("cache-to", ""), commas=False), "cache-to"
    )
    provenance = build_inputs.parse_attestation(get("provenance"), "provenance")
    sbom = build_inputs.parse_attestation(get("sbom"), "sbom")
    flags = buildx_flags.parse_flags(
        get, lambda name, commas: split_list(values.get(name, ""), commas=commas), parse_bool
    )
    push = _parse_push(get("push"))
    push = _check_push_with_flags(flags, push)
    if builder == "classic":
        used = build_inputs.classic_conflicts(
            platforms=platforms, secrets=build_secrets, cache_from=cache_from,
            cache_to=cache_to, provenance=provenance, sbom=sbom,
        ) + buildx_flags.classic_conflicts(flags)
        if used:
            raise InputError.needs_buildkit(used)

    push_by_digest = parse_bool(get("push-by-digest"), "push-by-digest")
    _check_digest_inputs(mode, push_by_digest, builder, platforms)
    digests = build_inputs.parse_digests(split_list(values.get("digests", ""))) if (
        mode == "merge") else ()

    auth = get("auth").lower() or "auto"
    if auth not in AUTH_MODES:
        raise InputError.not_one_of(
            "auth", auth, AUTH_MODES,
            hint="Use auto (choose per package), github-token or token (the PAT).",
        )

    isolation = get("subdomain-isolation").lower() or "auto"
    if isolation not in ISOLATION_MODES:
        raise InputError.not_one_of(
            "subdomain-isolation", isolation, ISOLATION_MODES,
            hint="Use auto (probe the GHES registries), true (containers.HOSTNAME) or false "
            "(the Docker registry at HOSTNAME).",
        )

    return Settings(
        image=image,
        registry=registry,
        owner=owner,
        repository=repository,
        tags=tags,
        context=context_dir,
        file=dockerfile,
        build_args=parse_pairs(values.get("build-args", ""), "build-args"),
        labels=image_labels,
        annotations=image_annotations,
        flavor=flavor,
        sep_tags=separators["sep-tags"],
        sep_labels=separators["sep-labels"],
        sep_annotations=separators["sep-annotations"],
        metadata_env=metadata.metadata_env(env),
        target=get("target"),
        pull=parse_bool(get("pull"), "pull"),
        no_cache=parse_bool(get("no-cache"), "no-cache"),
        push=push,
        github_token=_check_token(
            get("github-token") or env.get("GITHUB_TOKEN", "").strip(), "github-token"
        ),
        token=_check_token(get("token"), "token"),
        username=get("username"),
        auth=auth,
        subdomain_isolation=isolation,  # type: ignore[arg-type]  # checked just above
        mode=mode,
        keep_latest=keep_latest,
        delete_untagged_older_than=untagged_days,
        protect_tags=protect_tags,
        dry_run=parse_bool(get("dry-run"), "dry-run", default=True),
        digest=_parse_digests(values.get("digest", "")),
        builder=builder,
        builder_location=location,
        platforms=platforms,
        build_secrets=build_secrets,
        cache_from=cache_from,
        cache_to=cache_to,
        provenance=provenance,
        sbom=sbom,
        buildx=flags,
        deadline=_parse_deadline(get("deadline")),
        push_by_digest=push_by_digest,
        digests=digests,
        images=image_list if len(image_list) > 1 else (),
        registry_auth=images.parse_registry_auth(values.get("registry-auth", "")),
        notices=tuple(notices),
    )
