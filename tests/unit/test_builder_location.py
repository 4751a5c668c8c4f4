"""The ``builder`` input's address forms and TLS inputs (core/builder_location.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gh_docker_publish.core.builder_location import (
    BuilderLocation,
    BuilderTLS,
    parse_builder_location,
)
from gh_docker_publish.core.refs import Flavour, Target, digest_push_conflicts
from gh_docker_publish.core.settings import settings_from_values
from gh_docker_publish.errors import InputError

ENV = {"GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org"}


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, str]:
    files = {}
    for name in ("builder-cacert", "builder-cert", "builder-key"):
        path = tmp_path / f"{name}.pem"
        path.write_text("pem")
        files[name] = str(path)
    return files


@pytest.mark.parametrize("mode", ["", "auto", "buildkit", "classic", "AUTO"])
def test_modes_are_not_locations(mode: str) -> None:
    assert parse_builder_location(mode, {}) is None


@pytest.mark.parametrize(
    ("raw", "driver", "address"),
    [
        ("unix:///run/other/docker.sock", "docker", "unix:///run/other/docker.sock"),
        ("docker+unix:///run/d.sock", "docker", "unix:///run/d.sock"),
        ("docker+tcp://engine.internal:2376", "docker", "tcp://engine.internal:2376"),
        ("tcp://buildkitd.internal:1234", "remote", "tcp://buildkitd.internal:1234"),
        ("  tcp://[::1]:1234 ", "remote", "tcp://[::1]:1234"),
        ("docker-container://builder-7f3a", "docker-container", "builder-7f3a"),
        ("docker-container://buildx_buildkit_b0", "docker-container", "buildx_buildkit_b0"),
    ],
)
def test_address_forms(raw: str, driver: str, address: str) -> None:
    location = parse_builder_location(raw, {})
    assert location == BuilderLocation(driver, address)  # type: ignore[arg-type]


def test_remote_tls_files_are_resolved(pems: dict[str, str]) -> None:
    location = parse_builder_location(
        "tcp://bk:1234", {**pems, "builder-servername": "bk.example"}
    )
    assert location is not None
    assert location.tls == BuilderTLS(
        pems["builder-cacert"], pems["builder-cert"], pems["builder-key"], "bk.example"
    )
    assert location.host_port() == ("bk", 1234)
    assert location.describe() == "the buildkitd at tcp://bk:1234 over TLS"


def test_relative_tls_files_are_read_from_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("pem")
    location = parse_builder_location("tcp://bk:1234", {"builder-cacert": "ca.pem"}, tmp_path)
    assert location is not None and location.tls.cacert == str(tmp_path / "ca.pem")


def test_an_ipv6_host_port_loses_its_brackets() -> None:
    location = parse_builder_location("tcp://[::1]:1234", {})
    assert location is not None and location.host_port() == ("::1", 1234)


def test_settings_carry_the_location_and_say_buildkit(pems: dict[str, str]) -> None:
    s = settings_from_values(
        {"context": ".", "file": __file__, "builder": "tcp://bk:1234",
         "builder-cacert": pems["builder-cacert"]}, ENV,
    )
    assert s.builder == "buildkit"
    assert s.builder_location == BuilderLocation(
        "remote", "tcp://bk:1234", BuilderTLS(cacert=pems["builder-cacert"])
    )


def test_settings_without_a_location() -> None:
    s = settings_from_values({"context": ".", "file": __file__, "builder": "classic"}, ENV)
    assert (s.builder, s.builder_location) == ("classic", None)


def test_a_tls_input_without_an_endpoint_names_itself(pems: dict[str, str]) -> None:
    with pytest.raises(InputError) as failure:
        parse_builder_location("auto", {"builder-key": pems["builder-key"]})
    assert failure.value.input_name == "builder-key"
    assert "builder: tcp://HOST:PORT" in str(failure.value)


def _target(flavour: Flavour) -> Target:
    return Target(registry="ghe.test", flavour=flavour, owner="octo-org",
                  repository="octo-org/app", path="octo-org/app/x")


def test_digest_pushes_are_refused_only_on_the_docker_registry() -> None:
    docker, container = _target(Flavour.DOCKER), _target(Flavour.CONTAINER)
    two = ("linux/amd64", "linux/arm64")
    assert digest_push_conflicts(container, platforms=two, provenance=True) is None
    assert digest_push_conflicts(docker, platforms=("linux/amd64",), provenance=False) is None
    refused = digest_push_conflicts(docker, platforms=two, provenance=False)
    assert refused is not None and refused.input_name == "platforms"
    assert "cannot be pushed by digest" in str(refused)
    refused = digest_push_conflicts(docker, platforms=(), provenance=True)
    assert refused is not None and refused.input_name == "provenance"
