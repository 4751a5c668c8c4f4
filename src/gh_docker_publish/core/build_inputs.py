"""The BuildKit inputs (``builder``, ``platforms``, ``secrets``, ``cache-from``, ``cache-to``,
``provenance``, ``sbom``), parsed and checked before any network call.

Kept apart from ``settings.py`` because these rules come from buildx, not from GitHub:
the ``--secret`` syntax (``id=…,src=…`` / ``id=…,env=…``, docs.docker.com "Build
secrets"), the ``--platform`` form ``os/arch[/variant]`` and the cache backends
(docs.docker.com "Cache storage backends"). Secrets are never build args: build args
stay in the image history (docs.docker.com "Build variables"), secrets are mounted for
one ``RUN`` only.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gh_docker_publish.core.builder_location import BUILDER_FORMS, BUILDER_HINT
from gh_docker_publish.errors import InputError

BuilderMode = Literal["auto", "buildkit", "classic"]
BUILDER_MODES: tuple[BuilderMode, ...] = ("auto", "buildkit", "classic")

_SECRET_ID = re.compile(r"[A-Za-z0-9_.-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# containerd's platform syntax: os/arch[/variant] (e.g. linux/arm/v7).
_PLATFORM = re.compile(r"[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_.]+)?")
SECRET_HINT = "Write one secret per line: id=NAME,src=PATH or id=NAME,env=VARIABLE."  # noqa: S105 -- a help text


@dataclass(frozen=True)
class BuildSecret:
    """One build secret. ``value`` is filled for ``env=`` secrets only (read once, masked).

    ``repr`` hides the value, so a Settings dump cannot print it.
    """

    id: str
    src: str = ""
    env: str = ""
    value: str = ""

    def buildx_spec(self) -> str:
        """The ``--secret`` argument: names and paths only, never the value."""
        return f"id={self.id},src={self.src}" if self.src else f"id={self.id},env={self.env}"

    def __repr__(self) -> str:
        where = f"src={self.src!r}" if self.src else f"env={self.env!r}"
        return f"BuildSecret(id={self.id!r}, {where})"


def parse_builder(raw: str) -> BuilderMode:
    value = raw.strip().lower() or "auto"
    for mode in BUILDER_MODES:
        if value == mode:
            return mode
    raise InputError.not_one_of("builder", raw, BUILDER_FORMS, hint=BUILDER_HINT)


#: GOOS / GOARCH values containerd's platform parser accepts (containerd/platforms
#: ``isKnownOS`` / ``isKnownArch``); anything else is a typo BuildKit would reject late.
KNOWN_OS = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux",
    "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows",
})
KNOWN_ARCH = frozenset({
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle",
    "ppc64", "ppc64le", "riscv64", "s390x", "wasm",
})
#: containerd's ``normalizeArch``: the names ``uname -m`` and Debian use, as OCI spells them.
ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386",
    "armhf": "arm/v7", "armel": "arm/v6",
}


def normalize_platform(item: str, input_name: str = "platforms") -> str:
    """``os/arch[/variant]`` in OCI spelling (``linux/aarch64`` -> ``linux/arm64``).

    Raises:
        InputError(input_name): not the syntax, or an OS / architecture nobody builds for.
    """
    value = item.strip().lower()
    if not _PLATFORM.fullmatch(value):
        raise InputError(
            input_name,
            f"'{item}' is not a platform.",
            hint="Use os/arch[/variant], e.g. linux/amd64 or linux/arm64.",
        )
    os_name, arch, *variant = value.split("/")
    arch_path = ARCH_ALIASES.get(arch, arch)
    if "/" in arch_path:  # armhf -> arm/v7 brings its own variant
        arch, implied = arch_path.split("/")
        variant = variant or [implied]
    else:
        arch = arch_path
    if arch == "arm64" and variant == ["v8"]:
        variant = []  # containerd treats linux/arm64/v8 as linux/arm64
    if os_name not in KNOWN_OS or arch not in KNOWN_ARCH:
        unknown = f"operating system '{os_name}'" if os_name not in KNOWN_OS else (
            f"architecture '{arch}'")
        raise InputError(
            input_name,
            f"'{item}' names an unknown {unknown}.",
            hint="Use os/arch[/variant] as Docker spells it: linux/amd64, linux/arm64, "
            "linux/arm/v7, linux/386, linux/ppc64le, linux/s390x, linux/riscv64.",
        )
    return "/".join([os_name, arch, *variant])


def parse_platforms(items: Sequence[str]) -> tuple[str, ...]:
    platforms: list[str] = []
    for item in items:
        value = normalize_platform(item)
        if value not in platforms:
            platforms.append(value)
    return tuple(platforms)


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
DIGESTS_FIX = (
    "One line per platform job: its 'digest' output (sha256:<64 hex digits>), optionally "
    "after the platform it claims, as linux/arm64=sha256:..."
)


@dataclass(frozen=True)
class PlatformDigest:
    """One line of ``digests`` (issue 16): a manifest a matrix job pushed by digest, and
    the platform the line claims for it ("" when the line gives only the digest)."""

    digest: str
    claimed: str = ""


def parse_digests(lines: Sequence[str]) -> tuple[PlatformDigest, ...]:
    """``mode: merge``'s ``digests``: one per line, each a digest or ``PLATFORM=DIGEST``.

    Raises:
        InputError("digests"): empty, malformed, or one digest or claimed platform twice
        (the registry is asked about the rest: whether each exists, and for which platform).
    """
    if not lines:
        raise InputError(
            "digests", "is empty: mode merge needs the digest of every platform job.",
            hint="Pass the push-by-digest jobs' 'digest' outputs, one per line (README: "
            "\"One platform per runner\").",
        )
    found: list[PlatformDigest] = []
    for line in lines:
        claimed, sep, digest = line.strip().rpartition("=")
        if not _DIGEST.fullmatch(digest):
            raise InputError.in_line(
                "digests", line, "not a manifest digest (sha256:<64 hex digits>)", DIGESTS_FIX
            )
        entry = PlatformDigest(digest, normalize_platform(claimed, "digests") if sep else "")
        for earlier in found:
            if earlier.digest == digest:
                raise InputError.in_line("digests", line, "the same digest twice",
                                         "Give each platform job's digest once.")
            if entry.claimed and earlier.claimed == entry.claimed:
                raise InputError.in_line(
                    "digests", line, f"a second digest for {entry.claimed}",
                    "One digest per platform: drop the stale one (an older run's?).",
                )
        found.append(entry)
    return tuple(found)


def _fields(line: str) -> dict[str, str]:
    """``k=v,k=v`` with csv quoting (buildx parses --secret with encoding/csv too)."""
    fields: dict[str, str] = {}
    for cell in next(csv.reader([line], skipinitialspace=True), []):
        key, sep, value = cell.partition("=")
        if not sep:
            raise ValueError(cell)
        fields[key.strip().lower()] = value.strip()
    return fields


def parse_secrets(
    lines: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
) -> tuple[BuildSecret, ...]:
    """Check each secret line; ``env=`` values are read from ``env`` now.

    Raises:
        InputError("secrets"): bad syntax, duplicate id, missing file or unset variable.
        The message names the id and the file or variable, never a value.
    """
    secrets: list[BuildSecret] = []
    seen: set[str] = set()
    for line in lines:
        try:
            fields = _fields(line)
        except ValueError:
            raise InputError("secrets", "a line is not id=…,src=… or id=…,env=….",
                             hint=SECRET_HINT) from None
        sid = fields.pop("id", "")
        if fields.get("type") in ("file", "env"):  # buildx also takes type=file|env
            del fields["type"]
        src, var = fields.pop("src", ""), fields.pop("env", "")
        if not _SECRET_ID.fullmatch(sid):
            raise InputError("secrets", "a secret has no valid id.", hint=SECRET_HINT)
        if fields or bool(src) == bool(var):
            raise InputError(
                "secrets",
                f"secret '{sid}' needs exactly one of src= or env= (and nothing else).",
                hint=SECRET_HINT,
            )
        if sid in seen:
            raise InputError("secrets", f"secret '{sid}' is given twice.", hint=SECRET_HINT)
        seen.add(sid)
        if src:
            path = Path(src) if cwd is None or Path(src).is_absolute() else cwd / src
            if not path.is_file():
                raise InputError(
                    "secrets",
                    f"secret '{sid}': no file at '{src}'.",
                    hint="Write the secret to a file in an earlier step, or use env=.",
                )
            secrets.append(BuildSecret(sid, src=str(path.resolve())))
            continue
        if not _ENV_NAME.fullmatch(var):
            raise InputError("secrets", f"secret '{sid}': '{var}' is not a variable name.",
                             hint=SECRET_HINT)
        value = env.get(var, "")
        if not value:
            raise InputError(
                "secrets",
                f"secret '{sid}': the variable {var} is not set or empty.",
                hint=f"Set it on the step: env: {{{var}: ${{{{ secrets.… }}}}}}.",
            )
        secrets.append(BuildSecret(sid, env=var, value=value))
    return tuple(secrets)


#: buildx's cache backends (docs.docker.com "Cache storage backends"), and the field each
#: needs: where the cache lives. ``inline`` lives in the image itself.
CACHE_TYPES = ("registry", "local", "inline", "gha", "s3", "azblob")
_CACHE_NEEDS = {
    ("registry", "cache-from"): "ref", ("registry", "cache-to"): "ref",
    ("local", "cache-from"): "src", ("local", "cache-to"): "dest",
}
CACHE_HINT = ("For example type=registry,ref=ghcr.io/o/app:cache,mode=max, "
              "type=local,dest=/tmp/cache, type=inline or type=gha.")
#: The runner's variables buildx reads for ``type=gha`` (it fills ``token`` and ``url_v2``
#: itself; they stay in its environment, never in its argv). A container action receives
#: ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL but not ACTIONS_CACHE_SERVICE_V2, so
#: without ``version=2`` buildx would talk to the retired v1 cache service (buildx
#: build/opt.go; GitHub retired v1 on 2025-04-15).
GHA_CACHE_ENV = ("ACTIONS_RUNTIME_TOKEN", "ACTIONS_RESULTS_URL", "ACTIONS_CACHE_URL")


def parse_cache(items: Sequence[str], input_name: str) -> tuple[str, ...]:
    """Cache specs as buildx takes them (``type=registry,ref=…,mode=max``, ``type=inline``,
    ``type=gha``, or a bare reference for ``cache-from``), checked: a known type, the field
    that says where, ``mode=min|max``. ``type=gha`` gets ``version=2`` (see GHA_CACHE_ENV).
    """
    specs: list[str] = []
    for item in items:
        if "=" not in item:
            if input_name == "cache-to":
                raise InputError(input_name, f"'{item}' has no type=.", hint=CACHE_HINT)
            specs.append(item)  # cache-from takes a bare image reference
            continue
        try:
            fields = _fields(item)
        except ValueError:
            raise InputError(input_name, f"'{item}' is not key=value,….",
                             hint=CACHE_HINT) from None
        if "type" not in fields and "ref" not in fields:
            raise InputError(input_name, f"'{item}' has no type=.", hint=CACHE_HINT)
        kind = fields.get("type", "registry")
        if kind not in CACHE_TYPES:
            raise InputError.not_one_of(input_name, kind, CACHE_TYPES, hint=CACHE_HINT)
        needed = _CACHE_NEEDS.get((kind, input_name))
        if needed and not fields.get(needed):
            raise InputError(input_name, f"'{item}' needs {needed}=.", hint=CACHE_HINT)
        if fields.get("mode", "min") not in ("min", "max"):
            raise InputError.not_one_of(
                input_name, f"mode={fields['mode']}", ("mode=min", "mode=max"),
                hint="min exports the final image's layers, max every stage's.",
            )
        if kind == "gha" and "version" not in fields:
            item = f"{item},version=2"
        specs.append(item)
    return tuple(specs)


def cache_type(spec: str) -> str:
    """``registry`` for a bare ref or ``ref=`` without ``type``, else the ``type`` field."""
    if "=" not in spec:
        return "registry"
    try:
        return _fields(spec).get("type", "registry")
    except ValueError:
        return ""


#: The keys buildx's ``--provenance`` / ``--sbom`` take besides on/off (docs.docker.com
#: "Provenance attestations", "SBOM attestations"); build-push-action passes the value on.
ATTESTATION_KEYS = {
    "provenance": ("mode", "builder-id", "reproducible", "inline-only", "version", "filename"),
    "sbom": ("generator", "scan-context", "scan-stage"),
}
_OFF = ("", "false", "0", "no", "off")
_ON = ("true", "1", "yes", "on")


def parse_attestation(raw: str, input_name: str) -> str:
    """``provenance`` / ``sbom``: "" (off) or the value for buildx's flag of that name.

    Like build-push-action: ``true``/``false``, or buildx's own ``key=value`` form
    (``mode=min``, ``mode=max`` for provenance; ``generator=IMAGE`` for the SBOM).
    """
    value = raw.strip()
    if value.lower() in _OFF:
        return ""
    if value.lower() in _ON:
        return "true"
    example = "true, false, mode=min or mode=max" if input_name == "provenance" else (
        "true, false or generator=IMAGE")
    try:
        fields = _fields(value)
    except ValueError:
        raise InputError(input_name, f"'{raw}' is not {example}.",
                         hint="See docs.docker.com/build/metadata/attestations/.") from None
    unknown = [key for key in fields if key not in (*ATTESTATION_KEYS[input_name], "disabled")]
    if unknown:
        raise InputError(input_name, f"'{raw}': buildx has no {input_name} option "
                         f"'{unknown[0]}'.", hint=f"Use {example}.")
    if fields.get("disabled", "").lower() in _ON:
        return ""
    if input_name == "provenance" and fields.get("mode", "min") not in ("min", "max"):
        raise InputError.not_one_of(input_name, raw, ("mode=min", "mode=max"),
                                    hint="mode=max also records the build's inputs.")
    return value


def classic_conflicts(
    *,
    platforms: Sequence[str],
    secrets: Sequence[BuildSecret],
    cache_from: Sequence[str],
    cache_to: Sequence[str],
    provenance: str,
    sbom: str = "",
) -> list[str]:
    """The BuildKit-only inputs that are set: the classic builder cannot honour them."""
    used = []
    for name, value in (
        ("platforms", platforms),
        ("secrets", secrets),
        ("cache-from", cache_from),
        ("cache-to", cache_to),
        ("provenance", provenance),
        ("sbom", sbom),
    ):
        if value:
            used.append(name)
    return used


# --- docker/build-push-action's secret inputs (issue 14 item 3) -------------------------

#: Variables that carry a ``secrets`` line's inline value to buildx (``--secret id=,env=``):
#: the value reaches buildx's environment only, never its argv or a file.
INLINE_SECRET_ENV = "GH_DOCKER_PUBLISH_SECRET_"  # noqa: S105 -- a variable name prefix
_BUILDX_FORM = re.compile(r"\s*(id|type|src|source|env)=")


def is_buildx_form(line: str) -> bool:
    """``id=NAME,src=PATH`` (buildx's --secret form) rather than build-push-action's
    ``KEY=value``: the line starts with one of --secret's own fields."""
    return bool(_BUILDX_FORM.match(line))


def inline_values(lines: Sequence[str]) -> list[str]:
    """The values of ``KEY=value`` lines, for masking before anything is validated."""
    return [
        value for line in lines
        if not is_buildx_form(line) and (value := line.partition("=")[2])
    ]


def _key_value(line: str, input_name: str, example: str) -> tuple[str, str]:
    key, sep, value = line.partition("=")
    key = key.strip()
    if not sep or not _SECRET_ID.fullmatch(key) or not value:
        # Never the line itself: its value may be the secret.
        form = ("neither id=…,src=…|env=… nor KEY=VALUE" if input_name == "secrets"
                else "not KEY=VALUE")
        raise InputError(
            input_name, f"a line is {form}.",
            hint=f"Write one per line, e.g. {example}.",
        )
    return key, value


def parse_all_secrets(
    secrets: Sequence[str],
    secret_files: Sequence[str],
    secret_envs: Sequence[str],
    env: Mapping[str, str],
) -> tuple[BuildSecret, ...]:
    """``secrets`` (buildx's ``id=…,src=|env=…`` or build-push-action's ``KEY=value``),
    ``secret-files`` (``KEY=PATH``) and ``secret-envs`` (``KEY=VARIABLE``) as one list of
    build secrets, checked as :func:`parse_secrets` checks its lines (ids unique across all).
    """
    parsed = list(parse_secrets([line for line in secrets if is_buildx_form(line)], env))
    for index, line in enumerate(line for line in secrets if not is_buildx_form(line)):
        key, value = _key_value(line, "secrets", "GIT_AUTH_TOKEN=${{ secrets.MY_TOKEN }}")
        parsed.append(BuildSecret(key, env=f"{INLINE_SECRET_ENV}{index}", value=value))
    for name, lines, field_name, example in (
        ("secret-files", secret_files, "src", "npmrc=/home/runner/.npmrc"),
        ("secret-envs", secret_envs, "env", "GIT_AUTH_TOKEN=MY_TOKEN_VARIABLE"),
    ):
        specs = [f"id={key},{field_name}={where}"
                 for key, where in (_key_value(line, name, example) for line in lines)]
        try:
            parsed += parse_secrets(specs, env)
        except InputError as exc:  # the same checks, said about the input the user wrote
            raise InputError(
                name, exc.message.removeprefix("Input 'secrets': "), hint=exc.hint
            ) from None
    ids = [s.id for s in parsed]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InputError("secrets", f"secret '{twice[0]}' is given twice.", hint=SECRET_HINT)
    return tuple(parsed)
