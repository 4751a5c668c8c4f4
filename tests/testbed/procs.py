"""Process and port helpers shared by the test bed's parts (daemon, registry, stand-in).

The bed's processes must outlive the command that started them (``python -m tests.testbed
up`` exits at once; a pytest session may start the bed and end before ``make testbed-down``),
so they run in their own session with output appended to a log file. Before a pid is
signalled its command line is checked for a marker (the bed's state directory), because a
pid recorded by an earlier, killed run may since belong to an unrelated process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# Popen objects of children started by this process: keeping them referenced avoids
# "subprocess is still running" ResourceWarnings when the objects would be collected.
_CHILDREN: list[subprocess.Popen[bytes]] = []


class TestbedError(RuntimeError):
    """The test bed could not be brought up (or down); the message says what to look at."""

    __test__ = False  # not a pytest test class


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` runs and is not a zombie (a dead child not yet reaped)."""
    if not pid or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state field follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def owned(pid: int | None, marker: str) -> bool:
    """True if ``pid`` is alive and its command line mentions ``marker``."""
    return pid_alive(pid) and any(marker in arg for arg in cmdline(pid or 0))


def spawn(
    argv: Sequence[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached (own session), appending stdout and stderr to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise TestbedError(
                f"{argv[0]} not found: install the test bed's dependencies "
                "(sudo scripts/install-testbed-deps.sh)"
            ) from exc
    _CHILDREN.append(proc)
    return proc


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``check`` until it is true; on timeout or early exit raise with the log's tail."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        exited = proc is not None and proc.poll() is not None
        if exited or time.monotonic() > deadline:
            reason = (
                f"exited with status {proc.returncode}"
                if exited and proc is not None
                else f"did not answer within {timeout:.0f} s"
            )
            tail = f"\n--- last lines of {log_path} ---\n{log_tail(log_path)}" if log_path else ""
            raise TestbedError(f"{what} {reason}{tail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def stop(pid: int | None, marker: str, *, timeout: float = 20.0) -> bool:
    """SIGTERM (then SIGKILL) ``pid`` if it is alive and ours (``marker`` in its command line).

    Returns True if a process was stopped.
    """
    if not owned(pid, marker):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    # Reap our own children so they do not linger as zombies; others are not ours to wait for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (created if missing): several pytest processes, or
    `make testbed` beside a running session, may bring the bed up at the same time."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
