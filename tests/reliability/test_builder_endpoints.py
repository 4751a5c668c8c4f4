"""``builder`` pointing at BuildKit elsewhere (issue 13): contradictory or bad inputs are
refused before any network call; an endpoint that is down, refuses TLS or is not BuildKit
gives a clear error naming the input before the build. Real sockets from the bed (the
GitHub stand-in is a listening HTTP server that is not BuildKit; a TLS server with the
bed's signing certificate); no buildkitd can be had here (see test_builder_elsewhere)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gh_docker_publish.core.builder_location import BuilderLocation, BuilderTLS
from gh_docker_publish.core.settings import settings_from_values
from gh_docker_publish.edges import buildx_builders
from gh_docker_publish.errors import BuildError, InputError
from tests.integration.conftest import Outcome, octo, publish  # noqa: F401 - fixtures, reused

ROOT = Path(__file__).resolve().parents[2]
HELLO = str(ROOT / "examples" / "hello")
ENV = {"GITHUB_REPOSITORY": "octo-org/app", "GITHUB_REPOSITORY_OWNER": "octo-org"}
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


PEM = "<an existing PEM file>"
CONTRADICTIONS: list[tuple[dict[str, str], str]] = [
    ({"builder": "classic", "builder-cacert": PEM}, "builder-cacert"),
    ({"builder-cert": PEM, "builder-key": PEM}, "builder-cert"),  # auto: no endpoint
    ({"builder": "unix:///run/other.sock", "builder-cacert": PEM}, "builder-cacert"),
    ({"builder": "docker-container://bk", "builder-servername": "x"}, "builder-servername"),
    ({"builder": "tcp://bk:1234", "builder-cert": PEM}, "builder-key"),
    ({"builder": "tcp://bk:1234", "builder-key": PEM}, "builder-cert"),
    ({"builder": "tcp://bk:1234", "builder-cacert": "/nonexistent/ca.pem"}, "builder-cacert"),
    ({"builder": "docker+tcp://bk:2376", "builder-servername": "x"}, "builder-servername"),
    ({"builder": "tcp://bk"}, "builder"),
    ({"builder": "ssh://me@bk"}, "builder"),
    ({"builder": "unix://relative.sock"}, "builder"),
    ({"builder": "docker-container://-x"}, "builder"),
    ({"builder": "kubernetes"}, "builder"),
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network call to {address} before the input was refused")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("values", "name"), CONTRADICTIONS,
    ids=[",".join(f"{k}={v}" for k, v in c.items()) for c, _ in CONTRADICTIONS],
)
def test_contradictory_builder_inputs_are_refused_before_the_network(
    values: dict[str, str], name: str, pem: Path
) -> None:
    given = {k: str(pem) if v == PEM else v for k, v in values.items()}
    with pytest.raises(InputError) as failure:
        settings_from_values({"context": HELLO, **given}, ENV)
    assert failure.value.input_name == name


@pytest.mark.usefixtures("no_network")
def test_a_bad_builder_lists_every_accepted_form() -> None:
    with pytest.raises(InputError) as failure:
        settings_from_values({"context": HELLO, "builder": "ssh://me@bk"}, ENV)
    text = str(failure.value)
    for form in ("auto", "classic", "unix:///PATH", "docker+tcp://HOST:PORT",
                 "tcp://HOST:PORT", "docker-container://NAME"):
        assert form in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _remote(port: int, tls: BuilderTLS | None = None) -> BuilderLocation:
    return BuilderLocation("remote", f"tcp://127.0.0.1:{port}", tls or BuilderTLS())


def test_a_buildkitd_that_is_down_is_named(testbed: Any) -> None:
    with pytest.raises(BuildError, match=r"Input 'builder': the buildkitd at tcp://127\.0\.0\.1"
                       r":\d+ is down or unreachable"):
        buildx_builders.probe(_remote(_free_port()), None, timeout=2)


def _standin_port(testbed: Any) -> int:
    return int(urlsplit(testbed.github_url).port or 0)


def test_a_listening_socket_that_is_not_buildkit_is_named(testbed: Any) -> None:
    with pytest.raises(BuildError, match=r"does not answer as BuildKit \(gRPC\) \(it may want TLS"):
        buildx_builders.probe(_remote(_standin_port(testbed)), None, timeout=2)


def test_tls_to_a_plain_socket_is_refused_tls(testbed: Any) -> None:
    location = _remote(_standin_port(testbed), BuilderTLS(cacert=str(testbed.signing_cert)))
    with pytest.raises(BuildError, match="over TLS refused TLS"):
        buildx_builders.probe(location, None, timeout=2)


@pytest.fixture
def tls_server(testbed: Any) -> Iterator[int]:
    """A TLS server on loopback with the bed's self-signed signing certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(testbed.signing_cert, testbed.signing_key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


def test_a_certificate_the_ca_did_not_sign_is_refused(tls_server: int) -> None:
    location = _remote(tls_server, BuilderTLS(cacert=SYSTEM_CAS, servername="localhost"))
    with pytest.raises(BuildError, match=r"refused TLS .*CERTIFICATE_VERIFY_FAILED"):
        buildx_builders.probe(location, None, timeout=2)


def test_another_engine_that_is_down_is_named(testbed: Any, tmp_path: Path) -> None:
    location = BuilderLocation("docker", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(BuildError, match=r"Input 'builder': the Docker Engine at unix://.* "
                       r"does not answer as a Docker Engine"):
        buildx_builders.probe(location, None, timeout=2)


def test_a_missing_builder_container_is_named(testbed: Any, docker_client: Any) -> None:
    location = BuilderLocation("docker-container", "no-such-builder")
    with pytest.raises(BuildError, match="buildx_buildkit_no-such-builder0; buildx builder"):
        buildx_builders.probe(location, docker_client.api)


def test_a_run_with_a_down_builder_fails_before_the_build_and_pushes_nothing(
    octo: Any,  # noqa: F811 - the fixture imported above
    publish: Callable[..., Outcome],  # noqa: F811
    registry_reader: Any, unique_name: Any,
) -> None:
    image = unique_name("down")
    since = registry_reader.since()
    out = publish(
        {"image": image, "tags": "v1", "builder": f"tcp://127.0.0.1:{_free_port()}"},
        github_token=octo.github_token("octo-org/app"),
    )
    assert out.code != 0
    assert "Input 'builder': the buildkitd at tcp://127.0.0.1:" in out.log
    assert "is down or unreachable (" in out.log and "; nothing was built." in out.log
    assert "#1 [internal]" not in out.log and "::group::Build" not in out.log
    assert out.outputs.get("digest", "") == ""
    assert not [path for method, path, _ in registry_reader.access_log(since).requests
                if image in path and method in ("PUT", "POST")]
