"""Hostile values in what reaches the runner (issue 17 items 11 and 12): the log, read the
way actions/runner reads it (lines split at a lone CR too, Unicode white space trimmed
before ``::``), and the job summary, which GitHub renders as Markdown with HTML."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest

from gh_docker_publish.edges import report
from gh_docker_publish.edges.gha import Console
from tests.harness.runner import CommandProcessor, SecretMasker

#: Each would issue a command through a value the old fence (``::`` after ``\n`` and
#: blanks only) let through.
RUNNER_READS_AS_COMMAND = [
    "octocat\r::error::pwned",  # a lone CR ends a line for the runner
    "octocat\r\n::warning::crlf",
    "x\n\u00a0::add-mask::octocat",  # no-break space: .NET TrimStart removes it
    "x\n\u3000::error::ideographic space",
    "x\n\u2003::notice::em space",
    "x\r\v::error::vertical tab",
]


def _runner_reads(text: str) -> CommandProcessor:
    processor = CommandProcessor(SecretMasker())
    for line in re.split(r"\r\n|\r|\n", text):  # the runner's StreamReader.ReadLine
        processor.feed(line)
    return processor


@pytest.mark.parametrize("value", RUNNER_READS_AS_COMMAND)
def test_a_value_the_runner_would_read_as_a_command_is_fenced(value: str) -> None:
    """A ``username`` input (or any logged value) goes through Console.info: the runner
    must show it and obey nothing but our own warning after it."""
    stream = io.StringIO()
    console = Console({"GITHUB_ACTIONS": "true"}, stream=stream)
    console.info(f"Token: GITHUB_TOKEN as {value}")
    console.warning("after")
    processor = _runner_reads(stream.getvalue())
    assert [(a.level, a.message) for a in processor.annotations] == [("warning", "after")]
    assert not processor.outputs and not processor.env
    assert all(len(v) >= 32 and v.isalnum() for v in processor.masker.values)  # the fence


def test_the_username_input_cannot_issue_a_command_through_the_whole_run_log() -> None:
    """Through the real message the run prints (``Token: ...``), not a synthetic one."""
    from gh_docker_publish.core.credentials import Credential
    from gh_docker_publish.core.settings import Secret

    credential = Credential(
        registry="ghcr.io", username="octocat\r::error title=pwned::from the username input",
        secret=Secret("t" * 40), source="token", reason="the input says so",
    )
    stream = io.StringIO()
    Console({"GITHUB_ACTIONS": "true"}, stream=stream).info(f"Token: {credential.describe()}")
    assert not _runner_reads(stream.getvalue()).annotations


HOSTILE_LABELS = {
    "html": "</details><a href=https://evil.example>click</a><img src=x onerror=alert(1)>",
    "markdown link": "[docs](https://evil.example) ![t](https://evil.example/t.png)",
    "code span break": "`</details>`<b>bold</b>",
    "entity": "&lt;script&gt;",
}


@pytest.mark.parametrize("name", list(HOSTILE_LABELS))
def test_label_values_in_the_summary_are_text_not_markup(name: str) -> None:
    """Before: raw HTML from a label value rendered in the job summary (item 12)."""
    value = HOSTILE_LABELS[name]
    result = replace(_result(), labels={f"key`<i>{name}</i>": value, "ok": value})
    md = report.render_summary(result)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "`" in line[:4]]
    rows = [r for r in rows if "ok" in r.split(" | ")[0] or name in r.split(" | ")[0]]
    assert len(rows) == 2, md
    for row in rows:
        key, cell = row.removeprefix("| ").removesuffix(" |").split(" | ")
        fence = re.match(r"`+", key)
        assert fence and key.endswith(fence.group(0)), key  # the key stays one code span
        assert "<" not in cell and "](" not in cell.replace("\\](", ""), cell  # text only
        assert "&lt;script" not in cell or "&amp;lt;script" in cell  # an entity stays text
    assert md.count("</details>") == 1


def test_a_username_in_the_summary_cannot_end_its_code_span() -> None:
    md = report.render_summary(replace(_result(), username="a`<img src=x>`b"))
    token_line = next(line for line in md.splitlines() if line.startswith("**Token:**"))
    assert "``a`<img src=x>`b``" in token_line  # a longer fence: the value stays code


def _result() -> report.PublishResult:
    return report.PublishResult(
        image="ghcr.io/octo-org/app", registry="ghcr.io", tags=("v1",),
        refs=("ghcr.io/octo-org/app:v1",), digest="sha256:" + "a" * 64, pushed=True,
        token_source="github-token", username="octocat", builder="buildkit",
    )
