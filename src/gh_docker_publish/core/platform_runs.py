"""Which build stages execute code on the *target* platform, and whether the host can.

A multi-platform build runs each ``RUN`` of a target-platform stage as that platform's
binary. Without QEMU registered in binfmt_misc (docker/setup-qemu-action does it) an
``arm64`` RUN on an ``amd64`` host dies with ``exec format error`` — after the base image
pull and every stage before it. A stage whose ``FROM`` says
``--platform=$BUILDPLATFORM`` runs natively (the cross-compilation pattern, Docker docs
"Multi-platform builds"), and a stage without RUN (``FROM scratch`` + ``COPY``) runs
nothing at all; BuildKit builds only the stages the target needs.

Pure: the caller passes the Dockerfile text and the platforms the host can execute.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

_BUILD_PLATFORM = re.compile(r"^\$\{?BUILDPLATFORM\}?$")
_TARGET_PLATFORM = re.compile(r"^\$\{?TARGETPLATFORM\}?$")
_MOUNT_FROM = re.compile(r"(?:^|,)from=([^,\s]+)")


@dataclass
class Stage:
    index: int
    name: str
    platform: str  # "target", "build", or a fixed os/arch
    parent: str  # FROM's image or stage name
    runs: list[int] = field(default_factory=list)  # line numbers of RUN instructions
    uses: list[str] = field(default_factory=list)  # other stages (names or indexes)


def _stages(text: str) -> list[Stage]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
    stages: list[Stage] = []
    for instruction in parser.structure:
        keyword = instruction["instruction"].upper()
        words = instruction["value"].split()
        flags = {w.split("=", 1)[0]: w.partition("=")[2] for w in words if w.startswith("--")}
        rest = [w for w in words if not w.startswith("--")]
        if keyword == "FROM":
            raw = flags.get("--platform", "")
            platform = ("build" if _BUILD_PLATFORM.match(raw) else
                        "target" if not raw or _TARGET_PLATFORM.match(raw) else raw.lower())
            name = rest[2].lower() if len(rest) >= 3 and rest[1].lower() == "as" else ""
            parent = rest[0].lower() if rest else ""
            stage = Stage(len(stages), name, platform, parent)
            if not raw:  # FROM <stage> inherits that stage's platform
                earlier = _find(stages, parent)
                if earlier is not None:
                    stage.platform = earlier.platform
            if _find(stages, parent) is not None:
                stage.uses.append(parent)
            stages.append(stage)
        elif stages and keyword == "RUN":
            stages[-1].runs.append(int(instruction["startline"]) + 1)
            stages[-1].uses += [m.lower() for m in _MOUNT_FROM.findall(flags.get("--mount", ""))]
        elif stages and keyword in ("COPY", "ADD") and flags.get("--from"):
            stages[-1].uses.append(flags["--from"].lower())
    return stages


def _find(stages: Sequence[Stage], ref: str) -> Stage | None:
    for stage in stages:
        if ref and (stage.name == ref or str(stage.index) == ref):
            return stage
    return None


def target_platform_runs(dockerfile_text: str, target: str | None = None) -> list[str]:
    """``line N (stage S)`` for each RUN the build of ``target`` (default: the last stage)
    executes on the target platform."""
    stages = _stages(dockerfile_text)
    if not stages:
        return []
    final = _find(stages, target.lower()) if target else stages[-1]
    if final is None:
        return []
    needed: list[Stage] = []
    todo = [final]
    while todo:
        stage = todo.pop()
        if stage in needed:
            continue
        needed.append(stage)
        todo += [s for s in (_find(stages, ref) for ref in stage.uses) if s is not None]
    found = []
    for stage in sorted(needed, key=lambda s: s.index):
        if stage.platform == "target":
            label = stage.name or str(stage.index)
            found += [f"line {line} (stage {label})" for line in stage.runs]
    return found


def unrunnable(platforms: Sequence[str], runnable: Sequence[str]) -> list[str]:
    """The requested platforms the host cannot execute (``runnable``: the native platform,
    the ones it also runs natively, and every platform binfmt_misc hands to an emulator)."""
    can = {p.lower() for p in runnable}
    return [p for p in platforms if p not in can and _without_variant(p) not in can]


def _without_variant(platform: str) -> str:
    return "/".join(platform.split("/")[:2])
