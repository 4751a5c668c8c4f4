"""One build published under several images (issue 14 item 2), on the bed: each image gets
its own token by GitHub's rules or a registry-auth entry, and the blobs go up once per
registry (the registry's access log counts uploads and cross-repository mounts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Outcome


@pytest.fixture
def unique_context(tmp_path: Path, testbed: Any) -> dict[str, str]:
    """A context whose one layer no earlier run has pushed, so its upload can be counted."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\nRUN echo {uuid.uuid4().hex} > /build-id\n"
    )
    return {"context": str(context), "file": str(context / "Dockerfile"), "build-args": ""}


def test_two_images_one_registry_upload_the_blobs_once(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str], unique_context: dict[str, str],
) -> None:
    first, second = unique_name("multi-a"), unique_name("multi-b")
    mark = registry_reader.since()
    out = publish(
        {**unique_context, "images": f"{first}\nname={second},enable=true", "tags": "v1,v2"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    log = registry_reader.access_log(since=mark)
    a, b = f"octo-org/{first}", f"octo-org/{second}"
    # The new layer went up once, to the first image; the second image mounted it.
    assert log.uploads[a] >= 1, log.requests
    assert log.uploads[b] == 0, "\n".join(f"{m} {p[:110]} {s}" for m, p, s in log.requests)
    assert log.mounts[b] >= 1, log.requests
    assert log.manifests[a] == 2 and log.manifests[b] == 2  # one per tag
    digest = out.outputs["digest"]
    for name in (a, b):
        for tag in ("v1", "v2"):
            assert registry_reader.manifest_digest(name, tag) == digest
    images = out.outputs["images"].splitlines()
    assert images == [f"{registry_reader.bed.registry}/{n}" for n in (a, b)]
    assert out.outputs["tags"].splitlines() == [f"{i}:{t}" for i in images for t in ("v1", "v2")]
    assert out.outputs["tag-names"].splitlines() == ["v1", "v2"]
    assert all(f"`{image}`" in out.summary.splitlines()[0] for image in images)
    assert all(f"`{image}:v2`" in out.summary for image in images)


def test_each_image_gets_its_own_token(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    """Own package: GITHUB_TOKEN; another owner's package in the same run: the PAT."""
    octo.org("other-org", members={"octocat": "member"})
    octo.repo("other-org/lib")
    own, other = unique_name("own"), unique_name("lib")
    registry = registry_reader.bed.registry
    pat = octo.pat("octocat", ["write:packages"])
    out = publish(
        {"images": f"{own}\n{registry}/other-org/{other}", "tags": "1.0", "token": pat},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert out.outputs["token-source"] == "github-token"  # the first image's
    assert f"Token for {registry}/octo-org/{own}: Using the GITHUB_TOKEN" in out.log
    assert f"Token for {registry}/other-org/{other}: Using the personal access token" in out.log
    assert registry_reader.manifest_digest(f"octo-org/{own}", "1.0") == out.outputs["digest"]
    assert registry_reader.manifest_digest(f"other-org/{other}", "1.0") == out.outputs["digest"]


def test_another_owners_image_without_pat_fails_before_the_build(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    own, other = unique_name("own"), unique_name("lib")
    registry = registry_reader.bed.registry
    mark = registry_reader.since()
    out = publish(
        {"images": f"{own}\n{registry}/other-org/{other}", "tags": "1.0"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert f"Publishing {registry}/other-org/{other} needs a personal access token" in out.log
    assert "write:packages" in out.log
    assert not registry_reader.access_log(since=mark).manifests  # nothing pushed


def test_registry_auth_logs_in_to_a_registry_that_is_not_githubs(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    """The bed's registry is not one of GitHub's hosts, so a registry-auth entry for it is
    what logs in (login-action's YAML); its password never reaches the log."""
    image = unique_name("ra")
    registry = registry_reader.bed.registry
    pat = octo.pat("octocat", ["write:packages"])
    out = publish(
        {"image": image, "tags": "v1",
         "registry-auth": f"- registry: {registry}\n  username: octocat\n  password: {pat}\n"},
    )
    assert out.code == 0, out.log
    assert out.outputs["token-source"] == "registry-auth"
    assert out.outputs["username"] == "octocat"
    assert out.log.count(f"::add-mask::{pat}") >= 1  # masked first, so the runner hides it
    shown = [line for line in out.log.splitlines() if not line.startswith("::add-mask::")]
    assert not any(pat in line for line in shown) and pat not in out.summary
    assert registry_reader.manifest_digest(f"octo-org/{image}", "v1") == out.outputs["digest"]


def test_full_references_in_tags_publish_that_image(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    """build-push-action's `tags: HOST/OWNER/IMAGE:TAG` lines: image and tag split."""
    image = unique_name("refs")
    registry = registry_reader.bed.registry
    out = publish(
        {"tags": f"{registry}/octo-org/{image}:latest\n{registry}/Octo-Org/{image}:1.0.0"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert out.outputs["tag-names"].splitlines() == ["latest", "1.0.0"]
    for tag in ("latest", "1.0.0"):
        assert registry_reader.manifest_digest(f"octo-org/{image}", tag) == out.outputs["digest"]
