"""``builder: tcp://…`` — buildx's remote driver — building and pushing for real (issue 13).

The BuildKit at the ``tcp://`` address is **not a standalone buildkitd** (none can be had
here): it is the BuildKit embedded in the bed's containerd-store engine (``e28-containerd``)
behind the bed's proxy to the engine's ``/grpc`` endpoint (tests/testbed/buildkit.py).
To buildx it is a remote BuildKit like any other: gRPC over TCP, optionally TLS with a
client certificate; the build context and the registry credentials go over its session.
The classic store's embedded BuildKit has no ``image`` exporter, so that one engine's
BuildKit serves every engine's run: on e20-classic and e28-classic the runner's daemon
and the BuildKit are different engines, as with a BuildKit farm.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Outcome
from tests.integration.test_builder_elsewhere import (
    _image_ids,
    assert_only_the_chosen_token,
    assert_two_platform_index,
    home_with_another_login,
    record_what_buildx_is_given,
)
from tests.integration.test_ghes import built_anything
from tests.testbed import buildkit
from tests.testbed.procs import TestbedError

#: The engine whose embedded BuildKit can push (its containerd image store has the
#: ``image`` exporter; the classic store's has only ``moby`` and ``local``).
BUILDKIT_ENGINE = "e28-containerd"


@pytest.fixture
def remote(testbed: Any) -> buildkit.Endpoints:
    """The containerd-store engine's BuildKit at its tcp:// addresses."""
    try:
        return testbed.on(BUILDKIT_ENGINE).buildkit_endpoints()
    except TestbedError as exc:
        pytest.fail(f"the remote BuildKit is {BUILDKIT_ENGINE}'s: {exc}", pytrace=False)


@pytest.fixture
def tls_inputs(testbed: Any) -> dict[str, str]:
    files = testbed.buildkit_tls
    return {"builder-cacert": str(files.ca), "builder-cert": str(files.client_cert),
            "builder-key": str(files.client_key)}


def _not_in_the_runners_daemon(testbed: Any, docker_client: Any, ref: str) -> None:
    """BuildKit pushed it; the runner's daemon never got it (unless it is that BuildKit's
    own engine, whose image exporter names what it pushes in its store)."""
    if testbed.engine != BUILDKIT_ENGINE:
        assert _image_ids(docker_client, ref) == []


def test_a_remote_buildkit_over_tls_builds_and_pushes_every_tag(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    remote: buildkit.Endpoints, tls_inputs: dict[str, str], scratch_context: Path,
    registry: str, testbed: Any, docker_client: Any,
) -> None:
    image = unique_name("remote")
    out = publish(
        {"image": image, "tags": "v1\nlatest", "builder": remote.tls,
         "context": str(scratch_context), **tls_inputs},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert f"docker buildx on the buildkitd at {remote.tls} over TLS" in out.log
    assert "which pushes the image itself" in out.log
    landed = registry_reader.manifest_digest(f"octo-org/{image}", "v1")
    assert out.outputs["digest"] == landed
    assert registry_reader.manifest_digest(f"octo-org/{image}", "latest") == landed
    assert sorted(json.loads(out.outputs["report"])["landed"]) == sorted(
        f"{registry}/octo-org/{image}:{tag}" for tag in ("v1", "latest"))
    _not_in_the_runners_daemon(testbed, docker_client, f"{registry}/octo-org/{image}:v1")


def test_a_remote_buildkit_without_tls_builds_and_pushes(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    remote: buildkit.Endpoints, scratch_context: Path,
) -> None:
    """Plain gRPC over TCP, as ``buildkitd --addr tcp://…`` without TLS serves it."""
    image = unique_name("remote")
    out = publish(
        {"image": image, "tags": "v1", "builder": remote.plain, "context": str(scratch_context)},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert f"docker buildx on the buildkitd at {remote.plain}" in out.log
    assert out.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")


def test_a_remote_buildkit_publishes_two_platforms_as_one_index(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    remote: buildkit.Endpoints, tls_inputs: dict[str, str], scratch_context: Path,
) -> None:
    """A buildkitd pushes the index itself, whatever store the runner's daemon has."""
    image = unique_name("remote")
    out = publish(
        {"image": image, "tags": "v1", "builder": remote.tls, "context": str(scratch_context),
         "platforms": "linux/amd64,linux/arm64", **tls_inputs},
        github_token=octo.github_token("octo-org/app"),
    )
    assert_two_platform_index(out, registry_reader, image)


def test_a_remote_buildkit_loads_into_the_runners_daemon_when_the_run_does_not_push(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, registry_reader: Any,
    remote: buildkit.Endpoints, tls_inputs: dict[str, str], scratch_context: Path,
    docker_client: Any, registry: str,
) -> None:
    image = unique_name("remote")
    out = publish(
        {"image": image, "tags": "v1", "builder": remote.tls, "push": "false",
         "context": str(scratch_context), **tls_inputs},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert _image_ids(docker_client, f"{registry}/octo-org/{image}:v1") == [
        out.outputs["imageid"]]
    assert out.outputs["digest"] == ""
    assert registry_reader.tags(f"octo-org/{image}") == []


def test_buildx_sees_only_the_chosen_token_and_the_tls_files_in_a_private_config(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, remote: buildkit.Endpoints,
    tls_inputs: dict[str, str], scratch_context: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, registry: str, registry_reader: Any,
) -> None:
    """What buildx is given as our remote builder is set up, with a user's own docker
    config in HOME holding another login that must not reach it; the push went through
    with the chosen token (BuildKit asked buildx for it over the session)."""
    home = home_with_another_login(tmp_path, registry)
    seen = record_what_buildx_is_given(monkeypatch)
    token = octo.github_token("octo-org/app")
    image = unique_name("remote")
    out = publish(
        {"image": image, "tags": "v1", "builder": remote.tls, "context": str(scratch_context),
         **tls_inputs},
        github_token=token, extra_env={"HOME": str(home)},
    )
    assert out.code == 0, out.log
    assert registry_reader.tags(f"octo-org/{image}") == ["v1"]
    (given,) = seen
    assert_only_the_chosen_token(given, registry, token)
    assert given["instance"]["Driver"] == "remote"
    (node,) = given["instance"]["Nodes"]
    assert node["Endpoint"] == remote.tls
    assert node["DriverOpts"] == {
        "cacert": tls_inputs["builder-cacert"], "cert": tls_inputs["builder-cert"],
        "key": tls_inputs["builder-key"]}
    assert sorted(home.rglob("*")) == [home / ".docker", home / ".docker" / "config.json"]


@pytest.mark.parametrize(
    ("case", "drop", "ca", "reason"),
    [
        ("no client certificate", ("builder-cert", "builder-key"), "", "refused TLS"),
        ("a CA that did not sign it", (), "SIGNING", "refused TLS"),
        ("no TLS at all", ("builder-cacert", "builder-cert", "builder-key"), "",
         "does not answer as BuildKit"),
    ],
)
def test_a_remote_buildkit_refusing_tls_is_named_before_the_build(
    octo: Any, publish: Callable[..., Outcome], unique_name: Any, testbed: Any,
    remote: buildkit.Endpoints, tls_inputs: dict[str, str], scratch_context: Path,
    registry_reader: Any, case: str, drop: tuple[str, ...], ca: str, reason: str,
) -> None:
    inputs = {k: v for k, v in tls_inputs.items() if k not in drop}
    if ca:
        inputs["builder-cacert"] = str(testbed.signing_cert)
    image = unique_name("remote")
    since = registry_reader.since()
    out = publish(
        {"image": image, "tags": "v1", "builder": remote.tls, "context": str(scratch_context),
         **inputs},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code != 0, case
    assert f"Input 'builder': the buildkitd at {remote.tls}" in out.log, case
    assert reason in out.log, case
    assert not built_anything(out.log)
    assert not [path for _, path, _ in registry_reader.access_log(since).requests
                if image in path]
