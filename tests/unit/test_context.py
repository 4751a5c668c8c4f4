"""RunContext from a runner-shaped environment and captured event payloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from gh_docker_publish.core.context import RunContext, load_context
from gh_docker_publish.errors import PublishError

EVENTS = Path(__file__).parent / "fixtures" / "context"

# The default variables a github.com runner sets for a push to main (captured, trimmed).
PUSH_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_API_URL": "https://api.github.com",
    "GITHUB_REPOSITORY": "Octo-Org/Hello-World",
    "GITHUB_REPOSITORY_OWNER": "Octo-Org",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_EVENT_PATH": str(EVENTS / "push_main.json"),
    "GITHUB_WORKSPACE": "/github/workspace",
    "GITHUB_RUN_ID": "1658821493",
    "GITHUB_RUN_ATTEMPT": "1",
    "RUNNER_TEMP": "/home/runner/work/_temp",
    "RUNNER_DEBUG": "1",
}


def test_push_context() -> None:
    ctx = load_context(PUSH_ENV)
    assert ctx.server_host == "github.com"
    assert ctx.api_url == "https://api.github.com"
    assert (ctx.repository, ctx.repository_owner, ctx.actor) == (
        "Octo-Org/Hello-World", "Octo-Org", "octocat"
    )
    assert (ctx.ref, ctx.ref_name, ctx.ref_type) == ("refs/heads/main", "main", "branch")
    assert ctx.short_sha == "0123456"
    assert ctx.default_branch == "main"
    assert ctx.pr_number is None
    assert not ctx.is_fork_pull_request
    assert ctx.debug and ctx.on_actions
    assert (ctx.workspace, ctx.run_id, ctx.runner_temp) == (
        "/github/workspace", "1658821493", "/home/runner/work/_temp"
    )


def test_defaults_outside_actions() -> None:
    ctx = load_context({})
    assert ctx.server_url == "https://github.com"
    assert ctx.api_url == "https://api.github.com"
    assert ctx.server_host == "github.com"
    assert ctx.event == {}
    assert not ctx.on_actions and not ctx.debug
    assert ctx.default_branch == ""


def test_ghes_urls_and_owner_from_repository() -> None:
    ctx = load_context({
        "GITHUB_SERVER_URL": "https://GitHub.Example.com/",
        "GITHUB_API_URL": "https://github.example.com/api/v3/",
        "GITHUB_REPOSITORY": "octo-org/hello",
    })
    assert ctx.server_host == "github.example.com"
    assert ctx.server_url == "https://GitHub.Example.com"
    assert ctx.api_url == "https://github.example.com/api/v3"
    assert ctx.repository_owner == "octo-org"


@pytest.mark.parametrize(
    ("event_name", "fixture", "ref", "fork", "number", "default_branch"),
    [
        ("pull_request", "pull_request_fork.json", "refs/pull/42/merge", True, 42, "main"),
        ("pull_request", "pull_request_same_repo.json", "refs/pull/7/merge", False, 7, "trunk"),
        ("pull_request_target", "pull_request_target_deleted_fork.json", "refs/heads/main",
         True, 9, "main"),
        # full_name differs only in case: the same repository, not a fork.
        ("pull_request_target", "pull_request_target_other_case.json", "refs/heads/main",
         False, 11, "main"),
        ("push", "release_tag.json", "refs/tags/v1.2.3", False, None, "main"),
        ("pull_request_review", "pull_request_fork.json", "refs/pull/42/merge", True, 42, "main"),
        # A fork payload under a non-PR event does not count.
        ("workflow_run", "pull_request_fork.json", "refs/heads/main", False, 42, "main"),
    ],
)
def test_event_payloads(
    event_name: str, fixture: str, ref: str, fork: bool, number: int | None,
    default_branch: str,
) -> None:
    env = {**PUSH_ENV, "GITHUB_EVENT_NAME": event_name, "GITHUB_REF": ref,
           "GITHUB_EVENT_PATH": str(EVENTS / fixture)}
    ctx = load_context(env)
    assert ctx.is_fork_pull_request is fork
    assert ctx.pr_number == number
    assert ctx.default_branch == default_branch


def test_pr_number_from_ref_without_payload() -> None:
    ctx = RunContext(event_name="pull_request", ref="refs/pull/123/merge")
    assert ctx.pr_number == 123
    assert not ctx.is_fork_pull_request


def test_missing_event_file_is_empty(tmp_path: Path) -> None:
    ctx = load_context({"GITHUB_EVENT_PATH": str(tmp_path / "nope.json")})
    assert ctx.event == {}


def test_broken_event_file_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "event.json"
    broken.write_text("{not json")
    with pytest.raises(PublishError, match="not valid JSON"):
        load_context({"GITHUB_EVENT_PATH": str(broken)})


def test_non_object_event_is_empty(tmp_path: Path) -> None:
    listed = tmp_path / "event.json"
    listed.write_text("[1, 2]")
    assert load_context({"GITHUB_EVENT_PATH": str(listed)}).event == {}


def test_repr_leaves_out_the_payload() -> None:
    ctx = load_context(PUSH_ENV)
    assert "pusher" not in repr(ctx)
