"""build-push-action's pass-through inputs reach buildx on the bed (issue 14 item 3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Outcome


def test_add_hosts_and_no_cache_filters_reach_buildx(
    octo: Any, publish: Callable[..., Outcome], docker_client: Any, tmp_path: Path,
    testbed: Any, unique_name: Callable[[str], str],
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\n"
        "RUN grep docker /etc/hosts > /hosts\n"
    )
    out = publish(
        {"image": unique_name("bpa"), "tags": "v1", "context": str(context),
         "file": str(context / "Dockerfile"), "build-args": "", "builder": "buildkit",
         "add-hosts": "docker:10.180.0.1",
         "no-cache-filters": "deps"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    ref = out.outputs["tags"]
    hosts = docker_client.containers.run(ref, ["cat", "/hosts"], remove=True).decode()
    assert hosts.split() == ["10.180.0.1", "docker"]


def test_build_contexts_on_an_engine_too_old_for_them_names_the_input(
    octo: Any, publish: Callable[..., Outcome], tmp_path: Path, testbed: Any,
    unique_name: Callable[[str], str],
) -> None:
    """Named contexts need BuildKit 0.10 (Engine 23+); on an older engine the error says
    which input. (On a newer one the build passes: the flag is in the argv, unit-tested.)"""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "greeting").write_text("hi\n")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\nCOPY --from=extra greeting /greeting\n"
    )
    out = publish(
        {"image": unique_name("bc"), "tags": "v1", "context": str(context),
         "file": str(context / "Dockerfile"), "build-args": "", "builder": "buildkit",
         "build-contexts": f"extra={extra}"},
        github_token=octo.github_token("octo-org/app"),
    )
    if out.code == 0:  # an engine with named contexts
        assert out.outputs["digest"], out.log
        return
    assert "too old for 'build-contexts'" in out.log, out.log


@pytest.mark.engines(exclude={
    "e28-classic": "its BuildKit runs build checks", "e28-containerd": "its BuildKit runs "
    "build checks"})
def test_call_check_on_a_buildkit_without_it_names_the_input(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    """buildx 0.29 has --call, but Engine 20.10's Dockerfile frontend cannot answer it:
    the error says which input the engine is too old for; nothing is pushed (call builds
    no image)."""
    mark = registry_reader.since()
    out = publish(
        {"image": unique_name("check"), "tags": "v1", "call": "check", "builder": "buildkit"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert "too old for 'call: check'" in out.log, out.log
    assert not registry_reader.access_log(since=mark).manifests


@pytest.mark.engines(exclude={"e20-classic": "its BuildKit cannot run build checks"})
def test_call_check_runs_the_checks_and_pushes_nothing(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    """``call: check`` evaluates the Dockerfile (buildx --call=check) and builds nothing,
    so push auto means no push."""
    mark = registry_reader.since()
    out = publish(
        {"image": unique_name("check"), "tags": "v1", "call": "check", "builder": "buildkit"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    assert "Check complete" in out.log, out.log
    assert not registry_reader.access_log(since=mark).manifests
