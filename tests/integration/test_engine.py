"""engine + builders against a real daemon and real distribution registries.

Uses whatever daemon DOCKER_HOST points at (or the test bed's env file), and
starts its own registries (distribution 2.8, ``docker-registry``) on loopback:
a plain one, a read-only one and an htpasswd one. The lead will move these onto
the shared test-bed fixtures. Fails (never skips) when the parts are missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import docker
import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import builders, docker_config, engine
from gh_docker_publish.errors import BuildError, DaemonError, PushError, RegistryError
from tests.testbed.images import BUSYBOX

pytestmark = pytest.mark.integration

BASE_IMAGE = BUSYBOX  # the bed loads it; tiny and fast
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)



def login(registry: str, username: str, password: str) -> Credential:
    return Credential(registry, username, Secret(password), "token", "test")

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _registry(root: Path, extra: str = "") -> Iterator[str]:
    """A distribution registry on a free loopback port; dockerd treats 127/8 as insecure."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    assert binary, "distribution (docker-registry) is not installed"
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {root / 'data'}}}\n"
        f"{extra}http: {{addr: 127.0.0.1:{port}}}\n"
    )
    log = open(root / "log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert proc.poll() is None, (root / "log").read_text()
                assert time.monotonic() < deadline, "registry did not start"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def registry_digest(registry: str, repo: str, tag: str, auth: str | None = None) -> str | None:
    """The registry's own ``Docker-Content-Digest`` for a tag, or None if absent."""
    req = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


# --- fixtures -----------------------------------------------------------------------------


def _config_state() -> tuple[str, str | None]:
    path = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="module", autouse=True)
def user_docker_config_untouched() -> Iterator[None]:
    """Every test in this module runs between two snapshots of the user's config.json."""
    before = _config_state()
    yield
    assert _config_state() == before, "~/.docker/config.json changed (or appeared)"


@pytest.fixture(scope="module")
def docker_host(testbed: Any) -> str:
    return str(testbed.docker_host)


@pytest.fixture(scope="module")
def client(docker_host: str) -> Any:
    c = engine.connect(docker_host, timeout=120)
    engine.image_inspect(c, BASE_IMAGE)  # fails clearly if the bed lacks its base image
    return c


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _registry(tmp_path_factory.mktemp("reg-plain")) as addr:
        yield addr


@pytest.fixture(scope="module")
def readonly_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # distribution answers every write with 405 (TestStartPushReadOnly); the daemon
    # reports it inside the HTTP-200 push stream.
    extra = "  maintenance: {readonly: {enabled: true}}\n"
    with _registry(tmp_path_factory.mktemp("reg-ro"), extra) as addr:
        yield addr


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("reg-auth")
    (root / "htpasswd").write_text(
        # distribution's htpasswd takes bcrypt only; the stdlib crypt is gone in Python 3.13.
        "ci:" + bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt()).decode() + "\n"
    )
    extra = f"auth: {{htpasswd: {{realm: dev, path: {root / 'htpasswd'}}}}}\n"
    with _registry(root, extra) as addr:
        yield addr


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "ARG GREETING=unset\n"
        "COPY . /ctx\n"
        'RUN test ! -e /ctx/ignored.txt && echo "$GREETING" > /greeting\n'
    )
    (ctx / "app.txt").write_text(f"app {tmp_path.name}\n")  # unique per test: a fresh image
    (ctx / "ignored.txt").write_text("must not be sent\n")
    (ctx / ".dockerignore").write_text("ignored.txt\n")
    return ctx


def _builder(name: str, client: Any, docker_host: str) -> builders.Builder:
    if name == "classic":
        return builders.ClassicBuilder(client)
    return builders.BuildKitBuilder(docker_host)


# --- daemon and login ---------------------------------------------------------------------


def test_connect_unreachable_names_the_host(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(DaemonError) as info:
        engine.connect(host, timeout=5)
    assert host in info.value.message
    assert "DOCKER_HOST" in info.value.hint


def test_daemon_version(client: Any) -> None:
    assert engine.daemon_version(client)["version"]


def _counting_proxy(target: str, path: Path, seen: list[str]) -> socket.socket:
    """A unix socket forwarding bytes to the daemon; each request line goes to ``seen``."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)

    def pump(src: socket.socket, dst: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if record:
                    seen.extend(line.split()[1] for line in data.decode(errors="replace")
                                .splitlines() if line.startswith(("GET ", "POST ", "HEAD ")))
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(target)
                for a, b, record in ((conn, upstream, True), (upstream, conn, False)):
                    threading.Thread(target=pump, args=(a, b, record), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def test_a_run_asks_the_daemons_version_and_info_once(docker_host: str, tmp_path: Path) -> None:
    """The builder choice, the image store, the runnable platforms and the engine warning
    all read the daemon's version or info: one request each for the run (issue 13 B2)."""
    seen: list[str] = []
    proxy_path = tmp_path / "docker.sock"
    server = _counting_proxy(docker_host.removeprefix("unix://"), proxy_path, seen)
    try:
        client = engine.connect(f"unix://{proxy_path}", timeout=30)
        for _ in range(2):
            assert builders.buildx_status(client, Path("/bin/true"))[0]
            builders.uses_containerd_store(client)
            assert builders.runnable_platforms(client)
            assert engine.daemon_version(client)["api_version"] == client.api_version
        time.sleep(0.2)  # the proxy's threads record what they forwarded
    finally:
        server.close()
    assert [p for p in seen if p.endswith("/version")] == ["/version"], seen  # connect's
    assert len([p for p in seen if p.endswith("/info")]) == 1, seen


def test_login_checks_credentials_through_the_daemon(client: Any, auth_registry: str) -> None:
    log = RecordingLog()
    engine.login(client, login(auth_registry, "ci", "s3cret-pw"), log=log)
    assert log.lines[-1] == f"Logged in to {auth_registry} as ci"
    assert not any("s3cret-pw" in line for line in log.lines)
    with pytest.raises(RegistryError) as info:
        engine.login(client, login(auth_registry, "ci", "wrong-pw"), log=log)
    assert "401" in info.value.message or "unauthorized" in info.value.message.lower()
    assert "wrong-pw" not in str(info.value)
    assert log.warnings == []  # a denial is never retried


def test_push_with_login_to_auth_registry(client: Any, auth_registry: str, context: Path) -> None:
    log = RecordingLog()
    auth = login(auth_registry, "ci", "s3cret-pw")
    engine.login(client, auth, log=log)
    ref = f"{auth_registry}/team/authed:1"
    result = builders.ClassicBuilder(client).build(
        builders.BuildRequest(context=context, tags=[ref]), log
    )
    out = engine.push(client, [ref], auth, log)
    assert out.digests[ref].startswith("sha256:")
    assert result.image_id.startswith("sha256:")
    bad = login(auth_registry, "ci", "nope")
    with pytest.raises(PushError) as info:
        engine.push(client, [ref], bad, log)
    assert info.value.not_landed == [ref]
    assert "did not accept the credentials" in info.value.hint


# --- build, tag, push ---------------------------------------------------------------------


@pytest.mark.parametrize("builder_name", ["classic", "buildkit"])
def test_build_push_three_tags_one_digest(
    builder_name: str, client: Any, docker_host: str, registry: str, context: Path
) -> None:
    log = RecordingLog()
    repo = f"{registry}/owner/app-{builder_name}"
    refs = [f"{repo}:1.2.3", f"{repo}:1.2", f"{repo}:latest"]
    request = builders.BuildRequest(
        context=context,
        tags=refs,
        build_args={"GREETING": "hello"},
        labels={"org.opencontainers.image.source": "https://github.com/o/r"},
    )
    result = _builder(builder_name, client, docker_host).build(request, log)
    assert result.builder == builder_name
    info = engine.image_inspect(client, refs[0])
    assert info["Id"] == result.image_id
    assert info["Config"]["Labels"]["org.opencontainers.image.source"] == "https://github.com/o/r"
    for ref in refs:
        assert engine.image_inspect(client, ref)["Id"] == result.image_id

    out = engine.push(
        client, refs, login(registry, "", ""), log
    )
    assert set(out.digests) == set(refs)
    assert len(set(out.digests.values())) == 1
    for ref in refs:
        repo_path, tag = ref.removeprefix(registry + "/").rsplit(":", 1)
        assert registry_digest(registry, repo_path, tag) == out.digest
    # Progress is per layer, not per chunk, and ends with a summary per ref.
    assert sum("uploaded in" in line for line in log.lines) == 3
    assert len([ln for ln in log.lines if ": Pushing " in ln]) <= 3 * 4

    # Pulling it back gives the same digest.
    assert engine.pull(client, refs[1], None, log) == out.digest


@pytest.mark.parametrize("builder_name", ["classic", "buildkit"])
def test_failing_run_raises_build_error_with_tail(
    builder_name: str, client: Any, docker_host: str, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo marker-before-failure && exit 7\n"
    )
    log = RecordingLog()
    with pytest.raises(BuildError) as info:
        _builder(builder_name, client, docker_host).build(
            builders.BuildRequest(context=tmp_path, tags=["local/fail:1"]), log
        )
    err = info.value
    assert any("marker-before-failure" in line for line in err.log_tail)
    assert 0 < len(err.log_tail) <= 20
    assert "7" in err.message


def test_classic_refuses_buildkit_syntax_before_sending(client: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN --mount=type=cache,target=/c echo hi\n"
    )
    log = RecordingLog()
    with pytest.raises(BuildError, match="needs BuildKit") as info:
        builders.ClassicBuilder(client).build(builders.BuildRequest(context=tmp_path), log)
    assert "line 2: RUN --mount" in info.value.message
    assert log.lines == []  # nothing was sent, nothing streamed


def test_buildkit_builds_mount_syntax(docker_host: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN --mount=type=tmpfs,target=/scratch touch /scratch/x\n"
    )
    result = builders.BuildKitBuilder(docker_host).build(
        builders.BuildRequest(context=tmp_path, tags=["local/mount:1"]), RecordingLog()
    )
    assert result.image_id.startswith("sha256:")


def test_detect_builder_auto_prefers_buildkit(client: Any, docker_host: str) -> None:
    builder, reason = builders.detect_builder("auto", client, docker_host)
    assert builder.name == "buildkit", reason
    assert "BuildKit" in reason
    classic, why = builders.detect_builder("auto", client, docker_host, plugin=None)
    assert classic.name == "classic" and "buildx plugin is not installed" in why
    dead = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41", timeout=2)
    with pytest.raises(BuildError, match=r"not usable.*did not answer"):
        builders.detect_builder("buildkit", dead, "unix:///nonexistent.sock")


def test_push_failing_in_stream_names_landed_and_not_landed(
    client: Any, registry: str, readonly_registry: str, context: Path, testbed: Any
) -> None:
    log = RecordingLog()
    good1, bad, good2 = (
        f"{registry}/owner/partial:a",
        f"{readonly_registry}/owner/partial:a",
        f"{registry}/owner/partial:b",
    )
    built = builders.ClassicBuilder(client).build(
        builders.BuildRequest(context=context, tags=[good1, bad, good2]), log
    )
    assert built.image_id
    auth = login(registry, "", "")
    with pytest.raises(PushError) as info:
        engine.push(client, [good1, bad, good2], auth, log)
    err = info.value
    assert err.landed == [good1, good2]  # a later failure does not stop the others
    assert err.not_landed == [bad]
    # The read-only registry's 405, as each daemon words it: Engine 28's classic store
    # passes on only the reason phrase ("unknown: Method not allowed").
    refusal = "Method not allowed" if testbed.engine == "e28-classic" else "405"
    assert refusal in err.registry_message, err.registry_message
    assert set(err.digests) == {good1, good2}
    assert registry_digest(registry, "owner/partial", "a") == err.digests[good1]
    assert registry_digest(registry, "owner/partial", "b") == err.digests[good2]
    assert log.warnings == []  # a 405 is not transient: no retries


def test_private_docker_config_is_private_and_removed() -> None:
    with docker_config.private_docker_config([login("r.example", "u", "p")]) as cfg:
        assert (cfg.stat().st_mode & 0o777) == 0o700
        assert ((cfg / "config.json").stat().st_mode & 0o777) == 0o600
        assert '"r.example"' in (cfg / "config.json").read_text()
    assert not cfg.exists()


# --- login read timeout ----------------------------------------
# engine.login when the daemon does not answer within the client's read timeout (here: a
# registry that accepts the connection and never speaks, so the daemon's login hangs).
# requests raises ReadTimeout, which is not a ConnectionError: it must still end as a
# RegistryError naming the registry, never as a traceback.

class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self.warnings.append(message)


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """Accepts TCP connections on loopback and never answers them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


def test_login_read_timeout_is_a_registry_error(testbed: Any, silent_registry: str) -> None:
    client = engine.connect(str(testbed.docker_host), timeout=2)
    log = _Log()
    with pytest.raises(RegistryError, match=f"Login to {silent_registry} failed after 2 attempts"):
        engine.login(client, Credential(silent_registry, "someone", Secret("not-a-real-token"),
                                        "token", "test"), log=log,
                     retry=engine.RetryPolicy(attempts=2, initial=0.01, sleep=lambda _: None))
    assert len(log.warnings) == 1  # the one retry was announced
    assert all("not-a-real-token" not in w for w in log.warnings)
