"""Dockerfile parsing: which images a build pulls, and which of them the push token can't read."""

from __future__ import annotations

import pytest

from gh_docker_publish.core.base_images import BaseImage, expand, external_images, foreign_images
from gh_docker_publish.core.refs import Flavour, Target


def refs(text: str, **build_args: str) -> list[str]:
    return [image.ref for image in external_images(text, build_args)]


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "expected"),
    [
        ("FROM alpine\n", {}, ["alpine:latest"]),
        ("FROM ghcr.io/Other-Org/Base:V1\n", {}, ["ghcr.io/other-org/base:V1"]),
        ("FROM ghcr.io/o/b@sha256:" + "a" * 64 + "\n", {}, ["ghcr.io/o/b@sha256:" + "a" * 64]),
        ("FROM localhost:5000/o/b\n", {}, ["localhost:5000/o/b:latest"]),
        # ARG defaults before the first FROM, one referring to another
        ("ARG REG=ghcr.io\nARG BASE=${REG}/other-org/base:1\nFROM $BASE\n", {},
         ["ghcr.io/other-org/base:1"]),
        # build-args override a declared default
        ("ARG BASE=busybox\nFROM ${BASE}\n", {"BASE": "ghcr.io/o/x:2"}, ["ghcr.io/o/x:2"]),
        # an undeclared build-arg does not reach FROM; the unset variable is empty
        ("FROM ghcr.io/o/x:${TAG}1\n", {"TAG": "9"}, ["ghcr.io/o/x:1"]),
        # ${V:-default} and ${V:+alt}
        ("ARG TAG\nFROM ghcr.io/o/x:${TAG:-latest}\n", {}, ["ghcr.io/o/x:latest"]),
        ("ARG TAG=1\nFROM ghcr.io/o/x${TAG:+:v}${TAG}\n", {}, ["ghcr.io/o/x:v1"]),
        # an ARG declared after FROM is not in scope for the next FROM
        ("FROM a\nARG LATER=ghcr.io/o/b\nFROM ${LATER}c\n", {}, ["a:latest", "c:latest"]),
        # multi-stage: stage names (any case) and scratch are not images
        ("FROM ghcr.io/o/sdk:1 AS Build\nRUN make\nFROM build AS test\nFROM scratch\n"
         "COPY --from=BUILD /out /out\nCOPY --from=0 /x /x\n", {}, ["ghcr.io/o/sdk:1"]),
        # COPY --from an image pulls that image
        ("FROM scratch\nCOPY --from=ghcr.io/o/tools:3 /bin/t /t\n", {}, ["ghcr.io/o/tools:3"]),
        # duplicates collapse to the first occurrence
        ("FROM ghcr.io/o/a:1 AS x\nFROM ghcr.io/o/a:1\n", {}, ["ghcr.io/o/a:1"]),
        # continuation lines and comments
        ("# syntax=docker/dockerfile:1\nFROM \\\n  ghcr.io/o/a:1 \\\n  AS x\n", {},
         ["ghcr.io/o/a:1"]),
    ],
)
def test_external_images(dockerfile: str, build_args: dict[str, str],
                         expected: list[str]) -> None:
    assert refs(dockerfile, **build_args) == expected


def test_platform_flag() -> None:
    images = external_images(
        "ARG ARCH=arm64\nFROM --platform=$BUILDPLATFORM ghcr.io/o/a:1 AS b\n"
        "FROM --platform=linux/${ARCH} ghcr.io/o/c:1\nFROM ghcr.io/o/d:1\n"
    )
    assert [(i.ref, i.platform) for i in images] == [
        ("ghcr.io/o/a:1", None), ("ghcr.io/o/c:1", "linux/arm64"), ("ghcr.io/o/d:1", None),
    ]
    assert [i.line for i in images] == [2, 3, 4]


def test_expand_escape_and_unset() -> None:
    assert expand(r"a\$b$X${Y}", {"X": "1"}) == "a$b1"
    assert expand("${X-d}${Y-d}", {"X": ""}) == "d"


def test_host_and_path() -> None:
    image = BaseImage("ghcr.io/o/app:1", 1, "FROM")
    assert (image.host, image.path) == ("ghcr.io", "o/app")
    assert BaseImage("alpine:3", 1, "FROM").host == ""
    assert BaseImage("127.0.0.1:5000/o/a/b@sha256:" + "0" * 64, 1, "FROM").path == "o/a/b"


def _target(flavour: Flavour = Flavour.CONTAINER) -> Target:
    if flavour is Flavour.DOCKER:
        return Target("docker.ghe.example", flavour, "me", "me/app", "me/app/img")
    return Target("ghcr.io", flavour, "me", "me/app", "me/img")


def test_foreign_images_on_the_container_registry() -> None:
    images = external_images(
        "FROM ghcr.io/me/base:1\nFROM ghcr.io/other-org/base:1\nFROM docker.io/library/x\n"
        "FROM GHCR.IO/Other-Org/tools:2\n"
    )
    assert [i.ref for i in foreign_images(images, _target())] == [
        "ghcr.io/other-org/base:1", "ghcr.io/other-org/tools:2",
    ]


def test_foreign_images_on_the_docker_registry_compare_repositories() -> None:
    images = external_images(
        "FROM docker.ghe.example/me/app/base:1\nFROM docker.ghe.example/me/lib/base:1\n"
    )
    assert [i.ref for i in foreign_images(images, _target(Flavour.DOCKER))] == [
        "docker.ghe.example/me/lib/base:1",
    ]


# --- base images quotes ----------------------------------------
# An ARG line shlex cannot split (an unbalanced quote) must not crash the run with a
# ValueError traceback before the build: the bases are still found, the build judges the line.

def test_unbalanced_quote_in_a_stage_arg() -> None:
    text = "FROM ghcr.io/other/base:1\nARG NOTE=it's\nRUN echo \"$NOTE\"\n"
    assert [i.ref for i in external_images(text)] == ["ghcr.io/other/base:1"]


def test_unbalanced_quote_in_a_global_arg() -> None:
    text = 'ARG TAG=1"\nFROM ghcr.io/other/base:$TAG\n'
    refs = [i.ref for i in external_images(text)]
    assert len(refs) == 1 and refs[0].startswith("ghcr.io/other/base:")
