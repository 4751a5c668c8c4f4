"""Concurrent publishes against one registry: every run succeeds or fails cleanly, and the
registry ends consistent (each tag a run reports resolves to the digest it reported)."""

from __future__ import annotations

import io
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


def _cli(testbed: Any, token: str, image: str, tags: str, out: Path,
         extra_args: list[str] | None = None) -> subprocess.Popen[str]:
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
         "--build-args", f"BASE_IMAGE={testbed.busybox_image}", "--output-file", str(out),
         *(extra_args or [])],
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



# -- a shared daemon: another run moves our tag between build and push (issue 17 item 10) --


class _Interloper(io.StringIO):
    """The run's stdout; when ``trigger`` is written, "another run" on the same daemon
    points ``ref`` at its own image, exactly then (synchronously, on the writing thread)."""

    def __init__(self, client: Any, trigger: str, ref: str, other_image: str) -> None:
        super().__init__()
        self.client, self.trigger, self.ref, self.other = client, trigger, ref, other_image
        self.moved = False

    def write(self, text: str) -> int:
        if not self.moved and self.trigger in text:
            self.moved = True
            engine.tag(self.client, self.other, self.ref)
        return super().write(text)


def _run_in_process(env: dict[str, str], stream: io.StringIO) -> int:
    from gh_docker_publish import cli

    saved, sys.stdout = sys.stdout, stream
    try:
        return cli.run_action(env)
    finally:
        sys.stdout = saved


def _config_of(registry_reader: Any, name: str, digest: str) -> str:
    manifest = registry_reader._get("GET", name, f"manifests/{digest}", None).json()
    return str(manifest["config"]["digest"])


def _landed_is(registry_reader: Any, name: str, digest: str, image_id: str) -> bool:
    """Whether the manifest ``digest`` is the image ``image_id``: its config is the image
    (classic store), or it is the image ID itself (the containerd store's image ID is the
    manifest digest) — the criterion of registry_api.manifest_is_image."""
    return image_id in (_config_of(registry_reader, name, digest), digest)


@pytest.mark.parametrize(
    ("moment", "trigger"),
    [("between build and push", "::group::Push"), ("as the push starts", "Pushing ")],
)
def test_a_tag_moved_by_another_run_never_publishes_its_image_as_ours(
    moment: str, trigger: str, org: Any, testbed: Any, docker_client: Any,
    registry_reader: Any, small_image: str, tmp_path: Path,
    unique_name: Callable[[str], str], record_property: Callable[[str, object], None],
) -> None:
    """Before: the push went by the local tag, so the other run's image was published and
    this run exited 0 with a ``digest`` that was not the image it built. Now the tag is
    re-pointed at our image just before the push, and the manifest that landed is read
    back by digest: ours, or a clear failure naming the tag as not landed."""
    from tests.harness.runner import parse_env_file
    from tests.testbed.runner_env import runner_env

    image = unique_name("moved")
    ref = f"{testbed.registry}/octo-org/{image}:v1"
    env = runner_env(testbed, tmp_path / "run", {"image": image, "tags": "v1"},
                     github_token=org.github_token("octo-org/app"))
    stream = _Interloper(docker_client.api, trigger, ref, small_image)
    code = _run_in_process(env, stream)
    log = stream.getvalue()
    outputs = dict(parse_env_file((tmp_path / "run" / "output").read_text()))
    assert stream.moved, log
    other_id = docker_client.api.inspect_image(small_image)["Id"]
    assert outputs["imageid"] and outputs["imageid"] != other_id
    if code == 0:
        assert _landed_is(  # what we built, not theirs
            registry_reader, f"octo-org/{image}", outputs["digest"], outputs["imageid"]
        ), (moment, log)
    else:
        assert code == 1 and "not the image this run built" in log, log
        assert "concurrency:" in log and f"Not landed: {ref}" in log
        assert outputs["digest"] == ""
    record_property("runs", 1)
    record_property("consistent", 1)


def test_two_concurrent_runs_on_one_daemon_each_report_only_their_own_image(
    org: Any, testbed: Any, registry_reader: Any, tmp_path: Path,
    unique_name: Callable[[str], str], record_property: Callable[[str, object], None],
) -> None:
    """Two whole runs, different images (each its own context), one daemon, the
    same tag, started together, three rounds: a run that exits 0 reports a digest whose
    config is the image it built; a run that loses the race fails clearly."""
    token = org.github_token("octo-org/app")
    name = unique_name("pair")
    runs, consistent = 0, 0
    for round_ in range(3):
        procs = []
        for i in range(2):
            out = tmp_path / f"{round_}-{i}" / "outputs"
            out.parent.mkdir()
            (out.parent / "Dockerfile").write_text(
                f"FROM {testbed.busybox_image}\nRUN echo {name}-{round_}-{i} > /who\n"
            )
            procs.append((_cli(testbed, token, name, "v1", out,
                               extra_args=["--context", str(out.parent)]), out))
        for proc, out in procs:
            log, _ = proc.communicate(timeout=600)
            outputs = _outputs(out)
            runs += 1
            assert proc.returncode in (0, 1) and "Traceback" not in log, log
            if proc.returncode == 0:
                assert _landed_is(
                    registry_reader, f"octo-org/{name}", outputs["digest"], outputs["imageid"]
                ), log
            else:
                assert "not the image this run built" in log, log
            consistent += 1
    record_property("runs", runs)
    record_property("consistent", consistent)
