"""The Dockerfile and the build context on disk, read the way BuildKit reads them.

- The Dockerfile (issue 17 item 1). buildx sends the Dockerfile's directory as its own
  root and BuildKit resolves a symlinked Dockerfile *inside* that root: a link to
  ``real.Dockerfile`` or ``sub/real.Dockerfile`` works, one to ``/proc/self/environ`` or
  ``../x`` does not ("failed to read dockerfile"). Classic ``docker build`` refuses a
  default ``Dockerfile`` linked out of the context ("unable to open Dockerfile") but
  reads one given with ``-f`` (and prints its first word in the parse error). Found on
  the bed with docker 28.2, buildx 0.13 and Engine 20.10. We follow BuildKit, for both
  builders: never read what such a link points to; parsing it for base images printed
  the process environment (tokens in upper case) in the error.
- The classic builder's context (items 5-9): we tar it ourselves with BuildKit's rules
  (``core.dockerignore``) instead of docker-py's, so both builders put the same files into
  an image. The ignore file is ``<Dockerfile>.dockerignore`` next to the Dockerfile when
  present, else the context's ``.dockerignore`` (docs.docker.com/build/concepts/context/).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gh_docker_publish.core import dockerignore
from gh_docker_publish.errors import BuildError

_MAX_LINKS = 255  # Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS is 40)
_IGNORE = ".dockerignore"


def resolve_in(root: Path, name: str) -> tuple[Path | None, str]:
    """``root/name`` with symlinks followed but kept inside ``root``.

    Returns (the real path inside ``root``, or None when a link leads out of it: to an
    absolute path or above ``root``; then the target of the link that did, else "").
    BuildKit would look for such a target inside ``root`` instead; we refuse it, since
    what the link names is outside.
    """
    parts = [p for p in name.split("/") if p not in ("", ".")]
    done: list[str] = []
    followed = 0
    target = ""
    while parts:
        part = parts.pop(0)
        if part == "..":
            if not done:
                return None, target or ".."
            done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if not candidate.is_symlink():
            done.append(part)
            continue
        followed += 1
        target = os.readlink(candidate)
        if followed > _MAX_LINKS or target.startswith("/"):
            return None, target
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return root.joinpath(*done), ""


def resolve_dockerfile(path: Path) -> Path:
    """The file BuildKit reads for the Dockerfile ``path`` (as the user gave it).

    Raises:
        BuildError: ``path`` is a symlink that leads out of its own directory.
    """
    real, escaped = resolve_in(path.parent, path.name)
    if real is None:
        raise BuildError.dockerfile_link_outside(path, escaped)
    return real


def read_dockerfile(path: Path) -> str:
    """The Dockerfile's text for our own parsing; bytes that are not UTF-8 become U+FFFD
    (BuildKit reads bytes; a Latin-1 comment must not crash us, item 9)."""
    real = resolve_dockerfile(path)
    try:
        return real.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise BuildError(f"Cannot read the Dockerfile {path}: {exc.strerror or exc}") from exc


def ignore_file(context: Path, dockerfile: Path) -> Path | None:
    """The ignore file BuildKit uses for this Dockerfile (as given, not resolved: a link's
    target's own ``X.dockerignore`` is not the Dockerfile's), or None."""
    specific, _ = resolve_in(dockerfile.parent, dockerfile.name + _IGNORE)
    if specific is not None and specific.is_file():
        return specific
    shared, _ = resolve_in(context, _IGNORE)
    return shared if shared is not None and shared.is_file() else None


def context_matcher(context: Path, dockerfile: Path) -> dockerignore.Matcher:
    """The exclusion rules for ``context``.

    Raises:
        BuildError: an ignore file BuildKit would refuse (a bad pattern, ``!`` alone).
    """
    source = ignore_file(context, dockerfile)
    if source is None:
        return dockerignore.Matcher(())
    try:
        patterns = dockerignore.read_patterns(source.read_bytes())
        return dockerignore.Matcher.of(dockerignore.as_buildkit_sends(patterns))
    except dockerignore.PatternError as exc:
        raise BuildError.bad_ignore_file(source, str(exc)) from exc
    except OSError as exc:
        raise BuildError.bad_ignore_file(source, exc.strerror or str(exc)) from exc


@dataclass(frozen=True)
class Entry:
    """One path the context sends: relative ``/`` path, absolute path, its lstat."""

    path: str
    source: str
    st: os.stat_result


def walk(context: Path, matcher: dockerignore.Matcher) -> Iterator[Entry]:
    """The context's entries BuildKit sends, parents first, in name order; symlinks are
    sent as links. An excluded directory is entered only when an exception may include
    something below it; it is sent just before its first included descendant."""
    root = os.fspath(context)
    pending: list[Entry] = []  # excluded directories on the current path, not yet sent

    def visit(directory: str, prefix: str, parent: dockerignore.MatchInfo) -> Iterator[Entry]:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
        for item in entries:
            rel = prefix + item.name
            is_dir = item.is_dir(follow_symlinks=False)  # d_type: no stat for what is skipped
            excluded, info = matcher.excludes(rel, parent) if matcher.patterns else (False, ())
            if excluded and not (is_dir and matcher.may_include_below(rel)):
                continue
            entry = Entry(rel, item.path, item.stat(follow_symlinks=False))
            if excluded:  # a directory an exception may reach into
                pending.append(entry)
                yield from visit(item.path, rel + "/", info)
                if pending and pending[-1] is entry:
                    pending.pop()
                continue
            yield from pending
            pending.clear()
            yield entry
            if is_dir:
                yield from visit(item.path, rel + "/", info)

    yield from visit(root, "", ())


def _tar_info(entry: Entry, links: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    """A tar header like the docker CLI's: owner root (ChownOpts 0:0), real mode and mtime."""
    st = entry.st
    info = tarfile.TarInfo(entry.path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFREG:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[key]
            return info
        if st.st_nlink > 1:
            links[key] = entry.path
        info.size = st.st_size
    elif kind == stat.S_IFDIR:
        info.type = tarfile.DIRTYPE
    elif kind == stat.S_IFLNK:
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(entry.source)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif kind == stat.S_IFIFO:
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets: neither tar nor BuildKit sends them
    return info


def _daemon_ignore(
    sent: dict[str, int], dockerfile_name: str, context: Path
) -> tuple[bytes | None, bool]:
    """What the classic daemon must find in the tar's ``.dockerignore``: (content, whether
    we write it), content None for no file.

    The daemon reads the tar's ``.dockerignore`` (a link only inside the tar) and deletes
    ``.dockerignore`` and the Dockerfile when it matches them (moby builder/remotecontext
    ``removeDockerfile``); it filters nothing else. Lines are appended (as the docker CLI
    appends its ``.dockerfile.<id>``) so it deletes exactly what BuildKit would not send.

    Raises:
        BuildError: no content can get it right (``.dockerignore`` is a link we cannot
            write through).
    """
    kind = sent.get(_IGNORE)
    writable = kind is None or kind == stat.S_IFREG
    content = b""
    if kind == stat.S_IFREG:
        content = (context / _IGNORE).read_bytes()  # a regular file: no link to follow
    elif kind is not None:
        real, _ = resolve_in(context, _IGNORE)
        if real is not None and sent.get(os.path.relpath(real, context)) == stat.S_IFREG:
            content = real.read_bytes()  # what the daemon reads through the link
    original = content
    wanted = {_IGNORE: kind is None, dockerfile_name: dockerfile_name not in sent}
    if kind is None and not wanted[dockerfile_name]:
        return None, False  # nothing to delete: no .dockerignore at all
    for name, delete in wanted.items():
        if _daemon_deletes(content, name) != delete:
            line = ("!" if not delete else "") + dockerignore.escape(name)
            sep = b"" if not content or content.endswith(b"\n") else b"\n"
            content += sep + os.fsencode(line) + b"\n"
    changed = content != original or kind is None
    if changed and not writable:
        raise BuildError.classic_context_mismatch(
            dockerfile_name, "the context's .dockerignore is a link, which takes no lines"
        )
    if any(_daemon_deletes(content, name) != delete for name, delete in wanted.items()):
        raise BuildError.classic_context_mismatch(
            dockerfile_name, "no pattern matches that file name exactly"
        )
    return content, changed


def _daemon_deletes(content: bytes, name: str) -> bool:
    try:
        matcher = dockerignore.Matcher.of(dockerignore.read_patterns(content))
    except dockerignore.PatternError:
        return False  # the daemon ignores pattern errors here
    return matcher.excludes(name)[0]


def write_context_tar(context: Path, dockerfile: Path, out: IO[bytes]) -> str:
    """Write the classic builder's context tar of ``context`` to ``out``; return the
    Dockerfile's name inside it (for the ``dockerfile`` build parameter).

    The files are those BuildKit would send. The Dockerfile goes in under its own path
    when BuildKit sends it as a regular file, else (excluded, a link, outside the
    context) as ``.dockerfile.<digest>`` holding what ``read_dockerfile`` read, which the
    daemon then deletes.
    """
    context = context.absolute()
    dockerfile = dockerfile.absolute()
    matcher = context_matcher(context, dockerfile)
    sent: dict[str, int] = {}  # path -> file type (stat.S_IFMT)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for entry in walk(context, matcher):
            info = _tar_info(entry, links)
            if info is None:
                continue
            sent[entry.path] = stat.S_IFMT(entry.st.st_mode)
            if info.isreg():
                # O_NOFOLLOW: a file swapped for a link since the walk is not read.
                fd = os.open(entry.source, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
        name = os.path.relpath(dockerfile, context)
        if sent.get(name) != stat.S_IFREG:
            data = resolve_dockerfile(dockerfile).read_bytes()
            name = ".dockerfile." + hashlib.sha256(data).hexdigest()[:20]
            _add_bytes(tar, name, data)
        ignore, write = _daemon_ignore(sent, name, context)
        if ignore is not None and write:
            _add_bytes(tar, _IGNORE, ignore)  # a second entry replaces the first on unpack
    return name


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a file we made; mtime 0 keeps the tar the same for the same inputs."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, 0
    tar.addfile(info, io.BytesIO(data))
