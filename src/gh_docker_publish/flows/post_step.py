"""The action's post step: remove the private DOCKER_CONFIG the main step made for buildx,
and the run-unique name a build into the daemon had (``core.tags.build_tag``).

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
removed (issue 17 item 3). Likewise only a name whose tag ``tags.is_build_tag`` accepts is
ever removed from the daemon, and only the name: the run's own tags stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import requests

from gh_docker_publish.core import tags
from gh_docker_publish.edges import docker_config, engine
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.errors import PublishError

STATE_NAME = "docker_config"
#: The main step's build name while it exists ("" once the main step removed it).
BUILD_NAME_STATE = "build_name"


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


def remove_build_name(ref: str, docker_host: str | None) -> str:
    """Remove a killed main step's build name from the daemon; say what happened."""
    repo, _, tag = ref.rpartition(":")
    if not repo or "/" in tag or not tags.is_build_tag(tag):
        return f"{ref} is not a build name of ours; left alone"
    try:
        removed = engine.untag(engine.connect(docker_host, timeout=30), ref)
    except (PublishError, requests.RequestException) as exc:  # never fails the job
        return f"could not remove {ref}: {exc}"
    return f"removed {ref}" if removed else f"{ref} is already gone"


def run_post(env: Mapping[str, str]) -> int:
    """The post step: never fails the job (exit 0), says what it did."""
    console = Console(env)
    message = remove_private_config(env.get(f"STATE_{STATE_NAME}", "").strip())
    console.info(f"Post: {message}")
    if build_ref := env.get(f"STATE_{BUILD_NAME_STATE}", "").strip():
        console.info(f"Post: {remove_build_name(build_ref, env.get('DOCKER_HOST'))}")
    return 0
