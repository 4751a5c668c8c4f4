"""The cleanup plan: a pure function of the version list, the rules and the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gh_docker_publish.edges.github_api import PackageVersion
from gh_docker_publish.flows.cleanup import LAST_TAGGED, Rules, plan

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def version(vid: int, days_old: float, *tags: str) -> PackageVersion:
    stamp = (NOW - timedelta(days=days_old)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return PackageVersion(vid, f"sha256:{vid:064x}", tuple(tags), stamp, stamp)


VERSIONS = [
    version(1, 30, "v1.0.0"),
    version(2, 20, "old"),
    version(3, 10),  # untagged
    version(4, 5, "pr-7"),
    version(5, 2),  # untagged, recent
    version(6, 1, "latest"),
]


def decide(rules: Rules, versions: list[PackageVersion] = VERSIONS) -> dict[int, str]:
    return {d.version.id: ("delete" if d.delete else "keep") + ": " + d.reason
            for d in plan(versions, rules, NOW)}


@pytest.mark.parametrize(
    ("rules", "deleted"),
    [
        (Rules(keep_latest=2), [4, 3, 2]),
        (Rules(keep_latest=10), []),
        (Rules(untagged_older_than_days=7), [3]),
        (Rules(untagged_older_than_days=0), [5, 3]),
        # the two rules add up; the newest N stay even when untagged
        (Rules(keep_latest=2, untagged_older_than_days=1), [4, 3, 2]),
        (Rules(keep_latest=3, untagged_older_than_days=30), [3, 2]),
        # user patterns replace the defaults: semver no longer protected
        (Rules(keep_latest=1, protect_tags=("latest", "pr-*")), [5, 3, 2, 1]),
        (Rules(keep_latest=1, protect_digests=frozenset({f"sha256:{2:064x}"})), [5, 4, 3]),
    ],
)
def test_plan(rules: Rules, deleted: list[int]) -> None:
    decisions = plan(VERSIONS, rules, NOW)
    assert [d.version.id for d in decisions] == [6, 5, 4, 3, 2, 1]  # newest first
    assert [d.version.id for d in decisions if d.delete] == deleted


def test_reasons_name_the_rule() -> None:
    reasons = decide(Rules(keep_latest=2, untagged_older_than_days=7))
    assert reasons[6] == "keep: protected tag 'latest'"
    assert reasons[1] == "keep: protected tag 'v1.0.0'"
    assert reasons[5] == "keep: one of the 2 newest"
    assert reasons[4] == "delete: older than the 2 newest"
    assert decide(Rules(untagged_older_than_days=7))[3] == (
        "delete: untagged, 10.0 days old (> 7)")
    assert decide(Rules(untagged_older_than_days=7))[2] == "keep: no rule selects it"


def test_the_last_tagged_version_is_kept() -> None:
    rules = Rules(keep_latest=0, protect_tags=())
    reasons = decide(rules)
    assert reasons[6] == f"keep: {LAST_TAGGED}"
    assert sum(r.startswith("delete") for r in reasons.values()) == 5
    # untagged versions alone: all may go (GitHub deletes an untagged last version)
    untagged = [version(1, 3), version(2, 2)]
    assert all(d.delete for d in plan(untagged, rules, NOW))


@pytest.mark.parametrize(
    ("tag", "protected"),
    [("1.2.3", True), ("v1.2.3", True), ("1.2.3-rc.1+build.5", True), ("1.2", False),
     ("01.2.3", False), ("latest", True), ("Latest", False), ("sha-abc", False)],
)
def test_default_protection(tag: str, protected: bool) -> None:
    assert (Rules().protecting_tag([tag]) is not None) is protected


def test_ties_in_created_at_break_by_id() -> None:
    same = [version(7, 1, "a"), version(9, 1, "b"), version(8, 1)]
    assert [d.version.id for d in plan(same, Rules(keep_latest=1), NOW)] == [9, 8, 7]
