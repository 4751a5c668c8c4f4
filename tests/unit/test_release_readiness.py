"""What the Marketplace, Dependabot and a reproducible image build need (issue 15)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)[ \\]*$")
#: Left out of the lock on purpose (Makefile, LOCK_FLAGS): the action never signs JWTs.
NOT_LOCKED = {"cryptography"}


def locked() -> dict[str, list[str]]:
    """{name: [version, hash, hash, ...]} from requirements.lock."""
    pins: dict[str, list[str]] = {}
    current = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match.group(1))
            pins[current] = [match.group(2)]
        elif "--hash=sha256:" in line and current:
            pins[current].append(line.strip().removeprefix("--hash=").rstrip(" \\"))
    return pins


def test_the_lock_satisfies_every_declared_dependency() -> None:
    """`make lock` regenerates it; this fails while pyproject.toml and the lock disagree."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = locked()
    for text in deps:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name][0]}, outside {text!r}: run `make lock`"
        )


def test_every_locked_package_carries_hashes_and_nothing_unwanted() -> None:
    pins = locked()
    assert pins
    for name, (version, *hashes) in pins.items():
        assert hashes, f"{name}=={version} has no --hash: the image installs --require-hashes"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    assert not NOT_LOCKED & set(pins)


def test_the_dockerfile_installs_only_the_lock_from_a_base_dependabot_reads() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms
    bases = [image for image in froms if image != "scratch"]
    for image in bases:
        assert "$" not in image, "Dependabot skips FROM with an ARG"
        assert re.fullmatch(r"python:[\w.-]+@sha256:[0-9a-f]{64}", image), image
    assert len(set(bases)) == 1, "build and runtime stage on the same base"
    # The final stage is the flattened runtime stage, nothing else (B0: one base layer).
    assert froms[-1] == "scratch" and "COPY --from=runtime / /" in text
    installs = re.findall(r"pip install[^&]*", text)
    assert installs
    assert all("--require-hashes" in i and "-r /tmp/requirements.lock" in i for i in installs)
    assert "--no-deps" in installs[0]
    # The runner's plain `docker build` may be the classic builder: no BuildKit-only syntax.
    assert not re.search(r"^RUN\s+--mount|<<\s*['\"]?\w+", text, re.M)


def test_action_yml_meets_the_marketplace_rules() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert len(action["description"]) <= 125
    assert not action["name"].lower().startswith("github")
    assert action["author"] == "The gh-docker-publish authors"
    assert action["runs"]["image"] == "Dockerfile", (
        "main builds from source; only the release commit pins docker://...@sha256"
    )
