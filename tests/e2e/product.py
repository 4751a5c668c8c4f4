"""This repository's action, run through the harness against the test bed: the pieces
``test_action.py`` and ``demo.py`` share, so the demo publishes exactly the way the tests do.

The action directory is the repository root (its action.yml and Dockerfile, built on the
bed's Python base: tests/testbed/action_image.py). A run's workspace is a copy of
``examples/hello``; its ``github`` context is a push to ``main`` with the bed's stand-in as
``api_url`` and https://github.com as ``server_url``; the ``registry`` input is the bed's
registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.harness.runner import ActionHarness, RunResult, default_github_context
from tests.testbed import action_image

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
SHA = "4f2c1b0e9d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
# A fixed commit time: the `created` label comes from the event's head_commit.timestamp,
# so publishing the same commit again builds the same image (and uploads nothing).
COMMIT_TIME = "2024-05-01T12:00:00+00:00"


def harness_for(client: Any, bed: Any) -> ActionHarness:
    """The harness on the bed's daemon, building the action on the bed's Python base."""
    return ActionHarness(
        client,
        build_args=dict(action_image.BUILD_ARGS),
        dockerfile_rewrite=lambda text: action_image.for_bed(text, bed.python_image),
    )


def hello_workspace(directory: Path) -> Path:
    """A checkout holding examples/hello at its root (the default context is ``.``)."""
    shutil.copytree(HELLO, directory)
    return directory


def github_context(
    bed: Any, token: str, repository: str = "octo-org/app", server_url: str = "https://github.com"
) -> dict[str, Any]:
    """A push to main of ``repository`` with ``token`` as the workflow's GITHUB_TOKEN
    (``${{ github.token }}``, which the runner masks from the start)."""
    return default_github_context(
        repository=repository,
        actor="octocat",
        sha=SHA,
        ref="refs/heads/main",
        event_name="push",
        server_url=server_url,
        api_url=bed.github_url,
        graphql_url=f"{bed.github_url}/graphql",
        token=token,
        event={
            "repository": {"full_name": repository, "default_branch": "main"},
            "head_commit": {"id": SHA, "timestamp": COMMIT_TIME},
        },
    )


def publish(
    harness: ActionHarness,
    bed: Any,
    inputs: Mapping[str, str],
    *,
    github_token: str,
    workspace: Path,
    secrets: Iterable[str] = (),
    repository: str = "octo-org/app",
    server_url: str = "https://github.com",
) -> RunResult:
    """One run of the action's step; ``inputs`` is the step's ``with:`` on top of the bed's
    registry and examples/hello's ``BASE_IMAGE`` build argument."""
    with_ = {
        "registry": bed.registry,
        "build-args": f"BASE_IMAGE={bed.busybox_image}",
        **inputs,
    }
    return harness.run(
        ROOT,
        inputs=with_,
        github=github_context(bed, github_token, repository, server_url),
        secrets=secrets,
        workspace=workspace,
    )
