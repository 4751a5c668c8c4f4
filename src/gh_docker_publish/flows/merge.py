"""``mode: merge``: the last job of a matrix that built one platform per native runner
(issue 16). GitHub Actions' matrix is the distributed engine; this job only assembles.

Each ``digests`` line is one platform job's ``digest`` output (``push-by-digest``). Every
one is checked in the registry first: it exists in *this* image's repository (a digest of
another image is not there: manifests belong to a repository, distribution-spec "pulling
manifests"), it is one platform's image, its config says which platform (and that is the
platform the line claims, if it claims one), and no platform comes twice. Only then is one
index PUT under every tag, with the run's annotations, as ``docker buildx imagetools
create`` would; so no tag ever holds half the platforms. No Docker daemon is needed.

The token is chosen, masked and checked for push before the first registry read, exactly
as a one-job publish does (flows/publish.py), and the outputs and summary are the same.
"""

from __future__ import annotations

import time
from dataclasses import replace

import requests

from gh_docker_publish.core import metadata, refs
from gh_docker_publish.core.build_inputs import PlatformDigest
from gh_docker_publish.core.context import RunContext
from gh_docker_publish.core.progress import Log
from gh_docker_publish.core.settings import Settings
from gh_docker_publish.edges import engine, preflight, registries, registry_api, report
from gh_docker_publish.edges.gha import Console
from gh_docker_publish.edges.github_api import ApiClients
from gh_docker_publish.errors import InputError, PushError, RegistryError
from gh_docker_publish.flows import platforms, publish

DIGESTS_HINT = (
    "Pass exactly the 'digest' outputs of this run's push-by-digest jobs, one per line, "
    "with the same 'image' (and registry) as those jobs."
)


def run(
    settings: Settings, ctx: RunContext, console: Console, services: publish.Services
) -> report.PublishResult:
    """Verify every digest, then publish one index under every tag; outputs + summary.

    Raises:
        InputError("mode"): the target is GitHub's Docker registry (no push by digest).
        InputError("digests"): a digest is missing, of another image, an index, or a
            platform comes twice; nothing was tagged.
        PushError: an index PUT was refused; says which tags hold the index.
    """
    started = time.monotonic()
    retry = engine.RetryPolicy(deadline=started + settings.deadline if settings.deadline else None)
    for note in settings.notices:
        console.notice(note)
    now = services.now()
    # Every input is checked before the network; only then may choose() probe GHES.
    the_plan, probed = publish.probe_registry(publish.plan(settings, ctx, now), settings, ctx)
    target = the_plan.target
    refused = refs.digest_push_conflicts(target, by_digest="mode")
    if refused is not None:
        raise refused
    for warning in target.warnings:
        console.warning(warning)
    console.info(registries.explain(target, settings, ctx, probed))
    result = report.PublishResult(
        image=target.name, registry=target.registry, tags=the_plan.tags, refs=the_plan.refs,
        package_url=refs.package_url(target, ctx),
        separators=(settings.sep_tags, settings.sep_labels, settings.sep_annotations),
        export_env=settings.metadata_env.set_output_env,
    )
    if not the_plan.push:
        console.info(f"Not pushing: {the_plan.push_reason}")
        meta = metadata.compute_metadata(settings, ctx, now=now, repository=target.repository)
        result = replace(result, labels=dict(meta.labels), version=meta.version,
                         annotations=meta.annotations, not_landed=the_plan.refs,
                         push_skipped_reason=the_plan.push_reason,
                         seconds=time.monotonic() - started)
        report.write(result, console)
        return result

    apis = ApiClients(services.github_api, ctx.api_url)  # one client per token this run
    credential = publish.choose_credential(settings, ctx, target, console, apis)
    console.info(f"Token: {credential.describe()}")
    repo_info = publish.in_background(
        lambda: publish.repository_info(settings, target, credential, apis)
    )
    # The token must be able to push here before anything is read or written.
    preflight.before_build(
        target, credential, scheme=registry_api.scheme_for(target.registry, ctx.server_url),
        fields=publish.hints(target, ctx, credential), log=console,
    )
    info, warning = repo_info()
    if warning:
        console.warning(warning)
    # The labels and annotations a one-job run would give (core/metadata.py makes both).
    meta = metadata.compute_metadata(
        settings, ctx, now=now, repository=target.repository, repo_info=publish.repo_json(info)
    )
    result = replace(
        result, token_source=credential.source, username=credential.username,
        token_reason=credential.reason,
        labels=dict(meta.labels), version=meta.version, annotations=meta.annotations,
    )
    registry = publish.registry_client(credential, ctx, retry)
    with console.group(f"Check {len(settings.digests)} digest(s) in {target.name}"):
        entries = verify(registry, target, settings.digests, console)
    index_annotations = {key: value for key, value in meta.annotation_values.items() if value}
    try:
        with console.group(f"Publish one index under {len(the_plan.refs)} tag(s)"):
            digests = platforms.put_index(
                registry, the_plan.refs, entries, console, index_annotations
            )
    except PushError as failure:
        report.write(publish.failed_push(result, failure, started), console)
        raise
    result = replace(
        result, digest=digests[the_plan.refs[0]], pushed=True, landed=the_plan.refs,
        ref_digests=digests, platforms={platform: m.digest for platform, m in entries},
        seconds=time.monotonic() - started,
    )
    report.write(result, console)
    return result


def verify(
    registry: registry_api.RegistryClient,
    target: refs.Target,
    digests: tuple[PlatformDigest, ...],
    log: Log,
) -> list[tuple[str, registry_api.RemoteManifest]]:
    """Each digest as (platform, manifest), read from the registry; all or an error.

    Raises:
        InputError("digests"): missing here, an index, a platform other than claimed, or
            a platform twice. RegistryError: the registry could not be read.
    """
    entries: list[tuple[str, registry_api.RemoteManifest]] = []
    for line in digests:
        ref = f"{target.name}@{line.digest}"
        try:
            remote = registry.manifest(target.path, line.digest)
            platform = (registry.platform_of(target.path, remote)
                        if remote is not None and not remote.platforms else "")
        except requests.RequestException as exc:
            raise RegistryError(
                f"Could not read {ref} from the registry: {exc}",
                hint="Run the job again; nothing was tagged.",
            ) from exc
        if remote is None:
            raise InputError(
                "digests", f"{line.digest} is not in {target.name} (not pushed there, or a "
                "digest of another image); nothing was tagged.", hint=DIGESTS_HINT,
            )
        if remote.platforms:
            raise InputError(
                "digests", f"{line.digest} is an index of {len(remote.platforms)} "
                "manifest(s), not one platform's image; nothing was tagged.",
                hint="Give the digest each platform job pushed (push-by-digest: true, one "
                "platform, provenance and sbom off), not an index.",
            )
        if line.claimed and line.claimed != platform:
            raise InputError(
                "digests", f"{line.digest} is claimed for {line.claimed}, but its image is "
                f"for {platform}; nothing was tagged.",
                hint="Pair each digest with the platform its job built.",
            )
        earlier = next((d for p, d in entries if p == platform), None)
        if earlier is not None:
            raise InputError(
                "digests", f"{earlier.digest} and {line.digest} are both for {platform}; "
                "nothing was tagged.",
                hint="One digest per platform: drop the stale one (an older run's?).",
            )
        log.info(f"{platform}: {ref}")
        entries.append((platform, remote))
    return entries
