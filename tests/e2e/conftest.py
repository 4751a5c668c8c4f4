"""Fixtures for end-to-end runs of a Docker action through ``tests/e2e/harness.py``.

``runner`` is an ``ActionHarness`` on the test bed's daemon, building with the bed's base
images. Like every test on the bed, a bed that cannot come up fails these tests (the
``testbed`` fixture), never skips them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ActionHarness

TOY_ACTION = Path(__file__).parent / "fixtures" / "toy-action"
#: Facts about the action image a test measured (``test_action.test_action_image_facts``);
#: printed in pytest's terminal summary, so they show without ``-s``.
IMAGE_FACTS_KEY = pytest.StashKey[dict[str, Any]]()


@pytest.fixture
def harness_build_args(testbed: Any) -> dict[str, str]:
    """The bed's base images for the actions under test (the real runner passes none)."""
    return {"PYTHON_IMAGE": testbed.python_image, "BUSYBOX_IMAGE": testbed.busybox_image}


@pytest.fixture
def runner(docker_client: Any, harness_build_args: dict[str, str]) -> ActionHarness:
    """Runs a Docker action like the GitHub runner; see ``tests/e2e/harness.py``."""
    return ActionHarness(docker_client, build_args=harness_build_args)


@pytest.fixture
def toy_action() -> Path:
    return TOY_ACTION


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    facts = config.stash.get(IMAGE_FACTS_KEY, None)
    if facts:
        terminalreporter.section("action image")
        for key, value in facts.items():
            terminalreporter.write_line(f"{key}: {value}")
