"""Tags from the git context and OCI labels, through the real pipeline: the stand-in's
repository API feeds the labels, `docker inspect` reads them back, and the stand-in
links a PAT-created package to the repository named by the source label, as GitHub does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import Outcome
from tests.testbed.runner_env import SHA

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
