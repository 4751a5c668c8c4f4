"""GitHub Enterprise Server's registries against the test bed's GHES hosts.

The bed serves ``containers.ghe.test``, ``docker.ghe.test``/``docker.isolated.test`` and
``ghe.test``/``plain.test`` from three real registries on loopback (tests/testbed/ghes.py);
the stand-in applies the Container registry's rules to the first and the Docker registry's
(package of a repository, OWNER/REPOSITORY/IMAGE) to the others.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from gh_docker_publish import cli
from gh_docker_publish.core.context import load_context
from gh_docker_publish.core.refs import Flavour
from gh_docker_publish.core.settings import load_settings
from gh_docker_publish.edges import registries
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.preflight import ImageLimits
from gh_docker_publish.errors import RegistryError
from gh_docker_publish.flows import publish
from tests.harness.runner import parse_env_file
from tests.testbed import ghes
from tests.testbed.runner_env import runner_env
from tests.testbed.standin import Signer

ROOT = Path(__file__).resolve().parents[2]


def built_anything(log: str) -> bool:
    """Any sign of a build: the builder line, its group, classic or BuildKit output."""
    return any(mark in log for mark in ("Builder:", "::group::Build", "Step 1/", "[internal]"))


@dataclass
class Outcome:
    code: int
    log: str
    outputs: dict[str, str]


@pytest.fixture
def octo(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app", description="The app")
    return github


@pytest.fixture
def ghes_env(testbed: Any, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """The runner's variables for a workflow on the GHES test server ``server``."""

    def make(server: str, inputs: Mapping[str, str], github_token: str = "") -> dict[str, str]:
        return runner_env(
            testbed, tmp_path / f"run-{len(list(tmp_path.iterdir()))}",
            {"registry": "auto", **inputs}, github_token=github_token,
            server_url=f"http://{server}:{testbed.ghes_port}",
        )

    return make


def run_action(env: dict[str, str]) -> Outcome:
    stream = io.StringIO()
    saved, sys.stdout = sys.stdout, stream
    try:
        code = cli.run_action(env)
    finally:
        sys.stdout = saved
    outputs = dict(parse_env_file(Path(env["GITHUB_OUTPUT"]).read_text()))
    return Outcome(code, stream.getvalue(), outputs)


def registry_tags(testbed: Any, key: str, name: str) -> list[str]:
    """Tags the GHES registry ``key`` really holds, read with a self-signed admin token."""
    reg = next(r for r in ghes.REGISTRIES if r.key == key)
    signer = Signer(str(testbed.signing_key), str(testbed.signing_cert), "github-standin",
                    reg.service)
    token = signer.mint("reader", [{"type": "repository", "name": name, "actions": ["pull"]}])
    r = requests.get(f"http://{reg.address}:{testbed.ghes_port}/v2/{name}/tags/list",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return sorted(r.json().get("tags") or []) if r.status_code == 200 else []


# --- the probe, against real hosts --------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "expected", "flavour"),
    [
        ("ghe.test", "containers.ghe.test", Flavour.CONTAINER),
        ("isolated.test", "docker.isolated.test", Flavour.DOCKER),
        ("plain.test", "plain.test", Flavour.DOCKER),
    ],
)
def test_probe_takes_the_first_host_that_answers(
    testbed: Any, server: str, expected: str, flavour: Flavour
) -> None:
    choice, tried = registries.probe(f"http://{server}:{testbed.ghes_port}")
    assert choice is not None, tried
    assert choice.host == f"{expected}:{testbed.ghes_port}"
    assert choice.flavour is flavour
    # Every host before the chosen one was asked and did not answer.
    assert len(tried) == [h for h, _, _ in registries.candidates(server)].index(expected) + 1


def test_probe_failure_names_every_host_asked(
    testbed: Any, ghes_env: Callable[..., dict[str, str]]
) -> None:
    out = run_action(ghes_env("noregistry.test", {"image": "hello", "tags": "v1"}, "x"))
    assert out.code == 1
    assert "No registry of noregistry.test" in out.log
    for prefix in ("containers.", "docker.", ""):
        assert f"http://{prefix}noregistry.test:{testbed.ghes_port}/v2/: no answer" in out.log
    assert not built_anything(out.log)


# --- publishing to each flavour -----------------------------------------------------------


def test_docker_registry_with_isolation_github_token(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    out = run_action(ghes_env("isolated.test", {"image": image, "tags": "v1"}, token))
    assert out.code == 0, out.log
    host = f"docker.isolated.test:{testbed.ghes_port}"
    assert out.outputs["image"] == f"{host}/octo-org/app/{image}"
    assert "GitHub's Docker registry, path OWNER/REPOSITORY/IMAGE" in out.log
    assert "answered like a registry" in out.log
    assert registry_tags(testbed, "docker", f"octo-org/app/{image}") == ["v1"]
    assert out.outputs["package-url"] == f"http://isolated.test:{testbed.ghes_port}/octo-org/app/packages"
    packages = {p["name"]: p for p in octo.state()["docker_packages"]}
    assert packages[image]["repository"] == "octo-org/app"
    assert "Preflight: the GITHUB_TOKEN may push" in out.log


def test_docker_registry_without_isolation_pat(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    octo.repo("octo-org/secret", private=True)
    image = unique_name("hello")
    pat = octo.pat("octocat", ["write:packages", "repo"])
    out = run_action(ghes_env(
        "plain.test", {"image": image, "tags": "v1", "repository": "octo-org/secret",
                       "token": pat}))
    assert out.code == 0, out.log
    assert out.outputs["image"] == f"plain.test:{testbed.ghes_port}/octo-org/secret/{image}"
    assert out.outputs["token-source"] == "token"
    assert registry_tags(testbed, "plain", f"octo-org/secret/{image}") == ["v1"]


def test_container_registry_on_ghes(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    out = run_action(ghes_env("ghe.test", {"image": image, "tags": "v1"}, token))
    assert out.code == 0, out.log
    assert out.outputs["image"] == f"containers.ghe.test:{testbed.ghes_port}/octo-org/{image}"
    assert registry_tags(testbed, "containers", f"octo-org/{image}") == ["v1"]
    assert out.outputs["package-url"] == (
        f"http://ghe.test:{testbed.ghes_port}/octo-org/app/pkgs/container/{image}")


@pytest.mark.parametrize(
    ("isolation", "host", "path"),
    [("true", "containers.ghe.test", "octo-org/{image}"),
     ("false", "ghe.test", "octo-org/app/{image}")],
)
def test_subdomain_isolation_input_skips_the_probe(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str], isolation: str, host: str, path: str,
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    out = run_action(ghes_env(
        "ghe.test", {"image": image, "tags": "v1", "subdomain-isolation": isolation}, token))
    assert out.code == 0, out.log
    assert out.outputs["image"] == f"{host}:{testbed.ghes_port}/{path.format(image=image)}"
    assert f"'subdomain-isolation' is {isolation}" in out.log
    assert "answered like a registry" not in out.log


# --- preflight: denied before any build output -----------------------------------------------


def test_pat_without_repo_scope_fails_before_the_build(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    octo.repo("octo-org/secret", private=True)
    image = unique_name("hello")
    pat = octo.pat("octocat", ["write:packages"])  # no `repo`: private repo on Docker registry
    out = run_action(ghes_env(
        "plain.test", {"image": image, "tags": "v1", "repository": "octo-org/secret",
                       "token": pat}))
    assert out.code == 1
    assert "Preflight: the personal access token may not push" in out.log
    assert "`repo`" in out.log  # the hint names the missing scope
    assert not built_anything(out.log)
    assert registry_tags(testbed, "plain", f"octo-org/secret/{image}") == []


def test_github_token_of_another_repository_fails_before_the_build(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    octo.repo("octo-org/lib")
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    out = run_action(ghes_env(
        "isolated.test", {"image": image, "tags": "v1", "repository": "octo-org/lib",
                          "auth": "github-token"}, token))
    assert out.code == 1
    assert "permission_denied: write_package" in out.log
    assert "Manage Actions access" in out.log
    assert not built_anything(out.log)


def test_read_only_github_token_on_ghcr_style_bed_fails_before_the_build(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    """The default bed's Container registry too: a `packages: read` token is stopped early."""
    image = unique_name("hello")
    token = octo.github_token("octo-org/app", packages="read")
    env = ghes_env("ghe.test", {"image": image, "tags": "v1", "registry": testbed.registry,
                                "push": "true"}, token)
    env["GITHUB_SERVER_URL"] = "https://github.com"
    out = run_action(env)
    assert out.code == 1
    assert "Preflight:" in out.log and "may not push" in out.log
    assert not built_anything(out.log)


# --- after the build: limits ---------------------------------------------------------------


def test_layer_over_the_limit_stops_the_push(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    env = ghes_env("isolated.test", {"image": image, "tags": "v1"}, token)
    stream = io.StringIO()
    console = Console(env, stream=stream)
    with pytest.raises(RegistryError) as failure:
        publish.run(load_settings(env), load_context(env), console, publish.Services(
            docker_host=testbed.docker_host,
            image_limits=ImageLimits(layer_bytes=1000, image_bytes=500),
        ))
    assert "over the 1.0 kB layer limit" in str(failure.value)
    assert "Nothing was pushed" in str(failure.value)
    assert "degraded performance" in stream.getvalue()  # the image-size warning came first
    assert registry_tags(testbed, "docker", f"octo-org/app/{image}") == []


# --- ghes pull mode ----------------------------------------
# mode: pull on GitHub Enterprise Server finds the registry the way publish does: a GHES
# instance that runs only the Docker registry (docker.HOSTNAME or HOSTNAME) is probed, and
# ``subdomain-isolation`` is honoured, instead of assuming containers.HOSTNAME.

__all__ = ["ghes_env", "octo"]  # fixtures, imported for pytest


def test_pull_mode_uses_the_probed_docker_registry(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    pushed = run_action(ghes_env("isolated.test", {"image": image, "tags": "v1"}, token))
    assert pushed.code == 0, pushed.log
    out = run_action(ghes_env("isolated.test", {"image": image, "tags": "v1", "mode": "pull"},
                              token))
    assert out.code == 0, out.log
    host = f"docker.isolated.test:{testbed.ghes_port}"
    assert out.outputs["tags"] == f"{host}/octo-org/app/{image}:v1"
    assert out.outputs["digest"] == pushed.outputs["digest"]


def test_pull_mode_honours_subdomain_isolation_false(
    testbed: Any, octo: Any, ghes_env: Callable[..., dict[str, str]],
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    inputs = {"image": image, "tags": "v1", "subdomain-isolation": "false"}
    pushed = run_action(ghes_env("ghe.test", inputs, token))
    assert pushed.code == 0, pushed.log
    out = run_action(ghes_env("ghe.test", {**inputs, "mode": "pull"}, token))
    assert out.code == 0, out.log
    assert out.outputs["tags"] == f"ghe.test:{testbed.ghes_port}/octo-org/app/{image}:v1"
