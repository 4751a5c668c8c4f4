"""The BuildKit inputs: validation before any network call, the buildx command line
(ids, paths and variable names only, never a secret value), what the docker driver cannot
do, and the post step's removal rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gh_docker_publish.core.build_inputs import BuildSecret, PlatformDigest
from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret, Settings, settings_from_values
from gh_docker_publish.edges import builders, docker_config, report
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
    assert (s.builder, s.platforms, s.build_secrets) == ("auto", (), ())
    assert (s.provenance, s.sbom) == ("", "")
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
        cache_to=("type=inline", "type=registry,ref=example.test/o/app:cache"),
        provenance="mode=max",
        sbom="true",
    )
    problems = builders.docker_driver_limits(request, False, "Docker Engine 20.10.24")
    assert len(problems) == 3
    assert "type=registry" in problems[0] and "type=inline" not in problems[0].split(":")[0]
    assert all("Docker Engine 20.10.24 with the classic image store" in p for p in problems)
    assert builders.docker_driver_limits(request, containerd_store=True) == []
    with pytest.raises(BuildError) as err:
        builders.BuildKitBuilder(None, buildx="/nonexistent/docker-buildx").build(request, print)
    # explained (engine, store, the fixes), and buildx never ran
    assert "containerd-snapshotter" in err.value.hint and "docker-container://" in err.value.hint
    assert "cache-to: type=inline" in err.value.hint


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
    with docker_config.private_docker_config(
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


# --- issue 13: attestations, cache specs, platforms ----------------------------------------


@pytest.mark.parametrize(
    ("value", "flag"),
    [("", "false"), ("false", "false"), ("true", "true"), ("mode=min", "mode=min"),
     ("mode=max", "mode=max"), ("mode=max,builder-id=ci", "mode=max,builder-id=ci"),
     ("disabled=true", "false")],
)
def test_provenance_takes_what_build_push_action_takes(
    workspace: Path, value: str, flag: str
) -> None:
    s = settings(provenance=value)
    request = builders.BuildRequest(context=workspace, provenance=s.provenance)
    argv = builders.BuildKitBuilder(None).argv(request, Path("/x/iid"), Path("/x/m.json"))
    assert f"--provenance={flag}" in argv


@pytest.mark.parametrize("value", ["mode=medium", "maybe", "colour=blue"])
def test_provenance_refuses_what_buildx_would(workspace: Path, value: str) -> None:
    with pytest.raises(InputError) as err:
        settings(provenance=value)
    assert err.value.input_name == "provenance"


def test_sbom_reaches_buildx_and_is_off_by_default(workspace: Path) -> None:
    on = settings(sbom="true")
    gen = settings(sbom="generator=example.test/sbom:1")
    off = settings()
    argv = [builders.BuildKitBuilder(None).argv(
        builders.BuildRequest(context=workspace, sbom=s.sbom), Path("/i"), Path("/m"))
        for s in (on, gen, off)]
    assert "--sbom=true" in argv[0]
    assert "--sbom=generator=example.test/sbom:1" in argv[1]
    assert not any(a.startswith("--sbom") for a in argv[2])
    with pytest.raises(InputError) as err:
        settings(sbom="mode=max")
    assert err.value.input_name == "sbom"


@pytest.mark.parametrize(
    "spec",
    ["type=registry,ref=ghcr.io/o/app:cache,mode=max", "type=registry,ref=ghcr.io/o/a:c,mode=min",
     "type=local,dest=/tmp/cache", "type=inline", "ref=ghcr.io/o/app:cache"],
)
def test_cache_to_specs_buildx_can_export(workspace: Path, spec: str) -> None:
    assert settings(cache_to=spec).cache_to == (spec,)


@pytest.mark.parametrize(
    ("spec", "why"),
    [("type=registry", "needs ref="), ("type=local", "needs dest="),
     ("type=registry,ref=x/y:c,mode=all", "mode=min"), ("type=floppy", "not one of"),
     ("ghcr.io/o/app:cache", "has no type=")],
)
def test_cache_to_specs_refused_before_the_build(workspace: Path, spec: str, why: str) -> None:
    with pytest.raises(InputError) as err:
        settings(cache_to=spec)
    assert err.value.input_name == "cache-to" and why in str(err.value)


def test_local_cache_from_needs_src(workspace: Path) -> None:
    assert settings(cache_from="type=local,src=/tmp/c").cache_from == ("type=local,src=/tmp/c",)
    with pytest.raises(InputError, match="needs src="):
        settings(cache_from="type=local,dest=/tmp/c")


def test_gha_cache_gets_version_2_and_its_token_stays_in_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Untestable end to end in the bed (no GitHub cache service): the argv and env are."""
    s = settings(cache_from="type=gha", cache_to="type=gha,mode=max,scope=app")
    assert s.cache_from == ("type=gha,version=2",)
    assert s.cache_to == ("type=gha,mode=max,scope=app,version=2",)
    assert settings(cache_to="type=gha,version=1").cache_to == ("type=gha,version=1",)
    request = builders.BuildRequest(context=workspace, cache_from=s.cache_from,
                                    cache_to=s.cache_to)
    argv = builders.BuildKitBuilder(None).argv(request, Path("/i"), Path("/m"))
    assert argv[argv.index("--cache-to") + 1] == "type=gha,mode=max,scope=app,version=2"
    monkeypatch.setenv("ACTIONS_RUNTIME_TOKEN", "runtime-token-value")
    monkeypatch.setenv("ACTIONS_RESULTS_URL", "https://results-receiver.actions.example/")
    env = builders._cli_env(None, workspace)
    assert all(env[name] == os.environ[name] for name in
               ("ACTIONS_RUNTIME_TOKEN", "ACTIONS_RESULTS_URL"))
    assert "runtime-token-value" not in " ".join(argv)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"),
     ("linux/aarch64", "linux/arm64"), ("linux/arm64/v8", "linux/arm64"),
     ("linux/armhf", "linux/arm/v7"), ("Linux/ARM/v6", "linux/arm/v6")],
)
def test_platforms_are_normalised(workspace: Path, raw: str, normal: str) -> None:
    assert settings(platforms=raw).platforms == (normal,)


@pytest.mark.parametrize("raw", ["linux/amd46", "linxu/amd64", "linux", "amd64/linux/x/y"])
def test_unknown_platforms_are_refused(workspace: Path, raw: str) -> None:
    with pytest.raises(InputError) as err:
        settings(platforms=raw)
    assert err.value.input_name == "platforms"


def test_platforms_with_classic_builder_are_refused(workspace: Path) -> None:
    with pytest.raises(InputError, match="needs BuildKit"):
        settings(builder="classic", platforms="linux/amd64,linux/arm64")


def test_foreign_runs_are_found_per_stage() -> None:
    from gh_docker_publish.core.platform_runs import target_platform_runs, unrunnable

    cross = ("FROM --platform=$BUILDPLATFORM b AS build\nRUN make\n"
             "FROM scratch\nCOPY --from=build /out /out\n")
    assert target_platform_runs(cross) == []
    native = "FROM b AS base\nRUN apt-get update\nFROM base\nRUN make\n"
    assert target_platform_runs(native) == ["line 2 (stage base)", "line 4 (stage 1)"]
    unused = "FROM b AS tools\nRUN x\nFROM scratch\nCOPY a /a\n"
    assert target_platform_runs(unused) == []
    assert target_platform_runs(unused, target="tools") == ["line 2 (stage tools)"]
    assert unrunnable(["linux/amd64", "linux/arm64", "linux/386"],
                      ["linux/amd64", "linux/386"]) == ["linux/arm64"]


def test_runnable_platforms_read_binfmt_misc(tmp_path: Path) -> None:
    class Daemon:
        def version(self) -> dict[str, str]:
            return {"Os": "linux", "Arch": "amd64"}

    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    (tmp_path / "qemu-s390x").write_text("disabled\n")
    found = builders.runnable_platforms(Daemon(), binfmt_dir=tmp_path)
    assert found == ["linux/amd64", "linux/386", "linux/arm64"]
    with pytest.raises(BuildError) as err:
        builders.refuse_foreign_runs("FROM b\nRUN x\n", None, ["linux/s390x"], found)
    assert "docker/setup-qemu-action" in err.value.hint


def test_a_fresh_home_gets_the_same_buildx_node_id(tmp_path: Path) -> None:
    """Issue 13 B2: the runner's HOME is new every job; BuildKit reuses its copy of the
    context only for the same node ID, so it must not be random per job."""
    env = {"DOCKER_HOST": "unix:///run/docker.sock", "GITHUB_REPOSITORY": "o/app",
           "GITHUB_WORKSPACE": "/github/workspace"}
    ids = []
    for job in ("job1", "job2"):
        state = builders.buildx_state_dir({**env, "HOME": str(tmp_path / job)})
        ids.append((state / ".buildNodeID").read_text())
    assert ids[0] == ids[1] and len(ids[0]) == 32
    other = builders.buildx_state_dir({**env, "GITHUB_REPOSITORY": "o/other",
                                       "HOME": str(tmp_path / "job3")})
    assert (other / ".buildNodeID").read_text() != ids[0]
    kept = tmp_path / "job1" / ".cache" / "gh-docker-publish" / "buildx" / ".buildNodeID"
    kept.write_text("written-by-buildx")
    assert builders.buildx_state_dir({**env, "HOME": str(tmp_path / "job1")}) == kept.parent
    assert kept.read_text() == "written-by-buildx"  # an existing ID is left alone


# --- digests (issue 16) ----------------------------------------
ISSUE16_ENV = {"GITHUB_REPOSITORY": "octo-org/app"}
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def _issue16_settings(tmp_path: Path, **values: str) -> Settings:
    """Settings for issue 16's inputs (push-by-digest, mode merge), a Dockerfile in place."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return settings_from_values({"image": "app", "context": str(tmp_path), **values}, ISSUE16_ENV)


def test_digests_lines_are_digests_or_platform_claims(tmp_path: Path) -> None:
    settings = _issue16_settings(tmp_path, mode="merge", digests=f"{A}\nlinux/aarch64={B}\n")
    assert settings.digests == (PlatformDigest(A), PlatformDigest(B, "linux/arm64"))


@pytest.mark.parametrize(
    ("digests", "problem"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("sha256:abc", "not a manifest digest"),
        (f"{A.upper()}", "not a manifest digest"),
        (f"{A}\n{A}", "the same digest twice"),
        (f"linux/arm64={A}\nlinux/arm64={B}", "a second digest for linux/arm64"),
        (f"linux/sparc={A}", "unknown architecture"),
    ],
)
def test_bad_digests_name_the_input(tmp_path: Path, digests: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        _issue16_settings(tmp_path, mode="merge", digests=digests)
    assert info.value.input_name == "digests"


@pytest.mark.parametrize("ref", [
    "r.test/o/app:v1",  # the run's own tag
    "r.test/o/app",  # every tag of the repository
    "r.test/o/app:x-gh-docker-publish-build-0123456789ab",
    "gh-docker-publish-build-0123456789ab",  # no repository
])
def test_post_step_removes_only_build_names(ref: str) -> None:
    """Refused before any daemon is contacted (none answers at this address)."""
    message = post_step.remove_build_name(ref, "unix:///nonexistent/docker.sock")
    assert message == f"{ref} is not a build name of ours; left alone"


def test_post_step_says_so_when_the_daemon_is_gone(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"STATE_build_name": "r.test/o/app:gh-docker-publish-build-1-1.0123456789ab",
           "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    assert post_step.run_post(env) == 0
    assert "could not remove r.test/o/app:gh-docker-publish-build-1-1.0123456789ab" in (
        capsys.readouterr().out)


@pytest.mark.parametrize(("failure", "expected"), [
    ('The build failed: ERROR: failed to build: failed to solve: image "r.test/o/a:v1": '
     "already exists", "r.test/o/a:v1"),
    ('ERROR: failed to solve: image "r.test/other:v1": already exists', ""),  # not ours
    ("ERROR: failed to push r.test/o/a:v1: 503 Service Unavailable", ""),
])
def test_a_name_a_concurrent_export_created_is_exported_again(failure: str, expected: str) -> None:
    assert builders._contested_name(failure, ["r.test/o/a:v1", "r.test/o/a:v2"]) == expected
