"""Tests of the runner harness itself, with a toy action (``toy-action/``).

The parser tests at the top need no daemon; the ``e2e`` ones build and run the toy action.
Expected texts are the runner's own (actions/runner ``src/Runner.Worker``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.runner import (
    COMMAND_DISABLED,
    REGISTERED_COMMANDS,
    SET_OUTPUT_DEPRECATED,
    ActionHarness,
    CommandProcessor,
    FileCommandError,
    HarnessError,
    RunResult,
    SecretMasker,
    _LineSplitter,
    default_github_context,
    evaluate,
    load_action,
    parse_action_command,
    parse_env_file,
    resolve_inputs,
)

TOKEN = "ghs_e2eToyToken1234567890abcdefABCDEF"


# --- pure parsers: no daemon ---------------------------------------------------------------


def test_v2_command_properties_and_escapes() -> None:
    cmd = parse_action_command(
        "  ::Warning file=a.py,title=T%3A%2C 100%25::m%0Ax %3A%2C", REGISTERED_COMMANDS
    )
    assert cmd is not None
    assert cmd.command == "warning"
    assert dict(cmd.properties) == {"file": "a.py", "title": "T:, 100%"}
    # Data unescapes only %0D %0A %25 (ActionCommand._escapeDataMappings).
    assert cmd.data == "m\nx %3A%2C"


def test_unregistered_and_legacy_commands() -> None:
    assert parse_action_command("::not-a-command::x", REGISTERED_COMMANDS) is None
    assert parse_action_command("text ::error::x", REGISTERED_COMMANDS) is None
    legacy = parse_action_command("prefix ##[error file=a;line=2]boom%5D", REGISTERED_COMMANDS)
    assert legacy is not None
    assert (legacy.command, dict(legacy.properties), legacy.data) == (
        "error",
        {"file": "a", "line": "2"},
        "boom]",
    )


def test_env_file_heredoc_and_equals() -> None:
    text = "a=1=2\n\nm<<EOF\nx\n\ny\nEOF\nempty<<E\nE\n"
    assert list(parse_env_file(text)) == [("a", "1=2"), ("m", "x\n\ny"), ("empty", "")]
    # CRLF throughout: the delimiter is "EOF\r" and the value keeps its "\r".
    assert list(parse_env_file("m<<EOF\r\nv\r\nEOF\r\n")) == [("m", "v\r")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("m<<EOF\nvalue\n", "Invalid value. Matching delimiter not found 'EOF'"),
        ("m<<EOF\nvalue", "Invalid value. EOF marker missing new line."),
        # Linux runners split on \n only: "EOF\r" is not the delimiter "EOF".
        ("m<<EOF\nv\r\nEOF\r\n", "Invalid value. Matching delimiter not found 'EOF'"),
        ("<<EOF\nEOF\n", "Invalid format '<<EOF'. Name must not be empty"),
        ("no-separator\n", "Invalid format 'no-separator'"),
    ],
)
def test_env_file_errors(text: str, message: str) -> None:
    with pytest.raises(FileCommandError) as err:
        list(parse_env_file(text))
    assert str(err.value).startswith(message)


def test_env_file_keeps_pairs_before_error() -> None:
    pairs = parse_env_file("good=1\nbad<<X\n")
    assert next(pairs) == ("good", "1")
    with pytest.raises(FileCommandError):
        next(pairs)


def test_masker_merges_overlaps_and_masks_later_lines_only() -> None:
    masker = SecretMasker()
    proc = CommandProcessor(masker)
    proc.feed("abcdef before")
    proc.feed("::add-mask::abcd")
    proc.feed("::add-mask::cdef")
    proc.feed("abcdef after")
    assert proc.log == ["abcdef before", "*** after"]


def test_disabled_legacy_command_fails_step() -> None:
    proc = CommandProcessor(SecretMasker(), legacy_commands="disabled")
    proc.feed("::set-output name=x::1")
    assert proc.outputs == {}
    assert proc.command_failed
    assert proc.annotations[-1].message == COMMAND_DISABLED.format("set-output")


def test_set_env_is_disabled() -> None:
    proc = CommandProcessor(SecretMasker())
    proc.feed("::set-env name=A::1")
    assert proc.env == {}
    assert proc.command_failed
    assert (
        proc.annotations[0].message
        == "Unable to process command '::set-env name=A::1' successfully."
    )


def test_line_splitter_handles_split_crlf() -> None:
    s = _LineSplitter()
    assert s.push(b"a\r") == []
    assert s.push(b"\nb\rc\n\xc3") == ["a", "b", "c"]
    assert s.push(b"\xa9 tail") == []
    assert s.close() == ["\u00e9 tail"]


def test_expressions() -> None:
    ctx = {"github": {"token": "t", "repository": "O/R"}, "inputs": {"my-input": "v"}}
    assert evaluate("${{ github.token }}-${{inputs.my-input}}", ctx) == "t-v"
    assert evaluate("${{ inputs['my-input'] }}", ctx) == "v"
    with pytest.raises(HarnessError):
        evaluate("${{ github.event.ref }}", ctx)
    with pytest.raises(HarnessError):
        evaluate("${{ github.run_id }}", ctx)
    with pytest.raises(HarnessError):
        evaluate("${{ format('{0}', github.token) }}", ctx)


def test_inputs_defaults_and_unexpected(toy_action: Path) -> None:
    spec = load_action(toy_action)
    inputs, warnings = resolve_inputs(
        spec, {"MY-INPUT": "v", "bogus": "x"}, default_github_context(token="T")
    )
    assert inputs["my-input"] == "v"
    assert inputs["token"] == "T"
    assert inputs["spaced name"] == "spaced-default"
    assert warnings and warnings[0].startswith("Unexpected input(s) 'bogus', valid inputs are [")


# --- the toy action through a real daemon --------------------------------------------------


@pytest.fixture
def toy_run(runner: ActionHarness, toy_action: Path) -> RunResult:
    github = default_github_context(token=TOKEN, event={"ref": "refs/heads/main", "x": 1})
    return runner.run(toy_action, inputs={"my-input": "v1"}, github=github)


def _env_lines(result: RunResult) -> dict[str, str]:
    return dict(
        line.removeprefix("env: ").split("=", 1)
        for line in result.log
        if line.startswith("env: ") and "=" in line
    )


@pytest.mark.e2e
def test_inputs_env_mounts_and_args(toy_run: RunResult) -> None:
    assert toy_run.exit_code == 0, toy_run.text
    assert toy_run.conclusion == "success"
    env = _env_lines(toy_run)
    assert env["INPUT_MY-INPUT"] == "v1"  # hyphen kept
    assert env["INPUT_SPACED_NAME"] == "spaced-default"  # space -> "_"
    assert env["INPUT_GREETING"] == "hello"
    assert env["INPUT_REPO"] == "Octo-Org/Hello-World"
    assert env["INPUT_TOKEN"] == "***"  # github.token default, masked like the runner
    assert f"env: INPUT_TOKEN={TOKEN}" in toy_run.raw_log
    assert env["TOY_ENV"] == "from-action-hello"
    assert env["GITHUB_WORKSPACE"] == "/github/workspace"
    assert env["HOME"] == "/github/home"
    assert env["RUNNER_TEMP"] == "/github/runner_temp"
    assert env["GITHUB_EVENT_PATH"] == "/github/workflow/event.json"
    assert env["GITHUB_OUTPUT"].startswith("/github/file_commands/set_output_")
    assert env["GITHUB_STATE"].startswith("/github/file_commands/save_state_")
    assert (env["GITHUB_ACTIONS"], env["CI"], env["RUNNER_OS"]) == ("true", "true", "Linux")
    assert "GITHUB_TOKEN" not in env and "RUNNER_DEBUG" not in env
    # stdout and stderr interleave in no fixed order (as on a runner): drop the stderr line.
    stdout = [line for line in toy_run.log if line != "to stderr"]
    assert stdout[:4] == ["argc=3", "arg=[hello]", "arg=[]", "arg=[two words]"]
    assert "to stderr" in toy_run.log
    assert "/github/workspace" in toy_run.log  # working directory
    assert "docker socket mounted" in toy_run.log
    assert '{"ref": "refs/heads/main", "x": 1}' in toy_run.log
    assert not any("wrong entrypoint" in line for line in toy_run.log)


@pytest.mark.e2e
def test_file_commands(toy_run: RunResult) -> None:
    assert toy_run.outputs["multi"] == "line a\nline b"
    assert toy_run.outputs["single"] == "value=with=equals"
    assert toy_run.env == {"FROM_ACTION": "yes"}
    assert toy_run.path == ["/opt/toy/bin"]
    assert toy_run.state["cleanup_id"] == "42"
    assert toy_run.summary == "### Toy summary\nsummary mentions ***\n"
    assert "summary mentions s3cr3t-value" in toy_run.raw_summary


@pytest.mark.e2e
def test_add_mask_masks_later_lines_only(toy_run: RunResult) -> None:
    assert "before-mask s3cr3t-value" in toy_run.log
    assert "after-mask ***" in toy_run.log
    assert "after-mask s3cr3t-value" in toy_run.raw_log
    assert not any("add-mask" in line for line in toy_run.log)
    # A multi-line value is also masked line by line.
    assert "multi *** alone" in toy_run.log
    assert toy_run.post is not None
    assert "post masked later: ***" in toy_run.post.log


@pytest.mark.e2e
def test_annotations_and_groups(toy_run: RunResult) -> None:
    warning = toy_run.annotations_of("warning")[0]
    assert warning.message == "warn 100% sure\nsecond line"
    assert warning.title == "Heads, up"
    assert (warning.prop("file"), warning.prop("line")) == ("src/app.py", "3")
    assert [a.message for a in toy_run.annotations_of("notice")] == ["a notice"]
    assert "legacy-format warning" in [a.message for a in toy_run.annotations_of("warning")]
    assert not any("debug line" in line for line in toy_run.log)
    (group,) = toy_run.groups
    assert group.title == "Toy group"
    assert group.end is not None
    # The one stderr line may land anywhere: stdout and stderr interleave by arrival.
    inside = [line for line in toy_run.log[group.start : group.end] if line != "to stderr"]
    assert inside == ["inside group"]


@pytest.mark.e2e
def test_stop_commands_until_token(toy_run: RunResult) -> None:
    errors = [a.message for a in toy_run.annotations_of("error")]
    assert errors == ["real error"]
    assert "::error::not-an-error-while-stopped" in toy_run.log
    # Tokens longer than 6 characters are masked by the runner.
    assert "::stop-commands::***" in toy_run.log
    assert "::***::" in toy_run.log


@pytest.mark.e2e
def test_legacy_set_output_warns_on_github_com(toy_run: RunResult) -> None:
    warnings = [a.message for a in toy_run.annotations_of("warning")]
    assert SET_OUTPUT_DEPRECATED.format("set-output") in warnings
    assert SET_OUTPUT_DEPRECATED.format("save-state") in warnings
    assert toy_run.outputs["legacy"] == "legacy-value"


@pytest.mark.e2e
def test_legacy_set_output_ignored_when_disabled(
    docker_client: object, harness_build_args: dict[str, str], toy_action: Path
) -> None:
    strict = ActionHarness(
        docker_client, build_args=harness_build_args, legacy_commands="disabled"
    )
    result = strict.run(toy_action, inputs={"my-input": "v"})
    assert "legacy" not in result.outputs
    assert COMMAND_DISABLED.format("set-output") in [a.message for a in result.annotations]
    assert result.exit_code == 0
    assert result.conclusion == "failure"


@pytest.mark.e2e
def test_pre_and_post_steps(toy_run: RunResult) -> None:
    assert toy_run.pre is not None
    assert toy_run.pre.log == ["pre ran with args: hello  two words"]
    assert toy_run.post is not None
    assert "post sees STATE_cleanup_id=42" in toy_run.post.log
    assert "post sees STATE_pre_marker=from-pre" in toy_run.post.log
    assert "post sees STATE_legacy=legacy-state" in toy_run.post.log
    assert "env: STATE_pre_marker=from-pre" in toy_run.log


@pytest.mark.e2e
def test_debug_shows_debug_lines_and_echoes(runner: ActionHarness, toy_action: Path) -> None:
    result = runner.run(toy_action, inputs={"my-input": "v"}, debug=True)
    assert "##[debug]a debug line" in result.log
    assert "::group::Toy group" in result.log  # echo is on with step debug
    assert "::add-mask::***" in result.log
    assert "env: RUNNER_DEBUG=1" in result.log


@pytest.mark.e2e
def test_broken_heredoc_fails_step(runner: ActionHarness, toy_action: Path) -> None:
    result = runner.run(toy_action, inputs={"my-input": "v", "scenario": "broken-heredoc"})
    assert result.exit_code == 0
    assert result.conclusion == "failure"
    assert result.outputs == {"good": "kept"}
    assert [a.message for a in result.annotations_of("error")] == [
        "Unable to process file command 'output' successfully.",
        "Invalid value. Matching delimiter not found 'EOF'",
    ]


@pytest.mark.e2e
def test_exit_code_and_post_always(runner: ActionHarness, toy_action: Path) -> None:
    result = runner.run(toy_action, inputs={"my-input": "v", "scenario": "exit-3"})
    assert result.exit_code == 3
    assert result.failed
    assert result.post is not None and result.post.exit_code == 0


@pytest.mark.e2e
def test_invalid_stop_token_fails(runner: ActionHarness, toy_action: Path) -> None:
    result = runner.run(toy_action, inputs={"my-input": "v", "scenario": "stop-bad-token"})
    messages = [a.message for a in result.annotations_of("error")]
    assert messages[0] == "Unable to process command '::stop-commands::error' successfully."
    assert "still processed" in messages
    assert result.conclusion == "failure"


@pytest.mark.e2e
def test_unexpected_input_warns(runner: ActionHarness, toy_action: Path) -> None:
    result = runner.run(toy_action, inputs={"my-input": "v", "nope": "1"})
    assert result.annotations[0].message.startswith("Unexpected input(s) 'nope'")


@pytest.mark.e2e
def test_image_cache_and_timings(runner: ActionHarness, toy_action: Path) -> None:
    first = runner.build(toy_action)
    again = runner.build(toy_action)
    assert again.cached and again.tag == first.tag
    assert again.size > 0
    result = runner.run(toy_action, inputs={"my-input": "v"})
    assert result.build_cached
    assert result.image_size > 0
    assert result.start_to_first_line_seconds is not None
    assert result.run_seconds >= result.start_to_first_line_seconds
