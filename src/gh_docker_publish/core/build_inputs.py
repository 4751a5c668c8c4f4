"""The BuildKit inputs (``builder``, ``platforms``, ``secrets``, ``cache-from``, ``cache-to``,
``provenance``), parsed and checked before any network call.

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
    raise InputError.not_one_of(
        "builder", raw, BUILDER_MODES,
        hint="auto uses BuildKit (docker buildx) when it works and the classic builder "
        "otherwise.",
    )


def parse_platforms(items: Sequence[str]) -> tuple[str, ...]:
    platforms: list[str] = []
    for item in items:
        value = item.strip().lower()
        if not _PLATFORM.fullmatch(value):
            raise InputError(
                "platforms",
                f"'{item}' is not a platform.",
                hint="Use os/arch[/variant], e.g. linux/amd64 or linux/arm64.",
            )
        if value not in platforms:
            platforms.append(value)
    return tuple(platforms)


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


def parse_cache(items: Sequence[str], input_name: str) -> tuple[str, ...]:
    """Cache specs as buildx takes them (``type=registry,ref=…``, ``type=inline``, or a
    bare reference for ``cache-from``); only the syntax is checked here."""
    specs: list[str] = []
    for item in items:
        if "=" in item:
            try:
                fields = _fields(item)
            except ValueError:
                raise InputError(input_name, f"'{item}' is not key=value,….",
                                 hint="For example type=registry,ref=ghcr.io/o/app:cache") from None
            if "type" not in fields and "ref" not in fields:
                raise InputError(input_name, f"'{item}' has no type=.",
                                 hint="For example type=registry,ref=ghcr.io/o/app:cache")
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


def classic_conflicts(
    *,
    platforms: Sequence[str],
    secrets: Sequence[BuildSecret],
    cache_from: Sequence[str],
    cache_to: Sequence[str],
    provenance: bool,
) -> list[str]:
    """The BuildKit-only inputs that are set: the classic builder cannot honour them."""
    used = []
    for name, value in (
        ("platforms", platforms),
        ("secrets", secrets),
        ("cache-from", cache_from),
        ("cache-to", cache_to),
        ("provenance", provenance),
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
