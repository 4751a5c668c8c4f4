"""The variables the Actions runner gives a Docker action's main step, pointed at the test
bed: for the tests and the benchmark that run the action in-process (the runner harness in
tests/e2e does the same for the action's container)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SHA = "4f2c1b0e9d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
PUSH_TO_MAIN: dict[str, Any] = {"repository": {"default_branch": "main"}}


def runner_env(
    bed: Any,
    files: Path,
    inputs: Mapping[str, str] = {},
    *,
    github_token: str = "",
    workflow_repo: str = "octo-org/app",
    event: Mapping[str, Any] | None = None,
    event_name: str = "push",
    ref: str = "refs/heads/main",
    server_url: str = "https://github.com",
) -> dict[str, str]:
    """GITHUB_*, the file-command files (created empty in ``files``), and INPUT_* with the
    bed's registry and examples/hello as defaults under ``inputs``. Input names keep their
    hyphens, as the runner passes them (``INPUT_BUILD-ARGS``)."""
    files.mkdir(parents=True, exist_ok=True)
    (files / "event.json").write_text(json.dumps(PUSH_TO_MAIN if event is None else event))
    for name in ("output", "summary", "state", "env"):
        (files / name).write_text("")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": server_url,
        "GITHUB_API_URL": bed.github_url,
        "GITHUB_REPOSITORY": workflow_repo,
        "GITHUB_REPOSITORY_OWNER": workflow_repo.split("/")[0],
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SHA": SHA,
        "GITHUB_REF": ref,
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(files / "event.json"),
        "GITHUB_OUTPUT": str(files / "output"),
        "GITHUB_ENV": str(files / "env"),
        "GITHUB_STEP_SUMMARY": str(files / "summary"),
        "GITHUB_STATE": str(files / "state"),
        "DOCKER_HOST": bed.docker_host,
        "INPUT_REGISTRY": bed.registry,
        "INPUT_CONTEXT": str(HELLO),
        "INPUT_BUILD-ARGS": f"BASE_IMAGE={bed.busybox_image}",
        "INPUT_GITHUB-TOKEN": github_token,
    }
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    return env
