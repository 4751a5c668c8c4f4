"""Fixtures for end-to-end runs of a Docker action through ``tests/e2e/harness.py``.

``runner`` is an ``ActionHarness`` on the test bed's daemon: the bed's ``docker_client``
fixture when it is registered, else a client on ``DOCKER_HOST`` (from the environment or
the bed's env file). With ``CI=true`` a missing daemon fails the test; elsewhere it skips,
so a laptop without Docker can still run the unit tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.e2e.harness import ActionHarness, docker_host_from_env

TOY_ACTION = Path(__file__).parent / "fixtures" / "toy-action"
#: Facts about the action image a test measured (``test_action.test_action_image_facts``);
#: printed in pytest's terminal summary, so they show without ``-s``.
IMAGE_FACTS_KEY = pytest.StashKey[dict[str, Any]]()
BED_BUSYBOX = "testbed/busybox:latest"
DEV_BUSYBOX = "tb/busybox:1"


def _missing(reason: str) -> NoReturn:
    """Fail in CI (a silent skip would hide a broken bed), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"e2e: {reason}", pytrace=False)
    pytest.skip(f"e2e: {reason}")


@pytest.fixture(scope="session")
def _own_docker_client() -> Iterator[Any]:
    import docker

    host = docker_host_from_env() or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=host, version="auto", timeout=120)
        client.ping()
    except Exception as exc:  # any failure to reach the daemon means "no test bed"
        _missing(f"no Docker daemon at {host}: {exc}")
    yield client
    client.close()


@pytest.fixture
def harness_docker_client(request: pytest.FixtureRequest) -> Any:
    """The bed's ``docker_client`` when registered, else our own client."""
    try:
        return request.getfixturevalue("docker_client")
    except pytest.FixtureLookupError:
        return request.getfixturevalue("_own_docker_client")


def _has_image(client: Any, name: str) -> bool:
    try:
        client.images.get(name)
    except Exception:  # ImageNotFound, or an API error: either way not usable
        return False
    return True


@pytest.fixture
def harness_build_args(harness_docker_client: Any) -> dict[str, str]:
    """Base images for the actions under test; the runner passes no build args."""
    args = {"PYTHON_IMAGE": os.environ.get("TESTBED_PYTHON_IMAGE", "testbed/python:3")}
    if not _has_image(harness_docker_client, BED_BUSYBOX):
        if not _has_image(harness_docker_client, DEV_BUSYBOX):
            _missing(f"neither {BED_BUSYBOX} nor {DEV_BUSYBOX} is on the daemon")
        args["BUSYBOX_IMAGE"] = DEV_BUSYBOX
    return args


@pytest.fixture
def runner(harness_docker_client: Any, harness_build_args: dict[str, str]) -> ActionHarness:
    """Runs a Docker action like the GitHub runner; see ``tests/e2e/harness.py``."""
    return ActionHarness(harness_docker_client, build_args=harness_build_args)


@pytest.fixture
def toy_action() -> Path:
    return TOY_ACTION


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    facts = config.stash.get(IMAGE_FACTS_KEY, None)
    if facts:
        terminalreporter.section("action image")
        for key, value in facts.items():
            terminalreporter.write_line(f"{key}: {value}")
