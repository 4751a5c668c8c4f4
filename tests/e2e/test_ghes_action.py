"""The action image on GitHub Enterprise Server, run the way the runner runs it.

The bed's GHES test servers (tests/testbed/ghes.py) resolve for the daemon and, through
the host network, for the action container too: with ``registry: auto`` the action
probes the server's registries itself, from inside its container.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import product
from tests.harness.runner import ActionHarness, RunResult

pytestmark = pytest.mark.e2e


@pytest.fixture
def octo(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app", description="The app")
    return github


def run_on(
    runner: ActionHarness,
    testbed: Any,
    tmp_path: Path,
    server: str,
    inputs: dict[str, str],
    token: str,
) -> RunResult:
    workspace = product.hello_workspace(tmp_path / "ws")
    return product.publish(
        runner,
        testbed,
        {"registry": "auto", **inputs},
        github_token=token,
        workspace=workspace,
        server_url=f"http://{server}:{testbed.ghes_port}",
    )


def test_container_registry_is_found_by_probing_from_the_action(
    octo: Any,
    runner: ActionHarness,
    testbed: Any,
    tmp_path: Path,
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    result = run_on(
        runner,
        testbed,
        tmp_path,
        "ghe.test",
        {"image": image, "tags": "v1"},
        octo.github_token("octo-org/app"),
    )
    assert result.conclusion == "success", result.text
    registry = f"containers.ghe.test:{testbed.ghes_port}"
    assert result.outputs["registry"] == registry
    assert result.outputs["image"] == f"{registry}/octo-org/{image}"
    assert any(
        "containers.ghe.test" in line and "Container registry" in line for line in result.log
    ), "the log says which flavour and why"
    assert result.outputs["package-url"].startswith(f"http://ghe.test:{testbed.ghes_port}/")
    assert result.outputs["digest"].startswith("sha256:")


def test_docker_registry_without_subdomain_isolation_uses_the_repository_path(
    octo: Any,
    runner: ActionHarness,
    testbed: Any,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    result = run_on(
        runner,
        testbed,
        tmp_path,
        "plain.test",
        {"image": image, "tags": "v1"},
        octo.github_token("octo-org/app"),
    )
    assert result.conclusion == "success", result.text
    registry = f"plain.test:{testbed.ghes_port}"
    # The Docker registry names the repository: OWNER/REPOSITORY/IMAGE.
    assert result.outputs["image"] == f"{registry}/octo-org/app/{image}"
    assert result.outputs["token-source"] == "github-token"
