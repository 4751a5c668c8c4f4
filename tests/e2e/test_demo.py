"""``make demo`` keeps working: it runs against the bed and proves its own claims."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import demo


def test_demo_publishes_pulls_and_uploads_nothing_the_second_time(
    testbed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(testbed)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "docker pull " in printed and f"DOCKER_HOST={testbed.docker_host}" in printed
    assert "Status: " in printed  # the docker CLI's pull result
    assert printed.rstrip().endswith("Demo done.")
    second = printed.split("Publish the same commit again", 1)[1]
    assert "0 new blobs uploaded" in second and "(unchanged)" in second
    assert "Ref" in printed and "Digest" in printed  # the summary's table, as text
