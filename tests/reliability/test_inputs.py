"""Hostile and bad inputs (research/reliability-anchors.md §3B): each is refused before any
network call, by an InputError that names the input; injection strings never become
workflow commands or extra outputs. Pure: settings + plan + report, with every socket
connect forbidden, plus a few runs of the CLI as a subprocess."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.context import load_context
from gh_docker_publish.core.settings import settings_from_values, split_list, split_tags
from gh_docker_publish.edges import report
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import InputError, PublishError
from gh_docker_publish.flows import publish
from tests.harness.runner import parse_env_file

ROOT = Path(__file__).resolve().parents[2]
HELLO = str(ROOT / "examples" / "hello")
H64 = "f" * 64
ENV = {
    "GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org",
    "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main",
    "GITHUB_SHA": "4f2c1b0e9d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
    "GITHUB_SERVER_URL": "https://github.com",
}
INJECTIONS = ["$(id)", "`id`", '"; id #', "\n::set-output name=digest::x", "\n::add-mask::",
              "%0A", "ghadelimiter_1b9e2c5e-0f3a-4c7d-9d55-2f3b1e0c9a11"]

BAD: list[tuple[str, str]] = [
    # image references (distribution/reference TestReferenceParse, docker-py test_match_tag)
    ("image", "aa/asdf$$^/aa"), ("image", ":justtag"), ("image", "@sha256:" + H64),
    ("image", "repo@sha256:" + "f" * 34), ("image", "repo@sha512:" + "f" * 128),
    ("image", "[2001:db8::1]:5000"), ("image", "[fe80::1%eth0]:5000/repo"),
    ("image", "domain/" + "a" * 256), ("image", "hello:tag"), ("image", "hello world"),
    ("image", "-hello"), ("image", "hello/"), ("image", "a//b"),
    # tags
    # (a tag with characters a tag cannot have is sanitized, as metadata-action does:
    # test_bad_tag_characters_never_reach_a_tag below)
    ("tags", "t" * 129), ("tags", ".lead"), ("tags", "-lead"), ("tags", "sha256:" + H64),
    ("tags", "type=bogus"), ("tags", "type=semver"),
    # full references are split into image and tag (build-push-action), but every image
    # gets every tag, and a reference must name an image the run publishes
    ("tags", "ghcr.io/o/a:v1,ghcr.io/o/b:v2"),
    ("tags", "type=raw,value=x,priority=z"), ("tags", "type=raw,value={{brnach}}"),
    ("flavor", "latest=yes"), ("flavor", "bogus"), ("flavor", "prefix=-"),
    ("annotations", "=x"), ("sep-tags", "x"), ("sep-labels", "="),
    # registries
    ("registry", "https://ghcr.io/"), ("registry", "ghcr.io/path"), ("registry", "host name"),
    ("registry", "ghcr.io:99999999"), ("registry", "[::1"),
    # owner / repository
    ("owner", "octo/org"), ("owner", "-octo"), ("owner", "a b"), ("owner", "octo\norg"),
    ("repository", "noslash"), ("repository", "a/b/c"), ("repository", "o/a b"),
    # context and Dockerfile
    ("context", "/nonexistent/dir"), ("context", HELLO + "/Dockerfile"),
    ("file", "/nonexistent/Dockerfile"), ("file", str(ROOT / "examples")),
    # KEY=VALUE lists
    ("build-args", "=value"), ("build-args", "NOEQUALS"), ("build-args", "A=1\n=2"),
    ("build-args", "A=1\r\nNOEQUALS"), ("labels", "=x"), ("labels", "key: value"),
    # booleans (getBooleanInput accepts true|True|TRUE|false|False|FALSE only) and enums
    ("pull", "yes"), ("pull", "1"), ("no-cache", "on"), ("push", "yes"), ("push", "maybe"),
    ("auth", "pat"), ("deadline", "-1"), ("deadline", "soon"), ("deadline", "inf"),
    ("deadline", "nan"), ("mode", "publish;id"), ("platforms", "linux/amd64;id"),
    # several images and registry-auth (login-action's YAML)
    ("images", "name=ghcr.io/o/app,enable=maybe"), ("images", "ghcr.io/o/app:1"),
    ("images", "name=a,enable=false"), ("registry-auth", "registry: [x"),
    ("registry-auth", "- registry: r.example.com\n  username: u"),
    # build-push-action's pass-through inputs
    ("load", "yes"), ("outputs", "dest=out"), ("build-contexts", "alpine"), ("ssh", "id="),
    ("network", "$(id)"), ("add-hosts", "docker"), ("shm-size", "lots"), ("ulimit", "x=1"),
    ("allow", "root"), ("no-cache-filters", "a;id"), ("call", "lint"),
    ("secret-files", "npmrc"), ("secret-envs", "tok=UNSET_VARIABLE_X"),
]
# Injection strings in every text input that a bad character can reach.
BAD += [(name, value) for name in ("image", "tags", "registry", "owner", "repository",
                                   "pull", "push", "auth", "deadline")
        for value in ("$(id)", "`id`", "x\n::set-output name=digest::x" if name != "tags"
                      else "::set-output name=digest::x", "x%0Ay")
        if (name, value) != ("tags", "x%0Ay")]  # a valid tag once sanitized: below


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connect() during these tests is a failure: refusals come before the network."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network call to {address} before the input was refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield


def _plan(values: dict[str, str]) -> publish.Plan:
    settings = settings_from_values({"context": HELLO, **values}, ENV)
    return publish.plan(settings, load_context(ENV), datetime.now(UTC))


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}"[:60] for n, v in BAD])
def test_bad_input_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(InputError) as failure:
        _plan({name: value})
    assert failure.value.input_name == name
    assert f"Input '{name}'" in str(failure.value)


#: mode merge's ``digests`` (issue 16): empty, malformed, twice, injection strings.
BAD_DIGESTS = ["", "\n", "sha256:" + "f" * 63, "sha256:" + "F" * 64, "sha512:" + H64,
               "@sha256:" + H64, f"sha256:{H64}\nsha256:{H64}",
               f"linux/arm64=sha256:{H64}\nlinux/arm64=sha256:{'e' * 64}",
               f"linux/zz80=sha256:{H64}", "$(id)", "x\n::set-output name=digest::x"]


@pytest.mark.parametrize("value", BAD_DIGESTS, ids=[repr(v)[:40] for v in BAD_DIGESTS])
def test_bad_digests_are_refused_naming_them(value: str) -> None:
    with pytest.raises(InputError) as failure:
        _plan({"mode": "merge", "digests": value})
    assert failure.value.input_name == "digests"
    assert "Input 'digests'" in str(failure.value)


@pytest.mark.parametrize(
    "values",
    [{"push-by-digest": "yes"}, {"push-by-digest": "true", "platforms": "linux/amd64,linux/arm64"},
     {"push-by-digest": "true", "builder": "classic"},
     {"push-by-digest": "true", "mode": "merge", "digests": "sha256:" + H64}],
)
def test_bad_push_by_digest_is_refused_naming_it(values: dict[str, str]) -> None:
    with pytest.raises(InputError) as failure:
        _plan(values)
    assert failure.value.input_name == "push-by-digest"


@pytest.mark.parametrize(
    ("value", "tag"),
    [("feature/x", "feature-x"), ("v1+build", "v1-build"), ("v1\u2024", "v1-"),
     ("a;id", "a-id"), ("x%0Ay", "x-0Ay"), ("a b\tc", "a-b-c")],
)
def test_bad_tag_characters_never_reach_a_tag(value: str, tag: str) -> None:
    """metadata-action's sanitizing: each run of characters a tag cannot have becomes '-'."""
    assert _plan({"tags": value}).tags == (tag,)


def test_a_labels_line_without_equals_is_ignored() -> None:
    settings = settings_from_values({"context": HELLO, "labels": "novalue\nA=1"}, ENV)
    assert settings.labels == (("A", "1"),)
    assert any("'novalue' has no '='" in note for note in settings.notices)


def test_there_are_at_least_sixty_bad_inputs() -> None:
    assert len(BAD) >= 60


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest.mark.parametrize("name", ["build-args", "labels"])
def test_injection_in_values_stays_a_literal_value(name: str, injection: str) -> None:
    """KEY=VALUE values may hold anything; they reach the daemon as data, never a shell."""
    raw = f"KEY=before{injection}after"
    try:
        settings = settings_from_values({"context": HELLO, name: raw}, ENV)
    except InputError as refused:  # a smuggled second line that is not KEY=VALUE
        assert refused.input_name == name
        return
    pairs = dict(settings.build_args if name == "build-args" else settings.labels)
    first_line = raw.replace("\r\n", "\n").split("\n")[0].partition("=")[2]
    assert pairs["KEY"] == first_line.strip() or pairs["KEY"] == first_line


@pytest.mark.parametrize("injection", INJECTIONS)
def test_injection_cannot_forge_outputs(injection: str, tmp_path: Path) -> None:
    """Whatever a value holds, GITHUB_OUTPUT parses back to exactly the declared outputs."""
    out = tmp_path / "output"
    out.touch()
    console = Console({"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(out)}, stream=io.StringIO())
    result = report.PublishResult(
        image=f"ghcr.io/octo-org/app{injection}", registry="ghcr.io",
        tags=(f"v1{injection}",), refs=(f"ghcr.io/octo-org/app:v1{injection}",),
        labels={"x": injection}, username=f"octocat{injection}",
    )
    try:
        report.write(result, console)
    except Exception as exc:  # refusing the delimiter is the other correct answer
        assert "delimiter" in str(exc)
        return
    parsed = dict(parse_env_file(out.read_text()))
    assert set(parsed) == set(report.OUTPUT_NAMES)
    assert parsed["digest"] == ""


@pytest.mark.parametrize("line", ["::error::pwn", "::add-mask::x", "::set-output name=digest::e",
                                  "::stop-commands::abc", "::abc::", "##[error]pwn",
                                  "::set-env name=A::b", "::add-path::/evil", "::endgroup::"])
def test_workflow_commands_in_build_output_are_fenced(line: str) -> None:
    """Inside Console.stop_commands the runner ignores commands until our random token."""
    from tests.harness.runner import CommandProcessor, SecretMasker

    stream = io.StringIO()
    console = Console({"GITHUB_ACTIONS": "true"}, stream=stream)
    with console.stop_commands() as token:
        console.info(line)
    console.warning("after")
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"::stop-commands::{token}" and lines[-2] == f"::{token}::"
    assert token not in line and len(token) >= 32
    processor = CommandProcessor(SecretMasker())
    for text in lines:
        processor.feed(text)
    kinds = [(a.level, a.message) for a in processor.annotations]
    assert kinds == [("warning", "after")], kinds
    assert not processor.outputs and not processor.env and not processor.path
    assert line in processor.log  # shown as text, not obeyed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\r\nb", ("a", "b")), ("a,b", ("a", "b")), ('"a,b"', ("a,b",)), ("a\n\nb", ("a", "b")),
        ("a,b,", ("a", "b")), ("# comment\na", ("a",)), ("foo=bar#baz", ("foo=bar#baz",)),
        ("'quoted'", ("quoted",)), (" a \r\n b ", ("a", "b")),
    ],
)
def test_list_inputs_parse_like_getinputlist(raw: str, expected: tuple[str, ...]) -> None:
    assert split_list(raw) == expected


def test_crlf_and_hash_in_key_value_lists() -> None:
    settings = settings_from_values(
        {"context": HELLO, "build-args": "A=1,2,3\r\nFOO=bar#baz\r\nEMPTY=\r\nEQ=a=b"}, ENV
    )
    assert dict(settings.build_args) == {"A": "1,2,3", "FOO": "bar#baz", "EMPTY": "", "EQ": "a=b"}
    assert split_tags("v1\r\nv2,v3") == ("v1", "v2", "v3")


@pytest.mark.parametrize(("flag", "value"), [("--image", "$(id)"), ("--tags", ".lead"),
                                             ("--registry", "https://ghcr.io/"),
                                             ("--builder", "fast")])
def test_cli_refuses_bad_input_before_any_network(flag: str, value: str, tmp_path: Path) -> None:
    env = {**ENV, "PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "DOCKER_HOST": "unix:///nonexistent.sock", "GITHUB_API_URL": "http://127.0.0.1:9"}
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from gh_docker_publish.cli import main; "
         "sys.exit(main())", "publish", "--context", HELLO, flag, value],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    name = flag.removeprefix("--")
    assert run.returncode == 1, run.stderr
    assert f"--{name}: " in run.stderr  # the flag the user typed, not the action's input
    assert f"Input '{name}'" not in run.stderr
    assert "Traceback" not in run.stderr and "daemon" not in run.stderr.lower()


@pytest.mark.parametrize("line", [
    "octocat\n::error::pwned", "x\n::add-mask::octocat", "x\n::set-output name=digest::evil",
    "status ##[error]pwned", "x\n  ::warning::indented",
])
def test_a_logged_value_cannot_issue_workflow_commands(line: str) -> None:
    """Values from inputs (a username, a target) or the registry (push status lines) reach
    ``Console.info`` unfenced; the runner must still show them, never obey them."""
    from tests.harness.runner import CommandProcessor, SecretMasker

    stream = io.StringIO()
    console = Console({"GITHUB_ACTIONS": "true"}, stream=stream)
    console.info(f"Logged in as {line}")
    console.warning("after")
    masker = SecretMasker()
    processor = CommandProcessor(masker)
    for text in stream.getvalue().splitlines():
        processor.feed(text)
    kinds = [(a.level, a.message) for a in processor.annotations]
    assert kinds == [("warning", "after")], kinds
    assert not processor.outputs  # nothing set
    assert not any(value in line for value in masker.values)  # only the fence token is masked
    assert all(part.strip() in "\n".join(processor.log) for part in line.split("\n"))


# -- tokens no HTTP header can carry (issue 17 item 4) ---------------------------------------

TOKEN = "ghp_" + "A1b2C3d4E5" * 4
FLAWED_TOKENS = [
    ("zero-width space", TOKEN[:10] + "\u200b" + TOKEN[10:], "U+200B (ZERO WIDTH SPACE)"),
    ("newline inside", TOKEN[:10] + "\n" + TOKEN[10:], "a line break"),
    ("carriage return", TOKEN[:10] + "\r" + TOKEN[10:], "a line break"),
    ("space inside", TOKEN[:10] + " " + TOKEN[10:], "a space or tab"),
    ("no-break space", TOKEN[:10] + "\u00a0" + TOKEN[10:], "U+00A0"),
    ("accented letter", TOKEN[:10] + "\u00e9" + TOKEN[10:], "U+00E9"),
]


@pytest.mark.parametrize("input_name", ["github-token", "token"])
@pytest.mark.parametrize(
    ("case", "token", "named"), FLAWED_TOKENS, ids=[c for c, *_ in FLAWED_TOKENS]
)
def test_a_token_no_header_can_carry_is_refused_naming_the_input(
    input_name: str, case: str, token: str, named: str
) -> None:
    with pytest.raises(InputError) as failure:
        _plan({input_name: token})
    assert failure.value.input_name == input_name
    text = str(failure.value)
    assert named in text and f"set '{input_name}'" in text
    assert TOKEN[:10] not in text and TOKEN[10:] not in text  # no part of the token


@pytest.mark.parametrize("input_name", ["github-token", "token"])
def test_cli_refuses_a_pasted_zero_width_space_before_any_network(
    input_name: str, tmp_path: Path
) -> None:
    """Before: a UnicodeEncodeError traceback from requests, no annotation (issue 17 item 4)."""
    flawed = TOKEN + "\u200b"
    env = {**ENV, "PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "DOCKER_HOST": "unix:///nonexistent.sock", "GITHUB_API_URL": "http://127.0.0.1:9",
           "GITHUB_ACTIONS": "true", "PYTHONIOENCODING": "utf-8",
           f"INPUT_{input_name.upper()}": flawed, "INPUT_CONTEXT": HELLO}
    run = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert f"::error title=Invalid input::Input '{input_name}'" in out, out
    assert "Traceback" not in out and "daemon" not in out.lower()
    assert TOKEN not in out.replace(f"::add-mask::{flawed}", "")  # masked first, never shown


# -- secrets in published values (issue 17 item 13) -------------------------------------------

PAT = "ghp_" + "Z9y8X7w6V5" * 4
SECRET_VALUES = [
    ("tags", "github-token", lambda t: t, "the GITHUB_TOKEN as a tag"),
    ("tags", "token", lambda t: f"v1-{t.lower()}", "the PAT inside a tag, lower case"),
    ("labels", "github-token", lambda t: f"org.example.token={t}", "the GITHUB_TOKEN as a label"),
    ("labels", "token", lambda t: f"x=Bearer {t}", "the PAT inside a label value"),
    ("labels", "github-token", lambda t: f"{t}=1", "the GITHUB_TOKEN as a label key"),
    ("annotations", "github-token", lambda t: f"org.example.note=token {t}",
     "the GITHUB_TOKEN inside an annotation"),
    ("tags", "secrets", lambda t: "type=raw,value=hunter2-hunter2",
     "a build secret as a raw tag rule's value"),
]


@pytest.mark.parametrize(("published", "holder", "value", "case"), SECRET_VALUES,
                         ids=[c for *_, c in SECRET_VALUES])
def test_a_secret_in_a_tag_or_label_is_refused_before_any_network(
    published: str, holder: str, value: Callable[[str], str], case: str
) -> None:
    """Before: published without a word (issue 17 item 13). The check runs in publish.run
    before the first network call (a GHES probe, the daemon, the API)."""
    secret = {"github-token": TOKEN, "token": PAT, "secrets": "hunter2-hunter2"}[holder]
    values = {"github-token": TOKEN, "token": PAT,
              "secrets": "id=s,env=GDP_TEST_SECRET" if holder == "secrets" else "",
              published: value(secret)}
    env = {**ENV, "GDP_TEST_SECRET": "hunter2-hunter2"}
    settings = settings_from_values({"context": HELLO, **values}, env)
    stream = io.StringIO()
    console = Console({"GITHUB_ACTIONS": "true"}, stream=stream)
    with pytest.raises(InputError) as failure:
        publish.run(settings, load_context(env), console, publish.Services())
    assert failure.value.input_name == published
    assert secret not in str(failure.value) and secret.lower() not in str(failure.value).lower()
    assert secret not in stream.getvalue()


def test_a_short_build_secret_only_counts_when_it_is_the_whole_value() -> None:
    from gh_docker_publish.core.published_values import refuse_secrets

    refuse_secrets({"tags": ("v1", "latest")}, ["1"])  # "1" in "v1" is chance, not a leak
    with pytest.raises(InputError):
        refuse_secrets({"tags": ("v1", "1")}, ["1"])


# -- limits: the number of tags, paths outside the workspace (issue 17) ----------------------


def test_more_than_a_hundred_tags_are_refused_before_any_network() -> None:
    """Before: 10,000 tags took 142 s and wrote a 1 MB metadata output (core/limits.py)."""
    assert len(_plan({"tags": ",".join(f"v{i}" for i in range(100))}).tags) == 100
    with pytest.raises(InputError) as failure:
        _plan({"tags": ",".join(f"v{i}" for i in range(101))})
    assert failure.value.input_name == "tags" and "at most 100" in str(failure.value)


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_a_context_outside_the_workspace_is_said_before_any_network(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted (the docker CLIs build any directory) but warned about, on the runner,
    before the first network call."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    context = HELLO if where == "absolute" else os.path.relpath(HELLO, workspace)
    env = {**ENV, "GITHUB_WORKSPACE": str(workspace)}
    settings = settings_from_values({"context": context, "tags": "v1"}, env)
    stream = io.StringIO()
    console = Console({"GITHUB_ACTIONS": "true"}, stream=stream)
    with pytest.raises((AssertionError, PublishError)):  # the first connect is refused
        publish.run(settings, load_context(env), console, publish.Services())
    warnings = [line for line in stream.getvalue().splitlines() if line.startswith("::warning")]
    assert any(f"Input 'context': '{context}' is outside the workspace" in w for w in warnings)
    assert any("Input 'file':" in w for w in warnings)


def test_a_context_inside_the_workspace_gets_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from gh_docker_publish.core.limits import outside_workspace

    monkeypatch.chdir(ROOT)
    assert outside_workspace(str(ROOT), context="examples/hello", file=f"{HELLO}/Dockerfile") == []
    assert outside_workspace("", context="/") == []  # the CLI has no workspace
