"""Registry and API faults, injected by ``tests/testbed/faults.py`` between the real daemon
and the real registry (or between the tool and the GitHub stand-in), driven in-process
through ``engine`` / ``github_api`` / ``publish`` with small retry budgets.

Known daemon behaviour these tests lean on. The classic stores (dockerd 20.10, 28.5): the
daemon retries each *layer* itself (5+10+15+20 s) on 5xx and resets, never the manifest
PUT, and never a denial or TOOMANYREQUESTS (moby distribution/errors.go
``retryOnError``). The containerd store (Engine 28.5, containerd 2.1): every registry
request, blob or manifest, is sent once more after a 500/503/504 and up to six times in
all after a 429 (containerd remotes/docker ``retryRequest``, containerd#11484), at once
and without reading Retry-After; then the push fails, and a JSON error body is reported
as "error from registry: <message>" without the status (see ``daemon_sends``).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import engine, github_api, registry_api
from gh_docker_publish.errors import DaemonError, GitHubApiError, PushError, RegistryError
from tests.testbed.faults import Fault, FaultProxy

MANIFEST = r"/manifests/"
BLOB_UPLOAD = r"/blobs/uploads/"


@dataclass
class ListLog:
    lines: list[str] = field(default_factory=list)

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append(f"warning: {message}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class FakeTime:
    """A clock that moves only when the retry loop sleeps (plus ``step`` per sleep)."""

    step: float = 60.0
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.step


def daemon_sends(testbed: Any, status: int) -> int:
    """How often the daemon itself sends one registry request that keeps failing with
    ``status`` before it reports the failure: once on the classic stores; on the
    containerd store twice for a 500/503/504 and six times for a 429 (module docstring).
    A test scripts its fault per attempt of ours with this, so it still counts our
    attempts exactly."""
    if not testbed.engine_info().containerd_store:
        return 1
    return {429: 6, 500: 2, 503: 2, 504: 2}.get(status, 1)


def fast(**kw: Any) -> engine.RetryPolicy:
    return engine.RetryPolicy(**{"attempts": 3, "initial": 0.05, "maximum": 0.2, **kw})


@pytest.fixture
def org(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    return github


def credential(registry: str, token: str, username: str = "octocat") -> Credential:
    return Credential(registry, username, Secret(token), "github-token", "test")


def login_and_tag(
    client: Any, proxy: FaultProxy, token: str, image: str, name: str, tag: str = "v1"
) -> tuple[Credential, str]:
    auth = credential(proxy.address, token)
    engine.login(client, auth, log=ListLog(), retry=fast())
    ref = f"{proxy.address}/octo-org/{name}:{tag}"
    engine.tag(client, image, ref)
    return auth, ref


def verifier(auth: Credential, client: Any, image: str) -> engine.Verify:
    image_id = client.inspect_image(image)["Id"]
    reg = registry_api.RegistryClient(auth)
    return lambda ref: registry_api.check_pushed(reg, ref, image_id)


# --- 5xx -----------------------------------------------------------------------------------


def test_manifest_503_twice_then_ok_is_retried_and_logged(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    registry_reader: Any, unique_name: Callable[[str], str], testbed: Any,
) -> None:
    client = docker_client.api
    name = unique_name("m503")
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, name)
    failed_puts = 2 * daemon_sends(testbed, 503)  # two attempts of ours fail
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503,
                             times=failed_puts))
    log = ListLog()
    out = engine.push(client, [ref], auth, log, retry=fast(),
                      verify=verifier(auth, client, small_image))
    assert registry_proxy.injected() == failed_puts
    assert "retry 1/2" in log.text and "retry 2/2" in log.text, log.text
    assert out.digest == registry_reader.manifest_digest(f"octo-org/{name}", "v1")


@pytest.mark.parametrize(
    "status", [502, 503], ids=["gateway-502-html", "registry-503-json-without-status"]
)
def test_blob_upload_5xx_twice_is_retried(
    status: int, org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    registry_reader: Any, unique_name: Callable[[str], str], testbed: Any,
) -> None:
    """A gateway's 502 (an HTML page) and the registry's own 503 (its JSON UNAVAILABLE
    error, which the containerd store reports as "error from registry: unavailable")."""
    client = docker_client.api
    name = unique_name(f"b{status}")
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, name)
    # Twice per request the daemon sends: on the containerd store (which sends a blob PUT
    # once more after a 503) four 503s over the image's three blobs fail one PUT twice.
    failed_puts = 2 * daemon_sends(testbed, status)
    registry_proxy.add(Fault("status", method="PUT", path=BLOB_UPLOAD, status=status,
                             times=failed_puts))
    log = ListLog()
    out = engine.push(client, [ref], auth, log, retry=fast(), progress_interval=0)
    assert registry_proxy.injected() == failed_puts
    if testbed.engine_info().containerd_store:
        # The containerd store has no per-layer retry of its own (it only sends a 503'd
        # request once more, silently, and prints no "Retrying in"): the push fails, and
        # our retry of the push lands it.
        assert "retry 1/2" in log.text, log.text
    else:
        assert "Retrying in" in log.text, log.text  # the daemon's own per-layer retry, shown
    assert out.digest == registry_reader.manifest_digest(f"octo-org/{name}", "v1")


def test_5xx_on_every_attempt_fails_within_the_attempts(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    unique_name: Callable[[str], str], testbed: Any,
) -> None:
    client = docker_client.api
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, unique_name("all503"))
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503, times=None))
    with pytest.raises(PushError) as failure:
        engine.push(client, [ref], auth, ListLog(), retry=fast(attempts=3))
    assert len(registry_proxy.requests("PUT", MANIFEST)) == 3 * daemon_sends(testbed, 503)
    assert "503" in str(failure.value) and "Not landed: " + ref in str(failure.value)


def test_5xx_on_every_attempt_stops_at_the_deadline(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    unique_name: Callable[[str], str], testbed: Any,
) -> None:
    client = docker_client.api
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, unique_name("deadline"))
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503, times=None))
    fake = FakeTime(step=60.0)
    policy = fast(attempts=10, deadline=100.0, clock=fake.clock, sleep=fake.sleep)
    log = ListLog()
    with pytest.raises(PushError):
        engine.push(client, [ref], auth, log, retry=policy)
    # attempts at t=0, ~60 and ~120 (fake clock); the fourth would start past 100 s.
    puts = len(registry_proxy.requests("PUT", MANIFEST))
    assert puts == 3 * daemon_sends(testbed, 503) and len(fake.sleeps) == 2, (puts, fake.sleeps)
    assert "deadline leaves no time" in log.text
    assert all(s > 0 for s in fake.sleeps)  # backoff, never a tight loop


# --- resets, slow commits ---------------------------------------------------------------------


def test_connection_reset_mid_blob_is_retried(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    registry_reader: Any, unique_name: Callable[[str], str], testbed: Any,
) -> None:
    client = docker_client.api
    name = unique_name("reset")
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, name)
    # The classic store sends a blob in PATCH chunks; the containerd store in one PUT.
    method = "PUT" if testbed.engine_info().containerd_store else "PATCH"
    registry_proxy.add(Fault("reset", method=method, path=BLOB_UPLOAD, times=1))
    out = engine.push(client, [ref], auth, ListLog(), retry=fast())
    assert registry_proxy.injected() == 1
    assert out.digest == registry_reader.manifest_digest(f"octo-org/{name}", "v1")


def test_slow_manifest_commit_is_verified_not_blindly_retried(
    org: Any, docker_client: Any, low_timeout_client: Any, registry_proxy: FaultProxy,
    small_image: str, registry_reader: Any, unique_name: Callable[[str], str],
) -> None:
    """The registry stores the manifest, the answer comes after the client's read timeout:
    the outcome is unknown, so the registry is asked, and the push counts as landed."""
    client = low_timeout_client
    name = unique_name("slow")
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, name)
    # Blobs first, through the proxy without faults, so only the manifest phase is slow.
    registry_proxy.add(Fault("slow_response", method="PUT", path=MANIFEST, seconds=8, times=1))
    log = ListLog()
    out = engine.push(client, [ref], auth, log, retry=fast(),
                      verify=verifier(auth, client, small_image))
    remote = registry_reader.manifest_digest(f"octo-org/{name}", "v1")
    assert out.digest == remote
    assert "registry holds the image" in log.text, log.text
    assert len(registry_proxy.requests("PUT", MANIFEST)) == 1  # not pushed again


class CuttingDaemonProxy:
    """A unix-socket proxy in front of the daemon that cuts the first image pull's answer
    after its first bytes: the connection drops mid-stream, as when dockerd restarts."""

    def __init__(self, daemon_socket: str, path: Path) -> None:
        self.daemon_socket = daemon_socket
        self.path = str(path)
        self.cut = 0
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(self.path)
        self._server.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self.daemon_socket)
        cut_this = threading.Event()

        def requests_in() -> None:
            while data := conn.recv(65536):
                if b"/images/create" in data and not self.cut:
                    self.cut += 1
                    cut_this.set()
                upstream.sendall(data)

        threading.Thread(target=requests_in, daemon=True).start()
        try:
            while data := upstream.recv(65536):
                conn.sendall(data)
                if cut_this.is_set() and b"\r\n\r\n" in data:
                    break  # headers (and maybe a first chunk) sent: drop the connection
        except OSError:
            pass
        for end in (conn, upstream):  # shutdown wakes the thread blocked in recv
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._server.close()


def test_dropped_daemon_connection_mid_pull_is_retried_not_a_traceback(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    testbed: Any, tmp_path: Path, unique_name: Callable[[str], str],
) -> None:
    """The daemon connection drops once the pull's stream has started: docker-py reads the
    stream from the raw urllib3 response, so this is urllib3's ProtocolError, no requests
    error. It must be retried like the push's, never escape as a traceback (issue 12:
    pull caught only RequestException)."""
    client = docker_client.api
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, unique_name("pullcut"))
    engine.push(client, [ref], auth, ListLog(), retry=fast())
    client.remove_image(ref)
    client.remove_image(small_image, force=True)
    proxy = CuttingDaemonProxy(str(testbed.docker_host).removeprefix("unix://"),
                               tmp_path / "d.sock")
    cut_client = docker.APIClient(base_url=f"unix://{proxy.path}", version="auto", timeout=30)
    log = ListLog()
    try:
        digest = engine.pull(cut_client, ref, auth, log, retry=fast())
    finally:
        cut_client.close()
        proxy.close()
    assert proxy.cut == 1
    assert digest.startswith("sha256:"), log.text
    assert "retry 1/2" in log.text and "connection to the Docker daemon failed" in log.text, (
        log.text)


# --- denials and rate limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (401, "UNAUTHORIZED", "authentication required"),
        (403, "DENIED", "installation not allowed to Write organization package"),
    ],
)
def test_denials_in_the_push_are_never_retried(
    status: int, code: str, message: str,
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    unique_name: Callable[[str], str],
) -> None:
    client = docker_client.api
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, unique_name(f"deny{status}"))
    body = {"errors": [{"code": code, "message": message}]}
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=status, times=None,
                             body=body))
    log = ListLog()
    with pytest.raises(PushError) as failure:
        engine.push(client, [ref], auth, log, retry=fast(attempts=3))
    assert len(registry_proxy.requests("PUT", MANIFEST)) == 1
    assert "retry" not in log.text
    # The registry's message (the containerd store passes on only that) or its code.
    text = str(failure.value).lower()
    assert message.lower() in text or code.lower() in text


def test_a_rate_limited_push_waits_the_registry_out_and_lands(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    unique_name: Callable[[str], str], testbed: Any,
) -> None:
    """429 on the manifest PUT: dockerd reports it without its Retry-After (the containerd
    store, with the registry's own message, without even the status: "error from
    registry: rate limited"), so before the retry our own registry read meets the 429 too,
    which classifies the failure, and waits the Retry-After out."""
    client = docker_client.api
    token = org.github_token("octo-org/app")
    auth, ref = login_and_tag(client, registry_proxy, token, small_image, unique_name("rate"))
    limited = {"errors": [{"code": "TOOMANYREQUESTS", "message": "rate limited"}]}
    failed_puts = daemon_sends(testbed, 429)  # one attempt of ours fails
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=429,
                             times=failed_puts, body=limited, headers={"Retry-After": "1"}))
    registry_proxy.add(Fault("status", method="GET", path=MANIFEST, status=429, times=1,
                             body=limited, headers={"Retry-After": "1"}))
    reader = registry_api.RegistryClient(credential(registry_proxy.address, token))
    image_id = client.inspect_image(small_image)["Id"]
    log = ListLog()
    pushed = engine.push(client, [ref], auth, log, retry=fast(attempts=3),
                         verify=lambda r: registry_api.check_pushed(reader, r, image_id))
    assert pushed.digest.startswith("sha256:")
    assert [s.status for s in registry_proxy.seen if s.method == "PUT" and "manifests" in s.path
            ] == [429] * failed_puts + [201]
    assert reader.waited == [1.0]  # the registry's Retry-After, honoured
    assert "retry 1/2" in log.text


MAINTENANCE = {"errors": [{"code": "UNAVAILABLE", "message": "down for maintenance"}]}


def test_a_5xx_in_the_registrys_own_words_is_retried_when_our_read_meets_it_too(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    registry_reader: Any, unique_name: Callable[[str], str], testbed: Any,
) -> None:
    """The containerd store reports this 503 as "error from registry: down for
    maintenance": no status, no code. Our own read of the tag meets the 503 as well, which
    makes it a retry (the classic stores state the 503 themselves)."""
    client = docker_client.api
    name = unique_name("maint")
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, name)
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503,
                             times=daemon_sends(testbed, 503), body=MAINTENANCE))
    registry_proxy.add(Fault("status", method="GET", path=MANIFEST, status=503, times=1,
                             body=MAINTENANCE))
    log = ListLog()
    out = engine.push(client, [ref], auth, log, retry=fast(attempts=3),
                      verify=verifier(auth, client, small_image))
    assert "retry 1/2" in log.text and "retry 2/2" not in log.text, log.text
    assert "503" in log.text, log.text  # the status, stated or read, is shown
    assert out.digest == registry_reader.manifest_digest(f"octo-org/{name}", "v1")


def test_a_5xx_in_the_registrys_own_words_on_a_registry_that_reads_fine(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    unique_name: Callable[[str], str], testbed: Any,
) -> None:
    """Where nothing says the failure is transient it is not retried blindly: on the
    containerd store neither the text ("error from registry: down for maintenance") nor
    our own read (the registry answers it) shows a 5xx, so the push fails at once, with
    the registry's message. The classic stores state the 503, and retry."""
    client = docker_client.api
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, unique_name("maintput"))
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503, times=None,
                             body=MAINTENANCE))
    log = ListLog()
    with pytest.raises(PushError) as failure:
        engine.push(client, [ref], auth, log, retry=fast(attempts=3),
                    verify=verifier(auth, client, small_image))
    assert "down for maintenance" in str(failure.value) or "503" in str(failure.value)
    our_attempts = len(registry_proxy.requests("PUT", MANIFEST)) // daemon_sends(testbed, 503)
    if testbed.engine_info().containerd_store:
        assert our_attempts == 1 and "retry" not in log.text, log.text
    else:
        assert our_attempts == 3 and "retry 2/2" in log.text, log.text


def test_login_401_is_not_retried(
    org: Any, docker_client: Any, registry_proxy: FaultProxy
) -> None:
    registry_proxy.add(Fault("status", method="GET", path=r"^/v2/$", status=401, times=None,
                             headers={"WWW-Authenticate": 'Basic realm="testbed"'}))
    with pytest.raises(RegistryError) as failure:
        engine.login(docker_client.api, credential(registry_proxy.address, "ghs_wrong"),
                     log=ListLog(), retry=fast(attempts=3))
    # dockerd answers a registry 401 with HTTP 500; engine goes by the text, not the status.
    # One login is two requests (the ping that learns the challenge, the authenticated GET);
    # a retried login would be four or six.
    assert len(registry_proxy.requests("GET", r"^/v2/$")) == 2
    assert "ghs_wrong" not in str(failure.value)


def test_registry_retry_after_is_honoured(
    org: Any, docker_client: Any, registry_proxy: FaultProxy, small_image: str,
    unique_name: Callable[[str], str],
) -> None:
    """The tool's own registry reads (the verification) wait out a 429's Retry-After once."""
    client = docker_client.api
    name = unique_name("ra")
    auth, ref = login_and_tag(client, registry_proxy, org.github_token("octo-org/app"),
                              small_image, name)
    engine.push(client, [ref], auth, ListLog(), retry=fast())
    registry_proxy.add(Fault("status", method="GET", path=MANIFEST, status=429, times=1,
                             headers={"Retry-After": "2"}))
    waits: list[float] = []
    reg = registry_api.RegistryClient(auth, sleep=lambda s: waits.append(s))
    image_id = client.inspect_image(small_image)["Id"]
    assert registry_api.pushed_digest(reg, ref, image_id)
    assert waits == [2.0]
    statuses = [s.status for s in registry_proxy.requests("GET", MANIFEST)]
    assert statuses[0] == 429 and statuses[-1] == 200 and statuses.count(429) == 1, statuses


def test_registry_down_is_a_clean_error(
    org: Any, docker_client: Any, testbed: Any, small_image: str,
    unique_name: Callable[[str], str],
) -> None:
    proxy = FaultProxy(testbed.registry).start()
    client = docker_client.api
    auth, ref = login_and_tag(client, proxy, org.github_token("octo-org/app"), small_image,
                              unique_name("down"))
    proxy.stop()  # connection refused from now on
    log = ListLog()
    with pytest.raises(PushError) as failure:
        engine.push(client, [ref], auth, log, retry=fast(attempts=2))
    text = str(failure.value)
    assert "connection refused" in text.lower() and "Not landed" in text, text


# --- the GitHub stand-in -------------------------------------------------------------------


def test_api_429_retry_after_is_honoured(org: Any, api_proxy: FaultProxy) -> None:
    token = org.pat("octocat", ["read:packages"])
    api_proxy.add(Fault("status", method="GET", path=r"^/repos/", status=429, times=1,
                        headers={"Retry-After": "1"},
                        body={"message": "API rate limit exceeded"}))
    info = github_api.GitHubApi(api_proxy.url, token, timeout=5, retries=2).repository(
        "octo-org/app")
    assert info is not None and info.full_name == "octo-org/app"
    seen = api_proxy.requests("GET", r"^/repos/")
    assert [s.status for s in seen] == [429, 200]
    assert seen[1].at - seen[0].at >= 1.0  # the wait the header asked for, not less


def test_api_5xx_every_time_is_bounded_with_a_clear_message(
    org: Any, api_proxy: FaultProxy
) -> None:
    token = org.pat("octocat", ["read:packages"])
    api_proxy.add(Fault("status", method="GET", path=r"^/user", status=502, times=None,
                        body={"message": "Server Error"}))
    api = github_api.GitHubApi(api_proxy.url, token, timeout=5, retries=2)
    with pytest.raises(GitHubApiError) as failure:
        api.token_owner()
    assert len(api_proxy.requests("GET", r"^/user")) == 3  # 1 + retries
    assert "GET /user" in str(failure.value) and token not in str(failure.value)


def test_api_timeout_is_bounded_with_a_clear_message(org: Any, api_proxy: FaultProxy) -> None:
    token = org.pat("octocat", ["read:packages"])
    api_proxy.add(Fault("delay", method="GET", path=r"^/user", seconds=3, times=None))
    api = github_api.GitHubApi(api_proxy.url, token, timeout=1, retries=1)
    with pytest.raises(GitHubApiError) as failure:
        api.token_owner()
    assert "did not answer in time" in str(failure.value)
    assert len(api_proxy.requests("GET", r"^/user")) <= 2


# --- the daemon and the user's docker config ------------------------------------------------


def test_daemon_stopped_is_a_clean_error(tmp_path: Path) -> None:
    dead = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(dead))  # a socket file nobody listens on: what a stopped daemon leaves
    sock.close()
    with pytest.raises(DaemonError) as failure:
        engine.connect(f"unix://{dead}")
    assert "Cannot reach the Docker daemon" in str(failure.value)


@pytest.mark.parametrize(
    "config",
    ["{not json", '{"credsStore": "no-such-helper"}',
     '{"credHelpers": {"HOST": "no-such-helper"}, "auths": {"HOST": {"auth": "eDp5"}}}'],
    ids=["malformed", "credsStore-missing-helper", "credHelpers-missing-helper"],
)
def test_users_docker_config_does_not_matter(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, org: Any, testbed: Any,
    registry_reader: Any, unique_name: Callable[[str], str],
) -> None:
    """Login, build (X-Registry-Config) and push succeed whatever ~/.docker/config.json holds,
    and the file is left byte for byte as it was."""
    from gh_docker_publish import cli
    from tests.testbed.runner_env import HELLO, SHA

    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    cfg = home / ".docker" / "config.json"
    cfg.write_text(config.replace("HOST", testbed.registry))
    before = cfg.read_bytes()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    name = unique_name("cfg")
    out = tmp_path / "out"
    env = {
        "GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org",
        "GITHUB_ACTOR": "octocat", "GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push", "GITHUB_API_URL": testbed.github_url,
        "GITHUB_SERVER_URL": "https://github.com", "HOME": str(home),
        "GITHUB_TOKEN": org.github_token("octo-org/app"), "DOCKER_HOST": testbed.docker_host,
        "PATH": "/usr/bin:/bin",
    }
    argv = ["publish", "--image", name, "--tags", "v1", "--registry", testbed.registry,
            "--context", str(HELLO), "--build-args", f"BASE_IMAGE={testbed.busybox_image}",
            "--output-file", str(out)]
    code = cli.main(argv, env)
    assert code == 0
    assert cfg.read_bytes() == before
    assert registry_reader.manifest_digest(f"octo-org/{name}", "v1")


def test_docker_cli_would_also_succeed_with_the_malformed_config(
    tmp_path: Path, testbed: Any
) -> None:
    """The comparison: the docker CLI only warns about a malformed config and goes on."""
    cfg = tmp_path / "config.json"
    cfg.write_text("{not json")
    run = subprocess.run(
        ["docker", "--config", str(tmp_path), "-H", testbed.docker_host, "version",
         "--format", "{{.Server.Version}}"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert run.returncode == 0 and run.stdout.strip(), run.stderr


# --- cancellation ------------------------------------------------------------------------------


def test_sigterm_mid_push_exits_non_zero_with_no_outputs_and_no_credentials(
    org: Any, testbed: Any, registry_proxy: FaultProxy, tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """The runner cancels with SIGTERM: the CLI (the action's code path, GITHUB_ACTIONS=true)
    exits 143, GITHUB_OUTPUT stays empty (outputs are written once, at the end), and no
    file under HOME or TMPDIR holds the token in any form."""
    import os
    import signal
    import time

    from tests.reliability.secret_forms import forms, scan_tree
    from tests.testbed.runner_env import HELLO, SHA

    token = org.github_token("octo-org/app")
    registry_proxy.add(Fault("delay", method="PUT", path=MANIFEST, seconds=60, times=None))
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.touch()
    summary.touch()
    env = {
        "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_REPOSITORY": "octo-org/app",
        "GITHUB_REPOSITORY_OWNER": "octo-org", "GITHUB_ACTOR": "octocat", "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_NAME": "push",
        "GITHUB_API_URL": testbed.github_url, "GITHUB_SERVER_URL": "https://github.com",
        "HOME": str(home), "TMPDIR": str(tmp), "GITHUB_TOKEN": token,
        "DOCKER_HOST": testbed.docker_host, "PATH": os.environ["PATH"],
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gh_docker_publish.cli import main; "
         "sys.exit(main())", "publish", "--image", unique_name("term"), "--tags", "v1",
         "--registry", registry_proxy.address, "--context", str(HELLO),
         "--build-args", f"BASE_IMAGE={testbed.busybox_image}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for _ in range(1200):  # until the push reaches the (stalled) manifest PUT
            if registry_proxy.requests("PUT", MANIFEST) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, log
    assert output.read_text() == ""
    assert "Cancelled" in log
    found = scan_tree(home, forms("octocat", token, testbed.registry)) + scan_tree(
        tmp, forms("octocat", token, testbed.registry))
    assert found == [], found
