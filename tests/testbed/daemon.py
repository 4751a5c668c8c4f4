"""The bed's Docker Engines (tests/testbed/engines.py): each its own dockerd, started here.

Each engine keeps everything under ``STATE/<dir>`` (``docker`` for e20-classic as before,
``docker-e28-classic``, ...): data-root, exec-root, socket, pidfile, log, and a
``daemon.json`` written by the bed so the host's ``/etc/docker/daemon.json`` cannot
interfere. Each has its own bridge (``gdptb`` + a hash of its dir) on a /24 in 172.30.0.0/16
that no interface of the host uses yet (chosen under a machine-wide lock; the hashed slot
first; ``TESTBED_BRIDGE_CIDR`` overrides it for e20-classic): two dockerds sharing
``docker0``, or two bridges on one subnet, would hand out the same container addresses.

e20-classic is the system's dockerd with the containerd it manages itself. The sid engines
get a containerd 2.1 of their own, started here before dockerd (``--containerd``), its
config, state and socket under the engine's dir too: dockerd 28 would otherwise connect to
a system containerd at /run/containerd/containerd.sock if one ran. A dockerd or containerd
killed with -9 is found dead by its next ``ensure`` and started again; one that still
answers and whose command line names our files is kept.

Firewall: Docker 28 keeps its bridges' rules in shared chains (DOCKER-FORWARD, DOCKER-CT,
DOCKER-BRIDGE) that every 28 daemon flushes when it starts, so two of them on one host (two
engines here, more with beds side by side) drop each other's forwarding: builds on the
first one lost DNS. The sid engines therefore run with ``"iptables": false`` and the bed
adds the three rules a bridge needs itself (masquerade its subnet, forward from it, and
replies to it), tagged with a comment naming the bridge, and removes them on ``down``.
20.10 keeps managing its own rules as before (its rules sit in FORWARD itself).

``DOCKER_HOST``, if set to something other than e20-classic's socket, replaces e20-classic
(used, never stopped; it must answer).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from .engines import BY_NAME, EngineSpec, SidTree
from .procs import TestbedError, log_tail, owned, pid_alive, read_pid, spawn, stop, wait_for
from .tls import TLSFiles, ensure_tls_files

START_TIMEOUT = 90.0
BRIDGES_LOCK = "/tmp/gh-docker-publish-testbed-bridges.lock"
BRIDGE_NET = ipaddress.ip_network("172.30.0.0/16")
#: The sid engines' containerd: CRI (Kubernetes) plugins are not needed and want CNI.
CONTAINERD_DISABLED = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.cri.v1.images",
    "io.containerd.cri.v1.runtime",
    "io.containerd.podsandbox.controller.v1.podsandbox",
    "io.containerd.sandbox.controller.v1.shim",
)


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
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "run" / "containerd.sock"

    @property
    def containerd_log(self) -> Path:
        return self.root / "containerd.log"

    @property
    def cidr_file(self) -> Path:
        return self.root / "bridge-cidr"

    @property
    def bridge(self) -> str:
        return "gdptb" + hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    def preferred_slot(self) -> int:
        return int(hashlib.sha256(str(self.root).encode()).hexdigest()[8:12], 16) % 256

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


@dataclass(frozen=True)
class Daemon:
    host: str
    started_by_us: bool
    pid: int | None
    log: Path | None
    containerd_pid: int | None = None


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


def _socket_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(path))
        return True
    except OSError:
        return False


def ensure(
    spec: EngineSpec,
    root: Path,
    environ: dict[str, str],
    recorded_pid: int | None,
    *,
    tree: SidTree,
    recorded_containerd_pid: int | None = None,
    insecure_names: tuple[str, ...] = (),
) -> Daemon:
    """``insecure_names``: ``host:port`` registries the containerd store must reach over
    plain HTTP (it does not resolve names to find them in 127.0.0.0/8 as the classic store
    does; tests/testbed/ghes.py)."""
    paths = DaemonPaths(root)
    ours = paths.host
    requested = environ.get("DOCKER_HOST", "").strip()
    if spec.name == "e20-classic" and requested and requested != ours:
        if ping(requested):
            return Daemon(requested, False, None, None)
        raise TestbedError(
            f"DOCKER_HOST={requested} does not answer /_ping. Start that daemon, or unset "
            "DOCKER_HOST to let the test bed start its own dockerd."
        )
    config = _daemon_config(spec, insecure_names)
    containerd_pid = None
    restart = False
    if spec.sid:
        containerd_pid, restart = _ensure_containerd(paths, tree, recorded_containerd_pid)
    pid = recorded_pid or read_pid(paths.pidfile)
    current = paths.config.read_text() if paths.config.exists() else None
    if not restart and current == config and ping(ours) and owned(pid, str(paths.data)):
        if spec.sid:  # three `iptables -C`: rules someone flushed come back
            _ensure_forwarding(paths, environ)
        return Daemon(ours, True, pid, paths.log, containerd_pid)
    return _start(spec, paths, environ, pid, config, tree, containerd_pid)


def _daemon_config(spec: EngineSpec, insecure_names: tuple[str, ...]) -> str:
    config: dict[str, object] = {}
    if spec.sid:
        # iptables: the bed's own rules (module docstring); no IPv6 NAT chains (not every
        # kernel here has ip6tables); the image store spelled out: 28's default is the
        # classic store, 29's the containerd one.
        config = {
            "iptables": False,
            "ip6tables": False,
            "features": {"containerd-snapshotter": spec.containerd_store},
        }
    if spec.containerd_store and insecure_names:
        config["insecure-registries"] = sorted(insecure_names)
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def _containerd_config(paths: DaemonPaths) -> str:
    disabled = ", ".join(f'"{p}"' for p in CONTAINERD_DISABLED)
    return (
        "version = 3\n"
        f'root = "{paths.root / "containerd" / "root"}"\n'
        f'state = "{paths.exec_root / "containerd-state"}"\n'
        f"disabled_plugins = [{disabled}]\n"
        f'[grpc]\n  address = "{paths.containerd_socket}"\n'
        f'[ttrpc]\n  address = "{paths.containerd_socket}.ttrpc"\n'
        '[debug]\n  address = ""\n'
        '[metrics]\n  address = ""\n'
    )


def _ensure_containerd(
    paths: DaemonPaths, tree: SidTree, recorded_pid: int | None
) -> tuple[int, bool]:
    """The engine's own containerd 2.1; returns its pid and whether it was (re)started (then
    dockerd must be restarted too: its connection and its containers' shims are gone)."""
    marker = str(paths.containerd_config)
    config = _containerd_config(paths)
    current = paths.containerd_config.read_text() if paths.containerd_config.exists() else None
    if (
        current == config
        and owned(recorded_pid, marker)
        and _socket_answers(paths.containerd_socket)
    ):
        assert recorded_pid is not None
        return recorded_pid, False
    stop(recorded_pid, marker, timeout=20)
    paths.containerd_socket.parent.mkdir(parents=True, exist_ok=True)
    paths.containerd_config.write_text(config)
    env = {"PATH": _path({"PATH": ":".join(tree.path_dirs)}), "HOME": str(paths.root)}
    proc = spawn([str(tree.containerd), "--config", marker], paths.containerd_log, env=env)
    wait_for(
        lambda: _socket_answers(paths.containerd_socket),
        what=f"containerd (log {paths.containerd_log})",
        timeout=START_TIMEOUT,
        proc=proc,
        log_path=paths.containerd_log,
    )
    return proc.pid, True


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
    spec = BY_NAME["e20-classic"]  # the system's dockerd, as before
    started = _start(spec, paths, environ, pid, _daemon_config(spec, ()), None, None,
                     extra_args=tcp)
    port_file.write_text(f"{port}\n")
    return OtherEngine(started, f"tcp://127.0.0.1:{port}", tls)


def _start(
    spec: EngineSpec,
    paths: DaemonPaths,
    environ: dict[str, str],
    old_pid: int | None,
    config: str,
    tree: SidTree | None,
    containerd_pid: int | None,
    extra_args: list[str] | None = None,
) -> Daemon:
    sid = tree if spec.sid else None
    dockerd = str(sid.dockerd) if sid else shutil.which("dockerd", path=_path(environ))
    if dockerd is None:
        raise TestbedError(
            "dockerd is not installed: run `sudo scripts/install-testbed-deps.sh`, then "
            "`make testbed`"
        )
    if len(str(paths.containerd_socket)) > 100:
        raise TestbedError(
            f"socket path too long for a unix socket: {paths.containerd_socket} (set TESTBED_DIR)"
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
    paths.config.write_text(config)
    cidr = (environ.get("TESTBED_BRIDGE_CIDR") if spec.name == "e20-classic" else None) or None
    _ensure_bridge(paths, cidr, environ)
    if spec.sid:
        _ensure_forwarding(paths, environ)

    env = dict(environ)
    env["PATH"] = _path({"PATH": ":".join(sid.path_dirs)} if sid else environ)
    env.pop("DOCKER_HOST", None)
    argv = [
        dockerd,
        "--config-file", str(paths.config),
        "--data-root", str(paths.data),
        "--exec-root", str(paths.exec_root),
        "--pidfile", str(paths.pidfile),
        "-H", paths.host,
        "--bridge", paths.bridge,
        *(extra_args or []),
    ]  # fmt: skip
    if spec.sid:
        argv += ["--containerd", str(paths.containerd_socket)]
    proc = spawn(argv, paths.log, env=env)
    wait_for(
        lambda: ping(paths.host, timeout=1),
        what=f"dockerd {spec.name} (log {paths.log})",
        timeout=START_TIMEOUT,
        proc=proc,
        log_path=paths.log,
    )
    return Daemon(paths.host, True, proc.pid, paths.log, containerd_pid)


def _path(environ: dict[str, str]) -> str:
    # dockerd needs iptables, containerd, runc; root's sbin dirs are not always on PATH.
    parts = environ.get("PATH", "").split(":")
    for extra in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if extra not in parts:
            parts.append(extra)
    return ":".join(p for p in parts if p)


def _ensure_bridge(paths: DaemonPaths, cidr: str | None, environ: dict[str, str]) -> None:
    ip = shutil.which("ip", path=_path(environ))
    if ip is None:
        raise TestbedError("`ip` not found: run `sudo scripts/install-testbed-deps.sh` (iproute2)")
    if Path(f"/sys/class/net/{paths.bridge}").exists():
        if not paths.cidr_file.exists():  # made by an older bed: read its address back
            out = subprocess.run(
                [ip, "-o", "-4", "addr", "show", "dev", paths.bridge],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            if "inet" in out:
                paths.cidr_file.write_text(out[out.index("inet") + 1] + "\n")
        return
    with open(BRIDGES_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # beds side by side pick their subnets one by one
        cidr = cidr or _free_cidr(ip, paths.preferred_slot())
        for cmd in (
            [ip, "link", "add", paths.bridge, "type", "bridge"],
            [ip, "addr", "add", cidr, "dev", paths.bridge],
            [ip, "link", "set", paths.bridge, "up"],
        ):
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise TestbedError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")
    paths.cidr_file.write_text(cidr + "\n")


def _free_cidr(ip: str, preferred: int) -> str:
    """A /24 of 172.30.0.0/16 that no interface or route of the host overlaps."""
    out = subprocess.run(
        [ip, "-o", "-4", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    out += subprocess.run(
        [ip, "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    used = []
    for word in out.split():
        with contextlib.suppress(ValueError):
            if "/" in word or word.count(".") == 3:
                used.append(ipaddress.ip_network(word, strict=False))
    subnets = list(BRIDGE_NET.subnets(new_prefix=24))
    for offset in range(len(subnets)):
        net = subnets[(preferred + offset) % len(subnets)]
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return f"{net.network_address + 1}/24"
    raise TestbedError(f"no free /24 left in {BRIDGE_NET} for a test-bed bridge")


def _forwarding_rules(paths: DaemonPaths) -> list[list[str]]:
    """What a bridge needs when dockerd leaves iptables alone: ``-t table CHAIN rule...``."""
    cidr = paths.cidr_file.read_text().strip()
    subnet = str(ipaddress.ip_network(cidr, strict=False))
    tag = ["-m", "comment", "--comment", f"gh-docker-publish testbed {paths.bridge}"]
    bridge = paths.bridge
    return [
        ["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, *tag, "-j", "MASQUERADE"],
        ["-t", "filter", "FORWARD", "-i", bridge, *tag, "-j", "ACCEPT"],
        ["-t", "filter", "FORWARD", "-o", bridge, "-m", "conntrack", "--ctstate",
         "RELATED,ESTABLISHED", *tag, "-j", "ACCEPT"],
    ]  # fmt: skip


def _ensure_forwarding(paths: DaemonPaths, environ: dict[str, str]) -> None:
    iptables = shutil.which("iptables", path=_path(environ))
    if iptables is None:
        raise TestbedError("`iptables` not found: run `sudo scripts/install-testbed-deps.sh`")
    for table_flag, table, chain, *rule in _forwarding_rules(paths):
        check = [iptables, table_flag, table, "-C", chain, *rule]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            continue
        # Inserted first: ahead of a DROP another daemon may append to the chain.
        add = [iptables, "-w", table_flag, table, "-I", chain, "1", *rule]
        out = subprocess.run(add, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise TestbedError(f"`{' '.join(add)}` failed: {out.stderr.strip()}")
    with contextlib.suppress(OSError):
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")


def _remove_forwarding(paths: DaemonPaths, environ: dict[str, str]) -> None:
    iptables = shutil.which("iptables", path=_path(environ))
    if iptables is None or not paths.cidr_file.exists():
        return
    for table_flag, table, chain, *rule in _forwarding_rules(paths):
        delete = [iptables, "-w", table_flag, table, "-D", chain, *rule]
        while subprocess.run(delete, capture_output=True, check=False).returncode == 0:
            pass


def remove_bridge(bridge: str, environ: dict[str, str]) -> None:
    ip = shutil.which("ip", path=_path(environ))
    if ip and Path(f"/sys/class/net/{bridge}").exists():
        subprocess.run([ip, "link", "del", bridge], capture_output=True, check=False)


def shutdown(
    root: Path, pid: int | None, environ: dict[str, str], containerd_pid: int | None = None
) -> bool:
    """Stop the dockerd we started (identified by its data-root), then its containerd if the
    bed started one. Returns True if dockerd was stopped."""
    paths = DaemonPaths(root)
    pid = pid or read_pid(paths.pidfile)
    stopped = stop(pid, str(paths.data), timeout=40)
    if stopped:
        with contextlib.suppress(OSError):
            paths.pidfile.unlink(missing_ok=True)
    stop(containerd_pid, str(paths.containerd_config), timeout=20)
    if stopped or not pid_alive(pid):
        _remove_forwarding(paths, environ)
        remove_bridge(paths.bridge, environ)
    return stopped


def describe_failure(root: Path) -> str:
    return log_tail(DaemonPaths(root).log)
