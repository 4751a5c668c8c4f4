"""Outputs, job summary and CLI text rendered from one PublishResult."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.report import (
    OUTPUT_NAMES,
    PublishResult,
    render_outputs,
    render_summary,
    render_terminal,
    write,
)

DIGEST = "sha256:" + "d" * 64
PUSHED = PublishResult(
    image="ghcr.io/octo-org/hello",
    registry="ghcr.io",
    tags=("1.2.3", "latest"),
    refs=("ghcr.io/octo-org/hello:1.2.3", "ghcr.io/octo-org/hello:latest"),
    digest=DIGEST,
    imageid="sha256:" + "1" * 64,
    package_url="https://github.com/octo-org/hello-world/pkgs/container/hello",
    token_source="github-token",
    username="octocat",
    token_reason="the package is linked to this workflow's repository",
    labels={"org.opencontainers.image.source": "https://github.com/octo-org/hello-world"},
    pushed=True,
    builder="buildkit",
    landed=("ghcr.io/octo-org/hello:1.2.3", "ghcr.io/octo-org/hello:latest"),
    ref_digests={"ghcr.io/octo-org/hello:1.2.3": DIGEST, "ghcr.io/octo-org/hello:latest": DIGEST},
    bytes_uploaded=5_200_000,
    seconds=12.34,
)
NOT_PUSHED = replace(
    PUSHED, pushed=False, digest="", landed=(), ref_digests={},
    push_skipped_reason="pull request from a fork: GITHUB_TOKEN is read-only",
)
PARTIAL = replace(
    PUSHED, landed=("ghcr.io/octo-org/hello:1.2.3",),
    not_landed=("ghcr.io/octo-org/hello:latest",),
    ref_digests={"ghcr.io/octo-org/hello:1.2.3": DIGEST},
)


def test_outputs_are_exactly_the_declared_ones() -> None:
    outputs = render_outputs(PUSHED)
    assert tuple(outputs) == OUTPUT_NAMES
    assert outputs["tag-names"] == "1.2.3\nlatest"
    assert outputs["tags"] == "ghcr.io/octo-org/hello:1.2.3\nghcr.io/octo-org/hello:latest"
    assert outputs["digest"] == DIGEST
    assert outputs["package-url"].endswith("/pkgs/container/hello")
    assert outputs["token-source"] == "github-token"
    assert outputs["username"] == "octocat"
    assert all(isinstance(v, str) for v in outputs.values())


def test_report_is_the_whole_result_as_json() -> None:
    meta = json.loads(render_outputs(PUSHED)["report"])
    assert meta["refs"] == list(PUSHED.refs)
    assert meta["ref_digests"]["ghcr.io/octo-org/hello:latest"] == DIGEST
    assert meta["labels"] == dict(PUSHED.labels)
    assert meta["pushed"] is True
    assert meta["bytes_uploaded"] == 5_200_000


def test_summary_for_a_push() -> None:
    md = render_summary(PUSHED)
    assert md.startswith("### Published `ghcr.io/octo-org/hello`")
    assert f"| `ghcr.io/octo-org/hello:1.2.3` | `{DIGEST}` |" in md
    assert "docker pull ghcr.io/octo-org/hello:1.2.3" in md
    assert "**Token:** GITHUB_TOKEN as `octocat`: the package is linked" in md
    assert f"[ghcr.io/octo-org/hello]({PUSHED.package_url})" in md
    assert "| Uploaded | 5.2 MB |" in md
    assert "| Time | 12.3 s |" in md
    assert "| Builder | buildkit |" in md


def test_summary_when_not_pushed() -> None:
    md = render_summary(NOT_PUSHED)
    assert md.startswith("### Built `ghcr.io/octo-org/hello` (not pushed)")
    assert "Not pushed: pull request from a fork" in md
    assert "| `ghcr.io/octo-org/hello:latest` | not pushed |" in md
    assert "docker pull" not in md


def test_summary_for_a_partial_push() -> None:
    md = render_summary(PARTIAL)
    assert md.startswith("### Partly published")
    assert f"| `ghcr.io/octo-org/hello:1.2.3` | `{DIGEST}` |" in md
    assert "| `ghcr.io/octo-org/hello:latest` | not pushed |" in md
    assert "docker pull ghcr.io/octo-org/hello:1.2.3" in md


def test_summary_escapes_table_cells() -> None:
    md = render_summary(replace(PUSHED, labels={"a": "x|y\nz"}))
    assert "| `a` | x\\|y z |" in md


def test_terminal_text() -> None:
    text = render_terminal(PUSHED)
    assert text.splitlines()[0] == "Published ghcr.io/octo-org/hello"
    assert f"  ghcr.io/octo-org/hello:1.2.3   {DIGEST}" in text
    assert "token: GITHUB_TOKEN as octocat: " in text
    assert "package: https://github.com/octo-org/hello-world/pkgs/container/hello" in text
    assert "pull: docker pull ghcr.io/octo-org/hello:1.2.3" in text
    assert "Built (not pushed)" in render_terminal(NOT_PUSHED)
    assert "reason: pull request from a fork" in render_terminal(NOT_PUSHED)


def test_write_sets_outputs_and_summary_once(tmp_path: Path) -> None:
    output = tmp_path / "output"
    summary = tmp_path / "summary"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output),
           "GITHUB_STEP_SUMMARY": str(summary)}
    write(PUSHED, Console(env=env, stream=io.StringIO()))
    text = output.read_text()
    for name in OUTPUT_NAMES:
        assert text.count(f"\n{name}<<ghadelimiter_") + text.startswith(f"{name}<<") == 1
    assert summary.read_text().count("### Published") == 1


def test_minimal_result_renders() -> None:
    bare = PublishResult(image="localhost:5000/o/app", registry="localhost:5000")
    assert render_outputs(bare)["tags"] == ""
    assert render_summary(bare).startswith("### Built")
    assert render_terminal(bare) == "Built (not pushed) localhost:5000/o/app"


def test_metadata_is_buildx_metadata_with_the_pushed_digest() -> None:
    """build-push-action's `metadata`: buildx's file; users read containerimage.digest."""
    buildx = {"containerimage.digest": "sha256:" + "c" * 64, "buildx.build.ref": "b/b/x"}
    meta = json.loads(render_outputs(replace(PUSHED, build_metadata=buildx))["metadata"])
    assert meta["containerimage.digest"] == PUSHED.digest
    assert meta["containerimage.config.digest"] == PUSHED.imageid
    assert meta["image.name"] == ",".join(PUSHED.refs)
    assert meta["buildx.build.ref"] == "b/b/x"
    assert "token_source" not in meta and "labels" not in meta
