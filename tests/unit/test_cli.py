"""The two entry points without a daemon: the CLI's dry run and flag rules, and the
action's handling of bad input (refused before any network call, exit 1)."""

from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

import pytest
import yaml

from gh_docker_publish import cli

# Nothing listens here: any attempt to reach a daemon or an API would fail loudly.
UNREACHABLE = {
    "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    "GITHUB_API_URL": "http://127.0.0.1:9",
}


@pytest.fixture
def context_dir(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def run_cli(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = cli.main(argv, {**UNREACHABLE, **env})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_prints_the_plan_without_daemon_or_network(
    context_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        [
            "publish",
            "--repository",
            "Octo-Org/App",
            "--image",
            "hello",
            "--context",
            str(context_dir),
            "--tags",
            "v1,edge",
            "--dry-run",
        ],
        {"GITHUB_TOKEN": "ghs_dryruntoken", "GITHUB_SHA": "a" * 40},
        capsys,
    )
    assert code == 0, err
    assert "ghcr.io/octo-org/hello:v1" in out
    assert "ghcr.io/octo-org/hello:edge" in out
    assert "GITHUB_TOKEN" in out
    assert "org.opencontainers.image.source=https://github.com/octo-org/app" in out
    assert "ghs_dryruntoken" not in out + err


def test_tokens_are_not_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["publish", "--token", "ghp_in_argv"], UNREACHABLE)
    assert exit_info.value.code == 2
    assert "ghp_in_argv" not in capsys.readouterr().out


def test_pat_comes_from_the_environment(
    context_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        [
            "publish",
            "--repository",
            "other-org/lib",
            "--image",
            "lib",
            "--context",
            str(context_dir),
            "--tags",
            "v1",
            "--dry-run",
        ],
        {"GITHUB_REPOSITORY": "octo-org/app", "GH_DOCKER_PUBLISH_TOKEN": "ghp_fromenv"},
        capsys,
    )
    assert code == 0
    assert "personal access token" in out.lower() or "token" in out


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"INPUT_TAGS": "-bad"}, "tags"),
        ({"INPUT_TAGS": "sha256:" + "a" * 64}, "tags"),
        ({"INPUT_IMAGE": "Bad Image!"}, "image"),
        ({"INPUT_PUSH": "yes"}, "push"),
        ({"INPUT_NO-CACHE": "on"}, "no-cache"),
        ({"INPUT_AUTH": "magic"}, "auth"),
        ({"INPUT_BUILD-ARGS": "NOEQUALS"}, "build-args"),
        ({"INPUT_FILE": "missing/Dockerfile"}, "file"),
    ],
)
def test_action_refuses_bad_input_before_any_network_call(
    inputs: dict[str, str], named: str, context_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(context_dir)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    env = {
        **UNREACHABLE,
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "octo-org/app",
        "GITHUB_REPOSITORY_OWNER": "octo-org",
        "INPUT_GITHUB-TOKEN": "ghs_sometoken",
        **inputs,
    }
    assert cli.run_action(env) == 1
    log = stream.getvalue()
    assert log.startswith("::add-mask::ghs_sometoken")  # masked before anything else
    (error,) = [line for line in log.splitlines() if line.startswith("::error")]
    assert f"Input '{named}'" in error


# --- the CLI a person expects (issue 15) ---------------------------------------------------

ACTION_INPUTS = yaml.safe_load((Path(__file__).parents[2] / "action.yml").read_text())["inputs"]


def flags_of(command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {opt: action for action in sub.choices[command]._actions
            for opt in action.option_strings}


@pytest.mark.parametrize("command", ["publish", "pull", "cleanup"])
def test_every_subcommand_exists_and_every_flag_has_help(command: str) -> None:
    flags = flags_of(command)
    assert flags
    for option, action in flags.items():
        assert action.help and action.help.strip(), f"{command} {option} has no help"


def test_every_action_input_is_a_flag_with_action_yml_s_description() -> None:
    """One source: a new input in action.yml becomes a flag with its help by itself."""
    publish, cleanup = flags_of("publish"), flags_of("cleanup")
    for name, spec in ACTION_INPUTS.items():
        if name in cli.TOKEN_ENV or name == "mode":
            assert f"--{name}" not in publish and f"--{name}" not in cleanup
            continue
        action = publish.get(f"--{name}") or cleanup.get(f"--{name}")
        assert action is not None, f"input {name} has no flag"
        if name != "dry-run":  # publish's --dry-run prints the plan; cleanup's is the input
            assert action.help is not None
            assert action.help.startswith(spec["description"].replace("%", "%%")), name


def test_boolean_inputs_are_flags_not_values() -> None:
    parse = cli._parser().parse_args
    args = parse(["publish", "--no-cache", "--no-push", "--pull", "--no-provenance"])
    assert (args.no_cache, args.push, args.pull, args.provenance) == (True, False, True, False)
    assert parse(["publish"]).push is None  # left out: the input's default (auto)
    assert parse(["cleanup", "--no-dry-run"]).dry_run is False
    with pytest.raises(SystemExit):
        parse(["publish", "--no-cache", "true"])


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A git checkout like a user's clone: origin on github.com, a commit on `feature/x`."""
    repo = tmp_path / "clone"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM scratch\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "feature/x"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "git@github.com:Octo-Org/Hello-App.git"],
                   check=True)
    subprocess.run([*git, "add", "Dockerfile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return repo


def test_publish_dry_run_in_a_clone_needs_no_flags(
    clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clone)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                         text=True, check=True).stdout.strip()
    code, out, err = run_cli(["publish", "--dry-run"], {}, capsys)
    assert code == 0, err
    assert "ghcr.io/octo-org/hello-app:feature-x" in out
    assert f"ghcr.io/octo-org/hello-app:sha-{sha[:7]}" in out
    assert "org.opencontainers.image.source=https://github.com/octo-org/hello-app" in out
    code, out, err = run_cli(["publish", "--dry-run", "--tags", "type=sha"], {}, capsys)
    assert code == 0, err
    assert f"hello-app:sha-{sha[:7]}" in out


def test_the_environment_wins_over_the_checkout(
    clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clone)
    code, out, err = run_cli(["publish", "--dry-run", "--tags", "v1"],
                             {"GITHUB_REPOSITORY": "other/thing"}, capsys)
    assert code == 0, err
    assert "ghcr.io/other/thing:v1" in out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--image", "Bad Image!"], "--image"), (["--auth", "magic"], "--auth"),
     (["--build-args", "NOEQUALS"], "--build-args"), (["--file", "missing/Dockerfile"], "--file")],
)
def test_cli_errors_name_the_flag_not_the_input(
    argv: list[str], flag: str, context_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["publish", "--dry-run", "--repository", "octo-org/app",
                            "--context", str(context_dir), *argv], {}, capsys)
    assert code == 1
    assert f"{flag}: " in err
    assert "Input '" not in err


def test_outside_a_checkout_the_error_says_which_flag(
    context_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(context_dir)
    code, _, err = run_cli(["publish", "--dry-run"], {"GIT_CEILING_DIRECTORIES": "/"}, capsys)
    assert code == 1
    assert "--repository: " in err and "`--repository`" in err


def test_repository_flag_plays_the_workflow_repository_in_a_clone(
    clone: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clone)
    code, out, err = run_cli(["publish", "--dry-run", "--repository", "other/thing"],
                             {"GITHUB_TOKEN": "ghs_x"}, capsys)
    assert code == 0, err
    assert "ghcr.io/other/thing:feature-x" in out
    assert "GITHUB_TOKEN" in out


def test_a_push_error_keeps_what_landed_in_either_wording() -> None:
    from gh_docker_publish.errors import PushError

    error = PushError("Pushing x:b failed.", landed=["x:a"], not_landed=["x:b"],
                      hint="Check the `token` input.")
    assert str(error).endswith("Landed: x:a. Not landed: x:b.")
    cli_text = error.render(cli.cli_flag)
    assert cli_text.endswith("Landed: x:a. Not landed: x:b.")
    assert "GH_DOCKER_PUBLISH_TOKEN" in cli_text
