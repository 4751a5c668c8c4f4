"""The private DOCKER_CONFIG buildx gets: where it lives, how it is known to be ours, and how
it goes away, also after a run that was killed (issue 17 items 2 and 3).

- **Never inside the build context.** BuildKit sends the whole context, so a config under
  a ``$TMPDIR`` inside it would be baked into the image by ``COPY . /x``. The directory
  goes in the first temp location outside every context of the build.
- **Known by a marker, not by its contents.** buildx writes files of its own next to
  ``config.json`` (``.token_seed``, ``.token_seed.lock``, ``buildx/``, ...), so "holds only
  what we wrote" cannot tell ours from someone else's. ``MARKER`` (written first) names the
  run that made the directory: pid, its start time, boot ID, host and uid.
- **Swept when its run is dead.** A ``kill -9`` skips the ``finally``; the action's post
  step removes the directory on a runner, and every new run removes the directories of
  dead runs of this machine (same host and uid; the pid gone, or reused by another
  process, or another boot). A directory of a live run, another host (a container sharing
  the volume) or another user is left alone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.errors import BuildError

DIR_PREFIX = "ghdp-docker-"
MARKER = ".gh-docker-publish-run"
#: What private_docker_config wrote before the marker existed (older versions' directories).
LEGACY_ENTRIES = frozenset({"config.json", "cli-plugins", "iid", "metadata.json", "buildx"})


@dataclass(frozen=True)
class RunId:
    """Which process made a directory, precisely enough to tell when it is dead."""

    pid: int
    started: str  # /proc/<pid>/stat start time (clock ticks since boot); "" when unknown
    boot: str
    host: str
    uid: int

    @classmethod
    def current(cls) -> RunId:
        pid = os.getpid()
        return cls(pid, _start_time(pid), _boot_id(), platform.node(), os.getuid())

    @classmethod
    def read(cls, directory: Path) -> RunId | None:
        """The marker of ``directory``, or None when there is none we wrote."""
        try:
            data: Any = json.loads((directory / MARKER).read_text(encoding="utf-8"))
            return cls(int(data["pid"]), str(data["started"]), str(data["boot"]),
                       str(data["host"]), int(data["uid"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def is_dead(self) -> bool:
        """True only when this machine can tell: same host and user, and another boot, or
        the pid is gone or now another process. Unknown counts as alive."""
        me = RunId.current()
        if self.host != me.host or self.uid != me.uid:
            return False
        if self.boot and me.boot and self.boot != me.boot:
            return True
        if self.pid == me.pid:
            return bool(self.started) and self.started != me.started
        if not _pid_exists(self.pid):
            return True
        return bool(self.started) and _start_time(self.pid) not in ("", self.started)


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _home_cache() -> Path:
    return Path(os.environ.get("HOME", "~")).expanduser() / ".cache" / "gh-docker-publish"


def candidate_parents(preferred: str | None = None) -> list[Path]:
    """Where a private config may go, in order: the caller's choice, ``$TMPDIR`` (what
    ``tempfile`` picks), ``/dev/shm`` and ``$XDG_RUNTIME_DIR`` (memory: never on disk),
    ``/tmp``, and our cache directory in ``$HOME``."""
    # mkdtemp makes a unique 0700 directory, so shared temp dirs are safe here (S108).
    shared = ("/dev/shm", "/tmp")  # noqa: S108
    raw = [preferred, tempfile.gettempdir(), shared[0], os.environ.get("XDG_RUNTIME_DIR"),
           shared[1], str(_home_cache())]
    found: list[Path] = []
    for item in raw:
        if item and Path(item).is_absolute() and Path(item) not in found:
            found.append(Path(item))
    return found


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def choose_parent(contexts: Iterable[Path], preferred: str | None = None) -> Path:
    """The first candidate parent outside every build context (compared resolved, so
    symlinks and ``..`` cannot hide one inside).

    Raises:
        BuildError: every candidate is inside a context (a context of ``/``, say).
    """
    resolved = [Path(c).resolve() for c in contexts]
    for parent in candidate_parents(preferred):
        if parent == _home_cache():
            with contextlib.suppress(OSError):
                parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            continue
        real = parent.resolve()
        if not any(_inside(real, context) for context in resolved):
            return real
    raise BuildError(
        "Every temporary directory is inside the build context "
        f"({', '.join(str(c) for c in resolved)}); the registry login buildx needs would "
        "be sent with the context.",
        hint="Use a narrower 'context', or set TMPDIR to a directory outside it.",
    )


@contextlib.contextmanager
def private_docker_config(
    credentials: Sequence[Credential],
    parent: str | None = None,
    *,
    contexts: Sequence[Path] = (),
) -> Iterator[Path]:
    """A throw-away DOCKER_CONFIG (0700) holding only ``credentials``; removed on exit.

    buildx then never reads or writes the user's config.json (login-action's state
    problems, self-hosted runners keeping creds between jobs); its own state (builder
    instances, activity) lands here too and goes with it. Dead runs' directories are swept
    first; the new one goes outside ``contexts`` (the directories BuildKit will send).
    """
    sweep_dead(candidate_parents(parent))
    path = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=choose_parent(contexts, parent)))
    try:
        os.chmod(path, 0o700)
        _write_new(path / MARKER, json.dumps(asdict(RunId.current())))
        entries = {
            c.registry: {
                "auth": base64.b64encode(f"{c.username}:{c.secret.reveal()}".encode()).decode()
            }
            for c in credentials
        }
        _write_new(path / "config.json", json.dumps({"auths": entries}))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def why_not_ours(path: Path) -> str:
    """Why ``path`` is not a private config this action may remove ("" when it is).

    Ours: an absolute, real directory of this user named with our prefix, holding our
    marker, or (an older version's) nothing but the files those versions wrote."""
    if not path.name.startswith(DIR_PREFIX) or not path.is_absolute():
        return "is not a private DOCKER_CONFIG of this action"
    if path.is_symlink() or not path.is_dir():
        return "is not a directory"
    if path.lstat().st_uid != os.getuid():
        return "belongs to another user"
    if RunId.read(path) is not None:
        return ""
    unknown = sorted(p.name for p in path.iterdir() if p.name not in LEGACY_ENTRIES)
    if unknown:
        return f"holds files this action did not write ({', '.join(unknown)})"
    return ""


def remove(path: Path) -> None:
    """Remove a private config checked by ``why_not_ours``; links inside are unlinked,
    never followed (``cli-plugins`` may link to the user's plugins)."""
    cli_plugins = path / "cli-plugins"
    if cli_plugins.is_symlink():
        cli_plugins.unlink()
    shutil.rmtree(path)


def sweep_dead(parents: Iterable[Path]) -> list[Path]:
    """Remove the private configs of dead runs of this machine under ``parents``; return
    what was removed. Never raises: a sweep only helps."""
    removed = []
    for parent in parents:
        try:
            entries = [p for p in parent.iterdir() if p.name.startswith(DIR_PREFIX)]
        except OSError:
            continue
        for entry in entries:
            run = RunId.read(entry)
            if run is None or not run.is_dead() or why_not_ours(entry):
                continue
            with contextlib.suppress(OSError):
                remove(entry)
                removed.append(entry)
    return removed
