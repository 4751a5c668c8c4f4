"""Fixtures for running a Docker action through the harness (``runner.py``), shared by the
harness's own tests, the e2e suite and the reliability suite.

``runner`` is an ``ActionHarness`` on the test bed's daemon, building with the bed's base
images. Like every test on the bed, a bed that cannot come up fails these tests (the
``testbed`` fixture), never skips them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.runner import ActionHarness


@pytest.fixture
def harness_build_args(testbed: Any) -> dict[str, str]:
    """The bed's base images for the actions under test (the real runner passes none)."""
    return {"PYTHON_IMAGE": testbed.python_image, "BUSYBOX_IMAGE": testbed.busybox_image}


@pytest.fixture
def runner(docker_client: Any, harness_build_args: dict[str, str]) -> ActionHarness:
    """Runs a Docker action like the GitHub runner; see ``tests/harness/runner.py``."""
    return ActionHarness(docker_client, build_args=harness_build_args)
