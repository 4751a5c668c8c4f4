"""Two ways to build an image into the daemon, behind one ``Builder`` interface.

docker-py speaks only the classic ``/build`` API (no BuildKit: docker/docker-py#2230;
PR #3344's ``version=2`` is not enough, BuildKit needs the ``/grpc`` session), so
BuildKit builds go through ``docker buildx build --load`` against the same daemon.
The classic builder stays for hosts without buildx. Both stream lines through
``log`` (the caller groups them and fences them with ``::stop-commands::``), keep
the last lines for the error, and take the image ID from a structured record
(``aux.ID`` / ``--iidfile``), never from log text (docker-py#1625, #1577).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import docker.errors
import requests

from gh_docker_publish.core import platform_runs
from gh_docker_publish.core.build_inputs import (
    BuilderMode,
    BuildSecret,
    cache_type,
    classic_conflicts,
)
from gh_docker_publish.core.buildx_flags import BuildxFlags
from gh_docker_publish.core.buildx_flags import classic_conflicts as flag_conflicts
from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.progress import Log, ProgressReporter
from gh_docker_publish.edges import build_context
from gh_docker_publish.edges.docker_config import private_docker_config
from gh_docker_publish.edges.engine import RetryPolicy, is_transient, stream_error, tag
from gh_docker_publish.edges.registry_api import RegistryClient, repository_and_tag
from gh_docker_publish.errors import BuildError, PushError

TAIL_LINES = 20


@dataclass(frozen=True)
class BuildRequest:
    """What to build and how to name it. ``tags`` are full refs (``host/path:tag``)."""

    context: Path
    dockerfile: Path | None = None  # relative to ``context`` unless absolute
    tags: Sequence[str] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    pull: bool = False
    no_cache: bool = False
    platforms: Sequence[str] = ()  # BuildKit only; one platform with --load
    secrets: Sequence[BuildSecret] = ()  # BuildKit only; mounted per RUN, never in layers
    cache_from: Sequence[str] = ()  # BuildKit only; buildx --cache-from specs
    cache_to: Sequence[str] = ()  # BuildKit only; buildx --cache-to specs
    provenance: str = ""  # BuildKit only; "" or buildx's --provenance value
    sbom: str = ""  # BuildKit only; "" or buildx's --sbom value
    #: build-push-action's pass-through inputs (core/buildx_flags.py); classic: network,
    #: add-hosts and shm-size only (settings refuse the rest with builder: classic).
    flags: BuildxFlags = field(default_factory=BuildxFlags)
    #: Credentials for pulling base images, by registry host. Not build secrets.
    #: The run's credentials buildx may use (the push login): in its private config only.
    credentials: tuple[Credential, ...] = ()

    def dockerfile_path(self) -> Path:
        """The Dockerfile on disk, the way ``docker build -f`` resolves it."""
        if self.dockerfile is None:
            return self.context / "Dockerfile"
        return self.dockerfile if self.dockerfile.is_absolute() else self.context / self.dockerfile


@dataclass(frozen=True)
class BuildResult:
    """The built image and how it was built."""

    image_id: str
    builder: str
    log_tail: tuple[str, ...]
    seconds: float
    #: buildx's --metadata-file, as it wrote it (build-push-action's `metadata` output);
    #: empty from the classic builder.
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Builder(Protocol):
    """Builds ``request`` into the daemon, applying all of ``request.tags``."""

    name: str

    def build(self, request: BuildRequest, log: Log) -> BuildResult: ...


class LineLog:
    """Reassembles lines from stream fragments, logs them, keeps the tail for errors."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._buf = ""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def add(self, text: str) -> None:
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self.line(line)

    def line(self, line: str) -> None:
        line = line.rstrip("\r")
        self.tail.append(line)
        self.log.info(line)

    def close(self) -> None:
        if self._buf:
            self.line(self._buf)
            self._buf = ""


# --- Dockerfile features the classic builder cannot build ---------------------------------

_DIRECTIVE = re.compile(r"^#\s*(?P<key>[a-zA-Z]+)\s*=\s*(?P<value>.*)$")
_HEREDOC = re.compile(r"<<-?\s*[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?")
_BUILDKIT_FLAGS = {
    "RUN": ("--mount", "--network", "--security"),
    "COPY": ("--link", "--chmod", "--exclude", "--parents"),
    "ADD": ("--link", "--chmod", "--checksum", "--keep-git-dir", "--exclude"),
}


def buildkit_only_features(dockerfile_text: str) -> list[str]:
    """Lines using syntax only BuildKit understands, as ``line N: what`` strings.

    The classic builder fails late on these ("the --mount option requires BuildKit")
    or, for heredocs, silently builds something else; say so before sending the context.
    """
    found: list[str] = []
    in_directives = True
    logical = ""
    start = 0
    for number, raw in enumerate(dockerfile_text.splitlines(), start=1):
        stripped = raw.strip()
        if in_directives:
            m = _DIRECTIVE.match(stripped)
            if m and m["key"].lower() == "syntax":
                found.append(f"line {number}: '# syntax=' parser directive")
                continue
            if m:
                continue
            in_directives = False
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        found.extend(_check_instruction(logical, start))
        logical = ""
    if logical:
        found.extend(_check_instruction(logical, start))
    return found


def _check_instruction(text: str, number: int) -> list[str]:
    words = text.split()
    if not words:
        return []
    keyword = words[0].upper()
    found: list[str] = []
    for word in words[1:]:
        if not word.startswith("--"):
            break
        flag = word.split("=", 1)[0]
        if flag in _BUILDKIT_FLAGS.get(keyword, ()):
            found.append(f"line {number}: {keyword} {flag}")
    if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(text.replace("<<<", "")):
        found.append(f"line {number}: heredoc (<<EOF) in {keyword}")
    return found


# --- classic builder (docker SDK) ----------------------------------------------------------


def read_build_stream(
    chunks: Iterable[Mapping[str, Any]], lines: LineLog, progress_interval: float = 5.0
) -> str:
    """Log a classic build stream; return the ``aux.ID`` (or "") or raise BuildError.

    Both ``error`` and ``errorDetail`` count: docker-py's high-level build only checks
    the deprecated ``error`` key (docker/models/images.py).
    """
    progress = ProgressReporter(lines.log, "pull", interval=progress_interval)
    image_id = ""
    for chunk in chunks:
        err = stream_error(chunk)
        if err is not None:
            lines.close()
            raise BuildError(f"The build failed: {err}", log_tail=list(lines.tail))
        if isinstance(chunk.get("stream"), str):
            lines.add(chunk["stream"])
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            image_id = aux["ID"]
        if "id" in chunk and "status" in chunk:
            progress.feed(chunk)  # base-image pull progress, rate-limited
        elif isinstance(chunk.get("status"), str):
            lines.line(chunk["status"])
    lines.close()
    progress.flush()
    return image_id


class ClassicBuilder:
    """The daemon's legacy builder through docker-py's streaming ``APIClient.build``."""

    name = "classic"

    def __init__(self, client: Any, *, progress_interval: float = 5.0) -> None:
        self._client = client
        self._progress_interval = progress_interval

    def build(self, request: BuildRequest, log: Log) -> BuildResult:
        """Build, log every line, fail on any error chunk, then apply the remaining tags."""
        started = time.monotonic()
        dockerfile = request.dockerfile_path()
        problems = buildkit_only_features(build_context.read_dockerfile(dockerfile))
        if problems:
            raise BuildError.needs_buildkit(
                f"{dockerfile} needs BuildKit, which the classic builder lacks: "
                + "; ".join(problems),
                "remove these features from the Dockerfile",
            )
        used = classic_conflicts(
            platforms=request.platforms,
            secrets=request.secrets,
            cache_from=request.cache_from,
            cache_to=request.cache_to,
            provenance=request.provenance,
        ) + flag_conflicts(request.flags, chosen=False)
        if used:
            raise BuildError.needs_buildkit(
                f"The classic builder cannot honour {', '.join(used)}: BuildKit only.",
                "drop these inputs",
            )
        lines = LineLog(log)
        first_tag = request.tags[0] if request.tags else None
        try:
            # Our own tar with BuildKit's rules, not docker-py's (issue 17); an unnamed
            # temporary file, so a TMPDIR inside the context cannot end up in it.
            with tempfile.TemporaryFile() as context_tar:
                name = build_context.write_context_tar(request.context, dockerfile, context_tar)
                context_tar.seek(0)
                chunks = self._client.build(
                    fileobj=context_tar,
                    custom_context=True,
                    dockerfile=name,
                    tag=first_tag,
                    buildargs=dict(request.build_args) or None,
                    labels=dict(request.labels) or None,
                    target=request.target,
                    pull=request.pull,
                    nocache=request.no_cache,
                    **request.flags.classic_kwargs(),  # docker-py build() kwargs
                    rm=True,
                    forcerm=True,
                    decode=True,
                )
                image_id = read_build_stream(chunks, lines, self._progress_interval)
        except docker.errors.APIError as exc:
            # The generator is lazy: HTTP errors surface while iterating (docker-py
            # _stream_helper), e.g. "Cannot locate specified Dockerfile".
            lines.close()
            raise BuildError(
                f"The build failed: {exc.explanation or exc}", log_tail=list(lines.tail)
            ) from exc
        except (docker.errors.DockerException, OSError, requests.RequestException) as exc:
            lines.close()
            raise BuildError(f"The build could not run: {exc}", log_tail=list(lines.tail)) from exc
        if not image_id and first_tag:
            # Older daemons send no aux record; the tag we built is the structured answer.
            image_id = str(self._client.inspect_image(first_tag)["Id"])
        if not image_id:
            raise BuildError(
                "The build ended without reporting an image ID.", log_tail=list(lines.tail)
            )
        for ref in request.tags[1:]:
            tag(self._client, image_id, ref)
        return BuildResult(image_id, self.name, tuple(lines.tail), time.monotonic() - started)


# --- BuildKit builder (docker buildx CLI) --------------------------------------------------


def _cli_env(
    docker_host: str | None, config_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})  # env= build secrets: buildx reads them from its environment
    # Our daemon and the default (docker driver) builder, whatever the user selected:
    # --load must land the image in the daemon the engine then pushes from.
    for var in ("DOCKER_CONTEXT", "BUILDX_BUILDER"):
        env.pop(var, None)
    env["DOCKER_CONFIG"] = str(config_dir)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    env["BUILDX_CONFIG"] = str(buildx_state_dir(env))
    env.setdefault("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")
    return env


def buildx_state_dir(env: Mapping[str, str]) -> Path:
    """Where buildx keeps its own state (node ID, context refs; never credentials).

    It is ours, not the user's buildx config, whose current builder may not load images
    into this daemon. BuildKit keys the copy of the last build context it keeps on
    buildx's node ID, so a new node ID re-sends the whole context: on GitHub's runners
    HOME (/github/home) is new every job while a self-hosted runner's daemon persists,
    and a random node ID per job made a no-change rebuild of 35,000 files cost ~2x plain
    buildx with a kept config (issue 13 B2). So a new state dir gets a node ID derived
    from what stays the same between jobs of one workflow: see ``stable_node_id``.
    """
    cache = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", "~")).expanduser() / ".cache")
    path = cache / "gh-docker-publish" / "buildx"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    node_id = path / ".buildNodeID"  # buildx util/confutil: read, else a random one written
    if not node_id.exists():
        with contextlib.suppress(OSError):
            node_id.write_text(stable_node_id(env), encoding="utf-8")
    return path


def stable_node_id(env: Mapping[str, str]) -> str:
    """A buildx node ID that is the same for every job of one repository on one daemon.

    Two jobs sharing it on one daemon is what BuildKit's context copy is for (it locks a
    copy in use and makes another); a different repository or daemon gets another ID.
    """
    parts = ("gh-docker-publish", env.get("DOCKER_HOST", ""), env.get("GITHUB_REPOSITORY", ""),
             env.get("GITHUB_WORKSPACE", ""))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


#: What the ``docker`` driver (the daemon's own BuildKit) cannot do with the classic
#: image store; buildx says so only after sending the context. Found by running buildx
#: 0.13 and 0.29 against dockerd 20.10: "Cache export is not supported for the docker
#: driver", "Attestation is not supported for the docker driver". (Several platforms it
#: cannot --load either; those are built one by one, see flows/platforms.py.)
DOCKER_DRIVER_HINT = (
    "Turn on Docker's containerd image store (daemon.json \"features\": "
    "{{\"containerd-snapshotter\": true}}; the default from Engine 29), or set builder to "
    "a BuildKit that exports caches and attestations (docker-container://NAME, tcp://, a "
    "remote buildkitd), or drop the input{inline} "
    "(docs.docker.com/go/build-cache-backends/, /go/attestations/)."
)


def docker_driver_limits(
    request: BuildRequest, containerd_store: bool, engine: str = "this Docker Engine"
) -> list[str]:
    """What the ``docker`` driver cannot build on this daemon, each naming the engine and
    its image store (a list so that every problem is said at once)."""
    if containerd_store:
        return []
    where = f"{engine} with the classic image store"
    problems = []
    exported = [spec for spec in request.cache_to if cache_type(spec) != "inline"]
    if exported:
        problems.append(
            f"cache-to {'; '.join(exported)}: {where} exports only type=inline caches"
        )
    for name, value in (("provenance", request.provenance), ("sbom", request.sbom)):
        if value:
            problems.append(f"{name}: {where} cannot attach attestations")
    return problems


def refuse_docker_driver_limits(
    request: BuildRequest, containerd_store: bool, engine: str = "this Docker Engine"
) -> None:
    """Raise before the build (and before any registry call) when the daemon's BuildKit
    cannot do what was asked.

    Raises:
        BuildError: naming each input, the engine, the store, and what would make it work.
    """
    problems = docker_driver_limits(request, containerd_store, engine)
    if problems:
        inline = ", or use cache-to: type=inline" if request.cache_to else ""
        raise BuildError(
            "BuildKit on this daemon cannot build what was asked: " + "; ".join(problems),
            hint=DOCKER_DRIVER_HINT.format(inline=inline),
        )


def buildx_build_argv(
    buildx: str, request: BuildRequest, outputs: Sequence[str], metadata: Path
) -> list[str]:
    """``buildx build`` for ``request`` with ``outputs`` (``--load`` / ``--output …``): the
    one place the inputs become flags. Build args and labels are not secrets; no token
    here, and for secrets only their ids, file paths and variable names (``type=gha``'s
    token stays in buildx's environment)."""
    args = [buildx, "build", *outputs, "--progress=plain"]
    args += [f"--provenance={request.provenance or 'false'}"]
    if request.sbom:
        args += [f"--sbom={request.sbom}"]
    args += ["--metadata-file", str(metadata)]
    args += ["--file", str(request.dockerfile_path())]
    for key, value in request.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in request.labels.items():
        args += ["--label", f"{key}={value}"]
    for secret in request.secrets:
        args += ["--secret", secret.buildx_spec()]
    for spec in request.cache_from:
        args += ["--cache-from", spec]
    for spec in request.cache_to:
        args += ["--cache-to", spec]
    if request.target:
        args += ["--target", request.target]
    if request.pull:
        args.append("--pull")
    if request.no_cache:
        args.append("--no-cache")
    if request.platforms:
        args += ["--platform", ",".join(request.platforms)]
    args += request.flags.argv()
    args.append(str(request.context))
    return args


class BuildKitBuilder:
    """The daemon's embedded BuildKit through ``buildx build --load``.

    The buildx plugin runs standalone (it reads DOCKER_HOST and DOCKER_CONFIG itself), so
    the action image needs no docker CLI to launch it."""

    name = "buildkit"

    def __init__(
        self,
        docker_host: str | None,
        *,
        buildx: str | Path | None = None,
        provenance: bool = False,  # attach provenance to every build (tests)
        temp_dir: str | None = None,
        containerd_store: bool = False,
        on_config_dir: Callable[[Path], None] | None = None,
    ) -> None:
        self._host = docker_host
        # Default: the plugin where the docker CLI would find it (None: not installed).
        self._buildx = str(buildx or buildx_plugin() or "docker-buildx")
        self.containerd_store = containerd_store
        self._provenance = provenance
        self._temp_dir = temp_dir
        self._containerd_store = containerd_store
        self._on_config_dir = on_config_dir

    def pusher(self, retry: RetryPolicy | None = None) -> BuildKitPusher:
        """The same buildx and daemon, but BuildKit pushes (several platforms)."""
        return BuildKitPusher(self._host, buildx=self._buildx, temp_dir=self._temp_dir,
                              on_config_dir=self._on_config_dir, retry=retry)

    def argv(self, request: BuildRequest, iidfile: Path, metadata: Path) -> list[str]:
        """The buildx command line: --load into the daemon (unless `load: false`,
        `outputs` or `call` say otherwise), the image ID in --iidfile."""
        if self._provenance and not request.provenance:
            request = replace(request, provenance="true")
        load = ["--load"] if request.flags.loads_image else []
        tags = [arg for ref in request.tags for arg in ("--tag", ref)]
        return buildx_build_argv(
            self._buildx, request, [*load, "--iidfile", str(iidfile), *tags], metadata
        )

    def build(self, request: BuildRequest, log: Log) -> BuildResult:
        """Run buildx, stream its plain progress, read the image ID from --iidfile.

        The private DOCKER_CONFIG (registry logins for base images and cache) exists only
        while buildx runs; if we are interrupted (SIGTERM -> ``Terminated``), buildx is
        stopped before the directory is removed, so it cannot recreate files in it.
        """
        if len(request.platforms) > 1 and not self._containerd_store:
            raise BuildError(
                f"platforms {','.join(request.platforms)}: --load cannot load a "
                "multi-platform manifest list into a classic image store.",
                hint="Build one platform per call (flows/platforms.py does).",
            )
        refuse_docker_driver_limits(request, self._containerd_store)
        run = run_buildx(
            lambda cfg: self.argv(request, cfg / "iid", cfg / "metadata.json"),
            request, log, buildx=self._buildx, docker_host=self._host,
            temp_dir=self._temp_dir, on_config_dir=self._on_config_dir,
        )
        image_id = _image_id_from(run.metadata) or run.iid
        if not image_id and request.flags.loads_image:
            raise BuildError("docker buildx did not report an image ID.", log_tail=run.tail)
        return BuildResult(image_id, self.name, tuple(run.tail), run.seconds, run.metadata)


@dataclass(frozen=True)
class BuildxRun:
    """One finished ``buildx build``: its --metadata-file, --iidfile and last lines."""

    metadata: Mapping[str, Any]
    iid: str
    tail: list[str]
    seconds: float


def run_buildx(
    argv_for: Callable[[Path], list[str]],
    request: BuildRequest,
    log: Log,
    *,
    buildx: str,
    docker_host: str | None,
    temp_dir: str | None = None,
    on_config_dir: Callable[[Path], None] | None = None,
    prepare: Callable[[Path, dict[str, str]], None] | None = None,
) -> BuildxRun:
    """Run buildx (``argv_for(private config dir)``), stream its plain progress.

    The private DOCKER_CONFIG (registry logins for base images, cache and a direct push)
    exists only while buildx runs; if we are interrupted (SIGTERM -> ``Terminated``),
    buildx is stopped before the directory is removed, so it cannot recreate files in it.

    ``prepare(config dir, env)`` may adjust buildx's environment and set up a builder in
    it before the build (edges/buildx_builders.py: BuildKit elsewhere).

    Raises:
        BuildError: buildx could not start or failed; its last ERROR line is the message.
    """
    started = time.monotonic()
    lines = LineLog(log)
    secret_env = {s.env: s.value for s in request.secrets if s.env}
    with private_docker_config(
        request.credentials, temp_dir, contexts=[request.context]
    ) as cfg:
        if on_config_dir is not None:
            on_config_dir(cfg)
        env = _cli_env(docker_host, cfg, secret_env)
        if prepare is not None:
            prepare(cfg, env)
        try:
            proc = subprocess.Popen(
                argv_for(cfg),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise BuildError.buildx_unusable(f"Cannot run {buildx}: {exc}") from exc
        assert proc.stdout is not None
        with proc:  # on exit: close stdout, wait for buildx
            try:
                for line in proc.stdout:
                    lines.line(line.rstrip("\n"))
            except BaseException:
                _stop(proc)
                raise
        if proc.returncode != 0:
            errors = [ln for ln in lines.tail if ln.startswith("ERROR:")]
            reason = errors[-1] if errors else f"docker buildx exited with {proc.returncode}"
            raise BuildError(
                f"The build failed: {reason}", log_tail=list(lines.tail),
                hint=_flag_hint(reason, request.flags),
            )
        iid = ""
        with contextlib.suppress(OSError):
            iid = (cfg / "iid").read_text(encoding="utf-8").strip()
        meta: Mapping[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads((cfg / "metadata.json").read_text(encoding="utf-8"))
    return BuildxRun(meta, iid, list(lines.tail), time.monotonic() - started)


def _flag_hint(reason: str, flags: BuildxFlags) -> str:
    """A buildx too old for a pass-through input says only "unknown flag": say which input."""
    if "frontend capability moby.buildkit.frontend.contexts" in reason and flags.build_contexts:
        return ("The daemon's BuildKit is too old for 'build-contexts' (named contexts need "
                "BuildKit 0.10, Docker Engine 23 or later). Update the engine, or drop the "
                "input.")
    if "unsupported request frontend." in reason and not flags.builds_image:
        # buildx has --call, but the daemon's Dockerfile frontend predates it (Engine 20.10).
        return (f"The daemon's BuildKit is too old for 'call: {flags.call}' (its Dockerfile "
                "frontend cannot answer that request). Update the engine, use a builder "
                "elsewhere, or drop the input.")
    match = re.search(r"unknown flag: --([a-z-]+)", reason)
    if not match:
        return ""
    return (
        f"This docker buildx has no --{match[1]} (the input "
        f"'{flags.input_of(match[1])}' needs a newer buildx; --call came in buildx 0.15)."
        " Install a newer docker-buildx, or drop the input."
    )


# --- BuildKit pushes directly (buildx build --push) ----------------------------------------


@dataclass(frozen=True)
class DirectPush:
    """What a ``buildx build --push`` left in the registry, read back from the registry.

    ``digest``: what the tags point at (the index's digest for several platforms);
    ``platforms``: (``os/arch[/variant]``, manifest digest) per platform of an index.
    """

    image_id: str
    digest: str
    landed: tuple[str, ...]
    not_landed: tuple[str, ...]
    ref_digests: Mapping[str, str]
    platforms: tuple[tuple[str, str], ...]
    log_tail: tuple[str, ...]
    seconds: float
    #: buildx's --metadata-file (build-push-action's `metadata` output).
    metadata: Mapping[str, Any] = field(default_factory=dict)


class BuildKitPusher:
    """BuildKit builds and pushes the image itself: ``buildx build --push``, the digest
    from ``--metadata-file``, then the registry asked what each tag now holds.

    Used wherever the daemon cannot hold (or does not get) the image: several platforms
    on the containerd store, one platform at a time on a classic store (flows/platforms.py),
    and builders elsewhere (``builder_args``: e.g. ``--builder NAME``). buildx sees only the
    credentials in ``request.credentials`` (the chosen token), in the private 0700
    DOCKER_CONFIG. A transient failure (5xx, 429, a dropped connection: engine.is_transient
    on buildx's ERROR line, registry error codes included) re-runs buildx: the build is
    cached, only the push repeats, after our own registry read has waited out a 429's
    Retry-After.
    """

    name = "buildkit"

    def __init__(
        self,
        docker_host: str | None,
        *,
        buildx: str | Path | None = None,
        builder_args: Sequence[str] = (),
        temp_dir: str | None = None,
        on_config_dir: Callable[[Path], None] | None = None,
        retry: RetryPolicy | None = None,
        prepare: Callable[[Path, dict[str, str]], None] | None = None,
    ) -> None:
        self._host = docker_host
        self._buildx = str(buildx or buildx_plugin() or "docker-buildx")
        self._builder_args = tuple(builder_args)
        self._temp_dir = temp_dir
        self._on_config_dir = on_config_dir
        self._retry = retry or RetryPolicy()
        self._prepare = prepare  # run_buildx's: BuildKit elsewhere sets up its builder

    def argv(self, request: BuildRequest, metadata: Path) -> list[str]:
        tags = [arg for ref in request.tags for arg in ("--tag", ref)]
        argv = buildx_build_argv(self._buildx, request, ["--push", *tags], metadata)
        return [argv[0], *self._builder_args, *argv[1:]]

    def push(self, request: BuildRequest, log: Log, registry: RegistryClient) -> DirectPush:
        """Build and push ``request`` under all of its tags; say what landed.

        Raises:
            BuildError: the build itself failed (nothing was pushed).
            PushError: buildx failed while pushing, or a tag does not hold the image
                afterwards; ``landed``/``not_landed`` come from the registry.
        """
        warm = _authorize_in_background(registry, request.tags)
        attempt = 0
        contested = False
        while True:
            attempt += 1
            try:
                run = run_buildx(
                    lambda cfg: self.argv(request, cfg / "metadata.json"), request, log,
                    buildx=self._buildx, docker_host=self._host, temp_dir=self._temp_dir,
                    on_config_dir=self._on_config_dir, prepare=self._prepare,
                )
                break
            except BuildError as failure:
                if not contested and (name := _contested_name(str(failure), request.tags)):
                    contested = True  # once: the name exists now, the next export updates it
                    attempt -= 1
                    log.warning(f"Another build on this daemon created {name} at the same "
                                "moment (BuildKit: already exists); building again, from the "
                                "cache, to name and push this run's image")
                    continue
                pushing = any(_PUSHING.search(line) for line in failure.log_tail)
                if not pushing:
                    raise
                delay = min(self._retry.maximum, self._retry.initial * 2 ** (attempt - 1))
                if (attempt >= self._retry.attempts or not is_transient(str(failure))
                        or self._retry.out_of_time(delay)):
                    self._raise_push_failure(request, failure)
                log.warning(f"The push failed ({failure}); retry {attempt}/"
                            f"{self._retry.attempts - 1} in {delay:.1f} s")
                self._retry.sleep(delay)
                _wait_out_the_registry(request, registry)
        pushed = str(run.metadata.get("containerimage.digest") or "")
        config = str(run.metadata.get("containerimage.config.digest") or "")
        warm.join()
        result = read_back(request.tags, registry, {pushed, config} - {""})
        image_id = config or pushed
        done = DirectPush(image_id, result.digest, result.landed, result.not_landed,
                          result.ref_digests, result.platforms, tuple(run.tail), run.seconds,
                          run.metadata)
        if done.not_landed:
            raise PushError(
                "BuildKit pushed, but the registry does not show the image under every tag.",
                landed=done.landed, not_landed=done.not_landed, digests=done.ref_digests,
                hint="A tag that does not hold the image this run built either never arrived "
                "or another push replaced it meanwhile (jobs publishing the same tags side by "
                "side): run them one at a time, e.g. with a workflow `concurrency:` group.",
            )
        return done

    @staticmethod
    def _raise_push_failure(request: BuildRequest, failure: BuildError) -> None:
        """A failed push: BuildKit puts the tags last, so a tag landed only if the registry
        shows it (none do after a failure mid-upload)."""
        raise PushError(
            f"BuildKit could not push the image: {failure}",
            not_landed=request.tags,
            hint="The registry failed or refused the upload; run the job again, or look at "
            "the build's last lines above.",
        ) from failure


def _wait_out_the_registry(request: BuildRequest, registry: RegistryClient) -> None:
    """Before buildx runs again, our own read of the first tag: a registry still limiting
    us answers it with 429 and Retry-After, which RegistryClient waits out (BuildKit's
    resolver retries a 429 at once, without reading Retry-After: seen on Engine 28.5)."""
    repository, tag_name = repository_and_tag(request.tags[0])
    with contextlib.suppress(requests.RequestException, ValueError):
        registry.manifest(repository, tag_name)


#: The containerd image store's refusal of a name another export created in the meantime
#: (BuildKit's image exporter updates a name, else creates it; the slower creation fails).
_NAME_TAKEN = re.compile(r'image "(?P<name>[^"\s]+)": already exists')


def _contested_name(failure: str, refs: Sequence[str]) -> str:
    """The ref of ours BuildKit refused to name because a concurrent build had just created
    it (two runs pushing the same tags on one daemon, issue 17 item 10), else "". Pushing
    exports every tag into the daemon's store too, so a daemon build name cannot help
    here: exporting again finds the name and moves it, then the registry read-back says
    whose image each tag holds."""
    match = _NAME_TAKEN.search(failure)
    return match["name"] if match and match["name"] in refs else ""


#: buildx's progress once the image is built and being sent (docker and containerd
#: exporters alike): a failure after this is a push failure, not a build failure.
_PUSHING = re.compile(r"exporting to image|pushing layers|pushing manifest|pushing .* with docker")


def _authorize_in_background(registry: RegistryClient, refs: Sequence[str]) -> threading.Thread:
    """The registry token ``read_back`` needs, fetched while buildx builds and pushes
    (two round trips less after the push, issue 13 B6). Only a head start: a failure here
    is left to the read-back itself, which asks again. Pull and push: a pull token asked
    for before the first push of a new package grants nothing (GHCR, the bed's stand-in);
    the run's credential is the one that pushes."""
    repositories = dict.fromkeys(repository_and_tag(ref)[0] for ref in refs)

    def authorize() -> None:
        with contextlib.suppress(Exception):  # the read-back asks again, and says why
            for repository in repositories:
                registry.authorize(f"repository:{repository}:pull,push")

    thread = threading.Thread(target=authorize, name="gh-docker-publish-authorize", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class ReadBack:
    digest: str
    landed: tuple[str, ...]
    not_landed: tuple[str, ...]
    ref_digests: dict[str, str]
    platforms: tuple[tuple[str, str], ...]


def read_back(refs: Sequence[str], registry: RegistryClient, ours: set[str]) -> ReadBack:
    """Which refs hold our image (``ours``: the manifest, index or config digests BuildKit
    reported), by the registry's own answer (OCI distribution-spec "pulling manifests").
    A tag holding another image (a parallel push of the same tag) counts as not landed:
    what landed must be what this run built (issue 17 item 10)."""
    landed, missing, digests = [], [], {}
    platforms: tuple[tuple[str, str], ...] = ()
    for ref in refs:
        repository, tag_name = repository_and_tag(ref)
        try:
            remote = registry.manifest(repository, tag_name)
        except (requests.RequestException, ValueError):
            remote = None
        if remote is None or not ({remote.digest, remote.config_digest} & ours):
            missing.append(ref)
            continue
        landed.append(ref)
        digests[ref] = remote.digest
        platforms = platforms or remote.platforms
    digest = digests[landed[0]] if landed else ""
    return ReadBack(digest, tuple(landed), tuple(missing), digests, platforms)


def _stop(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM buildx (it cancels the build on the daemon), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _image_id_from(metadata: Mapping[str, Any]) -> str:
    """The ID the daemon knows the built image by: ``containerimage.digest``, on either
    image store (the classic store names an image by its config digest, which it is there;
    the containerd store by its manifest or index digest, which it is there). --iidfile
    holds the config digest on both, so it is only the fallback (found by "bed" on
    Engine 28.5: ``docker image history <iidfile's digest>`` says "No such image")."""
    return str(metadata.get("containerimage.digest") or "")


# --- choosing -----------------------------------------------------------------------------


#: Where the docker CLI looks for plugins on Linux, after $DOCKER_CONFIG/cli-plugins and
#: ~/.docker/cli-plugins (docker/cli cli-plugins/manager: defaultSystemPluginDirs).
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
#: The Engine API version that brought BuildKit's session endpoints (Docker 18.09).
BUILDKIT_API_VERSION = (1, 39)


def buildx_plugin(env: Mapping[str, str] | None = None) -> Path | None:
    """The docker-buildx plugin the docker CLI would run, found the way the CLI finds it."""
    env = os.environ if env is None else env
    user_dirs = [Path(env["DOCKER_CONFIG"]) / "cli-plugins"] if env.get("DOCKER_CONFIG") else []
    user_dirs.append(Path(env.get("HOME", "~")).expanduser() / ".docker" / "cli-plugins")
    for directory in [*user_dirs, *map(Path, SYSTEM_PLUGIN_DIRS)]:
        candidate = directory / "docker-buildx"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def buildx_status(client: Any, plugin: Path | None) -> tuple[bool, str]:
    """Whether buildx (``plugin``, None when not installed) can build on this daemon.

    Checked without running buildx (two ``docker buildx`` calls cost ~0.2 s a run, as
    much as a no-change rebuild): the plugin is where the docker CLI looks, and the
    daemon is a Linux engine whose API has BuildKit's session endpoints.
    """
    if plugin is None:
        return False, "the docker buildx plugin is not installed"
    try:
        version = client.version()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        return False, f"the daemon did not answer: {exc}"
    api = tuple(int(part) for part in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if version.get("Os", "linux") != "linux" or api < BUILDKIT_API_VERSION:
        return False, (
            f"the daemon ({version.get('Os')}, API {version.get('ApiVersion')}) has no BuildKit"
        )
    return True, f"docker buildx at {plugin}, BuildKit in Docker Engine {version.get('Version')}"


def uses_containerd_store(client: Any) -> bool:
    """Whether the daemon keeps images in containerd's store (``docker info`` shows
    ``driver-type: io.containerd.snapshotter.v1``); then --load takes manifest lists and
    the docker driver can export caches and attestations (docs.docker.com "containerd
    image store")."""
    try:
        status = client.info().get("DriverStatus") or []
    except (docker.errors.DockerException, requests.RequestException):
        return False
    return any(
        isinstance(pair, list) and len(pair) == 2 and "containerd.snapshotter" in str(pair[1])
        for pair in status
    )


#: binfmt_misc handler names (QEMU's, as tonistiigi/binfmt and docker/setup-qemu-action
#: register them: ``qemu-aarch64``) -> the platforms they execute.
_BINFMT_PLATFORMS = {
    "aarch64": ("linux/arm64",), "arm": ("linux/arm/v7", "linux/arm/v6"),
    "x86_64": ("linux/amd64",), "i386": ("linux/386",), "ppc64le": ("linux/ppc64le",),
    "s390x": ("linux/s390x",), "riscv64": ("linux/riscv64",), "mips64el": ("linux/mips64le",),
    "loongarch64": ("linux/loong64",),
}
#: What a CPU runs besides its own platform without emulation (buildx inspect lists them).
_NATIVE_ALSO = {"amd64": ("linux/386",), "arm64": ("linux/arm/v7", "linux/arm/v6")}


def runnable_platforms(client: Any, binfmt_dir: Path = Path("/proc/sys/fs/binfmt_misc")
                       ) -> list[str]:
    """The platforms a RUN can execute on this daemon: its own (``docker version``'s Os and
    Arch), those its CPU also runs, and every enabled emulator in binfmt_misc (the kernel's
    table is host-wide, so a container action sees the daemon host's)."""
    try:
        version = client.version()
    except (docker.errors.DockerException, requests.RequestException):
        return []
    arch = str(version.get("Arch") or "amd64")
    found = [f"{version.get('Os') or 'linux'}/{arch}", *_NATIVE_ALSO.get(arch, ())]
    for name, platforms in _BINFMT_PLATFORMS.items():
        with contextlib.suppress(OSError):
            if (binfmt_dir / f"qemu-{name}").read_text().startswith("enabled"):
                found += platforms
    return found


def refuse_foreign_runs(
    dockerfile_text: str, target: str | None, platforms: Sequence[str], runnable: Sequence[str]
) -> None:
    """A RUN on a platform the host cannot execute fails before the build, not with
    ``exec format error`` minutes in.

    Raises:
        BuildError: naming the platforms, the RUN lines and the two fixes.
    """
    foreign = platform_runs.unrunnable(platforms, runnable)
    runs = platform_runs.target_platform_runs(dockerfile_text, target) if foreign else []
    if foreign and runs:
        raise BuildError(
            f"The Dockerfile RUNs commands on {', '.join(foreign)} ({', '.join(runs[:3])}), "
            f"which this host cannot execute: it runs {', '.join(runnable) or 'nothing'}.",
            hint="Register QEMU before this step (uses: docker/setup-qemu-action@v3), or build "
            "each platform on a native runner (a matrix, e.g. ubuntu-24.04-arm for "
            "linux/arm64), or cross-compile: FROM --platform=$BUILDPLATFORM in the RUN stages.",
        )


def detect_builder(
    mode: BuilderMode,
    client: Any,
    docker_host: str | None,
    *,
    plugin: Path | Literal["search"] | None = "search",
    temp_dir: str | None = None,
    on_config_dir: Callable[[Path], None] | None = None,
) -> tuple[Builder, str]:
    """Pick the builder for ``mode`` and say why (for the log and the summary).

    ``plugin``: the buildx binary; by default found where the docker CLI would find it.
    """
    if mode == "classic":
        return ClassicBuilder(client), "classic builder requested"
    buildx = buildx_plugin() if plugin == "search" else plugin
    ok, found = buildx_status(client, buildx)
    if ok and buildx is not None:
        builder = BuildKitBuilder(
            docker_host,
            buildx=buildx,
            temp_dir=temp_dir,
            containerd_store=uses_containerd_store(client),
            on_config_dir=on_config_dir,
        )
        return builder, found
    if mode == "buildkit":
        raise BuildError.buildx_unusable(f"BuildKit was requested but is not usable: {found}.")
    return ClassicBuilder(client), f"classic builder: {found}"
