"""Which images a Dockerfile builds on, and which of them the push token cannot read.

A ``FROM`` may name a package of another owner on the same GitHub registry. The build
pulls it with the registry login, which holds one credential per host: the push token.
``GITHUB_TOKEN`` only reads packages of its own repository (and public ones), so such an
image must be pulled before the build with a personal access token (``read:packages``):
https://docs.github.com/en/packages/learn-github-packages/about-permissions-for-github-packages

Parsing follows the Dockerfile reference
(https://docs.docker.com/reference/dockerfile/): ``dockerfile-parse`` splits instructions
(continuations, comments); ARG expansion is done here because the library does not expand
defaults that refer to other ARGs nor ``${VAR:-word}``. Rules kept:

- only ARGs declared before the first ``FROM`` can be used in ``FROM`` lines; a build-arg
  overrides a declared ARG's default, an undeclared one is ignored (Docker warns);
- an unset variable expands to the empty string;
- ``FROM <stage>`` and ``COPY --from=<stage|index>`` name earlier stages, not images
  (stage names are case-insensitive); ``scratch`` is no image;
- ``--platform=`` picks the variant; ``$BUILDPLATFORM``/``$TARGETPLATFORM`` mean the
  daemon's own platform for a single-platform build.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockerfile_parse import DockerfileParser

from gh_docker_publish.core.refs import Flavour, Target

# Docker's automatic platform ARGs: for a single-platform build they are the daemon's own.
PLATFORM_ARGS = frozenset(
    f"{kind}{part}"
    for kind in ("BUILD", "TARGET")
    for part in ("PLATFORM", "OS", "ARCH", "VARIANT")
)
_VARIABLE = re.compile(
    r"\\\$|\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class BaseImage:
    """An image the build pulls: its reference as the daemon sees it, and where it came from."""

    ref: str  # host/path:tag or host/path@digest; Docker Hub names keep their short form
    line: int  # 1-based line of the instruction
    instruction: str  # "FROM" or "COPY --from"
    platform: str | None = None  # os/arch[/variant], None for the daemon's own

    @property
    def host(self) -> str:
        """The registry host, or "" for a Docker Hub short name."""
        head, sep, _ = self.ref.partition("/")
        return head.lower() if sep and ("." in head or ":" in head or head == "localhost") else ""

    @property
    def path(self) -> str:
        """The repository path without host, tag or digest."""
        rest = self.ref[len(self.host) + 1:] if self.host else self.ref
        rest = rest.partition("@")[0]
        name, _, tag = rest.rpartition(":")
        return (name if name and "/" not in tag else rest).lower()


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Dockerfile variable substitution: ``$V``, ``${V}``, ``${V:-w}``, ``${V-w}``,
    ``${V:+w}``, ``${V+w}``, ``\\$`` for a literal dollar; unset variables are empty."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group("braced") or match.group("bare")
        value = variables.get(name)
        op, word = match.group("op"), match.group("word") or ""
        if op == ":-":
            return value if value else expand(word, variables)
        if op == "-":
            return value if value is not None else expand(word, variables)
        if op == ":+":
            return expand(word, variables) if value else ""
        if op == "+":
            return expand(word, variables) if value is not None else ""
        return value or ""

    return _VARIABLE.sub(one, text)


def _declared_args(value: str, variables: Mapping[str, str]) -> dict[str, str | None]:
    """``ARG A B=1 C="x y"`` -> {A: None, B: "1", C: "x y"} (defaults expanded)."""
    out: dict[str, str | None] = {}
    try:
        items = shlex.split(value, posix=True)
    except ValueError:  # an unbalanced quote: the build will say what is wrong with it
        items = value.split()
    for item in items:
        name, sep, default = item.partition("=")
        out[name] = expand(default, {**variables, **{k: v for k, v in out.items() if v}}) \
            if sep else None
    return out


def _flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split leading ``--name=value`` flags from an instruction's words."""
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name.lower()] = value
    return flags, words


def _platform(raw: str | None, variables: Mapping[str, str]) -> str | None:
    if not raw:
        return None
    if any(f"${name}" in raw or f"${{{name}}}" in raw for name in PLATFORM_ARGS):
        return None  # the daemon's own platform
    return expand(raw, variables) or None


def _normalize(ref: str) -> str:
    """Lowercase host and path (as the daemon does); keep the tag's case; add no tag."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return f"{name.lower()}@{digest}"
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return f"{name.lower()}:{tag}"
    return f"{ref.lower()}:latest"


def external_images(dockerfile: str, build_args: Mapping[str, str] | Sequence[tuple[str, str]]
                    = ()) -> list[BaseImage]:
    """Every image a build of ``dockerfile`` (its text) pulls, in order, without duplicates.

    ``build_args`` override the defaults of ARGs declared before the first FROM.
    """
    overrides = dict(build_args)
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()), env_replace=False)
    global_args: dict[str, str] = {}
    stages: list[str] = []  # lowercased stage names, "" for unnamed stages
    found: dict[str, BaseImage] = {}
    seen_from = False
    stage_args: dict[str, str] = {}
    for item in parser.structure:
        instruction = item["instruction"].upper()
        line = int(item["startline"]) + 1
        value = str(item["value"])
        if instruction == "ARG":
            declared = _declared_args(value, {**global_args, **stage_args})
            for name, default in declared.items():
                if not seen_from:
                    given = overrides.get(name, default)
                    global_args[name] = given if given is not None else ""
                else:
                    # Inside a stage: a global ARG is re-imported by declaring it bare.
                    inherited = global_args.get(name) if default is None else default
                    given = overrides.get(name, inherited)
                    stage_args[name] = given if given is not None else ""
        elif instruction == "FROM":
            seen_from = True
            stage_args = {}
            flags, words = _flags(value.split())
            if not words:
                continue
            image = expand(words[0], global_args)
            alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""
            if image and image.lower() not in stages and image.lower() != "scratch":
                ref = _normalize(image)
                platform = _platform(flags.get("platform"), global_args)
                found.setdefault(ref, BaseImage(ref, line, "FROM", platform))
            stages.append(alias)
        elif instruction in ("COPY", "ADD") and "--from" in value:
            flags, _ = _flags(value.split())
            source = expand(flags.get("from", ""), {**global_args, **stage_args})
            if not source or source.isdigit() or source.lower() in stages:
                continue
            ref = _normalize(source)
            found.setdefault(ref, BaseImage(ref, line, "COPY --from"))
    return list(found.values())


def foreign_images(images: Sequence[BaseImage], target: Target) -> list[BaseImage]:
    """The images on the push target's registry that belong to another owner (Container
    registry: ``HOST/OWNER/NAME``) or another repository (Docker registry:
    ``HOST/OWNER/REPO/NAME``): the push token is not theirs."""
    own = target.repository.lower() if target.flavour is Flavour.DOCKER else target.owner
    depth = 2 if target.flavour is Flavour.DOCKER else 1
    out = []
    for image in images:
        if image.host != target.registry.lower():
            continue
        namespace = "/".join(image.path.split("/")[:depth])
        if namespace != own:
            out.append(image)
    return out
