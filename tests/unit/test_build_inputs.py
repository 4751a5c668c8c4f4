"""The BuildKit inputs: validation before any network call, the buildx command line
(ids, paths and variable names only, never a secret value), what the docker driver cannot
do, and the post step's removal rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gh_docker_publish.core.build_inputs import BuildSecret
from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret, Settings, settings_from_values
from gh_docker_publish.edges import builders, report
from gh_docker_publish.errors import BuildError, InputError
from gh_docker_publish.flows import post_step

ENV = {"GITHUB_REPOSITORY": "octo-org/app", "BUILD_TOKEN": "s3cr3t-value"}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "npmrc").write_text("//registry/:_authToken=abc\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(**values: str) -> Settings:
    return settings_from_values({k.replace("_", "-"): v for k, v in values.items()}, ENV)


def test_defaults(workspace: Path) -> None:
    s = settings()
    assert (s.builder, s.platforms, s.build_secrets, s.provenance) == ("auto", (), (), False)
    assert (s.cache_from, s.cache_to) == ((), ())


def test_secrets_from_file_and_env(workspace: Path) -> None:
    s = settings(secrets="id=npm,src=npmrc\nid=tok,env=BUILD_TOKEN")
    npm, tok = s.build_secrets
    assert npm == BuildSecret("npm", src=str(workspace / "npmrc"))
    assert tok.env == "BUILD_TOKEN" and tok.value == "s3cr3t-value"
    assert "s3cr3t-value" in s.secrets()  # masked with the tokens
    assert "s3cr3t-value" not in repr(s)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("id=npm", "exactly one of src= or env="),
        ("id=npm,src=npmrc,env=BUILD_TOKEN", "exactly one of"),
        ("src=npmrc", "no valid id"),
        ("id=npm,src=missing.txt", "no file at 'missing.txt'"),
        ("id=tok,env=UNSET_VAR", "UNSET_VAR is not set"),
        ("id=a,src=npmrc\nid=a,env=BUILD_TOKEN", "given twice"),
        ("just-a-value", "neither id=…,src=…|env=… nor KEY=VALUE"),
    ],
)
def test_bad_secrets_name_the_input(workspace: Path, raw: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        settings(secrets=raw)
    assert err.value.input_name == "secrets"
    assert fragment in str(err.value)
    assert "s3cr3t-value" not in str(err.value)


def test_builder_and_platforms_are_checked(workspace: Path) -> None:
    assert settings(builder="BuildKit").builder == "buildkit"
    with pytest.raises(InputError, match="not one of auto, buildkit, classic"):
        settings(builder="kaniko")
    assert settings(platforms="linux/amd64, linux/arm/v7").platforms == (
        "linux/amd64",
        "linux/arm/v7",
    )
    with pytest.raises(InputError) as err:
        settings(platforms="amd64")
    assert err.value.input_name == "platforms"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("secrets", "id=tok,env=BUILD_TOKEN"),
        ("platforms", "linux/arm64"),
        ("cache_from", "type=registry,ref=example.test/o/app:cache"),
        ("cache_to", "type=inline"),
        ("provenance", "true"),
    ],
)
def test_classic_refuses_buildkit_only_inputs(workspace: Path, name: str, value: str) -> None:
    with pytest.raises(InputError) as err:
        settings(builder="classic", **{name: value})
    assert err.value.input_name == name.replace("_", "-")
    assert "needs BuildKit" in str(err.value)


def test_argv_carries_no_secret_value(workspace: Path) -> None:
    s = settings(
        secrets="id=tok,env=BUILD_TOKEN\nid=npm,src=npmrc",
        cache_from="type=registry,ref=example.test/o/app:cache",
        cache_to="type=inline",
    )
    request = builders.BuildRequest(
        context=workspace,
        tags=["example.test/o/app:v1"],
        secrets=s.build_secrets,
        cache_from=s.cache_from,
        cache_to=s.cache_to,
    )
    argv = builders.BuildKitBuilder(None).argv(request, Path("/x/iid"), Path("/x/m.json"))
    assert "s3cr3t-value" not in " ".join(argv)
    assert argv[argv.index("--secret") :][:2] == ["--secret", "id=tok,env=BUILD_TOKEN"]
    assert f"id=npm,src={workspace / 'npmrc'}" in argv
    assert "--cache-to" in argv and "type=inline" in argv
    assert "--provenance=false" in argv


def test_docker_driver_limits_are_named_before_the_build(workspace: Path) -> None:
    request = builders.BuildRequest(
        context=workspace,
        platforms=("linux/amd64", "linux/arm64"),
        cache_to=("type=inline", "type=registry,ref=example.test/o/app:cache"),
        provenance=True,
    )
    problems = builders.docker_driver_limits(request, containerd_store=False)
    assert len(problems) == 3
    assert "manifest list" in problems[0] and "type=registry" in problems[1]
    assert builders.docker_driver_limits(request, containerd_store=True) == []
    with pytest.raises(BuildError) as err:
        builders.BuildKitBuilder(None, buildx="/nonexistent/docker-buildx").build(request, print)
    assert "docker-container" in str(err.value)  # explained, and buildx never ran


def test_classic_builder_refuses_secrets(workspace: Path) -> None:
    request = builders.BuildRequest(context=workspace, secrets=(BuildSecret("a", src="/x"),))
    with pytest.raises(BuildError, match="cannot honour secrets"):
        builders.ClassicBuilder(client=None).build(request, print)


def test_builder_is_an_output() -> None:
    result = report.PublishResult(image="i", registry="r", builder="buildkit")
    assert report.render_outputs(result)["builder"] == "buildkit"
    assert "builder" in report.OUTPUT_NAMES


# --- post step ---------------------------------------------------------------------------


def test_post_step_removes_our_config(tmp_path: Path) -> None:
    with builders.private_docker_config(
        [Credential("r.test", "u", Secret("p"), "token", "test")],
        parent=str(tmp_path),
    ) as cfg:
        assert oct(os.stat(cfg).st_mode & 0o777) == "0o700"
        (cfg / "iid").write_text("sha256:x")
        assert post_step.remove_private_config(str(cfg)) == f"removed {cfg}"
        assert not cfg.exists()
    assert post_step.remove_private_config(str(cfg)).endswith("already gone")


@pytest.mark.parametrize("name", ["not-ours", "ghdp-docker-x"])
def test_post_step_leaves_other_directories_alone(tmp_path: Path, name: str) -> None:
    other = tmp_path / name
    other.mkdir()
    (other / "precious.txt").write_text("keep")
    assert "left alone" in post_step.remove_private_config(str(other))
    assert (other / "precious.txt").exists()


def test_post_step_never_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert post_step.run_post({}) == 0
    assert post_step.run_post({"STATE_docker_config": "/"}) == 0
    assert "left alone" in capsys.readouterr().out


def test_buildx_plugin_is_found_where_the_docker_cli_looks(tmp_path: Path) -> None:
    from gh_docker_publish.edges.builders import buildx_plugin

    config = tmp_path / "config"
    (config / "cli-plugins").mkdir(parents=True)
    plugin = config / "cli-plugins" / "docker-buildx"
    plugin.write_text("#!/bin/sh\n")
    env = {"DOCKER_CONFIG": str(config), "HOME": str(tmp_path / "home")}
    assert buildx_plugin(env) != plugin  # not executable: the CLI would skip it too
    plugin.chmod(0o755)
    assert buildx_plugin(env) == plugin  # $DOCKER_CONFIG/cli-plugins comes first


def test_buildx_state_lives_in_our_cache_not_in_the_private_credentials_dir(
    tmp_path: Path,
) -> None:
    from gh_docker_publish.edges.builders import _cli_env

    credentials_dir = tmp_path / "private"
    env = _cli_env(None, credentials_dir, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    # _cli_env starts from os.environ; the extra mapping carries XDG_CACHE_HOME here.
    state = Path(env["BUILDX_CONFIG"])
    assert state == tmp_path / "cache" / "gh-docker-publish" / "buildx"
    assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700
    assert env["DOCKER_CONFIG"] == str(credentials_dir)
