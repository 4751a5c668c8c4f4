"""Ask the registry itself what a tag holds: the check behind "outcome unknown".

When the daemon connection drops or times out in the middle of a push, the push may have
landed anyway (the daemon or the registry finished after the client gave up: docker-py's
read timeout is per socket read, docker-py#1070; a slow blob commit aborts the containerd
store's push, moby#53700). Retrying blindly or failing blindly would both lie, so before
either the tool asks the registry: does TAG resolve to a manifest whose config is the image
we built? (Docker Registry HTTP API V2 / OCI distribution-spec "pulling manifests".)

Token auth follows the distribution token spec: a 401 names a Bearer realm, the realm
trades basic credentials for a short-lived token. A 429 or 503 with ``Retry-After`` is
waited out once (OCI spec: TOOMANYREQUESTS SHOULD carry Retry-After), never past the
caller's deadline. Credentials go only into request headers; nothing here logs them.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from gh_docker_publish.edges.registries import resolves_to_loopback

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RemoteManifest:
    """What the registry answered for a tag."""

    digest: str  # Docker-Content-Digest
    media_type: str
    config_digest: str  # "" for an index
    size: int


def base_url(registry: str, scheme: str | None = None) -> str:
    """``scheme://registry``; without a scheme, ``http`` only for a registry that resolves
    into loopback (dockerd treats 127.0.0.0/8 as insecure by default), else ``https``,
    as the docker CLI does."""
    scheme = scheme or ("http" if resolves_to_loopback(registry) else "https")
    return f"{scheme}://{registry}"


def retry_after_seconds(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                        ) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):  # not isdigit(): it also takes "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # a "-0000" zone parses naive; HTTP-dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


class RegistryClient:
    """Registry calls with one set of credentials: reads, and the one write we need (a
    cross-repository blob mount)."""

    def __init__(
        self,
        registry: str,
        username: str,
        password: str,
        *,
        scheme: str | None = None,
        timeout: float = 15.0,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.base = base_url(registry, scheme)
        self._basic = (username, password)
        self.timeout = timeout
        self.deadline = deadline
        self._sleep = sleep
        self._clock = clock
        self._session = requests.Session()
        self._session.trust_env = False  # the registry's answer, not a proxy's
        self.waited: list[float] = []  # Retry-After waits taken (for logs and tests)

    def manifest(self, repository: str, reference: str) -> RemoteManifest | None:
        """The manifest ``reference`` (a tag) points at, or None when there is none."""
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        response = self._get(url, f"repository:{repository}:pull")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        config = body.get("config") or {}
        return RemoteManifest(
            digest=response.headers.get("Docker-Content-Digest", ""),
            media_type=str(body.get("mediaType") or response.headers.get("Content-Type", "")),
            config_digest=str(config.get("digest") or ""),
            size=len(response.content),
        )

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Link blob ``digest`` of ``source`` into ``repository`` on this registry, so it
        is not uploaded again (distribution spec, "Mounting a blob from another
        repository"). True when the registry mounted it (201); a 202 means it would take an
        upload instead, and that session is cancelled."""
        url = f"{self.base}/v2/{repository}/blobs/uploads/"
        params = {"mount": digest, "from": source}
        scopes = [f"repository:{repository}:pull,push", f"repository:{source}:pull"]
        response = self._session.post(url, params=params, timeout=self.timeout)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            headers = {}
            if challenge.split(" ", 1)[0].lower() == "bearer":
                headers["Authorization"] = f"Bearer {self._bearer(challenge, scopes)}"
                response = self._session.post(url, params=params, headers=headers,
                                              timeout=self.timeout)
            else:
                response = self._session.post(url, params=params, auth=self._basic,
                                              timeout=self.timeout)
            if response.status_code == 202 and (location := response.headers.get("Location")):
                self._session.delete(requests.compat.urljoin(url, location), headers=headers,
                                     auth=None if headers else self._basic, timeout=self.timeout)
        return response.status_code == 201

    def _get(self, url: str, scope: str) -> requests.Response:
        headers = {"Accept": MANIFEST_TYPES}
        response = self._send(url, headers)
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            scheme = challenge.split(" ", 1)[0].lower()
            if scheme == "bearer":
                headers["Authorization"] = f"Bearer {self._bearer(challenge, scope)}"
                response = self._send(url, headers)
            elif scheme == "basic":
                response = self._send(url, headers, auth=self._basic)
        return response

    def _bearer(self, challenge: str, scope: str | list[str]) -> str:
        params: dict[str, str | list[str]] = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = str(params.pop("realm", ""))
        params.setdefault("scope", scope)  # several scopes: one scope= each (token spec)
        response = self._send(realm, {}, params=params, auth=self._basic)
        response.raise_for_status()
        data = response.json()
        return str(data.get("token") or data.get("access_token") or "")

    def _send(self, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        """One GET; a 429/503 with Retry-After is waited out once if the deadline allows."""
        response = self._session.get(url, headers=headers, timeout=self.timeout, **kwargs)
        if response.status_code in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait <= MAX_RETRY_AFTER and self._fits(wait):
                self.waited.append(wait)
                self._sleep(wait)
                response = self._session.get(url, headers=headers, timeout=self.timeout, **kwargs)
        return response

    def _fits(self, wait: float) -> bool:
        return self.deadline is None or self._clock() + wait < self.deadline


def pushed_digest(client: RegistryClient, ref: str, image_id: str) -> str | None:
    """The digest ``ref`` resolves to when the registry holds *our* image there, else None.

    Ours means the manifest's config is the local image's config (graphdriver store: the
    image ID is the config digest), or the manifest itself is the image ID (containerd
    store, where the ID is the manifest or index digest).
    """
    repo_path, _, tag = ref.rpartition(":")
    _registry, _, repository = repo_path.partition("/")
    try:
        remote = client.manifest(repository, tag)
    except (requests.RequestException, ValueError):
        return None
    if remote is None or not remote.digest:
        return None
    if image_id in (remote.config_digest, remote.digest):
        return remote.digest
    return None
