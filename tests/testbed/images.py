"""Base images for the bed, made locally (no registry on the internet is reachable here).

- ``testbed/busybox:latest``: the host's static busybox plus its applet symlinks (~2 MB);
  for tests that only need *an* image.
- ``testbed/python:3``: ``debootstrap --variant=minbase`` of Debian trixie (Python 3.13)
  with python3, python3-venv and ca-certificates, imported with ``docker import``.

Each image is kept as a ``docker save`` tarball in the cache dir (``TESTBED_CACHE``, default
``/var/cache/gh-docker-publish-testbed``) named after a hash of its recipe and inputs, with
the image id next to it, one per image store (``.id``: classic, where the id is the
config's digest; ``.containerd.id``: the containerd store, where it is the manifest's). Later
runs keep the image if the daemon already has that id, else ``docker load`` the tarball
(seconds) into each engine; only a missing tarball triggers a build.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from .procs import TestbedError, locked

BUSYBOX = "testbed/busybox:latest"
PYTHON = "testbed/python:3"
DEFAULT_CACHE = "/var/cache/gh-docker-publish-testbed"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"  # Python 3.13
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The host's CA bundle. On this project's machines all egress goes through a
# TLS-intercepting proxy whose CA is only in the host's bundle (added from
# /usr/local/share/ca-certificates/); without it `pip install` inside `docker build` fails
# certificate verification. pip ignores the system store (it uses certifi), hence PIP_CERT.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_LOCAL_CAS = Path("/usr/local/share/ca-certificates")
RECIPE_VERSION = "1"


@dataclass(frozen=True)
class ImageReport:
    name: str
    action: str  # "present" | "loaded" | "built"
    seconds: float


def cache_dir(environ: dict[str, str]) -> Path:
    return Path(environ.get("TESTBED_CACHE") or DEFAULT_CACHE)


def ensure_all(client: docker.DockerClient, environ: dict[str, str]) -> list[ImageReport]:
    cache = cache_dir(environ)
    cache.mkdir(parents=True, exist_ok=True)
    mirror = environ.get("TESTBED_DEBIAN_MIRROR") or DEFAULT_MIRROR
    store = ".containerd" if _containerd_store(client) else ""
    with locked(cache / ".lock"):
        return [
            _ensure(client, cache, BUSYBOX, _busybox_key(), _build_busybox, store),
            _ensure(
                client,
                cache,
                PYTHON,
                _python_key(mirror),
                lambda c, work: _build_python(c, work, mirror),
                store,
            ),
        ]


def _containerd_store(client: docker.DockerClient) -> bool:
    status = client.info().get("DriverStatus") or []
    return any("containerd.snapshotter" in str(pair) for pair in status)


def _ensure(
    client: docker.DockerClient,
    cache: Path,
    name: str,
    key: str,
    build: Callable[[docker.DockerClient, Path], None],
    store: str = "",
) -> ImageReport:
    started = time.monotonic()
    stem = name.replace("/", "-").replace(":", "-") + "-" + key
    tarball, id_file = cache / f"{stem}.tar", cache / f"{stem}{store}.id"
    want = id_file.read_text().strip() if id_file.exists() and tarball.exists() else None
    if want and _image_id(client, name) == want:
        return ImageReport(name, "present", time.monotonic() - started)
    if tarball.exists():
        with open(tarball, "rb") as f:
            client.api.load_image(f)
        loaded = _image_id(client, name)
        # The tarball is the truth (beds side by side share the cache, and another may
        # have replaced it since this store's id was written): what the load names the
        # image is its id in this store from now on. Rebuilding instead would replace
        # the tarball again under every other bed.
        if loaded is not None:
            if loaded != want:
                id_file.write_text(loaded + "\n")
            return ImageReport(name, "loaded", time.monotonic() - started)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache))
    try:
        build(client, work)
    finally:
        _remove_tree(work)
    image_id = _image_id(client, name)
    if image_id is None:
        raise TestbedError(f"building {name} left no image")
    tmp = tarball.with_suffix(".tar.part")
    with open(tmp, "wb") as f:
        for chunk in client.api.get_image(name):
            f.write(chunk)
    tmp.replace(tarball)
    for stale in cache.glob(f"{stem}*.id"):  # ids of the old tarball in other stores
        stale.unlink()
    id_file.write_text(image_id + "\n")
    for old in cache.glob(name.replace("/", "-").replace(":", "-") + "-*"):
        if old.name.split(".")[0] != stem:
            old.unlink(missing_ok=True)
    return ImageReport(name, "built", time.monotonic() - started)


def _image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return str(client.api.inspect_image(name)["Id"])
    except docker.errors.ImageNotFound:
        return None


# --- busybox -----------------------------------------------------------------------------


def _busybox_binary() -> Path:
    found = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(found):
        raise TestbedError("busybox not found: run `sudo scripts/install-testbed-deps.sh`")
    return Path(found).resolve()


def _busybox_key() -> str:
    return _hash(RECIPE_VERSION, _busybox_binary().read_bytes())


def _build_busybox(client: docker.DockerClient, work: Path) -> None:
    busybox = _busybox_binary()
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    rootfs = work / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp", "var"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet == "bin/busybox":
                continue
            info = tarfile.TarInfo(applet)
            info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(info)
        for path, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    client.api.import_image(
        src=str(rootfs),
        repository=BUSYBOX.split(":")[0],
        tag=BUSYBOX.split(":")[1],
        changes=["ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["sh"]'],
    )


# --- python (debootstrap) ----------------------------------------------------------------


def _ca_files() -> list[Path]:
    files = [HOST_CA_BUNDLE] if HOST_CA_BUNDLE.exists() else []
    if HOST_LOCAL_CAS.is_dir():
        files += sorted(HOST_LOCAL_CAS.glob("*.crt"))
    return files


def _python_key(mirror: str) -> str:
    return _hash(RECIPE_VERSION, SUITE, mirror, *PACKAGES, *(f.read_bytes() for f in _ca_files()))


def _build_python(client: docker.DockerClient, work: Path, mirror: str) -> None:
    if shutil.which("debootstrap") is None:
        raise TestbedError("debootstrap not found: run `sudo scripts/install-testbed-deps.sh`")
    root = work / "root"
    log = work.parent / "debootstrap.log"
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(root),
        mirror,
    ]
    with open(log, "wb") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    _unmount_under(root)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise TestbedError(f"debootstrap failed ({done.returncode}); log {log}:\n{tail}")
    # Trim what an image does not need (apt lists and .debs alone are ~100 MB); Docker
    # provides resolv.conf, hostname and hosts at run time.
    for sub in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                "usr/share/locale", "usr/share/info"):  # fmt: skip
        d = root / sub
        if d.is_dir():
            for child in d.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for f in ("etc/resolv.conf", "etc/hostname"):
        (root / f).unlink(missing_ok=True)
    certs = root / "usr/local/share/ca-certificates"
    certs.mkdir(parents=True, exist_ok=True)
    for ca in _ca_files():
        target = (
            root / "etc/ssl/certs/ca-certificates.crt" if ca == HOST_CA_BUNDLE else certs / ca.name
        )
        shutil.copyfile(ca, target)
    rootfs = work / "rootfs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(root), "-cf", str(rootfs),
         "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
        check=True,
    )  # fmt: skip
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    client.api.import_image(
        src=str(rootfs),
        repository=PYTHON.split(":")[0],
        tag=PYTHON.split(":")[1],
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            f"ENV PIP_CERT={bundle}",
            'CMD ["python3"]',
        ],
    )


# --- helpers -----------------------------------------------------------------------------


def _hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:16]


def _unmount_under(root: Path) -> None:
    # debootstrap mounts proc/sys inside the target; a failed run can leave them mounted,
    # and removing the tree through a live /sys mount would be harmful.
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for mnt in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        _unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)

