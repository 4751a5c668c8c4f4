"""Shared fixtures for integration tests: run the action's main step in-process
against the test bed, with INPUT_* and GITHUB_* as the runner would set them."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish import cli
from tests.harness.runner import parse_env_file
from tests.testbed.runner_env import runner_env

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    code: int
    log: str
    outputs: dict[str, str]
    summary: str
    state: dict[str, str] = field(default_factory=dict)  # GITHUB_STATE, for the post step
    exported: dict[str, str] = field(default_factory=dict)  # GITHUB_ENV, for later steps


@pytest.fixture
def octo(github: Any) -> Any:
    """octo-org with octocat as admin, its public repo app, and a PAT-less workflow."""
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app", description="The app", license_spdx="MIT")
    return github


@pytest.fixture
def scratch_context(tmp_path: Path) -> Path:
    """FROM scratch, COPY only: a context that needs no base image (a second engine has
    none) and runs nothing (so it builds for any platform)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (ctx / "hello.txt").write_text(f"built elsewhere {tmp_path.name}\n")
    return ctx


@pytest.fixture
def publish(testbed: Any, tmp_path: Path) -> Callable[..., Outcome]:
    """Run the action's main step in-process with INPUT_* and GITHUB_* as the runner sets them."""

    def run(
        inputs: Mapping[str, str],
        *,
        github_token: str = "",
        workflow_repo: str = "octo-org/app",
        event: Mapping[str, Any] | None = None,
        event_name: str = "push",
        ref: str = "refs/heads/main",
        extra_env: Mapping[str, str] | None = None,
    ) -> Outcome:
        files = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        env = runner_env(
            testbed, files, inputs, github_token=github_token, workflow_repo=workflow_repo,
            event=event, event_name=event_name, ref=ref,
        )
        env.update(extra_env or {})
        stream = io.StringIO()
        code = _run_action(env, stream)
        outputs = dict(parse_env_file((files / "output").read_text()))
        state = dict(parse_env_file((files / "state").read_text()))
        exported = dict(parse_env_file((files / "env").read_text()))
        return Outcome(
            code, stream.getvalue(), outputs, (files / "summary").read_text(), state, exported
        )

    return run


def _run_action(env: dict[str, str], stream: io.StringIO) -> int:
    """cli.run_action with its console writing to ``stream`` instead of stdout."""
    saved = sys.stdout
    sys.stdout = stream
    try:
        return cli.run_action(env)
    finally:
        sys.stdout = saved
