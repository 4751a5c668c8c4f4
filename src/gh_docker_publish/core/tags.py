"""Tags by default (an empty ``tags`` input), tag text rules, and whether to push.

The ``tags`` input's rule language (docker/metadata-action's ``type=`` lines) lives in
``metadata.py``; this module holds what it shares with our defaults: the run's git facts
(:class:`GitContext`), Docker's tag grammar, and the version parsing.

Our defaults differ from metadata-action's on purpose (README, "Where we differ"): a
branch push also gets ``sha-<short>`` and, on the default branch, ``latest``; a version
tag gets ``1.2.3 1.2 1 latest``; a schedule gets ``nightly``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import semver

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.errors import InputError

MAX_TAG_LENGTH = 128  # Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
SHORT_SHA_LENGTH = 7  # metadata-action's DOCKER_METADATA_SHORT_SHA_LENGTH default

# Events whose payload is a pull request: GITHUB_REF is refs/pull/N/merge, or the
# base branch for pull_request_target.
PR_EVENTS = frozenset(
    {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"}
)

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
_DIGEST_RE = re.compile(r"(?:sha256|sha512):[0-9a-fA-F]*|[0-9a-fA-F]{64}")


# ---------------------------------------------------------------------------
# Context


@dataclass(frozen=True)
class GitContext:
    """The few facts about the run that decide tags (a slice of the shared RunContext)."""

    event_name: str
    ref: str
    sha: str
    default_branch: str | None = None
    pr_number: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    now: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)
    short_sha_length: int = SHORT_SHA_LENGTH  # DOCKER_METADATA_SHORT_SHA_LENGTH
    commit_time: datetime | None = None  # for {{commit_date}}; None: not in the event

    @classmethod
    def from_run(
        cls,
        run: RunContext,
        *,
        now: datetime | None = None,
        short_sha_length: int = SHORT_SHA_LENGTH,
        pr_head_sha: bool = False,
    ) -> GitContext:
        """The slice of the run's context that decides tags.

        ``pr_head_sha`` (DOCKER_METADATA_PR_HEAD_SHA): on a pull request, the head commit's
        SHA instead of the merge commit GitHub built (metadata-action README).
        """
        sha = run.sha
        if pr_head_sha and run.is_pull_request:
            sha = _str(_dig(run.event, "pull_request", "head", "sha")) or sha
        return cls(
            event_name=run.event_name,
            ref=run.ref,
            sha=sha,
            default_branch=run.default_branch or None,
            pr_number=run.pr_number,
            payload=run.event,
            now=now or datetime.now(UTC),
            short_sha_length=short_sha_length,
            commit_time=commit_time(run.event),
        )

    @property
    def branch(self) -> str | None:
        """The branch GITHUB_REF names, if it names one."""
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def ref_branch(self) -> str:
        """The branch of a ``refs/heads/`` ref, else ``""`` (metadata-action's ``{{branch}}``)."""
        return self.branch or ""

    @property
    def ref_tag(self) -> str:
        """The tag of a ``refs/tags/`` ref, else ``""`` (metadata-action's ``{{tag}}``)."""
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else ""

    @property
    def tag(self) -> str | None:
        """The git tag being built: from GITHUB_REF, or the release's tag_name."""
        if self.ref.startswith("refs/tags/"):
            return self.ref.removeprefix("refs/tags/")
        if self.event_name == "release":
            return _str(_dig(self.payload, "release", "tag_name")) or None
        return None

    @property
    def is_pull_request(self) -> bool:
        return self.event_name in PR_EVENTS or self.ref.startswith("refs/pull/")

    @property
    def is_default_branch(self) -> bool:
        """The ref is the default branch; a scheduled run always is (it runs there)."""
        if self.event_name == "schedule":
            return True
        return self.branch is not None and self.branch == self.default_branch

    @property
    def is_marked_prerelease(self) -> bool:
        """A release the author flagged as pre-release on GitHub."""
        return self.event_name == "release" and _dig(self.payload, "release", "prerelease") is True

    @property
    def short_sha(self) -> str:
        return self.sha[: self.short_sha_length]


def commit_time(event: Mapping[str, Any]) -> datetime | None:
    """The pushed commit's time from the payload (``head_commit.timestamp``), if any."""
    stamp = _dig(event, "head_commit", "timestamp")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).astimezone(UTC)
        except ValueError:
            return None
    return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------
# Tag text


def sanitize_tag(text: str) -> str:
    """Make any text a valid tag: invalid runs become ``-``, no leading ``.``/``-``, ≤128.

    Case is kept: tags are case-sensitive, only image names must be lowercase.
    Runs of invalid characters collapse into one ``-`` (as metadata-action does).
    """
    return _INVALID_RUN.sub("-", text).lstrip(".-")[:MAX_TAG_LENGTH]


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a valid Docker tag, in words the user can act on; None if it is."""
    if not tag:
        return "is empty"
    if "@" in tag or _DIGEST_RE.fullmatch(tag):
        return "looks like a digest; registries take tags here (IMAGE:VERSION), not digests"
    if "/" in tag or ":" in tag:
        return "looks like an image reference; give only the tag (the image goes in 'image')"
    if len(tag) > MAX_TAG_LENGTH:
        return f"is {len(tag)} characters long; a tag has at most {MAX_TAG_LENGTH}"
    if tag[0] in ".-":
        return "starts with '.' or '-'; a tag must start with a letter, digit or '_'"
    if not _TAG_RE.fullmatch(tag):
        bad = _INVALID_RUN.search(tag)
        char = bad.group(0)[0] if bad else tag[0]
        return f"contains {char!r}; a tag may contain only letters, digits, '_', '.' and '-'"
    return None


def parse_version(text: str) -> semver.Version | None:
    """Parse a semver version, accepting one leading ``v``/``V`` (git tags usually have one)."""
    candidate = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(candidate)
    except (ValueError, TypeError):
        return None


def semver_tags(text: str, *, prerelease: bool = False) -> list[str]:
    """The default expansion of a version tag: ``1.2.3 1.2 1 latest``.

    Pre-releases (by semver, or flagged on a GitHub release) get only their version:
    a release candidate must never move ``latest`` or the floating ``1.2``/``1``.
    Build metadata is dropped (``1.2.3+b7`` → ``1.2.3``) as metadata-action's
    ``{{version}}`` does; ``+`` is not a tag character. For ``0.x`` there is no ``0``.
    Non-semver text yields just the sanitized text.
    """
    version = parse_version(text)
    if version is None:
        return _nonempty([sanitize_tag(text)])
    full = _version_text(version)
    if version.prerelease is not None or prerelease:
        return [full]
    tags = [full, f"{version.major}.{version.minor}"]
    if version.major > 0:
        tags.append(str(version.major))
    tags.append("latest")
    return tags


def _version_text(version: semver.Version) -> str:
    return str(version.replace(build=None))


def _nonempty(tags: Iterable[str]) -> list[str]:
    return [t for t in tags if t]


def _dedupe(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t for t in tags if t))


# ---------------------------------------------------------------------------
# Defaults


def default_tags(git: GitContext) -> list[str]:
    """Tags when the ``tags`` input is empty (the table in docs and the issue).

    The branch, version or PR tag comes first so it can serve as the image version.
    ``latest`` on the default branch needs the default branch from the payload; the
    schedule payload has none, and then no branch push gets ``latest``.
    """
    event = git.event_name
    if event == "schedule":
        return ["nightly"]
    if git.is_pull_request:
        return [f"pr-{git.pr_number}"] if git.pr_number is not None else _sha_tags(git)
    if event == "merge_group":
        return _sha_tags(git)
    if git.tag is not None:
        return _dedupe(semver_tags(git.tag, prerelease=git.is_marked_prerelease))
    if git.branch is not None:
        tags = [sanitize_tag(git.branch), *_sha_tags(git)]
        if git.is_default_branch:
            tags.append("latest")
        return _dedupe(tags)
    return _sha_tags(git)


def _sha_tags(git: GitContext) -> list[str]:
    return [f"sha-{git.short_sha}"] if git.sha else []


# ---------------------------------------------------------------------------
# Push or not


class PushDecision(NamedTuple):
    push: bool
    reason: str


def push_decision(push_input: str, event_name: str, is_fork_pr: bool) -> PushDecision:
    """Resolve ``push: true|false|auto``; the reason is shown in the log and summary.

    ``auto`` builds without pushing on pull requests from forks: there GITHUB_TOKEN is
    read-only (``pull_request``), or the code is untrusted while the token can write
    (``pull_request_target``), so a push would fail or be unsafe.
    """
    value = push_input.strip().lower()
    if value == "true":
        return PushDecision(True, "push is 'true'")
    if value == "false":
        return PushDecision(False, "push is 'false': the image is built, not pushed")
    if value != "auto":
        raise InputError(
            "push", f"{push_input!r} is not true, false or auto.", hint="Write push: auto."
        )
    if is_fork_pr and event_name == "pull_request_target":
        return PushDecision(
            False,
            "push is 'auto' and this pull_request_target run comes from a fork: its code is "
            "untrusted, so the image is built, not pushed. Set push: true to override.",
        )
    if is_fork_pr and event_name in PR_EVENTS:
        return PushDecision(
            False,
            "push is 'auto' and this pull request comes from a fork: GITHUB_TOKEN is read-only "
            "there, so the image is built, not pushed.",
        )
    return PushDecision(True, f"push is 'auto' and {event_name or 'this'} event pushes")


def staging_tag(tag: str, platform: str) -> str:
    """The tag a ``push-by-digest`` job needs on the classic image store, which cannot push
    without one (flows/platforms.py): ``<tag>-<os>-<arch>[-<variant>]``, within the 128
    characters a tag may have (distribution reference grammar), never one of the run's tags."""
    suffix = "-" + platform.replace("/", "-")
    return tag[: MAX_TAG_LENGTH - len(suffix)] + suffix


#: The first part of every run-unique local build tag (``build_tag``); the post step
#: removes only names whose tag starts with it.
BUILD_TAG_PREFIX = "gh-docker-publish-build-"
_BUILD_TAG = re.compile(re.escape(BUILD_TAG_PREFIX) + r"[0-9a-z.-]*[0-9a-f]{12}")
_RUN_PART = re.compile(r"[^0-9A-Za-z]+")


def build_tag(run_id: str, run_attempt: str, token: str) -> str:
    """The local tag a daemon build is named by before the run's own tags point at it.

    On the containerd image store the daemon's BuildKit refuses a second build exporting
    the same name at the same moment (``image "…": already exists``: it creates a name that
    does not exist yet, and the slower build loses), so two runs on one daemon (self-hosted
    runners) building the same tags must not both export them. A name of this run's own
    (the run's ID and attempt for the eye, ``token``, 12 random hex digits, for two jobs
    of one run) is never contested, and holds the image until the push has read it back.
    """
    run = "-".join(_RUN_PART.sub("", part) for part in (run_id, run_attempt) if part).lower()
    run = run[: MAX_TAG_LENGTH - len(BUILD_TAG_PREFIX) - len(token) - 1]
    return f"{BUILD_TAG_PREFIX}{run}{'.' if run else ''}{token}"


def is_build_tag(tag: str) -> bool:
    """Whether ``tag`` is one ``build_tag`` makes (the post step's check on its state)."""
    return _BUILD_TAG.fullmatch(tag) is not None
