"""Ways the registry login could outlive the step or reach the image (issue 17 items 2, 3):
the private DOCKER_CONFIG buildx gets must never be inside the build context, and a run
killed with SIGKILL must not leave it on disk for good (the post step removes it; outside
Actions the next run sweeps it). Real runs of the action's entry point on the bed."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.runner import parse_env_file
from tests.testbed.runner_env import runner_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    return github


def _action(testbed: Any, files: Path, tmpdir: Path, inputs: dict[str, str], token: str,
            **popen: Any) -> subprocess.Popen[str]:
    env = runner_env(testbed, files, {"builder": "buildkit", **inputs}, github_token=token)
    env.update({"PATH": os.environ["PATH"], "HOME": str(files), "TMPDIR": str(tmpdir)})
    return subprocess.Popen([sys.executable, str(ROOT / "entrypoint.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _outputs(files: Path) -> dict[str, str]:
    return dict(parse_env_file((files / "output").read_text()))


def _image_files(registry_reader: Any, name: str, digest: str) -> list[str]:
    """Every path in the pushed image's layers, read from the registry itself."""
    manifest = registry_reader._get("GET", name, f"manifests/{digest}", None).json()
    paths: list[str] = []
    for layer in manifest["layers"]:
        blob = registry_reader._get("GET", name, f"blobs/{layer['digest']}", None).content
        data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            paths += tar.getnames()
    return paths


def test_tmpdir_inside_the_context_does_not_put_the_login_in_the_image(
    org: Any, testbed: Any, registry_reader: Any, tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """Before: BuildKit sent $TMPDIR/ghdp-docker-*/config.json with the context and
    ``COPY . /x`` published it (issue 17 item 2)."""
    context = tmp_path / "ctx"
    (context / "tmp").mkdir(parents=True)
    (context / "Dockerfile").write_text(
        f"FROM {testbed.busybox_image}\nRUN sleep 2\nCOPY . /x\n"  # the sleep: buildx is up
    )
    image = unique_name("ctxtmp")
    proc = _action(testbed, tmp_path / "run", context / "tmp",
                   {"image": image, "tags": "v1", "context": str(context)},
                   org.github_token("octo-org/app"))
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    files = _image_files(registry_reader, f"octo-org/{image}", _outputs(tmp_path / "run")["digest"])
    assert "x/Dockerfile" in files  # the context did land
    assert not [p for p in files if "ghdp-docker-" in p or p.endswith("config.json")], files


@pytest.fixture
def private_base(org: Any, testbed: Any, docker_client: Any, tmp_path: Path,
                 unique_name: Callable[[str], str]) -> str:
    """An image only a token can pull, and not in the daemon: BuildKit pulls it with the
    login it asks buildx for (and buildx writes its .token_seed next to config.json)."""
    image = unique_name("base")
    proc = _action(testbed, tmp_path / "base", tmp_path, {"image": image, "tags": "v1"},
                   org.github_token("octo-org/app"))
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    ref = f"{testbed.registry}/octo-org/{image}:v1"
    docker_client.images.remove(ref, force=True)
    return ref


def _killed_mid_build(org: Any, testbed: Any, tmp_path: Path, base: str) -> tuple[Path, Path]:
    """Run a build FROM the private base, SIGKILL the whole run once buildx holds the login
    and has written its own files; return (the leftover config dir, the run's files)."""
    context, where, files = tmp_path / "slow", tmp_path / "tmp", tmp_path / "killed"
    context.mkdir()
    where.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base}\nRUN echo started-$((6*7)) && sleep 120\n")
    proc = _action(testbed, files, where, {"image": "slow", "context": str(context),
                                           "push": "false"},
                   org.github_token("octo-org/app"), start_new_session=True)
    assert proc.stdout is not None
    log = []
    for line in proc.stdout:
        log.append(line)
        if line.rstrip().endswith("started-42"):
            break
    left = sorted(where.glob("ghdp-docker-*"))
    assert len(left) == 1, "".join(log)
    deadline = time.monotonic() + 30
    while not (left[0] / ".token_seed").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole container dies: python and buildx
    proc.wait(timeout=60)
    assert (left[0] / "config.json").exists()  # the leak this test is about
    assert (left[0] / ".token_seed").exists(), sorted(p.name for p in left[0].iterdir())
    return left[0], files


def test_post_step_removes_the_login_buildx_wrote_its_files_next_to(
    org: Any, testbed: Any, tmp_path: Path, private_base: str,
    record_property: Callable[[str, object], None],
) -> None:
    """Before: buildx's .token_seed made the post step decide the directory was not ours,
    and config.json with the auth stayed on disk (issue 17 item 3)."""
    left, files = _killed_mid_build(org, testbed, tmp_path, private_base)
    record_property("buildx_files", ",".join(sorted(p.name for p in left.iterdir())))
    state = dict(parse_env_file((files / "state").read_text()))
    assert state["docker_config"] == str(left)
    done = subprocess.run(
        [sys.executable, str(ROOT / "post.py")],
        env={**os.environ, "STATE_docker_config": state["docker_config"],
             "GITHUB_ACTIONS": "true"},
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 0
    assert f"removed {left}" in done.stdout, done.stdout
    assert not left.exists()


def test_the_next_run_sweeps_a_killed_runs_login_outside_actions(
    org: Any, testbed: Any, tmp_path: Path, private_base: str,
) -> None:
    """Outside Actions there is no post step: before, a killed run's directory stayed
    until someone noticed (issue 17 item 3). A live run's and a foreign directory stay."""
    from gh_docker_publish.edges import docker_config

    left, _ = _killed_mid_build(org, testbed, tmp_path, private_base)
    where = left.parent
    foreign = where / "ghdp-docker-someone-elses"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    live = where / "ghdp-docker-live"
    live.mkdir()
    (live / docker_config.MARKER).write_text(
        json.dumps(docker_config.RunId.current().__dict__)
    )
    proc = _action(testbed, tmp_path / "next", where, {"image": "next", "push": "false"},
                   org.github_token("octo-org/app"))
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    assert not left.exists(), sorted(p.name for p in left.iterdir())
    assert (foreign / "config.json").exists() and live.exists()
