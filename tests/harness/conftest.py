"""The harness's own tests: its fixtures, and the toy action they run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.fixtures import harness_build_args, runner  # noqa: F401 - fixtures

TOY_ACTION = Path(__file__).parent / "toy-action"


@pytest.fixture
def toy_action() -> Path:
    return TOY_ACTION
