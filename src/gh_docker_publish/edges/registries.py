"""Which of a GitHub server's registries to publish to, for ``registry: auto``.

github.com publishes to ghcr.io and GHEC with data residency (``SUB.ghe.com``) to
``containers.SUB.ghe.com``: ``refs.auto_registry`` knows both without asking. A GitHub
Enterprise Server instance may run either of its two registries, and the workflow cannot
tell which from the variables it gets, so we ask the hosts in GitHub's order of preference
(https://docs.github.com/en/enterprise-server@latest/packages/working-with-a-github-packages-registry):

1. ``containers.HOSTNAME``: the Container registry (GHES >= 3.5, needs subdomain isolation);
2. ``docker.HOSTNAME``: the Docker registry with subdomain isolation;
3. ``HOSTNAME``: the Docker registry without subdomain isolation.

A host "answers like a registry" when ``GET /v2/`` carries ``Docker-Distribution-Api-Version``
or is a 401 with a ``WWW-Authenticate`` challenge (distribution spec, "API Version Check");
a GHES web front end without a registry answers neither. The ``subdomain-isolation`` input
skips the probe: ``true`` picks the Container registry (which needs isolation; name
``docker.HOSTNAME`` in ``registry`` for the Docker registry), ``false`` picks ``HOSTNAME``
(without isolation only the Docker registry exists).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.refs import GHCR, GITHUB_COM, Flavour, Target, is_ghes
from gh_docker_publish.core.settings import Settings
from gh_docker_publish.edges.registry_api import (
    answers_like_registry,
    base_url,
    ping_anonymously,
    scheme_for,
)
from gh_docker_publish.errors import RegistryError

IsolationMode = Literal["auto", "true", "false"]
GHES_PACKAGES_DOCS = (
    "https://docs.github.com/en/enterprise-server@latest/packages/"
    "working-with-a-github-packages-registry"
)

Getter = Callable[[str], requests.Response]


@dataclass(frozen=True)
class RegistryChoice:
    """The registry ``registry: auto`` resolved to on GHES, and why (for the log)."""

    host: str
    flavour: Flavour
    reason: str

    def describe(self) -> str:
        kind = "Container registry" if self.flavour is Flavour.CONTAINER else "Docker registry"
        shape = "OWNER/IMAGE" if self.flavour is Flavour.CONTAINER else "OWNER/REPOSITORY/IMAGE"
        return f"Registry: {self.host} (GitHub's {kind}, path {shape}): {self.reason}."


def candidates(server_host: str) -> list[tuple[str, Flavour, str]]:
    """The GHES hosts to probe, in order: (host, flavour, what it is)."""
    host = server_host.lower()
    return [
        (f"containers.{host}", Flavour.CONTAINER, "the Container registry"),
        (f"docker.{host}", Flavour.DOCKER, "the Docker registry with subdomain isolation"),
        (host, Flavour.DOCKER, "the Docker registry without subdomain isolation"),
    ]


def probe(
    server_url: str, get: Getter = ping_anonymously
) -> tuple[RegistryChoice | None, list[str]]:
    """Ask each GHES registry host for ``/v2/``; return the first that answers like a
    registry, and one line per host asked (what it answered) for the log and errors."""
    tried: list[str] = []
    for host, flavour, what in candidates(urlsplit(server_url).netloc):
        url = f"{base_url(host, scheme_for(host, server_url))}/v2/"
        try:
            response = get(url)
        except requests.RequestException as exc:
            tried.append(f"{url}: no answer ({type(exc).__name__})")
            continue
        if answers_like_registry(response):
            tried.append(f"{url}: HTTP {response.status_code}, a registry")
            reason = f"{url} answered like a registry, so this server uses {what}"
            if tried[:-1]:
                reason += f" (before it: {'; '.join(tried[:-1])})"
            return RegistryChoice(host, flavour, reason), tried
        tried.append(f"{url}: HTTP {response.status_code}, not a registry")
    return None, tried


def choose(
    settings: Settings, ctx: RunContext, get: Getter = ping_anonymously
) -> RegistryChoice | None:
    """The GHES registry for ``registry: auto``, or ``None`` where ``refs`` decides alone
    (an explicit registry, a host in 'image', github.com, ``*.ghe.com``).

    Raises:
        RegistryError: no host answered the probe; the message lists what each answered.
    """
    if settings.registry != "auto" or settings.destination.domain:
        return None
    if not is_ghes(ctx.server_host):
        return None
    hosts = candidates(ctx.server_host)
    mode: IsolationMode = settings.subdomain_isolation
    if mode == "true":
        host, flavour, what = hosts[0]
        return RegistryChoice(host, flavour, f"'subdomain-isolation' is true: {what}")
    if mode == "false":
        host, flavour, what = hosts[2]
        return RegistryChoice(host, flavour, f"'subdomain-isolation' is false: {what}")
    choice, tried = probe(ctx.server_url, get)
    if choice is None:
        raise RegistryError(
            f"No registry of {ctx.server_host} answered: " + "; ".join(tried) + ".",
            hint="Ask your site administrator whether GitHub Packages (Container or Docker "
            "registry) is enabled, or set 'registry' to the registry host, or "
            "'subdomain-isolation' to true or false.",
            docs_url=GHES_PACKAGES_DOCS,
        )
    return choice


def explain(
    target: Target, settings: Settings, ctx: RunContext, probed: RegistryChoice | None
) -> str:
    """One log line: which registry and flavour this run publishes to, and why."""
    if probed is not None and probed.host == target.registry:
        return probed.describe()
    if settings.destination.domain:
        why = "named in 'image'"
    elif settings.registry != "auto":
        why = "given in 'registry'"
    elif target.registry == GHCR:
        why = f"{ctx.server_host or GITHUB_COM} publishes to ghcr.io"
    else:
        why = f"the Container registry of {ctx.server_host}"
    if not target.github_hosted:
        return f"Registry: {target.registry} ({why}; not one of GitHub's registries)."
    return RegistryChoice(target.registry, target.flavour, why).describe()
