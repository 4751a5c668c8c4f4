"""GHES registry resolution for ``registry: auto`` (registries: the probe, subdomain
isolation) and the one "is this GHES" / http-or-https decisions."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from gh_docker_publish.core import refs
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.refs import Flavour
from gh_docker_publish.core.settings import Settings, settings_from_values
from gh_docker_publish.edges import registries, registry_api
from gh_docker_publish.errors import InputError, RegistryError

GHES = RunContext(server_url="https://ghe.example.com", repository="octo-org/app")


def response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers or {})
    return r


class FakeHosts:
    """GET /v2/ answers per host; unknown hosts do not answer at all."""

    def __init__(self, answers: dict[str, requests.Response]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, url: str) -> requests.Response:
        host = url.split("://", 1)[1].split("/", 1)[0]
        self.asked.append(host)
        if host not in self.answers:
            raise requests.ConnectionError("no such host")
        return self.answers[host]


CHALLENGE = response(401, {"WWW-Authenticate": 'Bearer realm="https://x/token"'})
API_HEADER = response(200, {"Docker-Distribution-Api-Version": "registry/2.0"})


# --- probe -----------------------------------------------------------------------------------


def test_probe_asks_containers_then_docker_then_the_host() -> None:
    hosts = FakeHosts({"ghe.example.com": CHALLENGE})
    choice, tried = registries.probe("https://ghe.example.com", hosts)
    assert hosts.asked == [
        "containers.ghe.example.com",
        "docker.ghe.example.com",
        "ghe.example.com",
    ]
    assert choice is not None and choice.host == "ghe.example.com"
    assert choice.flavour is Flavour.DOCKER
    assert len(tried) == 3 and "without subdomain isolation" in choice.reason


def test_probe_stops_at_the_first_registry() -> None:
    hosts = FakeHosts({"containers.ghe.example.com": API_HEADER, "ghe.example.com": CHALLENGE})
    choice, _ = registries.probe("https://ghe.example.com", hosts)
    assert choice is not None and choice.flavour is Flavour.CONTAINER
    assert hosts.asked == ["containers.ghe.example.com"]


@pytest.mark.parametrize(
    "answer",
    [response(404), response(200), response(401), response(302, {"Location": "/login"})],
)
def test_a_web_front_end_is_not_a_registry(answer: requests.Response) -> None:
    hosts = FakeHosts({"docker.ghe.example.com": answer, "ghe.example.com": API_HEADER})
    choice, tried = registries.probe("https://ghe.example.com", hosts)
    assert choice is not None and choice.host == "ghe.example.com"
    assert f"HTTP {answer.status_code}, not a registry" in tried[1]


def test_probe_keeps_the_servers_scheme_and_port() -> None:
    seen: list[str] = []

    def get(url: str) -> requests.Response:
        seen.append(url)
        return API_HEADER

    choice, _ = registries.probe("http://ghe.test:8080", get)
    assert seen == ["http://containers.ghe.test:8080/v2/"]
    assert choice is not None and choice.host == "containers.ghe.test:8080"


@pytest.mark.parametrize(
    ("mode", "host", "flavour"),
    [
        ("true", "containers.ghe.example.com", Flavour.CONTAINER),
        ("false", "ghe.example.com", Flavour.DOCKER),
    ],
)
def test_subdomain_isolation_skips_the_probe(mode: str, host: str, flavour: Flavour) -> None:
    def never(url: str) -> requests.Response:
        raise AssertionError(f"probed {url}")

    choice = registries.choose(
        Settings(image="app", subdomain_isolation=mode),
        GHES,
        never,  # type: ignore[arg-type]
    )
    assert choice is not None and (choice.host, choice.flavour) == (host, flavour)
    assert f"'subdomain-isolation' is {mode}" in choice.reason


@pytest.mark.parametrize(
    ("settings", "server"),
    [
        (Settings(image="app"), "https://github.com"),
        (Settings(image="app"), "https://octo.ghe.com"),
        (Settings(image="app", registry="docker.ghe.example.com"), "https://ghe.example.com"),
        (Settings(image="ghe.example.com/octo-org/app/img"), "https://ghe.example.com"),
    ],
)
def test_no_probe_where_the_registry_is_known(settings: Settings, server: str) -> None:
    def never(url: str) -> requests.Response:
        raise AssertionError(f"probed {url}")

    assert registries.choose(settings, RunContext(server_url=server), never) is None


def test_no_registry_answers_is_an_error_listing_the_hosts() -> None:
    with pytest.raises(RegistryError) as failure:
        registries.choose(Settings(image="app"), GHES, FakeHosts({}))
    text = str(failure.value)
    for host in ("containers.ghe.example.com", "docker.ghe.example.com", "//ghe.example.com"):
        assert host in text
    assert "subdomain-isolation" in text


def test_subdomain_isolation_input_is_validated(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    values = {"image": "app", "context": str(tmp_path), "file": str(tmp_path / "Dockerfile")}
    env = {"GITHUB_REPOSITORY": "octo-org/app"}
    assert settings_from_values(values, env).subdomain_isolation == "auto"
    assert (
        settings_from_values({**values, "subdomain-isolation": "FALSE"}, env).subdomain_isolation
        == "false"
    )
    with pytest.raises(InputError) as failure:
        settings_from_values({**values, "subdomain-isolation": "yes"}, env)
    assert "subdomain-isolation" in str(failure.value)


def test_ghes_hosts() -> None:
    assert refs.is_ghes("ghe.example.com")
    assert not refs.is_ghes("github.com")
    assert not refs.is_ghes("octo.ghe.com")


def test_scheme_for_the_preflight() -> None:
    server = "http://ghe.test:8080"
    assert registry_api.scheme_for("docker.ghe.test:8080", server) == "http"
    assert registry_api.scheme_for("ghcr.io", server) == "https"
    assert registry_api.scheme_for("127.0.0.1:5000") == "http"
    assert registry_api.scheme_for("localhost:5000") == "http"


# --- granted actions -------------------------------------------------------------------------
