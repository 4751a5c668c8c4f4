"""release.yml's pinning step on a throwaway clone: publish the action image to the bed's
registry the way the release job does (`uses: ./` from the Dockerfile), check that the
digest is pullable anonymously (as users' runners pull it) and rewrite action.yml to
``docker://IMAGE@DIGEST`` with scripts/release_pin.py, the script the workflow runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testbed import action_image

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "release_pin.py"


def release_pin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
        check=False, timeout=120,
    )


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A throwaway clone of this repository's HEAD (the tagged release source)."""
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
                   check=True, timeout=120)
    return target


def test_release_pins_the_published_digest(
    clone: Path, testbed: Any, octo: Any, publish: Any, docker_client: Any
) -> None:
    pristine = (clone / "action.yml").read_text()
    assert yaml.safe_load(pristine)["runs"]["image"] == "Dockerfile"
    # The release job builds the workspace copy; the bed's copy names the bed's base.
    action_image.write_for_bed(clone / "Dockerfile", testbed.python_image, clone / "Dockerfile")
    build_args = "\n".join(f"{k}={v}" for k, v in action_image.BUILD_ARGS.items())
    outcome = publish(
        {"image": "gh-docker-publish", "context": str(clone), "tags": "v1.2.3\nv1.2\nv1",
         "build-args": build_args, "push": "true"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert outcome.code == 0, outcome.log[-3000:]
    image, digest = outcome.outputs["image"], outcome.outputs["digest"]
    subprocess.run(["git", "checkout", "--quiet", "--", "Dockerfile"], cwd=clone, check=True)

    # Before the tag moves: the digest must be there for an anonymous pull.
    ok = release_pin("check", image, digest, "--plain-http", cwd=clone)
    assert ok.returncode == 0, ok.stderr
    missing = "sha256:" + "0" * 64
    bad = release_pin("check", image, missing, "--plain-http", cwd=clone)
    assert bad.returncode == 1
    assert f"{image}@{missing} cannot be pulled anonymously" in bad.stderr

    pinned = release_pin("pin", image, digest, cwd=clone)
    assert pinned.returncode == 0, pinned.stderr
    text = (clone / "action.yml").read_text()
    assert yaml.safe_load(text)["runs"]["image"] == f"docker://{image}@{digest}"
    diff = subprocess.run(["git", "diff", "--unified=0", "--", "action.yml"], cwd=clone,
                          capture_output=True, text=True, check=True).stdout
    changed = [line for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ['-  image: "Dockerfile"', f'+  image: "docker://{image}@{digest}"']
    # What the runner does with `docker://...`: pull it; the pinned reference resolves.
    docker_client.images.remove(f"{image}:v1", force=True)
    pulled = docker_client.images.pull(f"{image}@{digest}")
    assert pulled.id == outcome.outputs["imageid"]


def test_a_private_package_fails_the_check_before_the_tag_moves(
    clone: Path, testbed: Any, octo: Any, publish: Any, unique_name: Any
) -> None:
    """A private package would make every user's runner fail to pull it."""
    name = unique_name("private-action")
    octo.package("octo-org", name, repository="octo-org/app", visibility="private")
    outcome = publish(
        {"image": name, "tags": "v1", "push": "true",
         "build-args": f"BASE_IMAGE={testbed.busybox_image}"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert outcome.code == 0, outcome.log[-3000:]
    result = release_pin("check", outcome.outputs["image"], outcome.outputs["digest"],
                         "--plain-http", cwd=clone)
    assert result.returncode == 1
    assert "make the package public" in result.stderr


@pytest.mark.parametrize(
    ("image", "digest", "message"),
    [("gh-docker-publish", "sha256:" + "a" * 64, "must be a full reference"),
     ("ghcr.io/octo-org/app:v1", "sha256:" + "a" * 64, "must have no tag"),
     ("ghcr.io/Octo-Org/app", "sha256:" + "a" * 64, "must be lowercase"),
     ("ghcr.io/octo-org/app", "sha256:abc", "is not sha256:")],
)
def test_pin_refuses_a_bad_reference_and_leaves_action_yml(
    clone: Path, image: str, digest: str, message: str
) -> None:
    before = (clone / "action.yml").read_text()
    result = release_pin("pin", image, digest, cwd=clone)
    assert result.returncode == 1
    assert message in result.stderr
    assert (clone / "action.yml").read_text() == before
