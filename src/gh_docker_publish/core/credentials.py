"""Which token publishes, as which user, and why: a pure decision, made before any build.

GitHub's rules (https://docs.github.com/en/packages/learn-github-packages/about-permissions-for-github-packages
and .../publishing-and-installing-a-package-with-github-actions):

- ``GITHUB_TOKEN`` can publish packages linked to the workflow's repository. On the
  Container registry a package it creates is linked to that repository, so a *new* package
  under the workflow's owner is fine too.
- Anything else (another repository's package, another owner) needs a personal access token
  (classic) with ``write:packages``; the Docker registry also needs ``repo`` for private
  repositories.

We prefer ``GITHUB_TOKEN`` whenever it is enough: it expires with the job and is scoped to
the repository.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.refs import Flavour, Target
from gh_docker_publish.core.settings import Secret, Settings
from gh_docker_publish.errors import CredentialError

TokenSource = Literal["github-token", "token"]

# The name our messages suggest for the PAT secret (a name, not a secret).
PAT_SECRET_NAME = "PACKAGES_TOKEN"  # noqa: S105
PERMISSIONS_DOCS = (
    "https://docs.github.com/en/packages/learn-github-packages/"
    "about-permissions-for-github-packages"
)
PAT_DOCS = (
    "https://docs.github.com/en/packages/working-with-a-github-packages-registry/"
    "working-with-the-container-registry#authenticating-with-a-personal-access-token-classic"
)
PUBLISH_WITH_ACTIONS_DOCS = (
    "https://docs.github.com/en/packages/managing-github-packages-using-github-actions-workflows/"
    "publishing-and-installing-a-package-with-github-actions"
)


class Unknown(enum.Enum):
    """Marks "the Packages API was not asked" (distinct from None: "no such package")."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN
# What the Packages API says the package is linked to: OWNER/REPO, None (new or unlinked),
# or UNKNOWN (not asked).
PackageLink = str | None | Literal[Unknown.UNKNOWN]


@dataclass(frozen=True)
class TokenChoice:
    """The token to use. ``username=None`` means: ask ``GET /user`` with the token."""

    source: TokenSource
    secret: Secret
    username: str | None
    reason: str  # why this token, one line without the token's name (see ``describe``)

    @property
    def label(self) -> str:
        """How messages name the token."""
        return "GITHUB_TOKEN" if self.source == "github-token" else "personal access token"

    def describe(self) -> str:
        """One log line: which token, as whom, and why."""
        who = f" as {self.username}" if self.username else ""
        return f"Using the {self.label}{who}: {self.reason}."


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


def _missing_pat(target: Target, why: str) -> CredentialError:
    return CredentialError(
        f"Publishing {target.name} needs a personal access token: {why}.",
        hint=(
            f"Create a personal access token (classic) with {pat_scopes(target)}, add it as "
            f"the secret {PAT_SECRET_NAME} and pass "
            f"'token: ${{{{ secrets.{PAT_SECRET_NAME} }}}}'."
        ),
        docs_url=PAT_DOCS,
    )


def _github_token_choice(settings: Settings, ctx: RunContext, target: Target,
                         reason: str) -> TokenChoice:
    # GITHUB_TOKEN cannot call GET /user, so the username must come from the run; the
    # registry does not check it against the token, any non-empty name works.
    username = ctx.actor or settings.username or target.owner
    return TokenChoice("github-token", settings.github_token, username, reason)


def _pat_choice(settings: Settings, reason: str) -> TokenChoice:
    return TokenChoice("token", settings.token, settings.username or None, reason)


def choose_token(
    settings: Settings,
    ctx: RunContext,
    target: Target,
    package_repository: PackageLink = UNKNOWN,
) -> TokenChoice:
    """Pick GITHUB_TOKEN or the PAT for ``target``.

    Args:
        package_repository: the repository the Packages API says the package is linked to
            (``None``: no such package / not linked; ``UNKNOWN``: not asked).

    Raises:
        CredentialError: the needed token is missing, naming the secret and scopes to add.
    """
    if settings.auth == "github-token":
        if not settings.github_token:
            raise CredentialError(
                "'auth' is github-token but there is no GITHUB_TOKEN.",
                hint="Pass 'github-token: ${{ github.token }}' (the default) and grant "
                "'permissions: packages: write'; outside Actions set GITHUB_TOKEN.",
                docs_url=PUBLISH_WITH_ACTIONS_DOCS,
            )
        return _github_token_choice(settings, ctx, target, "'auth' is github-token")
    if settings.auth == "token":
        if not settings.token:
            raise _missing_pat(target, "'auth' is token but the 'token' input is empty")
        return _pat_choice(settings, "'auth' is token")

    ok, why = _github_token_reason(settings, ctx, target, package_repository)
    if ok and settings.github_token:
        return _github_token_choice(settings, ctx, target, why)
    if ok:
        if settings.token:
            return _pat_choice(settings, f"no GITHUB_TOKEN was given ({why})")
        raise CredentialError(
            f"No token to publish {target.name}: neither 'github-token' nor 'token' is set.",
            hint="In a workflow keep the default 'github-token: ${{ github.token }}' and grant "
            "'permissions: packages: write'; outside Actions set GITHUB_TOKEN.",
            docs_url=PUBLISH_WITH_ACTIONS_DOCS,
        )
    if settings.token:
        return _pat_choice(settings, why)
    raise _missing_pat(target, why)


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
