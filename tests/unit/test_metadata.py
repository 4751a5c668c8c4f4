"""docker/metadata-action v6's language, case by case from its README (issue 14 item 1).

Every expected value here was worked out from metadata-action's documentation (its README
tables and examples: "type=semver", "type=pep440", "type=match", "type=ref", "priority
attribute", "Latest tag", "Global expressions", "flavor input", "Annotations",
"environment variables"), not from our code. The README's examples use the commit
860c1904a1ce19322e91ac35af1ab07466440c37 and the date 2020-01-10 00:30 UTC.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.metadata import Metadata, compute_metadata
from gh_docker_publish.core.settings import Settings, settings_from_values
from gh_docker_publish.edges import report
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import InputError

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
HEAD_SHA = "b2b37957cc44b619f16de24307cf5f79942b4278"
NOW = datetime(2020, 1, 10, 0, 30, tzinfo=UTC)
REPO = {"repository": {"default_branch": "master"}}
REPO_INFO = {
    "name": "Hello-World",
    "description": "This your first repo!",
    "html_url": "https://github.com/octocat/Hello-World",
    "license": {"spdx_id": "MIT"},
}
OCI = "org.opencontainers.image."


def run(event: str, ref: str, payload: Mapping[str, Any] | None = None) -> RunContext:
    return RunContext(
        repository="octocat/Hello-World", repository_owner="octocat", event_name=event,
        ref=ref, sha=SHA, event={**REPO, **(payload or {})},
    )


PUSH_MASTER = run("push", "refs/heads/master")
PUSH_BRANCH = run("push", "refs/heads/my/branch")
RELEASES_V1 = run("push", "refs/heads/releases/v1")
PR = run(
    "pull_request", "refs/pull/2/merge",
    {"number": 2, "pull_request": {"number": 2, "head": {"ref": "feat", "sha": HEAD_SHA},
                                   "base": {"ref": "master"}}},
)
PR_TARGET = run("pull_request_target", "refs/heads/master", {"number": 3})
SCHEDULE = RunContext(
    repository="octocat/Hello-World", event_name="schedule", ref="refs/heads/master", sha=SHA,
    event={"schedule": "0 0 * * *"},
)
DISPATCH = run("workflow_dispatch", "refs/heads/master")


def tag(name: str, **payload: Any) -> RunContext:
    return run("push", f"refs/tags/{name}", payload)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(env: Mapping[str, str] | None = None, **inputs: str) -> Settings:
    values = {key.replace("_", "-"): value for key, value in inputs.items()}
    return settings_from_values(
        {"image": "app", **values}, {"GITHUB_REPOSITORY": "octocat/Hello-World", **(env or {})}
    )


def meta(ctx: RunContext, tags: str = "", *, now: datetime = NOW, env: Mapping[str, str] | None
         = None, **inputs: str) -> Metadata:
    return compute_metadata(
        settings(env, tags=tags, **inputs), ctx, now=now, repo_info=REPO_INFO,
        repository="octocat/Hello-World",
    )


def tags_of(ctx: RunContext, tags: str, **inputs: str) -> list[str]:
    return list(meta(ctx, tags, **inputs).tags)


# --- every type -----------------------------------------------------------------------------

# (context, tags input, expected tags); README tables unless a comment says otherwise.
TYPES: list[tuple[RunContext, str, list[str]]] = [
    # type=schedule: only on schedule; pattern default nightly; date with moment format, tz.
    (SCHEDULE, "type=schedule", ["nightly"]),
    (SCHEDULE, "type=schedule,pattern=nightly", ["nightly"]),
    (SCHEDULE, "type=schedule,pattern={{date 'YYYYMMDD'}}", ["20200110"]),
    (SCHEDULE, "type=schedule,pattern={{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}",
     ["20200110-093000"]),
    (PUSH_MASTER, "type=schedule", []),
    # type=semver, README "type=semver" table; latest=auto adds latest for a release.
    (tag("v1.2.3"), "type=semver,pattern={{raw}}", ["v1.2.3", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{version}}", ["1.2.3", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{major}}.{{minor}}", ["1.2", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern=v{{major}}", ["v1", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{minor}}", ["2", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{patch}}", ["3", "latest"]),
    (tag("p1/v1.2.3"), "type=semver,pattern={{version}},match=v(\\d.\\d.\\d)$",
     ["1.2.3", "latest"]),
    (PUSH_MASTER, "type=semver,pattern={{version}},value=p1/v1.2.3,match=v(\\d.\\d.\\d)$",
     ["1.2.3", "latest"]),
    # Pre-release: only {{version}} (or {{raw}} if that is the pattern), and no latest.
    (tag("v2.0.8-beta.67"), "type=semver,pattern={{raw}}", ["v2.0.8-beta.67"]),
    (tag("v2.0.8-beta.67"), "type=semver,pattern={{version}}", ["2.0.8-beta.67"]),
    (tag("v2.0.8-beta.67"), "type=semver,pattern={{major}}", ["2.0.8-beta.67"]),
    (tag("v2.0.8-beta.67"), "type=semver,pattern={{major}}.{{minor}}", ["2.0.8-beta.67"]),
    # "use custom value instead of git tag"; a value that is not semver gives nothing.
    (PUSH_MASTER, "type=semver,pattern={{version}},value=v1.0.0", ["1.0.0", "latest"]),
    (PUSH_MASTER, "type=semver,pattern={{version}}", []),
    (tag("release1"), "type=semver,pattern={{version}}", []),
    # "Major version zero": {{major}} gives 0; the README disables it with enable= itself.
    (tag("v0.1.2"), "type=semver,pattern={{major}}", ["0", "latest"]),
    # type=pep440, README table.
    (tag("1.2.3"), "type=pep440,pattern={{raw}}", ["1.2.3", "latest"]),
    (tag("1.2.3"), "type=pep440,pattern={{version}}", ["1.2.3", "latest"]),
    (tag("v1.2.3"), "type=pep440,pattern={{version}}", ["1.2.3", "latest"]),
    (tag("1.2.3"), "type=pep440,pattern={{major}}.{{minor}}", ["1.2", "latest"]),
    (tag("1.2.3"), "type=pep440,pattern=v{{major}}", ["v1", "latest"]),
    (tag("v1.2.3rc2"), "type=pep440,pattern={{raw}}", ["v1.2.3rc2"]),
    (tag("1.2.3rc2"), "type=pep440,pattern={{version}}", ["1.2.3rc2"]),
    (tag("p1/v1.2.3"), "type=pep440,pattern={{version}},match=v(\\d.\\d.\\d)$",
     ["1.2.3", "latest"]),
    (tag("1.2.3rc2"), "type=pep440,pattern={{major}}.{{minor}}", ["1.2.3rc2"]),
    (tag("1.2.3post1"), "type=pep440,pattern={{major}}.{{minor}}", ["1.2.3.post1"]),
    (tag("1.2.3beta2"), "type=pep440,pattern={{major}}.{{minor}}", ["1.2.3b2"]),
    (tag("1.0dev4"), "type=pep440,pattern={{major}}.{{minor}}", ["1.0.dev4"]),
    (PUSH_MASTER, "type=pep440,pattern={{version}},value=1.0.0", ["1.0.0", "latest"]),
    # type=match, README table (latest=auto adds latest for match too).
    (tag("v1.2.3"), "type=match,pattern=\\d.\\d.\\d", ["1.2.3", "latest"]),
    (tag("v2.0.8-beta.67"), "type=match,pattern=v(.*),group=1", ["2.0.8-beta.67", "latest"]),
    (tag("v2.0.8-beta.67"), "type=match,pattern=v(\\d.\\d),group=1", ["2.0", "latest"]),
    (tag("20200110-RC2"), "type=match,pattern=\\d+", ["20200110", "latest"]),
    (tag("p1/v1.2.3"), "type=match,pattern=p1/v(\\d.\\d.\\d),group=1", ["1.2.3", "latest"]),
    (PUSH_MASTER, "type=match,pattern=v(.*),group=1,value=v1.0.0", ["1.0.0", "latest"]),
    (tag("v1.2.3"), "type=match,pattern=^x", []),
    # type=edge: the default branch (the repository's), or branch=.
    (PUSH_MASTER, "type=edge", ["edge"]),
    (PUSH_BRANCH, "type=edge", []),
    (run("push", "refs/heads/main"), "type=edge,branch=main", ["edge"]),
    (PUSH_MASTER, "type=edge,branch=main", []),
    # type=ref, README table; event=tag gets latest (README "Latest tag").
    (PR, "type=ref,event=pr", ["pr-2"]),
    (PUSH_MASTER, "type=ref,event=branch", ["master"]),
    (PUSH_BRANCH, "type=ref,event=branch", ["my-branch"]),
    (tag("v1.2.3"), "type=ref,event=tag", ["v1.2.3", "latest"]),
    (tag("v2.0.8-beta.67"), "type=ref,event=tag", ["v2.0.8-beta.67", "latest"]),
    (DISPATCH, "type=ref,event=branch", ["master"]),
    (PR, "type=ref,event=branch", []),
    (PUSH_MASTER, "type=ref,event=pr", []),
    (PR_TARGET, "type=ref,event=pr", ["pr-3"]),
    # type=raw and its two shorthands.
    (PUSH_MASTER, "type=raw,value=foo\ntype=raw,value=bar", ["foo", "bar"]),
    (PUSH_MASTER, "type=raw,foo\ntype=raw,bar", ["foo", "bar"]),
    (PUSH_MASTER, "foo\nbar", ["foo", "bar"]),
    # type=sha: sha-<7>, format=long, prefix=.
    (PUSH_MASTER, "type=sha", ["sha-860c190"]),
    (PUSH_MASTER, "type=sha,format=long", [f"sha-{SHA}"]),
    (PUSH_MASTER, "type=sha,format=short,prefix=", ["860c190"]),
    (PUSH_MASTER, "type=sha,prefix=git-,suffix=-x", ["git-860c190-x"]),
]


@pytest.mark.parametrize(("ctx", "lines", "expected"), TYPES)
def test_every_type(workspace: Path, ctx: RunContext, lines: str, expected: list[str]) -> None:
    assert tags_of(ctx, lines) == expected


# --- README's own blocks ---------------------------------------------------------------------

SEMVER_EXAMPLE = """type=ref,event=branch
type=ref,event=pr
type=semver,pattern={{version}}
type=semver,pattern={{major}}.{{minor}}"""


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [  # README "Semver" table
        (PR, ["pr-2"]),
        (PUSH_MASTER, ["master"]),
        (RELEASES_V1, ["releases-v1"]),
        (tag("v1.2.3"), ["1.2.3", "1.2", "latest"]),
        (tag("v2.0.8-beta.67"), ["2.0.8-beta.67"]),
    ],
)
def test_readme_semver_example(workspace: Path, ctx: RunContext, expected: list[str]) -> None:
    assert tags_of(ctx, SEMVER_EXAMPLE) == expected


def test_readme_bake_example_orders_by_priority(workspace: Path) -> None:
    # README "Bake definition": the sha rule comes last in the input but 1.2.3 first; the
    # version label is the first tag.
    got = meta(tag("v1.2.3"), SEMVER_EXAMPLE + "\ntype=sha")
    assert got.tags == ("1.2.3", "1.2", "sha-860c190", "latest")
    assert got.version == "1.2.3"
    assert got.labels[OCI + "version"] == "1.2.3"


def test_tags_readme_example_on_a_tag(workspace: Path) -> None:
    # README "tags input": schedule, three semver, two ref, sha; on refs/tags/v1.2.3.
    lines = ("type=schedule\ntype=semver,pattern={{version}}\n"
             "type=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{major}}\n"
             "type=ref,event=branch\ntype=ref,event=pr\ntype=sha")
    assert tags_of(tag("v1.2.3"), lines) == ["1.2.3", "1.2", "1", "sha-860c190", "latest"]
    assert tags_of(SCHEDULE, lines) == ["nightly", "master", "sha-860c190"]


# --- attributes ------------------------------------------------------------------------------

ATTRIBUTES: list[tuple[RunContext, str, list[str]]] = [
    # enable
    (PUSH_MASTER, "type=raw,value=a,enable=false", []),
    (PUSH_MASTER, "type=raw,value=a,enable=true", ["a"]),
    (PUSH_MASTER, "type=raw,value=latest,enable={{is_default_branch}}", ["latest"]),
    (PUSH_BRANCH, "type=raw,value=latest,enable={{is_default_branch}}", []),
    (PUSH_BRANCH, "type=raw,value=dev,enable={{is_not_default_branch}}", ["dev"]),
    # priority: higher first; the first is the version; equal ones keep their order.
    (PUSH_MASTER, "type=sha\ntype=raw,value=first,priority=2000", ["first", "sha-860c190"]),
    (PUSH_MASTER, "type=raw,value=a\ntype=raw,value=b,priority=50\ntype=sha",
     ["a", "sha-860c190", "b"]),
    (PUSH_MASTER, "type=raw,value=x,priority=1\ntype=raw,value=y,priority=1", ["x", "y"]),
    (tag("v1.2.3"), "type=ref,event=tag,priority=950\ntype=semver,pattern={{version}}",
     ["v1.2.3", "1.2.3", "latest"]),
    # prefix / suffix, with expressions
    (tag("v1.2.3"), "type=semver,pattern={{version}},prefix=app-,suffix=-slim",
     ["app-1.2.3-slim", "latest"]),
    (PUSH_MASTER, "type=sha,prefix={{branch}}-", ["master-860c190"]),
    # value, pattern, group, branch, event, format, match: in TYPES above.
]


@pytest.mark.parametrize(("ctx", "lines", "expected"), ATTRIBUTES)
def test_attributes(workspace: Path, ctx: RunContext, lines: str, expected: list[str]) -> None:
    assert tags_of(ctx, lines) == expected


def test_the_first_rule_with_a_tag_decides_latest(workspace: Path) -> None:
    # latest comes from the first (highest priority) rule that gives a tag: a raw rule
    # above the semver one means no latest under latest=auto.
    lines = "type=raw,value=stable,priority=1000\ntype=semver,pattern={{version}}"
    assert tags_of(tag("v1.2.3"), lines) == ["stable", "1.2.3"]


# --- expressions -----------------------------------------------------------------------------

TAG_WITH_BASE = tag("v1.2.3", base_ref="refs/heads/master")

EXPRESSIONS: list[tuple[RunContext, str, str]] = [
    # README "{{branch}}" table
    (PR, "{{branch}}", ""),
    (PUSH_MASTER, "{{branch}}", "master"),
    (PUSH_BRANCH, "{{branch}}", "my-branch"),
    (tag("v1.2.3"), "{{branch}}", ""),
    # "{{tag}}"
    (PR, "{{tag}}", ""),
    (PUSH_MASTER, "{{tag}}", ""),
    (tag("v1.2.3"), "{{tag}}", "v1.2.3"),
    # "{{sha}}"
    (PUSH_MASTER, "{{sha}}", "860c190"),
    # "{{base_ref}}"
    (PR, "{{base_ref}}", "master"),
    (PUSH_MASTER, "{{base_ref}}", ""),
    (PUSH_BRANCH, "{{base_ref}}", ""),
    (TAG_WITH_BASE, "{{base_ref}}", "master"),
    # "{{is_default_branch}}", "{{is_not_default_branch}}"; a schedule runs on the default
    (PUSH_MASTER, "{{is_default_branch}}", "true"),
    (PUSH_BRANCH, "{{is_default_branch}}", "false"),
    (PUSH_BRANCH, "{{is_not_default_branch}}", "true"),
    (PUSH_MASTER, "{{is_not_default_branch}}", "false"),
    (SCHEDULE, "{{is_default_branch}}", "true"),
    # "{{date}}" README table (its examples are at 2020-01-10 00:30 UTC)
    (PUSH_MASTER, "{{date 'YYYYMMDD'}}", "20200110"),
    (PUSH_MASTER, "{{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", "20200110-093000"),
    (PUSH_MASTER, '{{date "YYYY.MM.DD"}}', "2020.01.10"),
    # "{{commit_date}}": the commit's time; now when the event does not carry it.
    (tag("v1", head_commit={"timestamp": "2019-12-31T23:15:00+01:00"}),
     "{{commit_date 'YYYYMMDD-HHmm'}}", "20191231-2215"),
    (tag("v1", head_commit={"timestamp": "2019-12-31T23:15:00+01:00"}),
     "{{commit_date 'YYYYMMDD-HHmm' tz='Europe/Paris'}}", "20191231-2315"),
    (PR, "{{commit_date 'YYYYMMDD'}}", "20200110"),
]


@pytest.mark.parametrize(("ctx", "expression", "expected"), EXPRESSIONS)
def test_expressions(workspace: Path, ctx: RunContext, expression: str, expected: str) -> None:
    # Seen through a label, where the value is not sanitized as a tag is.
    got = meta(ctx, "type=raw,value=x", labels=f"probe={expression}")
    assert got.labels["probe"] == expected


def test_expression_with_an_empty_value_gives_no_tag(workspace: Path) -> None:
    assert tags_of(PUSH_MASTER, "type=raw,value={{tag}}") == []


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [  # README "{{date}}": 'dddd, MMMM Do YYYY, h:mm:ss a' -> Friday, January 10th 2020, 3:25:50 pm
        ("dddd, MMMM Do YYYY, h:mm:ss a", "Friday, January 10th 2020, 3:25:50 pm"),
        # moment.js docs: [escaped] text, SSS milliseconds, Z offset, ddd/MMM short names
        ("YYYY-MM-DDTHH:mm:ss.SSS[Z]", "2020-01-10T15:25:50.000Z"),
        ("ddd MMM D YY, H:m:s A Z", "Fri Jan 10 20, 15:25:50 PM +00:00"),
        ("Do [of] MMMM, DDDD, Q, E, d", "10th of January, 010, 1, 5, 5"),
    ],
)
def test_moment_formats(workspace: Path, fmt: str, expected: str) -> None:
    when = datetime(2020, 1, 10, 15, 25, 50, tzinfo=UTC)
    got = meta(PUSH_MASTER, "type=raw,value=x", labels=f"probe={{{{date '{fmt}'}}}}", now=when)
    assert got.labels["probe"] == expected


# --- flavor ----------------------------------------------------------------------------------

FLAVORS: list[tuple[RunContext, str, str, list[str]]] = [
    # latest=auto (default): semver release gets latest, a branch does not.
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "latest=auto", ["1.2.3", "latest"]),
    (PUSH_MASTER, "type=ref,event=branch", "latest=auto", ["master"]),
    # latest=true / false
    (PUSH_MASTER, "type=ref,event=branch", "latest=true", ["master", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "latest=false", ["1.2.3"]),
    (PUSH_MASTER, "type=semver,pattern={{version}}", "latest=true", []),
    # prefix / suffix for each generated tag; latest only with onlatest=true
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "prefix=app-", ["app-1.2.3", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "suffix=-alpine",
     ["1.2.3-alpine", "latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "prefix=app-,onlatest=true",
     ["app-1.2.3", "app-latest"]),
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "suffix=-alpine,onlatest=true",
     ["1.2.3-alpine", "latest-alpine"]),
    (tag("v1.2.3"), "type=semver,pattern={{version}}", "prefix=a-,onlatest=false\nsuffix=-b",
     ["a-1.2.3-b", "latest"]),
    # a rule's own prefix/suffix (even empty) replaces the flavor's; sha and pr have their own
    (tag("v1.2.3"), "type=semver,pattern={{version}},prefix=", "prefix=app-", ["1.2.3", "latest"]),
    (PUSH_MASTER, "type=sha", "prefix=app-\nsuffix=-x", ["sha-860c190-x"]),
    (PR, "type=ref,event=pr", "prefix=app-", ["pr-2"]),
    (PUSH_MASTER, "type=ref,event=branch", "prefix={{sha}}-", ["860c190-master"]),
]


@pytest.mark.parametrize(("ctx", "lines", "flavor", "expected"), FLAVORS)
def test_flavor(
    workspace: Path, ctx: RunContext, lines: str, flavor: str, expected: list[str]
) -> None:
    assert tags_of(ctx, lines, flavor=flavor) == expected


def test_flavor_readme_block(workspace: Path) -> None:
    # README "flavor input": latest=auto, empty prefix and suffix change nothing.
    flavor = "latest=auto\nprefix=\nsuffix="
    assert tags_of(tag("v1.2.3"), SEMVER_EXAMPLE, flavor=flavor) == ["1.2.3", "1.2", "latest"]


def test_flavor_on_our_default_tags(workspace: Path) -> None:
    # With tags empty our defaults apply (README "Where we differ"), flavored all the same.
    assert tags_of(tag("v1.2.3"), "", flavor="suffix=-slim") == [
        "1.2.3-slim", "1.2-slim", "1-slim", "latest"
    ]
    assert tags_of(tag("v1.2.3"), "", flavor="latest=false") == ["1.2.3", "1.2", "1"]


# --- variables -------------------------------------------------------------------------------


def test_short_sha_length(workspace: Path) -> None:
    env = {"DOCKER_METADATA_SHORT_SHA_LENGTH": "12"}
    got = meta(PUSH_MASTER, "type=sha\ntype=raw,value={{sha}}", env=env)
    assert got.tags == ("860c1904a1ce", "sha-860c1904a1ce")


def test_pr_head_sha(workspace: Path) -> None:
    plain = meta(PR, "type=sha")
    assert plain.tags == ("sha-860c190",)
    head = meta(PR, "type=sha", env={"DOCKER_METADATA_PR_HEAD_SHA": "true"})
    assert head.tags == ("sha-b2b3795",)
    assert head.labels[OCI + "revision"] == HEAD_SHA
    # Not a pull request: the variable changes nothing.
    assert meta(PUSH_MASTER, "type=sha", env={"DOCKER_METADATA_PR_HEAD_SHA": "true"}).tags == (
        "sha-860c190",
    )


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DOCKER_METADATA_SHORT_SHA_LENGTH", "seven", "a number from 1 to 64"),
        ("DOCKER_METADATA_SHORT_SHA_LENGTH", "0", "a number from 1 to 64"),
        ("DOCKER_METADATA_PR_HEAD_SHA", "yes", "true or false"),
        ("DOCKER_METADATA_SET_OUTPUT_ENV", "1", "true or false"),
        ("DOCKER_METADATA_ANNOTATIONS_LEVELS", "manifest,layer", "manifest, index"),
    ],
)
def test_bad_variables_name_the_variable(
    workspace: Path, variable: str, value: str, fragment: str
) -> None:
    with pytest.raises(InputError) as caught:
        settings({variable: value})
    text = str(caught.value)
    assert text.startswith(f"Environment variable '{variable}': {value!r} is not")
    assert fragment in text
    assert f"Fix or remove {variable}" in text


# --- labels and annotations ------------------------------------------------------------------


def test_labels_as_metadata_action_sets_them(workspace: Path) -> None:
    # README "Bake definition" labels (created: ours is the commit's time, see README).
    ctx = tag("v1.2.3", head_commit={"timestamp": "2020-01-10T00:30:00Z"})
    got = meta(ctx, SEMVER_EXAMPLE)
    assert got.labels == {
        OCI + "created": "2020-01-10T00:30:00Z",
        OCI + "description": "This your first repo!",
        OCI + "licenses": "MIT",
        OCI + "revision": SHA,
        OCI + "source": "https://github.com/octocat/Hello-World",
        OCI + "title": "Hello-World",
        OCI + "url": "https://github.com/octocat/Hello-World",
        OCI + "version": "1.2.3",
    }
    assert list(got.labels) == sorted(got.labels)


def test_user_labels_override_and_add(workspace: Path) -> None:
    # README "Overwrite labels and annotations"
    labels = ("maintainer=CrazyMax\norg.opencontainers.image.title=MyCustomTitle\n"
              "org.opencontainers.image.description=Another description\n"
              "org.opencontainers.image.vendor=MyCompany")
    got = meta(PUSH_MASTER, "type=ref,event=branch", labels=labels)
    assert got.labels[OCI + "title"] == "MyCustomTitle"
    assert got.labels[OCI + "description"] == "Another description"
    assert got.labels[OCI + "vendor"] == "MyCompany"
    assert got.labels["maintainer"] == "CrazyMax"
    assert list(got.labels) == sorted(got.labels)


def test_unknown_repository_facts_are_empty_labels(workspace: Path) -> None:
    got = compute_metadata(settings(tags="type=sha"), PUSH_MASTER, now=NOW, repo_info=None)
    assert got.labels[OCI + "description"] == ""
    assert got.labels[OCI + "licenses"] == ""
    assert got.labels[OCI + "version"] == "sha-860c190"


def test_a_label_line_without_equals_is_ignored_with_a_notice(workspace: Path) -> None:
    loaded = settings(labels="just-a-word\nvendor=Octo")
    assert loaded.labels == (("vendor", "Octo"),)
    assert any("'just-a-word' has no '=' and is ignored" in note for note in loaded.notices)


def test_annotations_default_level_is_manifest(workspace: Path) -> None:
    got = meta(PUSH_MASTER, "type=ref,event=branch",
               annotations="org.opencontainers.image.description=On {{branch}}")
    assert got.annotations[0] == f"manifest:{OCI}created=2020-01-10T00:30:00Z"
    assert f"manifest:{OCI}description=On master" in got.annotations
    assert f"manifest:{OCI}version=master" in got.annotations
    assert len(got.annotations) == 8
    assert all(a.startswith("manifest:") for a in got.annotations)


def test_annotations_levels(workspace: Path) -> None:
    env = {"DOCKER_METADATA_ANNOTATIONS_LEVELS": "manifest,index"}
    got = meta(PUSH_MASTER, "type=ref,event=branch", env=env)
    assert len(got.annotations) == 16
    assert got.annotations[:8] == tuple(f"manifest:{key}={value}"
                                        for key, value in got.labels.items())
    assert got.annotations[8:] == tuple(f"index:{key}={value}"
                                        for key, value in got.labels.items())
    only_index = meta(PUSH_MASTER, "type=ref,event=branch",
                      env={"DOCKER_METADATA_ANNOTATIONS_LEVELS": "index"})
    assert all(a.startswith("index:") for a in only_index.annotations)


# --- outputs: separators, json, exported variables ------------------------------------------


def result_for(got: Metadata, loaded: Settings) -> report.PublishResult:
    refs = tuple(f"ghcr.io/octocat/app:{t}" for t in got.tags)
    return report.PublishResult(
        image="ghcr.io/octocat/app", registry="ghcr.io", tags=got.tags, refs=refs,
        labels=got.labels, version=got.version, annotations=got.annotations,
        separators=(loaded.sep_tags, loaded.sep_labels, loaded.sep_annotations),
        export_env=loaded.metadata_env.set_output_env,
    )


def test_separators_and_json(workspace: Path) -> None:
    loaded = settings(tags=SEMVER_EXAMPLE, sep_tags=",", sep_labels=" ; ", sep_annotations="|")
    assert (loaded.sep_tags, loaded.sep_labels, loaded.sep_annotations) == (",", " ; ", "|")
    got = compute_metadata(loaded, tag("v1.2.3"), now=NOW, repo_info=REPO_INFO)
    outputs = report.render_outputs(result_for(got, loaded))
    assert outputs["tag-names"] == "1.2.3,1.2,latest"
    assert outputs["tags"] == ",".join(
        f"ghcr.io/octocat/app:{t}" for t in ("1.2.3", "1.2", "latest")
    )
    assert outputs["version"] == "1.2.3"
    assert outputs["labels"].split(" ; ")[0] == f"{OCI}created=2020-01-10T00:30:00Z"
    assert len(outputs["annotations"].split("|")) == 8
    data = json.loads(outputs["json"])
    assert data["tags"][0] == "ghcr.io/octocat/app:1.2.3"
    assert data["labels"][OCI + "version"] == "1.2.3"
    assert data["annotations"][0].startswith("manifest:")


def test_a_space_separator_is_kept(workspace: Path) -> None:
    from gh_docker_publish.core.settings import load_settings

    env = {"GITHUB_REPOSITORY": "octocat/Hello-World", "INPUT_IMAGE": "app",
           "INPUT_SEP-TAGS": " "}
    assert load_settings(env).sep_tags == " "


def test_default_separators_are_newlines(workspace: Path) -> None:
    loaded = settings(tags=SEMVER_EXAMPLE)
    got = compute_metadata(loaded, tag("v1.2.3"), now=NOW)
    assert report.render_outputs(result_for(got, loaded))["tag-names"] == "1.2.3\n1.2\nlatest"


@pytest.mark.parametrize(("value", "exported"), [("", True), ("true", True), ("false", False)])
def test_set_output_env(workspace: Path, tmp_path: Path, value: str, exported: bool) -> None:
    env_file, output_file = tmp_path / "env", tmp_path / "out"
    env_file.write_text(""), output_file.write_text("")
    loaded = settings({"DOCKER_METADATA_SET_OUTPUT_ENV": value}, tags="type=sha")
    got = compute_metadata(loaded, PUSH_MASTER, now=NOW)
    console = Console(
        {"GITHUB_ACTIONS": "true", "GITHUB_ENV": str(env_file),
         "GITHUB_OUTPUT": str(output_file)},
        stream=io.StringIO(),
    )
    report.write(result_for(got, loaded), console)
    text = env_file.read_text()
    assert ("DOCKER_METADATA_OUTPUT_VERSION<<" in text) is exported
    if exported:
        for name in ("TAGS", "LABELS", "ANNOTATIONS", "JSON"):
            assert f"DOCKER_METADATA_OUTPUT_{name}<<" in text
        assert "\nsha-860c190\n" in text
        assert "ghcr.io/octocat/app:sha-860c190" in text


# --- inputs that cannot be meant: errors before anything runs --------------------------------

CANNOT_BE_MEANT = [
    ("type=raw,value=.hidden", "tags", "starts with '.' or '-'"),
    ("-rc", "tags", "starts with '.' or '-'"),
    ("x" * 129, "tags", "is 129 characters long"),
    ("type=raw,value=x,enable={{branch}}", "tags", "which is not true or false"),
]


@pytest.mark.parametrize(("lines", "input_name", "fragment"), CANNOT_BE_MEANT)
def test_rendered_tags_docker_would_refuse(
    workspace: Path, lines: str, input_name: str, fragment: str
) -> None:
    with pytest.raises(InputError) as caught:
        meta(PUSH_MASTER, lines)
    assert caught.value.input_name == input_name
    assert fragment in str(caught.value)


def test_flavor_that_makes_a_bad_tag_names_the_flavor(workspace: Path) -> None:
    with pytest.raises(InputError) as caught:
        meta(tag("v1.2.3"), "", flavor="prefix=-")
    assert caught.value.input_name == "flavor"


def test_sanitizing_as_metadata_action(workspace: Path) -> None:
    # README "Image name and tag sanitization": invalid runs become '-'.
    assert tags_of(PUSH_MASTER, "feature/login\nv1 beta\ntype=raw,value=a//b  c") == [
        "feature-login", "v1-beta", "a-b-c"
    ]
