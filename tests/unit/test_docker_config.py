"""The private DOCKER_CONFIG's place and owner (edges/docker_config.py; issue 17 items 2, 3)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from gh_docker_publish.edges import docker_config
from gh_docker_publish.edges.docker_config import RunId
from gh_docker_publish.errors import BuildError


def test_the_private_config_goes_outside_the_context_even_when_tmpdir_is_inside(
    tmp_path: Path,
) -> None:
    context = tmp_path / "ctx"
    (context / "tmp").mkdir(parents=True)
    parent = docker_config.choose_parent([context], preferred=str(context / "tmp"))
    assert context.resolve() not in parent.parents and parent != context.resolve()
    with pytest.raises(BuildError, match="inside the build context"):
        docker_config.choose_parent([Path("/")])


def test_a_run_is_dead_only_when_this_machine_can_tell() -> None:
    me = RunId.current()
    assert not me.is_dead()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = dataclasses.replace(me, pid=child.pid, started="1")
    assert gone.is_dead()
    assert not dataclasses.replace(gone, host="another-container").is_dead()
    assert not dataclasses.replace(gone, uid=me.uid + 1).is_dead()
    assert dataclasses.replace(me, started="1").is_dead()  # our pid, an earlier process
    assert dataclasses.replace(me, pid=child.pid, boot="another-boot").is_dead()
