"""``mode: cleanup``: prune old versions of a container package through the Packages API.

The plan is a pure function of the version list (``plan``); ``run`` lists the versions
(following pagination), prints the plan, and deletes only when ``dry-run`` is false.

GitHub's rules this follows (https://docs.github.com/rest/packages/packages and
https://docs.github.com/en/packages/learn-github-packages/deleting-and-restoring-a-package):

- the Packages REST API takes a personal access token (classic), never ``GITHUB_TOKEN``;
  listing needs ``read:packages``, deleting ``delete:packages`` too;
- organization and user packages live under ``/orgs/`` and ``/users/``;
- GitHub refuses to delete the last tagged version of a container package (400 "You
  cannot delete the last tagged version of a package. You must delete the package
  instead."), so the plan always keeps one tagged version.

Rules, in this order: the version pushed by this run (``digest`` input), protected tags
(fnmatch patterns; ``semver`` stands for every ``[v]MAJOR.MINOR.PATCH[-pre][+build]`` tag)
and the ``keep-latest`` newest versions are kept; then a version is deleted when it is
beyond the ``keep-latest`` newest, or untagged and older than
``delete-untagged-older-than`` days. Anything no rule selects is kept.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gh_docker_publish.core import credentials, refs
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.settings import Secret, Settings
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.github_api import ApiClients, GitHubApi, PackageVersion, TokenOwner
from gh_docker_publish.edges.report import OUTPUT_NAMES
from gh_docker_publish.errors import (
    CLASSIC_PAT_DOCS,
    CredentialError,
    GitHubApiError,
    InputError,
    PublishError,
)

SEMVER_KEYWORD = "semver"
# semver.org's grammar, with the customary leading "v".
SEMVER = re.compile(
    r"v?(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
LAST_TAGGED = "the last tagged version (GitHub refuses to delete it)"


@dataclass(frozen=True)
class Rules:
    """What to keep and what to delete; see the module docstring."""

    keep_latest: int | None = None
    untagged_older_than_days: float | None = None
    protect_tags: tuple[str, ...] = ("latest", SEMVER_KEYWORD)
    protect_digests: frozenset[str] = frozenset()

    def protecting_tag(self, tags: Sequence[str]) -> str | None:
        """The first tag a pattern protects, or None."""
        for tag in tags:
            for pattern in self.protect_tags:
                if pattern == SEMVER_KEYWORD and SEMVER.fullmatch(tag):
                    return tag
                if pattern != SEMVER_KEYWORD and fnmatch.fnmatchcase(tag, pattern):
                    return tag
        return None


@dataclass(frozen=True)
class Decision:
    """One version and what happens to it, with the reason in words."""

    version: PackageVersion
    delete: bool
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.version.id, "digest": self.version.digest,
                "tags": list(self.version.tags), "created_at": self.version.created_at,
                "action": "delete" if self.delete else "keep", "reason": self.reason}


def created(version: PackageVersion) -> datetime:
    """The version's creation time (GitHub's ISO 8601 ``created_at``)."""
    stamp = version.created_at.replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(stamp).astimezone(UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def plan(versions: Sequence[PackageVersion], rules: Rules, now: datetime) -> list[Decision]:
    """Decide each version, newest first (by ``created_at``, then id)."""
    ordered = sorted(versions, key=lambda v: (created(v), v.id), reverse=True)
    decisions: list[Decision] = []
    for rank, version in enumerate(ordered):
        age_days = (now - created(version)).total_seconds() / 86400
        tag = rules.protecting_tag(version.tags)
        if version.digest in rules.protect_digests:
            decisions.append(Decision(version, False, "pushed by this run"))
        elif tag is not None:
            decisions.append(Decision(version, False, f"protected tag '{tag}'"))
        elif rules.keep_latest is not None and rank < rules.keep_latest:
            decisions.append(Decision(version, False, f"one of the {rules.keep_latest} newest"))
        elif rules.keep_latest is not None:
            decisions.append(Decision(version, True, f"older than the {rules.keep_latest} newest"))
        elif (not version.tags and rules.untagged_older_than_days is not None
              and age_days > rules.untagged_older_than_days):
            decisions.append(Decision(
                version, True,
                f"untagged, {age_days:.1f} days old (> {rules.untagged_older_than_days:g})"))
        else:
            decisions.append(Decision(version, False, "no rule selects it"))
    return _keep_one_tagged(decisions)


def _keep_one_tagged(decisions: list[Decision]) -> list[Decision]:
    """If every tagged version would go, keep the newest tagged one (GitHub's 400)."""
    tagged = [d for d in decisions if d.version.tags]
    if not tagged or any(not d.delete for d in tagged):
        return decisions
    newest = tagged[0]
    return [Decision(d.version, False, LAST_TAGGED) if d is newest else d for d in decisions]


@dataclass(frozen=True)
class CleanupResult:
    """The plan, what was deleted, and whether it was a dry run. No secrets in here."""

    package: str  # OWNER/NAME
    image: str
    registry: str
    decisions: tuple[Decision, ...]
    dry_run: bool
    deleted: tuple[PackageVersion, ...] = ()

    @property
    def kept(self) -> tuple[PackageVersion, ...]:
        return tuple(d.version for d in self.decisions if not d.delete)

    @property
    def to_delete(self) -> tuple[PackageVersion, ...]:
        return tuple(d.version for d in self.decisions if d.delete)


# -- the run ---------------------------------------------------------------------------------


def _token_owner(apis: ApiClients, token: Secret) -> TokenOwner:
    """``GET /user`` for the PAT (once per run); a token that cannot call it is no classic
    PAT."""
    try:
        return apis.owner(token)
    except CredentialError as exc:
        raise CredentialError(
            f"The 'token' input is not a personal access token (classic) that can call "
            f"GET /user: {exc.message}",
            hint=CredentialError.CLEANUP_PAT_HINT, docs_url=CLASSIC_PAT_DOCS,
        ) from exc


def _check_scopes(owner: TokenOwner, dry_run: bool) -> None:
    """Raises when X-OAuth-Scopes lacks what the run needs."""
    needed = ["read:packages"] + ([] if dry_run else ["delete:packages"])
    implied = {"read:packages": {"read:packages", "write:packages"}}
    missing = [s for s in needed if not owner.scopes & implied.get(s, {s})]
    if missing:
        have = ", ".join(sorted(owner.scopes)) or "none (a fine-grained token?)"
        raise CredentialError(
            f"The personal access token of {owner.login} lacks {' and '.join(missing)} "
            f"(its scopes: {have}).",
            hint="Edit the token's scopes (classic tokens only) and update the secret."
            + (" A dry run needs only read:packages." if not dry_run else ""),
            docs_url=CLASSIC_PAT_DOCS,
        )


def _owner_type(api: GitHubApi, owner: str, name: str) -> str:
    for kind in ("Organization", "User"):
        if api.package(owner, name, kind) is not None:
            return kind
    raise GitHubApiError.package_missing(owner, name)


def run(
    settings: Settings,
    ctx: RunContext,
    console: Console,
    api_factory: Callable[[str, str], GitHubApi] = GitHubApi,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    per_page: int = 100,
    probed_registry: str | None = None,
) -> CleanupResult:
    """List the package's versions, print the plan, delete unless dry-run; write outputs
    (``deleted-versions``, ``kept-versions``) and the summary. ``probed_registry``: the
    GHES registry ``registries.choose`` found, as for publish."""
    target = refs.resolve_target(settings, ctx, probed_registry=probed_registry)
    if target.flavour is refs.Flavour.DOCKER:
        raise InputError(
            "mode", "cleanup works on the Container registry only; "
            f"{target.registry} is a GHES Docker registry.",
            hint="Delete versions of Docker registry packages in the package's settings page.",
        )
    apis = ApiClients(api_factory, ctx.api_url)
    credential = credentials.for_cleanup(
        settings, target.registry, pat_owner=lambda: _token_owner(apis, settings.token).login
    )
    token_owner = _token_owner(apis, credential.secret)  # the same one GET /user
    _check_scopes(token_owner, settings.dry_run)
    api, login = apis(credential.secret), token_owner.login
    owner, name = target.owner, target.package_name
    kind = _owner_type(api, owner, name)
    console.info(f"Package {owner}/{name} ({kind.lower()} package), token of {login}")
    versions = list(api.package_versions(owner, name, kind, per_page=per_page))
    rules = Rules(
        keep_latest=settings.keep_latest,
        untagged_older_than_days=settings.delete_untagged_older_than,
        protect_tags=settings.protect_tags,
        protect_digests=frozenset(settings.digest),
    )
    decisions = tuple(plan(versions, rules, now()))
    result = CleanupResult(f"{owner}/{name}", target.name, target.registry, decisions,
                           settings.dry_run)
    with console.group(f"Plan for {owner}/{name}: {len(versions)} version(s)"):
        for line in render_plan_lines(result):
            console.info(line)
    if settings.dry_run:
        console.notice(f"Dry run: {len(result.to_delete)} version(s) would be deleted; "
                       "set 'dry-run: false' to delete them.")
    else:
        result = _delete(api, result, kind, console)
    console.set_outputs(render_outputs(result))
    console.write_summary(render_summary(result))
    return result


def _delete(api: GitHubApi, result: CleanupResult, kind: str, console: Console) -> CleanupResult:
    owner, _, name = result.package.partition("/")
    deleted: list[PackageVersion] = []
    for version in result.to_delete:
        try:
            api.delete_package_version(owner, name, version.id, kind)
        except PublishError:
            partial = CleanupResult(result.package, result.image, result.registry,
                                    result.decisions, False, tuple(deleted))
            console.set_outputs(render_outputs(partial))
            console.write_summary(render_summary(partial))
            raise
        console.info(f"Deleted {version.digest} ({_tags(version)})")
        deleted.append(version)
    return CleanupResult(result.package, result.image, result.registry, result.decisions,
                         False, tuple(deleted))


# -- rendering (pure) ------------------------------------------------------------------------


def _tags(version: PackageVersion) -> str:
    return ", ".join(version.tags) or "untagged"


def render_plan_lines(result: CleanupResult) -> list[str]:
    verb = "would delete" if result.dry_run else "delete"
    return [
        f"{verb if d.delete else 'keep':12} {d.version.digest[:19]}  {d.version.created_at:20}  "
        f"{_tags(d.version)}  ({d.reason})"
        for d in result.decisions
    ]


def render_outputs(result: CleanupResult) -> dict[str, str]:
    """Every declared output; cleanup fills ``deleted-versions`` (in a dry run: those that
    would be deleted) and ``kept-versions``, digests one per line, and ``report``."""
    outputs = dict.fromkeys(OUTPUT_NAMES, "")
    gone = result.to_delete if result.dry_run else result.deleted
    outputs.update({
        "image": result.image,
        "registry": result.registry,
        "deleted-versions": "\n".join(v.digest for v in gone),
        "kept-versions": "\n".join(v.digest for v in result.kept),
        "report": json.dumps({"mode": "cleanup", "package": result.package,
                                "dry_run": result.dry_run,
                                "plan": [d.as_json() for d in result.decisions]},
                               sort_keys=True),
    })
    return outputs


def render_summary(result: CleanupResult) -> str:
    done = len(result.deleted)
    if result.dry_run:
        heading = (f"### Cleanup plan for `{result.package}` (dry run: "
                   f"{len(result.to_delete)} would be deleted)")
    else:
        heading = f"### Cleaned up `{result.package}`: {done} deleted, {len(result.kept)} kept"
    lines = [heading, "", "| Version | Tags | Created | Action | Why |",
             "| --- | --- | --- | --- | --- |"]
    deleted_ids = {v.id for v in result.deleted}
    for d in result.decisions:
        if not d.delete:
            action = "keep"
        elif result.dry_run:
            action = "would delete"
        else:
            action = "deleted" if d.version.id in deleted_ids else "not deleted (stopped)"
        tags = _tags(d.version).replace("|", "\\|")
        lines.append(f"| `{d.version.digest[:19]}` | {tags} | {d.version.created_at} | "
                     f"{action} | {d.reason} |")
    lines.append("")
    return "\n".join(lines)
