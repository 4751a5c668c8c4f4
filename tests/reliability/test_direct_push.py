"""Faults while BuildKit pushes the image itself (``builders.BuildKitPusher``, the path of
several platforms and of builders elsewhere), injected by ``tests/testbed/faults.py``
between the bed's engine and the real registry: 5xx, 429 with Retry-After, a reset mid
upload, a platform manifest that does not land, an index PUT that fails for one tag.

The first faults run twice: BuildKit of the bed's engine (the docker driver), and a remote
BuildKit (``builder: tcp://…``, buildx's remote driver with mutual TLS) that pushes from
elsewhere. That remote BuildKit is the containerd-store engine's embedded one behind the
bed's ``/grpc`` proxy (tests/testbed/buildkit.py), not a standalone buildkitd."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from gh_docker_publish.core.builder_location import BuilderLocation, BuilderTLS
from gh_docker_publish.core.credentials import Credential
from gh_docker_publish.core.settings import Secret
from gh_docker_publish.edges import builders, engine, registry_api
from gh_docker_publish.edges.buildx_builders import ElsewhereBuilder, Reached
from gh_docker_publish.errors import BuildError, PushError
from gh_docker_publish.flows import platforms
from tests.integration.test_remote_buildkit import BUILDKIT_ENGINE
from tests.testbed.faults import Fault, FaultProxy

MANIFEST = r"/manifests/"
CROSS = """\
FROM --platform=$BUILDPLATFORM {busybox} AS build
ARG TARGETPLATFORM
RUN echo "$TARGETPLATFORM {marker}" > /platform
FROM scratch
COPY --from=build /platform /platform
"""


@dataclass
class HookLog:
    """Collects lines; ``on(text, action)`` runs ``action`` when a line contains ``text``."""

    lines: list[str] = field(default_factory=list)
    hooks: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def info(self, message: str) -> None:
        self.lines.append(message)
        for text, action in list(self.hooks):
            if text in message:
                self.hooks.remove((text, action))
                action()

    def warning(self, message: str) -> None:
        self.info(f"warning: {message}")

    def on(self, text: str, action: Callable[[], None]) -> None:
        self.hooks.append((text, action))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def setup(
    github: Any, docker_client: Any, registry_proxy: FaultProxy, testbed: Any,
    tmp_path: Path, unique_name: Callable[[str], str],
) -> Callable[..., tuple[builders.BuildRequest, registry_api.RegistryClient]]:
    github.org("octo-org", members={"octocat": "admin"})
    github.repo("octo-org/app")
    token = github.github_token("octo-org/app")
    cred = Credential(registry_proxy.address, "octocat", Secret(token), "github-token", "test")
    engine.login(docker_client.api, cred, log=HookLog(), retry=engine.RetryPolicy(attempts=1))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        CROSS.format(busybox=testbed.busybox_image, marker=unique_name("m")))
    name = unique_name("direct")

    def make(*tags: str, platform_list: tuple[str, ...] = ("linux/amd64",)
             ) -> tuple[builders.BuildRequest, registry_api.RegistryClient]:
        request = builders.BuildRequest(
            context=ctx, tags=[f"{registry_proxy.address}/octo-org/{name}:{t}" for t in tags],
            platforms=platform_list, credentials=(cred,),
        )
        return request, registry_api.RegistryClient(cred)

    return make


def assert_retried_by_us_if_the_daemon_pushed(log: HookLog) -> None:
    """A classic store's daemon pushes for BuildKit ("pushing … with docker") and gives up
    on a failed manifest PUT, so our re-run of buildx lands it; the containerd store's
    BuildKit retries the PUT itself (seen on Engine 28.5), and no re-run is needed."""
    if any("with docker" in line for line in log.lines):
        assert "retry 1/2" in log.text, log.text
    else:
        assert "retry 1/2" not in log.text, log.text


def pusher(testbed: Any, attempts: int = 3) -> builders.BuildKitPusher:
    return builders.BuildKitPusher(
        testbed.docker_host, retry=engine.RetryPolicy(attempts=attempts, initial=0.05,
                                                      maximum=0.2))


def remote_pusher(testbed: Any, on: str = BUILDKIT_ENGINE, attempts: int = 3
                  ) -> builders.BuildKitPusher:
    """The pusher the action uses for ``builder: tcp://…`` with mutual TLS, on the
    BuildKit of the engine ``on``."""
    files = testbed.buildkit_tls
    location = BuilderLocation("remote", testbed.on(on).buildkit_endpoints().tls, BuilderTLS(
        str(files.ca), str(files.client_cert), str(files.client_key)))
    builder = ElsewhereBuilder(location, Reached(detail=location.describe()),
                               testbed.docker_host, buildx=testbed.buildx)
    return builder.pusher(retry=engine.RetryPolicy(attempts=attempts, initial=0.05,
                                                   maximum=0.2))


@pytest.fixture(params=["this-daemon", "remote-buildkit"])
def make_pusher(request: pytest.FixtureRequest, testbed: Any
                ) -> Callable[..., builders.BuildKitPusher]:
    """``make_pusher(attempts=3)``: the engine's own BuildKit, or a remote one."""
    def make(attempts: int = 3) -> builders.BuildKitPusher:
        if request.param == "this-daemon":
            return pusher(testbed, attempts)
        return remote_pusher(testbed, attempts=attempts)

    return make


def test_a_5xx_on_the_manifest_is_retried_and_lands(
    setup: Callable[..., Any], registry_proxy: FaultProxy,
    make_pusher: Callable[..., builders.BuildKitPusher],
) -> None:
    """Twice: dockerd 20.10 answers a failed schema2 manifest PUT with a schema1 one
    (moby distribution/push_v2.go), which must fail too for buildx to report the 5xx."""
    request, registry = setup("v1")
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503, times=2))
    log = HookLog()
    done = make_pusher().push(request, log, registry)
    assert registry_proxy.injected() == 2
    assert_retried_by_us_if_the_daemon_pushed(log)
    assert done.landed == tuple(request.tags) and done.digest.startswith("sha256:")


def test_a_429_with_retry_after_is_retried_and_lands(
    setup: Callable[..., Any], registry_proxy: FaultProxy,
    make_pusher: Callable[..., builders.BuildKitPusher],
) -> None:
    request, registry = setup("v1")
    limited = {"errors": [{"code": "TOOMANYREQUESTS", "message": "rate limited"}]}
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=429, times=2,
                             body=limited, headers={"Retry-After": "1"}))
    log = HookLog()
    done = make_pusher().push(request, log, registry)
    assert registry_proxy.injected() == 2
    assert_retried_by_us_if_the_daemon_pushed(log)
    assert done.landed == tuple(request.tags)


def test_a_reset_mid_upload_is_survived(
    setup: Callable[..., Any], registry_proxy: FaultProxy,
    make_pusher: Callable[..., builders.BuildKitPusher],
) -> None:
    request, registry = setup("v1")
    registry_proxy.add(Fault("reset", method="PATCH", path=r"/blobs/uploads/", times=1))
    registry_proxy.add(Fault("reset", method="PUT", path=r"/blobs/uploads/", times=1))
    done = make_pusher().push(request, HookLog(), registry)
    assert registry_proxy.injected() >= 1
    assert done.landed == tuple(request.tags)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_every_time_is_retried_then_fails_and_says_nothing_landed(
    status: int, setup: Callable[..., Any], registry_proxy: FaultProxy,
    make_pusher: Callable[..., builders.BuildKitPusher],
) -> None:
    """The registry's JSON error (UNKNOWN, UNAVAILABLE) reaches buildx on the containerd
    store as "failed to push REF: unknown" without the status: its error code says 5xx."""
    request, registry = setup("v1", "latest")
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=status,
                             times=None))
    log = HookLog()
    with pytest.raises(PushError) as err:
        make_pusher(attempts=2).push(request, log, registry)
    assert "retry 1/1" in log.text, log.text  # transient: buildx ran again
    assert err.value.landed == [] and err.value.not_landed == list(request.tags)


def test_a_429_that_outlasts_buildkits_own_retries_waits_the_retry_after_out(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,
) -> None:
    """BuildKit gives up on a registry that keeps answering 429 (on the containerd store
    after six tries in a row, Retry-After unread); before buildx runs again our own
    registry read meets the 429 and waits its Retry-After out."""
    request, registry = setup("v1")
    failing = registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=429,
                                       times=None, headers={"Retry-After": "1"}))
    log = HookLog()
    # From our first retry on, the PUTs pass; our own read meets the 429 once.
    log.on("retry 1/2", lambda: (
        setattr(failing, "times", failing.hits),
        registry_proxy.add(Fault("status", method="GET", path=MANIFEST, status=429, times=1,
                                 headers={"Retry-After": "1"}))))
    done = pusher(testbed).push(request, log, registry)
    assert done.landed == tuple(request.tags)
    assert registry.waited == [1.0], (registry.waited, log.text)


def test_a_remote_buildkit_that_cannot_push_fails_with_its_reason(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,
) -> None:
    """A classic-store engine's embedded BuildKit answers as BuildKit but has no ``image``
    exporter: the build fails with BuildKit's own words, and no manifest reached the
    registry."""
    request, registry = setup("v1")
    with pytest.raises(BuildError) as err:
        remote_pusher(testbed, on="e28-classic").push(request, HookLog(), registry)
    said = "\n".join([str(err.value), *err.value.log_tail])
    assert 'exporter "image" could not be found' in said
    assert registry_proxy.requests(path=MANIFEST) == []


def test_a_platform_that_does_not_land_is_named_with_what_did(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,
) -> None:
    request, registry = setup("v1", "latest", platform_list=("linux/amd64", "linux/arm64"))
    log = HookLog()
    # The second platform's push meets a registry that fails every manifest PUT.
    log.on("Platform linux/arm64", lambda: registry_proxy.add(
        Fault("status", method="PUT", path=MANIFEST, status=500, times=None)))
    with pytest.raises(PushError) as err:
        platforms.publish(pusher(testbed, attempts=2), request, registry, False, log)
    failure = err.value
    assert list(failure.platforms_landed) == ["linux/amd64"]
    assert failure.platforms_landed["linux/amd64"].startswith("sha256:")
    assert failure.platforms_not_landed == ["linux/arm64"]
    assert failure.landed == [] and failure.not_landed == list(request.tags)
    assert "Platform linux/arm64 did not reach the registry" in str(failure)


def test_an_index_put_refused_for_one_tag_reports_the_others(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,
) -> None:
    request, registry = setup("v1", "latest", platform_list=("linux/amd64", "linux/arm64"))
    registry_proxy.add(Fault("status", method="PUT", path=r"/manifests/latest$", status=500,
                             times=None))
    with pytest.raises(PushError) as err:
        platforms.publish(pusher(testbed), request, registry, False, HookLog())
    failure = err.value
    assert failure.landed == [request.tags[0]] and failure.not_landed == [request.tags[1]]
    assert sorted(failure.platforms_landed) == ["linux/amd64", "linux/arm64"]
    index = registry.manifest(request.tags[0].partition("/")[2].rpartition(":")[0], "v1")
    assert index is not None and dict(index.platforms) == failure.platforms_landed


def test_a_tag_another_run_moves_after_a_platform_push_does_not_enter_the_index(
    setup: Callable[..., Any], testbed: Any,
) -> None:
    """Classic store: each platform goes under the first tag, then is read back for the
    index. Another run pushing the same tag right after ours must not put its manifest in
    our index (issue 17 item 10): the read-back goes by the digest the pusher checked."""
    request, registry = setup("v1", platform_list=("linux/amd64", "linux/arm64"))

    class AnotherRunMovesTheTag(builders.BuildKitPusher):
        def push(self, req: builders.BuildRequest, log: Any,
                 registry: registry_api.RegistryClient) -> builders.DirectPush:
            done = super().push(req, log, registry)
            if req.platforms == ("linux/arm64",):  # the other run lands right after ours
                super().push(replace(req, platforms=("linux/amd64",)), log, registry)
            return done

    raced = AnotherRunMovesTheTag(testbed.docker_host,
                                  retry=engine.RetryPolicy(attempts=1))
    published = platforms.publish(raced, request, registry, False, HookLog())
    assert sorted(published.platforms) == ["linux/amd64", "linux/arm64"]
    assert len(set(published.platforms.values())) == 2, published.platforms
    index = registry.manifest(request.tags[0].partition("/")[2].rpartition(":")[0], "v1")
    assert index is not None and dict(index.platforms) == published.platforms
