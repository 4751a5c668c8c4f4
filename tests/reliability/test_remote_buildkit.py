"""Faults while a remote BuildKit (buildx's remote driver, ``builder: tcp://…``) pushes the
image itself, injected by ``tests/testbed/faults.py`` between that BuildKit and the real
registry; and a BuildKit there that cannot push at all.

The remote BuildKit is the bed's containerd-store engine's embedded BuildKit behind the
bed's ``/grpc`` proxy (tests/testbed/buildkit.py), not a standalone buildkitd; the runner's
daemon is each engine in turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gh_docker_publish.core.builder_location import BuilderLocation, BuilderTLS
from gh_docker_publish.edges import builders, engine
from gh_docker_publish.edges.buildx_builders import ElsewhereBuilder, Reached
from gh_docker_publish.errors import BuildError, PushError
from tests.integration.test_remote_buildkit import BUILDKIT_ENGINE
from tests.reliability.test_direct_push import (  # noqa: F401 - setup is a fixture
    MANIFEST,
    HookLog,
    assert_retried_by_us_if_the_daemon_pushed,
    setup,
)
from tests.testbed.faults import Fault, FaultProxy


def remote_pusher(testbed: Any, on: str = BUILDKIT_ENGINE, attempts: int = 3
                  ) -> builders.BuildKitPusher:
    """The pusher the action uses for ``builder: tcp://…`` with mutual TLS, on ``on``'s
    BuildKit."""
    files = testbed.buildkit_tls
    location = BuilderLocation("remote", testbed.on(on).buildkit_endpoints().tls, BuilderTLS(
        str(files.ca), str(files.client_cert), str(files.client_key)))
    builder = ElsewhereBuilder(location, Reached(detail=location.describe()),
                               testbed.docker_host, buildx=testbed.buildx)
    return builder.pusher(retry=engine.RetryPolicy(attempts=attempts, initial=0.05,
                                                   maximum=0.2))


def test_a_5xx_on_the_manifest_is_retried_and_lands(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,  # noqa: F811
) -> None:
    request, registry = setup("v1")
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=503, times=2))
    log = HookLog()
    done = remote_pusher(testbed).push(request, log, registry)
    assert registry_proxy.injected() == 2
    assert_retried_by_us_if_the_daemon_pushed(log)
    assert done.landed == tuple(request.tags) and done.digest.startswith("sha256:")


def test_a_429_with_retry_after_is_retried_and_lands(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,  # noqa: F811
) -> None:
    request, registry = setup("v1")
    limited = {"errors": [{"code": "TOOMANYREQUESTS", "message": "rate limited"}]}
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=429, times=2,
                             body=limited, headers={"Retry-After": "1"}))
    done = remote_pusher(testbed).push(request, HookLog(), registry)
    assert registry_proxy.injected() == 2
    assert done.landed == tuple(request.tags)


def test_a_reset_mid_upload_is_survived(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,  # noqa: F811
) -> None:
    request, registry = setup("v1")
    registry_proxy.add(Fault("reset", method="PATCH", path=r"/blobs/uploads/", times=1))
    registry_proxy.add(Fault("reset", method="PUT", path=r"/blobs/uploads/", times=1))
    done = remote_pusher(testbed).push(request, HookLog(), registry)
    assert registry_proxy.injected() >= 1
    assert done.landed == tuple(request.tags)


def test_5xx_every_time_fails_and_says_nothing_landed(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,  # noqa: F811
) -> None:
    request, registry = setup("v1", "latest")
    registry_proxy.add(Fault("status", method="PUT", path=MANIFEST, status=500, times=None))
    with pytest.raises(PushError) as err:
        remote_pusher(testbed, attempts=2).push(request, HookLog(), registry)
    assert err.value.landed == [] and err.value.not_landed == list(request.tags)


def test_a_remote_buildkit_that_cannot_push_fails_with_its_reason(
    setup: Callable[..., Any], registry_proxy: FaultProxy, testbed: Any,  # noqa: F811
) -> None:
    """A classic-store engine's embedded BuildKit answers as BuildKit but has no ``image``
    exporter: the build fails with BuildKit's own words, and nothing reached the registry."""
    request, registry = setup("v1")
    with pytest.raises(BuildError) as err:
        remote_pusher(testbed, on="e28-classic").push(request, HookLog(), registry)
    assert 'exporter "image" could not be found' in str(err.value) + "\n".join(
        err.value.log_tail)
    assert registry_proxy.requests(path=MANIFEST) == []
