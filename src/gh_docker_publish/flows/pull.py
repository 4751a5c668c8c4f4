"""Installing packages: pull images with the token that can read them.

Two callers: ``mode: pull`` (``run``: fetch ``image`` at ``tags``) and publish, which pulls
the Dockerfile's base images of other owners before the build (``pull_foreign_bases``).
Per GitHub (https://docs.github.com/en/packages/learn-github-packages/about-permissions-for-github-packages)
``GITHUB_TOKEN`` reads the packages of its own repository, those that granted the
repository access under "Manage Actions access", and public ones; everything else needs a
personal access token (classic) with ``read:packages``. Credentials go per call
(``auth_config``): the daemon's login for the host keeps the push token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gh_docker_publish.core import refs
from gh_docker_publish.core.base_images import BaseImage, external_images, foreign_images
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.credentials import PAT_DOCS, PAT_SECRET_NAME, TokenChoice
from gh_docker_publish.core.settings import Secret, Settings
from gh_docker_publish.edges import build_context, engine
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.report import OUTPUT_NAMES
from gh_docker_publish.errors import CredentialError, RegistryError

READ_SCOPE = "read:packages"


@dataclass(frozen=True)
class Reader:
    """One credential to pull with. ``secret`` empty means anonymous."""

    source: str  # "github-token" | "token" | "anonymous"
    secret: Secret
    username: str
    reason: str

    @property
    def label(self) -> str:
        return {"github-token": "GITHUB_TOKEN", "token": "personal access token"}.get(
            self.source, "no token"
        )

    def auth(self, registry: str) -> engine.AuthConfig | None:
        if not self.secret:
            return None
        return {"username": self.username, "password": self.secret.reveal(),
                "serveraddress": registry}


@dataclass(frozen=True)
class Pulled:
    """What a pull fetched: each ref with its digest, and who read it."""

    image: str
    registry: str
    digests: dict[str, str]
    reader: Reader

    @property
    def digest(self) -> str:
        return next(iter(self.digests.values()), "")


# -- which token reads -----------------------------------------------------------------------


def _pat_username(settings: Settings, ctx: RunContext, api_factory: Any, console: Console) -> str:
    """The PAT's owner (GET /user) unless ``username`` is given; masked with the PAT."""
    username = settings.username
    if not username:
        username = api_factory(ctx.api_url, settings.token.reveal()).token_owner().login
    console.mask_login(username, settings.token.reveal())
    return str(username)


def _github_token_reader(settings: Settings, ctx: RunContext, reason: str) -> Reader:
    username = ctx.actor or settings.username or "x-access-token"
    return Reader("github-token", settings.github_token, username, reason)


def readers(
    settings: Settings, ctx: RunContext, owner_path: str, flavour: refs.Flavour,
    api_factory: Any, console: Console,
) -> list[Reader]:
    """The credentials to try for an image under ``owner_path`` (OWNER, or OWNER/REPO on the
    Docker registry), best first. ``auth`` pins one; ``auto`` puts GITHUB_TOKEN first for
    the workflow's own namespace and the PAT first for anyone else's."""
    workflow = ctx.repository.lower()
    own_ns = workflow if flavour is refs.Flavour.DOCKER else workflow.partition("/")[0]
    is_own = bool(workflow) and owner_path.lower() == own_ns

    def pat(reason: str) -> Reader:
        return Reader("token", settings.token,
                      _pat_username(settings, ctx, api_factory, console), reason)

    if settings.auth == "token":
        if not settings.token:
            raise missing_pat(owner_path, "'auth' is token but the 'token' input is empty")
        return [pat("'auth' is token")]
    if settings.auth == "github-token":
        reader = _github_token_reader(settings, ctx, "'auth' is github-token")
        console.mask_login(reader.username, reader.secret.reveal())
        return [reader]
    out: list[Reader] = []
    if is_own and settings.github_token:
        out.append(_github_token_reader(settings, ctx, f"{owner_path} is this workflow's"))
    if settings.token:
        out.append(pat(f"{owner_path} is not this workflow's" if not is_own
                       else "GITHUB_TOKEN was refused"))
    if not is_own and settings.github_token:
        # Public packages, and those that granted this repository access, read with it.
        out.append(_github_token_reader(settings, ctx, "in case the package is public or "
                                        "granted this repository access"))
    if not out:
        out.append(Reader("anonymous", Secret(), "", "no token given"))
    for reader in out:
        console.mask_login(reader.username, reader.secret.reveal())
    return out


def missing_pat(owner_path: str, why: str) -> CredentialError:
    return CredentialError(
        f"Reading packages of {owner_path} needs a personal access token: {why}.",
        hint=(
            f"Create a personal access token (classic) with {READ_SCOPE} (write:packages "
            f"includes it) by a user who can read the package, add it as the secret "
            f"{PAT_SECRET_NAME} and pass 'token: ${{{{ secrets.{PAT_SECRET_NAME} }}}}'."
        ),
        docs_url=PAT_DOCS,
    )


def pull_with(
    client: Any, ref: str, registry: str, candidates: Sequence[Reader], console: Console,
    platform: str | None = None,
) -> tuple[str, Reader]:
    """Pull ``ref`` with the first credential the registry accepts; return (digest, reader).

    Raises:
        RegistryError: the last refusal (or a non-denial failure at once).
    """
    failure: RegistryError | None = None
    for reader in candidates:
        console.info(f"Pulling {ref} with the {reader.label} ({reader.reason})")
        try:
            digest = engine.pull(client, ref, reader.auth(registry), console, platform=platform)
        except RegistryError as exc:
            if not engine.denial_hint(str(exc)) and "not found" not in str(exc).lower():
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
    choice: TokenChoice | None,
    console: Console,
    api_factory: Any,
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
        candidates = readers(settings, ctx, owner_path, target.flavour, api_factory, console)
        if choice is not None and choice.source == "token":
            candidates = [c for c in candidates if c.source == "token"] or candidates
        try:
            pull_with(client, image.ref, target.registry, candidates, console, image.platform)
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
    auth: engine.AuthConfig | None, console: Console, dockerfile_text: str,
) -> None:
    """With ``pull: true`` the build would re-pull every base with the push login, which
    cannot read the foreign ones: pull the others here so the build can skip its pull."""
    done = {image.ref for image in pulled}
    for image in external_images(dockerfile_text, settings.build_args):
        if image.ref in done:
            continue
        same_host = image.host == target.registry.lower()
        engine.pull(client, image.ref, auth if same_host else None, console,
                    platform=image.platform)


def prepare_bases(
    client: Any,
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    choice: TokenChoice | None,
    auth: engine.AuthConfig | None,
    console: Console,
    api_factory: Any,
) -> Settings:
    """Publish's hook before the build: pull foreign base images with a token that reads
    them; returns the settings the build should use (``pull`` off once everything it
    would pull was pulled here)."""
    # Read as BuildKit reads it: never through a link out of its directory (issue 17).
    text = build_context.read_dockerfile(Path(settings.file))
    pulled = pull_foreign_bases(client, settings, ctx, target, choice, console, api_factory, text)
    if not pulled or not settings.pull:
        return settings
    pull_remaining_bases(client, settings, target, pulled, auth, console, text)
    return replace(settings, pull=False)


# -- mode: pull ------------------------------------------------------------------------------


def pull_refs(settings: Settings, target: refs.Target, tag_list: Sequence[str]) -> list[str]:
    """What ``mode: pull`` fetches: ``image`` at each tag (default ``latest``)."""
    return [target.ref(tag) for tag in (tag_list or ("latest",))]


def run(
    settings: Settings, ctx: RunContext, console: Console, client: Any, api_factory: Any,
    tag_list: Sequence[str], *, probed_registry: str | None = None,
) -> Pulled:
    """``mode: pull``: fetch every ref with the first token the registry accepts; write
    outputs (``digest``, ``tags``, …) and the summary. ``probed_registry``: the GHES
    registry ``registries.choose`` found, as for publish."""
    target = refs.resolve_target(settings, ctx, probed_registry=probed_registry)
    wanted = pull_refs(settings, target, tag_list)
    depth = 2 if target.flavour is refs.Flavour.DOCKER else 1
    owner_path = "/".join(target.path.split("/")[:depth])
    candidates = readers(settings, ctx, owner_path, target.flavour, api_factory, console)
    digests: dict[str, str] = {}
    reader = candidates[0]
    for ref in wanted:
        try:
            with console.group(f"Pull {ref}"):
                digests[ref], reader = pull_with(client, ref, target.registry, candidates, console)
        except RegistryError as exc:
            if not settings.token and not _is_own(ctx, owner_path, target.flavour):
                raise missing_pat(owner_path, f"{ref} was refused ({exc.message})") from exc
            raise
        candidates = [reader]  # the token that worked reads the other tags too
    result = Pulled(image=target.name, registry=target.registry, digests=digests, reader=reader)
    console.set_outputs(render_outputs(result))
    console.write_summary(render_summary(result))
    return result


def _is_own(ctx: RunContext, owner_path: str, flavour: refs.Flavour) -> bool:
    workflow = ctx.repository.lower()
    own = workflow if flavour is refs.Flavour.DOCKER else workflow.partition("/")[0]
    return owner_path.lower() == own


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

