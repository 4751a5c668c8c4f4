"""Tag rules over captured event payloads (tests/unit/fixtures/events)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core import tags
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.metadata import compute_tags, split_attributes
from gh_docker_publish.core.tags import (
    GitContext,
    default_tags,
    parse_version,
    push_decision,
    sanitize_tag,
    tag_problem,
)
from gh_docker_publish.errors import InputError

EVENTS = Path(__file__).parent / "fixtures" / "events"
SHA = "9f3c2b1a7e6d5c4b3a29180716f5e4d3c2b1a098"
SHORT = "sha-9f3c2b1"
NOW = datetime(2024, 5, 14, 20, 30, tzinfo=UTC)

# What the runner sets next to each captured payload: GITHUB_EVENT_NAME, GITHUB_REF.
FIXTURE_ENV = {
    "push_default_branch": ("push", "refs/heads/main"),
    "push_feature_branch": ("push", "refs/heads/Feature/Add-Login"),
    "push_tag_v1.2.3": ("push", "refs/tags/v1.2.3"),
    "push_tag_1.2.3": ("push", "refs/tags/1.2.3"),
    "push_tag_prerelease": ("push", "refs/tags/1.2.3-rc.1"),
    "push_tag_non_semver": ("push", "refs/tags/release-2024.05"),
    "pull_request": ("pull_request", "refs/pull/42/merge"),
    "pull_request_fork": ("pull_request", "refs/pull/57/merge"),
    # pull_request_target runs on the base branch: GITHUB_REF is not the PR.
    "pull_request_target": ("pull_request_target", "refs/heads/main"),
    "schedule": ("schedule", "refs/heads/main"),
    "release_published": ("release", "refs/tags/v2.0.0"),
    "release_prerelease": ("release", "refs/tags/v2.1.0"),
    "workflow_dispatch": ("workflow_dispatch", "refs/heads/main"),
    "workflow_dispatch_tag": ("workflow_dispatch", "refs/tags/v1.2.3"),
    "merge_group": ("merge_group", "refs/heads/gh-readonly-queue/main/pr-42-4e5d6c7b8a9f0e1d2c3b"),
}


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


def ctx(name: str, *, ref: str | None = None, event: str | None = None) -> GitContext:
    return GitContext.from_run(run(name, ref=ref, event=event), now=NOW)


def run(name: str, *, ref: str | None = None, event: str | None = None) -> RunContext:
    event_name, fixture_ref = FIXTURE_ENV[name]
    return RunContext(
        event_name=event or event_name,
        ref=fixture_ref if ref is None else ref,
        sha=SHA,
        event=payload(name),
    )


def test_fixtures_exist() -> None:
    # The directory is shared with context.py's tests, so only ours are checked.
    assert set(FIXTURE_ENV) <= {p.stem for p in EVENTS.glob("*.json")}


def test_push_payload_ref_matches_env() -> None:
    for name, (_, ref) in FIXTURE_ENV.items():
        if "ref" in payload(name):
            assert payload(name)["ref"] == ref, name


# --- defaults (empty tags input) -----------------------------------------------------------

DEFAULTS: list[tuple[str, str | None, str | None, list[str]]] = [
    # fixture, ref override, event override, expected
    ("push_default_branch", None, None, ["main", SHORT, "latest"]),
    ("push_feature_branch", None, None, ["Feature-Add-Login", SHORT]),
    ("push_feature_branch", "refs/heads/release/v1.x", None, ["release-v1.x", SHORT]),
    ("push_feature_branch", "refs/heads/UPPER_case", None, ["UPPER_case", SHORT]),
    (
        "push_feature_branch",
        "refs/heads/dependabot/npm_and_yarn/lodash-4.17.21",
        None,
        ["dependabot-npm_and_yarn-lodash-4.17.21", SHORT],
    ),
    ("push_feature_branch", "refs/heads/-weird..name", None, ["weird..name", SHORT]),
    ("push_feature_branch", "refs/heads/feat/über", None, ["feat-ber", SHORT]),
    ("push_feature_branch", "refs/heads/a//b  c", None, ["a-b-c", SHORT]),
    ("push_feature_branch", "refs/heads/" + "x" * 200, None, ["x" * 128, SHORT]),
    ("push_tag_v1.2.3", None, None, ["1.2.3", "1.2", "1", "latest"]),
    ("push_tag_1.2.3", None, None, ["1.2.3", "1.2", "1", "latest"]),
    ("push_tag_1.2.3", "refs/tags/V2.0.0", None, ["2.0.0", "2.0", "2", "latest"]),
    ("push_tag_prerelease", None, None, ["1.2.3-rc.1"]),
    ("push_tag_prerelease", "refs/tags/v1.2.3-rc.1", None, ["1.2.3-rc.1"]),
    ("push_tag_1.2.3", "refs/tags/1.2.3+build.5", None, ["1.2.3", "1.2", "1", "latest"]),
    ("push_tag_prerelease", "refs/tags/v1.2.3-beta.2+exp.5114f85", None, ["1.2.3-beta.2"]),
    ("push_tag_1.2.3", "refs/tags/0.4.1", None, ["0.4.1", "0.4", "latest"]),
    ("push_tag_1.2.3", "refs/tags/v0.0.1", None, ["0.0.1", "0.0", "latest"]),
    ("push_tag_non_semver", None, None, ["release-2024.05"]),
    ("push_tag_non_semver", "refs/tags/v1.2", None, ["v1.2"]),
    ("push_tag_non_semver", "refs/tags/01.2.3", None, ["01.2.3"]),
    ("push_tag_non_semver", "refs/tags/nightly/2024-05-14", None, ["nightly-2024-05-14"]),
    ("push_tag_non_semver", "refs/tags/Release_A", None, ["Release_A"]),
    ("pull_request", None, None, ["pr-42"]),
    ("pull_request_fork", None, None, ["pr-57"]),
    ("pull_request_target", None, None, ["pr-58"]),
    ("schedule", None, None, ["nightly"]),
    ("release_published", None, None, ["2.0.0", "2.0", "2", "latest"]),
    ("release_prerelease", None, None, ["2.1.0"]),
    ("release_published", "refs/tags/v3.0.0-alpha.1", None, ["3.0.0-alpha.1"]),
    ("workflow_dispatch", None, None, ["main", SHORT, "latest"]),
    ("workflow_dispatch", "refs/heads/hotfix/login", None, ["hotfix-login", SHORT]),
    ("workflow_dispatch_tag", None, None, ["1.2.3", "1.2", "1", "latest"]),
    ("workflow_dispatch_tag", "refs/tags/v1.3.0-rc.2", None, ["1.3.0-rc.2"]),
    ("merge_group", None, None, [SHORT]),
    ("workflow_dispatch", None, "repository_dispatch", ["main", SHORT, "latest"]),
    ("workflow_dispatch", "", "repository_dispatch", [SHORT]),
    ("push_feature_branch", "refs/heads/.hidden", None, ["hidden", SHORT]),
    ("push_tag_v1.2.3", "refs/tags/v10.20.30", None, ["10.20.30", "10.20", "10", "latest"]),
    ("push_tag_prerelease", "refs/tags/2.0.0-0", None, ["2.0.0-0"]),
    ("pull_request", None, "pull_request_target", ["pr-42"]),
]


@pytest.mark.parametrize(("fixture", "ref", "event", "expected"), DEFAULTS)
def test_default_tags(
    fixture: str, ref: str | None, event: str | None, expected: list[str]
) -> None:
    git = ctx(fixture, ref=ref, event=event)
    assert compute_tags([], git) == expected
    assert default_tags(git) == expected


def test_blank_and_comment_lines_mean_defaults() -> None:
    assert compute_tags(["", "  ", "# nothing yet"], ctx("schedule")) == ["nightly"]


def test_schedule_payload_has_no_default_branch_so_no_latest() -> None:
    git = ctx("schedule", event="push")
    assert git.default_branch is None
    assert compute_tags([], git) == ["main", SHORT]


def test_no_sha_no_sha_tag() -> None:
    git = GitContext(event_name="merge_group", ref="", sha="")
    assert compute_tags([], git) == []


# --- the rule language over events ----------------------------------------------------------

SEMVER_BLOCK = [
    "type=semver,pattern={{version}}",
    "type=semver,pattern={{major}}.{{minor}}",
    "type=semver,pattern={{major}}",
    "type=sha",
]
BRANCH_PR = ["type=ref,event=branch", "type=ref,event=pr"]
LONG = f"sha-{SHA}"

RULES: list[tuple[str, str | None, list[str], list[str]]] = [
    # fixture, ref override, tags input lines, expected
    # metadata-action: latest=auto adds latest after a semver release tag (README "Latest tag")
    ("push_tag_v1.2.3", None, SEMVER_BLOCK, ["1.2.3", "1.2", "1", SHORT, "latest"]),
    ("push_tag_prerelease", None, SEMVER_BLOCK, ["1.2.3-rc.1", SHORT]),
    # README "Major version zero": {{major}} does give 0; the user disables it with enable=.
    ("push_tag_1.2.3", "refs/tags/0.4.1", SEMVER_BLOCK, ["0.4.1", "0.4", "0", SHORT, "latest"]),
    (
        "push_tag_1.2.3",
        "refs/tags/1.2.3+b7",
        ["type=semver,pattern={{version}}"],
        ["1.2.3", "latest"],
    ),
    ("push_tag_v1.2.3", None, ["type=semver,pattern={{raw}}"], ["v1.2.3", "latest"]),
    ("push_tag_v1.2.3", None, ["type=semver,pattern=v{{major}}"], ["v1", "latest"]),
    (
        "push_tag_v1.2.3",
        None,
        ["type=semver,pattern={{ major }}.{{ minor }}"],
        ["1.2", "latest"],
    ),
    (
        "push_tag_prerelease",
        None,
        ["type=semver,pattern={{major}}.{{minor}},suffix=-alpine"],
        ["1.2.3-rc.1-alpine"],
    ),
    ("push_tag_non_semver", None, SEMVER_BLOCK, [SHORT]),
    ("push_default_branch", None, SEMVER_BLOCK, [SHORT]),
    (
        "push_default_branch",
        None,
        ["type=semver,pattern={{version}},value=3.4.5"],
        ["3.4.5", "latest"],
    ),
    ("push_default_branch", None, ["type=semver,pattern={{version}},value=next"], []),
    ("release_published", None, SEMVER_BLOCK, ["2.0.0", "2.0", "2", SHORT, "latest"]),
    ("release_published", None, ["type=ref,event=tag"], ["v2.0.0", "latest"]),
    ("push_feature_branch", None, BRANCH_PR, ["Feature-Add-Login"]),
    ("pull_request", None, BRANCH_PR, ["pr-42"]),
    ("pull_request_fork", None, BRANCH_PR, ["pr-57"]),
    # pull_request_target runs on the base branch (GITHUB_REF refs/heads/main): metadata-action
    # gives its branch tag and edge as well as the PR's; edge (priority 700) comes first.
    ("pull_request_target", None, [*BRANCH_PR, "type=edge"], ["edge", "main", "pr-58"]),
    ("push_tag_v1.2.3", None, BRANCH_PR, []),
    (
        "push_tag_v1.2.3",
        None,
        ["type=ref,event=tag,prefix=app-,suffix=-slim"],
        ["app-v1.2.3-slim", "latest"],
    ),
    ("push_default_branch", None, ["type=edge"], ["edge"]),
    ("push_default_branch", None, ["type=edge,branch=develop"], []),
    ("push_feature_branch", "refs/heads/develop", ["type=edge,branch=develop"], ["edge"]),
    (
        "push_default_branch",
        None,
        ["type=raw,value=latest,enable={{is_default_branch}}"],
        ["latest"],
    ),
    ("push_feature_branch", None, ["type=raw,value=latest,enable={{is_default_branch}}"], []),
    ("push_feature_branch", None, ["type=raw,value=dev,enable={{is_not_default_branch}}"], ["dev"]),
    ("push_default_branch", None, ["type=raw,value=x,enable=false"], []),
    ("push_default_branch", None, ["type=raw,value=x,enable=TRUE"], ["x"]),
    ("schedule", None, ["type=schedule"], ["nightly"]),
    ("schedule", None, ["type=schedule,pattern={{date 'YYYYMMDD'}}"], ["20240514"]),
    (
        "schedule",
        None,
        ["type=schedule,pattern=nightly-{{date 'YYYY.MM.DD-HHmm' tz='Asia/Tokyo'}}"],
        ["nightly-2024.05.15-0530"],
    ),
    ("push_default_branch", None, ["type=schedule"], []),
    ("push_default_branch", None, ["type=sha,format=long"], [LONG]),
    ("push_default_branch", None, ["type=sha,prefix="], ["9f3c2b1"]),
    ("push_default_branch", None, ["type=sha,prefix=git-,suffix=-amd64"], ["git-9f3c2b1-amd64"]),
    ("merge_group", None, ["type=sha"], [SHORT]),
    (
        "merge_group",
        None,
        ["type=ref,event=branch"],
        ["gh-readonly-queue-main-pr-42-4e5d6c7b8a9f0e1d2c3b"],
    ),
    ("push_default_branch", None, ["v1", "edge", "stable_2024"], ["v1", "edge", "stable_2024"]),
    ("push_default_branch", None, ["latest", "type=raw,value=latest"], ["latest"]),
    (
        "push_feature_branch",
        None,
        ["type=raw,value={{branch}}-{{sha}}"],
        ["Feature-Add-Login-9f3c2b1"],
    ),
    ("push_feature_branch", None, ["type=raw,value={{tag}}"], []),
    ("push_tag_v1.2.3", None, ["type=raw,value={{tag}},prefix=r"], ["rv1.2.3"]),
    # README "{{branch}}": empty on a pull request (refs/pull/N/merge is not a branch).
    ("pull_request", None, ["type=raw,value={{branch}}"], []),
    ("pull_request", None, ["type=raw,value=pr-into-{{base_ref}}"], ["pr-into-main"]),
    ("push_tag_v1.2.3", None, ["type=raw,value=from-{{base_ref}}"], ["from-main"]),
    (
        "push_default_branch",
        None,
        ['type=raw,"value=quoted"', 'type=raw,value="q2"'],
        ["quoted", "q2"],
    ),
    ("push_default_branch", None, ["  type=raw , value=spaced  ", "# comment", ""], ["spaced"]),
    ("push_default_branch", None, ["TYPE=Raw,Value=MixedCase"], ["MixedCase"]),
    # metadata-action sanitizes instead of refusing: runs of invalid characters become '-'.
    ("push_default_branch", None, ["type=raw,value=a/b"], ["a-b"]),
    ("push_default_branch", None, ["my tag"], ["my-tag"]),
    ("push_default_branch", None, ["{{branch}}"], ["main"]),
    ("push_default_branch", None, ["value=foo"], ["foo"]),
    ("push_default_branch", None, ["type=raw,novalue"], ["novalue"]),
]


@pytest.mark.parametrize(("fixture", "ref", "lines", "expected"), RULES)
def test_rules(fixture: str, ref: str | None, lines: list[str], expected: list[str]) -> None:
    assert compute_tags(lines, ctx(fixture, ref=ref)) == expected


# --- invalid rules -------------------------------------------------------------------------

INVALID = [
    ("type=foo", "Unknown type 'foo'", "semver, pep440, match, edge, ref, raw or sha"),
    ("type=match", "type=match needs a pattern", "pattern="),
    ("type=pep440,value=1.0", "type=pep440 needs a pattern", "pattern={{version}}"),
    ("type=raw", "type=raw needs a value", "value=TAG"),
    ("type=semver", "type=semver needs a pattern", "pattern={{version}}"),
    ("type=semver,pattern={{major}}.{{minr}}", "Unknown expression '{{minr}}'", "{{major}}"),
    ("type=semver,pattern={{branch}}", "Unknown expression '{{branch}}'", "{{version}}"),
    ("type=raw,value={{version}}", "Unknown expression '{{version}}'", "{{branch}}"),
    ("type=raw,value=x,priority=high", "priority='high' is not a whole number", "default is 200"),
    ("type=sha,length=8", "Unknown attribute 'length' for type=sha", "format, prefix"),
    ("type=semver,pattern={{version}},match=v(", "is not a regular expression", "v(\\d+"),
    ("type=match,pattern=v(.*),group=2", "group='2' is not a group", "group=1"),
    ("type=edge,event=tag", "Unknown attribute 'event' for type=edge", "branch"),
    ("type=ref,event=push", "event='push' is not branch, tag or pr", "event=branch|tag|pr"),
    ("type=ref", "event='' is not branch, tag or pr", "event=branch|tag|pr"),
    ("type=sha,format=medium", "format='medium' is unknown", "format=short|long"),
    ("type=raw,value=.hidden", "starts with '.' or '-'", "value, prefix or suffix"),
    ("type=raw,value=x,enable=maybe", "enable='maybe' is not true or false", "true|false"),
    ('type=raw,"value=a', "Unclosed double quote", "Close the quote"),
    ("type=raw,value=a,value=b", "Attribute 'value' is given twice", "Keep one"),

    ("type=schedule,pattern={{date YYYY}}", "{{date}} needs a quoted format", "'YYYYMMDD'"),
    ("type=raw,value={{sha 7}}", "{{sha}} takes no arguments", "{{sha}}"),
    ("type=raw,value={{sha}", "Unbalanced braces in value=", "{{name}}"),
    ("ghcr.io/octo-org/app:v1", "looks like an image reference", "'image'"),
    ("sha256:" + "a" * 64, "is a digest", "IMAGE:VERSION"),
    ("app@sha256", "looks like an image reference or digest", "not digests"),
    ("-rc", "starts with '.' or '-'", "value, prefix or suffix"),
    ("x" * 129, "is 129 characters long", "at most 128"),
    ("type=raw,value=x,enable={{branch}}", "is not true or false", "{{is_default_branch}}"),
    ("type=raw,value=x,enable=x{{is_default_branch}}", "is not true or false", "true or false"),
]


@pytest.mark.parametrize(("line", "problem", "fix"), INVALID)
def test_invalid_rules(line: str, problem: str, fix: str) -> None:
    with pytest.raises(InputError) as err:
        compute_tags(["v1", line], ctx("push_default_branch"))
    text = str(err.value)
    assert err.value.input_name == "tags"
    assert text.startswith("Input 'tags': ")
    assert repr(line.strip()) in text  # the line is quoted back
    assert problem in text
    assert fix in text


def test_invalid_rules_fail_even_when_they_would_not_apply() -> None:
    # A typo in a tag-only rule must fail on the branch push, not first on release day.
    with pytest.raises(InputError, match="minr"):
        compute_tags(["type=semver,pattern={{minr}}"], ctx("push_feature_branch"))


def test_unknown_time_zone() -> None:
    with pytest.raises(InputError, match="Unknown time zone 'Mars/Olympus'"):
        compute_tags(["type=schedule,pattern={{date 'YYYY' tz='Mars/Olympus'}}"], ctx("schedule"))


# --- helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feature/x", "feature-x"),
        ("..hidden", "hidden"),
        ("-x", "x"),
        ("Keep.Case_1", "Keep.Case_1"),
        ("a b\tc", "a-b-c"),
        ("", ""),
        ("y" * 300, "y" * 128),
    ],
)
def test_sanitize_tag(text: str, expected: str) -> None:
    assert sanitize_tag(text) == expected
    assert expected == "" or tag_problem(expected) is None


def test_split_attributes_quoting() -> None:
    assert split_attributes('type=raw,"value=a,b",suffix="x,""y"""') == [
        "type=raw",
        "value=a,b",
        'suffix=x,"y"',
    ]


@pytest.mark.parametrize(
    ("text", "version", "pre"),
    [
        ("v1.2.3", "1.2.3", False),
        ("1.2.3-rc.1", "1.2.3-rc.1", True),
        ("V1.2.3+b1", "1.2.3+b1", False),
        ("1.2", None, False),
        ("vv1.2.3", None, False),
        ("release", None, False),
    ],
)
def test_parse_version(text: str, version: str | None, pre: bool) -> None:
    parsed = parse_version(text)
    assert (str(parsed) if parsed else None) == version
    assert (parsed is not None and parsed.prerelease is not None) is pre


# --- context from the payloads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "fork", "number", "default_branch"),
    [
        ("push_default_branch", False, None, "main"),
        ("pull_request", False, 42, "main"),
        ("pull_request_fork", True, 57, "main"),
        ("pull_request_target", True, 58, "main"),
        ("schedule", False, None, None),
        ("merge_group", False, None, "main"),
    ],
)
def test_context_from_payload(
    fixture: str, fork: bool, number: int | None, default_branch: str | None
) -> None:
    git = ctx(fixture)
    assert run(fixture).is_fork_pull_request is fork
    assert git.pr_number == number
    assert git.default_branch == default_branch


def test_pr_number_from_ref_when_payload_lacks_it() -> None:
    git = GitContext.from_run(
        RunContext(event_name="pull_request", ref="refs/pull/7/merge", sha=SHA, event={})
    )
    assert compute_tags([], git) == ["pr-7"]


# --- push decision -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("push", "event", "fork", "expected", "reason"),
    [
        ("true", "pull_request", True, True, "'true'"),
        ("false", "push", False, False, "built, not pushed"),
        ("auto", "push", False, True, "push event pushes"),
        ("auto", "pull_request", False, True, "pull_request event pushes"),
        ("auto", "pull_request", True, False, "GITHUB_TOKEN is read-only"),
        ("auto", "pull_request_review", True, False, "GITHUB_TOKEN is read-only"),
        ("auto", "pull_request_target", True, False, "untrusted"),
        ("auto", "pull_request_target", False, True, "pushes"),
        ("auto", "schedule", False, True, "schedule event pushes"),
        ("auto", "merge_group", False, True, "pushes"),
        (" Auto ", "release", False, True, "release event pushes"),
        ("TRUE", "push", False, True, "'true'"),
    ],
)
def test_push_decision(push: str, event: str, fork: bool, expected: bool, reason: str) -> None:
    decision = push_decision(push, event, fork)
    assert decision.push is expected
    assert reason in decision.reason
    assert push_decision(push, event, fork) == (expected, decision.reason)


def test_push_decision_from_fixture() -> None:
    fork = run("pull_request_fork")
    assert push_decision("auto", fork.event_name, fork.is_fork_pull_request).push is False


def test_push_decision_rejects_other_values() -> None:
    with pytest.raises(InputError, match="Input 'push': 'yes' is not true, false or auto"):
        push_decision("yes", "push", False)


def test_staging_tag_stays_a_tag() -> None:
    assert tags.staging_tag("v1", "linux/arm/v7") == "v1-linux-arm-v7"
    long = tags.staging_tag("x" * 128, "linux/arm64")
    assert len(long) == 128 and long.endswith("-linux-arm64")


# --- the run-unique build tag (a shared daemon) ------------------------------------------


@pytest.mark.parametrize(("run_id", "attempt", "expected"), [
    ("8123456789", "2", "gh-docker-publish-build-8123456789-2.0123456789ab"),
    ("", "", "gh-docker-publish-build-0123456789ab"),  # the CLI outside Actions
    ("12/../X", "1", "gh-docker-publish-build-12x-1.0123456789ab"),  # never outside the grammar
])
def test_build_tag_is_a_tag_of_the_run(run_id: str, attempt: str, expected: str) -> None:
    built = tags.build_tag(run_id, attempt, "0123456789ab")
    assert built == expected
    assert tag_problem(built) is None and tags.is_build_tag(built)


def test_build_tag_keeps_its_token_within_the_tag_length() -> None:
    built = tags.build_tag("9" * 200, "1", "0123456789ab")
    assert len(built) <= tags.MAX_TAG_LENGTH and built.endswith(".0123456789ab")


@pytest.mark.parametrize("tag", ["v1", "latest", "gh-docker-publish-build-", "gh-docker-publish"
                                 "-build-1-1.0123", "x-gh-docker-publish-build-0123456789ab"])
def test_other_tags_are_not_build_tags(tag: str) -> None:
    assert not tags.is_build_tag(tag)
