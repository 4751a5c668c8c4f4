"""The action's post step: remove the private DOCKER_CONFIG the main step made for buildx.

The main step removes it in a ``finally`` (``builders.private_docker_config``), also on
SIGTERM. This step is the second net for a main process that died before its
``finally`` (SIGKILL, OOM). It runs as ``runs.post-entrypoint`` in a *fresh* container
(docs.github.com "Metadata syntax": ``post-entrypoint``), so it can only remove a
directory on a path both containers share (a ``TMPDIR`` on a mounted volume, or a
self-hosted runner running the CLI); a directory in the main container's own ``/tmp``
went away with that container (the runner starts it with ``docker run --rm``).

The path comes from ``STATE_docker_config`` (``gha.Console.save_state``), which a step
could in principle tamper with, so only a directory whose name carries our prefix and
which holds nothing but what ``private_docker_config`` writes is ever removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from gh_docker_publish.edges.gha import Console

STATE_NAME = "docker_config"
DIR_PREFIX = "ghdp-docker-"
#: What private_docker_config and buildx leave in the directory.
KNOWN_ENTRIES = frozenset({"config.json", "cli-plugins", "iid", "metadata.json", "buildx"})


def remove_private_config(path_text: str) -> str:
    """Remove one private DOCKER_CONFIG if it is ours; say what happened (no secrets)."""
    if not path_text:
        return "no private DOCKER_CONFIG was created"
    path = Path(path_text)
    if not path.name.startswith(DIR_PREFIX) or not path.is_absolute():
        return f"{path_text} is not a private DOCKER_CONFIG of this action; left alone"
    if not path.exists():
        return f"{path_text} is already gone"
    if path.is_symlink() or not path.is_dir():
        return f"{path_text} is not a directory; left alone"
    unknown = sorted(p.name for p in path.iterdir() if p.name not in KNOWN_ENTRIES)
    if unknown:
        others = ", ".join(unknown)
        return f"{path_text} holds files this action did not write ({others}); left alone"
    cli_plugins = path / "cli-plugins"
    if cli_plugins.is_symlink():
        cli_plugins.unlink()  # a link to the user's plugins: never follow it
    shutil.rmtree(path)
    return f"removed {path_text}"


def run_post(env: Mapping[str, str]) -> int:
    """The post step: never fails the job (exit 0), says what it did."""
    console = Console(env)
    message = remove_private_config(env.get(f"STATE_{STATE_NAME}", "").strip())
    console.info(f"Post: {message}")
    return 0
