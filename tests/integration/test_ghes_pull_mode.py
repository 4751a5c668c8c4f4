"""mode: pull on GitHub Enterprise Server finds the registry the way publish does: a GHES
instance that runs only the Docker registry (docker.HOSTNAME or HOSTNAME) is probed, and
``subdomain-isolation`` is honoured, instead of assuming containers.HOSTNAME."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.test_ghes import ghes_env, octo, run_action

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
