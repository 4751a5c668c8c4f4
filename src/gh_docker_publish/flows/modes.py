"""The two modes besides publish: ``pull`` (install packages) and ``cleanup`` (delete old
versions). GitHub's docs name three jobs that need a token: publish, install, delete;
``cli`` sends ``mode: publish`` to ``publish.run`` and the other two here."""

from __future__ import annotations

import sys

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.settings import Settings
from gh_docker_publish.edges import engine, registries
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.github_api import ApiClients
from gh_docker_publish.flows import cleanup, publish, pull


def run(settings: Settings, ctx: RunContext, console: Console, services: publish.Services) -> None:
    """Run ``settings.mode`` (pull or cleanup); outside Actions also print what happened."""
    pulling = settings.mode == "pull"
    tag_list = publish.plan_tags(settings, ctx, services.now()) if pulling and settings.tags else ()
    # The registry as publish finds it: on GHES the probe, or 'subdomain-isolation'.
    probed = registries.choose(settings, ctx)
    probed_registry = probed.host if probed else None
    if pulling:
        client = engine.connect(services.docker_host, timeout=services.docker_timeout)
        apis = ApiClients(services.github_api, ctx.api_url)
        pulled = pull.run(settings, ctx, console, client, apis, tag_list,
                          probed_registry=probed_registry)
        if not console.on_actions:
            for ref, digest in pulled.digests.items():
                print(f"{ref}  {digest}", file=sys.stdout)
        return
    result = cleanup.run(settings, ctx, console, services.github_api, now=services.now,
                         probed_registry=probed_registry)
    if not console.on_actions:
        print("\n".join(cleanup.render_plan_lines(result)), file=sys.stdout)
