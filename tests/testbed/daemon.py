"""The bed's Docker Engine: use one that answers, else start Debian's dockerd 20.10.

Order: ``DOCKER_HOST`` (if set), then ``/var/run/docker.sock``; a daemon found that way is
used and never stopped. Otherwise dockerd runs with everything under ``STATE/docker``
(data-root, exec-root, socket, pidfile, log, an empty ``daemon.json`` so the host's
``/etc/docker/daemon.json`` cannot interfere) and its own bridge (``gdptb`` + a hash of the
state dir, in 172.30.200-249.0/24; ``TESTBED_BRIDGE_CIDR`` overrides): two dockerds sharing
``docker0`` would hand out the same container addresses, and this machine may already run one.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from .procs import TestbedError, log_tail, owned, pid_alive, read_pid, spawn, stop, wait_for
from .tls import TLSFiles, ensure_tls_files

SYSTEM_SOCKET = "unix:///var/run/docker.sock"
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class DaemonPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"

    @property
    def socket(self) -> Path:
        return self.root / "run" / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "run" / "docker.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def config(self) -> Path:
        return self.root / "daemon.json"

    @property
    def bridge(self) -> str:
        return "gdptb" + hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    def default_cidr(self) -> str:
        # A /24 unlikely to collide with docker0 (172.17/16), user networks or the host's LAN.
        n = 200 + int(hashlib.sha256(str(self.root).encode()).hexdigest()[8:10], 16) % 50
        return f"172.30.{n}.1/24"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


@dataclass(frozen=True)
class Daemon:
    host: str
    started_by_us: bool
    pid: int | None
    log: Path | None


def ping(host: str, timeout: float = 3.0) -> bool:
    """True if a Docker daemon answers ``/_ping`` at ``host`` (unix:// or tcp://)."""
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(host[len("unix://") :])
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = b""
                while chunk := s.recv(4096):
                    reply += chunk
            return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]
        if host.startswith("tcp://"):
            return requests.get(f"http://{host[len('tcp://') :]}/_ping", timeout=timeout).ok
    except (OSError, requests.RequestException):
        return False
    return False


def ensure(root: Path, environ: dict[str, str], recorded_pid: int | None) -> Daemon:
    paths = DaemonPaths(root)
    ours = paths.host
    requested = environ.get("DOCKER_HOST", "").strip()
    if requested and requested != ours:
        if ping(requested):
            return Daemon(requested, False, None, None)
        raise TestbedError(
            f"DOCKER_HOST={requested} does not answer /_ping. Start that daemon, or unset "
            "DOCKER_HOST to let the test bed start its own dockerd."
        )
    if not requested and ping(SYSTEM_SOCKET):
        return Daemon(SYSTEM_SOCKET, False, None, None)

    pid = recorded_pid or read_pid(paths.pidfile)
    if ping(ours) and owned(pid, str(paths.data)):
        return Daemon(ours, True, pid, paths.log)
    return _start(paths, environ, pid)


#: Where the second engine lives under the bed's state dir (builder: unix://…, issue 13).
OTHER_ENGINE = "engine-b"


@dataclass(frozen=True)
class OtherEngine:
    """The second dockerd: its socket, and a TLS-verified TCP listener on loopback."""

    daemon: Daemon
    tcp: str  # tcp://127.0.0.1:PORT, clients need tls's CA and client certificate
    tls: TLSFiles


def ensure_other(state: Path, environ: dict[str, str]) -> OtherEngine:
    """A second dockerd of ours (its own data-root, socket and bridge), for building on
    "another Docker Engine"; reused while it answers, stopped by ``down``."""
    paths = DaemonPaths(state / OTHER_ENGINE)
    tls = ensure_tls_files(paths.root / "tls")
    port_file = paths.root / "tcp-port"
    pid = read_pid(paths.pidfile)
    if ping(paths.host) and owned(pid, str(paths.data)) and port_file.exists():
        return OtherEngine(Daemon(paths.host, True, pid, paths.log),
                           f"tcp://127.0.0.1:{port_file.read_text().strip()}", tls)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tcp = [
        "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(tls.ca),
        "--tlscert", str(tls.server_cert), "--tlskey", str(tls.server_key),
    ]
    started = _start(paths, environ, pid, extra_args=tcp)
    port_file.write_text(f"{port}\n")
    return OtherEngine(started, f"tcp://127.0.0.1:{port}", tls)


def _start(
    paths: DaemonPaths, environ: dict[str, str], old_pid: int | None,
    extra_args: list[str] | None = None,
) -> Daemon:
    if shutil.which("dockerd", path=_path(environ)) is None:
        raise TestbedError(
            "no Docker daemon answers and dockerd is not installed: "
            "run `sudo scripts/install-testbed-deps.sh`, then `make testbed`"
        )
    if len(str(paths.socket)) > 100:
        raise TestbedError(
            f"socket path too long for a unix socket: {paths.socket} (set TESTBED_DIR)"
        )
    # An earlier dockerd of ours that no longer answers: stop it (it is ours: its command
    # line names our data-root). A pidfile whose process is gone is stale: dockerd refuses
    # to start while the pidfile names a live process, so remove pidfiles that are not ours.
    stop(old_pid, str(paths.data), timeout=30)
    for pidfile in (paths.pidfile, paths.exec_root / "containerd" / "containerd.pid"):
        pid = read_pid(pidfile)
        if pid is not None and not (pid_alive(pid) and owned(pid, str(paths.root))):
            pidfile.unlink(missing_ok=True)
    for d in (paths.data, paths.exec_root, paths.socket.parent):
        d.mkdir(parents=True, exist_ok=True)
    if not paths.config.exists():
        paths.config.write_text("{}\n")
    cidr = environ.get("TESTBED_BRIDGE_CIDR") or paths.default_cidr()
    _ensure_bridge(paths.bridge, cidr, environ)

    env = dict(environ)
    env["PATH"] = _path(environ)
    env.pop("DOCKER_HOST", None)
    argv = [
        "dockerd",
        "--config-file", str(paths.config),
        "--data-root", str(paths.data),
        "--exec-root", str(paths.exec_root),
        "--pidfile", str(paths.pidfile),
        "-H", paths.host,
        "--bridge", paths.bridge,
        *(extra_args or []),
    ]  # fmt: skip
    proc = spawn(argv, paths.log, env=env)
    wait_for(
        lambda: ping(paths.host, timeout=1),
        what=f"dockerd (log {paths.log})",
        timeout=START_TIMEOUT,
        proc=proc,
        log_path=paths.log,
    )
    return Daemon(paths.host, True, proc.pid, paths.log)


def _path(environ: dict[str, str]) -> str:
    # dockerd needs iptables, containerd, runc; root's sbin dirs are not always on PATH.
    parts = environ.get("PATH", "").split(":")
    for extra in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if extra not in parts:
            parts.append(extra)
    return ":".join(p for p in parts if p)


def _ensure_bridge(bridge: str, cidr: str, environ: dict[str, str]) -> None:
    if Path(f"/sys/class/net/{bridge}").exists():
        return
    ip = shutil.which("ip", path=_path(environ))
    if ip is None:
        raise TestbedError("`ip` not found: run `sudo scripts/install-testbed-deps.sh` (iproute2)")
    for cmd in (
        [ip, "link", "add", bridge, "type", "bridge"],
        [ip, "addr", "add", cidr, "dev", bridge],
        [ip, "link", "set", bridge, "up"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise TestbedError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")


def remove_bridge(bridge: str, environ: dict[str, str]) -> None:
    ip = shutil.which("ip", path=_path(environ))
    if ip and Path(f"/sys/class/net/{bridge}").exists():
        subprocess.run([ip, "link", "del", bridge], capture_output=True, check=False)


def shutdown(root: Path, pid: int | None, environ: dict[str, str]) -> bool:
    """Stop the dockerd we started (identified by its data-root). Returns True if stopped."""
    paths = DaemonPaths(root)
    pid = pid or read_pid(paths.pidfile)
    stopped = stop(pid, str(paths.data), timeout=40)
    if stopped:
        with contextlib.suppress(OSError):
            paths.pidfile.unlink(missing_ok=True)
        remove_bridge(paths.bridge, environ)
    return stopped


def describe_failure(root: Path) -> str:
    return log_tail(DaemonPaths(root).log)
