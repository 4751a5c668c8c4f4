"""The action image builds with BuildKit: the docker CLI and buildx plugin it ships talk to
the runner's daemon through the mounted socket, and the post step (``post-entrypoint``,
in a fresh container) runs and finds nothing left behind."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.runner import ActionHarness, default_github_context
from tests.integration.test_remote_buildkit import BUILDKIT_ENGINE

ROOT = Path(__file__).resolve().parents[2]


def run_hello(runner: ActionHarness, testbed: Any, github: Any, workspace: Path,
              inputs: dict[str, str]) -> Any:
    """examples/hello in ``workspace`` published as octo-org/app's workflow, with
    ``inputs`` on top of the bed's registry and base image."""
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    shutil.copytree(ROOT / "examples" / "hello", workspace, dirs_exist_ok=True)
    return runner.run(
        ROOT,
        inputs={
            "tags": "v1",
            "registry": testbed.registry,
            "build-args": f"BASE_IMAGE={testbed.busybox_image}",
            **inputs,
        },
        github=default_github_context(
            repository="octo-org/app",
            actor="octocat",
            ref="refs/heads/main",
            event_name="push",
            api_url=testbed.github_url,
            token=github.github_token("octo-org/app"),
        ),
        workspace=workspace,
    )


def test_action_image_builds_with_buildkit_and_post_step_cleans_up(
    runner: ActionHarness,
    testbed: Any,
    github: Any,
    registry_reader: Any,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    result = run_hello(runner, testbed, github, tmp_path / "ws",
                       {"image": image, "builder": "buildkit"})
    assert result.conclusion == "success", result.text
    assert result.outputs["builder"] == "buildkit"
    assert "Builder: buildkit (docker buildx" in result.text
    assert result.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")
    saved = result.state["docker_config"]  # handed to the post step as STATE_docker_config
    assert saved.startswith("/tmp/ghdp-docker-")  # the main container's own /tmp
    assert result.post is not None, "action.yml declares post-entrypoint"
    assert result.post.conclusion == "success", result.post.text
    # The main step removed it in its finally; the post container never had it.
    assert "Post: " in result.post.text
    assert f"{saved} is already gone" in result.post.text


def test_action_image_builds_on_a_remote_buildkit_over_mutual_tls(
    runner: ActionHarness,
    testbed: Any,
    github: Any,
    registry_reader: Any,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """``builder: tcp://…`` with the TLS files a user writes from secrets into the
    workspace: the buildx the image ships (remote driver) builds and pushes there. The
    BuildKit is the bed's containerd-store engine's embedded one behind the bed's /grpc
    proxy (tests/testbed/buildkit.py), not a standalone buildkitd."""
    image = unique_name("hello")
    workspace = tmp_path / "ws"
    files = testbed.buildkit_tls
    (workspace / "bk").mkdir(parents=True)
    for source, name in ((files.ca, "ca.pem"), (files.client_cert, "cert.pem"),
                         (files.client_key, "key.pem")):
        shutil.copyfile(source, workspace / "bk" / name)
    address = testbed.on(BUILDKIT_ENGINE).buildkit_endpoints().tls
    result = run_hello(runner, testbed, github, workspace, {
        "image": image, "builder": address, "builder-cacert": "bk/ca.pem",
        "builder-cert": "bk/cert.pem", "builder-key": "bk/key.pem",
    })
    assert result.conclusion == "success", result.text
    assert f"docker buildx on the buildkitd at {address} over TLS" in result.text
    assert result.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")
