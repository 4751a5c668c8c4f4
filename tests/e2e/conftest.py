"""Fixtures for end-to-end runs of the action through the runner harness
(``tests/harness/``): its ``runner`` fixture, and the terminal summary of image facts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.fixtures import harness_build_args, runner  # noqa: F401 - fixtures

#: Facts about the action image a test measured (``test_action.test_action_image_facts``);
#: printed in pytest's terminal summary, so they show without ``-s``.
IMAGE_FACTS_KEY = pytest.StashKey[dict[str, Any]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    facts = config.stash.get(IMAGE_FACTS_KEY, None)
    if facts:
        terminalreporter.section("action image")
        for key, value in facts.items():
            terminalreporter.write_line(f"{key}: {value}")
