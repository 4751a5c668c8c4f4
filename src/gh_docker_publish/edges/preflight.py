"""Checks that fail in seconds what would otherwise fail after a long build.

Before the build: may these credentials push to this image? The registry's token service
(distribution token auth, https://distribution.github.io/distribution/spec/auth/token/)
is asked for ``repository:NAME:pull,push`` and the granted actions are checked; then a
blob upload is started and cancelled (``POST /v2/NAME/blobs/uploads/`` then ``DELETE``),
which is what a push does first and which GitHub refuses for a token that may not write.
Nothing is stored: an upload never completed leaves no blob, tag or package.

After the build, before the push, for GitHub's Docker registry (GHES): it "does not
currently support foreign layers, such as Windows images", and caps layers and images
(DESIGN.md §2); the limits are parameters so tests can use small ones.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import requests

from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.progress import Log
from gh_docker_publish.core.refs import DOCKER_REGISTRY_DOCS, Flavour, Target
from gh_docker_publish.edges.engine import daemon_version, image_inspect
from gh_docker_publish.edges.registry_api import (
    RegistryClient,
    denial_hint,
    error_text,
    parse_challenge,
    token_from,
)
from gh_docker_publish.errors import (
    MIGRATION_DOCS,
    PERMISSIONS_DOCS,
    CredentialError,
    DaemonError,
    RegistryError,
)

HTTP_TIMEOUT = (5.0, 15.0)
# GitHub's own words (GHES docs, "Working with the Docker registry", About Docker support).
ENGINE_25_ADVICE = (
    "Docker Engine v25 is not compatible with the Docker Registry on GitHub Enterprise "
    "Server. We recommend using Container registry instead."
)


# --- push permission ------------------------------------------------------------------------


@dataclass(frozen=True)
class PushAccess:
    """The probe's verdict when it is not a denial (a denial raises)."""

    confirmed: bool  # False: the registry could not be asked; the push will tell
    detail: str


def granted_actions(token: str, name: str) -> set[str] | None:
    """The actions a JWT registry token grants on ``name``; ``None`` when the token is not a
    JWT with an ``access`` claim (ghcr.io's tokens are opaque), so only the upload can tell.
    The claim is read, not verified: the registry verifies; we only want the verdict early."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        return None
    access = claims.get("access") if isinstance(claims, dict) else None
    if not isinstance(access, list):
        return None
    actions: set[str] = set()
    for entry in access:
        if isinstance(entry, dict) and entry.get("name") == name:
            actions.update(str(a) for a in entry.get("actions") or [])
    return actions


def _denied(target: Target, message: str, fields: Mapping[str, str], who: str) -> CredentialError:
    hint = denial_hint(message, fields) or (
        f"Check that {who} may write {target.name}: the job's `permissions: packages: write`, "
        "the package's \"Manage Actions access\" settings, or the PAT's `write:packages` scope."
    )
    return CredentialError(
        f"Preflight: {who} may not push to {target.name}; {target.registry} answered "
        f"'{message}'. Nothing was built.",
        hint=hint,
        docs_url=PERMISSIONS_DOCS,
    )


def check_push_access(
    target: Target,
    credential: Credential,
    *,
    scheme: str,
    fields: Mapping[str, str],
    session: requests.Session | None = None,
) -> PushAccess:
    """Ask the registry whether ``credential`` may push ``target``.

    Raises:
        CredentialError: the registry refused: the message quotes it, the hint says which
            permission or scope to grant and where.
    """
    client = RegistryClient(credential, scheme=scheme, timeout=HTTP_TIMEOUT,
                            max_retry_after=0, session=session)
    who, name = credential.who, target.path
    try:
        ping = client.ping()
        challenge = parse_challenge(ping.headers.get("WWW-Authenticate", ""))
        auth_header: dict[str, str] = {}
        if ping.status_code == 401 and challenge.scheme == "bearer" and challenge.realm:
            answer = client.token_response(challenge, f"repository:{name}:pull,push")
            if answer.status_code != 200:
                raise _denied(target, error_text(answer), fields, who)
            token = token_from(answer)
            actions = granted_actions(token, name)
            if actions is not None and "push" not in actions:
                raise _denied(target, "the token service granted no push access "
                              f"(granted: {', '.join(sorted(actions)) or 'nothing'})",
                              fields, who)
            auth_header = client.authorization(challenge, token)
        elif ping.status_code == 401 and challenge.scheme == "basic":
            auth_header = client.authorization(challenge, "")
        upload = client.probe_upload(name, auth_header)
        if upload.status_code in (401, 403):
            raise _denied(target, error_text(upload), fields, who)
        if upload.status_code != 202:
            return PushAccess(False, f"starting an upload answered HTTP {upload.status_code}")
    except requests.RequestException as exc:
        return PushAccess(False, f"{target.registry} could not be asked ({type(exc).__name__})")
    finally:
        if session is None:
            client.close()
    return PushAccess(True, f"{who} may push to {target.name}")


# --- the built image ---------------------------------------------------------------------


GB = 1000**3


@dataclass(frozen=True)
class ImageLimits:
    """GitHub's Docker registry limits (DESIGN.md §2); parameters so tests can shrink them."""

    layer_bytes: int = 5 * GB  # a bigger layer is refused: an error before the push
    image_bytes: int = 10 * GB  # a bigger image gets degraded service: a warning


@dataclass(frozen=True)
class ImageCheck:
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    layers: int = 0
    size: int = 0


@dataclass(frozen=True)
class _Layer:
    size: int
    created_by: str = field(default="")


def _human(size: int) -> str:
    """Decimal units, as GitHub states its limits."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def check_image(
    inspect: Mapping[str, Any], history: Sequence[Mapping[str, Any]], limits: ImageLimits
) -> ImageCheck:
    """Check an image for GitHub's Docker registry from the daemon's inspect and history.

    Layer sizes are the uncompressed sizes the daemon records per history step; the
    registry counts compressed bytes, so a layer near the limit may still fit after
    compression. We err on the side of failing in seconds rather than after the upload.
    """
    errors: list[str] = []
    warnings: list[str] = []
    os_name = str(inspect.get("Os") or "linux").lower()
    if os_name != "linux":
        errors.append(
            f"the image is a {os_name} image: GitHub's Docker registry does not support "
            "foreign layers, such as Windows images"
        )
    layers = [
        _Layer(int(step.get("Size") or 0), str(step.get("CreatedBy") or "").strip())
        for step in history
        if int(step.get("Size") or 0) > 0
    ]
    for layer in layers:
        if layer.size > limits.layer_bytes:
            step = layer.created_by[:80] or "a base image layer"
            errors.append(
                f"a layer is {_human(layer.size)}, over the {_human(limits.layer_bytes)} "
                f"layer limit (created by: {step})"
            )
    total = int(inspect.get("Size") or sum(layer.size for layer in layers))
    if total > limits.image_bytes:
        warnings.append(
            f"the image is {_human(total)}, over {_human(limits.image_bytes)}: GitHub's Docker "
            "registry serves images that big with degraded performance"
        )
    return ImageCheck(tuple(errors), tuple(warnings), len(layers), total)


def engine_too_new(version: str) -> bool:
    """True for Docker Engine 25 or later (``"25.0.3"``, ``"28.2.2"``; unknown is False)."""
    match = re.match(r"(\d+)\.", version.strip())
    return match is not None and int(match.group(1)) >= 25


def applies_to(target: Target) -> bool:
    """The after-build checks and the engine warning concern GitHub's Docker registry."""
    return target.flavour is Flavour.DOCKER and target.github_hosted


__all__ = [
    "DOCKER_REGISTRY_DOCS",
    "ENGINE_25_ADVICE",
    "ImageCheck",
    "ImageLimits",
    "PushAccess",
    "after_build",
    "applies_to",
    "before_build",
    "check_image",
    "check_push_access",
    "engine_too_new",
    "granted_actions",
    "log_access",
    "warn_engine",
]


# --- the pipeline's calls ---------------------------------------------------------------------


def before_build(
    target: Target, credential: Credential, *, scheme: str, fields: Mapping[str, str], log: Log,
) -> PushAccess:
    """The push-permission probe, logged; a denial raises before anything is built."""
    return log_access(check_push_access(target, credential, scheme=scheme, fields=fields), log)


def log_access(verdict: PushAccess, log: Log) -> PushAccess:
    """Say what the push-permission probe found (``before_build``'s log line)."""
    if verdict.confirmed:
        log.info(f"Preflight: {verdict.detail}.")
    else:
        log.warning(f"Preflight: could not check push access ({verdict.detail}); the push "
                    "will tell.")
    return verdict


def warn_engine(client: Any, target: Target, log: Log) -> None:
    """GitHub's advice for Docker Engine >= 25 and the GHES Docker registry."""
    if not applies_to(target):
        return
    version = daemon_version(client)["version"]
    if engine_too_new(version):
        log.warning(
            f"Docker Engine {version} pushing to {target.registry}, GitHub's Docker registry: "
            f"\"{ENGINE_25_ADVICE}\" ({DOCKER_REGISTRY_DOCS}; migrating: {MIGRATION_DOCS})"
        )


def after_build(client: Any, image_id: str, target: Target, limits: ImageLimits,
                log: Log) -> ImageCheck:
    """Foreign layers and sizes of the built image, before it is pushed to the GHES Docker
    registry.

    Raises:
        RegistryError: a foreign layer or a layer over the limit; nothing was pushed.
    """
    if not applies_to(target):
        return ImageCheck()
    try:
        history = client.history(image_id)
    except docker.errors.APIError as exc:
        raise DaemonError(f"Cannot read the history of {image_id}: {exc}") from exc
    result = check_image(image_inspect(client, image_id), history, limits)
    for warning in result.warnings:
        log.warning(f"{target.registry}: {warning}.")
    if result.errors:
        raise RegistryError(
            f"{target.name} cannot go to GitHub's Docker registry: {'; '.join(result.errors)}. "
            "Nothing was pushed.",
            hint="Publish to the Container registry (containers.HOSTNAME) instead, or make "
            "the layer smaller (split the step, clean caches in the same RUN).",
            docs_url=DOCKER_REGISTRY_DOCS,
        )
    log.info(f"Preflight: {result.layers} layer(s), {_human(result.size)}: within "
             f"{target.registry}'s limits.")
    return result
