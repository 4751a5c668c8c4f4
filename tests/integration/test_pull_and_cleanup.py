"""Install and delete against the test bed: private base images of another owner pulled
with a PAT before a GITHUB_TOKEN push, ``mode: pull``, and ``mode: cleanup`` (dry-run
plan, real deletion, protected tags, pagination, user and organization owners).

The registry is the judge: after a cleanup it must hold exactly the kept versions."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.context import load_context
from gh_docker_publish.core.settings import settings_from_values
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.flows import cleanup
from tests.integration.conftest import Outcome
from tests.testbed.fixtures import pushed_digest


def push_image(docker_client: Any, testbed: Any, repo: str, tags: list[str], token: str,
               label: str) -> str:
    """Build a distinct tiny image, tag and push it; return the manifest digest."""
    dockerfile = f"FROM {testbed.busybox_image}\nLABEL variant={label}\n"
    image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    digest = ""
    for tag in tags:
        image.tag(repo, tag)
        for chunk in docker_client.api.push(
            repo, tag, stream=True, decode=True,
            auth_config={"username": "octocat", "password": token},
        ):
            assert "error" not in chunk, chunk
            digest = pushed_digest([chunk]) or digest
    assert digest
    return str(digest)


# -- private base images ---------------------------------------------------------------------


@pytest.fixture
def other_org_base(octo: Any, docker_client: Any, testbed: Any,
                   unique_name: Callable[[str], str]) -> str:
    """A private package of other-org (octocat a member), gone from the local daemon."""
    octo.org("other-org", members={"octocat": "member"})
    octo.repo("other-org/base-images", private=True)
    repo = f"{testbed.registry}/other-org/{unique_name('base')}"
    push_image(docker_client, testbed, repo, ["1"], octo.pat("octocat", ["write:packages"]),
               "base")
    docker_client.images.remove(f"{repo}:1", force=True)
    return repo


def base_context(tmp_path: Path, name: str) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    # The base comes through ARGs and a named stage, as real Dockerfiles do.
    (context / "Dockerfile").write_text(
        f"ARG REG\nARG BASE=${{REG}}/other-org/{name}:1\n"
        "FROM $BASE AS base\nFROM base\nLABEL built=on-a-private-base\n"
    )
    return context


def test_private_base_of_another_org_is_pulled_with_the_pat_then_pushed_with_github_token(
    octo: Any, publish: Callable[..., Outcome], other_org_base: str, tmp_path: Path,
    testbed: Any, registry_reader: Any, unique_name: Callable[[str], str],
) -> None:
    image = unique_name("app")
    base_name = other_org_base.rsplit("/", 1)[1]
    out = publish(
        {"image": image, "tags": "v1", "context": str(base_context(tmp_path, base_name)),
         "build-args": f"REG={testbed.registry}",
         "token": octo.pat("octocat", ["read:packages"])},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert f"Pulling {other_org_base}:1 with the personal access token" in out.log
    assert out.outputs["token-source"] == "github-token"
    assert out.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")


def test_private_base_without_a_pat_fails_before_the_build(
    octo: Any, publish: Callable[..., Outcome], other_org_base: str, tmp_path: Path,
    testbed: Any, registry_reader: Any, unique_name: Callable[[str], str],
) -> None:
    image = unique_name("app")
    base_name = other_org_base.rsplit("/", 1)[1]
    out = publish(
        {"image": image, "tags": "v1", "context": str(base_context(tmp_path, base_name)),
         "build-args": f"REG={testbed.registry}"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert "read:packages" in out.log and "other-org" in out.log and "(line 3)" in out.log
    assert "::group::Build" not in out.log
    assert registry_reader.tags(f"octo-org/{image}") == []


def test_pull_mode_fetches_with_the_pat_and_reports_the_digest(
    octo: Any, publish: Callable[..., Outcome], other_org_base: str, docker_client: Any,
    registry_reader: Any,
) -> None:
    out = publish(
        {"mode": "pull", "image": other_org_base, "tags": "1",
         "token": octo.pat("octocat", ["read:packages"])},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    name = other_org_base.split("/", 1)[1]
    assert out.outputs["digest"] == registry_reader.manifest_digest(name, "1")
    assert out.outputs["tags"] == f"{other_org_base}:1"
    assert out.outputs["token-source"] == "token"
    assert docker_client.images.get(f"{other_org_base}:1")


def test_pull_mode_without_a_pat_names_the_fix(
    octo: Any, publish: Callable[..., Outcome], other_org_base: str,
) -> None:
    out = publish({"mode": "pull", "image": other_org_base, "tags": "1"},
                  github_token=octo.github_token("octo-org/app"))
    assert out.code == 1
    assert "read:packages" in out.log and "PACKAGES_TOKEN" in out.log


# -- cleanup ---------------------------------------------------------------------------------


@pytest.fixture
def versions(octo: Any, docker_client: Any, testbed: Any,
             unique_name: Callable[[str], str]) -> dict[str, Any]:
    """octo-org/<pkg> with six versions, oldest first:
    v1.0.0 (semver), old, an untagged one (tmp moved away), tmp, b2, latest."""
    name = unique_name("pruned")
    repo = f"{testbed.registry}/octo-org/{name}"
    token = octo.github_token("octo-org/app")
    digests = {}
    for label, tags in [("semver", ["v1.0.0"]), ("old", ["old"]), ("untagged", ["tmp"]),
                        ("tmp", ["tmp"]), ("b2", ["b2"]), ("latest", ["latest"])]:
        digests[label] = push_image(docker_client, testbed, repo, tags, token, label)
    return {"name": name, "registry_name": f"octo-org/{name}", "digests": digests}


def test_cleanup_dry_run_plans_then_the_real_run_deletes_exactly_that(
    octo: Any, publish: Callable[..., Outcome], versions: dict[str, Any],
    registry_reader: Any, testbed: Any, tmp_path: Path,
) -> None:
    pat = octo.pat("octocat", ["read:packages", "delete:packages"])
    digests = versions["digests"]
    inputs = {"mode": "cleanup", "image": versions["name"], "keep-latest": "2", "token": pat}
    dry = publish(inputs, github_token=octo.github_token("octo-org/app"))
    assert dry.code == 0, dry.log
    doomed = [digests[k] for k in ("tmp", "untagged", "old")]
    assert dry.outputs["deleted-versions"].splitlines() == doomed
    assert sorted(dry.outputs["kept-versions"].splitlines()) == sorted(
        digests[k] for k in ("latest", "b2", "semver"))
    assert "would be deleted" in dry.summary and "protected tag 'v1.0.0'" in dry.summary
    assert "would delete" in dry.log
    before = registry_reader.tags(versions["registry_name"])
    assert before == ["b2", "latest", "old", "tmp", "v1.0.0"]  # the dry run deleted nothing

    # The real run, with two versions per page so pagination must be followed.
    result = run_cleanup(testbed, tmp_path, {**inputs, "dry-run": "false"}, per_page=2)
    assert [v.digest for v in result.deleted] == doomed
    name = versions["registry_name"]
    assert registry_reader.tags(name) == ["b2", "latest", "v1.0.0"]
    for key in ("tmp", "untagged", "old"):
        assert registry_reader.manifest_digest(name, digests[key]) is None
    for key, tag in (("semver", "v1.0.0"), ("latest", "latest"), ("b2", "b2")):
        assert registry_reader.manifest_digest(name, tag) == digests[key]
    listed = octo.api(f"/orgs/octo-org/packages/container/{versions['name']}/versions", pat)
    assert sorted(v["name"] for v in listed.json()) == sorted(
        digests[k] for k in ("latest", "b2", "semver"))


def test_cleanup_keeps_the_digest_this_run_pushed_and_user_patterns(
    octo: Any, publish: Callable[..., Outcome], versions: dict[str, Any],
) -> None:
    digests = versions["digests"]
    out = publish(
        {"mode": "cleanup", "image": versions["name"], "keep-latest": "1",
         "protect-tags": "latest\nsemver\nb*", "digest": digests["old"],
         "token": octo.pat("octocat", ["read:packages"])},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    plan = {p["digest"]: p for p in json.loads(out.outputs["report"])["plan"]}
    assert plan[digests["old"]]["reason"] == "pushed by this run"
    assert plan[digests["b2"]]["reason"] == "protected tag 'b2'"
    assert out.outputs["deleted-versions"].splitlines() == [digests["tmp"], digests["untagged"]]


def test_cleanup_deletes_old_untagged_versions_of_a_user_package(
    github: Any, docker_client: Any, testbed: Any, registry_reader: Any, tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    github.user("octocat")
    github.repo("octocat/tools")
    name = unique_name("tool")
    repo = f"{testbed.registry}/octocat/{name}"
    pat = github.pat("octocat", ["write:packages", "delete:packages"])
    first = push_image(docker_client, testbed, repo, ["edge"], pat, "one")
    second = push_image(docker_client, testbed, repo, ["edge"], pat, "two")  # first: untagged
    inputs = {"mode": "cleanup", "image": name, "owner": "octocat",
              "repository": "octocat/tools", "delete-untagged-older-than": "0",
              "dry-run": "false", "token": pat}
    result = run_cleanup(testbed, tmp_path, inputs)
    assert [v.digest for v in result.deleted] == [first]
    assert registry_reader.manifest_digest(f"octocat/{name}", first) is None
    assert registry_reader.manifest_digest(f"octocat/{name}", "edge") == second


def test_cleanup_never_plans_the_last_tagged_version(
    octo: Any, versions: dict[str, Any], registry_reader: Any, testbed: Any, tmp_path: Path,
) -> None:
    inputs = {"mode": "cleanup", "image": versions["name"], "keep-latest": "0",
              "protect-tags": "nothing-matches-*", "dry-run": "false",
              "token": octo.pat("octocat", ["read:packages", "delete:packages"])}
    result = run_cleanup(testbed, tmp_path, inputs)
    assert len(result.deleted) == 5
    assert [v.tags for v in result.kept] == [("latest",)]
    assert registry_reader.tags(versions["registry_name"]) == ["latest"]


@pytest.mark.parametrize(
    ("token_kind", "extra", "expected"),
    [
        ("github-token", {}, "does not accept GITHUB_TOKEN"),
        ("read-only", {"dry-run": "false"}, "lacks delete:packages"),
        ("full", {"image": "no-such-package"}, "does not exist"),
    ],
)
def test_cleanup_errors_say_what_to_fix(
    octo: Any, publish: Callable[..., Outcome], versions: dict[str, Any],
    registry_reader: Any, token_kind: str, extra: dict[str, str], expected: str,
) -> None:
    tokens = {"github-token": "", "read-only": octo.pat("octocat", ["read:packages"]),
              "full": octo.pat("octocat", ["read:packages", "delete:packages"])}
    out = publish(
        {"mode": "cleanup", "image": versions["name"], "keep-latest": "1",
         "token": tokens[token_kind], **extra},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert expected in out.log, out.log
    assert len(registry_reader.tags(versions["registry_name"])) == 5


def run_cleanup(testbed: Any, tmp_path: Path, inputs: dict[str, str],
                per_page: int = 100) -> cleanup.CleanupResult:
    """cleanup.run in-process with a chosen page size (the action always asks for 100)."""
    env = {"GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org",
           "GITHUB_API_URL": testbed.github_url, "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_ACTOR": "octocat"}
    settings = settings_from_values({"registry": testbed.registry, **inputs}, env)
    console = Console(env, stream=io.StringIO())
    return cleanup.run(settings, load_context(env), console, per_page=per_page)
