"""What a local git checkout says about the run, as the ``GITHUB_*`` variables a workflow
would have set: the CLI outside Actions reads these defaults (issue 15), so
``gh-docker-publish publish --dry-run`` in a clone needs no flags. Pure: the edge
``edges/git_checkout.py`` runs git; this module only parses what it printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

#: ``git@host:owner/repo(.git)`` (scp-like syntax: no scheme, a colon before the path).
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class Checkout:
    """``origin``'s host and OWNER/REPO, HEAD's commit and branch (``""`` when detached)."""

    host: str = ""
    repository: str = ""
    sha: str = ""
    branch: str = ""

    def workflow_env(self) -> dict[str, str]:
        """The ``GITHUB_*`` variables a push of HEAD would give a workflow (only those the
        checkout knows)."""
        env: dict[str, str] = {}
        if self.repository:
            env["GITHUB_REPOSITORY"] = self.repository
            env["GITHUB_REPOSITORY_OWNER"] = self.repository.partition("/")[0]
        if self.host and self.host != "github.com":
            env["GITHUB_SERVER_URL"] = f"https://{self.host}"
        if self.sha:
            env["GITHUB_SHA"] = self.sha
        if self.branch:
            env.update(GITHUB_REF=f"refs/heads/{self.branch}", GITHUB_REF_NAME=self.branch,
                       GITHUB_REF_TYPE="branch", GITHUB_EVENT_NAME="push")
        return env


def parse_remote(url: str) -> tuple[str, str]:
    """(host, OWNER/REPO) of a remote URL; ``("", "")`` when it is not one of those.

    >>> parse_remote("git@github.com:Octo-Org/App.git")
    ('github.com', 'Octo-Org/App')
    >>> parse_remote("https://ghes.example.com/octo/app")
    ('ghes.example.com', 'octo/app')
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = (parts.hostname or ""), parts.path
    elif match := _SCP_LIKE.match(url):
        host, path = match.group("host"), match.group("path")
    else:
        return "", ""
    path = path.strip("/").removesuffix(".git")
    segments = path.split("/")
    if len(segments) != 2 or not all(segments):
        return "", ""
    return host.lower(), path


#: Variables that describe one thing together: the checkout gives a group only when the
#: environment sets none of it (a GITHUB_REPOSITORY export must not get origin's owner).
GROUPS = (
    ("GITHUB_REPOSITORY", "GITHUB_REPOSITORY_OWNER", "GITHUB_SERVER_URL"),
    ("GITHUB_SHA",),
    ("GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_REF_TYPE", "GITHUB_EVENT_NAME"),
)


def defaults_for(env: Mapping[str, str], checkout: Checkout) -> dict[str, str]:
    """``env`` plus the checkout's variables for each group the environment leaves unset
    (a user's exports, and Actions' own variables, always win)."""
    found = checkout.workflow_env()
    merged = dict(env)
    for group in GROUPS:
        if not any(env.get(name) for name in group):
            merged.update({name: found[name] for name in group if name in found})
    return merged
