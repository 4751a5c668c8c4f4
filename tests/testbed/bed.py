"""Bring the test bed up or down: Docker Engines, registry, GitHub stand-in, base images,
and each engine's BuildKit at a tcp:// address (tests/testbed/buildkit.py).

``up()`` starts every engine of ``engines.selected()`` (e20-classic, e28-classic,
e28-containerd; tests/testbed/engines.py) and loads the base images into each; one registry,
stand-in and set of GHES registries serve them all. It is idempotent and cheap when
everything recorded still answers (a ping each and two image inspections per engine).
Processes it starts are detached and recorded in ``STATE/state.json`` with what identifies
them (their command lines name files under the state dir), so ``down()`` stops exactly
those, and a later ``up()`` after the processes were killed (a new CI step, a crashed
session) starts them again instead of trusting stale pids.
Consumers read ``STATE/env`` (``KEY=VALUE`` lines) or use ``tests/testbed/fixtures.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests

from . import buildkit, daemon, engines, ghes, images, registry
from .procs import (
    TestbedError,
    cmdline,
    free_port,
    locked,
    owned,
    port_in_use,
    spawn,
    stop,
    wait_for,
)

DEFAULT_DIR = "/var/tmp/gh-docker-publish-testbed"
REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN_TIMEOUT = 20.0
SERVER_URL = "https://github.com"


@dataclass(frozen=True)
class EngineInfo:
    """One running engine of the bed (``fixtures.Engine`` adds its docker client)."""

    name: str  # e20-classic | e28-classic | e28-containerd
    docker_host: str
    version: str  # the major.minor its ServerVersion starts with
    containerd_store: bool
    started_by_us: bool


@dataclass(frozen=True)
class Bed:
    """The bed as one engine sees it: ``docker_host`` is ``engine``'s (``on(name)`` gives
    the same bed on another engine); the registry and stand-in are shared."""

    docker_host: str
    docker_started_by_us: bool
    registry: str  # host:port
    github_url: str
    state_dir: Path
    registry_log: Path
    standin_log: Path
    signing_key: Path
    signing_cert: Path
    cache_dir: Path
    busybox_image: str = images.BUSYBOX
    python_image: str = images.PYTHON
    ghes_port: int = 0  # the GHES test registries' common port (tests/testbed/ghes.py)
    engines: tuple[EngineInfo, ...] = ()
    engine: str = ""  # the name of the engine docker_host belongs to
    docker_config: Path | None = None  # DOCKER_CONFIG whose cli-plugins has buildx 0.29
    buildx: Path | None = None
    #: Each engine's embedded BuildKit at tcp:// addresses (tests/testbed/buildkit.py).
    buildkit: tuple[buildkit.Endpoints, ...] = ()
    buildkit_tls: buildkit.TLSFiles | None = None
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def on(self, name: str) -> Bed:
        """This bed with ``docker_host`` (and ``engine``) of the engine called ``name``."""
        for info in self.engines:
            if info.name == name:
                return replace(
                    self,
                    docker_host=info.docker_host,
                    docker_started_by_us=info.started_by_us,
                    engine=name,
                )
        raise TestbedError(f"engine {name} is not up (TESTBED_ENGINES?); up: {self.engine_names}")

    @property
    def engine_names(self) -> list[str]:
        return [info.name for info in self.engines]

    def engine_info(self) -> EngineInfo:
        return next(info for info in self.engines if info.name == self.engine)

    def buildkit_endpoints(self) -> buildkit.Endpoints:
        """This engine's BuildKit for buildx's remote driver (plain and TLS addresses)."""
        for endpoints in self.buildkit:
            if endpoints.engine == self.engine:
                return endpoints
        raise TestbedError(f"no BuildKit proxy for engine {self.engine} (its socket is not unix?)")

    def env(self) -> dict[str, str]:
        """``DOCKER_HOST`` is the first engine's; ``TESTBED_DOCKER_HOST_<ENGINE>`` each one's."""
        return {
            "DOCKER_HOST": self.docker_host,
            "DOCKER_CONFIG": str(self.docker_config or ""),
            "TESTBED_ENGINES": ",".join(self.engine_names),
            **{engines.BY_NAME[i.name].env_key: i.docker_host for i in self.engines},
            "TESTBED_BUILDX": str(self.buildx or ""),
            "TESTBED_DIR": str(self.state_dir),
            "TESTBED_REGISTRY": self.registry,
            "TESTBED_GITHUB_URL": self.github_url,
            "TESTBED_REGISTRY_LOG": str(self.registry_log),
            "TESTBED_STANDIN_LOG": str(self.standin_log),
            "TESTBED_SIGNING_KEY": str(self.signing_key),
            "TESTBED_SIGNING_CERT": str(self.signing_cert),
            "TESTBED_CACHE": str(self.cache_dir),
            "TESTBED_DOCKER_STARTED": "1" if self.docker_started_by_us else "0",
            "TESTBED_BUSYBOX_IMAGE": self.busybox_image,
            "TESTBED_PYTHON_IMAGE": self.python_image,
            "TESTBED_GHES_PORT": str(self.ghes_port),
            **{k: v for endpoints in self.buildkit for k, v in endpoints.env().items()},
            "TESTBED_BUILDKIT_TLS_DIR": str(self.buildkit_tls.ca.parent if self.buildkit_tls
                                            else ""),
        }


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("TESTBED_DIR") or DEFAULT_DIR)


def up(environ: Mapping[str, str] | None = None) -> Bed:
    env = dict(os.environ if environ is None else environ)
    root = state_dir(env)
    root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with locked(root / "lock"):
        state = _load_state(root)

        t = time.monotonic()
        cache = images.cache_dir(env)
        tree = engines.sid_tree(cache)
        docker_config = engines.docker_config(root, tree)
        timings["sid binaries"] = time.monotonic() - t
        ghes_port = ghes.choose_port(state, root / "ghes")
        ghes_names = tuple(f"{name}:{ghes_port}" for r in ghes.REGISTRIES for name in r.names)
        running: list[EngineInfo] = []
        for spec in engines.selected(env):
            t = time.monotonic()
            keys = _engine_keys(spec)
            dockerd = daemon.ensure(
                spec,
                root / spec.dir_name,
                env,
                _pid(state, keys["dockerd"]),
                tree=tree,
                recorded_containerd_pid=_pid(state, keys["containerd"]),
                insecure_names=ghes_names,
            )
            # `dockerd_pid` records *our* dockerd only; a run that uses someone else's daemon
            # (DOCKER_HOST) leaves it alone, so `down` can still stop ours later.
            if dockerd.started_by_us:
                state[keys["dockerd"]] = dockerd.pid
            if dockerd.containerd_pid:
                state[keys["containerd"]] = dockerd.containerd_pid
            state[keys["host"]] = dockerd.host
            _save_state(root, state)
            running.append(
                EngineInfo(
                    spec.name, dockerd.host, spec.version, spec.containerd_store,
                    dockerd.started_by_us,
                )
            )
            timings[f"engine {spec.name}"] = time.monotonic() - t

        t = time.monotonic()
        key, cert = _signing_pair(root / "standin")
        reg_port, gh_port = _ports(env, state, root)
        gh_pid = _ensure_standin(
            root / "standin", gh_port, reg_port, key, cert, _pid(state, "standin_pid"),
            ghes_port,
        )
        state.update(standin_pid=gh_pid, github_port=gh_port, registry_port=reg_port)
        _save_state(root, state)
        reg_pid = registry.ensure(
            root / "registry",
            port=reg_port,
            github_port=gh_port,
            cert=cert,
            recorded_pid=_pid(state, "registry_pid"),
        )
        state.update(registry_pid=reg_pid)
        _save_state(root, state)
        _ensure_ghes(root, env, state, ghes_port, gh_port, cert)
        buildkit_endpoints = _ensure_buildkit(root, state, running)
        timings["services"] = time.monotonic() - t

        t = time.monotonic()
        for info in running:
            client = docker_client(info.docker_host)
            try:
                reports = images.ensure_all(client, env)
                ghes.wait_until_daemon_resolves(client, ghes_port)
            finally:
                client.close()
            for report in reports:
                timings[f"image {report.name} {info.name} ({report.action})"] = report.seconds
        timings["images"] = time.monotonic() - t

        first = running[0]
        bed = Bed(
            docker_host=first.docker_host,
            docker_started_by_us=first.started_by_us,
            registry=f"127.0.0.1:{reg_port}",
            github_url=f"http://127.0.0.1:{gh_port}",
            state_dir=root,
            registry_log=registry.paths(root / "registry")["log"],
            standin_log=root / "standin" / "standin.log",
            signing_key=key,
            signing_cert=cert,
            cache_dir=images.cache_dir(env),
            ghes_port=ghes_port,
            engines=tuple(running),
            engine=first.name,
            docker_config=docker_config,
            buildx=tree.buildx,
            buildkit=buildkit_endpoints,
            buildkit_tls=buildkit.tls_files(root / "buildkit"),
            timings=timings,
        )
        _write_env(root, bed.env())
        return bed


def down(environ: Mapping[str, str] | None = None, *, purge: bool = False) -> list[str]:
    """Stop what ``up`` started (never a daemon it found running). Returns what was stopped."""
    env = dict(os.environ if environ is None else environ)
    root = state_dir(env)
    if not root.exists():
        return []
    stopped: list[str] = []
    with locked(root / "lock"):
        state = _load_state(root)
        if stop(_pid(state, "standin_pid"), str(root / "standin")):
            stopped.append("github stand-in")
        if buildkit.shutdown(root / "buildkit", _pid(state, "buildkit_pid")):
            stopped.append("BuildKit proxy")
        state.pop("buildkit_pid", None)
        if registry.shutdown(root / "registry", _pid(state, "registry_pid")):
            stopped.append("registry")
        for ghes_registry in ghes.REGISTRIES:
            pid_key = f"ghes_{ghes_registry.key}_pid"
            if registry.shutdown(root / "ghes" / ghes_registry.key, _pid(state, pid_key)):
                stopped.append(f"GHES registry {ghes_registry.service}")
            state.pop(pid_key, None)
        with contextlib.suppress(OSError):
            if ghes.update_hosts(ghes.hosts_path(env), str(root), add=False):
                stopped.append("GHES /etc/hosts entries")
        # Only a dockerd whose command line names our data-root: never one we did not start.
        # Every engine, not only the selected ones: a bed once up with more is stopped whole.
        for spec in engines.ENGINES:
            keys = _engine_keys(spec)
            if daemon.shutdown(
                root / spec.dir_name, _pid(state, keys["dockerd"]), env,
                _pid(state, keys["containerd"]),
            ):
                stopped.append(f"dockerd {spec.name}")
            for key in keys.values():
                state.pop(key, None)
        if daemon.shutdown(root / daemon.OTHER_ENGINE, None, env):
            stopped.append("second dockerd")
        for key in ("standin_pid", "registry_pid"):
            state.pop(key, None)
        _save_state(root, state)
        (root / "env").unlink(missing_ok=True)
    if purge:
        images._remove_tree(root)
    return stopped


def load_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``KEY=VALUE`` lines ``up`` recorded, or {} if the bed was never brought up."""
    path = state_dir(environ) / "env"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def docker_client(host: str, timeout: int = 300):  # type: ignore[no-untyped-def]
    import docker

    return docker.DockerClient(base_url=host, version="auto", timeout=timeout)


# --- the GitHub stand-in -------------------------------------------------------------------


def _ensure_ghes(
    root: Path,
    env: Mapping[str, str],
    state: dict[str, object],
    port: int,
    github_port: int,
    cert: Path,
) -> None:
    """The GHES test registries and their /etc/hosts names (tests/testbed/ghes.py)."""
    for ghes_registry in ghes.REGISTRIES:
        pid_key = f"ghes_{ghes_registry.key}_pid"
        state[pid_key] = registry.ensure(
            root / "ghes" / ghes_registry.key,
            port=port,
            github_port=github_port,
            cert=cert,
            recorded_pid=_pid(state, pid_key),
            host=ghes_registry.address,
            service=ghes_registry.service,
        )
    state["ghes_port"] = port
    _save_state(root, state)
    try:
        ghes.update_hosts(ghes.hosts_path(env), str(root), add=True)
    except OSError as exc:
        raise TestbedError(
            f"cannot add the GHES test host names to {ghes.hosts_path(env)}: {exc} "
            "(the bed needs root for this, as for dockerd)"
        ) from exc


def _ensure_buildkit(
    root: Path, state: dict[str, object], running: list[EngineInfo]
) -> tuple[buildkit.Endpoints, ...]:
    """The proxy to every engine's BuildKit reached by a unix socket (tests/testbed/buildkit.py)."""
    sockets = {
        info.name: info.docker_host.removeprefix("unix://")
        for info in running if info.docker_host.startswith("unix://")
    }
    recorded = state.get("buildkit_ports")
    pid, endpoints = buildkit.ensure(
        root / "buildkit", sockets, _pid(state, "buildkit_pid"),
        recorded if isinstance(recorded, dict) else {},
    )
    state["buildkit_pid"] = pid
    state["buildkit_ports"] = {
        e.engine: [int(e.plain.rpartition(":")[2]), int(e.tls.rpartition(":")[2])]
        for e in endpoints
    }
    _save_state(root, state)
    return endpoints


def _standin_argv(port: int, reg_port: int, key: Path, cert: Path, ghes_port: int) -> list[str]:
    return [
        sys.executable, "-m", "tests.testbed.standin",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--key", str(key),
        "--cert", str(cert),
        "--service", registry.SERVICE,
        "--issuer", registry.ISSUER,
        "--registry", f"http://127.0.0.1:{reg_port}",
        "--server-url", SERVER_URL,
        *ghes.standin_args(ghes_port),
    ]  # fmt: skip


def standin_answers(port: int, timeout: float = 2.0) -> bool:
    try:
        r = requests.get(f"http://127.0.0.1:{port}/_testbed/state", timeout=timeout)
    except requests.RequestException:
        return False
    return r.status_code == 200


def _ensure_standin(
    root: Path, port: int, reg_port: int, key: Path, cert: Path, pid: int | None, ghes_port: int
) -> int:
    argv = _standin_argv(port, reg_port, key, cert, ghes_port)
    if pid and owned(pid, str(key)) and cmdline(pid)[1:] == argv[1:] and standin_answers(port):
        return pid
    stop(pid, str(root))
    log = root / "standin.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    proc = spawn(argv, log, env=env, cwd=REPO_ROOT)
    wait_for(
        lambda: standin_answers(port, timeout=1),
        what=f"GitHub stand-in on 127.0.0.1:{port} (log {log})",
        timeout=STANDIN_TIMEOUT,
        proc=proc,
        log_path=log,
    )
    return proc.pid


def _signing_pair(root: Path) -> tuple[Path, Path]:
    key, cert = root / "key.pem", root / "cert.pem"
    if not (key.exists() and cert.exists()):
        from .standin import make_signing_cert

        root.mkdir(parents=True, exist_ok=True)
        make_signing_cert(key, cert)
        key.chmod(0o600)
    return key, cert


# --- ports, state, lock --------------------------------------------------------------------


def _ports(env: Mapping[str, str], state: dict[str, object], root: Path) -> tuple[int, int]:
    """Registry and stand-in ports: from env, else as recorded if still ours or free, else new."""
    chosen: list[int] = []
    for env_key, state_key, pid_key, marker in (
        ("TESTBED_REGISTRY_PORT", "registry_port", "registry_pid", root / "registry"),
        ("TESTBED_GITHUB_PORT", "github_port", "standin_pid", root / "standin"),
    ):
        if env.get(env_key):
            chosen.append(int(env[env_key]))
            continue
        recorded = state.get(state_key)
        pid = state.get(pid_key)
        if isinstance(recorded, int) and (
            not port_in_use(recorded) or (isinstance(pid, int) and owned(pid, str(marker)))
        ):
            chosen.append(recorded)
            continue
        port = free_port()
        while port in chosen:
            port = free_port()
        chosen.append(port)
    if chosen[0] == chosen[1]:
        raise TestbedError("TESTBED_REGISTRY_PORT and TESTBED_GITHUB_PORT must differ")
    return chosen[0], chosen[1]


def _engine_keys(spec: engines.EngineSpec) -> dict[str, str]:
    """state.json keys of an engine (e20-classic keeps today's ``dockerd_pid``)."""
    prefix = "" if spec.name == "e20-classic" else spec.name.replace("-", "_") + "_"
    return {
        "dockerd": f"{prefix}dockerd_pid",
        "containerd": f"{prefix}containerd_pid",
        "host": f"{prefix}docker_host",
    }


def _pid(state: Mapping[str, object], key: str) -> int | None:
    value = state.get(key)
    return value if isinstance(value, int) else None


def _load_state(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(root: Path, state: dict[str, object]) -> None:
    tmp = root / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(root / "state.json")


def _write_env(root: Path, values: dict[str, str]) -> None:
    tmp = root / "env.tmp"
    tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    tmp.replace(root / "env")



__all__ = ["Bed", "TestbedError", "down", "load_env", "state_dir", "up"]
