"""On GHES with ``registry: auto`` the run probes the server's registry hosts (network).
A ``tags`` rule that is wrong must be refused before that, like every other input."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.settings import settings_from_values
from gh_docker_publish.edges import registries
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import InputError
from gh_docker_publish.flows import publish

GHES = RunContext(
    server_url="https://ghes.example.test",
    api_url="https://ghes.example.test/api/v3",
    repository="octo-org/app",
    repository_owner="octo-org",
    event_name="push",
    ref="refs/heads/main",
    sha="a" * 40,
)


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ("type=bogus,value=x", "Unknown type"),
        ("type=semver,pattern={{version}}", "no tag applies"),  # a branch push: no tag
    ],
)
def test_bad_tags_fail_before_the_registry_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tags: str, problem: str
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    probed: list[str] = []

    def probe(server_url: str, get: Any = None) -> tuple[None, list[str]]:
        probed.append(server_url)
        return None, [f"{server_url}: no answer"]

    monkeypatch.setattr(registries, "probe", probe)
    with pytest.raises(InputError, match=problem) as info:
        # A wrong rule is refused as the settings load; a rule that gives no tag on this
        # event, when the plan is made. Both before the probe.
        settings = settings_from_values(
            {"image": "app", "tags": tags, "context": str(tmp_path)},
            {"GITHUB_REPOSITORY": "octo-org/app"},
        )
        publish.run(settings, GHES, Console({}, stream=io.StringIO()),
                    publish.Services(docker_host="unix:///nonexistent.sock"))
    assert info.value.input_name == "tags"
    assert probed == [], "the registry hosts were asked before the tags were checked"
