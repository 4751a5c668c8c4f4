"""OCI labels: the repository link, the API's facts, user overrides."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.labels import (
    OCI,
    compute_labels,
    repository_url,
    rfc3339,
)
from gh_docker_publish.errors import InputError

SHA = "9f3c2b1a7e6d5c4b3a29180716f5e4d3c2b1a098"
CREATED = datetime(2024, 5, 14, 9, 12, 43, 123456, tzinfo=UTC)

# The repository object from a captured push payload is the REST body's shape.
REPO_INFO: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "events" / "push_default_branch.json").read_text()
)["repository"]


def labels(**overrides: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "server_url": "https://github.com",
        "repository": "Octo-Org/Hello-World",
        "sha": SHA,
        "created": CREATED,
        "version": "1.2.3",
        "repo_info": REPO_INFO,
        "user_labels": {},
    }
    args.update(overrides)
    return compute_labels(**args)


def test_all_labels_from_context_and_api() -> None:
    assert labels() == {
        OCI + "source": "https://github.com/Octo-Org/Hello-World",
        OCI + "url": "https://github.com/Octo-Org/Hello-World",
        OCI + "revision": SHA,
        OCI + "created": "2024-05-14T09:12:43Z",
        OCI + "version": "1.2.3",
        OCI + "title": "Hello-World",
        OCI + "description": "My first repository on GitHub!",
        OCI + "licenses": "MIT",
    }


@pytest.mark.parametrize(
    ("server_url", "repository", "expected"),
    [
        ("https://github.com", "Octo-Org/Hello-World", "https://github.com/Octo-Org/Hello-World"),
        ("https://github.com/", "octo/app.git", "https://github.com/octo/app"),
        ("https://ghes.example.com", "Team/Svc", "https://ghes.example.com/Team/Svc"),
        ("https://ghes.example.com:8443/", "t/s", "https://ghes.example.com:8443/t/s"),
        ("http://127.0.0.1:8080", "o/r", "http://127.0.0.1:8080/o/r"),
        ("https://octo.ghe.com", "o/r", "https://octo.ghe.com/o/r"),
        ("ghes.internal", "o/r", "https://ghes.internal/o/r"),
        ("", "o/r", "https://github.com/o/r"),
    ],
)
def test_source_host_comes_from_server_url(server_url: str, repository: str, expected: str) -> None:
    assert repository_url(server_url, repository) == expected
    got = labels(server_url=server_url, repository=repository, repo_info=None)
    assert got[OCI + "source"] == got[OCI + "url"] == expected
    assert not got[OCI + "source"].endswith((".git", "/"))


def test_ghes_with_api_uses_html_url() -> None:
    info = {**REPO_INFO, "html_url": "https://ghes.example.com/Team/Svc"}
    got = labels(server_url="https://ghes.example.com", repository="team/svc", repo_info=info)
    assert got[OCI + "source"] == "https://ghes.example.com/Team/Svc"


def test_case_is_kept() -> None:
    got = labels(repo_info=None)
    assert got[OCI + "source"] == "https://github.com/Octo-Org/Hello-World"


@pytest.mark.parametrize("bad", ["", "justname", "a/b/c", "a b/c"])
def test_bad_repository(bad: str) -> None:
    with pytest.raises(InputError, match="is not OWNER/REPO"):
        repository_url("https://github.com", bad)


def test_without_api_only_context_labels() -> None:
    assert labels(repo_info=None) == {
        OCI + "source": "https://github.com/Octo-Org/Hello-World",
        OCI + "url": "https://github.com/Octo-Org/Hello-World",
        OCI + "revision": SHA,
        OCI + "created": "2024-05-14T09:12:43Z",
        OCI + "version": "1.2.3",
        OCI + "title": "Hello-World",
    }


@pytest.mark.parametrize(
    ("license_value", "expected"),
    [
        # As docker/metadata-action (licenses=${spdx_id}): GitHub's NOASSERTION is kept.
        ({"key": "other", "name": "Other", "spdx_id": "NOASSERTION"}, "NOASSERTION"),
        (None, None),
        ({"key": "apache-2.0", "spdx_id": "Apache-2.0"}, "Apache-2.0"),
        ("GPL-3.0-only", "GPL-3.0-only"),
        ({"spdx_id": None}, None),
    ],
)
def test_license(license_value: Any, expected: str | None) -> None:
    got = labels(repo_info={**REPO_INFO, "license": license_value})
    assert got.get(OCI + "licenses") == expected


def test_empty_description_and_no_version_are_omitted() -> None:
    got = labels(repo_info={**REPO_INFO, "description": None}, version=None)
    assert OCI + "description" not in got
    assert OCI + "version" not in got


def test_multiline_description_is_one_line() -> None:
    got = labels(repo_info={**REPO_INFO, "description": "Line one\nline two\r\n"})
    assert got[OCI + "description"] == "Line one line two"


def test_user_labels_override_ours() -> None:
    got = labels(
        user_labels={OCI + "title": "My App", OCI + "licenses": "Apache-2.0", "team": "platform"}
    )
    assert got[OCI + "title"] == "My App"
    assert got[OCI + "licenses"] == "Apache-2.0"
    assert got["team"] == "platform"
    assert got[OCI + "revision"] == SHA


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),
        (
            datetime(2024, 1, 2, 9, 4, 5, tzinfo=timezone(timedelta(hours=6))),
            "2024-01-02T03:04:05Z",
        ),
    ],
)
def test_rfc3339(when: datetime, expected: str) -> None:
    assert rfc3339(when) == expected

