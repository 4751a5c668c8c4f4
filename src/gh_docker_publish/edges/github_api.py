"""The GitHub REST calls the product makes: PyGithub for users and repositories, its
requester for the Packages API (PyGithub has no Packages classes).

Every call is bounded: a per-request timeout and a small retry budget, so a slow or
rate-limited API costs seconds, not the job's whole timeout (PyGithub's default retry
can wait out a rate limit for a long time).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import requests

from gh_docker_publish.core.settings import Secret
from gh_docker_publish.errors import CredentialError, GitHubApiError

if TYPE_CHECKING:
    from github import GithubException

INTEGRATION_DENIED = "Resource not accessible by integration"

T = TypeVar("T")


@dataclass(frozen=True)
class RepositoryInfo:
    """What the labels and the token choice need to know about a repository."""

    full_name: str
    name: str
    description: str
    license_spdx: str | None
    html_url: str
    private: bool
    owner_type: str  # "User" or "Organization"


@dataclass(frozen=True)
class PackageInfo:
    """A container package and the repository it is linked to (None when not linked)."""

    owner: str
    name: str
    repository: str | None
    visibility: str
    html_url: str


@dataclass(frozen=True)
class PackageVersion:
    """One version of a container package: a manifest digest and its tags."""

    id: int
    digest: str
    tags: tuple[str, ...]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class TokenOwner:
    """Who a personal access token belongs to, and the scopes GitHub says it has."""

    login: str
    scopes: frozenset[str]


def _pygithub() -> ModuleType:
    """PyGithub, imported on first use: importing it takes ~0.2 s, and a run asks the
    Docker daemon (and often needs no API call at all) before that."""
    return importlib.import_module("github")


#: The longest wait a GitHub answer may ask for (Retry-After, rate limits) before we give up
#: on it: a run must fail in seconds with a message, not hang until the job's timeout.
MAX_WAIT_SECONDS = 30.0


def bounded_retry(total: int) -> Any:
    """PyGithub's retry with every wait capped: urllib3 sleeps whatever ``Retry-After``
    asks (an hour, if a proxy says so), and GithubRetry's rate-limit waits default to
    unbounded."""
    github_retry: Any = _pygithub().GithubRetry  # imported lazily, so untyped here

    class BoundedRetry(github_retry):  # type: ignore[misc]
        def get_retry_after(self, response: Any) -> float | None:
            after: float | None = super().get_retry_after(response)
            return None if after is None else min(after, MAX_WAIT_SECONDS)

    return BoundedRetry(
        total=total,
        backoff_factor=0.5,
        max_rate_limit_wait=MAX_WAIT_SECONDS,
        secondary_rate_wait=MAX_WAIT_SECONDS,
    )


class GitHubApi:
    """A bounded client for one token against one API base URL."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 15, retries: int = 2) -> None:
        self.api_url = api_url.rstrip("/")
        github = _pygithub()
        self._client = github.Github(
            base_url=self.api_url,
            auth=github.Auth.Token(token),
            timeout=int(timeout),
            retry=bounded_retry(retries),
            seconds_between_requests=None,
            seconds_between_writes=None,
        )

    def token_owner(self) -> TokenOwner:
        """GET /user: the PAT's owner and scopes (a GITHUB_TOKEN cannot call it)."""
        login = self._call("GET /user", lambda: self._client.get_user().login)
        scopes = frozenset(s.strip() for s in (self._client.oauth_scopes or []) if s.strip())
        return TokenOwner(login=str(login), scopes=scopes)

    def repository(self, full_name: str) -> RepositoryInfo | None:
        """GET /repos/{owner}/{repo}; None when GitHub says 404 (absent or not visible)."""
        data = self._get_json(f"/repos/{full_name}", not_found_ok=True)
        if data is None:
            return None
        if not isinstance(data, dict) or not data.get("full_name") or not data.get("name"):
            # A 200 that is no repository: a web front end or proxy at GITHUB_API_URL.
            raise GitHubApiError(
                f"GET /repos/{full_name} at {self.api_url} did not answer with a repository.",
                hint="Check that GITHUB_API_URL is the REST API (on GHES: https://HOST/api/v3).",
            )
        license_info = data.get("license") or {}
        if not isinstance(license_info, dict):
            license_info = {}
        return RepositoryInfo(
            full_name=data["full_name"],
            name=data["name"],
            description=data.get("description") or "",
            license_spdx=license_info.get("spdx_id"),
            html_url=data.get("html_url", ""),
            private=bool(data.get("private")),
            owner_type=(data.get("owner") or {}).get("type", ""),
        )

    def package(self, owner: str, name: str, owner_type: str | None = None) -> PackageInfo | None:
        """The container package OWNER/NAME, or None when it does not exist.

        The Packages API has separate paths for organizations and users; when the
        owner's type is unknown both are tried.
        """
        for path in _package_paths(owner, name, owner_type):
            data = self._get_json(path, not_found_ok=True)
            if data is not None:
                linked = data.get("repository") or {}
                return PackageInfo(
                    owner=owner,
                    name=data.get("name", name),
                    repository=linked.get("full_name"),
                    visibility=data.get("visibility", ""),
                    html_url=data.get("html_url", ""),
                )
        return None

    def package_versions(
        self, owner: str, name: str, owner_type: str | None = None, per_page: int = 100
    ) -> Iterator[PackageVersion]:
        """Every version of a package, following GitHub's pagination."""
        base = self._existing_package_path(owner, name, owner_type)
        page = 1
        while True:
            data = self._get_json(f"{base}/versions?per_page={per_page}&page={page}")
            for item in data or []:
                tags = ((item.get("metadata") or {}).get("container") or {}).get("tags") or []
                yield PackageVersion(
                    id=int(item["id"]),
                    digest=item["name"],
                    tags=tuple(tags),
                    created_at=item.get("created_at", ""),
                    updated_at=item.get("updated_at", ""),
                )
            if not data or len(data) < per_page:
                return
            page += 1

    def delete_package_version(
        self, owner: str, name: str, version_id: int, owner_type: str | None = None
    ) -> None:
        """DELETE one package version (needs a PAT with delete:packages)."""
        path = f"{self._existing_package_path(owner, name, owner_type)}/versions/{version_id}"
        requester = self._client.requester
        self._call(f"DELETE {path}", lambda: requester.requestJsonAndCheck("DELETE", path))

    def _existing_package_path(self, owner: str, name: str, owner_type: str | None) -> str:
        """The package's API path. Probed only when the owner's type is unknown: a caller
        that knows it has seen the package, and a missing one still answers 404 next."""
        paths = _package_paths(owner, name, owner_type)
        if owner_type is not None and len(paths) == 1:
            return paths[0]
        for path in paths:
            if self._get_json(path, not_found_ok=True) is not None:
                return path
        raise GitHubApiError.package_missing(owner, name)

    def _get_json(self, path: str, *, not_found_ok: bool = False) -> Any:
        answer = self._call(
            f"GET {path}",
            lambda: self._client.requester.requestJsonAndCheck("GET", path),
            not_found_ok=not_found_ok,
        )
        return None if answer is None else answer[1]

    def _call(self, what: str, call: Callable[[], T], *, not_found_ok: bool = False) -> T | None:
        """Run one API call; PyGithub and requests failures become errors that say what to do."""
        try:
            return call()
        except _pygithub().GithubException as exc:
            if exc.status == 404 and not_found_ok:
                return None
            raise _explain(what, exc) from None
        except requests.RequestException as exc:
            raise GitHubApiError(
                f"{what} at {self.api_url} failed: {type(exc).__name__}.",
                hint="GitHub's API did not answer in time; re-run the job. "
                "On GHES check that GITHUB_API_URL is reachable from the runner.",
            ) from None


def _package_paths(owner: str, name: str, owner_type: str | None) -> list[str]:
    encoded = quote(name, safe="")
    by_type = {
        "Organization": f"/orgs/{owner}/packages/container/{encoded}",
        "User": f"/users/{owner}/packages/container/{encoded}",
    }
    if owner_type in by_type:
        return [by_type[owner_type]]
    return list(by_type.values())


def _explain(what: str, exc: GithubException) -> Exception:
    """One line per GitHub answer: what it means and what to change."""
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.status)
    docs = str(data.get("documentation_url") or "")
    if exc.status == 401:
        return CredentialError(
            f"{what}: GitHub says 'Bad credentials'.",
            hint="The token is wrong, expired or revoked; create a new one and update the secret.",
            docs_url=docs,
        )
    if exc.status == 403 and INTEGRATION_DENIED in message:
        return CredentialError(
            f"{what}: GitHub says '{INTEGRATION_DENIED}'.",
            hint="A GITHUB_TOKEN cannot make this call; supply a personal access token "
            "(classic) in the `token` input.",
            docs_url=docs,
        )
    if exc.status == 403:
        return CredentialError(
            f"{what}: GitHub says '{message}'.",
            hint="The token lacks a scope or permission this call needs.",
            docs_url=docs,
        )
    return GitHubApiError(f"{what}: GitHub answered {exc.status} '{message}'.", docs_url=docs)


class ApiClients:
    """One GitHub API client per token per run, and one ``GET /user`` per PAT (as twine
    binds a credential into one ``Repository`` client once). The flows ask this for a
    client instead of calling the factory, so publish's package lookup, its labels' read,
    the user name and the base-image readers share one client and one answer."""

    def __init__(self, factory: Callable[[str, str], GitHubApi], api_url: str) -> None:
        self._factory = factory
        self._api_url = api_url
        self._clients: dict[str, GitHubApi] = {}
        self._owners: dict[str, TokenOwner] = {}
        self._lock = threading.Lock()  # publish reads the labels on a background thread

    def __call__(self, token: Secret) -> GitHubApi:
        with self._lock:
            client = self._clients.get(token.reveal())
            if client is None:
                client = self._factory(self._api_url, token.reveal())
                self._clients[token.reveal()] = client
            return client

    def owner(self, token: Secret) -> TokenOwner:
        """``GET /user`` for this PAT, asked once per run."""
        known = self._owners.get(token.reveal())
        if known is None:
            known = self(token).token_owner()
            self._owners[token.reveal()] = known
        return known

