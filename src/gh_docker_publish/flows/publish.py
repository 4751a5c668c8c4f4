"""The pipeline: the one module that calls the others in order.

settings + context -> target, tags, push decision (pure) -> token choice (pure, after
at most one Packages API question) -> login -> build -> tag -> push -> outputs + summary.
Everything that can be refused without the network is refused before the first call.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex
from typing import Any, TypeVar, cast

import requests

from gh_docker_publish.core import credentials, limits, metadata, published_values, refs, tags
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.credentials import UNKNOWN, Credential, PackageLink
from gh_docker_publish.core.refs import Target
from gh_docker_publish.core.settings import Secret, Settings
from gh_docker_publish.edges import (
    build_context,
    builders,
    buildx_builders,
    engine,
    preflight,
    registries,
    registry_api,
    report,
)
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.github_api import ApiClients, GitHubApi, RepositoryInfo
from gh_docker_publish.errors import BuildError, InputError, PublishError, PushError
from gh_docker_publish.flows import platforms, post_step, pull

ApiFactory = Callable[[str, str], GitHubApi]
CONTEXT_ONLY = "the labels use the run context only."
T = TypeVar("T")
#: The builders that push themselves (BuildKit here or elsewhere), as push-by-digest needs.
BUILDKIT_BUILDERS = (builders.BuildKitBuilder, buildx_builders.ElsewhereBuilder)


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
    """What a run will do, known before touching the daemon or the registry: made once
    (``plan``), carried through the run, and what the dry run prints (``render_plan``)."""

    targets: tuple[Target, ...]  # one per image (`images`), the first is `image`
    tags: tuple[str, ...]
    push: bool
    push_reason: str
    #: The labels from the inputs and the run's facts (the repository's own facts, read
    #: from the API during the run, are added to the image's labels then).
    labels: dict[str, str] = field(default_factory=dict)
    #: The push credential once chosen (the dry run chooses it without any API call).
    credential: Credential | None = None

    @property
    def target(self) -> Target:
        return self.targets[0]

    @property
    def refs(self) -> tuple[str, ...]:
        """Every image's refs, image by image (metadata-action's `tags` order)."""
        return tuple(ref for target in self.targets for ref in self.refs_of(target))

    def refs_of(self, target: Target) -> tuple[str, ...]:
        return tuple(target.ref(tag) for tag in self.tags)

    def retarget(self, targets: tuple[Target, ...]) -> Plan:
        """The same plan for the registry the GHES probe found."""
        return replace(self, targets=targets)


def plan_tags(settings: Settings, ctx: RunContext, now: datetime) -> tuple[str, ...]:
    """The run's tags (pure), for pull mode's ``tags``.

    Raises:
        InputError: a rule is wrong, no tag applies to this event, or too many do.
    """
    return _checked_tags(metadata.compute_metadata(settings, ctx, now=now), ctx)


def _checked_tags(meta: metadata.Metadata, ctx: RunContext) -> tuple[str, ...]:
    if not meta.tags:
        raise InputError(
            "tags",
            f"no tag applies to this '{ctx.event_name or 'unknown'}' event.",
            hint="Add a plain tag or a rule that fires on this event (e.g. type=sha).",
        )
    limits.check_tag_count(meta.tags)
    return meta.tags


def refuse_published_secrets(settings: Settings, final: metadata.Metadata) -> None:
    """No final tag, label or annotation may carry a token or secret of the run (issue 17
    item 13): checked on what ``compute_metadata`` made, so rules and expressions count.

    Raises:
        InputError: naming the input; nothing has been contacted yet.
    """
    published_values.refuse_secrets(
        {
            "tags": final.tags,
            "labels": [f"{k}={v}" for k, v in final.labels.items()],
            "annotations": final.annotations,
        },
        settings.secrets(),
    )


def plan(
    settings: Settings,
    ctx: RunContext,
    now: datetime,
    probed: registries.RegistryChoice | None = None,
) -> Plan:
    """The pure part of a run: where the image goes, its tags and labels, and whether it is
    pushed. ``run`` makes it before the GHES registry probe (a bad rule must not wait for
    the network) and retargets it to the probed registry.

    ``probed``: the GHES registry ``registries.choose`` found (None: refs decides alone).

    Raises:
        InputError: a tag rule, the number of tags or the image does not fit, or a tag,
            label or annotation holds a secret of the run; nothing has been contacted yet.
    """
    targets = resolve_targets(settings, ctx, probed.host if probed else None)
    meta = metadata.compute_metadata(settings, ctx, now=now, repository=targets[0].repository)
    tag_list = _checked_tags(meta, ctx)
    refuse_published_secrets(settings, meta)
    decision = tags.push_decision(settings.push, ctx.event_name, ctx.is_fork_pull_request)
    return Plan(
        targets=targets,
        tags=tag_list,
        push=decision.push,
        push_reason=decision.reason,
        labels=dict(meta.labels),
    )


def resolve_targets(
    settings: Settings, ctx: RunContext, probed_registry: str | None
) -> tuple[Target, ...]:
    """One target per image (``images``, or the one ``image``), each resolved as ``image``
    is; the same image twice (once the registry and owner are filled in) is refused."""
    targets = tuple(
        refs.resolve_target(replace(settings, image=name), ctx, probed_registry=probed_registry)
        for name in settings.image_names
    )
    names = [target.name for target in targets]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(
            "images", f"{twice[0]} is given twice (after the registry and owner are filled in).",
            hint="List each image once.",
        )
    return targets


def probe_registry(
    the_plan: Plan, settings: Settings, ctx: RunContext
) -> tuple[Plan, registries.RegistryChoice | None]:
    """The plan retargeted to the GHES registry ``registries.choose`` probes for (the first
    network call, so made after every input is checked), and that choice for the log."""
    probed = registries.choose(settings, ctx)
    if probed is None:
        return the_plan, None
    return the_plan.retarget(resolve_targets(settings, ctx, probed.host)), probed


def dry_run(settings: Settings, ctx: RunContext, now: datetime) -> tuple[Plan, str]:
    """The plan with its push credential chosen from the inputs alone (no daemon, no
    registry, no API call), and why no token is usable ("" when one is)."""
    the_plan = plan(settings, ctx, now)
    if not the_plan.push:
        return the_plan, ""
    try:
        return replace(the_plan, credential=credentials.choose_token(
            settings, ctx, the_plan.target)), ""
    except PublishError as exc:
        return the_plan, str(exc)


def render_plan(the_plan: Plan, token_problem: str = "") -> str:
    """The dry run's text: image, refs, token (or why none) or why not pushing, labels."""
    lines = [f"image:    {target.name}" for target in the_plan.targets] + ["refs:"]
    lines += [f"  {ref}" for ref in the_plan.refs]
    if the_plan.credential is not None:
        lines.append(f"token:    {the_plan.credential.describe()}")
    elif the_plan.push:
        lines.append(f"token:    none usable: {token_problem}")
    else:
        lines.append(f"push:     no ({the_plan.push_reason})")
    lines.append("labels:")
    lines += [f"  {key}={value}" for key, value in sorted(the_plan.labels.items())]
    return "\n".join(lines)


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
    the_plan = plan(settings, ctx, now)  # every input checked before the network
    _check_dockerfile(settings)
    for warning in limits.outside_workspace(ctx.workspace, context=settings.context,
                                            file=settings.file):
        console.warning(warning)
    the_plan, probed = probe_registry(the_plan, settings, ctx)
    target = the_plan.target
    for each in the_plan.targets:
        for warning in each.warnings:
            console.warning(warning)
        if the_plan.push or settings.push_by_digest:
            refused = refs.digest_push_conflicts(
                each, platforms=settings.platforms,
                provenance=bool(settings.provenance or settings.sbom),
                by_digest="push-by-digest" if settings.push_by_digest else "",
            )
            if refused is not None:
                raise refused
        console.info(registries.explain(each, settings, ctx, probed))
    # The daemon first: without one nothing else matters, and it answers in milliseconds.
    client = engine.connect(services.docker_host, timeout=services.docker_timeout)
    # What this engine's builder cannot build is refused now, before any registry call.
    builder, builder_reason = _choose_builder(client, settings, services, console)
    if settings.push_by_digest and not isinstance(builder, BUILDKIT_BUILDERS):
        raise InputError(
            "push-by-digest", f"needs BuildKit, but the builder is {builder.name} "
            f"({builder_reason}).", hint="Install the docker buildx plugin, or set builder: "
            "buildkit to see why it is not used.",
        )

    apis = ApiClients(services.github_api, ctx.api_url)  # one client per token this run
    logins: list[Credential] = []
    if the_plan.push:
        several = len(the_plan.targets) > 1
        logins = [
            _credential_for(settings, ctx, each, console, apis, several=several)
            for each in the_plan.targets
        ]
        the_plan = replace(the_plan, credential=logins[0])
    else:
        console.info(f"Not pushing: {the_plan.push_reason}")
    credential = logins[0] if logins else None

    # The repository's description and license (for the labels) are read while we log in.
    repo_info = in_background(
        lambda: repository_info(settings, target, credential, apis)
    )
    _log_in(client, the_plan.targets, logins, ctx, console, retry)
    for each in the_plan.targets:
        preflight.warn_engine(client, each, console)

    info, warning = repo_info()
    if warning:
        console.warning(warning)
    # The final tags, labels and annotations: the same rules as the plan's, now with the
    # repository's facts for the labels (metadata.compute_metadata is their one maker).
    meta = metadata.compute_metadata(
        settings, ctx, now=now, repository=target.repository, repo_info=repo_json(info)
    )
    image_labels = dict(meta.labels)

    # Base images of other owners: pulled now with a token that reads them (pull.py), into
    # this daemon; BuildKit elsewhere pulls its own, with the logins buildx gets.
    if not isinstance(builder, buildx_builders.ElsewhereBuilder):
        settings = pull.prepare_bases(client, settings, ctx, target, credential, console, apis)
    request = _request(settings, the_plan, image_labels, meta.annotations, logins)
    result = report.PublishResult(
        image=target.name,
        images=tuple(each.name for each in the_plan.targets),
        registry=target.registry,
        tags=the_plan.tags,
        refs=the_plan.refs,
        package_url=refs.package_url(target, ctx),
        token_source=credential.source if credential else "",
        username=credential.username if credential else "",
        token_reason=credential.reason if credential else "",
        labels=image_labels,
        version=meta.version,
        annotations=meta.annotations,
        separators=(settings.sep_tags, settings.sep_labels, settings.sep_annotations),
        export_env=settings.metadata_env.set_output_env,
        push_skipped_reason="" if the_plan.push else the_plan.push_reason,
        builder=builder.name,
    )
    if settings.push_by_digest and isinstance(builder, BUILDKIT_BUILDERS):
        native = builders.runnable_platforms(client)[:1] or ["linux/amd64"]
        return _push_by_digest(
            builder, request, result, the_plan, credential, ctx, console, retry, started,
            platform=(settings.platforms or tuple(native))[0],
        )
    if _buildkit_pushes(builder, settings.platforms, credential):
        assert isinstance(builder, BUILDKIT_BUILDERS)
        return _publish_platforms(
            builder, request, result, the_plan, logins, ctx, console, retry, started
        )
    build_ref = _build_ref(builder, request, the_plan, ctx)
    if build_ref:  # the post step's second net, should this process be killed
        console.save_state(post_step.BUILD_NAME_STATE, build_ref)
    try:
        built = _build_in_daemon(client, builder, builder_reason, request, build_ref,
                                 the_plan, console)
        result = replace(result, imageid=built.image_id, builder=built.builder,
                         build_metadata=built.metadata)
        if credential is None:
            result = replace(result, not_landed=the_plan.refs,
                             seconds=time.monotonic() - started)
            report.write(result, console)
            return result
        return _push_built(client, built.image_id, result, the_plan, logins, ctx, console,
                           retry, started, services)
    finally:
        if build_ref:
            _remove_build_name(client, build_ref, console)


def _push_built(
    client: Any, image_id: str, result: report.PublishResult, the_plan: Plan,
    logins: list[Credential], ctx: RunContext, console: Console, retry: engine.RetryPolicy,
    started: float, services: Services,
) -> report.PublishResult:
    """Push the image built into this daemon, image by image, each tag re-pointed at it
    and read back (engine.push); then the outputs and the summary (``_finish``)."""
    for each in the_plan.targets:
        preflight.after_build(client, image_id, each, services.image_limits, console)
    landed: list[str] = []
    digests: dict[str, str] = {}
    uploaded = 0
    failures: list[PushError] = []
    # Image by image: the first push to a registry uploads the blobs, the daemon mounts
    # them into the next repository of the same registry instead of uploading them again.
    for each, login in zip(the_plan.targets, logins, strict=True):
        image_refs = the_plan.refs_of(each)
        each_scheme = registry_api.scheme_for(each.registry, ctx.server_url)
        _mount_blobs(each, landed, login, each_scheme, console)
        registry = registry_client(login, ctx, retry)
        try:
            with console.group(f"Push {len(image_refs)} tag(s) to {each.name}"):
                pushed = engine.push(
                    client, image_refs, login, console,
                    hint_fields=hints(each, ctx, login), retry=retry,
                    verify=_verifier(registry, image_id),
                    built=_built_image(registry, each, image_id),
                )
        except PushError as failure:
            failures.append(failure)
            landed += failure.landed
            digests |= failure.digests
            continue
        finally:
            registry.close()
        landed += image_refs
        digests |= pushed.digests
        uploaded += pushed.uploaded
    return _finish(result, the_plan, landed, digests, failures, console, started,
                   bytes_uploaded=uploaded)


def _finish(
    result: report.PublishResult, the_plan: Plan, landed: list[str], digests: dict[str, str],
    failures: list[PushError], console: Console, started: float, **more: Any,
) -> report.PublishResult:
    """Every image pushed (or tried): the outputs and summary for what landed, in the
    plan's order; then the failures, as one error naming every ref that did not land."""
    result = replace(
        result,
        digest=next((digests[ref] for ref in the_plan.refs if ref in digests), ""),
        pushed=bool(landed),
        landed=tuple(ref for ref in the_plan.refs if ref in landed),
        not_landed=tuple(ref for ref in the_plan.refs if ref not in landed) if failures else (),
        ref_digests=digests,
        seconds=time.monotonic() - started,
        **more,
    )
    report.write(result, console)
    if failures:
        raise _one_failure(failures, result)
    return result


def _mount_blobs(
    target: Target, landed: list[str], credential: Credential, scheme: str, console: Console,
) -> None:
    """Before the next image on a registry that already holds this build: mount every blob
    of the first image (config and layers, read from its manifest) into this repository.
    The classic daemon mounts layers itself but always uploads the config; the containerd
    store's daemon often uploads the layers again: this way no blob goes up twice to one
    registry (issue 14)."""
    source_ref = next((ref for ref in landed if ref.startswith(f"{target.registry}/")), "")
    if not source_ref:
        return
    source, _, tag = source_ref.removeprefix(f"{target.registry}/").rpartition(":")
    client = registry_api.RegistryClient(credential, scheme=scheme)
    try:
        manifest = client.manifest(source, tag)
        blobs = () if manifest is None else (manifest.config_digest, *manifest.layers)
        mounted = sum(
            client.mount_blob(target.path, blob, source) for blob in blobs if blob
        )
    except requests.RequestException as exc:  # only an optimisation: the push uploads them
        console.info(f"Could not mount the image's blobs into {target.name}: {exc}")
        return
    finally:
        client.close()
    if mounted:
        console.info(f"Mounted {mounted} blob(s) into {target.name} from {source}.")


def _one_failure(failures: list[PushError], result: report.PublishResult) -> PushError:
    """One image's failure as it was; several images' failures as one, listing every ref
    that did and did not land across all images."""
    if len(failures) == 1 and len(result.images) == 1:
        return failures[0]
    first = failures[0]
    return PushError(
        f"{len(failures)} of {len(result.images)} images did not fully land: {first.message}",
        landed=result.landed, not_landed=result.not_landed, digests=dict(result.ref_digests),
        registry_message=first.registry_message, hint=first.hint, docs_url=first.docs_url,
    )


def _credential_for(
    settings: Settings, ctx: RunContext, target: Target, console: Console, apis: ApiClients,
    *, several: bool,
) -> Credential:
    """The push credential of one image: a ``registry-auth`` entry for a registry that is
    not GitHub's; GitHub's rules (our token choice) for GitHub's registries and the rest."""
    entry = next((e for e in settings.registry_auth if e.registry == target.registry), None)
    if entry is not None and not target.github_hosted:
        console.mask_login(entry.username, entry.password)
        console.info(f"Credentials for {target.name}: the registry-auth entry for "
                     f"{entry.registry} as {entry.username}.")
        return Credential(
            target.registry, entry.username, Secret(entry.password), "registry-auth",
            f"the registry-auth entry for {entry.registry}",
        )
    if entry is not None:
        console.notice(
            f"registry-auth: the entry for {entry.registry} is not used: GitHub's registry "
            "gets its token by GitHub's rules ('github-token', or a PAT in 'token')."
        )
    credential = choose_credential(settings, ctx, target, console, apis)
    console.info(f"Token for {target.name}: {credential.describe()}" if several
                 else f"Token: {credential.describe()}")
    return credential


def _log_in(
    client: Any, targets: tuple[Target, ...], logins: list[Credential], ctx: RunContext,
    console: Console, retry: engine.RetryPolicy,
) -> None:
    """One daemon login per registry and user (several images on one registry share it),
    and one push-permission probe per image, all before the build. Not pushing: none."""
    if not logins:
        return
    done: set[tuple[str, str, str]] = set()
    for target, credential in zip(targets, logins, strict=True):
        # Fail in seconds, not after the build, when this token may not push here. The
        # probe's round trips overlap the daemon's login (issue 13 B6); a failed login
        # is still the error the run stops with.
        access = in_background(functools.partial(
            preflight.check_push_access, target, credential,
            scheme=registry_api.scheme_for(target.registry, ctx.server_url),
            fields=hints(target, ctx, credential),
        ))
        key = (credential.registry, credential.username, credential.secret.reveal())
        if key not in done:
            done.add(key)
            with console.group(f"Log in to {target.registry}"):
                engine.login(client, credential, log=console, retry=retry)
        preflight.log_access(access(), console)


def choose_credential(
    settings: Settings,
    ctx: RunContext,
    target: refs.Target,
    console: Console,
    apis: ApiClients,
) -> Credential:
    """The push credential (``credentials.choose_token``), masked with its user name."""
    link: PackageLink = UNKNOWN
    if credentials.should_ask_packages_api(settings, ctx, target):
        link = _package_link(settings, target, console, apis)
    credential = credentials.choose_token(
        settings, ctx, target, link, pat_owner=lambda: apis.owner(settings.token).login
    )
    console.mask_login(credential.username, credential.secret.reveal())
    return credential


def _package_link(
    settings: Settings, target: refs.Target, console: Console, apis: ApiClients
) -> PackageLink:
    """Ask the Packages API (PAT only) which repository an existing package is linked to."""
    try:
        package = apis(settings.token).package(target.owner, target.package_name)
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


def repository_info(
    settings: Settings,
    target: refs.Target,
    credential: Credential | None,
    apis: ApiClients,
) -> tuple[RepositoryInfo | None, str]:
    """The package repository's description and license for the labels, or a warning (not
    a failure) saying why the labels use the run context only."""
    secret = credential.secret if credential else (settings.github_token or settings.token)
    if not secret:
        return None, f"No token to read {target.repository} from the GitHub API; {CONTEXT_ONLY}"
    try:
        info = apis(secret).repository(target.repository)
    except PublishError as exc:
        return None, f"Cannot read {target.repository} from the API ({exc}); {CONTEXT_ONLY}"
    if info is None:
        return None, f"The GitHub API does not show {target.repository}; {CONTEXT_ONLY}"
    return info, ""


def in_background(work: Callable[[], T]) -> Callable[[], T]:
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


def repo_json(info: RepositoryInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "name": info.name,
        "description": info.description,
        "html_url": info.html_url,
        "license": {"spdx_id": info.license_spdx} if info.license_spdx else None,
    }


def _check_dockerfile(settings: Settings) -> None:
    """Refuse a Dockerfile linked out of its directory before any network call: neither
    docker CLI reads it, and its text in a parse error leaked the environment (issue 17)."""
    try:
        build_context.resolve_dockerfile(Path(settings.file))
    except BuildError as exc:
        raise InputError("file", exc.message, hint=exc.hint) from exc


def _request(
    settings: Settings,
    the_plan: Plan,
    image_labels: dict[str, str],
    annotations: tuple[str, ...],
    logins: list[Credential],
) -> builders.BuildRequest:
    """What to build. Our registry logins go to buildx too (private base images on the
    same registry, a registry cache, BuildKit's own push), one per registry."""
    return builders.BuildRequest(
        context=Path(settings.context),
        # The path as given (relative to the cwd), links not resolved: BuildKit resolves a
        # linked Dockerfile inside its own directory and looks for <name>.dockerignore
        # next to the link (issue 17).
        dockerfile=Path(settings.file).absolute(),
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
        sbom=settings.sbom,
        # build-push-action's `annotations: ${{ steps.meta.outputs.annotations }}`: the
        # `annotations` input given, buildx gets every computed LEVEL:KEY=VALUE.
        flags=replace(
            settings.buildx,
            annotations=annotations if settings.buildx.apply_annotations else (),
        ),
        credentials=tuple({c.registry: c for c in logins}.values()),  # one per registry
    )


def _choose_builder(
    client: Any, settings: Settings, services: Services, console: Console
) -> tuple[builders.Builder, str]:
    """The builder the ``builder`` input picks (auto: BuildKit when buildx works), checked
    against what this engine can build: cache exports and attestations its image store
    cannot make, a RUN on a platform the host cannot execute. All before any registry call.

    BuildKit elsewhere (an address in ``builder``) must answer first, and another
    engine's image store has the same limits as this one's (issue 13).

    buildx's private DOCKER_CONFIG path is saved as state so the action's post step
    removes it should this process be killed before its ``finally``.
    """
    probe = builders.BuildRequest(
        context=Path(settings.context), cache_to=settings.cache_to,
        provenance=settings.provenance, sbom=settings.sbom,
    )
    if settings.builder_location is not None:
        elsewhere, found = buildx_builders.elsewhere_builder(
            settings.builder_location, client, services.docker_host,
            buildx=builders.buildx_plugin(),
            on_config_dir=lambda path: console.save_state(post_step.STATE_NAME, str(path)),
        )
        elsewhere.refuse_limits(probe)
        return elsewhere, found
    builder, reason = builders.detect_builder(
        settings.builder,
        client,
        services.docker_host,
        on_config_dir=lambda path: console.save_state(post_step.STATE_NAME, str(path)),
    )
    if isinstance(builder, builders.BuildKitBuilder):
        version = engine.daemon_version(client)["version"]
        builders.refuse_docker_driver_limits(
            probe, builder.containerd_store, f"Docker Engine {version}".strip()
        )
        if settings.platforms:
            builders.refuse_foreign_runs(
                Path(settings.file).read_text(encoding="utf-8", errors="replace"),
                settings.target or None, settings.platforms,
                builders.runnable_platforms(client),
            )
    return builder, reason


def _build(
    builder: builders.Builder,
    reason: str,
    request: builders.BuildRequest,
    the_plan: Plan,
    console: Console,
) -> builders.BuildResult:
    """Build into the daemon with the chosen builder, said in the log with the reason; its
    output is fenced so it cannot issue commands."""
    console.info(f"Builder: {builder.name} ({reason})")
    if builder.name == "classic" and request.flags.apply_annotations:
        console.warning("The classic builder cannot annotate the image: 'annotations' only "
                        "fills the annotations output here (BuildKit applies them).")
    try:
        with (
            console.group(f"Build {the_plan.target.name} ({builder.name} builder)"),
            console.stop_commands(),
        ):
            return builder.build(request, console)
    except BuildError as failure:
        _show_build_tail(failure, console)
        raise


def _build_ref(
    builder: builders.Builder, request: builders.BuildRequest, the_plan: Plan, ctx: RunContext
) -> str:
    """The run-unique name a build into this daemon exports (``tags.build_tag``), or "" when
    the image does not land here (BuildKit elsewhere, `load: false`, `outputs`, `call`)."""
    in_this_daemon = isinstance(builder, builders.ClassicBuilder | builders.BuildKitBuilder)
    if not in_this_daemon or not request.flags.loads_image:
        return ""
    return the_plan.target.ref(tags.build_tag(ctx.run_id, ctx.run_attempt, token_hex(6)))


def _build_in_daemon(
    client: Any,
    builder: builders.Builder,
    reason: str,
    request: builders.BuildRequest,
    build_ref: str,
    the_plan: Plan,
    console: Console,
) -> builders.BuildResult:
    """Build under ``build_ref`` alone, then point the run's tags at the built image ID:
    two runs on one daemon never export the same name (the containerd store's BuildKit
    refuses the second, ``tags.build_tag``), the tags are there locally as before (also
    for `push: false`), and ``build_ref`` keeps the image while another run moves them.
    The `metadata` output names the run's tags (``report.buildx_metadata``)."""
    if not build_ref:
        return _build(builder, reason, request, the_plan, console)
    built = _build(builder, reason, replace(request, tags=(build_ref,)), the_plan, console)
    for ref in request.tags:
        engine.tag(client, built.image_id, ref)
    return built


def _remove_build_name(client: Any, build_ref: str, console: Console) -> None:
    """``build_ref`` goes when the run ends, pushed or failed, so that nothing piles up on a
    daemon that persists; the post step then has nothing left to do."""
    try:
        engine.untag(client, build_ref)
    except PublishError as exc:  # the run's outcome stands; the name is only clutter
        console.warning(f"Could not remove the build name {build_ref}: {exc}")
        return
    console.save_state(post_step.BUILD_NAME_STATE, "")


def _buildkit_pushes(
    builder: builders.Builder, platforms: tuple[str, ...], credential: Credential | None
) -> bool:
    """Whether BuildKit pushes the image itself: several platforms (the daemon cannot hold
    the index), or BuildKit elsewhere on a pushing run (the image is not in this daemon)."""
    if isinstance(builder, buildx_builders.ElsewhereBuilder):
        return credential is not None or len(platforms) > 1
    return len(platforms) > 1 and isinstance(builder, builders.BuildKitBuilder)


def _publish_platforms(
    builder: builders.BuildKitBuilder | buildx_builders.ElsewhereBuilder,
    request: builders.BuildRequest,
    result: report.PublishResult,
    the_plan: Plan,
    logins: list[Credential],
    ctx: RunContext,
    console: Console,
    retry: engine.RetryPolicy,
    started: float,
) -> report.PublishResult:
    """BuildKit builds and pushes: several platforms as one index under every tag
    (flows/platforms.py), or BuildKit elsewhere (then one platform too). Without a push
    there is nothing to hold an index, so each platform is only built (the classic store
    cannot load an index).

    Several images: one BuildKit push per image, with that image's tags, each read back
    from that image's registry with its own login (the build itself comes from the cache
    after the first), so what landed is said image by image."""
    how = ("containerd image store: BuildKit pushes the index" if builder.containerd_store
           else "classic image store: one build per platform, then one index")
    if isinstance(builder, buildx_builders.ElsewhereBuilder):
        console.info(f"Builder: buildkit ({builder.reason}, which pushes the image itself)")
    else:
        console.info(f"Builder: buildkit, {len(request.platforms)} platforms ({how})")
    if not logins:
        image_id = ""
        for platform in request.platforms:
            only = replace(request, platforms=(platform,), tags=())
            image_id = _build(builder, "not pushed", only, the_plan, console).image_id
        result = replace(result, imageid=image_id, not_landed=the_plan.refs,
                         seconds=time.monotonic() - started)
        report.write(result, console)
        return result
    landed: list[str] = []
    digests: dict[str, str] = {}
    failures: list[PushError] = []
    published: list[platforms.Published] = []
    landed_platforms: dict[str, str] = {}
    missing_platforms: list[str] = []
    for each, login in zip(the_plan.targets, logins, strict=True):
        try:
            done = _push_one_image(builder, request, the_plan.refs_of(each), each, login, ctx,
                                   console, retry)
        except PushError as failure:
            failures.append(failure)
            landed += failure.landed
            digests |= failure.digests
            landed_platforms = landed_platforms or failure.platforms_landed
            missing_platforms += [p for p in failure.platforms_not_landed
                                  if p not in missing_platforms]
            continue
        published.append(done)
        landed += done.landed
        digests |= done.ref_digests
        landed_platforms = landed_platforms or done.platforms
    first = published[0] if published else None
    return _finish(
        result, the_plan, landed, digests, failures, console, started,
        imageid=first.image_id if first else result.imageid,
        build_metadata=first.metadata if first else result.build_metadata,
        platforms=landed_platforms, platforms_not_landed=tuple(missing_platforms),
    )


def _push_one_image(
    builder: builders.BuildKitBuilder | buildx_builders.ElsewhereBuilder,
    request: builders.BuildRequest,
    image_refs: tuple[str, ...],
    target: Target,
    login: Credential,
    ctx: RunContext,
    console: Console,
    retry: engine.RetryPolicy,
) -> platforms.Published:
    """BuildKit builds and pushes one image under its refs, read back from its registry."""
    registry = registry_client(login, ctx, retry)
    try:
        with (
            console.group(f"Build and push {target.name}"
                          + (f" for {', '.join(request.platforms)}" if request.platforms else "")),
            console.stop_commands(),
        ):
            return platforms.publish(
                builder.pusher(retry), replace(request, tags=image_refs), registry,
                builder.containerd_store, console,
            )
    except BuildError as failure:
        _show_build_tail(failure, console)
        raise
    finally:
        registry.close()


def _push_by_digest(
    builder: builders.BuildKitBuilder | buildx_builders.ElsewhereBuilder,
    request: builders.BuildRequest,
    result: report.PublishResult,
    the_plan: Plan,
    credential: Credential | None,
    ctx: RunContext,
    console: Console,
    retry: engine.RetryPolicy,
    started: float,
    *,
    platform: str,
) -> report.PublishResult:
    """A matrix job's half of issue 16: one platform, pushed under no tag of the run; its
    digest (the ``digest`` output) goes to the job that runs ``mode: merge``."""
    target = the_plan.target
    if credential is None:
        built = _build(builder, "push-by-digest, not pushed", replace(request, tags=()),
                       the_plan, console)
        result = replace(result, imageid=built.image_id, not_landed=the_plan.refs,
                         seconds=time.monotonic() - started)
        report.write(result, console)
        return result
    staging = target.ref(tags.staging_tag(the_plan.tags[0], platform))
    try:
        with (
            console.group(f"Build {target.name} for {platform} and push it by digest"),
            console.stop_commands(),
        ):
            done = platforms.publish_by_digest(
                builder.pusher(retry), replace(request, tags=()),
                registry_client(credential, ctx, retry), staging, console,
            )
    except PushError as failure:
        report.write(replace(result, tags=(), refs=(), landed=tuple(failure.landed),
                             seconds=time.monotonic() - started), console)
        raise
    except BuildError as failure:
        _show_build_tail(failure, console)
        raise
    console.notice(
        f"{target.name}@{done.digest} is pushed for the merge job, which tags the index. "
        f"The daemon's BuildKit cannot push by digest alone: the image also holds the tag "
        f"{done.staging_ref}."
    )
    by_digest = f"{target.name}@{done.digest}"
    landed = (by_digest, done.staging_ref)
    result = replace(
        result, tags=(), refs=landed, landed=landed, digest=done.digest, pushed=True,
        ref_digests=dict.fromkeys(landed, done.digest), platforms={done.platform: done.digest},
        seconds=time.monotonic() - started,
    )
    report.write(result, console)
    return result


def failed_push(
    result: report.PublishResult, failure: PushError, started: float
) -> report.PublishResult:
    """The result of a push that failed part-way: what landed, per tag and per platform."""
    return replace(
        result, pushed=bool(failure.landed), landed=tuple(failure.landed),
        not_landed=tuple(failure.not_landed), ref_digests=failure.digests,
        digest=next(iter(failure.digests.values()), ""), platforms=failure.platforms_landed,
        platforms_not_landed=tuple(failure.platforms_not_landed),
        seconds=time.monotonic() - started,
    )


def registry_client(
    credential: Credential, ctx: RunContext, retry: engine.RetryPolicy
) -> registry_api.RegistryClient:
    """The one registry client for the run's chosen credential, over the scheme
    ``registry_api.scheme_for`` decides for its host, within the run's deadline."""
    return registry_api.RegistryClient(
        credential, scheme=registry_api.scheme_for(credential.registry, ctx.server_url),
        deadline=retry.deadline,
    )


def _show_build_tail(failure: BuildError, console: Console) -> None:
    """The build's last lines outside its group, which the log shows folded: the reason a
    build failed is usually there. Still build output, so still fenced."""
    if not failure.log_tail:
        return
    with console.stop_commands():
        console.info(f"Last {len(failure.log_tail)} lines of the build:")
        for line in failure.log_tail:
            console.info(f"  {line}")


def _verifier(client: registry_api.RegistryClient, image_id: str) -> engine.Verify:
    """Asks the registry whether a ref already holds the built image (and whether it is
    busy): used when a push's outcome or the registry's status is unknown (timeout, dropped
    connection, a registry error reported without its status), before retrying or failing."""
    return lambda ref: registry_api.check_pushed(client, ref, image_id)


def _built_image(
    client: registry_api.RegistryClient, target: refs.Target, image_id: str
) -> engine.BuiltImage:
    """What the push must land: pushed by a tag re-pointed at it, then read back by digest
    (issue 17 item 10: a run on the same daemon may move the tag meanwhile)."""
    return engine.BuiltImage(
        image_id, lambda digest: registry_api.manifest_is_image(
            client, target.path, digest, image_id
        )
    )


def hints(target: refs.Target, ctx: RunContext, credential: Credential | None
           ) -> dict[str, str]:
    """Values for the denial hints: where the user fixes a refused push."""
    return {
        "repository": ctx.repository,
        "image": target.name,
        "registry": target.registry,
        "token_source": credential.source if credential else "",
        "package_settings_url": refs.package_url(target, ctx),
    }
