"""GitHubApi's bounds: no answer from GitHub may make a run wait longer than it allows."""

from __future__ import annotations

from urllib3.response import HTTPResponse

from gh_docker_publish.edges.github_api import MAX_WAIT_SECONDS, bounded_retry


def test_retry_after_is_capped() -> None:
    retry = bounded_retry(2)
    asked = HTTPResponse(status=503, headers={"Retry-After": "3600"})
    assert retry.get_retry_after(asked) == MAX_WAIT_SECONDS
    modest = HTTPResponse(status=429, headers={"Retry-After": "2"})
    assert retry.get_retry_after(modest) == 2


def test_the_cap_survives_urllib3_renewing_the_retry() -> None:
    # urllib3 makes a new Retry object per attempt (Retry.new): the cap must come along.
    renewed = bounded_retry(2).new(total=1)
    assert (
        renewed.get_retry_after(HTTPResponse(status=503, headers={"Retry-After": "999"}))
        == MAX_WAIT_SECONDS
    )
