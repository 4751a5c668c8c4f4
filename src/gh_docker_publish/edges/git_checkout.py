"""Read the local git checkout for the CLI's defaults outside Actions (core/checkout.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gh_docker_publish.core.checkout import Checkout, parse_remote

GIT_TIMEOUT = 10


def read_checkout(directory: Path) -> Checkout:
    """``origin`` and HEAD of the checkout holding ``directory``; an empty Checkout when it
    is no git checkout or git is missing (the flags then have to say it all)."""
    if shutil.which("git") is None:
        return Checkout()
    host, repository = parse_remote(_git(directory, "remote", "get-url", "origin"))
    return Checkout(
        host=host,
        repository=repository,
        sha=_git(directory, "rev-parse", "--verify", "--quiet", "HEAD"),
        branch=_git(directory, "symbolic-ref", "--quiet", "--short", "HEAD"),
    )


def _git(directory: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
