"""Several ``platforms``: one multi-platform image (an index) under every tag.

Two routes, chosen by the daemon's image store (issue 13, DESIGN.md §4b):

- **containerd store**: the daemon's BuildKit builds every platform and pushes the index
  itself (``buildx build --platform a,b --push``), as plain buildx would.
- **classic store**: it can neither ``--load`` an index nor push by digest
  ("push-by-digest is currently not implemented for docker driver"), but it builds and
  pushes one platform fine. So each platform is built and pushed on its own under the
  first tag (BuildKit pushes it, through the daemon), its manifest is read back from the
  registry, and one index over all of them is PUT under every tag, the way
  ``docker buildx imagetools create`` assembles one (OCI image-index spec). Our registry
  client does the PUT, so the chosen token, retries on 429/503 and the "what landed" report
  stay ours. No builder container is created: nothing is pulled from the internet, and
  nothing outlives the job. While it runs the first tag briefly holds one platform's image;
  the index replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from gh_docker_publish.core.progress import Log
from gh_docker_publish.edges import builders, registry_api
from gh_docker_publish.errors import PushError


@dataclass(frozen=True)
class Published:
    """The index under the tags, and each platform's manifest."""

    digest: str
    image_id: str
    landed: tuple[str, ...]
    ref_digests: dict[str, str]
    platforms: dict[str, str]  # os/arch[/variant] -> manifest digest
    #: buildx's --metadata-file when one buildx run pushed it all (the `metadata` output);
    #: empty for the classic store's one build per platform (no one run made the index).
    metadata: Mapping[str, Any] = field(default_factory=dict)


def publish(
    pusher: builders.BuildKitPusher,
    request: builders.BuildRequest,
    registry: registry_api.RegistryClient,
    containerd_store: bool,
    log: Log,
) -> Published:
    """Build ``request.platforms`` and publish one index under every ``request.tags``.

    Raises:
        PushError: with ``landed``/``not_landed`` tags and, in ``platforms_landed`` /
            ``platforms_not_landed``, which platform manifests reached the registry.
    """
    if containerd_store or len(request.platforms) <= 1:  # one platform: BuildKit elsewhere
        done = pusher.push(request, log, registry)
        platforms = {p: d for p, d in done.platforms if p != "unknown/unknown"}
        return Published(done.digest, done.image_id, done.landed, dict(done.ref_digests),
                         platforms, done.metadata)
    return _one_by_one(pusher, request, registry, log)


@dataclass(frozen=True)
class ByDigest:
    """One platform job's image (``push-by-digest``, issue 16): its manifest digest, the
    platform the registry says it is for, and the tag of its own it needed."""

    digest: str
    platform: str
    staging_ref: str


def publish_by_digest(
    pusher: builders.BuildKitPusher,
    request: builders.BuildRequest,
    registry: registry_api.RegistryClient,
    staging_ref: str,
    log: Log,
) -> ByDigest:
    """Push ``request``'s one platform for a later ``mode: merge``, the run's tags left
    alone; the digest is the registry's.

    The daemon's BuildKit (buildx's docker driver) cannot push by digest alone, on either
    image store ("push-by-digest is currently not implemented for docker driver": buildx
    refuses it before the build; seen on Engine 20.10 classic and 28.5 containerd). So the
    image goes under ``staging_ref``, a tag of its own (``<tag>-<os>-<arch>``), never one
    of the run's tags, and the merge job reads it by digest.

    Raises:
        PushError / BuildError: from the push; requests.RequestException: reading back.
    """
    name, _, _ = staging_ref.rpartition(":")
    repository = name.partition("/")[2]
    done = pusher.push(replace(request, tags=(staging_ref,)), log, registry)
    remote = registry.manifest(repository, done.digest)
    if remote is None:
        raise PushError(f"{staging_ref} was pushed, but {name}@{done.digest} is not there.",
                        landed=done.landed, digests=done.ref_digests)
    platform = registry.platform_of(repository, remote)
    log.info(f"Platform {platform}: {name}@{remote.digest} (also {staging_ref})")
    return ByDigest(remote.digest, platform, staging_ref)


def _one_by_one(
    pusher: builders.BuildKitPusher,
    request: builders.BuildRequest,
    registry: registry_api.RegistryClient,
    log: Log,
) -> Published:
    first = request.tags[0]
    repository = registry_api.repository_and_tag(first)[0]
    entries: list[tuple[str, registry_api.RemoteManifest]] = []
    for platform in request.platforms:
        log.info(f"Platform {platform}: build and push")
        try:
            done = pusher.push(replace(request, platforms=(platform,), tags=(first,)), log,
                               registry)
            # By digest: the one the pusher checked is this run's (issue 17 item 10); the
            # tag itself may already hold another run's push of it.
            remote = registry.manifest(repository, done.digest)
        except (PushError, requests.RequestException) as exc:
            raise _platform_failure(request, entries, platform, str(exc)) from exc
        if remote is None:
            raise _platform_failure(request, entries, platform, "the registry shows no manifest")
        entries.append((platform, remote))
    digests = put_index(registry, request.tags, entries, log)
    platforms = {platform: remote.digest for platform, remote in entries}
    return Published(digests[first], "", tuple(digests), digests, platforms)


def put_index(
    registry: registry_api.RegistryClient,
    refs: Sequence[str],
    entries: list[tuple[str, registry_api.RemoteManifest]],
    log: Log,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """PUT one index over ``entries`` under every ref (in order); ref -> index digest.
    Also ``mode: merge``'s last step (flows/merge.py), once every platform is verified.

    Raises:
        PushError: a PUT was refused; which refs hold the index and which do not.
    """
    media_type, body = registry_api.index_body(entries, annotations)
    digests: dict[str, str] = {}
    for ref in refs:
        repo, tag_name = registry_api.repository_and_tag(ref)
        try:
            digests[ref] = registry.put_manifest(repo, tag_name, media_type, body)
        except requests.RequestException as exc:
            raise _index_failure(refs, entries, digests, ref, str(exc)) from exc
        log.info(f"Index {digests[ref]} -> {ref}")
    return digests


def _platform_failure(
    request: builders.BuildRequest,
    entries: list[tuple[str, registry_api.RemoteManifest]],
    platform: str,
    reason: str,
) -> PushError:
    done = [p for p, _ in entries]
    return PushError(
        f"Platform {platform} did not reach the registry ({reason}), so no tag holds the "
        f"multi-platform image. Platforms pushed: {', '.join(done) or 'none'}.",
        not_landed=request.tags,
        hint="Run the job again; the platforms that were built come from the cache.",
        platforms_landed={p: m.digest for p, m in entries},
        platforms_not_landed=[p for p in request.platforms if p not in done],
    )


def _index_failure(
    refs: Sequence[str],
    entries: list[tuple[str, registry_api.RemoteManifest]],
    digests: dict[str, str],
    ref: str,
    reason: str,
) -> PushError:
    return PushError(
        f"Every platform was pushed, but the index could not be stored as {ref} ({reason}).",
        landed=list(digests),
        not_landed=[r for r in refs if r not in digests],
        digests=digests,
        hint="Run the job again: the platform images are in the registry already.",
        platforms_landed={p: m.digest for p, m in entries},
    )
