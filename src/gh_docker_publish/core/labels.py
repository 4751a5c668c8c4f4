"""OCI labels for the image: the link to the repository, plus what the repository says.

``org.opencontainers.image.source`` is what links a *new* package to its repository
on GitHub Packages, and GitHub reads it only when the package is created, so it must
be right on the first push: ``https://HOST/OWNER/REPO`` with no ``.git`` (build-push-action
PR #221) and HOST from GITHUB_SERVER_URL, never a hard-coded github.com (GHES).

Case: OWNER/REPO keep the case GitHub gives (GITHUB_REPOSITORY, or the API's
``html_url``). GitHub matches the link case-insensitively, and the label is shown to
people, so the repository's own spelling reads best. Image *names* are lowercased
elsewhere (refs.py); labels are free text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gh_docker_publish.errors import InputError

OCI = "org.opencontainers.image."
_REPOSITORY_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def repository_url(server_url: str, repository: str) -> str:
    """``https://HOST/OWNER/REPO`` for GITHUB_SERVER_URL and GITHUB_REPOSITORY."""
    repository = repository.strip().strip("/").removesuffix(".git")
    if not _REPOSITORY_RE.fullmatch(repository):
        raise InputError(
            "repository",
            f"{repository!r} is not OWNER/REPO.",
            hint="Set GITHUB_REPOSITORY (or --repository) to OWNER/REPO.",
        )
    server = server_url.strip().rstrip("/") or "https://github.com"
    if "://" not in server:
        server = f"https://{server}"
    return f"{server}/{repository}"


def rfc3339(when: datetime) -> str:
    """UTC, seconds precision, ``Z``; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compute_labels(
    *,
    server_url: str,
    repository: str,
    sha: str,
    created: datetime,
    version: str | None,
    repo_info: Mapping[str, Any] | None,
    user_labels: Mapping[str, str],
) -> dict[str, str]:
    """The image's labels: ours from the run and the repository API, then the user's on top.

    ``repo_info`` is the REST ``GET /repos/{owner}/{repo}`` body (or the same keys);
    None means it could not be read, and then only the labels the run itself knows are
    set (the caller warns). The title falls back to the repository name either way.
    """
    url = repository_url(server_url, repository)
    info: Mapping[str, Any] = repo_info or {}
    html_url = _text(info.get("html_url")).rstrip("/").removesuffix(".git")
    if html_url.startswith(("https://", "http://")):
        url = html_url  # GitHub's own spelling and host (also right for data residency)

    labels = {
        OCI + "source": url,
        OCI + "url": url,
        OCI + "revision": sha,
        OCI + "created": rfc3339(created),
        OCI + "version": version or "",
        OCI + "title": _text(info.get("title")) or _text(info.get("name")) or url.rsplit("/")[-1],
        OCI + "description": _one_line(_text(info.get("description"))),
        OCI + "licenses": _license(info.get("license")),
    }
    ours = {key: value for key, value in labels.items() if value}
    return {**ours, **user_labels}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _one_line(text: str) -> str:
    # Labels also go out as KEY=VALUE lines (step output); a newline would split one.
    return " ".join(text.split())


def _license(value: Any) -> str:
    """The SPDX id as GitHub gives it, as docker/metadata-action sets it: ``NOASSERTION``
    (GitHub could not tell, itself an SPDX value) stays; no license gives none."""
    spdx = value.get("spdx_id") if isinstance(value, Mapping) else value
    return _text(spdx)

