"""The publish pipeline against the test bed: real daemon, real token-auth registry, the
GitHub stand-in. One test per scenario of the publish issue, run in-process through
``cli.run_action`` with the variables the runner would set."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import ROOT, Outcome
from tests.testbed.faults import Fault, FaultProxy
from tests.testbed.runner_env import SHA


@pytest.fixture
def docker_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A HOME with a ~/.docker/config.json holding someone's credentials: it must survive."""
    home = tmp_path_factory.mktemp("home")
    config = home / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {"example.test": {"auth": "dXNlcjpwYXNz"}}}, indent=1))
    monkeypatch.setenv("HOME", str(home))
    yield config


def test_own_repository_with_github_token(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    out = publish({"image": image, "tags": "v1"}, github_token=token)
    assert out.code == 0, out.log
    name = f"octo-org/{image}"
    assert out.outputs["digest"] == registry_reader.manifest_digest(name, "v1")
    assert out.outputs["token-source"] == "github-token"
    assert out.outputs["username"] == "octocat"
    assert out.outputs["image"].endswith(f"/{name}")
    package = octo.state()["packages"]
    linked = {f"{p['owner']}/{p['name']}": p.get("repository") for p in package}
    assert linked[name] == "octo-org/app"


def test_another_repository_with_pat(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    octo.org("other-org", members={"octocat": "member"})
    octo.repo("other-org/lib")
    image = unique_name("lib")
    pat = octo.pat("octocat", ["write:packages"])
    out = publish(
        {"image": image, "repository": "other-org/lib", "token": pat, "tags": "1.0"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert out.outputs["token-source"] == "token"
    assert out.outputs["username"] == "octocat"  # from GET /user, not an input
    assert out.outputs["digest"] == registry_reader.manifest_digest(f"other-org/{image}", "1.0")


def test_another_repository_without_pat_fails_before_the_build(
    octo: Any,
    publish: Callable[..., Outcome],
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("lib")
    out = publish(
        {"image": image, "repository": "other-org/lib"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert "write:packages" in out.log and "token" in out.log
    assert "Step 1/" not in out.log  # no build started
    assert not docker_client.images.list(name=f"*/other-org/{image}")


def test_mixed_case_owner_and_repository_are_lowercased(
    github: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    github.org("Octo-Org")
    github.repo("Octo-Org/App")
    image = unique_name("Hello")
    out = publish(
        {"image": image, "tags": "Mixed-Case"},
        github_token=github.github_token("Octo-Org/App"),
        workflow_repo="Octo-Org/App",
    )
    assert out.code == 0, out.log
    lowered = f"octo-org/{image.lower()}"
    assert out.outputs["image"].endswith("/" + lowered)
    assert registry_reader.tags(lowered) == ["Mixed-Case"]  # the tag keeps its case
    assert "lowercased" in out.log


def test_denial_shows_the_github_hint_before_the_build(
    octo: Any, publish: Callable[..., Outcome], unique_name: Callable[[str], str]
) -> None:
    # The preflight probe (preflight.py) asks the registry right after login, so GitHub's
    # denial arrives before the build instead of in the push stream.
    read_only = octo.github_token("octo-org/app", packages="read")
    out = publish({"image": unique_name("hello"), "tags": "v1"}, github_token=read_only)
    assert out.code == 1
    assert "installation not allowed to" in out.log
    assert "Manage Actions access" in out.log
    assert "Preflight:" in out.log
    assert "Builder:" not in out.log and "::group::Build" not in out.log


def test_failing_run_shows_the_last_lines_of_the_build(
    octo: Any, publish: Callable[..., Outcome], tmp_path: Path, testbed: Any
) -> None:
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\nRUN echo about-to-fail && exit 3\n"
    )
    out = publish(
        {"image": "broken", "context": str(context), "build-args": ""},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    # The tail is shown after the build's group, which a runner's log shows folded.
    after_group = out.log.rsplit("::endgroup::", 1)[-1]
    assert "Last " in after_group and "lines of the build:" in after_group
    assert "about-to-fail" in after_group
    # classic: "returned a non-zero code: 3"; BuildKit (the auto default): "exit code: 3"
    assert "returned a non-zero code: 3" in after_group or "exit code: 3" in after_group


def test_three_tags_share_one_digest_and_are_pullable(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    out = publish({"image": image, "tags": "a\nb,c"}, github_token=token)
    assert out.code == 0, out.log
    refs = out.outputs["tags"].splitlines()
    assert [r.rsplit(":", 1)[1] for r in refs] == ["a", "b", "c"]
    digests = {registry_reader.manifest_digest(f"octo-org/{image}", t) for t in "abc"}
    assert digests == {out.outputs["digest"]}
    auth = {"username": "octocat", "password": token}
    for ref in refs:
        docker_client.images.remove(ref, force=True)
        repo, tag = ref.rsplit(":", 1)
        pulled = docker_client.images.pull(repo, tag=tag, auth_config=auth)
        assert out.outputs["digest"] in " ".join(pulled.attrs["RepoDigests"])


def test_outputs_file_holds_exactly_the_documented_outputs(
    octo: Any, publish: Callable[..., Outcome], unique_name: Callable[[str], str]
) -> None:
    documented = set(yaml.safe_load((ROOT / "action.yml").read_text())["outputs"])
    out = publish(
        {"image": unique_name("hello"), "tags": "v1"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert set(out.outputs) == documented
    metadata = json.loads(out.outputs["report"])
    assert metadata["digest"] == out.outputs["digest"]
    assert out.outputs["digest"] in out.summary and "docker pull" in out.summary


def test_docker_config_is_untouched(
    octo: Any,
    publish: Callable[..., Outcome],
    docker_config: Path,
    unique_name: Callable[[str], str],
) -> None:
    before = docker_config.read_bytes()
    out = publish(
        {"image": unique_name("hello"), "tags": "v1"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert docker_config.read_bytes() == before
    assert sorted(p.name for p in docker_config.parent.iterdir()) == ["config.json"]


def test_push_false_builds_without_touching_the_registry(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    mark = registry_reader.since()
    out = publish(
        {"image": image, "tags": "v1", "push": "false"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    log = registry_reader.access_log(since=mark)
    assert not log.requests, log.requests
    assert out.outputs["digest"] == ""
    assert out.outputs["imageid"].startswith("sha256:")
    assert docker_client.images.get(out.outputs["tags"].strip()).id == out.outputs["imageid"]


@pytest.mark.parametrize(
    ("linked_to", "source"),
    [("octo-org/other", "token"), ("octo-org/app", "github-token")],
)
def test_the_packages_api_decides_the_token_when_a_pat_is_at_hand(
    octo: Any,
    publish: Callable[..., Outcome],
    unique_name: Callable[[str], str],
    linked_to: str,
    source: str,
) -> None:
    """Same owner, existing package: GITHUB_TOKEN only if it is linked to this repository
    (else the registry would refuse it); the PAT answers the question through the API."""
    octo.repo("octo-org/other")
    image = unique_name("shared")
    octo.package("octo-org", image, repository=linked_to, visibility="private")
    out = publish(
        {"image": image, "tags": "v1", "token": octo.pat("octocat", ["write:packages"])},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert out.outputs["token-source"] == source
    assert f"is linked to {linked_to}" in out.log


# --- partial push ----------------------------------------
# A push that lands some tags and not others, through the whole pipeline: the registry
# (behind the bed's fault proxy) refuses one tag's manifest after preflight passed.

DENIED = {"errors": [{"code": "DENIED", "message": "permission_denied: write_package"}]}


def test_a_partial_push_reports_what_landed_in_outputs_summary_and_error(
    octo: Any,
    publish: Callable[..., Outcome],
    testbed: Any,
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    with FaultProxy(testbed.registry) as proxy:
        proxy.add(
            Fault(
                "status", method="PUT", path=r"/manifests/b$", status=403, body=DENIED, times=None
            )
        )
        out = publish(
            {"image": image, "tags": "a\nb\nc", "registry": proxy.address},
            github_token=octo.github_token("octo-org/app"),
        )
    assert out.code == 1
    landed = [f"{proxy.address}/octo-org/{image}:{tag}" for tag in ("a", "c")]
    refused = f"{proxy.address}/octo-org/{image}:b"

    # The error: which refs landed, which did not, and GitHub's fix for the denial.
    (error,) = [line for line in out.log.splitlines() if line.startswith("::error")]
    assert f"Not landed: {refused}" in error and "write_package" in error
    assert "Manage Actions access" in error  # GitHub's fix for this denial
    assert all(ref in error for ref in landed)

    # The outputs are written for what landed, and the registry agrees: one image, one
    # digest for every tag that landed.
    digest = registry_reader.manifest_digest(f"octo-org/{image}", "a")
    assert out.outputs["digest"] == digest
    assert registry_reader.manifest_digest(f"octo-org/{image}", "c") == digest
    assert registry_reader.manifest_digest(f"octo-org/{image}", "b") is None
    metadata = json.loads(out.outputs["report"])
    assert metadata["landed"] == landed and metadata["not_landed"] == [refused]

    # The summary says it pushed part of it, not "built, not pushed", row by row.
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in out.summary.splitlines()
        if line.startswith("| `")
    }
    assert out.summary.lower().startswith("### partly published")
    assert all(digest.split(":")[1][:12] in rows[ref] for ref in landed), out.summary
    assert "not pushed" in rows[refused]
    assert "docker pull" in out.summary


# --- tags and labels ----------------------------------------
# Tags from the git context and OCI labels, through the real pipeline: the stand-in's
# repository API feeds the labels, `docker inspect` reads them back, and the stand-in
# links a PAT-created package to the repository named by the source label, as GitHub does.

OCI = "org.opencontainers.image."


def _labels(docker_client: Any, ref: str) -> dict[str, str]:
    return dict(docker_client.images.get(ref).attrs["Config"]["Labels"] or {})


def test_labels_come_from_the_repository_api(
    octo: Any,
    publish: Callable[..., Outcome],
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    out = publish(
        {"image": unique_name("hello"), "tags": "v1", "labels": f"{OCI}title=Custom title"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    labels = _labels(docker_client, out.outputs["tags"].strip())
    assert labels[f"{OCI}source"] == "https://github.com/octo-org/app"
    assert labels[f"{OCI}url"] == "https://github.com/octo-org/app"
    assert labels[f"{OCI}revision"] == SHA
    assert labels[f"{OCI}description"] == "The app"  # from GET /repos/octo-org/app
    assert labels[f"{OCI}licenses"] == "MIT"
    assert labels[f"{OCI}title"] == "Custom title"  # the user's label wins
    assert labels[f"{OCI}version"] == "v1"


def test_labels_fall_back_to_the_context_when_the_api_says_no(
    github: Any,
    publish: Callable[..., Outcome],
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    github.org("octo-org")
    github.repo("octo-org/app")
    github.repo("octo-org/secret-app", private=True, description="hidden", license_spdx="MIT")
    # app's GITHUB_TOKEN cannot see the private secret-app: GitHub answers 404.
    out = publish(
        {
            "image": unique_name("hello"),
            "tags": "v1",
            "repository": "octo-org/secret-app",
            "push": "false",
        },
        github_token=github.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert "the labels use the run context only" in out.log
    labels = _labels(docker_client, out.outputs["tags"].strip())
    # As docker/metadata-action: the OCI labels are all set, empty when unknown.
    assert labels[f"{OCI}description"] == ""
    assert labels[f"{OCI}licenses"] == ""
    assert labels[f"{OCI}source"] == "https://github.com/octo-org/secret-app"
    assert labels[f"{OCI}revision"] == SHA


def test_pat_created_package_is_linked_by_the_source_label(
    octo: Any, publish: Callable[..., Outcome], unique_name: Callable[[str], str]
) -> None:
    """GitHub links a package pushed with a PAT only through the source label."""
    octo.org("other-org", members={"octocat": "member"})
    octo.repo("other-org/lib")
    image = unique_name("lib")
    out = publish(
        {
            "image": image,
            "repository": "other-org/lib",
            "tags": "1.0",
            "token": octo.pat("octocat", ["write:packages"]),
        },
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert out.outputs["token-source"] == "token"
    packages = {f"{p['owner']}/{p['name']}": p for p in octo.state()["packages"]}
    assert packages[f"other-org/{image}"]["repository"] == "other-org/lib"


def test_semver_tag_push_gets_the_version_tags(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    out = publish(
        {"image": image},
        github_token=octo.github_token("octo-org/app"),
        ref="refs/tags/v1.2.3",
    )
    assert out.code == 0, out.log
    assert out.outputs["tag-names"].splitlines() == ["1.2.3", "1.2", "1", "latest"]
    assert sorted(registry_reader.tags(f"octo-org/{image}")) == ["1", "1.2", "1.2.3", "latest"]


def test_fork_pull_request_builds_but_does_not_push(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    event = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"repo": {"full_name": "forker/app", "fork": True}},
            "base": {"repo": {"full_name": "octo-org/app"}},
        },
        "repository": {"full_name": "octo-org/app", "default_branch": "main"},
    }
    mark = registry_reader.since()
    out = publish(
        {"image": unique_name("hello")},
        github_token=octo.github_token("octo-org/app", fork_pr=True),
        event=event,
        event_name="pull_request",
        ref="refs/pull/7/merge",
    )
    assert out.code == 0, out.log
    assert out.outputs["tag-names"] == "pr-7"
    assert out.outputs["digest"] == ""
    assert "fork" in out.log.lower()  # says why it did not push
    assert not registry_reader.access_log(since=mark).requests


def test_metadata_action_tags_and_flavor_block(
    octo: Any,
    publish: Callable[..., Outcome],
    registry_reader: Any,
    docker_client: Any,
    unique_name: Callable[[str], str],
) -> None:
    """docker/metadata-action README's "Bake definition" tags block and a flavor from its
    "flavor input" section, on a v1.2.3 tag push: the tags, version, labels, annotations and
    exported variables metadata-action documents for it, and those tags in the registry."""
    image = unique_name("meta")
    out = publish(
        {
            "image": image,
            "tags": "type=ref,event=branch\ntype=ref,event=pr\ntype=semver,pattern={{version}}\n"
            "type=semver,pattern={{major}}.{{minor}}\ntype=sha",
            "flavor": "latest=auto\nsuffix=-alpine,onlatest=true",
            "labels": f"{OCI}vendor=Octo\nnot-a-label",
            "sep-tags": ",",
        },
        github_token=octo.github_token("octo-org/app"),
        ref="refs/tags/v1.2.3",
        extra_env={"DOCKER_METADATA_ANNOTATIONS_LEVELS": "manifest,index"},
    )
    assert out.code == 0, out.log
    expected = ["1.2.3-alpine", "1.2-alpine", f"sha-{SHA[:7]}-alpine", "latest-alpine"]
    assert out.outputs["tag-names"].split(",") == expected
    assert out.outputs["version"] == "1.2.3-alpine"
    assert sorted(registry_reader.tags(f"octo-org/{image}")) == sorted(expected)
    assert "'not-a-label' has no '=' and is ignored" in out.log

    labels = _labels(docker_client, out.outputs["tags"].split(",")[0])
    assert labels[f"{OCI}version"] == "1.2.3-alpine"
    assert labels[f"{OCI}vendor"] == "Octo"
    assert labels[f"{OCI}description"] == "The app"
    output_labels = dict(line.split("=", 1) for line in out.outputs["labels"].splitlines())
    assert list(output_labels) == sorted(output_labels)
    assert {k: labels[k] for k in output_labels} == output_labels  # what the image carries
    annotations = out.outputs["annotations"].splitlines()
    assert len(annotations) == 2 * 8  # the 8 OCI keys per level; vendor is a label only
    assert annotations[0].startswith(f"manifest:{OCI}created=")
    assert annotations[8].startswith(f"index:{OCI}created=")
    assert f"index:{OCI}version=1.2.3-alpine" in annotations
    data = json.loads(out.outputs["json"])
    assert data["tags"] == out.outputs["tags"].split(",")
    assert data["labels"][f"{OCI}version"] == "1.2.3-alpine"
    exported = out.exported
    assert exported["DOCKER_METADATA_OUTPUT_VERSION"] == "1.2.3-alpine"
    assert exported["DOCKER_METADATA_OUTPUT_TAGS"] == out.outputs["tags"]
