"""build-push-action's pass-through inputs (issue 14 item 3): each becomes its buildx flag;
a bad value, or one the classic builder cannot do, is refused before any network call,
naming the input and the fix."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from gh_docker_publish.core.build_inputs import INLINE_SECRET_ENV
from gh_docker_publish.core.settings import Settings, raw_secrets, settings_from_values
from gh_docker_publish.edges import builders
from gh_docker_publish.errors import BuildError, InputError
from tests.unit.test_build_inputs import settings, workspace  # the same fixtures

__all__ = ["workspace"]  # a fixture, used by name


def buildx_argv(s: Settings, workspace: Path) -> list[str]:
    request = builders.BuildRequest(context=workspace, tags=["x.test/o/app:1"], flags=s.buildx)
    return builders.BuildKitBuilder(None, buildx="buildx").argv(
        request, workspace / "iid", workspace / "meta.json"
    )


def test_each_input_becomes_its_buildx_flag(workspace: Path) -> None:
    s = settings(
        push="false",
        outputs="type=local,dest=out",
        build_contexts="alpine=docker-image://alpine:3\nsrc=./src",
        ssh="default\ngithub=/home/runner/.ssh/id",
        network="host",
        add_hosts="docker:10.180.0.1,db=10.0.0.2",
        shm_size="2g",
        ulimit="nofile=1024:2048",
        allow="network.host",
        no_cache_filters="deps,test",
    )
    argv = buildx_argv(s, workspace)
    pairs = list(itertools.pairwise(argv))
    for pair in [
        ("--output", "type=local,dest=out"),
        ("--build-context", "alpine=docker-image://alpine:3"),
        ("--build-context", "src=./src"),
        ("--ssh", "default"),
        ("--ssh", "github=/home/runner/.ssh/id"),
        ("--network", "host"),
        ("--add-host", "docker:10.180.0.1"),
        ("--add-host", "db:10.0.0.2"),
        ("--shm-size", str(2 * 1024**3)),
        ("--ulimit", "nofile=1024:2048"),
        ("--allow", "network.host"),
        ("--no-cache-filter", "deps"),
        ("--no-cache-filter", "test"),
    ]:
        assert pair in pairs, pair
    assert "--load" not in argv  # an output of its own replaces the daemon
    assert argv[-1] == str(workspace)


def test_defaults_pass_nothing_and_load(workspace: Path) -> None:
    argv = buildx_argv(settings(), workspace)
    assert "--load" in argv
    assert not {"--output", "--annotation", "--ssh", "--network", "--call"} & set(argv)


def test_call_check_builds_nothing_and_does_not_push(workspace: Path) -> None:
    s = settings(call="check")
    assert s.push == "false" and not s.buildx.builds_image
    argv = buildx_argv(s, workspace)
    assert "--call=check" in argv and "--load" not in argv


def test_classic_builder_takes_network_add_hosts_shm_size(workspace: Path) -> None:
    s = settings(builder="classic", network="host", add_hosts="db:10.0.0.2", shm_size="64m")
    assert s.buildx.classic_kwargs() == {
        "network_mode": "host", "extra_hosts": {"db": "10.0.0.2"}, "shmsize": 64 * 1024**2,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("outputs", "type=local,dest=out"),
        ("annotations", "org.opencontainers.image.description=x"),
        ("build_contexts", "a=./a"),
        ("ssh", "default"),
        ("ulimit", "nofile=1024"),
        ("allow", "network.host"),
        ("no_cache_filters", "deps"),
        ("call", "check"),
    ],
)
def test_classic_refuses_what_it_cannot_do(workspace: Path, name: str, value: str) -> None:
    with pytest.raises(InputError) as err:
        settings(builder="classic", push="false", **{name: value})
    assert err.value.input_name == name.replace("_", "-")
    assert "needs BuildKit" in str(err.value) and "builder: auto or buildkit" in str(err.value)


def test_classic_fallback_refuses_them_at_build_time(workspace: Path) -> None:
    s = settings(ssh="default")
    request = builders.BuildRequest(context=workspace, flags=s.buildx)
    with pytest.raises(BuildError, match="cannot honour ssh"):
        builders.ClassicBuilder(client=None).build(request, print)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("load", "yes", "not a boolean"),
        ("outputs", "dest=out", "has no type="),
        ("build_contexts", "alpine", "is not NAME=VALUE"),
        ("build_contexts", "=./x", "is not NAME=VALUE"),
        ("ssh", "github=", "is not NAME=VALUE"),
        ("network", "bad mode!", "is not a network mode"),
        ("add_hosts", "docker", "is not host:ip"),
        ("add_hosts", "docker:not-an-ip", "is not host:ip"),
        ("shm_size", "lots", "is not a size"),
        ("shm_size", "0", "is not a size"),
        ("ulimit", "nofile", "is not NAME=SOFT[:HARD]"),
        ("ulimit", "files=10", "known name"),
        ("allow", "root", "is not one of network.host, security.insecure"),
        ("no_cache_filters", "bad stage!", "is not a stage name"),
        ("call", "lint", "is not one of build, check, outline, targets"),
        ("secret_files", "npmrc", "not KEY=VALUE"),
        ("secret_files", "npmrc=missing.txt", "no file at 'missing.txt'"),
        ("secret_envs", "tok=UNSET_VAR", "UNSET_VAR is not set"),
        ("secret_envs", "tok", "not KEY=VALUE"),
    ],
)
def test_bad_values_name_the_input(workspace: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        settings(**{name: value})
    assert err.value.input_name == name.replace("_", "-")
    assert fragment in str(err.value)
    assert err.value.hint


@pytest.mark.parametrize("name", ["outputs", "load"])
def test_not_loaded_image_cannot_be_pushed(workspace: Path, name: str) -> None:
    value = "type=local,dest=out" if name == "outputs" else "false"
    with pytest.raises(InputError) as err:
        settings(**{name: value})
    assert err.value.input_name == name and "push: false" in str(err.value)
    assert settings(push="false", **{name: value}).push == "false"


def test_push_true_with_call_check_is_refused(workspace: Path) -> None:
    with pytest.raises(InputError) as err:
        settings(push="true", call="check")
    assert err.value.input_name == "push" and "call: check" in str(err.value)


def test_build_push_action_secret_forms(workspace: Path) -> None:
    s = settings(
        secrets="GIT_AUTH_TOKEN=abc,def=\nid=npm,src=npmrc",
        secret_files="rc=npmrc",
        secret_envs="tok=BUILD_TOKEN",
    )
    by_id = {secret.id: secret for secret in s.build_secrets}
    assert by_id["GIT_AUTH_TOKEN"].value == "abc,def="  # the whole value, commas and all
    assert by_id["GIT_AUTH_TOKEN"].env.startswith(INLINE_SECRET_ENV)
    assert by_id["rc"].src == str(workspace / "npmrc")
    assert by_id["tok"].value == "s3cr3t-value"
    assert "abc,def=" in s.secrets()  # masked with the tokens
    argv = buildx_argv(
        settings(secrets="GIT_AUTH_TOKEN=abc,def="), workspace
    ) + [spec.buildx_spec() for spec in s.build_secrets]
    assert not any("abc,def" in arg for arg in argv)  # the value reaches the env only


def test_inline_secret_values_are_masked_before_validation() -> None:
    env = {"INPUT_SECRETS": "GIT_AUTH_TOKEN=tok-123\nbroken line", "INPUT_TOKEN": "pat-456"}
    assert set(raw_secrets(env)) == {"tok-123", "pat-456"}


def test_a_secret_id_given_twice_across_inputs(workspace: Path) -> None:
    with pytest.raises(InputError, match="given twice"):
        settings(secrets="tok=abc", secret_envs="tok=BUILD_TOKEN")


def test_a_bad_inline_secret_line_never_shows_its_value(workspace: Path) -> None:
    with pytest.raises(InputError) as err:
        settings(secrets="ghp_thisisatoken")
    assert "ghp_thisisatoken" not in str(err.value)


def test_annotations_with_their_own_level(workspace: Path) -> None:
    from datetime import UTC, datetime

    from gh_docker_publish.core.context import load_context
    from gh_docker_publish.core.metadata import compute_metadata

    s = settings(annotations="index:org.example.a=1\norg.example.b=2")
    env = {"GITHUB_REPOSITORY": "octo-org/app", "GITHUB_EVENT_NAME": "push",
           "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "a" * 40,
           "DOCKER_METADATA_ANNOTATIONS_LEVELS": "manifest,index"}
    s2 = settings_from_values({"annotations": "index:org.example.a=1\norg.example.b=2"}, env)
    got = compute_metadata(s2, load_context(env), now=datetime(2024, 1, 1, tzinfo=UTC))
    assert "index:org.example.a=1" in got.annotations
    assert "manifest:index:org.example.a=1" not in got.annotations
    assert got.annotations.count("index:org.example.a=1") == 1
    assert {"manifest:org.example.b=2", "index:org.example.b=2"} <= set(got.annotations)
    assert s.buildx.apply_annotations


def test_a_buildx_without_the_flag_names_the_input() -> None:
    """A buildx older than 0.15 has no --call: its "unknown flag" names our input; an
    engine whose Dockerfile frontend cannot answer --call says which input is too new."""
    flags = settings(call="check").buildx
    hint = builders._flag_hint("ERROR: unknown flag: --call", flags)
    assert "'call' needs a newer buildx" in hint and "0.15" in hint
    assert "'no-cache-filters'" in builders._flag_hint("unknown flag: --no-cache-filter", flags)
    assert builders._flag_hint("ERROR: failed to solve", flags) == ""
    old_frontend = ("ERROR: failed to build: failed to solve: rpc error: code = Unknown desc = "
                    "failed to solve with frontend dockerfile.v0: unsupported request "
                    "frontend.lint")  # Engine 20.10's BuildKit, asked by buildx 0.29
    assert "too old for 'call: check'" in builders._flag_hint(old_frontend, flags)
    assert builders._flag_hint(old_frontend, replace(flags, call="build")) == ""
