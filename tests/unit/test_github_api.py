"""GitHubApi's bounds: no answer from GitHub may make a run wait longer than it allows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from urllib3.response import HTTPResponse

from gh_docker_publish.edges.github_api import MAX_WAIT_SECONDS, GitHubApi, bounded_retry
from gh_docker_publish.errors import GitHubApiError


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


# --- github api odd answers ----------------------------------------
# GitHubApi.repository when the "API" answers 200 with something that is not a repository
# (GITHUB_API_URL pointing at a GHES web front end or a proxy page). publish.run reads the
# repository on a background thread for the labels and turns a GitHubApiError into a
# warning; any other exception would end the run with a traceback.

class _Pages(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, tuple[bytes, str]]] = {
        "/api/repos/o/html": (b"<html>sign in</html>", "text/html"),
        "/api/repos/o/empty": (b"{}", "application/json"),
        "/api/repos/o/list": (b"[]", "application/json"),
    }

    def do_GET(self) -> None:
        body, kind = self.bodies.get(self.path, (b'{"message": "Not Found"}', "application/json"))
        self.send_response(200 if self.path in self.bodies else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()


@pytest.mark.parametrize("name", ["html", "empty", "list"])
def test_an_answer_that_is_no_repository_is_a_github_api_error(api_url: str, name: str) -> None:
    api = GitHubApi(api_url, "ghp_not-a-real-token", retries=0)
    with pytest.raises(GitHubApiError, match=f"o/{name}"):
        api.repository(f"o/{name}")


def test_not_found_is_none(api_url: str) -> None:
    assert GitHubApi(api_url, "ghp_not-a-real-token", retries=0).repository("o/none") is None
