"""Where BuildKit runs when it is not this daemon's (issue 13): the ``builder`` input's
address forms and the ``builder-cacert``/``builder-cert``/``builder-key``/
``builder-servername`` TLS inputs, parsed and checked before any network call.

The forms follow what users already write elsewhere: a Docker Engine address as in
``DOCKER_HOST`` (buildx's ``docker`` driver builds there), a buildkitd address as given to
``docker buildx create --driver remote`` / setup-buildx-action's ``endpoint``, and a
builder container as setup-buildx-action starts it (``docker-container://``). The TLS
inputs are named after the remote driver's ``cacert``, ``cert``, ``key`` and
``servername`` options (docs.docker.com "Remote driver").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gh_docker_publish.errors import InputError

Driver = Literal["docker", "remote", "docker-container"]

#: Every form ``builder`` accepts, for the error that lists them.
BUILDER_FORMS = (
    "auto",
    "buildkit",
    "classic",
    "unix:///PATH (another Docker Engine's socket)",
    "docker+tcp://HOST:PORT (another Docker Engine over TCP)",
    "tcp://HOST:PORT (a remote buildkitd)",
    "docker-container://NAME (a builder container, e.g. docker/setup-buildx-action's)",
)
BUILDER_HINT = (
    "auto uses the local Docker Engine's BuildKit (docker buildx) when it works, else the "
    "classic builder; an address builds on BuildKit elsewhere, which pushes the image itself."
)
TLS_INPUTS = ("builder-cacert", "builder-cert", "builder-key", "builder-servername")
_TLS_FILE_INPUTS = TLS_INPUTS[:3]
# Docker's container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (moby daemon/names).
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_HOST_PORT = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")
#: The container buildx's docker-container driver runs for node N of a builder.
BUILDX_CONTAINER_PREFIX = "buildx_buildkit_"


@dataclass(frozen=True)
class BuilderTLS:
    """TLS files (absolute paths) and the name to verify the server's certificate against."""

    cacert: str = ""
    cert: str = ""
    key: str = ""
    servername: str = ""

    def given(self) -> bool:
        return bool(self.cacert or self.cert or self.key or self.servername)


@dataclass(frozen=True)
class BuilderLocation:
    """A BuildKit that is not this daemon's.

    ``address``: for ``docker``, a ``DOCKER_HOST`` value (``unix:///…``, ``tcp://…``); for
    ``remote``, the buildkitd's ``tcp://HOST:PORT``; for ``docker-container``, the name
    given (a container, or the builder name setup-buildx-action outputs).
    """

    driver: Driver
    address: str
    tls: BuilderTLS = BuilderTLS()

    def host_port(self) -> tuple[str, int] | None:
        """HOST and PORT of a ``tcp://`` address (brackets stripped from IPv6)."""
        m = _HOST_PORT.fullmatch(self.address.partition("://")[2])
        if m is None or not self.address.startswith("tcp://"):
            return None
        return m["host"].strip("[]"), int(m["port"])

    def describe(self) -> str:
        """For the log and the summary."""
        what = {
            "docker": "the Docker Engine at",
            "remote": "the buildkitd at",
            "docker-container": "the builder container",
        }[self.driver]
        tls = " over TLS" if self.tls.given() else ""
        return f"{what} {self.address}{tls}"


def parse_builder_location(
    raw: str, tls_values: Mapping[str, str], cwd: Path | None = None
) -> BuilderLocation | None:
    """The BuildKit elsewhere that ``builder`` names, or None for auto/buildkit/classic.

    Raises:
        InputError("builder"): an address that is not one of the forms.
        InputError(a TLS input): TLS for a builder that is not reached over TCP, half a
        client certificate, or a file that does not exist.
    """
    value = raw.strip()
    tls = _parse_tls(tls_values, cwd)
    if "://" not in value:
        if tls.given():
            name = next(n for n in TLS_INPUTS if tls_values.get(n, "").strip())
            raise InputError(
                name,
                f"is set, but builder is '{value or 'auto'}': TLS applies only to a builder "
                "reached over TCP.",
                hint="Set builder: tcp://HOST:PORT (a remote buildkitd) or "
                "docker+tcp://HOST:PORT (a Docker Engine), or drop the TLS inputs.",
            )
        return None
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower()
    if scheme in ("unix", "docker+unix"):
        if not rest.startswith("/"):
            raise _bad_form(value, "a unix socket needs an absolute path: unix:///PATH")
        _refuse_tls(tls, tls_values, "unix://", "a local socket")
        return BuilderLocation("docker", f"unix://{rest}")
    if scheme in ("tcp", "docker+tcp"):
        if not _HOST_PORT.fullmatch(rest):
            raise _bad_form(value, "a TCP address needs a host and a port: tcp://HOST:PORT")
        if bool(tls.cert) != bool(tls.key):
            raise InputError(
                "builder-key" if tls.cert else "builder-cert",
                "a client certificate needs both builder-cert and builder-key.",
                hint="Give both files, or neither (server-verified TLS with builder-cacert).",
            )
        if scheme == "docker+tcp":
            if tls.servername:
                raise InputError(
                    "builder-servername",
                    "applies to a remote buildkitd (tcp://) only; a Docker Engine over TCP "
                    "is verified against its host name.",
                    hint="Drop builder-servername, or use the host name the certificate names.",
                )
            return BuilderLocation("docker", f"tcp://{rest}", tls)
        return BuilderLocation("remote", f"tcp://{rest}", tls)
    if scheme == "docker-container":
        if not _CONTAINER_NAME.fullmatch(rest):
            raise _bad_form(value, f"'{rest}' is not a container name")
        _refuse_tls(tls, tls_values, "docker-container://", "the container through this daemon")
        return BuilderLocation("docker-container", rest)
    raise _bad_form(value, f"'{scheme}://' is not a builder address")


def _parse_tls(values: Mapping[str, str], cwd: Path | None) -> BuilderTLS:
    files: dict[str, str] = {}
    for name in _TLS_FILE_INPUTS:
        given = values.get(name, "").strip()
        if not given:
            continue
        path = Path(given) if cwd is None or Path(given).is_absolute() else cwd / given
        if not path.is_file():
            raise InputError(
                name,
                f"no file at '{given}'.",
                hint="Write the PEM file in an earlier step (e.g. from a secret), then give "
                "its path here.",
            )
        files[name.removeprefix("builder-")] = str(path.resolve())
    return BuilderTLS(**files, servername=values.get("builder-servername", "").strip())


def _refuse_tls(
    tls: BuilderTLS, values: Mapping[str, str], scheme: str, reached: str
) -> None:
    if tls.given():
        name = next(n for n in TLS_INPUTS if values.get(n, "").strip())
        raise InputError(
            name,
            f"is set, but a {scheme} builder is reached through {reached}, without TLS.",
            hint="Drop the TLS inputs, or point builder at a tcp:// address.",
        )


def _bad_form(value: str, why: str) -> InputError:
    return InputError(
        "builder",
        f"'{value}': {why}. Accepted: {'; '.join(BUILDER_FORMS)}.",
        hint=BUILDER_HINT,
    )
