"""Tests on the bed run once per engine; a test excluded from an engine says which and why.

Collection and skipped cases only: nothing here brings the bed up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testbed import engines

ROOT = Path(__file__).resolve().parents[2]

TESTS = """
import pytest

def test_on_the_bed(testbed):
    pass

@pytest.mark.engines(exclude={"e20-classic": "needs the containerd image store"})
def test_not_on_20(engine):
    pass

def test_unit():
    pass
"""


@pytest.fixture
def session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("TESTBED_ENGINES", raising=False)
    pytester.makepyfile(test_engines=TESTS)
    return pytester


def test_each_bed_test_gets_one_id_per_engine_and_unit_tests_one(
    session: pytest.Pytester,
) -> None:
    result = session.runpytest_subprocess("-p", "tests.testbed.fixtures", "--collect-only", "-q")
    names = [spec.name for spec in engines.ENGINES]
    assert names == ["e20-classic", "e28-classic", "e28-containerd"]
    result.stdout.fnmatch_lines([f"*test_on_the_bed[[]{name}[]]" for name in names])
    result.stdout.fnmatch_lines(["*::test_unit"])
    assert "test_unit[" not in result.stdout.str()


def test_an_excluded_engine_is_skipped_with_its_reason(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess(
        "-p", "tests.testbed.fixtures", "-q", "-rs", "-k", "test_not_on_20 and e20"
    )
    outcomes = result.parseoutcomes()
    assert outcomes["skipped"] == 1 and outcomes["deselected"] == 6, outcomes
    assert "passed" not in outcomes and "errors" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["*not on e20-classic: needs the containerd image store*"])


def test_testbed_engines_limits_the_engines(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTBED_ENGINES", "e28-containerd")
    result = session.runpytest_subprocess("-p", "tests.testbed.fixtures", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_on_the_bed[[]e28-containerd[]]"])
    assert "e20-classic" not in result.stdout.str()


def test_an_unknown_engine_in_the_marker_is_a_usage_error(session: pytest.Pytester) -> None:
    session.makepyfile(
        test_typo='import pytest\n\n@pytest.mark.engines(exclude={"e28": "x"})\n'
        "def test_x(engine):\n    pass\n"
    )
    result = session.runpytest_subprocess("-p", "tests.testbed.fixtures", "--collect-only")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*engines(exclude=...) names unknown engines*e28*"])
