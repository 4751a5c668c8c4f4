"""A push that lands some tags and not others, through the whole pipeline: the registry
(behind the bed's fault proxy) refuses one tag's manifest after preflight passed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import Outcome
from tests.testbed.faults import Fault, FaultProxy

DENIED = {"errors": [{"code": "DENIED", "message": "permission_denied: write_package"}]}


def test_a_partial_push_reports_what_landed_in_outputs_summary_and_error(
    octo: Any,
    publish: Callable[..., Outcome],
    testbed: Any,
    registry_reader: Any,
    unique_name: Callable[[str], str],
) -> None:
    image = unique_name("hello")
    with FaultProxy(testbed.registry) as proxy:
        proxy.add(
            Fault(
                "status", method="PUT", path=r"/manifests/b$", status=403, body=DENIED, times=None
            )
        )
        out = publish(
            {"image": image, "tags": "a\nb\nc", "registry": proxy.address},
            github_token=octo.github_token("octo-org/app"),
        )
    assert out.code == 1
    landed = [f"{proxy.address}/octo-org/{image}:{tag}" for tag in ("a", "c")]
    refused = f"{proxy.address}/octo-org/{image}:b"

    # The error: which refs landed, which did not, and GitHub's fix for the denial.
    (error,) = [line for line in out.log.splitlines() if line.startswith("::error")]
    assert f"Not landed: {refused}" in error and "write_package" in error
    assert "Manage Actions access" in error  # GitHub's fix for this denial
    assert all(ref in error for ref in landed)

    # The outputs are written for what landed, and the registry agrees: one image, one
    # digest for every tag that landed.
    digest = registry_reader.manifest_digest(f"octo-org/{image}", "a")
    assert out.outputs["digest"] == digest
    assert registry_reader.manifest_digest(f"octo-org/{image}", "c") == digest
    assert registry_reader.manifest_digest(f"octo-org/{image}", "b") is None
    metadata = json.loads(out.outputs["report"])
    assert metadata["landed"] == landed and metadata["not_landed"] == [refused]

    # The summary says it pushed part of it, not "built, not pushed", row by row.
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in out.summary.splitlines()
        if line.startswith("| `")
    }
    assert out.summary.lower().startswith("### partly published")
    assert all(digest.split(":")[1][:12] in rows[ref] for ref in landed), out.summary
    assert "not pushed" in rows[refused]
    assert "docker pull" in out.summary
