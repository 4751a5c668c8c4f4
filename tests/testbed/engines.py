"""The Docker Engines the bed runs, and the buildx plugin the bed and the tests use.

Three engines, the ones GitHub's runners have (issue 13 §1, DESIGN.md §5):

==================  ===============================================  ==============
name                binaries                                         image store
==================  ===============================================  ==============
``e20-classic``     the system's dockerd (bookworm's docker.io       classic
                    20.10) with the containerd it manages itself
``e28-classic``     Debian sid's docker.io 28.5 + containerd 2.1     classic
``e28-containerd``  the same binaries                                containerd
                                                                     (snapshotter)
==================  ===============================================  ==============

The sid binaries are never installed: ``docker.io``, ``containerd`` and ``docker-buildx``
are fetched with a private apt config (its own sources.list, lists and archives dirs under
the cache, so the system's apt state is untouched) and unpacked with ``dpkg -x`` into
``$TESTBED_CACHE/sid/root``. They run on bookworm with bookworm's own ``runc`` (sid's
needs a newer glibc). ``TESTBED_ENGINES=e28-containerd,...`` limits the bed and the
tests to some engines (a quicker local loop); the default is all three.

buildx: sid's 0.29 plugin, linked into ``$TESTBED_DIR/docker-config/cli-plugins``. The
bed's ``DOCKER_CONFIG`` points there (env file and pytest session), so ``docker buildx``
and the product's ``builders.buildx_plugin()`` (which looks in ``$DOCKER_CONFIG/
cli-plugins`` first, as the docker CLI does) both find it on every engine, without
touching the system's plugin dirs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .procs import TestbedError, locked

SID_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: sid package -> the upstream version prefix the bed promises (a newer sid upload with
#: another major/minor fails loudly instead of silently testing something else).
SID_PACKAGES = {"docker.io": "28.5.", "containerd": "2.1.", "docker-buildx": "0.29."}
SID_RECIPE = "1"
BUILDX_VERSION = "0.29"


@dataclass(frozen=True)
class EngineSpec:
    name: str  # the pytest id: e20-classic, e28-classic, e28-containerd
    version: str  # major.minor ServerVersion starts with
    containerd_store: bool
    sid: bool  # sid's binaries (else the system's dockerd)

    @property
    def dir_name(self) -> str:
        # e20-classic keeps today's STATE/docker, so a bed already running stays valid.
        return "docker" if self.name == "e20-classic" else f"docker-{self.name}"

    @property
    def env_key(self) -> str:
        return "TESTBED_DOCKER_HOST_" + self.name.upper().replace("-", "_")


ENGINES = (
    EngineSpec("e20-classic", "20.10", containerd_store=False, sid=False),
    EngineSpec("e28-classic", "28.5", containerd_store=False, sid=True),
    EngineSpec("e28-containerd", "28.5", containerd_store=True, sid=True),
)
BY_NAME = {spec.name: spec for spec in ENGINES}


def selected(environ: Mapping[str, str] | None = None) -> tuple[EngineSpec, ...]:
    """The engines ``TESTBED_ENGINES`` names (comma-separated), else all of them."""
    environ = os.environ if environ is None else environ
    wanted = [n.strip() for n in environ.get("TESTBED_ENGINES", "").split(",") if n.strip()]
    if not wanted:
        return ENGINES
    unknown = [n for n in wanted if n not in BY_NAME]
    if unknown:
        raise TestbedError(
            f"TESTBED_ENGINES names unknown engines {unknown}; known: {', '.join(BY_NAME)}"
        )
    return tuple(spec for spec in ENGINES if spec.name in wanted)


# --- sid's binaries ------------------------------------------------------------------------


@dataclass(frozen=True)
class SidTree:
    root: Path
    versions: dict[str, str]

    @property
    def dockerd(self) -> Path:
        return self.root / "usr" / "sbin" / "dockerd"

    @property
    def containerd(self) -> Path:
        return self.root / "usr" / "bin" / "containerd"

    @property
    def buildx(self) -> Path:
        return self.root / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-buildx"

    @property
    def path_dirs(self) -> list[str]:
        """First on PATH for dockerd/containerd: their docker-proxy, docker-init and shim;
        runc is not here, so bookworm's is found."""
        return [str(self.root / "usr" / "sbin"), str(self.root / "usr" / "bin")]


def sid_tree(cache: Path) -> SidTree:
    """sid's docker.io, containerd and docker-buildx unpacked under ``cache`` (fetched once)."""
    base = cache / "sid"
    base.mkdir(parents=True, exist_ok=True)
    manifest = base / "root.json"
    with locked(base / ".lock"):
        tree = _read_tree(base / "root", manifest)
        if tree is not None:
            return tree
        return _fetch_and_unpack(base, manifest)


def _read_tree(root: Path, manifest: Path) -> SidTree | None:
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("recipe") != SID_RECIPE:
        return None
    versions = data.get("versions") or {}
    tree = SidTree(root, dict(versions))
    if set(versions) != set(SID_PACKAGES) or not all(
        p.exists() for p in (tree.dockerd, tree.containerd, tree.buildx)
    ):
        return None
    return tree


def _fetch_and_unpack(base: Path, manifest: Path) -> SidTree:
    apt = base / "apt"
    shutil.rmtree(apt, ignore_errors=True)
    for sub in ("lists/partial", "archives/partial", "debs"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb [signed-by={KEYRING}] {SID_MIRROR} sid main\n")
    options = [
        "-o", f"Dir::Etc::sourcelist={apt / 'sources.list'}",
        "-o", "Dir::Etc::sourceparts=/dev/null",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache::Archives={apt / 'archives'}",
        # The download runs as root into our own dir; apt's _apt sandbox cannot write there.
        "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip
    _run(["apt-get", *options, "-q", "update"], "apt-get update (sid, private config)")
    _run(
        ["apt-get", *options, "-q", "download", *SID_PACKAGES],
        "apt-get download " + " ".join(SID_PACKAGES),
        cwd=apt / "debs",
    )
    versions: dict[str, str] = {}
    staging = Path(tempfile.mkdtemp(prefix="root-", dir=base))
    try:
        for package, prefix in SID_PACKAGES.items():
            debs = sorted((apt / "debs").glob(f"{package}_*.deb"))
            if len(debs) != 1:
                raise TestbedError(f"sid's {package}: expected one .deb, got {debs}")
            version = debs[0].name.split("_")[1]
            if not version.startswith(prefix):
                raise TestbedError(
                    f"sid's {package} is now {version}, the bed expects {prefix}x: update "
                    "SID_PACKAGES in tests/testbed/engines.py (and the engine specs)"
                )
            versions[package] = version
            _run(["dpkg-deb", "-x", str(debs[0]), str(staging)], f"dpkg -x {debs[0].name}")
        # docker-init is a relative link to tini-static, which is bookworm's (tini package,
        # a dependency of docker.io) and not unpacked here.
        init = staging / "usr" / "bin" / "docker-init"
        if init.is_symlink():
            init.unlink()
            init.symlink_to("/usr/bin/tini-static")
        old = base / "root"
        if old.exists():
            shutil.rmtree(old)
        staging.rename(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(apt, ignore_errors=True)  # ~60 MB of .debs and 11 MB of lists
    manifest.write_text(json.dumps({"recipe": SID_RECIPE, "versions": versions}, indent=1))
    tree = _read_tree(base / "root", manifest)
    if tree is None:
        raise TestbedError(f"unpacking sid's packages into {base / 'root'} left no dockerd")
    return tree


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    if shutil.which(argv[0]) is None:
        raise TestbedError(f"{argv[0]} not found: the bed fetches sid's Docker with apt")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise TestbedError(f"{what} failed ({done.returncode}):\n{tail}")


# --- the buildx plugin ---------------------------------------------------------------------


def docker_config(state_dir: Path, tree: SidTree) -> Path:
    """``STATE/docker-config`` with ``cli-plugins/docker-buildx`` -> sid's buildx."""
    config = state_dir / "docker-config"
    plugins = config / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-buildx"
    if not (link.is_symlink() and Path(os.readlink(link)) == tree.buildx):
        tmp = plugins / "docker-buildx.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(tree.buildx)
        tmp.replace(link)
    return config
