"""The one registry client: how the action itself talks to a registry, and how every
registry or daemon answer is classified.

- The answer table (``classify``): denied (with the hint that says the fix), permanent, or
  transient. The engine's login/push/pull, the preflight and the retries all use it. The
  registry's status comes from the daemon's text (stated, or implied by a registry error
  code the containerd store and BuildKit pass on) or, when the containerd store gives only
  the registry's own message ("error from registry: ..."), from our own read of the same
  tag (``check_pushed``): no guessing from English (issue 13 §3).
- Ping (``GET /v2/``), the auth challenge (parsed here only), the token (distribution token
  auth: a 401 names a Bearer realm, which trades basic credentials for a short-lived
  token), manifest reads and the upload probe, with the run's one ``Credential``.
- ``scheme_for``: http or https, decided once.

Why reads: when the daemon connection drops or times out in the middle of a push, the push
may have landed anyway (docker-py's read timeout is per socket read, docker-py#1070; a slow
blob commit aborts the containerd store's push, moby#53700). Retrying blindly or failing
blindly would both lie, so before either the tool asks the registry: does TAG resolve to a
manifest whose config is the image we built? (OCI distribution-spec "pulling manifests".)
A 429 or 503 with ``Retry-After`` is waited out once (OCI spec: TOOMANYREQUESTS SHOULD
carry Retry-After), never past the caller's deadline. Credentials go only into request
headers; nothing here logs them.
"""

from __future__ import annotations

import base64
import email.utils
import enum
import ipaddress
import json
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.refs import GHCR

# --- the answer table: denied (with its hint), permanent, transient --------------------------

#: (substring of the registry's message, lowercased; hint template). First match wins,
#: so the specific GitHub texts come before the generic ``denied``/``unauthorized``.
DENIAL_HINTS: tuple[tuple[str, str], ...] = (
    (
        "permission_denied: write_package",
        "The token may not write this package. Grant `permissions: packages: write` to the "
        "job; if the package already exists, give this repository the Write role under "
        'the package\'s "Manage Actions access" settings ({package_settings_url}); a '
        "personal access token needs the `write:packages` scope.",
    ),
    (
        "does not match expected scopes",
        "The personal access token lacks a scope: it needs `write:packages` (and `repo` "
        "for private repositories on the GHES Docker registry). Edit the token's scopes, "
        "or create a new one, and update the secret.",
    ),
    (
        # "... to Create organization package" (new package) and "... to Write ..." (existing)
        "installation not allowed to",
        "GITHUB_TOKEN may not write this organization package: add {repository} with the "
        'Write role under the package\'s "Manage Actions access" settings '
        "({package_settings_url}), or publish with a PAT that has `write:packages`.",
    ),
    (
        "denied",
        "The registry denied access to {image}. Check `permissions: packages: write` for "
        'the job, the package\'s "Manage Actions access" settings ({package_settings_url}), '
        "and for a PAT the `write:packages` scope.",
    ),
    (
        "unauthorized",
        "{registry} did not accept the credentials ({token_source}). Check the token is "
        "valid and not expired; a PAT needs `write:packages` (and `repo` for private "
        "repositories on the GHES Docker registry).",
    ),
    (
        "401",
        "{registry} did not accept the credentials ({token_source}). Check the token is "
        "valid and not expired; a PAT needs `write:packages`.",
    ),
    (
        "incorrect username or password",
        "{registry} did not accept the credentials ({token_source}). Check the username and "
        "the token.",
    ),
)

#: What a hint says when the caller has no better value for a field.
HINT_DEFAULTS: Mapping[str, str] = {
    "package_settings_url": "the package's settings page",
    "repository": "this repository",
    "image": "the image",
    "registry": "The registry",
    "token_source": "the token in use",
}


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return HINT_DEFAULTS.get(key, key)


def _mentions(low: str, needle: str) -> bool:
    """``needle`` in ``low``; a status code (``401``) only as a number of its own, never as
    digits inside a digest or an upload UUID that a failed request's URL carries."""
    if needle.isdigit():
        return re.search(rf"(?<![0-9a-z]){needle}(?![0-9a-z])", low) is not None
    return needle in low


def denial_hint(message: str, fields: Mapping[str, str] | None = None) -> str:
    """The fix for a registry denial, or "" when the message is not a denial."""
    low = message.lower()
    for needle, template in DENIAL_HINTS:
        if _mentions(low, needle):
            return template.format_map(_Fields(fields or {}))
    return ""


# Never retried: the daemon itself wraps these in DoNotRetry (moby distribution/errors.go),
# and hammering a registry with a bad token only earns a lockout.
_PERMANENT = (
    "denied",
    "unauthorized",
    "401",
    "403",
    "forbidden",
    "name_unknown",
    "manifest unknown",
    "unsupported",
    "tag does not exist",
    "incorrect username or password",
    "no basic auth credentials",
)
# Retried: 5xx (the daemon's UnexpectedHTTPStatusError text) and broken connections.
_TRANSIENT = (
    "received unexpected http status: 50",
    "connection reset",
    "connection refused",
    "broken pipe",
    "unexpected eof",
    ": eof",
    "i/o timeout",
    "tls handshake timeout",
    "timeout awaiting response headers",  # containerd store push, moby#53700
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
)


#: A registry's rate limit: worth another try after a wait. dockerd drops the Retry-After
#: header, so the wait comes from our own registry read before the retry (registry_api
#: honours Retry-After there) or, without one, from the backoff.
_RATE_LIMITED = ("toomanyrequests", "too many requests", "429")

#: The registry's error codes with the status each stands for (OCI distribution-spec "error
#: codes"; UNKNOWN and UNAVAILABLE from distribution's registry/api/errcode), spelled as
#: the containerd store passes them on: lowercase, ``_`` as a space. When the registry's
#: message is the code's own, that store's whole report is "error from registry: <code>"
#: (seen on Engine 28.5), so the code is the only status there is.
REGISTRY_ERROR_CODES: Mapping[str, int] = {
    "toomanyrequests": 429,
    "unknown": 500,
    "unavailable": 503,
    "unauthorized": 401,
    "denied": 403,
    "unsupported": 405,
    "blob unknown": 404,
    "blob upload invalid": 400,
    "blob upload unknown": 404,
    "digest invalid": 400,
    "manifest blob unknown": 404,
    "manifest invalid": 400,
    "manifest unknown": 404,
    "name invalid": 400,
    "name unknown": 404,
    "size invalid": 400,
}

#: How the containerd image store reports a registry's JSON error body: the messages only,
#: one a line, without the HTTP status (moby daemon/containerd, Engine 28.5).
FROM_REGISTRY = "error from registry: "
#: How BuildKit pushing with containerd's resolver reports one: "failed to push REF:
#: <code>" or "<code>: <the registry's own message>" (buildx 0.29 on Engine 28.5).
_FAILED_TO_PUSH = re.compile(r"failed to push \S+: (?P<code>[a-z_ ]+?)(?::|$)", re.MULTILINE)

#: A status the daemon's text does state: the classic store's "received unexpected HTTP
#: status: 503 Service Unavailable", containerd's "unexpected status from PUT request to
#: URL: 502 Bad Gateway" (BuildKit pushing, or the containerd store without a JSON body).
_STATED_STATUS = re.compile(
    r"(?:received unexpected http status|unexpected status from \w+ request to \S+): "
    r"(?P<status>[1-5][0-9]{2})\b"
)

#: A registry's answer worth another try: rate limited, failed, or a gateway in front of it.
_BUSY_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_busy(status: int | None) -> bool:
    """True for a registry answer that says "not now" rather than "never" (429, 5xx)."""
    return status in _BUSY_STATUSES


class Kind(enum.Enum):
    """How to treat a registry's or the daemon's answer."""

    DENIED = "denied"  # the credentials may not do this: never retried, a hint says the fix
    PERMANENT = "permanent"  # retrying cannot help (unknown manifest, unsupported, ...)
    TRANSIENT = "transient"  # a 5xx, a rate limit or a dropped connection: retry


@dataclass(frozen=True)
class Verdict:
    """One answer, classified: its kind, for a denial the fix (fields filled in), and the
    registry's HTTP status when the text states it or a registry error code implies it."""

    kind: Kind
    hint: str = ""
    registry_status: int | None = None
    #: A registry error reported without its status (the containerd store's "error from
    #: registry: <the registry's own message>"): only our own registry read can tell
    #: whether the registry is busy; until then it counts as permanent.
    status_unknown: bool = False

    @property
    def transient(self) -> bool:
        return self.kind is Kind.TRANSIENT


#: Gateway answers: the registry or a proxy in front of it failed, worth another try.
_GATEWAY_STATUSES = (502, 503, 504)


def _registry_status_in(text: str) -> tuple[int | None, bool]:
    """The registry's HTTP status as the daemon's ``text`` gives it: stated, or implied by
    the registry error codes the containerd store passes on. Also whether the text is a
    registry error whose status it does not give (a message of the registry's own)."""
    low = text.lower()
    stated = _STATED_STATUS.search(low)
    if stated:
        return int(stated["status"]), False
    coded = _FAILED_TO_PUSH.search(low)
    if coded and coded["code"].strip() in REGISTRY_ERROR_CODES:
        return REGISTRY_ERROR_CODES[coded["code"].strip()], False
    if FROM_REGISTRY not in low:
        return None, False
    lines = low.split(FROM_REGISTRY, 1)[1].splitlines()
    codes = [REGISTRY_ERROR_CODES.get(line.strip()) for line in lines if line.strip()]
    if codes and all(codes):
        return max(c for c in codes if c is not None), False
    return None, True


def classify(text: str, status: int | None = None,
             fields: Mapping[str, str] | None = None, *,
             registry_status: int | None = None) -> Verdict:
    """The one classification of a registry or daemon answer: denied (with the hint),
    permanent, or transient. ``status``: the HTTP status of the daemon's own answer (an
    Engine API error) where there is one; ``registry_status``: the registry's, when our own
    registry read learned it. dockerd 20.10 answers a registry 401 with HTTP 500, so the
    text decides first; then the registry's status (stated in the text, implied by its
    error code, or ``registry_status``): 429 and 5xx are worth another try."""
    hint = denial_hint(text, fields)
    low = text.lower()
    in_text, unknown = _registry_status_in(text)
    known = registry_status or in_text
    if hint or any(_mentions(low, p) for p in _PERMANENT):
        return Verdict(Kind.DENIED if hint else Kind.PERMANENT, hint, known)
    if any(_mentions(low, p) for p in _RATE_LIMITED) or any(p in low for p in _TRANSIENT):
        return Verdict(Kind.TRANSIENT, registry_status=known)
    if is_busy(known) or status in _GATEWAY_STATUSES:
        return Verdict(Kind.TRANSIENT, registry_status=known)
    return Verdict(Kind.PERMANENT, registry_status=known,
                   status_unknown=unknown and known is None)


def is_transient(message: str) -> bool:
    """True when the text reads like a 5xx, a rate limit or a dropped connection; never for
    a denial."""
    return classify(message).transient



# --- talking to a registry ------------------------------------------------------------------

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
class Challenge:
    """A ``WWW-Authenticate`` challenge: ``bearer`` (distribution token auth) or ``basic``."""

    scheme: str  # lowercase; "" when there is none
    params: Mapping[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str) -> Challenge:
    """The one parser of a registry's auth challenge (distribution token spec)."""
    scheme, _, rest = header.strip().partition(" ")
    return Challenge(scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest)))


def answers_like_registry(response: requests.Response) -> bool:
    """The distribution spec's API version check: the header, or a 401 with a challenge."""
    if "Docker-Distribution-Api-Version" in response.headers:
        return True
    return response.status_code == 401 and "WWW-Authenticate" in response.headers


PROBE_TIMEOUT = (3.05, 5.0)  # connect, read: a registry answers /v2/ at once


def ping_anonymously(url: str) -> requests.Response:
    """``GET /v2/`` without credentials, for "is there a registry here" (the GHES probe).
    No redirects: a web front end redirecting /v2/ to a login page is not a registry."""
    return requests.get(url, timeout=PROBE_TIMEOUT, allow_redirects=False)


def error_text(response: requests.Response) -> str:
    """The registry's error message (distribution's ``{"errors": [...]}``) or the status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            first = errors[0]
            return f"{str(first.get('code', '')).lower()}: {first.get('message', '')}".strip(": ")
        if body.get("message"):
            return str(body["message"])
    return f"HTTP {response.status_code}"


def scheme_for(host: str, server_url: str = "") -> str:
    """The one decision how the action itself talks to a registry host.

    A host of the GitHub server (GHES) uses the server's scheme; ghcr.io and ``*.ghe.com``
    HTTPS; any other host plain HTTP only when it resolves into loopback, which dockerd
    treats as insecure by default (``insecure-registries`` defaults to 127.0.0.0/8), else
    HTTPS, as the docker CLI does.
    """
    server = urlsplit(server_url)
    name = host.lower()
    server_host = (server.netloc or "").lower()
    if server_host and (name == server_host or name.endswith("." + server_host)):
        return server.scheme or "https"
    if name == GHCR or name.split(":")[0].endswith(".ghe.com"):
        return "https"
    return "http" if resolves_to_loopback(name) else "https"


def base_url(registry: str, scheme: str | None = None) -> str:
    """``scheme://registry``; without a scheme, ``scheme_for`` decides."""
    return f"{scheme or scheme_for(registry)}://{registry}"


def resolves_to_loopback(host: str) -> bool:
    """True when every address ``host`` (``name[:port]``) resolves to is a loopback one."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


@dataclass(frozen=True)
class RemoteManifest:
    """What the registry answered for a tag."""

    digest: str  # Docker-Content-Digest
    media_type: str
    config_digest: str  # "" for an index
    size: int
    #: An index's entries as (``os/arch[/variant]``, manifest digest); () for an image.
    platforms: tuple[tuple[str, str], ...] = ()
    #: An image's layer digests, in order; () for an index.
    layers: tuple[str, ...] = ()


#: What a multi-platform index is called on the wire: Docker's manifest list when its
#: entries are Docker manifests (what a classic-store daemon pushes), else an OCI index.
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def platform_name(entry: dict[str, Any]) -> str:
    """``os/arch[/variant]`` of an index entry (``unknown/unknown`` for attestations)."""
    platform = entry.get("platform") or {}
    parts = [str(platform.get("os") or "unknown"), str(platform.get("architecture") or "unknown")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def index_body(
    entries: list[tuple[str, RemoteManifest]], annotations: Mapping[str, str] | None = None
) -> tuple[str, bytes]:
    """An index over (platform, manifest) pairs, as ``buildx imagetools create`` assembles
    one (OCI image-index spec; Docker manifest list v2.2 for Docker manifests).
    ``annotations`` go on the index, which makes it an OCI index (a Docker manifest list
    has no annotations field; an OCI index may list Docker manifests).

    Returns (media type, the exact bytes to PUT: their sha256 is the index digest).
    """
    docker = not annotations and all(m.media_type == DOCKER_MANIFEST for _, m in entries)
    media_type = DOCKER_LIST if docker else OCI_INDEX
    manifests = []
    for platform, remote in entries:
        os_name, arch, *variant = platform.split("/")
        spec: dict[str, str] = {"architecture": arch, "os": os_name}
        if variant:
            spec["variant"] = variant[0]
        manifests.append({"mediaType": remote.media_type, "digest": remote.digest,
                          "size": remote.size, "platform": spec})
    body: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    if annotations:
        body["annotations"] = dict(annotations)
    return media_type, json.dumps(body, indent=3).encode()


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
    """The registry calls the action makes itself, with the run's one credential for the
    registry: ping, auth challenge and token, manifest reads, the upload probe, the index
    PUT that assembles a multi-platform image, and a cross-repository blob mount (several
    images)."""

    def __init__(
        self,
        credential: Credential,
        *,
        scheme: str | None = None,
        timeout: float | tuple[float, float] = 15.0,
        deadline: float | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.registry = credential.registry
        self.base = base_url(credential.registry, scheme)
        self._basic = (credential.username, credential.secret.reveal())
        self.timeout = timeout
        self.deadline = deadline
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock
        self._session = session or requests.Session()
        self._session.trust_env = False  # the registry's answer, not a proxy's
        self.waited: list[float] = []  # Retry-After waits taken (for logs and tests)
        #: scope -> the Authorization header the registry's challenge led to, sent with
        #: the next call of that scope up front: one round trip instead of three (401,
        #: token, retry) per read. A header that has expired meanwhile gets the 401 again.
        self._auth: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self._session.close()

    def ping(self) -> requests.Response:
        """``GET /v2/``: the API version check, and the challenge when it is a 401."""
        return self._send(f"{self.base}/v2/", {})

    def token_response(self, challenge: Challenge, scope: str | list[str]) -> requests.Response:
        """Trade the credential for a registry token at the challenge's realm (a list of
        scopes goes as one ``scope=`` each, as the token spec asks)."""
        query: dict[str, str | list[str]] = {"scope": scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        return self._send(challenge.realm, {}, params=query, auth=self._basic)

    def authorization(self, challenge: Challenge, token: str) -> dict[str, str]:
        """The header that answers ``challenge``: the bearer ``token``, or basic auth."""
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {token}"}
        if challenge.scheme == "basic":
            basic = base64.b64encode(":".join(self._basic).encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}

    def manifest(self, repository: str, reference: str, *, met: list[int] | None = None
                 ) -> RemoteManifest | None:
        """The manifest ``reference`` (a tag) points at, or None when there is none.
        ``met`` collects the status of every answer, a 429 waited out included."""
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        response = self._authorized(
            "GET", url, {"Accept": MANIFEST_TYPES}, f"repository:{repository}:pull", met=met
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        config = body.get("config") or {}
        listed = body.get("manifests")
        entries: list[Any] = listed if isinstance(listed, list) else []
        return RemoteManifest(
            digest=response.headers.get("Docker-Content-Digest", ""),
            media_type=str(body.get("mediaType") or response.headers.get("Content-Type", "")),
            config_digest=str(config.get("digest") or ""),
            size=len(response.content),
            platforms=tuple(
                (platform_name(e), str(e.get("digest") or ""))
                for e in entries if isinstance(e, dict)
            ),
            layers=tuple(
                str(layer.get("digest") or "")
                for layer in body.get("layers") or () if isinstance(layer, dict)
            ),
        )

    def platform_of(self, repository: str, manifest: RemoteManifest) -> str:
        """``os/arch[/variant]`` of an image manifest, from its config blob (the OCI image
        config's ``os``, ``architecture``, ``variant``): what the image is built for.

        Raises:
            requests.HTTPError: the registry does not serve the config blob.
        """
        url = f"{self.base}/v2/{repository}/blobs/{manifest.config_digest}"
        response = self._authorized("GET", url, {}, f"repository:{repository}:pull")
        response.raise_for_status()
        config: dict[str, Any] = response.json()
        return platform_name({"platform": config})

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Link blob ``digest`` of ``source`` into ``repository`` on this registry, so it
        is not uploaded again (distribution spec, "Mounting a blob from another
        repository"). True when the registry mounted it (201); a 202 means it would take an
        upload instead, and that session is cancelled."""
        url = f"{self.base}/v2/{repository}/blobs/uploads/"
        push = f"repository:{repository}:pull,push"
        response = self._authorized(
            "POST", url, {}, [push, f"repository:{source}:pull"],
            params={"mount": digest, "from": source}, allow_redirects=False,
        )
        location = response.headers.get("Location", "") if response.status_code == 202 else ""
        if location:
            cancel = location if "://" in location else f"{self.base}{location}"
            self._authorized("DELETE", cancel, {}, push)
        return response.status_code == 201

    def put_manifest(self, repository: str, reference: str, media_type: str,
                     body: bytes) -> str:
        """PUT a manifest (an index here) under ``reference``; the registry's digest.

        Raises:
            requests.HTTPError: the registry refused it (the caller says what landed).
        """
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        response = self._authorized(
            "PUT", url, {"Content-Type": media_type}, f"repository:{repository}:pull,push",
            data=body,
        )
        response.raise_for_status()
        return response.headers.get("Docker-Content-Digest", "")

    def authorize(self, scope: str) -> None:
        """Fetch and keep the Authorization header for ``scope`` before its calls, e.g.
        while a build runs, so reading the pushed tags back costs one round trip each."""
        ping = self.ping()
        if ping.status_code == 401:
            self._answer(parse_challenge(ping.headers.get("WWW-Authenticate", "")), scope)

    def _answer(self, challenge: Challenge, scope: str | list[str]) -> dict[str, str]:
        """The header that answers ``challenge`` for ``scope`` (a token fetched for a
        bearer challenge), kept for the next call of the same scope."""
        token = ""
        if challenge.scheme == "bearer":
            answer = self.token_response(challenge, scope)
            answer.raise_for_status()
            token = token_from(answer)
        header = self.authorization(challenge, token)
        self._auth[_scope_key(scope)] = header
        return header

    def _kept(self, scope: str | list[str]) -> dict[str, str]:
        """A kept header for ``scope``; a pull also takes one for pull and push."""
        key = _scope_key(scope)
        if key.endswith(":pull") and key + ",push" in self._auth:
            return self._auth[key + ",push"]
        return self._auth.get(key, {})

    def _authorized(
        self, method: str, url: str, headers: dict[str, str], scope: str | list[str],
        **kwargs: Any,
    ) -> requests.Response:
        """One call, answering the registry's 401 challenge (bearer token or basic) once;
        the header the last challenge of this scope gave is sent up front."""
        response = self._send(url, {**headers, **self._kept(scope)}, method=method, **kwargs)
        if response.status_code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            headers = {**headers, **self._answer(challenge, scope)}
            response = self._send(url, headers, method=method, **kwargs)
        return response

    def probe_upload(self, name: str, headers: Mapping[str, str]) -> requests.Response:
        """Start a blob upload and cancel it (``POST`` then ``DELETE``): what a push does
        first, refused for a token that may not write. An upload never completed leaves
        no blob, tag or package."""
        upload = self._session.post(f"{self.base}/v2/{name}/blobs/uploads/",
                                    headers=dict(headers), timeout=self.timeout,
                                    allow_redirects=False)
        location = upload.headers.get("Location", "") if upload.status_code == 202 else ""
        if location:
            url = location if "://" in location else f"{self.base}{location}"
            self._session.delete(url, headers=dict(headers), timeout=self.timeout)
        return upload

    def _send(
        self, url: str, headers: dict[str, str], *, method: str = "GET",
        met: list[int] | None = None, **kwargs: Any
    ) -> requests.Response:
        """One call; a 429/503 with Retry-After is waited out once if the deadline allows
        (a manifest PUT is idempotent: the same bytes give the same digest). ``met``
        collects each answer's status, the one waited out too."""
        response = self._session.request(
            method, url, headers=headers, timeout=self.timeout, **kwargs
        )
        if met is not None:
            met.append(response.status_code)
        if response.status_code in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait <= self.max_retry_after and self._fits(wait):
                self.waited.append(wait)
                self._sleep(wait)
                response = self._session.request(
                    method, url, headers=headers, timeout=self.timeout, **kwargs
                )
                if met is not None:
                    met.append(response.status_code)
        return response

    def _fits(self, wait: float) -> bool:
        return self.deadline is None or self._clock() + wait < self.deadline


def _scope_key(scope: str | list[str]) -> str:
    return scope if isinstance(scope, str) else " ".join(scope)


def token_from(response: requests.Response) -> str:
    """The token of a token service's answer; "" for one that is not a JSON object (a
    proxy's HTML page): then only the upload probe can tell."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return str(body.get("token") or body.get("access_token") or "")


def repository_and_tag(ref: str) -> tuple[str, str]:
    """``host/owner/name:tag`` -> (``owner/name``, ``tag``): what the registry API names."""
    repo_path, _, tag = ref.rpartition(":")
    return repo_path.partition("/")[2], tag


@dataclass(frozen=True)
class PushCheck:
    """Our own read of a ref after its push failed: the digest when the registry holds our
    image there, and the first "not now" answer (429, 5xx) the read met, before any
    Retry-After wait: the registry's status that the daemon's report may leave out (the
    containerd store's "error from registry: <message>")."""

    digest: str | None
    busy_status: int | None = None


def check_pushed(client: RegistryClient, ref: str, image_id: str) -> PushCheck:
    """Whether the registry holds *our* image under ``ref``, and whether it is busy.

    Ours means the manifest's config is the local image's config (graphdriver store: the
    image ID is the config digest), or the manifest itself is the image ID (containerd
    store, where the ID is the manifest or index digest).
    """
    repository, tag = repository_and_tag(ref)
    met: list[int] = []
    try:
        remote = client.manifest(repository, tag, met=met)
    except (requests.RequestException, ValueError):
        remote = None
    busy = next((status for status in met if is_busy(status)), None)
    if remote is None or not remote.digest:
        return PushCheck(None, busy)
    return PushCheck(remote.digest if image_id in (remote.config_digest, remote.digest)
                     else None, busy)


def pushed_digest(client: RegistryClient, ref: str, image_id: str) -> str | None:
    """The digest ``ref`` resolves to when the registry holds *our* image there, else None
    (``check_pushed`` without the status)."""
    return check_pushed(client, ref, image_id).digest


def manifest_is_image(
    client: RegistryClient, repository: str, digest: str, image_id: str
) -> bool | None:
    """Whether the manifest ``digest`` in ``repository`` is the local image ``image_id``
    (its config is the image, or, containerd store, it is the image ID itself); None when
    the registry cannot be read. By digest, so another push of the tag cannot race it."""
    if digest == image_id:
        return True
    try:
        remote = client.manifest(repository, digest)
    except (requests.RequestException, ValueError):
        return None
    if remote is None:
        return None
    return image_id in (remote.config_digest, remote.digest)
