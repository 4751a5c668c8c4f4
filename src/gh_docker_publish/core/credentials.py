"""Which token, as which user, and why: the one credential decision, made before any build.

GitHub's rules (https://docs.github.com/en/packages/learn-github-packages/about-permissions-for-github-packages
and .../publishing-and-installing-a-package-with-github-actions):

- ``GITHUB_TOKEN`` can publish packages linked to the workflow's repository. On the
  Container registry a package it creates is linked to that repository, so a *new* package
  under the workflow's owner is fine too. It reads the packages of its own repository,
  those that granted the repository access under "Manage Actions access", and public ones.
- Anything else (another repository's package, another owner) needs a personal access token
  (classic) with ``write:packages`` (``read:packages`` to read); the Docker registry also
  needs ``repo`` for private repositories. The Packages REST API (cleanup) takes only a PAT.

We prefer ``GITHUB_TOKEN`` whenever it is enough: it expires with the job and is scoped to
the repository. Every decision here returns a ``Credential``, the record every edge takes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.refs import Flavour, Target
from gh_docker_publish.core.settings import Secret, Settings
from gh_docker_publish.errors import CredentialError

TokenSource = Literal["github-token", "token"]
CredentialSource = Literal["github-token", "token", "anonymous", "registry-auth"]
READ_SCOPE = "read:packages"
#: The scopes a reading PAT needs, as the missing-PAT error says it.
READ_SCOPES = (f"{READ_SCOPE} (write:packages includes it) by a user who can read the "
               "package")

#: ``pat_owner()``: the PAT's user (``GET /user``), asked only when a PAT without a
#: ``username`` input is chosen; the flow binds it to its one API client for the PAT.
PatOwner = Callable[[], str]


class Unknown(enum.Enum):
    """Marks "the Packages API was not asked" (distinct from None: "no such package")."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN
# What the Packages API says the package is linked to: OWNER/REPO, None (new or unlinked),
# or UNKNOWN (not asked).
PackageLink = str | None | Literal[Unknown.UNKNOWN]

TOKEN_LABELS: dict[CredentialSource, str] = {
    "github-token": "GITHUB_TOKEN",
    "token": "personal access token",
    "anonymous": "no token",
    "registry-auth": "registry-auth entry",  # a registry that is not GitHub's (core/images.py)
}


@dataclass(frozen=True)
class Credential:
    """One credential, decided once per registry and purpose (the push, a reader, cleanup)
    and carried as is to the daemon login, the preflight, registry reads, the buildx config
    and the pushes, as docker/login-action carries its one ``Auth`` from inputs to login.
    ``source`` anonymous: no secret, pull without credentials."""

    registry: str
    username: str
    secret: Secret
    source: CredentialSource
    reason: str  # why this token, one line without the token's name (see ``describe``)

    @property
    def label(self) -> str:
        """How messages name the token."""
        return TOKEN_LABELS[self.source]

    @property
    def who(self) -> str:
        """The token as the subject of a sentence: "the GITHUB_TOKEN"."""
        return f"the {self.label}"

    def describe(self) -> str:
        """One log line: which token, as whom, and why."""
        who = f" as {self.username}" if self.username else ""
        return f"Using the {self.label}{who}: {self.reason}."


def username_for(source: CredentialSource, settings: Settings, ctx: RunContext, owner: str,
                 pat_owner: PatOwner) -> str:
    """The one user name rule. GITHUB_TOKEN cannot call ``GET /user`` and the registry does
    not check the name against it: the run's actor, the ``username`` input, else the
    owner. A PAT goes with the ``username`` input, else its user from ``GET /user``."""
    if source == "github-token":
        return ctx.actor or settings.username or owner
    if source == "token":
        return settings.username or pat_owner()
    return ""


def _credential(source: CredentialSource, settings: Settings, ctx: RunContext, registry: str,
                owner: str, pat_owner: PatOwner, reason: str) -> Credential:
    secrets = {"github-token": settings.github_token, "token": settings.token}
    username = username_for(source, settings, ctx, owner, pat_owner)
    return Credential(registry, username, secrets.get(source, Secret()), source, reason)


def pat_scopes(target: Target) -> str:
    """The classic-PAT scopes the target needs, as a phrase for messages."""
    if target.flavour is Flavour.DOCKER:
        return "write:packages (plus repo if the repository is private)"
    return "write:packages"


def _github_token_reason(settings: Settings, ctx: RunContext, target: Target,
                         package_repository: PackageLink) -> tuple[bool, str]:
    """Decide whether GITHUB_TOKEN can publish ``target``; return (ok, why)."""
    workflow_repo = ctx.repository.lower()
    wanted = target.repository.lower()
    if not workflow_repo:
        return False, "there is no workflow repository (GITHUB_REPOSITORY is unset)"
    if target.flavour is Flavour.DOCKER:
        # The Docker registry path names the repository, so no API call is needed.
        if wanted == workflow_repo:
            return True, f"the image belongs to this workflow's repository {wanted}"
        return False, f"the image belongs to {wanted}, not to the workflow's repository"
    owner = ctx.repository_owner.lower() or workflow_repo.partition("/")[0]
    if target.owner != owner:
        return False, f"the image's owner {target.owner} is not the workflow's owner {owner}"
    if wanted != workflow_repo:
        return False, (
            f"the package belongs to {wanted}; GITHUB_TOKEN can only publish packages of "
            f"{workflow_repo}"
        )
    if package_repository is UNKNOWN:
        return True, (
            f"the owner is this workflow's owner ({owner}); the package's repository was not "
            "checked (that needs a personal access token)"
        )
    if package_repository is None:
        return True, (
            f"the package is new (or not linked); GITHUB_TOKEN creates it linked to "
            f"{workflow_repo}"
        )
    if package_repository.lower() == workflow_repo:
        return True, f"the package is linked to this workflow's repository {workflow_repo}"
    return False, (
        f"the package is linked to {package_repository.lower()}, not to {workflow_repo}"
    )


def choose_token(
    settings: Settings,
    ctx: RunContext,
    target: Target,
    package_repository: PackageLink = UNKNOWN,
    pat_owner: PatOwner = lambda: "",
) -> Credential:
    """Pick GITHUB_TOKEN or the PAT to publish ``target``: the run's push credential.

    Args:
        package_repository: the repository the Packages API says the package is linked to
            (``None``: no such package / not linked; ``UNKNOWN``: not asked).
        pat_owner: the PAT's user, asked only when the PAT is chosen without ``username``
            (the default leaves the user out: a dry run calls nothing).

    Raises:
        CredentialError: the needed token is missing, naming the secret and scopes to add.
    """

    def pick(source: TokenSource, reason: str) -> Credential:
        return _credential(source, settings, ctx, target.registry, target.owner, pat_owner,
                           reason)

    def missing_pat(why: str) -> CredentialError:
        return CredentialError.missing_pat(f"Publishing {target.name}", why, pat_scopes(target))

    if settings.auth == "github-token":
        if not settings.github_token:
            raise CredentialError.no_github_token(
                "'auth' is github-token but there is no GITHUB_TOKEN."
            )
        return pick("github-token", "'auth' is github-token")
    if settings.auth == "token":
        if not settings.token:
            raise missing_pat("'auth' is token but the 'token' input is empty")
        return pick("token", "'auth' is token")

    ok, why = _github_token_reason(settings, ctx, target, package_repository)
    if ok and settings.github_token:
        return pick("github-token", why)
    if ok:
        if settings.token:
            return pick("token", f"no GITHUB_TOKEN was given ({why})")
        raise CredentialError.no_github_token(
            f"No token to publish {target.name}: neither 'github-token' nor 'token' is set."
        )
    if settings.token:
        return pick("token", why)
    raise missing_pat(why)


def readers(
    settings: Settings, ctx: RunContext, registry: str, owner_path: str, flavour: Flavour,
    pat_owner: PatOwner,
) -> list[Credential]:
    """The credentials to try for reading an image under ``owner_path`` (OWNER, or
    OWNER/REPO on the Docker registry), best first. ``auth`` pins one; ``auto`` puts
    GITHUB_TOKEN first for the workflow's own namespace and the PAT first for anyone
    else's, then GITHUB_TOKEN (public packages, and those that granted this repository
    access, read with it).

    Raises:
        CredentialError: 'auth' is token but no PAT is given.
    """
    is_own = owns(ctx, owner_path, flavour)
    owner = owner_path.partition("/")[0]

    def pick(source: CredentialSource, reason: str) -> Credential:
        return _credential(source, settings, ctx, registry, owner, pat_owner, reason)

    if settings.auth == "token":
        if not settings.token:
            raise CredentialError.missing_pat(
                f"Reading packages of {owner_path}",
                "'auth' is token but the 'token' input is empty", READ_SCOPES,
            )
        return [pick("token", "'auth' is token")]
    if settings.auth == "github-token":
        return [pick("github-token", "'auth' is github-token")]
    out: list[Credential] = []
    if is_own and settings.github_token:
        out.append(pick("github-token", f"{owner_path} is this workflow's"))
    if settings.token:
        out.append(pick("token", f"{owner_path} is not this workflow's" if not is_own
                        else "GITHUB_TOKEN was refused"))
    if not is_own and settings.github_token:
        out.append(pick("github-token", "in case the package is public or granted this "
                        "repository access"))
    return out or [pick("anonymous", "no token given")]


def owns(ctx: RunContext, owner_path: str, flavour: Flavour) -> bool:
    """True when ``owner_path`` is the workflow's namespace: its owner on the Container
    registry, OWNER/REPO on the Docker registry."""
    workflow = ctx.repository.lower()
    own = workflow if flavour is Flavour.DOCKER else workflow.partition("/")[0]
    return bool(workflow) and owner_path.lower() == own


def for_cleanup(settings: Settings, registry: str, pat_owner: PatOwner) -> Credential:
    """Cleanup's credential: the PAT (the Packages REST API does not take GITHUB_TOKEN).

    Raises:
        CredentialError: 'auth' is github-token, or no PAT is given.
    """
    if settings.auth == "github-token" or not settings.token:
        raise CredentialError.cleanup_needs_pat(settings.auth == "github-token")
    return Credential(registry, settings.username or pat_owner(), settings.token, "token",
                      "cleanup calls the Packages REST API")


def should_ask_packages_api(settings: Settings, ctx: RunContext, target: Target) -> bool:
    """True when asking the Packages API which repository the package is linked to can change
    the choice: a PAT is at hand (the API needs one) and GITHUB_TOKEN would otherwise be used
    on the strength of the owner alone."""
    if settings.auth != "auto" or not settings.token or not settings.github_token:
        return False
    if target.flavour is not Flavour.CONTAINER:
        return False
    ok, _ = _github_token_reason(settings, ctx, target, UNKNOWN)
    return ok
