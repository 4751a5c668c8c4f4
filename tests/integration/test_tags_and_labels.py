"""Tags from the git context and OCI labels, through the real pipeline: the stand-in's
repository API feeds the labels, `docker inspect` reads them back, and the stand-in
links a PAT-created package to the repository named by the source label, as GitHub does.
"""

from __future__ import annotations

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
    labels = _labels(docker_client, out.outputs["refs"].strip())
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
    labels = _labels(docker_client, out.outputs["refs"].strip())
    assert f"{OCI}description" not in labels
    assert f"{OCI}licenses" not in labels
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
    assert out.outputs["tags"].splitlines() == ["1.2.3", "1.2", "1", "latest"]
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
    assert out.outputs["tags"] == "pr-7"
    assert out.outputs["digest"] == ""
    assert "fork" in out.log.lower()  # says why it did not push
    assert not registry_reader.access_log(since=mark).requests
