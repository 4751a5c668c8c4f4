"""The actions-toolkit shim: exact workflow-command text on a runner, plain text elsewhere."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from gh_docker_publish.core.inputs import get_input
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import PublishError

ON_ACTIONS = {"GITHUB_ACTIONS": "true"}


def counter() -> itertools.count[int]:
    return itertools.count(1)


def console(env: dict[str, str] | None = None, **kwargs: object) -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    tokens = counter()
    made = Console(
        env=dict(ON_ACTIONS if env is None else env),
        stream=stream,
        new_token=lambda: f"tok{next(tokens)}",
        **kwargs,
    )
    return made, stream


# --- inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "name", "expected"),
    [
        ({"INPUT_BUILD-ARGS": " A=1 \n"}, "build-args", "A=1"),  # runner spelling, trimmed
        ({"INPUT_BUILD_ARGS": "A=1"}, "build-args", "A=1"),  # hand-written fallback
        ({"INPUT_BUILD-ARGS": "", "INPUT_BUILD_ARGS": "B=2"}, "build-args", "B=2"),
        ({"INPUT_BUILD-ARGS": "A=1", "INPUT_BUILD_ARGS": "B=2"}, "build-args", "A=1"),
        ({"INPUT_MY_INPUT": "x"}, "my input", "x"),  # spaces -> _
        ({"INPUT_IMAGE": "hello"}, "image", "hello"),
        ({}, "image", ""),
        ({"input_image": "hello"}, "image", ""),  # names are upper case
    ],
)
def test_get_input(env: dict[str, str], name: str, expected: str) -> None:
    assert get_input(env, name) == expected


# --- annotations and log lines ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.info("hello"), "hello\n"),
        (lambda c: c.debug("details"), "::debug::details\n"),
        (lambda c: c.warning("careful"), "::warning::careful\n"),  # no empty title=,line=
        (lambda c: c.notice("fyi", title="Image"), "::notice title=Image::fyi\n"),
        (
            lambda c: c.error("bad", title="T", file="Dockerfile", line=3),
            "::error title=T,file=Dockerfile,line=3::bad\n",
        ),
        (lambda c: c.warning("a\nb 100%"), "::warning::a%0Ab 100%25\n"),
        (lambda c: c.notice("x", title="a:b,c"), "::notice title=a%3Ab%2Cc::x\n"),
    ],
)
def test_commands_on_actions(call: object, expected: str) -> None:
    made, stream = console()
    call(made)  # type: ignore[operator]
    assert stream.getvalue() == expected


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.info("hello"), "hello\n"),
        (lambda c: c.debug("details"), ""),
        (lambda c: c.warning("careful"), "warning: careful\n"),
        (lambda c: c.notice("fyi", title="Image"), "notice: Image: fyi\n"),
        (lambda c: c.error("bad", file="Dockerfile", line=3), "Dockerfile:3: error: bad\n"),
        (lambda c: c.error("bad", file="Dockerfile"), "Dockerfile: error: bad\n"),
        (lambda c: c.mask("s3cret"), ""),
    ],
)
def test_plain_text_outside_actions(call: object, expected: str) -> None:
    made, stream = console({})
    call(made)  # type: ignore[operator]
    assert stream.getvalue() == expected


def test_debug_outside_actions_with_verbose_or_runner_debug() -> None:
    made, stream = console({}, verbose=True)
    made.debug("x")
    made2, stream2 = console({"RUNNER_DEBUG": "1"})
    made2.debug("y")
    assert stream.getvalue() == "debug: x\n"
    assert stream2.getvalue() == "debug: y\n"


def test_on_actions_needs_exactly_true() -> None:
    assert Console(env={"GITHUB_ACTIONS": "true"}).on_actions
    assert not Console(env={"GITHUB_ACTIONS": "1"}).on_actions
    assert not Console(env={}).on_actions


# --- masks ---------------------------------------------------------------------------------


def test_mask_multiline_masks_each_line_too() -> None:
    made, stream = console()
    made.mask("line1\r\nline2\n\n")
    assert stream.getvalue().splitlines() == [
        "::add-mask::line1%0D%0Aline2%0A%0A",
        "::add-mask::line1",
        "::add-mask::line2",
    ]


def test_mask_single_line_once_and_empty_never() -> None:
    made, stream = console()
    made.mask("tok")
    made.mask("")
    assert stream.getvalue() == "::add-mask::tok\n"


# --- groups and stop-commands ----------------------------------------------------------------


def test_group_closes_on_error() -> None:
    made, stream = console()
    with pytest.raises(RuntimeError), made.group("Build"):
        made.info("step")
        raise RuntimeError("boom")
    assert stream.getvalue() == "::group::Build\nstep\n::endgroup::\n"


def test_group_outside_actions_is_a_header() -> None:
    made, stream = console({})
    with made.group("Build"):
        made.info("step")
    assert stream.getvalue() == "== Build\nstep\n"


def test_stop_commands_fences_and_resumes_on_error() -> None:
    made, stream = console()
    with pytest.raises(RuntimeError), made.stop_commands() as token:
        made.info("::add-mask::not-a-command")
        raise RuntimeError("build died")
    assert token == "tok1"
    assert stream.getvalue() == (
        "::stop-commands::tok1\n::add-mask::not-a-command\n::tok1::\n"
    )


def test_stop_commands_token_is_random_by_default() -> None:
    stream = io.StringIO()
    made = Console(env=ON_ACTIONS, stream=stream)
    with made.stop_commands() as first, made.stop_commands() as second:
        pass
    assert first != second
    assert len(first) == 32  # a uuid4 without dashes


def test_stop_commands_outside_actions_prints_nothing() -> None:
    made, stream = console({})
    with made.stop_commands():
        made.info("raw")
    assert stream.getvalue() == "raw\n"


# --- outputs, summary, state -----------------------------------------------------------------


def test_set_outputs_heredocs_in_one_append(tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.write_text("earlier=1\n")
    made, stream = console({**ON_ACTIONS, "GITHUB_OUTPUT": str(out)})
    made.set_outputs({"image": "ghcr.io/o/hello", "tags": "1.2.3\nlatest"})
    assert out.read_text() == (
        "earlier=1\n"
        "image<<ghadelimiter_tok1\nghcr.io/o/hello\nghadelimiter_tok1\n"
        "tags<<ghadelimiter_tok2\n1.2.3\nlatest\nghadelimiter_tok2\n"
    )
    assert stream.getvalue() == ""


def test_set_outputs_refuses_a_value_holding_the_delimiter(tmp_path: Path) -> None:
    out = tmp_path / "output"
    made, _ = console({**ON_ACTIONS, "GITHUB_OUTPUT": str(out)})
    with pytest.raises(PublishError, match="delimiter"):
        made.set_outputs({"evil": "x\nghadelimiter_tok1\nother=1"})
    assert not out.exists()  # nothing half-written


def test_set_outputs_without_github_output_warns() -> None:
    made, stream = console()
    made.set_outputs({"image": "x"})
    assert stream.getvalue().startswith("::warning::GITHUB_OUTPUT is not set")


def test_set_outputs_cli_prints_or_writes_file(tmp_path: Path) -> None:
    made, stream = console({})
    made.set_outputs({"image": "x", "tags": "a\nb"})
    assert stream.getvalue() == "image: x\ntags:\n  a\n  b\n"
    out = tmp_path / "out.txt"
    filed, stream2 = console({}, output_file=out)
    filed.set_outputs({"image": "x"})
    assert out.read_text() == "image<<ghadelimiter_tok1\nx\nghadelimiter_tok1\n"
    assert stream2.getvalue() == ""


def test_write_summary_appends_once(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    made, _ = console({**ON_ACTIONS, "GITHUB_STEP_SUMMARY": str(summary)})
    made.write_summary("### one")
    made.write_summary("### two\n")
    assert summary.read_text() == "### one\n### two\n"


def test_write_summary_unwritable_only_warns(tmp_path: Path) -> None:
    made, stream = console({**ON_ACTIONS, "GITHUB_STEP_SUMMARY": str(tmp_path)})  # a directory
    made.write_summary("### x")
    assert stream.getvalue().startswith("::warning title=Job summary::Could not write the job")


def test_write_summary_outside_actions_writes_nothing(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    made, stream = console({"GITHUB_STEP_SUMMARY": str(summary)})
    made.write_summary("### x")
    assert not summary.exists()
    assert stream.getvalue() == ""


def test_save_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made, _ = console({**ON_ACTIONS, "GITHUB_STATE": str(state)})
    made.save_state("image", "ghcr.io/o/hello")
    assert state.read_text() == "image<<ghadelimiter_tok1\nghcr.io/o/hello\nghadelimiter_tok1\n"


def test_save_state_that_cannot_be_written_warns(tmp_path: Path) -> None:
    made, stream = console({**ON_ACTIONS, "GITHUB_STATE": str(tmp_path)})  # a directory
    made.save_state("docker_config", "/tmp/x")
    assert stream.getvalue().startswith("::warning title=Step state::Could not save state")


@pytest.mark.parametrize(
    "text",
    ["as x\n::error::forged", "x\n  ::add-mask::y", "status ##[error]forged", "::warning::z"],
)
def test_info_fences_text_the_runner_would_obey(text: str) -> None:
    made, stream = console(ON_ACTIONS)
    made.info(text)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "::stop-commands::tok1" and lines[-1] == "::tok1::"
    assert "\n".join(lines[1:-1]) == text


def test_info_leaves_ordinary_lines_alone() -> None:
    made, stream = console(ON_ACTIONS)
    made.info("Pushing ghcr.io/o/a:v1 (digest sha256:abc::def)")
    assert stream.getvalue() == "Pushing ghcr.io/o/a:v1 (digest sha256:abc::def)\n"


def test_mask_login_masks_the_token_and_the_basic_auth_form() -> None:
    made, stream = console(ON_ACTIONS)
    made.mask_login("octocat", "ghp_secret")
    assert stream.getvalue().splitlines() == [
        "::add-mask::ghp_secret",
        "::add-mask::b2N0b2NhdDpnaHBfc2VjcmV0",  # base64("octocat:ghp_secret")
    ]
