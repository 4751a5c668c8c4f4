"""Several images for one build (issue 14 item 2): the `images` input (metadata-action's),
full references in `tags` (build-push-action's), `registry-auth` (login-action's YAML).
Every bad value is refused before any network call, naming the input; no password is ever
quoted back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gh_docker_publish.core.context import load_context
from gh_docker_publish.core.settings import Settings, raw_secrets, settings_from_values
from gh_docker_publish.edges import report
from gh_docker_publish.errors import InputError
from gh_docker_publish.flows import publish

ENV = {
    "GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org",
    "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "a" * 40,
    "GITHUB_SERVER_URL": "https://github.com",
}
NOW = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(**values: str) -> Settings:
    return settings_from_values({k.replace("_", "-"): v for k, v in values.items()}, ENV)


def plan(s: Settings) -> publish.Plan:
    return publish.plan(s, load_context(ENV), NOW)


def test_images_input_every_image_gets_every_tag() -> None:
    s = settings(
        images="ghcr.io/octo-org/App\nname=registry.example.com/team/app,enable=true\n"
        "name=ghcr.io/octo-org/old,enable=false",
        tags="v1,latest",
    )
    assert s.image == "ghcr.io/octo-org/app"
    assert s.image_names == ("ghcr.io/octo-org/app", "registry.example.com/team/app")
    assert any("ghcr.io/octo-org/old is disabled" in n for n in s.notices)
    got = plan(s)
    assert got.refs == (
        "ghcr.io/octo-org/app:v1", "ghcr.io/octo-org/app:latest",
        "registry.example.com/team/app:v1", "registry.example.com/team/app:latest",
    )
    assert [t.github_hosted for t in got.targets] == [True, False]


def test_image_is_a_list_of_one() -> None:
    """Nothing a user of `image` saw changes: one target, its refs, the same outputs."""
    s = settings(image="Hello", tags="v1")
    assert s.images == () and s.image_names == ("hello",)
    got = plan(s)
    assert got.refs == ("ghcr.io/octo-org/hello:v1",)
    result = report.PublishResult(image=got.target.name, registry="ghcr.io", refs=got.refs,
                                  tags=got.tags)
    outputs = report.render_outputs(result)
    assert outputs["image"] == outputs["images"] == "ghcr.io/octo-org/hello"
    assert report.render_summary(result).startswith("### Built `ghcr.io/octo-org/hello`")


def test_full_references_in_tags_give_image_and_tags() -> None:
    s = settings(tags="ghcr.io/Octo-Org/app:latest\nghcr.io/octo-org/app:1.0.0")
    assert s.image == "ghcr.io/octo-org/app" and s.tags == ("latest", "1.0.0")
    assert plan(s).refs == ("ghcr.io/octo-org/app:latest", "ghcr.io/octo-org/app:1.0.0")


def test_full_references_for_two_images() -> None:
    s = settings(tags="ghcr.io/octo-org/app:1.0,registry.example.com/o/app:1.0")
    assert s.image_names == ("ghcr.io/octo-org/app", "registry.example.com/o/app")
    assert s.tags == ("1.0",)


def test_references_with_a_matching_image_input() -> None:
    s = settings(image="ghcr.io/octo-org/app", tags="ghcr.io/octo-org/app:1.0")
    assert s.image_names == ("ghcr.io/octo-org/app",) and s.tags == ("1.0",)


def test_summary_and_outputs_list_every_image() -> None:
    result = report.PublishResult(
        image="ghcr.io/o/a", images=("ghcr.io/o/a", "r.example.com/o/a"), registry="ghcr.io",
        tags=("v1",), refs=("ghcr.io/o/a:v1", "r.example.com/o/a:v1"), pushed=True,
        digest="sha256:" + "d" * 64,
    )
    outputs = report.render_outputs(result)
    assert outputs["images"].splitlines() == ["ghcr.io/o/a", "r.example.com/o/a"]
    assert outputs["tags"].splitlines() == ["ghcr.io/o/a:v1", "r.example.com/o/a:v1"]
    summary = report.render_summary(result)
    assert summary.startswith("### Published `ghcr.io/o/a`, `r.example.com/o/a`")
    assert "`r.example.com/o/a:v1`" in summary


@pytest.mark.parametrize(
    ("values", "input_name", "fragment"),
    [
        ({"image": "app", "images": "ghcr.io/o/app"}, "images", "not both"),
        ({"images": "name=ghcr.io/o/app,enable=maybe"}, "images", "is not true or false"),
        ({"images": "name=ghcr.io/o/app,push=true"}, "images", "is not name= or enable="),
        ({"images": "enable=true"}, "images", "No name="),
        ({"images": "ghcr.io/o/app:1.0"}, "images", "includes the tag"),
        ({"images": "name=ghcr.io/o/a,enable=false"}, "images", "every image is disabled"),
        ({"images": "ghcr.io/octo-org/a\nghcr.io/octo-org/A"}, "images", None),
        ({"images": "ghcr.io/o/a", "tags": "ghcr.io/o/b:1"}, "tags", "not in 'images'"),
        ({"tags": "ghcr.io/o/a:1,ghcr.io/o/b:2"}, "tags", "every image gets every tag"),
        ({"tags": "ghcr.io/o/App Name:1"}, "tags", None),
    ],
)
def test_bad_images(values: dict[str, str], input_name: str, fragment: str | None) -> None:
    try:
        s = settings(**values)
    except InputError as exc:
        assert exc.input_name == input_name
        assert fragment is None or fragment in str(exc), str(exc)
        return
    # Duplicates after lowercasing are one image, not an error.
    assert len(set(s.image_names)) == len(s.image_names)
    assert fragment is None


def test_the_same_image_twice_after_owner_fill_in_is_refused() -> None:
    s = settings(images="app\nghcr.io/octo-org/app")
    with pytest.raises(InputError, match="given twice"):
        plan(s)


REGISTRY_AUTH = """\
- registry: registry.example.com
  username: ci
  password: pw-one-1234
- username: octo
  password: "pw-two-5678"
"""


def test_registry_auth_is_login_actions_yaml() -> None:
    s = settings(registry_auth=REGISTRY_AUTH)
    assert [(e.registry, e.username) for e in s.registry_auth] == [
        ("registry.example.com", "ci"), ("docker.io", "octo"),
    ]
    assert {"pw-one-1234", "pw-two-5678"} <= set(s.secrets())
    assert "pw-one" not in repr(s)


def test_every_password_is_masked_before_validation() -> None:
    env = {"INPUT_REGISTRY-AUTH": REGISTRY_AUTH + "- registry: [not yaml\n  password: pw-3"}
    assert {"pw-one-1234", "pw-two-5678", "pw-3"} <= set(raw_secrets(env))


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("registry: [x", "is not YAML"),
        ("registry: r.example.com", "is not a YAML list"),
        ("- registry: r.example.com\n  username: u\n  password: hunter2-xyz\n  token: t",
         "has the key 'token'"),
        ("- registry: r.example.com\n  password: hunter2-xyz", "has no username"),
        ("- registry: r.example.com\n  username: u", "has no password"),
        ("- registry: https://r.example.com\n  username: u\n  password: hunter2-xyz", "is a URL"),
        ("- registry: r.example.com\n  username: u\n  password: hunter2-xyz\n"
         "- registry: r.example.com\n  username: v\n  password: hunter2-xyz", "given twice"),
    ],
)
def test_bad_registry_auth(raw: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        settings(registry_auth=raw)
    assert err.value.input_name == "registry-auth"
    assert fragment in str(err.value)
    assert "hunter2" not in str(err.value)
