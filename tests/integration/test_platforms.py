"""Several ``platforms`` on the bed's engine, in-process like the action's main step: one
index under every tag, each platform's manifest in ``metadata``; a RUN on a platform the
host cannot execute, and a cache export the engine cannot make, refused before the build.
No QEMU in the bed: the Dockerfiles RUN only on the build platform."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import registry_api
from tests.integration.conftest import Outcome

CROSS = """\
FROM --platform=$BUILDPLATFORM {busybox} AS build
ARG TARGETPLATFORM
RUN echo "$TARGETPLATFORM" > /platform
FROM scratch
COPY --from=build /platform /platform
"""
RUNS_ON_TARGET = "FROM {busybox}\nRUN echo hi > /x\n"


def _context(tmp_path: Path, text: str, busybox: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(text.format(busybox=busybox))
    return ctx


def _index(registry_reader: Any, name: str, tag: str) -> tuple[str, dict[str, Any]]:
    token = registry_reader.admin_token(name)
    response = requests.get(
        f"{registry_reader.base}/v2/{name}/manifests/{tag}", timeout=10,
        headers={"Authorization": f"Bearer {token}", "Accept": ", ".join((
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json"))},
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"], response.json()


def test_two_platforms_publish_one_index_under_every_tag(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    testbed: Any, tmp_path: Path,
) -> None:
    image = unique_name("multi")
    ctx = _context(tmp_path, CROSS, testbed.busybox_image)
    out = publish(
        {"image": image, "tags": "v1\nlatest", "context": str(ctx),
         "platforms": "linux/amd64,linux/arm64"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    name = f"octo-org/{image}"
    meta = json.loads(out.outputs["report"])
    for tag in ("v1", "latest"):
        digest, index = _index(registry_reader, name, tag)
        assert digest == out.outputs["digest"]
        entries = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
                   for m in index["manifests"]}
        assert entries == meta["platforms"]
    assert sorted(meta["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert len(set(meta["platforms"].values())) == 2  # two different images
    assert meta["landed"] == meta["refs"] and meta["not_landed"] == []
    assert "linux/arm64" in out.summary



def test_the_read_back_after_buildkits_push_answers_no_challenge(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    testbed: Any, tmp_path: Path,
) -> None:
    """The token the read-back (and, on a classic store, the index PUT) needs is fetched
    while BuildKit builds, and kept: each manifest call after the push is one round trip,
    not 401, token, again (issue 13 B6)."""
    image = unique_name("multi-auth")
    ctx = _context(tmp_path, CROSS, testbed.busybox_image)
    mark = registry_reader.since()
    out = publish(
        {"image": image, "tags": "v1\nlatest", "context": str(ctx),
         "platforms": "linux/amd64,linux/arm64"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    ours = [(method, status) for method, path, status in
            registry_reader.access_log(since=mark).requests
            if path.startswith(f"/v2/octo-org/{image}/manifests/") and method in ("GET", "PUT")]
    reads = [status for method, status in ours if method == "GET"]
    assert len(reads) >= 2, ours  # each tag read back
    assert 401 not in [status for _, status in ours], ours

    # A kept header the registry no longer takes (an expired token) is answered again.
    client = registry_api.RegistryClient(
        Credential(testbed.registry, "octocat", Secret(octo.github_token("octo-org/app")),
                   "github-token", "test"), scheme="http")
    scope = f"repository:octo-org/{image}:pull"
    client._auth[scope] = {"Authorization": "Bearer expired"}
    remote = client.manifest(f"octo-org/{image}", "v1")
    assert remote is not None and remote.digest == out.outputs["digest"]
    assert client._auth[scope] != {"Authorization": "Bearer expired"}


def test_two_platforms_under_two_images_land_under_every_image_and_tag(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    testbed: Any, tmp_path: Path,
) -> None:
    """BuildKit pushes itself here, so every image's refs must come from it, each read back
    from the registry, and the renamed outputs (issue 14 item 3) list them all."""
    first, second = unique_name("multi-a"), unique_name("multi-b")
    ctx = _context(tmp_path, CROSS, testbed.busybox_image)
    out = publish(
        {"images": f"{first}\n{second}", "tags": "v1\nlatest", "context": str(ctx),
         "platforms": "linux/amd64,linux/arm64"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    images = [f"{registry_reader.bed.registry}/octo-org/{n}" for n in (first, second)]
    refs = [f"{image}:{tag}" for image in images for tag in ("v1", "latest")]
    assert out.outputs["images"].splitlines() == images
    assert out.outputs["tags"].splitlines() == refs
    assert out.outputs["tag-names"].splitlines() == ["v1", "latest"]
    for name in (first, second):
        digests = {_index(registry_reader, f"octo-org/{name}", tag)[0] for tag in ("v1", "latest")}
        assert len(digests) == 1, digests  # one index under both tags of each image
    assert out.outputs["digest"] == _index(registry_reader, f"octo-org/{first}", "v1")[0]
    metadata = json.loads(out.outputs["metadata"])  # build-push-action's keys
    assert metadata["containerimage.digest"] == out.outputs["digest"]
    assert metadata["image.name"] == ",".join(refs)
    report = json.loads(out.outputs["report"])
    assert report["landed"] == refs and report["not_landed"] == []
    assert sorted(report["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert all(f"`{ref}`" in out.summary for ref in refs)

def test_a_run_on_a_platform_the_host_cannot_execute_fails_before_the_build(
    octo: Any, publish: Callable[..., Outcome], testbed: Any, tmp_path: Path,
    registry_reader: Any,
) -> None:
    ctx = _context(tmp_path, RUNS_ON_TARGET, testbed.busybox_image)
    mark = registry_reader.since()
    out = publish(
        {"image": "foreign", "context": str(ctx), "platforms": "linux/amd64,linux/s390x"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert "linux/s390x" in out.log and "line 2" in out.log
    assert "docker/setup-qemu-action" in out.log and "native runner" in out.log
    assert "exec format error" not in out.log and "#1 " not in out.log  # buildx never ran
    assert sum(registry_reader.access_log(since=mark).uploads.values()) == 0
