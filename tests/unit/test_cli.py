"""The two entry points without a daemon: the CLI's dry run and flag rules, and the
action's handling of bad input (refused before any network call, exit 1)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

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
