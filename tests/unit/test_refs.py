"""Registry flavours, image paths and the reference grammar (GitHub docs' host table)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.refs import (
    Flavour,
    Target,
    auto_registry,
    classify_host,
    package_url,
    parse_image,
    resolve_target,
    validate_tag,
)
from gh_docker_publish.core.settings import Settings, settings_from_values
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import InputError
from gh_docker_publish.flows import merge, publish

DOTCOM = RunContext(server_url="https://github.com", repository="Octo-Org/Hello-World",
                    repository_owner="Octo-Org")
GHES = RunContext(server_url="https://github.example.com", repository="octo-org/hello-world",
                  repository_owner="octo-org")
GHEC_DR = RunContext(server_url="https://acme.ghe.com", repository="octo-org/hello-world",
                     repository_owner="octo-org")


def settings(image: str = "hello", registry: str = "auto") -> Settings:
    return Settings(image=image, registry=registry, owner="octo-org",
                    repository="octo-org/hello-world")


# (ctx, image, registry, probed) -> (host, flavour, path, github_hosted)
CASES = [
    (DOTCOM, "hello", "auto", None, ("ghcr.io", Flavour.CONTAINER, "octo-org/hello", True)),
    (DOTCOM, "team/hello", "auto", None,
     ("ghcr.io", Flavour.CONTAINER, "octo-org/team/hello", True)),
    (GHEC_DR, "hello", "auto", None,
     ("containers.acme.ghe.com", Flavour.CONTAINER, "octo-org/hello", True)),
    (GHES, "hello", "auto", None,
     ("containers.github.example.com", Flavour.CONTAINER, "octo-org/hello", True)),
    # The probing hook: the GHES Docker registry with and without subdomain isolation.
    (GHES, "hello", "auto", "docker.github.example.com",
     ("docker.github.example.com", Flavour.DOCKER, "octo-org/hello-world/hello", True)),
    (GHES, "hello", "auto", "github.example.com",
     ("github.example.com", Flavour.DOCKER, "octo-org/hello-world/hello", True)),
    (GHES, "hello", "docker.github.example.com", None,
     ("docker.github.example.com", Flavour.DOCKER, "octo-org/hello-world/hello", True)),
    (GHES, "hello", "containers.github.example.com", None,
     ("containers.github.example.com", Flavour.CONTAINER, "octo-org/hello", True)),
    (DOTCOM, "hello", "ghcr.io", None, ("ghcr.io", Flavour.CONTAINER, "octo-org/hello", True)),
    (DOTCOM, "hello", "localhost:5000", None,
     ("localhost:5000", Flavour.CONTAINER, "octo-org/hello", False)),
    (DOTCOM, "hello", "registry.example.org", None,
     ("registry.example.org", Flavour.CONTAINER, "octo-org/hello", False)),
    # Full references: registry and path come from the image.
    (DOTCOM, "ghcr.io/other-org/app", "auto", None,
     ("ghcr.io", Flavour.CONTAINER, "other-org/app", True)),
    (DOTCOM, "ghcr.io/other-org/app", "ghcr.io", None,
     ("ghcr.io", Flavour.CONTAINER, "other-org/app", True)),
    (GHES, "docker.github.example.com/octo-org/tools/app", "auto", None,
     ("docker.github.example.com", Flavour.DOCKER, "octo-org/tools/app", True)),
    (DOTCOM, "127.0.0.1:5000/octo-org/app", "auto", None,
     ("127.0.0.1:5000", Flavour.CONTAINER, "octo-org/app", False)),
]


@pytest.mark.parametrize(("ctx", "image", "registry", "probed", "expected"), CASES)
def test_resolve_target(
    ctx: RunContext, image: str, registry: str, probed: str | None,
    expected: tuple[str, Flavour, str, bool],
) -> None:
    target = resolve_target(settings(image, registry), ctx, probed_registry=probed)
    assert (target.registry, target.flavour, target.path, target.github_hosted) == expected
    assert target.name == f"{expected[0]}/{expected[2]}"
    assert target.warnings == ()


def test_full_docker_reference_sets_owner_and_repository() -> None:
    target = resolve_target(settings("docker.github.example.com/team/tools/app"), GHES)
    assert (target.owner, target.repository, target.package_name) == ("team", "team/tools", "app")


def test_legacy_docker_registry_maps_to_ghcr_with_a_warning() -> None:
    target = resolve_target(settings("hello", "docker.pkg.github.com"), DOTCOM)
    assert target.name == "ghcr.io/octo-org/hello"
    assert "retired" in target.warnings[0] and "ghcr.io" in target.warnings[0]


def test_legacy_full_reference_drops_the_repository_component() -> None:
    target = resolve_target(settings("docker.pkg.github.com/octo-org/hello-world/app"), DOTCOM)
    assert target.name == "ghcr.io/octo-org/app"
    assert target.warnings


def test_tags_keep_their_case() -> None:
    target = resolve_target(settings(), DOTCOM)
    assert target.ref("Feature-X") == "ghcr.io/octo-org/hello:Feature-X"


@pytest.mark.parametrize(
    ("image", "registry", "ctx", "input_name", "fragment"),
    [
        ("ghcr.io/o/app", "containers.github.example.com", GHES, "registry", "differs"),
        ("ghcr.io/app", "auto", DOTCOM, "image", "ghcr.io/OWNER/IMAGE"),
        ("docker.github.example.com/o/app", "auto", GHES, "image", "OWNER/REPOSITORY/IMAGE"),
    ],
)
def test_resolve_target_errors(
    image: str, registry: str, ctx: RunContext, input_name: str, fragment: str
) -> None:
    with pytest.raises(InputError) as caught:
        resolve_target(settings(image, registry), ctx)
    assert caught.value.input_name == input_name
    assert fragment in str(caught.value)


def test_repository_that_is_no_docker_path_names_repository() -> None:
    bad = Settings(image="hello", owner="octo-org", repository="octo-org/repo-")
    with pytest.raises(InputError, match="Input 'repository'"):
        resolve_target(bad, GHES, probed_registry="docker.github.example.com")


@pytest.mark.parametrize(
    ("server_host", "expected"),
    [("github.com", "ghcr.io"), ("acme.ghe.com", "containers.acme.ghe.com"),
     ("GitHub.Example.com", "containers.github.example.com")],
)
def test_auto_registry(server_host: str, expected: str) -> None:
    assert auto_registry(server_host) == expected


@pytest.mark.parametrize(
    ("host", "server", "expected"),
    [
        ("ghcr.io", "github.com", (Flavour.CONTAINER, True)),
        ("containers.ghes.local", "ghes.local", (Flavour.CONTAINER, True)),
        ("docker.ghes.local", "ghes.local", (Flavour.DOCKER, True)),
        ("ghes.local", "ghes.local", (Flavour.DOCKER, True)),
        ("github.com", "github.com", (Flavour.CONTAINER, False)),
        ("docker.io", "github.com", (Flavour.CONTAINER, False)),
    ],
)
def test_classify_host(host: str, server: str, expected: tuple[Flavour, bool]) -> None:
    assert classify_host(host, server) == expected


# --- grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "domain", "path"),
    [
        ("hello", None, "hello"),
        ("Hello", None, "hello"),
        ("team/my_app", None, "team/my_app"),
        ("a__b.c-d", None, "a__b.c-d"),
        ("a---b", None, "a---b"),
        ("localhost/app", "localhost", "app"),
        ("localhost:5000/o/app", "localhost:5000", "o/app"),
        ("GHCR.IO/Octo/App", "ghcr.io", "octo/app"),
    ],
)
def test_parse_image(value: str, domain: str | None, path: str) -> None:
    parsed = parse_image(value)
    assert (parsed.domain, parsed.path) == (domain, path)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "is empty"),
        ("a_-b", "not a valid image name"),
        ("a//b", "component '(empty)'"),
        ("a/", "component '(empty)'"),
        ("localhost:5000/app:tag", "includes the tag 'tag'"),
        ("app@sha256:" + "0" * 64, "digest"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_parse_image_rejects(value: str, fragment: str) -> None:
    with pytest.raises(InputError, match="Input 'image'") as caught:
        parse_image(value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("tag", ["1.2.3", "latest", "Feature_X", "v1.0-rc.1", "_x", "x" * 128])
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "fragment"),
    [
        ("x" * 129, "at most 128"),
        ("a/b", "contains '/'"),
        (".a", "starts with '.'"),
        ("-a", "starts with '-'"),
        ("a:b", "characters a tag cannot have"),
        ("ünïcode", "characters a tag cannot have"),
        ("sha256:" + "f" * 64, "cannot be pushed by digest"),
        ("@sha256:abc", "IMAGE:VERSION"),
    ],
)
def test_validate_tag_rejects(tag: str, fragment: str) -> None:
    with pytest.raises(InputError, match="Input 'extra-tags'") as caught:
        validate_tag(tag, "extra-tags")
    assert fragment in str(caught.value)


# --- package page ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "ctx", "expected"),
    [
        (Target("ghcr.io", Flavour.CONTAINER, "octo-org", "octo-org/hello-world",
                "octo-org/hello"), DOTCOM,
         "https://github.com/octo-org/hello-world/pkgs/container/hello"),
        (Target("ghcr.io", Flavour.CONTAINER, "octo-org", "octo-org/hello-world",
                "octo-org/team/hello"), DOTCOM,
         "https://github.com/octo-org/hello-world/pkgs/container/team%2Fhello"),
        (Target("docker.github.example.com", Flavour.DOCKER, "octo-org", "octo-org/hello-world",
                "octo-org/hello-world/hello"), GHES,
         "https://github.example.com/octo-org/hello-world/packages"),
        (Target("localhost:5000", Flavour.CONTAINER, "o", "o/r", "o/hello",
                github_hosted=False), DOTCOM, ""),
    ],
)
def test_package_url(target: Target, ctx: RunContext, expected: str) -> None:
    assert package_url(target, ctx) == expected


# --- GitHub's Docker registry takes no digest push (issue 16) ---------------------
ISSUE16_ENV = {"GITHUB_REPOSITORY": "octo-org/app"}
A = "sha256:" + "a" * 64
GHES_RUN = RunContext(
    server_url="https://ghes.example.test", api_url="https://ghes.example.test/api/v3",
    repository="octo-org/app", repository_owner="octo-org", event_name="push",
    ref="refs/heads/main", sha="a" * 40,
)


def _issue16_settings(tmp_path: Path, **values: str) -> Settings:
    """Settings for issue 16's inputs (push-by-digest, mode merge), a Dockerfile in place."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return settings_from_values({"image": "app", "context": str(tmp_path), **values}, ISSUE16_ENV)


@pytest.mark.parametrize(
    ("values", "run", "input_name"),
    [
        ({"push-by-digest": "true", "platforms": "linux/arm64"}, publish.run, "push-by-digest"),
        ({"mode": "merge", "digests": A}, merge.run, "mode"),
    ],
)
def test_ghes_docker_registry_refuses_digest_pushes_before_the_daemon(
    tmp_path: Path, values: dict[str, str], run: object, input_name: str
) -> None:
    settings = _issue16_settings(tmp_path, registry="docker.ghes.example.test", **values)
    with pytest.raises(InputError, match="IMAGE:VERSION") as info:
        run(settings, GHES_RUN, Console({}, stream=io.StringIO()),  # type: ignore[operator]
            publish.Services(docker_host="unix:///nonexistent.sock"))
    assert info.value.input_name == input_name
    assert "Container registry" in info.value.hint
