"""Integration tests fail, never skip, when their test bed is missing: proven by running a
pytest session whose bed cannot come up (a DOCKER_HOST where no daemon answers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testbed import engines

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_bed_fails_the_tests_in_ci_and_locally(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    monkeypatch.setenv("TESTBED_DIR", str(tmp_path / "bed"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(
        test_needs_bed="def test_push(testbed):\n    assert testbed.registry\n"
    )
    result = pytester.runpytest_subprocess("-p", "tests.testbed.fixtures", "-q")
    outcomes = result.parseoutcomes()
    # One error per engine the test runs on (tests/testbed/engines.py); none passes or skips.
    assert outcomes.get("errors") == len(engines.selected()), outcomes
    assert "skipped" not in outcomes and "passed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["*The test bed is not usable*"])
