"""Issue 16 on the bed: one platform per job (``push-by-digest``), then ``mode: merge``.

Each job is its own process (``entrypoint.py``, as the runner starts the action) with a
fresh HOME and its own runner files, as two matrix jobs on two runners would be; only the
daemon and the registry are shared (the bed has one engine). The merged index is read
back from the registry and compared with what one two-platform run publishes. No QEMU
here: the Dockerfile does not RUN, so linux/arm64 builds on this amd64 host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.runner import parse_env_file
from tests.testbed.runner_env import runner_env

ROOT = Path(__file__).resolve().parents[2]
NO_RUN = "FROM scratch\nCOPY hello.txt /hello.txt\n"
#: A commit time in the payload: org.opencontainers.image.created is the same in every job.
EVENT = {"repository": {"default_branch": "main"},
         "head_commit": {"timestamp": "2026-11-30T12:00:00Z"}}
INDEX_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))


@dataclass
class Job:
    code: int
    log: str
    outputs: dict[str, str]
    summary: str


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(NO_RUN)
    (ctx / "hello.txt").write_text("hello from every platform\n")
    return ctx


@pytest.fixture
def job(testbed: Any, tmp_path: Path) -> Any:
    """Run the action's main step in a new process, with a fresh HOME, as a job would."""
    count = iter(range(1000))

    def run(inputs: dict[str, str], token: str) -> Job:
        files = tmp_path / f"job-{next(count)}"
        env = runner_env(testbed, files, inputs, github_token=token, event=EVENT)
        home = files / "home"
        home.mkdir()
        env.update(HOME=str(home), PATH=os.environ["PATH"], RUNNER_TEMP=str(files))
        proc = subprocess.run(
            [sys.executable, str(ROOT / "entrypoint.py")], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=600, check=False,
        )
        outputs = dict(parse_env_file((files / "output").read_text()))
        return Job(proc.returncode, proc.stdout + proc.stderr, outputs,
                   (files / "summary").read_text())

    return run


def _get(registry_reader: Any, name: str, reference: str) -> tuple[str, dict[str, Any]]:
    response = requests.get(
        f"{registry_reader.base}/v2/{name}/manifests/{reference}", timeout=10,
        headers={"Authorization": f"Bearer {registry_reader.admin_token(name)}",
                 "Accept": INDEX_TYPES},
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"], response.json()


def _entries(index: dict[str, Any]) -> dict[str, str]:
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]}


def _matrix(job: Any, image: str, context: Path, token: str) -> dict[str, str]:
    """The two platform jobs; platform -> the digest each one's output gives."""
    digests = {}
    for platform in ("linux/amd64", "linux/arm64"):
        out = job({"image": image, "tags": "v1\nlatest", "context": str(context),
                   "platforms": platform, "push-by-digest": "true"}, token)
        assert out.code == 0, out.log
        assert out.outputs["digest"].startswith("sha256:")
        assert out.outputs["tag-names"] == ""  # no tag of the run: the merge job sets them
        # buildx's docker driver cannot push by digest alone: a tag of the platform's own.
        own = f"v1-{platform.replace('/', '-')}"
        assert out.outputs["tags"].splitlines() == [
            f"{out.outputs['image']}@{out.outputs['digest']}", f"{out.outputs['image']}:{own}"]
        assert json.loads(out.outputs["report"])["platforms"] == {
            platform: out.outputs["digest"]}
        digests[platform] = out.outputs["digest"]
    return digests


def test_two_platform_jobs_then_merge_publish_the_index_one_job_would(
    octo: Any, job: Any, registry_reader: Any, unique_name: Any, context: Path,
) -> None:
    token = octo.github_token("octo-org/app")
    image = unique_name("matrix")
    name = f"octo-org/{image}"
    digests = _matrix(job, image, context, token)
    assert "v1" not in registry_reader.tags(name)

    merged = job({"image": image, "tags": "v1\nlatest", "mode": "merge",
                  "digests": "\n".join(digests.values())}, token)
    assert merged.code == 0, merged.log
    for tag in ("v1", "latest"):
        digest, index = _get(registry_reader, name, tag)
        assert digest == merged.outputs["digest"]
        assert _entries(index) == digests
        assert index["annotations"]["org.opencontainers.image.source"] == (
            "https://github.com/octo-org/app")
    meta = json.loads(merged.outputs["report"])
    assert meta["platforms"] == digests and meta["landed"] == meta["refs"]
    assert merged.outputs["tag-names"].splitlines() == ["v1", "latest"]
    assert "org.opencontainers.image.source=https://github.com/octo-org/app" in (
        merged.outputs["labels"])
    assert merged.outputs["token-source"] == "github-token"
    assert f"### Published `{merged.outputs['image']}`" in merged.summary

    # One job with both platforms, same context, same event: the same platform images.
    single_image = unique_name("single")
    single = job({"image": single_image, "tags": "v1", "context": str(context),
                  "platforms": "linux/amd64,linux/arm64"}, token)
    assert single.code == 0, single.log
    _, single_index = _get(registry_reader, f"octo-org/{single_image}", "v1")
    assert _entries(single_index) == digests
    assert merged.outputs["labels"] == single.outputs["labels"].replace(single_image, image)


def test_bad_digests_are_refused_and_nothing_is_tagged(
    octo: Any, job: Any, registry_reader: Any, unique_name: Any, context: Path,
) -> None:
    token = octo.github_token("octo-org/app")
    image = unique_name("matrix")
    name = f"octo-org/{image}"
    digests = _matrix(job, image, context, token)
    amd64, arm64 = digests["linux/amd64"], digests["linux/arm64"]
    other = unique_name("other")
    other_out = job({"image": other, "context": str(context), "platforms": "linux/arm64",
                     "push-by-digest": "true"}, token)
    assert other_out.code == 0, other_out.log
    missing = "sha256:" + "0" * 64
    mark = registry_reader.since()
    cases = {
        f"{amd64}\n{missing}": f"{missing} is not in",
        f"{amd64}\n{other_out.outputs['digest']}": "a digest of another image",
        f"linux/amd64={amd64}\nlinux/amd64={arm64}": "a second digest for linux/amd64",
        f"{amd64}\n{amd64}": "the same digest twice",
        f"linux/arm64={amd64}\n{arm64}": "is claimed for linux/arm64",
        "": "is empty",
        f"{amd64}\nsha256:xyz": "not a manifest digest",
    }
    for lines, expected in cases.items():
        out = job({"image": image, "tags": "v1", "mode": "merge", "digests": lines}, token)
        assert out.code == 1, lines
        assert "Input 'digests'" in out.log and expected in out.log, out.log
    assert registry_reader.access_log(since=mark).manifests[name] == 0
    assert "v1" not in registry_reader.tags(name)


def test_two_digests_for_one_platform_without_claims(
    octo: Any, job: Any, registry_reader: Any, unique_name: Any, context: Path, tmp_path: Path,
) -> None:
    """Two runs of the arm64 job (a changed file between them): the registry says both are
    arm64, so the merge stops before it tags anything."""
    token = octo.github_token("octo-org/app")
    image = unique_name("twice")
    first = job({"image": image, "context": str(context), "platforms": "linux/arm64",
                 "push-by-digest": "true"}, token)
    (context / "hello.txt").write_text("changed\n")
    second = job({"image": image, "context": str(context), "platforms": "linux/arm64",
                  "push-by-digest": "true"}, token)
    assert first.code == second.code == 0, first.log + second.log
    out = job({"image": image, "tags": "v1", "mode": "merge",
               "digests": f"{first.outputs['digest']}\n{second.outputs['digest']}"}, token)
    assert out.code == 1
    assert "are both for linux/arm64" in out.log and "nothing was tagged" in out.log


def test_token_rules_hold_in_both_halves(
    octo: Any, job: Any, registry_reader: Any, unique_name: Any, context: Path,
) -> None:
    """GITHUB_TOKEN writes only its own repository's packages: another repository's
    package needs a PAT, in the platform job and in the merge job alike, and both say so
    before the registry sees a request for the image."""
    octo.repo("octo-org/other")
    token = octo.github_token("octo-org/app")
    image = unique_name("foreign")
    mark = registry_reader.since()
    platform_job = job({"image": image, "repository": "octo-org/other", "context": str(context),
                        "platforms": "linux/arm64", "push-by-digest": "true"}, token)
    merge_job = job({"image": image, "repository": "octo-org/other", "mode": "merge",
                     "digests": "sha256:" + "1" * 64}, token)
    for out in (platform_job, merge_job):
        assert out.code == 1
        assert "token" in out.log.lower() and "octo-org/other" in out.log, out.log
        assert out.outputs.get("digest", "") == ""
    seen = [path for _, path, _ in registry_reader.access_log(since=mark).requests]
    assert not [path for path in seen if image in path], seen
