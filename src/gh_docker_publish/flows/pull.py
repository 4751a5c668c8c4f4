"""Installing packages: pull images with the token that can read them.

Two callers: ``mode: pull`` (``run``: fetch ``image`` at ``tags``) and publish, which pulls
the Dockerfile's base images of other owners before the build (``pull_foreign_bases``).
Per GitHub (https://docs.github.com/en/packages/learn-github-packages/about-permissions-for-github-packages)
``GITHUB_TOKEN`` reads the packages of its own repository, those that granted the
repository access under "Manage Actions access", and public ones; everything else needs a
personal access token (classic) with ``read:packages``. Credentials go per call
(``auth_config``): the daemon's login for the host keeps the push token. Which credentials
to try is ``credentials.readers``; each is a ``Credential`` like the push's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gh_docker_publish.core import credentials, refs
from gh_docker_publish.core.base_images import BaseImage, external_images, foreign_images
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.credentials import READ_SCOPE, READ_SCOPES, Credential, owns
from gh_docker_publish.core.settings import Settings
from gh_docker_publish.edges import build_context, engine
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.github_api import ApiClients
from gh_docker_publish.edges.registry_api import Kind, classify
from gh_docker_publish.edges.report import OUTPUT_NAMES
from gh_docker_publish.errors import PAT_DOCS, CredentialError, RegistryError


@dataclass(frozen=True)
class Pulled:
    """What a pull fetched: each ref with its digest, and who read it."""

    image: str
    registry: str
    digests: dict[str, str]
    reader: Credential

    @property
    def digest(self) -> str:
        return next(iter(self.digests.values()), "")


# -- which token reads -----------------------------------------------------------------------


def readers(
    settings: Settings, ctx: RunContext, registry: str, owner_path: str,
    flavour: refs.Flavour, apis: ApiClients, console: Console,
) -> list[Credential]:
    """``credentials.readers`` with the PAT's user from the run's one ``GET /user``; each
    credential masked with its user name."""
    out = credentials.readers(settings, ctx, registry, owner_path, flavour,
                              pat_owner=lambda: apis.owner(settings.token).login)
    for reader in out:
        console.mask_login(reader.username, reader.secret.reveal())
    return out


def missing_pat(owner_path: str, why: str) -> CredentialError:
    return CredentialError.missing_pat(f"Reading packages of {owner_path}", why, READ_SCOPES)


def pull_with(
    client: Any, ref: str, candidates: Sequence[Credential], console: Console,
    platform: str | None = None,
) -> tuple[str, Credential]:
    """Pull ``ref`` with the first credential the registry accepts; return (digest, reader).

    Raises:
        RegistryError: the last refusal (or a non-denial failure at once).
    """
    failure: RegistryError | None = None
    for reader in candidates:
        console.info(f"Pulling {ref} with the {reader.label} ({reader.reason})")
        try:
            digest = engine.pull(client, ref, reader, console, platform=platform)
        except RegistryError as exc:
            refused = classify(str(exc)).kind is Kind.DENIED or "not found" in str(exc).lower()
            if not refused:
                raise
            console.info(f"The {reader.label} was refused: {exc.message}")
            failure = exc
            continue
        return digest, reader
    assert failure is not None
    raise failure


# -- publish: base images of other owners ----------------------------------------------------


def pull_foreign_bases(
    client: Any,
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    pusher: Credential | None,
    console: Console,
    apis: ApiClients,
    dockerfile_text: str,
) -> list[BaseImage]:
    """Pull the Dockerfile's images that belong to another owner on the push registry,
    before the build, with a token that can read them. Returns what was pulled.

    Raises:
        CredentialError: such an image exists, no PAT is given and GITHUB_TOKEN is refused.
    """
    images = external_images(dockerfile_text, settings.build_args)
    foreign = foreign_images(images, target)
    if not foreign:
        return []
    depth = 2 if target.flavour is refs.Flavour.DOCKER else 1
    for image in foreign:
        owner_path = "/".join(image.path.split("/")[:depth])
        candidates = readers(settings, ctx, target.registry, owner_path, target.flavour, apis,
                             console)
        if pusher is not None and pusher.source == "token":
            candidates = [c for c in candidates if c.source == "token"] or candidates
        try:
            pull_with(client, image.ref, candidates, console, image.platform)
        except RegistryError as exc:
            if settings.token:
                raise RegistryError(
                    f"{image.instruction} {image.ref} (line {image.line}): the personal access "
                    f"token cannot read it: {exc.message}",
                    hint=f"The token's user needs read access to the package and the token "
                    f"the {READ_SCOPE} scope.",
                    docs_url=PAT_DOCS,
                ) from exc
            raise missing_pat(
                owner_path,
                f"{image.instruction} {image.ref} (line {image.line}) is a package of "
                f"{owner_path}, and GITHUB_TOKEN can only read packages of {ctx.repository} "
                "and public ones",
            ) from exc
    return foreign


def pull_remaining_bases(
    client: Any, settings: Settings, target: refs.Target, pulled: Sequence[BaseImage],
    pusher: Credential | None, console: Console, dockerfile_text: str,
) -> None:
    """With ``pull: true`` the build would re-pull every base with the push login, which
    cannot read the foreign ones: pull the others here so the build can skip its pull."""
    done = {image.ref for image in pulled}
    for image in external_images(dockerfile_text, settings.build_args):
        if image.ref in done:
            continue
        same_host = image.host == target.registry.lower()
        engine.pull(client, image.ref, pusher if same_host else None, console,
                    platform=image.platform)


def prepare_bases(
    client: Any,
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    pusher: Credential | None,
    console: Console,
    apis: ApiClients,
) -> Settings:
    """Publish's hook before the build: pull foreign base images with a token that reads
    them; returns the settings the build should use (``pull`` off once everything it
    would pull was pulled here)."""
    # Read as BuildKit reads it: never through a link out of its directory (issue 17).
    text = build_context.read_dockerfile(Path(settings.file))
    pulled = pull_foreign_bases(client, settings, ctx, target, pusher, console, apis, text)
    if not pulled or not settings.pull:
        return settings
    pull_remaining_bases(client, settings, target, pulled, pusher, console, text)
    return replace(settings, pull=False)


# -- mode: pull ------------------------------------------------------------------------------


def pull_refs(settings: Settings, target: refs.Target, tag_list: Sequence[str]) -> list[str]:
    """What ``mode: pull`` fetches: ``image`` at each tag (default ``latest``)."""
    return [target.ref(tag) for tag in (tag_list or ("latest",))]


def run(
    settings: Settings, ctx: RunContext, console: Console, client: Any, apis: ApiClients,
    tag_list: Sequence[str], *, probed_registry: str | None = None,
) -> Pulled:
    """``mode: pull``: fetch every ref with the first token the registry accepts; write
    outputs (``digest``, ``tags``, …) and the summary. ``probed_registry``: the GHES
    registry ``registries.choose`` found, as for publish."""
    target = refs.resolve_target(settings, ctx, probed_registry=probed_registry)
    wanted = pull_refs(settings, target, tag_list)
    depth = 2 if target.flavour is refs.Flavour.DOCKER else 1
    owner_path = "/".join(target.path.split("/")[:depth])
    candidates = readers(settings, ctx, target.registry, owner_path, target.flavour, apis,
                         console)
    digests: dict[str, str] = {}
    reader = candidates[0]
    for ref in wanted:
        try:
            with console.group(f"Pull {ref}"):
                digests[ref], reader = pull_with(client, ref, candidates, console)
        except RegistryError as exc:
            if not settings.token and not owns(ctx, owner_path, target.flavour):
                raise missing_pat(owner_path, f"{ref} was refused ({exc.message})") from exc
            raise
        candidates = [reader]  # the token that worked reads the other tags too
    result = Pulled(image=target.name, registry=target.registry, digests=digests, reader=reader)
    console.set_outputs(render_outputs(result))
    console.write_summary(render_summary(result))
    return result


def render_outputs(result: Pulled) -> dict[str, str]:
    """Every declared output: pull mode fills image, tags, tag-names, digest, registry, token and
    report; the others are empty."""
    outputs = dict.fromkeys(OUTPUT_NAMES, "")
    outputs.update({
        "image": result.image,
        "images": result.image,
        "registry": result.registry,
        "tags": "\n".join(result.digests),
        "tag-names": "\n".join(ref.rpartition(":")[2] for ref in result.digests),
        "digest": result.digest,
        "token-source": result.reader.source if result.reader.secret else "",
        "username": result.reader.username,
        "report": json.dumps({"mode": "pull", "image": result.image,
                                "ref_digests": result.digests}, sort_keys=True),
    })
    return outputs


def render_summary(result: Pulled) -> str:
    lines = [f"### Pulled `{result.image}`", "", "| Ref | Digest |", "| --- | --- |"]
    lines += [f"| `{ref}` | `{digest}` |" for ref, digest in result.digests.items()]
    lines += ["", f"**Token:** {result.reader.label} ({result.reader.reason})", ""]
    return "\n".join(lines)

