"""GHES test hosts: GitHub Enterprise Server's registry names, served on loopback.

A GHES instance ``HOSTNAME`` may serve images from three hosts (DESIGN.md §2): the
Container registry ``containers.HOSTNAME`` (path OWNER/IMAGE), the Docker registry
``docker.HOSTNAME`` with subdomain isolation, or ``HOSTNAME`` itself without it (both
OWNER/REPOSITORY/IMAGE). The product finds the one in use by probing ``/v2/`` in that order,
so the bed serves those names for real, to the daemon and to the action alike:

- three ``docker-registry`` processes, one per flavour, each on its own loopback address
  (127.0.0.2/3/4) and all on the same port, so ``NAME:PORT`` differs only by name;
- a marked block in ``/etc/hosts`` mapping the names to those addresses. dockerd resolves
  registry names through it (Go's resolver re-reads the file at most every 5 s, so ``up``
  waits until the daemon sees the names) and treats them as insecure (plain HTTP) because
  they resolve into 127.0.0.0/8, its default insecure range: no daemon config is needed
  for the classic store. The containerd store (e28-containerd) does not resolve the name
  for that check, so its daemon.json lists the names with the port as insecure-registries.
  An action container started with ``network_mode=host`` gets a copy of the host's file;
- each registry names itself in its challenge (``service="docker.ghe.test"`` ...), which is
  how the stand-in knows the flavour, and so the naming and token rules, of a token request.

Test servers (``GITHUB_SERVER_URL=http://NAME:PORT``), each with a different set of names,
so every probe outcome can be tested without switching processes off:

==================  =============================================  =================
server              names that resolve                             the probe picks
==================  =============================================  =================
``ghe.test``        containers.ghe.test, docker.ghe.test, ghe.test  Container registry
``isolated.test``   docker.isolated.test                           docker.HOSTNAME
``plain.test``      plain.test                                     HOSTNAME
``noregistry.test`` (none)                                         nothing: an error
==================  =============================================  =================

The block lists the state dirs of the beds using it; ``down`` removes its own line and the
whole block once no bed uses it. Network namespaces would avoid touching ``/etc/hosts``,
but the daemon and the in-process action would both have to run inside one, which the
shared bed (and a developer's system daemon) cannot assume.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import TestbedError, locked, owned, port_in_use

CONTAINER, DOCKER = "container", "docker"
BEGIN = "# >>> gh-docker-publish testbed: GHES test hosts (tests/testbed/ghes.py)"
END = "# <<< gh-docker-publish testbed"
USER = "# used by: "
HOSTS_LOCK = "/tmp/gh-docker-publish-testbed-hosts.lock"
RESOLVE_TIMEOUT = 20.0


@dataclass(frozen=True)
class GhesRegistry:
    key: str  # state key and directory name
    address: str
    service: str  # the token service it names in its challenge
    flavour: str
    names: tuple[str, ...]  # host names that resolve to it


REGISTRIES = (
    GhesRegistry("containers", "127.0.0.2", "containers.ghe.test", CONTAINER,
                 ("containers.ghe.test",)),
    GhesRegistry("docker", "127.0.0.3", "docker.ghe.test", DOCKER,
                 ("docker.ghe.test", "docker.isolated.test")),
    GhesRegistry("plain", "127.0.0.4", "ghe.test", DOCKER, ("ghe.test", "plain.test")),
)
SERVERS = ("ghe.test", "isolated.test", "plain.test", "noregistry.test")


def hosts_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("TESTBED_HOSTS_FILE") or "/etc/hosts")


def render_block(users: list[str]) -> list[str]:
    lines = [BEGIN]
    lines += [f"{USER}{user}" for user in sorted(set(users))]
    lines += [f"{r.address} {' '.join(r.names)}" for r in REGISTRIES]
    lines.append(END)
    return lines


def split_hosts(text: str) -> tuple[list[str], list[str]]:
    """(lines outside our block, the users our block lists)."""
    outside: list[str] = []
    users: list[str] = []
    inside = False
    for line in text.splitlines():
        if line == BEGIN:
            inside = True
        elif line == END and inside:
            inside = False
        elif inside:
            if line.startswith(USER):
                users.append(line[len(USER):])
        else:
            outside.append(line)
    return outside, users


def update_hosts(path: Path, user: str, *, add: bool) -> bool:
    """Add (or remove) ``user`` to our block, rewriting it in place; True if the file changed.

    In place, not by rename: /etc/hosts is often a bind mount (containers), where a rename
    fails.
    """
    with locked(HOSTS_LOCK), open(path, "r+") as f:
        text = f.read()
        outside, users = split_hosts(text)
        users = [u for u in users if u != user] + ([user] if add else [])
        block = render_block(users) if users else []
        new = "\n".join(outside + block) + "\n"
        if new == text:
            return False
        f.seek(0)
        f.write(new)
        f.truncate()
        return True


def choose_port(state: Mapping[str, object], root: Path) -> int:
    """One port free on all three addresses (or already ours), kept across ``up`` calls."""
    recorded = state.get("ghes_port")
    if isinstance(recorded, int) and all(
        not port_in_use(recorded, r.address)
        or owned(_pid(state, f"ghes_{r.key}_pid"), str(root / r.key))
        for r in REGISTRIES
    ):
        return recorded
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind((REGISTRIES[0].address, 0))
            port = int(s.getsockname()[1])
        if not any(port_in_use(port, r.address) for r in REGISTRIES):
            return port
    raise TestbedError("no port free on 127.0.0.2-4 for the GHES test registries")


def standin_args(port: int) -> list[str]:
    """The stand-in's ``--extra-registry`` arguments for the three registries."""
    out: list[str] = []
    for r in REGISTRIES:
        out += ["--extra-registry", f"{r.service}={r.flavour}=http://{r.address}:{port}"]
    return out


def wait_until_daemon_resolves(client: Any, port: int) -> None:
    """Until dockerd resolves every name (its resolver caches /etc/hosts up to 5 s).

    A pull of a tag that does not exist is the cheapest question the daemon answers by
    resolving the name; any answer but "no such host" means it resolved.
    """
    import docker.errors

    names = [name for r in REGISTRIES for name in r.names]
    deadline = time.monotonic() + RESOLVE_TIMEOUT
    while names:
        try:
            client.api.pull(f"{names[0]}:{port}/testbed/resolve-check", tag="none")
        except docker.errors.APIError as exc:
            if "no such host" in str(exc):
                if time.monotonic() > deadline:
                    raise TestbedError(
                        f"the Docker daemon does not resolve {names[0]} after "
                        f"{RESOLVE_TIMEOUT:.0f} s although /etc/hosts lists it"
                    ) from exc
                time.sleep(0.5)
                continue
        names.pop(0)


def _pid(state: Mapping[str, object], key: str) -> int | None:
    value = state.get(key)
    return value if isinstance(value, int) else None

