"""The CLI's defaults from a git checkout (core/checkout.py): remote URLs and env merging."""

from __future__ import annotations

import pytest

from gh_docker_publish.core.checkout import Checkout, defaults_for, parse_remote


@pytest.mark.parametrize(
    ("url", "expected"),
    [("git@github.com:Octo-Org/App.git", ("github.com", "Octo-Org/App")),
     ("https://github.com/octo/app", ("github.com", "octo/app")),
     ("https://github.com/octo/app.git/", ("github.com", "octo/app")),
     ("ssh://git@ghes.example.com:2222/octo/app.git", ("ghes.example.com", "octo/app")),
     ("https://user@GitHub.com/octo/app", ("github.com", "octo/app")),
     ("/srv/git/app.git", ("", "")),
     ("https://gitlab.example.com/group/sub/app", ("", "")),
     ("", ("", ""))],
)
def test_parse_remote(url: str, expected: tuple[str, str]) -> None:
    assert parse_remote(url) == expected


def test_a_ghes_origin_sets_the_server_url() -> None:
    env = Checkout(host="ghes.example.com", repository="o/r").workflow_env()
    assert env["GITHUB_SERVER_URL"] == "https://ghes.example.com"
    assert "GITHUB_SERVER_URL" not in Checkout(host="github.com", repository="o/r").workflow_env()


def test_the_environment_keeps_whole_groups() -> None:
    checkout = Checkout("github.com", "octo/app", "a" * 40, "main")
    merged = defaults_for({"GITHUB_REPOSITORY": "x/y", "GITHUB_SHA": ""}, checkout)
    assert merged["GITHUB_REPOSITORY"] == "x/y"
    assert "GITHUB_REPOSITORY_OWNER" not in merged  # not origin's owner beside x/y
    assert merged["GITHUB_SHA"] == "a" * 40  # an empty variable is unset
    assert merged["GITHUB_REF"] == "refs/heads/main"
    assert merged["GITHUB_EVENT_NAME"] == "push"


def test_a_detached_head_gives_no_ref() -> None:
    assert "GITHUB_REF" not in Checkout("github.com", "o/r", "b" * 40, "").workflow_env()
