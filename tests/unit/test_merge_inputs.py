"""Issue 16's inputs: ``push-by-digest`` and ``mode: merge`` with ``digests``, refused
before any network call when wrong; GitHub's Docker registry (GHES) refuses both before
the daemon is contacted (it takes IMAGE:VERSION, never IMAGE@SHA)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gh_docker_publish.core import tags
from gh_docker_publish.core.build_inputs import PlatformDigest
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.settings import settings_from_values
from gh_docker_publish.edges import registry_api
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import InputError
from gh_docker_publish.flows import merge, publish

ENV = {"GITHUB_REPOSITORY": "octo-org/app"}
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
GHES = RunContext(
    server_url="https://ghes.example.test", api_url="https://ghes.example.test/api/v3",
    repository="octo-org/app", repository_owner="octo-org", event_name="push",
    ref="refs/heads/main", sha="a" * 40,
)


def _settings(tmp_path: Path, **values: str):  # type: ignore[no-untyped-def]
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return settings_from_values({"image": "app", "context": str(tmp_path), **values}, ENV)


def test_digests_lines_are_digests_or_platform_claims(tmp_path: Path) -> None:
    settings = _settings(tmp_path, mode="merge", digests=f"{A}\nlinux/aarch64={B}\n")
    assert settings.digests == (PlatformDigest(A), PlatformDigest(B, "linux/arm64"))


@pytest.mark.parametrize(
    ("digests", "problem"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("sha256:abc", "not a manifest digest"),
        (f"{A.upper()}", "not a manifest digest"),
        (f"{A}\n{A}", "the same digest twice"),
        (f"linux/arm64={A}\nlinux/arm64={B}", "a second digest for linux/arm64"),
        (f"linux/sparc={A}", "unknown architecture"),
    ],
)
def test_bad_digests_name_the_input(tmp_path: Path, digests: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        _settings(tmp_path, mode="merge", digests=digests)
    assert info.value.input_name == "digests"


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"platforms": "linux/amd64,linux/arm64"}, "one platform per job"),
        ({"builder": "classic"}, "needs BuildKit"),
        ({"mode": "merge", "digests": A}, "not mode merge"),
        ({"push-by-digest": "yes"}, "true"),
    ],
)
def test_push_by_digest_is_one_platform_with_buildkit(
    tmp_path: Path, values: dict[str, str], problem: str
) -> None:
    with pytest.raises(InputError, match=problem) as info:
        _settings(tmp_path, **{"push-by-digest": "true", **values})
    assert info.value.input_name == "push-by-digest"


@pytest.mark.parametrize(
    ("values", "run", "input_name"),
    [
        ({"push-by-digest": "true", "platforms": "linux/arm64"}, publish.run, "push-by-digest"),
        ({"mode": "merge", "digests": A}, merge.run, "mode"),
    ],
)
def test_ghes_docker_registry_refuses_digest_pushes_before_the_daemon(
    tmp_path: Path, values: dict[str, str], run: object, input_name: str
) -> None:
    settings = _settings(tmp_path, registry="docker.ghes.example.test", **values)
    with pytest.raises(InputError, match="IMAGE:VERSION") as info:
        run(settings, GHES, Console({}, stream=io.StringIO()),  # type: ignore[operator]
            publish.Services(docker_host="unix:///nonexistent.sock"))
    assert info.value.input_name == input_name
    assert "Container registry" in info.value.hint


def test_staging_tag_stays_a_tag() -> None:
    assert tags.staging_tag("v1", "linux/arm/v7") == "v1-linux-arm-v7"
    long = tags.staging_tag("x" * 128, "linux/arm64")
    assert len(long) == 128 and long.endswith("-linux-arm64")


def test_index_with_annotations_is_an_oci_index() -> None:
    docker = registry_api.DOCKER_MANIFEST
    entries = [("linux/arm64", registry_api.RemoteManifest(A, docker, B, 100))]
    media_type, body = registry_api.index_body(entries, {"org.opencontainers.image.title": "a"})
    assert media_type == registry_api.OCI_INDEX
    parsed = json.loads(body)
    assert parsed["annotations"] == {"org.opencontainers.image.title": "a"}
    assert parsed["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux"}
    assert registry_api.index_body(entries)[0] == registry_api.DOCKER_LIST
