"""The pipeline: the one module that calls the others in order.

settings + context -> target, tags, push decision (pure) -> token choice (pure, after
at most one Packages API question) -> login -> build -> tag -> push -> outputs + summary.
Everything that can be refused without the network is refused before the first call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from gh_docker_publish.core import credentials, metadata, refs, tags
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.credentials import UNKNOWN, PackageLink, TokenChoice
from gh_docker_publish.core.settings import Settings
from gh_docker_publish.edges import builders, engine, preflight, registries, registry_api, report
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.github_api import GitHubApi, RepositoryInfo
from gh_docker_publish.errors import BuildError, InputError, PublishError, PushError
from gh_docker_publish.flows import post_step, pull

ApiFactory = Callable[[str, str], GitHubApi]
CONTEXT_ONLY = "the labels use the run context only."
T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """Where the pipeline finds the world; the caller chooses (tests point it at the bed)."""

    docker_host: str | None = None
    github_api: ApiFactory = GitHubApi
    docker_timeout: float = 300.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # GitHub's Docker registry limits, checked after the build (tests pass small ones).
    image_limits: preflight.ImageLimits = field(default_factory=preflight.ImageLimits)


@dataclass(frozen=True)
class Plan:
    """What a run will do, known before touching the daemon or the registry."""

    target: refs.Target
    tags: tuple[str, ...]
    refs: tuple[str, ...]
    push: bool
    push_reason: str


def plan_tags(settings: Settings, ctx: RunContext, now: datetime) -> tuple[str, ...]:
    """The run's tags (pure). ``type=`` rules are only checked here, so ``run`` calls this
    before the GHES registry probe: a bad rule must not wait for the network.

    Raises:
        InputError: a rule is wrong, or no tag applies to this event.
    """
    tag_list = metadata.compute_metadata(settings, ctx, now=now).tags
    if not tag_list:
        raise InputError(
            "tags",
            f"no tag applies to this '{ctx.event_name or 'unknown'}' event.",
            hint="Add a plain tag or a rule that fires on this event (e.g. type=sha).",
        )
    return tag_list


def plan(
    settings: Settings,
    ctx: RunContext,
    now: datetime,
    probed: registries.RegistryChoice | None = None,
) -> Plan:
    """The pure part of a run: where the image goes, its tags, and whether it is pushed.

    ``probed``: the GHES registry ``registries.choose`` found (None: refs decides alone).

    Raises:
        InputError: a tag rule or the image does not fit; nothing has been contacted yet.
    """
    target = refs.resolve_target(
        settings, ctx, probed_registry=probed.host if probed else None
    )
    tag_list = plan_tags(settings, ctx, now)
    decision = tags.push_decision(settings.push, ctx.event_name, ctx.is_fork_pull_request)
    return Plan(
        target=target,
        tags=tag_list,
        refs=tuple(target.ref(tag) for tag in tag_list),
        push=decision.push,
        push_reason=decision.reason,
    )


def run(
    settings: Settings, ctx: RunContext, console: Console, services: Services
) -> report.PublishResult:
    """Publish as ``settings`` say; write outputs and the summary; return what happened.

    On a push that fails part-way the outputs are still written for the refs that
    landed, then the PushError goes up to the caller.
    """
    started = time.monotonic()
    retry = engine.RetryPolicy(deadline=started + settings.deadline if settings.deadline else None)
    for note in settings.notices:
        console.notice(note)
    now = services.now()
    plan_tags(settings, ctx, now)  # inputs before the network: choose() may probe GHES
    probed = registries.choose(settings, ctx)
    the_plan = plan(settings, ctx, now, probed)
    target = the_plan.target
    for warning in target.warnings:
        console.warning(warning)
    console.info(registries.explain(target, settings, ctx, probed))
    # The daemon first: without one nothing else matters, and it answers in milliseconds.
    client = engine.connect(services.docker_host, timeout=services.docker_timeout)

    choice: TokenChoice | None = None
    username = ""
    if the_plan.push:
        choice, username = _choose_credentials(settings, ctx, target, console, services)
        console.info(f"Token: {choice.describe()}")
    else:
        console.info(f"Not pushing: {the_plan.push_reason}")

    # The repository's description and license (for the labels) are read while we log in.
    repo_info = _in_background(
        lambda: _repository_info(settings, ctx, target, choice, services)
    )
    auth: engine.AuthConfig | None = None
    if choice is not None:
        with console.group(f"Log in to {target.registry}"):
            auth = engine.login(
                client, target.registry, username, choice.secret.reveal(), log=console,
                retry=retry,
            )
            # Fail in seconds, not after the build, when this token may not push here.
            preflight.before_build(
                target, username, choice.secret.reveal(),
                scheme=registries.registry_scheme(target.registry, ctx),
                fields=_hints(target, ctx, choice), who=f"the {choice.label}", log=console,
            )
    preflight.warn_engine(client, target, console)

    info, warning = repo_info()
    if warning:
        console.warning(warning)
    # The final tags, labels and annotations: the same rules as the plan's, now with the
    # repository's facts for the labels (metadata.compute_metadata is their one maker).
    meta = metadata.compute_metadata(
        settings, ctx, now=now, repository=target.repository, repo_info=_repo_json(info)
    )
    image_labels = dict(meta.labels)

    # Base images of other owners: pulled now with a token that reads them (pull.py).
    settings = pull.prepare_bases(
        client, settings, ctx, target, choice, auth, console, services.github_api
    )
    built = _build(
        client, settings, the_plan, image_labels, meta.annotations, console, services, auth
    )
    result = report.PublishResult(
        image=target.name,
        registry=target.registry,
        tags=the_plan.tags,
        refs=the_plan.refs,
        imageid=built.image_id,
        package_url=refs.package_url(target, ctx),
        token_source=choice.source if choice else "",
        username=username,
        token_reason=choice.reason if choice else "",
        labels=image_labels,
        version=meta.version,
        annotations=meta.annotations,
        separators=(settings.sep_tags, settings.sep_labels, settings.sep_annotations),
        export_env=settings.metadata_env.set_output_env,
        push_skipped_reason="" if the_plan.push else the_plan.push_reason,
        builder=built.builder,
        build_metadata=built.metadata,
    )
    if auth is None:
        result = replace(result, not_landed=the_plan.refs, seconds=time.monotonic() - started)
        report.write(result, console)
        return result

    preflight.after_build(client, built.image_id, target, services.image_limits, console)
    try:
        with console.group(f"Push {len(the_plan.refs)} tag(s) to {target.name}"):
            pushed = engine.push(
                client, the_plan.refs, auth, console, hint_fields=_hints(target, ctx, choice),
                retry=retry,
                verify=_verifier(
                    auth, built.image_id, retry, registries.registry_scheme(target.registry, ctx)
                ),
            )
    except PushError as failure:
        partial = replace(
            result,
            pushed=bool(failure.landed),
            digest=next(iter(failure.digests.values()), ""),
            landed=tuple(failure.landed),
            not_landed=tuple(failure.not_landed),
            ref_digests=failure.digests,
            seconds=time.monotonic() - started,
        )
        report.write(partial, console)
        raise
    result = replace(
        result,
        digest=pushed.digest,
        pushed=True,
        landed=the_plan.refs,
        ref_digests=pushed.digests,
        bytes_uploaded=pushed.uploaded,
        seconds=time.monotonic() - started,
    )
    report.write(result, console)
    return result


def _choose_credentials(
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    console: Console,
    services: Services,
) -> tuple[TokenChoice, str]:
    """Which token pushes, and the user name that goes with it (masked together)."""
    link: PackageLink = UNKNOWN
    if credentials.should_ask_packages_api(settings, ctx, target):
        link = _package_link(settings, ctx, target, console, services)
    choice = credentials.choose_token(settings, ctx, target, link)
    username = choice.username or ""
    if not username and choice.source == "github-token":
        username = ctx.actor or "x-access-token"
    if not username:
        api = services.github_api(ctx.api_url, choice.secret.reveal())
        username = api.token_owner().login
    console.mask_login(username, choice.secret.reveal())
    return choice, username


def _package_link(
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    console: Console,
    services: Services,
) -> PackageLink:
    """Ask the Packages API (PAT only) which repository an existing package is linked to."""
    api = services.github_api(ctx.api_url, settings.token.reveal())
    try:
        package = api.package(target.owner, target.package_name)
    except PublishError as exc:
        console.warning(f"Could not ask the Packages API about {target.name}: {exc}")
        return UNKNOWN
    if package is None:
        console.info(f"Package {target.owner}/{target.package_name} does not exist yet.")
        return None
    console.info(
        f"Package {target.owner}/{target.package_name} is linked to "
        f"{package.repository or 'no repository'}."
    )
    return package.repository


def _repository_info(
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    choice: TokenChoice | None,
    services: Services,
) -> tuple[RepositoryInfo | None, str]:
    """The package repository's description and license for the labels, or a warning (not
    a failure) saying why the labels use the run context only."""
    secret = choice.secret if choice else (settings.github_token or settings.token)
    if not secret:
        return None, f"No token to read {target.repository} from the GitHub API; {CONTEXT_ONLY}"
    try:
        info = services.github_api(ctx.api_url, secret.reveal()).repository(target.repository)
    except PublishError as exc:
        return None, f"Cannot read {target.repository} from the API ({exc}); {CONTEXT_ONLY}"
    if info is None:
        return None, f"The GitHub API does not show {target.repository}; {CONTEXT_ONLY}"
    return info, ""


def _in_background(work: Callable[[], T]) -> Callable[[], T]:
    """Start ``work`` on a daemon thread; the returned call waits for its result (or
    raises its exception). A daemon thread never holds up the exit of a failed run."""
    outcome: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def target() -> None:
        try:
            outcome.put((True, work()))
        except BaseException as exc:  # handed to the caller, raised there
            outcome.put((False, exc))

    threading.Thread(target=target, name="gh-docker-publish-background", daemon=True).start()

    def result() -> T:
        ok, value = outcome.get()
        if not ok:
            raise value
        return cast(T, value)

    return result


def _repo_json(info: RepositoryInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "name": info.name,
        "description": info.description,
        "html_url": info.html_url,
        "license": {"spdx_id": info.license_spdx} if info.license_spdx else None,
    }


def _build(
    client: Any,
    settings: Settings,
    the_plan: Plan,
    image_labels: dict[str, str],
    annotations: tuple[str, ...],
    console: Console,
    services: Services,
    auth: engine.AuthConfig | None,
) -> builders.BuildResult:
    """Build with the builder the ``builder`` input picks (auto: BuildKit when buildx works,
    said in the log with the reason); its output is fenced so it cannot issue commands.

    Our registry login goes to buildx too (private base images on the same registry, a
    registry cache), in a private DOCKER_CONFIG whose path is saved as state so the
    action's post step removes it should this process be killed before its ``finally``.
    """
    request = builders.BuildRequest(
        context=Path(settings.context),
        dockerfile=Path(settings.file).resolve(),  # settings give it relative to the cwd
        tags=the_plan.refs,
        build_args=dict(settings.build_args),
        labels=image_labels,
        target=settings.target or None,
        pull=settings.pull,
        no_cache=settings.no_cache,
        platforms=settings.platforms,
        secrets=settings.build_secrets,
        cache_from=settings.cache_from,
        cache_to=settings.cache_to,
        provenance=settings.provenance,
        # build-push-action's `annotations: ${{ steps.meta.outputs.annotations }}`: the
        # `annotations` input given, buildx gets every computed LEVEL:KEY=VALUE.
        flags=replace(
            settings.buildx,
            annotations=annotations if settings.buildx.apply_annotations else (),
        ),
        registry_auths={auth["serveraddress"]: auth} if auth else {},
    )
    builder, reason = builders.detect_builder(
        settings.builder,
        client,
        services.docker_host,
        on_config_dir=lambda path: console.save_state(post_step.STATE_NAME, str(path)),
    )
    console.info(f"Builder: {builder.name} ({reason})")
    try:
        with (
            console.group(f"Build {the_plan.target.name} ({builder.name} builder)"),
            console.stop_commands(),
        ):
            return builder.build(request, console)
    except BuildError as failure:
        _show_build_tail(failure, console)
        raise


def _show_build_tail(failure: BuildError, console: Console) -> None:
    """The build's last lines outside its group, which the log shows folded: the reason a
    build failed is usually there. Still build output, so still fenced."""
    if not failure.log_tail:
        return
    with console.stop_commands():
        console.info(f"Last {len(failure.log_tail)} lines of the build:")
        for line in failure.log_tail:
            console.info(f"  {line}")


def _verifier(
    auth: engine.AuthConfig, image_id: str, retry: engine.RetryPolicy, scheme: str
) -> engine.Verify:
    """Asks the registry whether a ref already holds the built image: used when a push's
    outcome is unknown (timeout, dropped connection), before retrying or failing."""
    client = registry_api.RegistryClient(
        auth["serveraddress"], auth["username"], auth["password"], scheme=scheme,
        deadline=retry.deadline,
    )
    return lambda ref: registry_api.pushed_digest(client, ref, image_id)


def _hints(target: refs.Target, ctx: RunContext, choice: TokenChoice | None) -> dict[str, str]:
    """Values for the denial hints: where the user fixes a refused push."""
    return {
        "repository": ctx.repository,
        "image": target.name,
        "registry": target.registry,
        "token_source": choice.source if choice else "",
        "package_settings_url": refs.package_url(target, ctx),
    }
