"""BuildKit elsewhere, as the ``builder`` input names it (issue 13): check that it answers
before any registry call, point buildx at it, and let BuildKit push the image itself
(``BuildKitPusher``, the direct-push path several platforms use too).

- Another Docker Engine: buildx's ``docker`` driver on a docker context written in the
  private DOCKER_CONFIG as the docker CLI stores one (``contexts/meta/<sha256 of
  name>/meta.json``, TLS files under ``contexts/tls/…/docker/``) and selected with
  DOCKER_CONTEXT. Not DOCKER_HOST: run standalone, as the action runs it, buildx ignores
  ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH`` (found against ``dockerd --tlsverify``).
- A remote buildkitd: ``buildx create --driver remote tcp://…`` with the ``cacert``,
  ``cert``, ``key`` and ``servername`` driver options (docs.docker.com "Remote driver").
- A builder container on this daemon (``buildx_buildkit_<node>``, as
  docker/setup-buildx-action starts it): ``buildx create --driver docker-container --node
  <node>``. That driver reuses a container of that name and talks to it through the
  Engine API (buildx driver/docker-container), so the action image needs no docker CLI,
  which the remote driver's ``docker-container://`` helper would run.

Each builder is created in a BUILDX_CONFIG inside the private DOCKER_CONFIG, so it is ours
and goes when that directory goes: nothing depends on HOME or outlives the run, and
``buildx rm`` is never run (it would remove the user's container). The only credential
buildx sees is the chosen token in that DOCKER_CONFIG.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import requests

from gh_docker_publish.core.builder_location import (
    BUILDX_CONTAINER_PREFIX,
    BuilderLocation,
)
from gh_docker_publish.core.progress import Log
from gh_docker_publish.edges.builders import (
    BuildKitPusher,
    BuildRequest,
    BuildResult,
    buildx_build_argv,
    refuse_docker_driver_limits,
    run_buildx,
    uses_containerd_store,
)
from gh_docker_publish.edges.engine import RetryPolicy
from gh_docker_publish.errors import BuildError

#: Seconds to wait for an endpoint to answer before the build is given up.
PROBE_TIMEOUT = 5.0
# An HTTP/2 client's first bytes (RFC 9113 §3.4); a gRPC server (BuildKit) answers with
# a SETTINGS frame (type 0x4), anything else with something else or nothing.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_SETTINGS = 0x4
_HINTS = {
    "docker": "Check that the Docker Engine runs and that this address reaches it (the "
    "socket is mounted, the port is open), or use builder: auto.",
    "remote": "Check that buildkitd listens there (buildkitd --addr tcp://0.0.0.0:PORT) "
    "and, for TLS, that builder-cacert signed its certificate and builder-servername "
    "(default: the host) is a name in it.",
    "docker-container": "Start the builder first (docker/setup-buildx-action with driver: "
    "docker-container) and pass its name output, or the container's name.",
}


@dataclass(frozen=True)
class Reached:
    """What the probe found: the container to attach to, the other engine's store."""

    container: str = ""
    containerd_store: bool = False
    detail: str = ""


def probe(location: BuilderLocation, client: Any, timeout: float = PROBE_TIMEOUT) -> Reached:
    """Check ``location`` answers as BuildKit can be reached there; before the build.

    Raises:
        BuildError.builder_unreachable: down, refusing TLS, not BuildKit, no container.
    """
    if location.driver == "docker":
        return _probe_engine(location, timeout)
    if location.driver == "remote":
        _probe_buildkitd(location, timeout)
        return Reached(detail=location.describe())
    return _find_container(location, client)


def _unreachable(location: BuilderLocation, reason: str) -> BuildError:
    return BuildError.builder_unreachable(
        location.describe(), reason, hint=_HINTS[location.driver]
    )


class _EngineClient(docker.APIClient):  # type: ignore[misc]
    """docker-py's client that ignores REQUESTS_CA_BUNDLE & co: requests lets them override
    the CA file the client was given (psf/requests#3829), so builder-cacert would not be
    used where they are set. The first request is the version lookup in ``__init__``."""

    def _retrieve_server_version(self) -> str:
        self.trust_env = False
        return str(super()._retrieve_server_version())


def _is_tls_failure(exc: BaseException) -> bool:
    """docker-py wraps requests' SSLError in a DockerException: look down the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ssl.SSLError, requests.exceptions.SSLError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSLError" in str(exc)


def _probe_engine(location: BuilderLocation, timeout: float) -> Reached:
    tls: docker.tls.TLSConfig | bool = False
    if location.tls.given():
        cert = (location.tls.cert, location.tls.key) if location.tls.cert else None
        tls = docker.tls.TLSConfig(
            client_cert=cert, ca_cert=location.tls.cacert or None, verify=True
        )
    address = location.address
    try:
        other = _EngineClient(base_url=address, version="auto", timeout=timeout, tls=tls)
        version = other.version()
        containerd_store = uses_containerd_store(other)
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        if _is_tls_failure(exc):
            raise _unreachable(location, f"refused TLS ({exc})") from exc
        plain = "" if location.tls.given() or location.address.startswith("unix:") else (
            "; if it listens with TLS, give builder-cacert, builder-cert and builder-key"
        )
        raise _unreachable(
            location, f"does not answer as a Docker Engine ({exc}){plain}"
        ) from exc
    return Reached(
        containerd_store=containerd_store,
        detail=f"{location.describe()} (Docker Engine {version.get('Version')})",
    )


def _probe_buildkitd(location: BuilderLocation, timeout: float) -> None:
    """Connect, do TLS when TLS inputs are given, and see an HTTP/2 (gRPC) answer."""
    host_port = location.host_port()
    assert host_port is not None  # parse_builder_location checked the form
    try:
        raw = socket.create_connection(host_port, timeout=timeout)
    except OSError as exc:
        raise _unreachable(location, f"is down or unreachable ({exc})") from exc
    with contextlib.ExitStack() as stack:
        conn: socket.socket = stack.enter_context(raw)
        if location.tls.given():
            try:
                conn = stack.enter_context(_tls_wrap(raw, location, host_port[0]))
            except (ssl.SSLError, OSError) as exc:
                raise _unreachable(location, f"refused TLS ({exc})") from exc
        try:
            conn.sendall(_H2_PREFACE)
            head = conn.recv(9)
        except ssl.SSLError as exc:  # an alert after the handshake: e.g. certificate required
            raise _unreachable(location, f"refused TLS ({exc})") from exc
        except OSError as exc:
            raise _unreachable(location, f"closed the connection ({exc})") from exc
    if not head and location.tls.given() and not location.tls.cert:
        # In TLS 1.3 the server checks the client's certificate after the client finished
        # its handshake: one that requires it (buildkitd --tlscacert) then hangs up.
        raise _unreachable(
            location, "refused TLS: it hung up after the handshake, as a buildkitd that "
            "requires a client certificate does (give builder-cert and builder-key)",
        )
    if len(head) < 4 or head[3] != _H2_SETTINGS:
        plain = " (it may want TLS: set builder-cacert)" if not location.tls.given() else ""
        raise _unreachable(location, f"does not answer as BuildKit (gRPC){plain}")


def _tls_wrap(raw: socket.socket, location: BuilderLocation, host: str) -> ssl.SSLSocket:
    tls = location.tls
    context = ssl.create_default_context(cafile=tls.cacert or None)
    # Python 3.13 turns on VERIFY_X509_STRICT (RFC 5280 checks, e.g. an Authority Key
    # Identifier in every certificate); buildx's Go TLS does not check those, so the probe
    # must not refuse a buildkitd that buildx reaches (found with the bed's test CA).
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    context.set_alpn_protocols(["h2"])
    return context.wrap_socket(raw, server_hostname=tls.servername or host)


def _find_container(location: BuilderLocation, client: Any) -> Reached:
    """The container itself, or the one buildx runs for node 0 of a builder of that name
    (setup-buildx-action's ``name`` output)."""
    name = location.address
    candidates = [name] if name.startswith(BUILDX_CONTAINER_PREFIX) else []
    candidates.append(f"{BUILDX_CONTAINER_PREFIX}{name}0")
    for candidate in candidates:
        try:
            client.inspect_container(candidate)
        except docker.errors.NotFound:
            continue
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise _unreachable(location, f"cannot be looked up ({exc})") from exc
        return Reached(container=candidate, detail=f"the builder container {candidate}")
    raise _unreachable(
        location,
        "is not on this daemon (looked for containers "
        + " and ".join(candidates)
        + "; buildx builder containers are named buildx_buildkit_<builder>0)",
    )


class ElsewhereBuilder:
    """BuildKit elsewhere. It pushes the image itself (``pusher``: ``buildx build --push``,
    what landed read back from the registry); a run that does not push ``build``s it with
    ``--load`` (into that engine for another engine, else into this daemon)."""

    name = "buildkit"

    def __init__(
        self,
        location: BuilderLocation,
        reached: Reached,
        docker_host: str | None,
        *,
        buildx: str | Path,
        temp_dir: str | None = None,
        on_config_dir: Callable[[Path], None] | None = None,
    ) -> None:
        self.location = location
        self._reached = reached
        self._host = docker_host
        self._buildx = str(buildx)
        self._temp_dir = temp_dir
        self._on_config_dir = on_config_dir
        self.builder_name = f"gh-docker-publish-{secrets.token_hex(4)}"
        self.reason = f"docker buildx on {reached.detail}"

    @property
    def containerd_store(self) -> bool:
        """Whether BuildKit there pushes a multi-platform index itself: a buildkitd or a
        builder container does; another engine's docker driver only on its containerd
        store (else flows/platforms.py builds one platform at a time)."""
        return self.location.driver != "docker" or self._reached.containerd_store

    def _builder_args(self) -> list[str]:
        # Another engine is a docker context, which DOCKER_CONTEXT selects (point_buildx).
        return [] if self.location.driver == "docker" else ["--builder", self.builder_name]

    def refuse_limits(self, request: BuildRequest) -> None:
        """Another engine's docker driver has that engine's store's limits: refused before
        any registry call, naming that engine. A buildkitd or builder container has none."""
        if self.location.driver == "docker":
            refuse_docker_driver_limits(
                request, self._reached.containerd_store, self.location.describe()
            )

    def pusher(self, retry: RetryPolicy | None = None) -> BuildKitPusher:
        """``buildx build --push`` there, with our builder set up in the private config."""
        return BuildKitPusher(
            self._host, buildx=self._buildx, builder_args=self._builder_args(),
            temp_dir=self._temp_dir, on_config_dir=self._on_config_dir, retry=retry,
            prepare=self.point_buildx,
        )

    def argv(self, request: BuildRequest, config_dir: Path) -> list[str]:
        """``--load`` there (unless `load: false`, `outputs` or `call` say otherwise), the
        image ID in ``--iidfile``, with every tag."""
        load = ["--load"] if request.flags.loads_image else []
        tags = [arg for ref in request.tags for arg in ("--tag", ref)]
        argv = buildx_build_argv(
            self._buildx, request, [*load, "--iidfile", str(config_dir / "iid"), *tags],
            config_dir / "metadata.json",
        )
        return [argv[0], *self._builder_args(), *argv[1:]]

    def create_argv(self) -> list[str]:
        """``buildx create`` for our builder ([] for another engine: a context, written)."""
        if self.location.driver == "docker":
            return []
        args = [self._buildx, "create", "--name", self.builder_name]
        if self.location.driver == "docker-container":
            node = self._reached.container.removeprefix(BUILDX_CONTAINER_PREFIX)
            return [*args, "--driver", "docker-container", "--node", node]
        tls = self.location.tls
        for key, value in (
            ("cacert", tls.cacert), ("cert", tls.cert), ("key", tls.key),
            ("servername", tls.servername),
        ):
            if value:
                args += ["--driver-opt", f"{key}={value}"]
        return [*args, "--driver", "remote", self.location.address]

    def point_buildx(self, config_dir: Path, env: dict[str, str]) -> None:
        """buildx's state in a BUILDX_CONFIG that goes with the private DOCKER_CONFIG; there
        our builder: a docker context for another engine, else ``buildx create``."""
        env["BUILDX_CONFIG"] = str(config_dir / "buildx")
        if self.location.driver == "docker":
            # The docker driver builds only on the current context, which DOCKER_HOST
            # would pin to "default" (buildx: "use docker --context=… buildx").
            write_docker_context(config_dir, self.builder_name, self.location)
            env.pop("DOCKER_HOST", None)
            env["DOCKER_CONTEXT"] = self.builder_name
            return
        try:
            done = subprocess.run(
                self.create_argv(), env=env, capture_output=True, text=True, timeout=60,
                check=False, stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"Cannot run {self._buildx} create: {exc}") from exc
        if done.returncode != 0:
            raise BuildError.builder_unreachable(
                self.location.describe(),
                f"could not be set up as a buildx builder: {done.stderr.strip()}",
                hint=_HINTS[self.location.driver],
            )

    def build(self, request: BuildRequest, log: Log) -> BuildResult:
        """Build there and ``--load`` the image (a run that does not push)."""
        self.refuse_limits(request)
        log.info(f"BuildKit: {self._reached.detail}")
        run = run_buildx(
            lambda cfg: self.argv(request, cfg), request, log, buildx=self._buildx,
            docker_host=self._host, temp_dir=self._temp_dir, on_config_dir=self._on_config_dir,
            prepare=self.point_buildx,
        )
        image_id = run.iid or str(run.metadata.get("containerimage.config.digest") or "")
        if not image_id and request.flags.loads_image:
            raise BuildError("docker buildx did not report an image ID.", log_tail=run.tail)
        return BuildResult(image_id, self.name, tuple(run.tail), run.seconds, run.metadata)


def write_docker_context(config_dir: Path, name: str, location: BuilderLocation) -> Path:
    """A docker context ``name`` for another engine, in DOCKER_CONFIG ``config_dir``, as
    the docker CLI stores one (docker/cli context/store: the directory is the name's
    SHA-256); TLS files are linked, so the key is never copied. Returns its meta.json."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(mode=0o700, parents=True)
    endpoint = {"Host": location.address, "SkipTLSVerify": False}
    meta.write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}
    ), encoding="utf-8")
    tls = location.tls
    files = (("ca.pem", tls.cacert), ("cert.pem", tls.cert), ("key.pem", tls.key))
    if any(path for _, path in files):
        where = config_dir / "contexts" / "tls" / digest / "docker"
        where.mkdir(mode=0o700, parents=True)
        for file_name, path in files:
            if path:
                (where / file_name).symlink_to(path)
    return meta


def elsewhere_builder(
    location: BuilderLocation,
    client: Any,
    docker_host: str | None,
    *,
    buildx: Path | None,
    on_config_dir: Callable[[Path], None] | None = None,
) -> tuple[ElsewhereBuilder, str]:
    """The builder for ``location`` after checking it answers, and the reason for the log.

    Raises:
        BuildError: buildx is not installed, or the endpoint does not answer.
    """
    if buildx is None:
        raise BuildError(
            f"Input 'builder': building on {location.describe()} needs docker buildx, which "
            "is not installed.",
            hint="Install the docker buildx plugin (docker-buildx).",
        )
    reached = probe(location, client)
    builder = ElsewhereBuilder(
        location, reached, docker_host, buildx=buildx, on_config_dir=on_config_dir
    )
    return builder, builder.reason
