"""Runs side by side on one daemon (a self-hosted runner) building the same image name.

The containerd image store's BuildKit refuses a second export of a name it is creating
for another build at the same moment (``image "…": already exists``), so the run that
lost failed at the build. A build into the daemon now exports only a run-unique name
(``core.tags.build_tag``) and the run's tags are pointed at the built image afterwards;
BuildKit's own push (several platforms) exports the name again when it was refused.
Each run is the action's main step in a process of its own, as two jobs would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.core.tags import BUILD_TAG_PREFIX
from gh_docker_publish.edges import builders, registry_api
from gh_docker_publish.errors import PushError
from gh_docker_publish.flows import post_step
from tests.harness.runner import parse_env_file
from tests.testbed.faults import Fault, FaultProxy
from tests.testbed.runner_env import runner_env

#: Every build of a round sleeps as long, so that their exports meet: the refusal needs two
#: exports of a new name at the same moment (plain buildx, three builds a round: about
#: every other round refused with this Dockerfile, one round in eight without the sleep).
RACING = "FROM --platform=$BUILDPLATFORM {busybox} AS b\nRUN sleep 1 && echo {who} > /who\n" \
         "FROM {busybox}\nCOPY --from=b /who /who\n"
CLASSIC_NEVER_REFUSES = (
    "the classic image store names images in the daemon's reference store, which never "
    "refuses a concurrent export; the containerd store is where it is refused"
)
ONLY_THE_RACE = {"e20-classic": CLASSIC_NEVER_REFUSES, "e28-classic": CLASSIC_NEVER_REFUSES}


@pytest.fixture
def octo(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    return github


def _start(testbed: Any, files: Path, inputs: Mapping[str, str], token: str,
           run_id: str) -> subprocess.Popen[str]:
    env = {**os.environ, **runner_env(testbed, files, inputs, github_token=token),
           "HOME": str(files), "GITHUB_RUN_ID": run_id, "GITHUB_RUN_ATTEMPT": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "import os, sys; from gh_docker_publish.cli import run_action; "
         "sys.exit(run_action(dict(os.environ)))"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _race(testbed: Any, tmp_path: Path, name: str, round_: int, runs: int,
          inputs: Mapping[str, str], token: str = "") -> list[tuple[int, str, dict[str, str]]]:
    """``runs`` runs started together, each with a context of its own (another image)."""
    procs = []
    for i in range(runs):
        files = tmp_path / f"{round_}-{i}"
        context = files / "context"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(
            RACING.format(busybox=testbed.busybox_image, who=f"{name}-{i}"))
        procs.append((_start(testbed, files, {**inputs, "image": name, "tags": "v1",
                                              "context": str(context)}, token,
                             run_id=f"{round_}{i}"), files))
    done = []
    for proc, files in procs:
        log, _ = proc.communicate(timeout=600)
        done.append((proc.returncode, log, dict(parse_env_file((files / "output").read_text()))))
    return done


def _build_names(docker_client: Any, name: str) -> list[str]:
    return [tag for image in docker_client.api.images(name=name) for tag in image["RepoTags"]
            or () if BUILD_TAG_PREFIX in tag]


@pytest.mark.engines(exclude=ONLY_THE_RACE)
def test_concurrent_builds_of_one_name_into_the_daemon_all_succeed(
    octo: Any, testbed: Any, docker_client: Any, tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """Three runs at once, `push: false`, the same new name, four rounds: every build
    succeeds, the tag is there locally (at one of the images built), `metadata` names the
    tag, and no run-unique name is left on the daemon."""
    for round_ in range(4):
        name = unique_name("same-name")
        ref = f"{testbed.registry}/octo-org/{name}:v1"
        done = _race(testbed, tmp_path, name, round_, 3, {"push": "false", "builder": "buildkit"})
        for code, log, _ in done:
            assert code == 0 and "already exists" not in log, log
        built = {outputs["imageid"] for _, _, outputs in done}
        assert len(built) == 3  # three images, each reported by its own run
        assert docker_client.api.inspect_image(ref)["Id"] in built
        for _, log, outputs in done:
            assert json.loads(outputs["metadata"])["image.name"] == ref, log
            assert BUILD_TAG_PREFIX not in outputs["metadata"] + outputs["imageid"]
        assert _build_names(docker_client, f"{testbed.registry}/octo-org/{name}") == []


class _Lines(list[str]):
    def info(self, message: str) -> None:
        self.append(message)

    def warning(self, message: str) -> None:
        self.append(f"warning: {message}")


@pytest.mark.engines(exclude=ONLY_THE_RACE)
def test_concurrent_two_platform_pushes_of_one_name_are_decided_by_the_registry(
    octo: Any, testbed: Any, tmp_path: Path, unique_name: Callable[[str], str],
) -> None:
    """Several platforms: BuildKit pushes, and exports every tag into the daemon's store
    too, so a build name cannot help; a refused name is exported again. Three pushes
    (``BuildKitPusher``, as flows/platforms.py runs it) started together, six rounds:
    none fails at the build or the export; each either reports the index it built under
    the tag, or says the tag holds another run's image."""
    token = octo.github_token("octo-org/app")
    cred = Credential(testbed.registry, "octocat", Secret(token), "github-token", "test")

    def push(request: builders.BuildRequest, gate: threading.Barrier
             ) -> tuple[builders.DirectPush | PushError, list[str]]:
        lines = _Lines()
        gate.wait()
        try:
            return builders.BuildKitPusher(testbed.docker_host).push(
                request, lines, registry_api.RegistryClient(cred)), lines
        except PushError as failure:
            return failure, lines

    for round_ in range(6):
        ref = f"{testbed.registry}/octo-org/{unique_name('same-index')}:v1"
        requests = []
        for i in range(3):
            context = tmp_path / f"{round_}-{i}"
            context.mkdir()
            (context / "Dockerfile").write_text(
                RACING.format(busybox=testbed.busybox_image, who=f"{ref}-{i}"))
            requests.append(builders.BuildRequest(
                context=context, tags=(ref,), platforms=("linux/amd64", "linux/arm64"),
                credentials=(cred,)))
        gate = threading.Barrier(len(requests))
        with ThreadPoolExecutor(len(requests)) as pool:
            done = list(pool.map(push, requests, [gate] * len(requests)))
        assert any(isinstance(outcome, builders.DirectPush) for outcome, _ in done)
        for outcome, lines in done:
            if isinstance(outcome, PushError):  # another run's index holds the tag
                assert "does not show the image under every tag" in str(outcome), lines
            else:
                assert outcome.landed == (ref,) and outcome.digest == outcome.metadata[
                    "containerimage.digest"], lines


def test_the_build_name_is_gone_and_the_tags_stay_after_a_push(
    octo: Any, testbed: Any, docker_client: Any, publish: Callable[..., Any],
    unique_name: Callable[[str], str],
) -> None:
    """Every engine, both image stores: a pushed run leaves its tags on the daemon at the
    image it built, its `imageid`, `digest` and `metadata` do not show the build name,
    and the post step has nothing left to remove."""
    name = unique_name("named")
    ref = f"{testbed.registry}/octo-org/{name}:v1"
    out = publish({"image": name, "tags": "v1,v2"},
                  github_token=octo.github_token("octo-org/app"))
    assert out.code == 0, out.log
    assert docker_client.api.inspect_image(ref)["Id"] == out.outputs["imageid"]
    assert f"/octo-org/{name}:{BUILD_TAG_PREFIX}" in out.log  # built under its build name
    assert _build_names(docker_client, f"{testbed.registry}/octo-org/{name}") == []
    for output in ("imageid", "digest", "metadata"):
        assert BUILD_TAG_PREFIX not in out.outputs[output]
    if out.outputs["metadata"] not in ("", "{}"):
        assert json.loads(out.outputs["metadata"])["image.name"] == f"{ref},{ref[:-1]}2"
    assert out.state["build_name"] == ""  # removed by the main step


def test_the_post_step_removes_a_build_name_a_killed_run_left(
    testbed: Any, docker_client: Any, unique_name: Callable[[str], str],
) -> None:
    """A main step killed between build and cleanup leaves its build name (saved as state):
    the post step removes that name only; the tag beside it, at the same image, stays."""
    repo = f"{testbed.registry}/octo-org/{unique_name('left')}"
    image_id = docker_client.api.inspect_image(testbed.busybox_image)["Id"]
    left = f"{repo}:{BUILD_TAG_PREFIX}77-1.0123456789ab"
    for ref in (left, f"{repo}:v1"):
        name, _, tag = ref.rpartition(":")
        docker_client.api.tag(image_id, name, tag)
    env = {"STATE_build_name": left, "DOCKER_HOST": testbed.docker_host}
    assert post_step.run_post(env) == 0
    assert docker_client.api.inspect_image(f"{repo}:v1")["Id"] == image_id
    assert _build_names(docker_client, repo) == []
    assert post_step.remove_build_name(left, testbed.docker_host) == f"{left} is already gone"
    docker_client.api.remove_image(f"{repo}:v1", noprune=True)


def test_the_build_name_is_gone_after_a_refused_push_too(
    octo: Any, testbed: Any, docker_client: Any, publish: Callable[..., Any],
    unique_name: Callable[[str], str],
) -> None:
    """A push the registry refuses fails the run; the build name goes all the same, and
    the run's tag stays on the daemon at the image it built."""
    name = unique_name("refused")
    denied = {"errors": [{"code": "DENIED", "message": "permission_denied: write_package"}]}
    with FaultProxy(testbed.registry) as proxy:
        proxy.add(Fault("status", method="PUT", path=r"/manifests/", status=403, body=denied,
                        times=None))
        out = publish({"image": name, "tags": "v1", "registry": proxy.address},
                      github_token=octo.github_token("octo-org/app"))
    assert out.code == 1 and "Not landed" in out.log, out.log
    repo = f"{proxy.address}/octo-org/{name}"
    assert docker_client.api.inspect_image(f"{repo}:v1")["Id"] == out.outputs["imageid"]
    assert _build_names(docker_client, repo) == []
    assert out.state["build_name"] == ""
