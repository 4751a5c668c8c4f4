"""Which token publishes, and why: GitHub's GITHUB_TOKEN-vs-PAT rules as a table."""

from __future__ import annotations

import pytest

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.credentials import (
    UNKNOWN,
    PackageLink,
    choose_token,
    pat_scopes,
    should_ask_packages_api,
)
from gh_docker_publish.core.refs import Flavour, Target
from gh_docker_publish.core.settings import AuthMode, Secret, Settings
from gh_docker_publish.errors import CredentialError

CTX = RunContext(repository="Octo-Org/Hello-World", repository_owner="Octo-Org", actor="octocat")
GHS = "ghs_workflow"
GHP = "ghp_personal"


def settings(*, github_token: str = GHS, token: str = "", auth: AuthMode = "auto",
             username: str = "") -> Settings:
    return Settings(image="hello", owner="octo-org", repository="octo-org/hello-world",
                    github_token=Secret(github_token), token=Secret(token), auth=auth,
                    username=username)


def container(owner: str = "octo-org", repository: str = "octo-org/hello-world") -> Target:
    return Target("ghcr.io", Flavour.CONTAINER, owner, repository, f"{owner}/hello")


def docker(repository: str = "octo-org/hello-world") -> Target:
    owner = repository.partition("/")[0]
    return Target("docker.ghes.local", Flavour.DOCKER, owner, repository,
                  f"{repository}/hello")


# (target, package link, PAT at hand) -> (source, reason fragment)
CHOICES: list[tuple[Target, PackageLink, str, str, str]] = [
    (container(), UNKNOWN, "", "github-token", "not checked"),
    (container(), None, "", "github-token", "package is new"),
    (container(), "Octo-Org/Hello-World", "", "github-token", "linked to this workflow"),
    (container(), "octo-org/other", GHP, "token", "linked to octo-org/other"),
    (container(owner="someone-else", repository="someone-else/tools"), UNKNOWN, GHP, "token",
     "owner someone-else is not the workflow's owner octo-org"),
    (container(repository="octo-org/tools"), None, GHP, "token",
     "belongs to octo-org/tools"),
    (docker(), UNKNOWN, "", "github-token", "belongs to this workflow's repository"),
    (docker("octo-org/tools"), UNKNOWN, GHP, "token", "belongs to octo-org/tools"),
    # GITHUB_TOKEN is enough: the PAT stays unused (least privilege).
    (container(), None, GHP, "github-token", "package is new"),
]


@pytest.mark.parametrize(("target", "link", "pat", "source", "fragment"), CHOICES)
def test_choose_token(
    target: Target, link: PackageLink, pat: str, source: str, fragment: str
) -> None:
    choice = choose_token(settings(token=pat), CTX, target, link)
    assert choice.source == source
    assert fragment in choice.reason
    assert choice.secret.reveal() == (GHS if source == "github-token" else GHP)
    assert "\n" not in choice.reason


def test_usernames() -> None:
    by_actor = choose_token(settings(), CTX, container())
    assert (by_actor.username, by_actor.label) == ("octocat", "GITHUB_TOKEN")
    assert by_actor.describe().startswith("Using the GITHUB_TOKEN as octocat: the owner")
    pat = choose_token(settings(token=GHP, auth="token"), CTX, container(),
                       pat_owner=lambda: "pat-user")
    assert pat.username == "pat-user"  # GET /user, asked only for a PAT without username
    assert pat.label == "personal access token"
    asked: list[str] = []
    github = choose_token(settings(token=GHP), CTX, container(),
                          pat_owner=lambda: asked.append("GET /user") or "x")
    assert github.source == "github-token" and asked == []
    named = choose_token(settings(token=GHP, auth="token", username="bot"), CTX, container())
    assert named.username == "bot"
    no_actor = choose_token(settings(), RunContext(repository="octo-org/hello-world"), container())
    assert no_actor.username == "octo-org"


@pytest.mark.parametrize(
    ("target", "link", "scopes"),
    [
        (container("someone-else", "someone-else/x"), UNKNOWN, "write:packages"),
        (container(), "octo-org/other", "write:packages"),
        (docker("octo-org/tools"), UNKNOWN, "plus repo if the repository is private"),
    ],
)
def test_missing_pat_names_secret_and_scopes(target: Target, link: PackageLink,
                                             scopes: str) -> None:
    with pytest.raises(CredentialError) as caught:
        choose_token(settings(), CTX, target, link)
    text = str(caught.value)
    assert "needs a personal access token" in text
    assert "secrets.PACKAGES_TOKEN" in text
    assert scopes in text
    assert target.name in text


def test_auth_forces_the_choice() -> None:
    forced = choose_token(settings(auth="github-token"), CTX, container("someone-else"))
    assert forced.source == "github-token"
    assert "'auth' is github-token" in forced.reason
    pat = choose_token(settings(token=GHP, auth="token"), CTX, container())
    assert pat.source == "token"


def test_auth_token_without_a_pat() -> None:
    with pytest.raises(CredentialError, match="'auth' is token but the 'token' input is empty"):
        choose_token(settings(auth="token"), CTX, container())


def test_auth_github_token_without_one() -> None:
    with pytest.raises(CredentialError, match="no GITHUB_TOKEN"):
        choose_token(settings(github_token="", auth="github-token"), CTX, container())


def test_no_github_token_falls_back_to_the_pat() -> None:
    choice = choose_token(settings(github_token="", token=GHP), CTX, container())
    assert choice.source == "token"
    assert "no GITHUB_TOKEN" in choice.reason


def test_no_token_at_all() -> None:
    with pytest.raises(CredentialError, match="neither 'github-token' nor 'token'"):
        choose_token(settings(github_token=""), CTX, container())


def test_no_workflow_repository_needs_the_pat() -> None:
    choice = choose_token(settings(token=GHP), RunContext(), container())
    assert choice.source == "token"
    assert "GITHUB_REPOSITORY is unset" in choice.reason


def test_choice_repr_hides_the_token() -> None:
    assert GHS not in repr(choose_token(settings(), CTX, container()))


@pytest.mark.parametrize(
    ("s", "target", "expected"),
    [
        (settings(token=GHP), container(), True),  # linkage decides
        (settings(), container(), False),  # no PAT: the API cannot be asked
        (settings(token=GHP, auth="token"), container(), False),  # forced
        (settings(token=GHP), container("someone-else", "someone-else/x"), False),  # PAT anyway
        (settings(token=GHP), docker(), False),  # the path already names the repository
        (settings(github_token="", token=GHP), container(), False),  # PAT anyway
    ],
)
def test_should_ask_packages_api(s: Settings, target: Target, expected: bool) -> None:
    assert should_ask_packages_api(s, CTX, target) is expected


def test_pat_scopes() -> None:
    assert pat_scopes(container()) == "write:packages"
    assert "repo" in pat_scopes(docker())
