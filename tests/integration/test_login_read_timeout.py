"""engine.login when the daemon does not answer within the client's read timeout (here: a
registry that accepts the connection and never speaks, so the daemon's login hangs).
requests raises ReadTimeout, which is not a ConnectionError: it must still end as a
RegistryError naming the registry, never as a traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import engine
from gh_docker_publish.errors import RegistryError

pytestmark = pytest.mark.integration


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self.warnings.append(message)


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """Accepts TCP connections on loopback and never answers them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


def test_login_read_timeout_is_a_registry_error(testbed: Any, silent_registry: str) -> None:
    client = engine.connect(str(testbed.docker_host), timeout=2)
    log = _Log()
    with pytest.raises(RegistryError, match=f"Login to {silent_registry} failed after 2 attempts"):
        engine.login(client, Credential(silent_registry, "someone", Secret("not-a-real-token"),
                                        "token", "test"), log=log,
                     retry=engine.RetryPolicy(attempts=2, initial=0.01, sleep=lambda _: None))
    assert len(log.warnings) == 1  # the one retry was announced
    assert all("not-a-real-token" not in w for w in log.warnings)
