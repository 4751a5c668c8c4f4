"""GitHubApi against the stand-in, counting the requests it makes (through the bed's
fault proxy, which records them): no call is made twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gh_docker_publish.edges.github_api import GitHubApi
from gh_docker_publish.errors import PublishError
from tests.integration.conftest import Outcome
from tests.testbed.faults import FaultProxy


def test_a_known_owner_type_costs_no_extra_package_lookups(
    octo: Any, publish: Callable[..., Outcome], testbed: Any, unique_name: Callable[[str], str]
) -> None:
    image = unique_name("hello")
    out = publish({"image": image, "tags": "a"}, github_token=octo.github_token("octo-org/app"))
    assert out.code == 0, out.log
    pat = octo.pat("octocat", ["read:packages", "delete:packages"])
    with FaultProxy(testbed.github_url.removeprefix("http://")) as proxy:
        api = GitHubApi(proxy.url, pat, retries=0)
        versions = list(api.package_versions("octo-org", image, "Organization"))
        assert [v.tags for v in versions] == [("a",)]
        with pytest.raises(PublishError):  # GitHub keeps the last tagged version
            api.delete_package_version("octo-org", image, versions[0].id, "Organization")
        package_gets = proxy.requests("GET", rf"/packages/container/{image}$")
        assert package_gets == [], "the package was looked up although its owner type was given"
        assert len(proxy.requests("GET", rf"/packages/container/{image}/versions")) == 1
