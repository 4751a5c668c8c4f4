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
