"""BuildKit builds through ``docker buildx`` against the test bed's daemon, run in-process
like the action's main step: builder choice and output, parity with the classic builder,
build secrets, and the private DOCKER_CONFIG's lifetime (success, failure, SIGTERM)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.runner import parse_env_file
from tests.integration.conftest import ROOT, Outcome
from tests.testbed.runner_env import SHA

SECRET = "hunter2-not-in-any-layer"
FILE_SECRET = "file-secret-not-in-any-layer"
VOLATILE_OUTPUTS = {"digest", "imageid", "metadata", "report", "builder"}
VOLATILE_METADATA = {"digest", "imageid", "ref_digests", "builder", "seconds", "bytes_uploaded"}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``tempfile`` puts the private DOCKER_CONFIG during this test."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _configs(where: Path) -> list[Path]:
    return sorted(where.glob("ghdp-docker-*"))


def test_auto_picks_buildkit_and_says_so(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any
) -> None:
    image = unique_name("hello")
    out = publish({"image": image, "tags": "v1"}, github_token=octo.github_token("octo-org/app"))
    assert out.code == 0, out.log
    assert out.outputs["builder"] == "buildkit"
    assert "Builder: buildkit (docker buildx" in out.log
    assert "--progress=plain" not in out.log  # the progress, not the command line
    assert "#1 [internal] load" in out.log or "[internal] load build definition" in out.log
    assert out.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")


def test_both_builders_publish_the_same_example(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, unique_name: Any,
    docker_client: Any,
) -> None:
    image = unique_name("hello")
    token = octo.github_token("octo-org/app")
    # The commit's time makes the created label (and so the config) the same for both.
    event = {"repository": {"default_branch": "main"},
             "head_commit": {"timestamp": "2024-05-01T12:00:00Z"}}
    runs = {
        mode: publish(
            {"image": image, "tags": "v1\nlatest", "builder": mode},
            github_token=token,
            event=event,
        )
        for mode in ("classic", "buildkit")
    }
    for mode, out in runs.items():
        assert out.code == 0, out.log
        assert out.outputs["builder"] == mode
    classic, buildkit = runs["classic"], runs["buildkit"]
    same = {k: v for k, v in classic.outputs.items() if k not in VOLATILE_OUTPUTS}
    assert same == {k: v for k, v in buildkit.outputs.items() if k not in VOLATILE_OUTPUTS}
    meta_c, meta_b = (json.loads(o.outputs["report"]) for o in (classic, buildkit))
    for meta in (meta_c, meta_b):
        for key in VOLATILE_METADATA:
            meta.pop(key)
    assert meta_c == meta_b
    # The last publish (BuildKit) is what the registry serves; the image config agrees.
    assert buildkit.outputs["digest"] == registry_reader.manifest_digest(f"octo-org/{image}", "v1")
    ref = buildkit.outputs["tags"].splitlines()[0]
    config = docker_client.images.get(ref).attrs["Config"]
    assert config["Cmd"] == ["/usr/local/bin/hello"]
    assert config["Labels"] == meta_b["labels"]


def test_buildkit_only_dockerfile_under_classic_fails_clearly(
    octo: Any, publish: Callable[..., Outcome], tmp_path: Path, testbed: Any
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\n"
        f"FROM {testbed.busybox_image}\n"
        "RUN --mount=type=cache,target=/c echo hi\n"
        "COPY <<EOF /x\nhello\nEOF\n"
    )
    out = publish(
        {"image": "bk-only", "context": str(context), "builder": "classic"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert "needs BuildKit, which the classic builder lacks" in out.log
    for feature in ("'# syntax=' parser directive", "RUN --mount", "heredoc"):
        assert feature in out.log
    assert "Step 1/" not in out.log


def test_secrets_reach_the_build_but_not_the_image(
    octo: Any, publish: Callable[..., Outcome], tmp_path: Path, testbed: Any,
    docker_client: Any, unique_name: Any,
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\n"
        "RUN --mount=type=secret,id=tok,required "
        "sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha256\n"
        "RUN --mount=type=secret,id=file,required "
        "sha256sum /run/secrets/file | cut -d' ' -f1 > /file.sha256\n"
    )
    secret_file = tmp_path / "file-secret"
    secret_file.write_text(FILE_SECRET)
    image = unique_name("secrets")
    out = publish(
        {
            "image": image,
            "context": str(context),
            "secrets": f"id=tok,env=BUILD_TOKEN\nid=file,src={secret_file}",
            "push": "false",
        },
        github_token=octo.github_token("octo-org/app"),
        extra_env={"BUILD_TOKEN": SECRET},
    )
    assert out.code == 0, out.log
    # Only the mask command carries it (the runner hides the value from then on).
    assert [ln for ln in out.log.splitlines() if SECRET in ln] == [f"::add-mask::{SECRET}"]
    assert FILE_SECRET not in out.log
    ref = out.outputs["tags"].splitlines()[0]
    seen = docker_client.containers.run(
        ref, ["cat", "/tok.sha256", "/file.sha256"], remove=True
    ).decode()
    assert seen.split() == [
        hashlib.sha256(SECRET.encode()).hexdigest(),
        hashlib.sha256(FILE_SECRET.encode()).hexdigest(),
    ]
    history = json.dumps(docker_client.api.history(ref))
    assert SECRET not in history and FILE_SECRET not in history
    assert "secret" in history  # the RUN lines are there, their secrets are not
    blob = b"".join(docker_client.api.get_image(ref))
    assert SECRET.encode() not in blob and FILE_SECRET.encode() not in blob
    with tarfile.open(fileobj=io.BytesIO(blob)) as outer:
        assert "run/secrets/tok" not in " ".join(outer.getnames())


def test_secrets_with_classic_fail_before_any_call(
    octo: Any, publish: Callable[..., Outcome]
) -> None:
    out = publish(
        {"image": "x", "builder": "classic", "secrets": "id=tok,env=BUILD_TOKEN"},
        extra_env={"BUILD_TOKEN": SECRET},
    )
    assert out.code == 1
    assert "needs BuildKit, but builder is classic" in out.log
    assert "secrets" in out.log


@pytest.mark.engines(
    exclude={
        "e28-containerd": "its containerd image store exports registry caches and "
        "attestations, so nothing is refused there"
    }
)
def test_a_cache_export_the_engine_cannot_make_fails_before_any_registry_call(
    octo: Any, publish: Callable[..., Outcome], registry_reader: Any, docker_client: Any,
) -> None:
    """Issue 13: on a classic store the daemon's BuildKit exports only inline caches; say so
    (engine, store, the fixes) before logging in, not after sending the context."""
    if any("containerd.snapshotter" in str(pair) for pair in
           docker_client.info().get("DriverStatus") or []):
        pytest.fail("this engine uses the containerd store: the refusal does not apply")
    mark = registry_reader.since()
    out = publish(
        {"image": "cache", "cache-to": "type=registry,ref=example.test/o/app:cache,mode=max",
         "provenance": "mode=max"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    version = docker_client.version()["Version"]
    assert f"Docker Engine {version} with the classic image store" in out.log
    assert "exports only type=inline caches" in out.log and "provenance" in out.log
    assert "containerd-snapshotter" in out.log and "docker-container://" in out.log
    assert "#1 " not in out.log and "Log in to" not in out.log  # buildx never ran
    assert sum(registry_reader.access_log(since=mark).uploads.values()) == 0


# --- the private DOCKER_CONFIG ------------------------------------------------------------


def test_private_config_is_gone_after_success(
    octo: Any, publish: Callable[..., Outcome], private_tmp: Path, unique_name: Any
) -> None:
    out = publish(
        {"image": unique_name("hello"), "tags": "v1"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 0, out.log
    recorded = Path(out.state["docker_config"])
    assert recorded.parent == private_tmp and recorded.name.startswith("ghdp-docker-")
    assert not recorded.exists()
    assert _configs(private_tmp) == []


def test_private_config_is_gone_after_a_failed_build(
    octo: Any, publish: Callable[..., Outcome], private_tmp: Path, tmp_path: Path, testbed: Any
) -> None:
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {testbed.busybox_image}\nRUN exit 7\n")
    out = publish(
        {"image": "broken", "context": str(context)},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code == 1
    assert "exit code: 7" in out.log
    assert out.state["docker_config"]
    assert _configs(private_tmp) == []


def test_private_config_is_gone_after_sigterm(
    octo: Any, testbed: Any, tmp_path: Path, unique_name: Any
) -> None:
    """The main step in its own process, SIGTERMed (as a runner cancels) mid-build."""
    where = tmp_path / "tmp"
    where.mkdir()
    context = tmp_path / "slow"
    context.mkdir()
    marker = unique_name("slow")
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\nRUN echo started-$((6*7)) && sleep 120\n"
    )
    (tmp_path / "event.json").write_text("{}")
    for name in ("output", "state"):
        (tmp_path / name).touch()
    env = {
        **os.environ,
        "TMPDIR": str(where),
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": testbed.github_url,
        "GITHUB_REPOSITORY": "octo-org/app",
        "GITHUB_REPOSITORY_OWNER": "octo-org",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STATE": str(tmp_path / "state"),
        "DOCKER_HOST": testbed.docker_host,
        "INPUT_REGISTRY": testbed.registry,
        "INPUT_IMAGE": marker,
        "INPUT_CONTEXT": str(context),
        "INPUT_GITHUB-TOKEN": octo.github_token("octo-org/app"),
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "entrypoint.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    log: list[str] = []
    for line in proc.stdout:
        log.append(line)
        if line.rstrip().endswith("started-42"):  # the RUN step is running
            break
    assert _configs(where), "".join(log)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    log.append(rest)
    assert proc.returncode == 143, "".join(log)
    assert "Stopped by SIGTERM" in "".join(log)
    assert _configs(where) == []
    state = dict(parse_env_file((tmp_path / "state").read_text()))
    assert not Path(state["docker_config"]).exists()
    buildx_left = subprocess.run(
        ["pgrep", "-f", f"buildx build.*{context}"], capture_output=True, text=True, check=False
    )
    assert buildx_left.stdout == "", "buildx outlived the action"


def test_post_step_removes_a_config_left_behind(tmp_path: Path) -> None:
    """A main step killed with SIGKILL leaves the directory; the post entry point removes it."""
    left = tmp_path / "ghdp-docker-abc123"
    left.mkdir(mode=0o700)
    (left / "config.json").write_text('{"auths": {}}')
    done = subprocess.run(
        [sys.executable, str(ROOT / "post.py")],
        env={**os.environ, "STATE_docker_config": str(left), "GITHUB_ACTIONS": "true"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"removed {left}" in done.stdout
    assert not left.exists()

