"""The preflight checks: push access from a token's grants, the GHES Docker registry's
engine and image rules, and the upload probe."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.refs import Flavour, Target
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import preflight
from tests.testbed import ghes
from tests.testbed.standin import (
    DOCKER,
    SCOPE_MISMATCH,
    WRITE_DENIED,
    Account,
    Repo,
    Token,
    World,
    docker_package_of,
    docker_push_decision,
    grant,
)

FIXTURES = Path(__file__).parent / "fixtures"



def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.sig"


def test_granted_actions_from_a_jwt() -> None:
    token = _jwt({"access": [{"type": "repository", "name": "o/r/i", "actions": ["pull"]}]})
    assert preflight.granted_actions(token, "o/r/i") == {"pull"}
    assert preflight.granted_actions(token, "o/other") == set()
    assert preflight.granted_actions("opaque-ghcr-token", "o/r/i") is None


@pytest.mark.parametrize(
    ("version", "too_new"),
    [
        ("20.10.24+dfsg1", False),
        ("24.0.9", False),
        ("25.0.0", True),
        ("28.2.2", True),
        ("", False),
        ("dev", False),
    ],
)
def test_engine_25_and_later(version: str, too_new: bool) -> None:
    assert preflight.engine_too_new(version) is too_new


# --- image checks against recorded inspect data ---------------------------------------------


@pytest.fixture
def python3() -> dict[str, Any]:
    """``docker inspect`` and ``docker history`` of testbed/python:3, recorded on the bed."""
    return dict(json.loads((FIXTURES / "inspect-python3-linux.json").read_text()))


def test_recorded_image_passes_githubs_limits(python3: dict[str, Any]) -> None:
    result = preflight.check_image(python3["inspect"], python3["history"], preflight.ImageLimits())
    assert result.errors == () and result.warnings == ()
    assert result.size == python3["inspect"]["Size"] > 100_000_000


def test_small_limits_flag_the_layer_and_warn_about_the_image(python3: dict[str, Any]) -> None:
    limits = preflight.ImageLimits(layer_bytes=100_000_000, image_bytes=50_000_000)
    result = preflight.check_image(python3["inspect"], python3["history"], limits)
    assert len(result.errors) == 1 and "over the 100.0 MB layer limit" in result.errors[0]
    assert len(result.warnings) == 1 and "degraded performance" in result.warnings[0]


def test_a_windows_image_is_foreign(python3: dict[str, Any]) -> None:
    # The recorded Linux image with the OS a Windows daemon reports: no Windows daemon here.
    windows = {**python3["inspect"], "Os": "windows", "OsVersion": "10.0.20348.2340"}
    result = preflight.check_image(windows, python3["history"], preflight.ImageLimits())
    assert len(result.errors) == 1 and "foreign layers" in result.errors[0]


def test_checks_apply_to_the_docker_registry_only() -> None:
    docker = Target("ghe.test", Flavour.DOCKER, "o", "o/r", "o/r/i")
    assert preflight.applies_to(docker)
    assert not preflight.applies_to(Target("ghcr.io", Flavour.CONTAINER, "o", "o/r", "o/i"))


# --- the stand-in's Docker-registry rules ---------------------------------------------------


def _world() -> World:
    world = World()
    world.accounts["octo-org"] = Account("octo-org", "Organization", 1, {"octocat": "admin"})
    world.accounts["octocat"] = Account("octocat", "User", 2)
    world.repos["octo-org/app"] = Repo("octo-org/app", 3)
    world.repos["octo-org/secret"] = Repo("octo-org/secret", 4, private=True, visibility="private")
    return world


def test_docker_names_belong_to_a_repository() -> None:
    assert docker_package_of("Octo-Org/App/hello") == ("octo-org/app", "hello")
    assert docker_package_of("octo-org/hello") == ("", "hello")


@pytest.mark.parametrize(
    ("token", "name", "allowed", "message"),
    [
        (
            Token("t", "github_token", repository="octo-org/app", packages="write"),
            "octo-org/app/img",
            True,
            "",
        ),
        (
            Token("t", "github_token", repository="octo-org/app", packages="write"),
            "octo-org/secret/img",
            False,
            WRITE_DENIED,
        ),
        (
            Token("t", "github_token", repository="octo-org/app", packages="write", fork_pr=True),
            "octo-org/app/img",
            False,
            WRITE_DENIED,
        ),
        (
            Token("t", "pat", owner="octocat", scopes=frozenset({"write:packages"})),
            "octo-org/app/img",
            True,
            "",
        ),
        (
            Token("t", "pat", owner="octocat", scopes=frozenset({"write:packages"})),
            "octo-org/secret/img",
            False,
            SCOPE_MISMATCH,
        ),
        (
            Token("t", "pat", owner="octocat", scopes=frozenset({"write:packages", "repo"})),
            "octo-org/secret/img",
            True,
            "",
        ),
        (
            Token("t", "pat", owner="octocat", scopes=frozenset({"read:packages"})),
            "octo-org/app/img",
            False,
            SCOPE_MISMATCH,
        ),
    ],
)
def test_docker_registry_push_rules(token: Token, name: str, allowed: bool, message: str) -> None:
    decision = docker_push_decision(_world(), token, name)
    assert (decision.allowed, decision.message) == (allowed, message)


def test_grant_uses_the_docker_rules_for_docker_registries() -> None:
    token = Token("t", "github_token", repository="octo-org/app", packages="write")
    scope = ["repository:octo-org/app/img:pull,push"]
    assert grant(_world(), token, scope, DOCKER).access[0]["actions"] == ["pull", "push"]
    # Read Container-style, octo-org/secret/img is a new package "secret/img" of the
    # workflow's owner, which GITHUB_TOKEN may create: the flavour must decide.
    other = ["repository:octo-org/secret/img:pull,push"]
    assert grant(_world(), token, other, DOCKER).denied == WRITE_DENIED
    assert not grant(_world(), token, other).denied


# --- the bed's /etc/hosts block -------------------------------------------------------------


def test_hosts_block_is_shared_and_removed_with_its_last_user(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    original = "127.0.0.1 localhost\n"
    hosts.write_text(original)
    assert ghes.update_hosts(hosts, "/var/tmp/bed-a", add=True)
    assert not ghes.update_hosts(hosts, "/var/tmp/bed-a", add=True)  # idempotent
    assert ghes.update_hosts(hosts, "/var/tmp/bed-b", add=True)
    text = hosts.read_text()
    assert text.count(ghes.BEGIN) == 1 and "127.0.0.3 docker.ghe.test" in text
    assert ghes.update_hosts(hosts, "/var/tmp/bed-a", add=False)
    assert "127.0.0.2 containers.ghe.test" in hosts.read_text()  # bed-b still uses it
    assert ghes.update_hosts(hosts, "/var/tmp/bed-b", add=False)
    assert hosts.read_text() == original


def test_registry_reads_use_one_scheme_rule() -> None:
    """The verify-before-retry reads pick http exactly where preflight does: a registry
    that resolves into loopback, or the scheme the pipeline passes for a GHES host."""
    from gh_docker_publish.edges.registry_api import base_url

    assert base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url("localhost:5000") == "http://localhost:5000"
    assert base_url("ghcr.io") == "https://ghcr.io"
    assert base_url("docker.ghe.example", "http") == "http://docker.ghe.example"


class EngineAnswering:
    """Answers ``version()`` as a given Docker Engine would (the bed's daemon is 20.10)."""

    def __init__(self, version: str) -> None:
        self._version = version

    def version(self) -> dict[str, Any]:
        return {"Version": self._version, "ApiVersion": "1.44", "Os": "linux"}


class Lines:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self.warnings.append(message)


@pytest.mark.parametrize(
    ("engine", "target", "warned"),
    [
        ("25.0.3", Target("docker.ghe.test", Flavour.DOCKER, "o", "o/r", "o/r/i"), True),
        ("28.2.2", Target("ghe.test", Flavour.DOCKER, "o", "o/r", "o/r/i"), True),
        ("24.0.9", Target("ghe.test", Flavour.DOCKER, "o", "o/r", "o/r/i"), False),
        ("28.2.2", Target("containers.ghe.test", Flavour.CONTAINER, "o", "o/r", "o/i"), False),
    ],
)
def test_engine_25_warning_only_for_the_ghes_docker_registry(
    engine: str, target: Target, warned: bool
) -> None:
    log = Lines()
    preflight.warn_engine(EngineAnswering(engine), target, log)
    assert bool(log.warnings) is warned
    if warned:
        assert preflight.ENGINE_25_ADVICE in log.warnings[0] and engine in log.warnings[0]


def test_a_token_service_answering_html_leaves_the_verdict_to_the_upload_probe() -> None:
    """A proxy's HTML page instead of a token: no crash; the upload probe decides."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Registry(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/v2/":
                realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
                self._answer(401, WWW_Authenticate=f'Bearer realm="{realm}",service="t"')
            else:
                self._answer(200, b"<html>sign in</html>", Content_Type="text/html")

        def do_POST(self) -> None:
            self._answer(202, Location="/v2/o/i/blobs/uploads/u1")

        def do_DELETE(self) -> None:
            self._answer(204)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = Target(
            f"127.0.0.1:{server.server_address[1]}", Flavour.CONTAINER, "o", "o/r", "o/i"
        )
        credential = Credential(target.registry, "octocat", Secret("ghp_x"), "token", "test")
        access = preflight.check_push_access(target, credential, scheme="http", fields={})
    finally:
        server.shutdown()
    assert access.confirmed, access.detail
