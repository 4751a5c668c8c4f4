"""Workflows moving from the docker/* actions (issue 14): the `with:` blocks of the
README examples of docker/metadata-action, docker/build-push-action and docker/login-action,
pasted into our one step as they are, run through the runner harness against the bed.

Only what the bed forces differs: the image lives on the bed's registry (not Docker Hub or
ghcr.io), expressions are given as the runner would have evaluated them, and the bed's base
image is passed as a build argument (product.publish), as in every e2e test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import product
from tests.e2e.test_action import assert_never_leaked
from tests.harness.runner import ActionHarness, RunResult
from tests.testbed.runner_env import SHA

# docker/metadata-action README, "Basic" usage: its tags block, unchanged.
METADATA_BASIC_TAGS = """\
type=schedule
type=ref,event=branch
type=ref,event=pr
type=semver,pattern={{version}}
type=semver,pattern={{major}}.{{minor}}
type=semver,pattern={{major}}
type=sha
"""
# metadata-action README, "Overwrite labels".
METADATA_LABELS = """\
maintainer=CrazyMax
org.opencontainers.image.title=MyCustomTitle
org.opencontainers.image.description=Another description
org.opencontainers.image.vendor=MyCompany
"""
SECRET_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN --mount=type=secret,id=github_token test -s /run/secrets/github_token
RUN --mount=type=secret,id=MY_SECRET test "$(cat /run/secrets/MY_SECRET)" = "file-secret"
"""


@pytest.fixture
def octo(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app", description="The app", license_spdx="MIT")
    return github


def run(runner: ActionHarness, testbed: Any, inputs: dict[str, str], *, token: str,
        workspace: Path, secrets: tuple[str, ...] = ()) -> RunResult:
    return product.publish(
        runner, testbed, inputs, github_token=token, workspace=workspace, secrets=secrets
    )


def test_metadata_action_and_build_push_action_readme_blocks(
    octo: Any, runner: ActionHarness, testbed: Any, registry_reader: Any, docker_client: Any,
    unique_name: Callable[[str], str], tmp_path: Path,
) -> None:
    """metadata-action's images/tags/labels with build-push-action's context, push and
    secrets examples (`"github_token=${{ secrets.GITHUB_TOKEN }}"`, secret-files)."""
    name = unique_name("migrate")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text(SECRET_DOCKERFILE)
    (workspace / "secret.txt").write_text("file-secret")
    token = octo.github_token("octo-org/app")
    result = run(runner, testbed, {
        "images": f"{testbed.registry}/octo-org/{name}",
        "tags": METADATA_BASIC_TAGS,
        "labels": METADATA_LABELS,
        "context": ".",
        "push": "true",  # ${{ github.event_name != 'pull_request' }} on a push
        "secrets": f'"github_token={token}"',
        "secret-files": '"MY_SECRET=./secret.txt"',
    }, token=token, workspace=workspace)
    assert result.conclusion == "success", result.text
    # On a push to main: the branch rule, then type=sha (priorities 600, 100); no latest.
    assert result.outputs["tag-names"].splitlines() == ["main", f"sha-{SHA[:7]}"]
    assert result.outputs["version"] == "main"
    image = f"{testbed.registry}/octo-org/{name}"
    assert result.outputs["tags"].splitlines() == [f"{image}:main", f"{image}:sha-{SHA[:7]}"]
    digest = result.outputs["digest"]
    assert registry_reader.manifest_digest(f"octo-org/{name}", "main") == digest
    labels = docker_client.images.get(f"{image}:main").labels
    assert labels["org.opencontainers.image.title"] == "MyCustomTitle"
    assert labels["maintainer"] == "CrazyMax"
    assert json.loads(result.outputs["metadata"])["containerimage.digest"] == digest
    assert_never_leaked(result, token)


def test_build_push_action_readme_tags_and_load(
    octo: Any, runner: ActionHarness, testbed: Any, registry_reader: Any, docker_client: Any,
    unique_name: Callable[[str], str], tmp_path: Path,
) -> None:
    """build-push-action's full-reference tags, `load: true` and its build options."""
    name = unique_name("bpa")
    image = f"{testbed.registry}/octo-org/{name}"
    token = octo.github_token("octo-org/app")
    result = run(runner, testbed, {
        "context": ".",
        "load": "true",
        "push": "true",
        "tags": f"{image}:latest\n{image}:1.0.0",
        "add-hosts": "docker:10.180.0.1",
        "network": "host",
        "shm-size": "1g",
    }, token=token, workspace=product.hello_workspace(tmp_path / "ws"))
    assert result.conclusion == "success", result.text
    assert result.outputs["tags"].splitlines() == [f"{image}:latest", f"{image}:1.0.0"]
    assert result.outputs["tag-names"].splitlines() == ["latest", "1.0.0"]
    for tag in ("latest", "1.0.0"):
        assert registry_reader.manifest_digest(f"octo-org/{name}", tag) == result.outputs["digest"]
    assert docker_client.images.get(f"{image}:1.0.0").id == result.outputs["imageid"]  # loaded
    assert_never_leaked(result, token)


def test_login_action_registry_auth_and_metadata_images(
    octo: Any, runner: ActionHarness, testbed: Any, registry_reader: Any,
    unique_name: Callable[[str], str], tmp_path: Path,
) -> None:
    """login-action's registry-auth YAML for a registry that is not GitHub's, and
    metadata-action's images list with an entry disabled."""
    kept, disabled = unique_name("ra"), unique_name("off")
    pat = octo.pat("octocat", ["write:packages"])
    result = run(runner, testbed, {
        "images": f"name={testbed.registry}/octo-org/{kept}\n"
                  f"name={testbed.registry}/octo-org/{disabled},enable=false",
        "tags": "type=raw,value=v1",
        "registry-auth": f"- registry: {testbed.registry}\n  username: octocat\n"
                         f"  password: {pat}\n",
    }, token=octo.github_token("octo-org/app"),
        workspace=product.hello_workspace(tmp_path / "ws"), secrets=(pat,))
    assert result.conclusion == "success", result.text
    assert result.outputs["token-source"] == "registry-auth"
    assert result.outputs["images"] == f"{testbed.registry}/octo-org/{kept}"
    assert registry_reader.manifest_digest(f"octo-org/{kept}", "v1") == result.outputs["digest"]
    assert registry_reader.manifest_digest(f"octo-org/{disabled}", "v1") is None
    assert_never_leaked(result, pat)
