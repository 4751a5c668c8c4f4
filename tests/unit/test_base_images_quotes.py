"""An ARG line shlex cannot split (an unbalanced quote) must not crash the run with a
ValueError traceback before the build: the bases are still found, the build judges the line."""

from __future__ import annotations

from gh_docker_publish.core.base_images import external_images


def test_unbalanced_quote_in_a_stage_arg() -> None:
    text = "FROM ghcr.io/other/base:1\nARG NOTE=it's\nRUN echo \"$NOTE\"\n"
    assert [i.ref for i in external_images(text)] == ["ghcr.io/other/base:1"]


def test_unbalanced_quote_in_a_global_arg() -> None:
    text = 'ARG TAG=1"\nFROM ghcr.io/other/base:$TAG\n'
    refs = [i.ref for i in external_images(text)]
    assert len(refs) == 1 and refs[0].startswith("ghcr.io/other/base:")
