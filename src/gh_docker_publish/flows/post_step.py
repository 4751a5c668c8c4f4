"""The action's post step: remove the private DOCKER_CONFIG the main step made for buildx.

The main step removes it in a ``finally`` (``docker_config.private_docker_config``), also on
SIGTERM. This step is the second net for a main process that died before its
``finally`` (SIGKILL, OOM). It runs as ``runs.post-entrypoint`` in a *fresh* container
(docs.github.com "Metadata syntax": ``post-entrypoint``), so it can only remove a
directory on a path both containers share (a ``TMPDIR`` on a mounted volume, or a
self-hosted runner running the CLI); a directory in the main container's own ``/tmp``
went away with that container (the runner starts it with ``docker run --rm``).

The path comes from ``STATE_docker_config`` (``gha.Console.save_state``), which a step
could in principle tamper with, so only a directory ``docker_config.why_not_ours`` accepts
(our prefix and run marker; buildx's own files next to the login do not matter) is ever
removed (issue 17 item 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gh_docker_publish.edges import docker_config
from gh_docker_publish.edges.gha import Console

STATE_NAME = "docker_config"


def remove_private_config(path_text: str) -> str:
    """Remove one private DOCKER_CONFIG if it is ours; say what happened (no secrets)."""
    if not path_text:
        return "no private DOCKER_CONFIG was created"
    path = Path(path_text)
    named_ours = path.is_absolute() and path.name.startswith(docker_config.DIR_PREFIX)
    if named_ours and not path.exists() and not path.is_symlink():
        return f"{path_text} is already gone"
    if reason := docker_config.why_not_ours(path):
        return f"{path_text} {reason}; left alone"
    docker_config.remove(path)
    return f"removed {path_text}"


def run_post(env: Mapping[str, str]) -> int:
    """The post step: never fails the job (exit 0), says what it did."""
    console = Console(env)
    message = remove_private_config(env.get(f"STATE_{STATE_NAME}", "").strip())
    console.info(f"Post: {message}")
    return 0
