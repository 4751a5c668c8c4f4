"""Concurrent publishes against one registry: every run succeeds or fails cleanly, and the
registry ends consistent (each tag a run reports resolves to the digest it reported)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import engine
from tests.reliability.test_faults import ListLog
from tests.testbed.runner_env import HELLO, SHA


@pytest.fixture
def org(github: Any) -> Any:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    return github


def _cli(testbed: Any, token: str, image: str, tags: str, out: Path) -> subprocess.Popen[str]:
    env = {
        "GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org",
        "GITHUB_ACTOR": "octocat", "GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push", "GITHUB_API_URL": testbed.github_url,
        "GITHUB_SERVER_URL": "https://github.com", "HOME": str(out.parent),
        "GITHUB_TOKEN": token, "DOCKER_HOST": testbed.docker_host, "PATH": os.environ["PATH"],
    }
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from gh_docker_publish.cli import main; "
         "sys.exit(main())", "publish", "--image", image, "--tags", tags,
         "--registry", testbed.registry, "--context", str(HELLO),
         "--build-args", f"BASE_IMAGE={testbed.busybox_image}", "--output-file", str(out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _outputs(path: Path) -> dict[str, str]:
    from tests.harness.runner import parse_env_file

    return dict(parse_env_file(path.read_text())) if path.exists() else {}


def _check(runs: list[tuple[int, str, dict[str, str]]], registry_reader: Any,
           record_property: Callable[[str, object], None]) -> None:
    consistent = 0
    for code, log, outputs in runs:
        assert code in (0, 1), log  # 1 is a clean, reported failure; nothing else
        assert "Traceback" not in log, log
        if code != 0:
            assert "error" in log.lower(), log
            consistent += 1
            continue
        for ref in outputs["tags"].splitlines():
            repo_path, _, tag = ref.rpartition(":")
            name = repo_path.split("/", 1)[1]
            assert registry_reader.manifest_digest(name, tag) == outputs["digest"], (ref, log)
        consistent += 1
    record_property("runs", len(runs))
    record_property("consistent", consistent)
    assert consistent == len(runs)


def test_ten_concurrent_publishes_of_different_images(
    org: Any, testbed: Any, registry_reader: Any, tmp_path: Path,
    unique_name: Callable[[str], str], record_property: Callable[[str, object], None],
) -> None:
    token = org.github_token("octo-org/app")
    procs = []
    for i in range(10):
        (tmp_path / str(i)).mkdir()
        out = tmp_path / str(i) / "outputs"
        procs.append((_cli(testbed, token, unique_name(f"load{i}"), "v1,latest", out), out))
    runs = []
    for proc, out in procs:
        log, _ = proc.communicate(timeout=600)
        runs.append((proc.returncode, log, _outputs(out)))
    assert all(code == 0 for code, _, _ in runs), [log for code, log, _ in runs if code][:1]
    _check(runs, registry_reader, record_property)


def test_three_concurrent_pushes_of_the_same_image_and_tags(
    org: Any, testbed: Any, docker_client: Any, registry_reader: Any,
    unique_name: Callable[[str], str], record_property: Callable[[str, object], None],
) -> None:
    """One image, three publishers, each with its own daemon connection: same tags, same
    digest, and the registry agrees."""
    token = org.github_token("octo-org/app")
    name = unique_name("same")
    source = f"{testbed.registry}/octo-org/{name}:build"
    import io

    docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {testbed.busybox_image}\nRUN echo {name} > /n\n".encode()),
        tag=source, rm=True)
    refs = [f"{testbed.registry}/octo-org/{name}:{t}" for t in ("v1", "v1.0", "latest")]
    for ref in refs:
        engine.tag(docker_client.api, source, ref)
    barrier = threading.Barrier(3)

    def publish(_: int) -> tuple[int, str, dict[str, str]]:
        client = docker.APIClient(base_url=testbed.docker_host, version="auto", timeout=120)
        log = ListLog()
        try:
            auth = Credential(testbed.registry, "octocat", Secret(token), "github-token", "test")
            engine.login(client, auth, log=log)
            barrier.wait(timeout=60)
            out = engine.push(client, refs, auth, log)
            return 0, log.text, {"tags": "\n".join(refs), "digest": out.digest}
        except Exception as exc:  # a clean failure is a PublishError; anything else fails
            from gh_docker_publish.errors import PublishError

            return (1 if isinstance(exc, PublishError) else 2), f"error: {exc}", {}
        finally:
            client.close()

    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(publish, range(3)))
    digests = {outputs.get("digest") for code, _, outputs in runs if code == 0}
    assert len(digests) == 1, runs
    _check(runs, registry_reader, record_property)


def test_three_concurrent_full_publishes_of_the_same_tags_end_consistent(
    org: Any, testbed: Any, registry_reader: Any, tmp_path: Path,
    unique_name: Callable[[str], str], record_property: Callable[[str, object], None],
) -> None:
    """Three whole runs (each builds its own image: the classic builder's config has a build
    time) race for the same tags: each succeeds or fails cleanly, and every tag ends on a
    digest some run reported, all tags on the same one when one run pushed last."""
    token = org.github_token("octo-org/app")
    name = unique_name("race")
    procs = []
    for i in range(3):
        (tmp_path / str(i)).mkdir()
        out = tmp_path / str(i) / "outputs"
        procs.append((_cli(testbed, token, name, "v1", out), out))
    runs = []
    for proc, out in procs:
        log, _ = proc.communicate(timeout=600)
        runs.append((proc.returncode, log, _outputs(out)))
    assert all(code in (0, 1) and "Traceback" not in log for code, log, _ in runs), runs
    reported = {o["digest"] for code, _, o in runs if code == 0}
    final = registry_reader.manifest_digest(f"octo-org/{name}", "v1")
    assert final in reported, (final, reported)
    record_property("runs", len(runs))
    record_property("consistent", sum(1 for code, _, _ in runs if code in (0, 1)))

