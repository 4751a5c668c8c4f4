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
from tests.testbed import action_image


@pytest.fixture
def harness_build_args(testbed: Any) -> dict[str, str]:
    """The bed's build arguments for the actions under test (the real runner passes none):
    the toy action's ``BUSYBOX_IMAGE``, the product's ``APT_CHECK_VALID_UNTIL``."""
    return {"BUSYBOX_IMAGE": testbed.busybox_image, **action_image.BUILD_ARGS}


@pytest.fixture
def runner(docker_client: Any, harness_build_args: dict[str, str], testbed: Any) -> ActionHarness:
    """Runs a Docker action like the GitHub runner; see ``tests/harness/runner.py``. The
    product's Dockerfile is built with the bed's Python base (tests/testbed/action_image.py)."""
    return ActionHarness(
        docker_client,
        build_args=harness_build_args,
        dockerfile_rewrite=lambda text: bed_base(text, testbed.python_image),
    )


def bed_base(dockerfile_text: str, python_image: str) -> str:
    """The product's Dockerfile on the bed's base; other actions' Dockerfiles unchanged."""
    if action_image.PYTHON_FROM.search(dockerfile_text) is None:
        return dockerfile_text
    return action_image.for_bed(dockerfile_text, python_image)
