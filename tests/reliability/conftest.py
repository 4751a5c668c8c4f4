"""Fixtures and the record behind ``make reliability``.

Every test in this directory belongs to a category named by its module
(``test_faults.py`` -> ``faults``). After the session each category's cases are written
to ``.testbed-reports/reliability-<category>.json`` (outcome plus the numbers a test added
with ``record_property``: ``forms_searched``, ``forms_found``, ``runs``, ``consistent``),
and ``scripts/reliability_table.py`` prints the table from those files.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.harness.fixtures import (  # noqa: F401 - the runner harness's fixtures, reused
    harness_build_args,
    runner,
)
from tests.testbed.faults import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / ".testbed-reports"
_cases: dict[str, list[dict[str, Any]]] = defaultdict(list)


def _category(item: pytest.Item) -> str:
    return Path(str(item.fspath)).stem.removeprefix("test_")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if Path(str(item.fspath)).parent != Path(__file__).parent:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _cases[_category(item)].append(
            {
                "case": item.nodeid.split("::", 1)[1],
                "outcome": report.outcome,
                "seconds": round(report.duration, 2),
                **dict(item.user_properties),
            }
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _cases:
        return
    REPORTS.mkdir(exist_ok=True)
    for category, cases in _cases.items():
        record = {"category": category, "finished": time.time(), "cases": cases}
        (REPORTS / f"reliability-{category}.json").write_text(json.dumps(record, indent=1))


@pytest.fixture
def registry_proxy(testbed: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the bed's registry; push to ``proxy.address``."""
    with FaultProxy(testbed.registry) as proxy:
        yield proxy


@pytest.fixture
def api_proxy(testbed: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the GitHub stand-in; use ``proxy.url`` as the API URL."""
    with FaultProxy(testbed.github_url.removeprefix("http://")) as proxy:
        yield proxy


@pytest.fixture
def small_image(docker_client: Any, testbed: Any, unique_name: Callable[[str], str]) -> str:
    """A tiny image of its own (one small new layer): its blobs are not in the registry yet."""
    tag = f"reliability/{unique_name('img')}:src"
    marker = unique_name("layer")
    dockerfile = f"FROM {testbed.busybox_image}\nRUN echo {marker} > /marker\n"
    import io

    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


@pytest.fixture
def low_timeout_client(testbed: Any) -> Iterator[Any]:
    """An APIClient whose socket read timeout is 3 s: a quiet push phase outlasts it."""
    client = docker.APIClient(base_url=testbed.docker_host, version="auto", timeout=3)
    yield client
    client.close()
