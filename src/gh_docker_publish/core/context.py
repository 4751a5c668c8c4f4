"""RunContext: what the runner tells us about the run (``GITHUB_*``, ``RUNNER_*``, the event).

Variables are the runner's defaults:
https://docs.github.com/en/actions/reference/workflows-and-actions/variables#default-environment-variables
Outside Actions most are unset; the defaults below keep the CLI working against github.com.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gh_docker_publish.errors import PublishError

DEFAULT_SERVER_URL = "https://github.com"
DEFAULT_API_URL = "https://api.github.com"
# Events whose payload is a pull request; on all of them a fork's GITHUB_TOKEN is read-only.
PULL_REQUEST_EVENTS = (
    "pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
)
_PULL_REF = re.compile(r"refs/pull/(\d+)/(?:merge|head)")


@dataclass(frozen=True)
class RunContext:
    """The run as the runner describes it. Pure data: nothing here calls anything."""

    server_url: str = DEFAULT_SERVER_URL
    api_url: str = DEFAULT_API_URL
    repository: str = ""  # OWNER/REPO, case as GitHub reports it
    repository_owner: str = ""
    actor: str = ""
    sha: str = ""
    ref: str = ""
    ref_name: str = ""
    ref_type: str = ""  # "branch" | "tag" | ""
    head_ref: str = ""  # PR source branch (pull_request events only)
    base_ref: str = ""
    event_name: str = ""
    event: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    workspace: str = ""
    run_id: str = ""
    run_attempt: str = ""
    runner_temp: str = ""
    debug: bool = False
    on_actions: bool = False

    @property
    def server_host(self) -> str:
        """Host (and port) of the GitHub server, lowercase: ``github.com`` or a GHES host."""
        return urlsplit(self.server_url).netloc.lower()

    @property
    def default_branch(self) -> str:
        """The repository's default branch from the event payload; ``""`` when absent."""
        repo = self.event.get("repository")
        value = repo.get("default_branch") if isinstance(repo, Mapping) else None
        return value if isinstance(value, str) else ""

    @property
    def is_pull_request(self) -> bool:
        return self.event_name in PULL_REQUEST_EVENTS

    @property
    def is_fork_pull_request(self) -> bool:
        """A PR from another repository: its GITHUB_TOKEN is read-only on ``pull_request``.

        https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication#permissions-for-the-github_token
        """
        if not self.is_pull_request:
            return False
        pull = self.event.get("pull_request")
        if not isinstance(pull, Mapping):
            return False
        head_repo = _dig(pull, "head", "repo")
        base_repo = _dig(pull, "base", "repo")
        if head_repo is None:
            # GitHub sends head.repo = null when the fork was deleted: still a fork.
            return isinstance(pull.get("head"), Mapping)
        if head_repo.get("fork") is True:
            return True
        head_name = str(head_repo.get("full_name") or "").lower()
        base_name = str((base_repo or {}).get("full_name") or self.repository).lower()
        return bool(head_name) and head_name != base_name

    @property
    def pr_number(self) -> int | None:
        """The pull request number, from the payload or ``refs/pull/N/merge``."""
        pull = self.event.get("pull_request")
        number = pull.get("number") if isinstance(pull, Mapping) else None
        if number is None and self.is_pull_request:
            number = self.event.get("number")
        if isinstance(number, int):
            return number
        match = _PULL_REF.fullmatch(self.ref)
        return int(match.group(1)) if match else None

    @property
    def short_sha(self) -> str:
        """First 7 characters of the commit SHA, as GitHub shows it."""
        return self.sha[:7]


def _dig(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any] | None:
    current: Any = data
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current if isinstance(current, Mapping) else None


def load_event(path: str) -> dict[str, Any]:
    """The webhook payload at ``GITHUB_EVENT_PATH``; ``{}`` when there is none.

    Raises:
        PublishError: the file exists but is not a JSON object.
    """
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise PublishError(f"Cannot read the event payload {path}: {exc.strerror or exc}.") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PublishError(
            f"The event payload {path} is not valid JSON ({exc.msg} at line {exc.lineno}).",
            hint="Point GITHUB_EVENT_PATH at a webhook payload, or unset it.",
        ) from exc
    return payload if isinstance(payload, dict) else {}


def load_context(env: Mapping[str, str]) -> RunContext:
    """Build the RunContext from the environment (and the event file it points to)."""
    repository = env.get("GITHUB_REPOSITORY", "")
    owner = env.get("GITHUB_REPOSITORY_OWNER", "") or repository.partition("/")[0]
    return RunContext(
        server_url=(env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
        api_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
        repository=repository,
        repository_owner=owner,
        actor=env.get("GITHUB_ACTOR", ""),
        sha=env.get("GITHUB_SHA", ""),
        ref=env.get("GITHUB_REF", ""),
        ref_name=env.get("GITHUB_REF_NAME", ""),
        ref_type=env.get("GITHUB_REF_TYPE", ""),
        head_ref=env.get("GITHUB_HEAD_REF", ""),
        base_ref=env.get("GITHUB_BASE_REF", ""),
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        event=load_event(env.get("GITHUB_EVENT_PATH", "")),
        workspace=env.get("GITHUB_WORKSPACE", ""),
        run_id=env.get("GITHUB_RUN_ID", ""),
        run_attempt=env.get("GITHUB_RUN_ATTEMPT", ""),
        runner_temp=env.get("RUNNER_TEMP", ""),
        debug=env.get("RUNNER_DEBUG") == "1",
        on_actions=env.get("GITHUB_ACTIONS") == "true",
    )
