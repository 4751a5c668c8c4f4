"""Settings from INPUT_* (runner spellings) and from CLI values: defaults and every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from gh_docker_publish.core.settings import (
    INPUT_NAMES,
    Secret,
    Settings,
    load_settings,
    parse_bool,
    settings_from_values,
    split_list,
    split_tags,
)
from gh_docker_publish.errors import InputError

# What the runner sets for a docker action on github.com (captured shape, trimmed).
RUNNER_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "Octo-Org/Hello-World",
    "GITHUB_REPOSITORY_OWNER": "Octo-Org",
    "GITHUB_SERVER_URL": "https://github.com",
}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checked-out repository with a Dockerfile at its root; the cwd, like on the runner."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile.prod").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def inputs(**values: str) -> dict[str, str]:
    """INPUT_* as the runner passes them: every declared input present, hyphens kept."""
    env = dict(RUNNER_ENV)
    for name in INPUT_NAMES:
        env[f"INPUT_{name.upper()}"] = ""
    for key, value in values.items():
        env[f"INPUT_{key.replace('_', '-').upper()}"] = value
    return env


def test_defaults_from_the_run(workspace: Path) -> None:
    settings = load_settings(inputs(github_token="ghs_abc"))
    assert settings.image == "hello-world"
    assert settings.registry == "auto"
    assert settings.owner == "octo-org"
    assert settings.repository == "octo-org/hello-world"
    assert settings.context == "."
    assert settings.file == "Dockerfile"
    assert settings.tags == ()
    assert (settings.pull, settings.no_cache, settings.push, settings.auth) == (
        False, False, "auto", "auto"
    )
    assert settings.github_token.reveal() == "ghs_abc"
    assert not settings.token
    assert any("'Octo-Org/Hello-World' lowercased" in n for n in settings.notices)


def test_every_input_read(workspace: Path) -> None:
    settings = load_settings(
        inputs(
            image="Team/App",
            registry="GHCR.IO",
            owner="octocat",
            repository="octocat/tools",
            tags="1.2.3, latest\ntype=semver,pattern={{version}}\n# a comment\n",
            context="app",
            file="app/Dockerfile.prod",
            build_args="VERSION=1.2.3\nFLAGS=a,b\r\nHASH=x#y",
            labels="org.opencontainers.image.title=Hello",
            target="runtime",
            pull="true",
            no_cache="TRUE",
            push="false",
            github_token="ghs_1",
            token="ghp_2",
            username="octocat",
            auth="token",
        )
    )
    assert settings.image == "team/app"
    assert settings.registry == "ghcr.io"
    assert settings.owner == "octocat"
    assert settings.repository == "octocat/tools"
    assert settings.tags == ("1.2.3", "latest", "type=semver,pattern={{version}}")
    assert settings.context == "app"
    assert settings.file == "app/Dockerfile.prod"
    assert settings.build_args == (("VERSION", "1.2.3"), ("FLAGS", "a,b"), ("HASH", "x#y"))
    assert settings.labels == (("org.opencontainers.image.title", "Hello"),)
    assert settings.target == "runtime"
    assert settings.pull and settings.no_cache
    assert settings.push == "false"
    assert settings.auth == "token"
    assert settings.username == "octocat"
    assert settings.secrets() == ["ghs_1", "ghp_2"]
    assert any("image 'Team/App' lowercased to 'team/app'" in n for n in settings.notices)


def test_underscore_spelling_also_read(workspace: Path) -> None:
    env = {**RUNNER_ENV, "INPUT_NO_CACHE": "true", "INPUT_BUILD_ARGS": "A=1"}
    settings = load_settings(env)
    assert settings.no_cache
    assert settings.build_args == (("A", "1"),)


def test_cli_values_and_env_token(workspace: Path) -> None:
    env = {"GITHUB_TOKEN": "ghs_env"}
    settings = settings_from_values({"repository": "Octo/Repo", "image": "x"}, env)
    assert settings.owner == "octo"  # the given repository's owner
    assert settings.github_token.reveal() == "ghs_env"


def test_owner_defaults_to_workflow_owner(workspace: Path) -> None:
    env = {"GITHUB_REPOSITORY": "octo-org/hello", "GITHUB_REPOSITORY_OWNER": "octo-org"}
    assert settings_from_values({}, env).owner == "octo-org"


def test_full_reference_image(workspace: Path) -> None:
    settings = settings_from_values({"image": "GHCR.io/Octo-Org/Hello"}, RUNNER_ENV)
    assert settings.image == "ghcr.io/octo-org/hello"


def test_unknown_value_name_is_a_bug(workspace: Path) -> None:
    with pytest.raises(ValueError, match="build_args"):
        settings_from_values({"build_args": "A=1"}, RUNNER_ENV)


# Each bad input: (inputs, input named in the message, fragment).
BAD = [
    ({"image": "hello world"}, "image", "not a valid image name"),
    ({"image": "héllo"}, "image", "not a valid image name"),
    ({"image": "-hello"}, "image", "component '-hello'"),
    ({"image": "hello:1.0"}, "image", "includes the tag '1.0'"),
    ({"image": "ghcr.io/o/hello:1.0"}, "image", "includes the tag"),
    ({"image": "hello@sha256:" + "a" * 64}, "image", "cannot be pushed by digest"),
    ({"image": "sha256:" + "a" * 64}, "image", "IMAGE:VERSION"),
    ({"image": "https://ghcr.io/o/hello"}, "image", "is a URL"),
    ({"tags": "sha256:" + "b" * 64}, "tags", "cannot be pushed by digest"),
    ({"tags": "@sha256:" + "b" * 64}, "tags", "IMAGE:VERSION"),
    # Tags that only become wrong once rendered (.hidden, 129 characters) fail when the plan
    # is made, still before any network call: tests/unit/test_metadata.py.
    # A full reference is split into image and tag (build-push-action's tags), but it must
    # name an image the run publishes (tests/unit/test_images.py).
    ({"image": "hello", "tags": "ghcr.io/o/app:v1"}, "tags", "not in 'image' (hello)"),
    ({"tags": "type=raw,value=x,priority=first"}, "tags", "not a whole number"),
    ({"flavor": "latest=yes"}, "flavor", "latest='yes' is not auto, true or false"),
    ({"flavor": "prefix"}, "flavor", "Entry 'prefix' has no '='"),
    ({"flavor": "onlatest=true"}, "flavor", "after prefix= or suffix="),
    ({"flavor": "tag=x"}, "flavor", "Unknown entry 'tag'"),
    ({"annotations": "org.opencontainers.image.title: App"}, "annotations", "'key: value'"),
    ({"annotations": "x={{brnach}}"}, "annotations", "Unknown expression '{{brnach}}'"),
    ({"sep-tags": "x"}, "sep-tags", "could be part of a tag"),
    ({"sep-labels": "=="}, "sep-labels", "holds '='"),
    ({"sep-annotations": ";="}, "sep-annotations", "holds '='"),
    ({"context": "missing"}, "context", "'missing' is not a directory"),
    ({"context": "Dockerfile"}, "context", "not a directory"),
    ({"file": "nope/Dockerfile"}, "file", "no Dockerfile at 'nope/Dockerfile'"),
    ({"context": "app"}, "file", "no Dockerfile at 'app/Dockerfile'"),
    ({"build-args": "VERSION"}, "build-args", "'VERSION' is not KEY=VALUE"),
    ({"build-args": "=1"}, "build-args", "not KEY=VALUE"),
    # A line without '=' is ignored (metadata-action); these two cannot be meant that way.
    ({"labels": "org.opencontainers.image.title: Hello"}, "labels", "'key: value' pair"),
    ({"labels": "=Hello"}, "labels", "No key before '='"),
    ({"auth": "pat"}, "auth", "'pat' is not one of auto, github-token, token"),
    ({"pull": "yes"}, "pull", "'yes' is not a boolean"),
    ({"no-cache": "1"}, "no-cache", "YAML 1.2"),
    ({"no-cache": "tRuE"}, "no-cache", "not a boolean"),
    ({"push": "maybe"}, "push", "'maybe' is not true, false or auto"),
    ({"owner": "octo/org"}, "owner", "not a GitHub user or organization name"),
    ({"owner": "-octo"}, "owner", "not a GitHub user"),
    ({"repository": "hello-world"}, "repository", "is not of the form OWNER/REPO"),
    ({"repository": "a/b/c"}, "repository", "OWNER/REPO"),
    ({"registry": "https://ghcr.io"}, "registry", "is a URL"),
    ({"registry": "ghcr io"}, "registry", "not a registry host"),
]


@pytest.mark.parametrize(("values", "input_name", "fragment"), BAD)
def test_bad_inputs_name_the_input(
    workspace: Path, values: dict[str, str], input_name: str, fragment: str
) -> None:
    with pytest.raises(InputError) as caught:
        load_settings(inputs(**{k.replace("-", "_"): v for k, v in values.items()}))
    assert caught.value.input_name == input_name
    assert str(caught.value).startswith(f"Input '{input_name}':")
    assert fragment in str(caught.value)


def test_default_image_from_an_unusable_repository_name(workspace: Path) -> None:
    env = {"GITHUB_REPOSITORY": "octo-org/.github"}
    with pytest.raises(InputError, match="Input 'image': is not set and the repository name"):
        settings_from_values({}, env)


def test_no_repository_outside_actions(workspace: Path) -> None:
    with pytest.raises(InputError, match="Input 'repository': is not set"):
        settings_from_values({}, {})


def test_mixed_case_owner_and_repository_are_lowercased_not_rejected(workspace: Path) -> None:
    settings = settings_from_values({"owner": "Octo-Org", "repository": "Octo-Org/Hello"}, {})
    assert (settings.owner, settings.repository) == ("octo-org", "octo-org/hello")
    assert len(settings.notices) == 2


# --- lists and booleans ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "commas", "expected"),
    [
        ("", True, ()),
        ("a,b\nc", True, ("a", "b", "c")),
        ("a\r\nb\r\n", True, ("a", "b")),
        ("  a , b  ", True, ("a", "b")),
        ('"a,b",c', True, ("a,b", "c")),
        ("'quoted'", True, ("quoted",)),
        ("# comment\na#b\n  # indented comment\n\n", True, ("a#b",)),
        ("K=a,b", False, ("K=a,b",)),
        ('"K=v"', False, ("K=v",)),
        ("a,,b", True, ("a", "b")),
    ],
)
def test_split_list(raw: str, commas: bool, expected: tuple[str, ...]) -> None:
    assert split_list(raw, commas=commas) == expected


def test_split_tags_keeps_rules_whole() -> None:
    raw = "type=ref,event=branch\n1.0,latest\ntype=raw,value=x"
    assert split_tags(raw) == ("type=ref,event=branch", "1.0", "latest", "type=raw,value=x")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False),
     ("FALSE", False), ("", False)],
)
def test_parse_bool_core_schema(raw: str, expected: bool) -> None:
    assert parse_bool(raw, "pull") is expected


@pytest.mark.parametrize("raw", ["yes", "no", "on", "1", "0", "tRUE", "y"])
def test_parse_bool_rejects_the_rest(raw: str) -> None:
    with pytest.raises(InputError, match="Input 'pull'"):
        parse_bool(raw, "pull")


# --- secrets -----------------------------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    secret = Secret("ghp_verysecret")
    assert "ghp_verysecret" not in repr(secret)
    assert "ghp_verysecret" not in str(secret)
    assert "ghp_verysecret" not in f"{secret}"
    assert secret.reveal() == "ghp_verysecret"
    assert secret == Secret("ghp_verysecret")
    assert not Secret("")
    with pytest.raises(AttributeError):
        secret._value = "x"


def test_settings_repr_hides_tokens(workspace: Path) -> None:
    settings = load_settings(inputs(github_token="ghs_hidden1", token="ghp_hidden2"))
    text = repr(settings)
    assert "ghs_hidden1" not in text and "ghp_hidden2" not in text
    assert "Secret('***')" in text


def test_settings_secrets_skip_empty() -> None:
    assert Settings(image="x", token=Secret("ghp_1")).secrets() == ["ghp_1"]
    assert Settings(image="x").secrets() == []


def test_action_yml_defaults_give_the_same_settings_as_no_inputs() -> None:
    """The runner passes action.yml's defaults as INPUT_*; the CLI passes nothing. Both must
    mean the same run (the defaults live in the code; action.yml only repeats them)."""
    import dataclasses

    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "action.yml").read_text())
    declared = {
        name: str(field.get("default", ""))
        for name, field in spec["inputs"].items()
        if name != "github-token"  # `${{ github.token }}`: the runner evaluates it
    }
    env = {"GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org"}
    context = {"context": str(Path(__file__).resolve().parents[2] / "examples" / "hello")}
    from_runner = settings_from_values({**declared, **context}, env)
    from_cli = settings_from_values(context, env)
    differs = [
        f.name for f in dataclasses.fields(from_cli)
        if getattr(from_runner, f.name) != getattr(from_cli, f.name)
    ]
    assert differs == []


# --- settings counts ----------------------------------------
# keep-latest takes ASCII digits only: str.isdigit() also accepts superscripts and other
# digit characters that int() refuses, which ended the run with a ValueError traceback
# instead of an InputError naming the input.

ENV = {"GITHUB_REPOSITORY": "octo-org/app"}


@pytest.mark.parametrize("raw", ["\u00b2", "1\u00b2", "-1", "1.5", "ten"])
def test_keep_latest_that_is_no_whole_number(raw: str) -> None:
    with pytest.raises(InputError) as info:
        settings_from_values({"mode": "cleanup", "keep-latest": raw}, ENV)
    assert info.value.input_name == "keep-latest"


def test_keep_latest_digits() -> None:
    settings = settings_from_values({"mode": "cleanup", "keep-latest": "10"}, ENV)
    assert settings.keep_latest == 10


# --- push-by-digest (issue 16) ----------------------------------------
A = "sha256:" + "a" * 64


def _issue16_settings(tmp_path: Path, **values: str) -> Settings:
    """Settings for issue 16's inputs (push-by-digest, mode merge), a Dockerfile in place."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return settings_from_values({"image": "app", "context": str(tmp_path), **values}, ENV)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"platforms": "linux/amd64,linux/arm64"}, "one platform per job"),
        ({"builder": "classic"}, "needs BuildKit"),
        ({"mode": "merge", "digests": A}, "not mode merge"),
        ({"push-by-digest": "yes"}, "true"),
    ],
)
def test_push_by_digest_is_one_platform_with_buildkit(
    tmp_path: Path, values: dict[str, str], problem: str
) -> None:
    with pytest.raises(InputError, match=problem) as info:
        _issue16_settings(tmp_path, **{"push-by-digest": "true", **values})
    assert info.value.input_name == "push-by-digest"
