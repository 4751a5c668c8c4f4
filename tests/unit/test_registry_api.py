"""Retry-After as an HTTP-date: RFC 9110 dates are GMT, and parsedate_to_datetime returns a
naive datetime for a ``-0000`` zone; the wait must still be a number, not a TypeError."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gh_docker_publish.edges import engine, registry_api
from gh_docker_publish.edges.registry_api import retry_after_seconds

NOW = datetime(2015, 10, 21, 7, 27, 50, tzinfo=UTC)


def test_http_date_in_gmt() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", lambda: NOW) == 10.0


def test_http_date_with_minus_zero_zone() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 -0000", lambda: NOW) == 10.0


def test_delta_seconds_and_garbage() -> None:
    assert retry_after_seconds("7", lambda: NOW) == 7.0
    assert retry_after_seconds("soon", lambda: NOW) is None
    assert retry_after_seconds("\u00b2", lambda: NOW) is None  # str.isdigit() says yes


# --- transient digests ----------------------------------------
# Status codes in registry messages are matched as numbers, not as digits inside a digest
# or an upload UUID: a dropped connection whose URL happens to hold "401" is still transient.

# What dockerd reports when a blob upload's connection drops (Go's url.Error text).
DROPPED = (
    'Put "https://ghcr.io/v2/o/app/blobs/uploads/7f2c9e04-4013-4b1e-9a0c-2d5e8f1a0b3c'
    '?digest=sha256:{hexdigest}": read tcp 10.1.0.4:51234->140.82.112.34:443: '
    "connection reset by peer"
)


def test_a_digest_holding_401_does_not_make_a_drop_permanent() -> None:
    message = DROPPED.format(hexdigest="a" * 30 + "401" + "b" * 31)
    assert engine.is_transient(message)
    assert engine.denial_hint(message) == ""


def test_a_digest_holding_403_does_not_make_a_drop_permanent() -> None:
    message = DROPPED.format(hexdigest="c" * 10 + "403" + "d" * 51)
    assert engine.is_transient(message)


def test_real_status_codes_still_count() -> None:
    assert not engine.is_transient("error parsing HTTP 403 response body: connection reset")
    assert not engine.is_transient("received unexpected HTTP status: 401 Unauthorized; EOF")
    assert engine.denial_hint("HTTP 401: EOF")


A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def test_index_with_annotations_is_an_oci_index() -> None:
    docker = registry_api.DOCKER_MANIFEST
    entries = [("linux/arm64", registry_api.RemoteManifest(A, docker, B, 100))]
    media_type, body = registry_api.index_body(entries, {"org.opencontainers.image.title": "a"})
    assert media_type == registry_api.OCI_INDEX
    parsed = json.loads(body)
    assert parsed["annotations"] == {"org.opencontainers.image.title": "a"}
    assert parsed["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux"}
    assert registry_api.index_body(entries)[0] == registry_api.DOCKER_LIST


# --- a registry's error without its status (the containerd store, BuildKit) ------------------
# The texts as Engine 28.5 / buildx 0.29 report the bed registry's JSON errors (issue 13 §3).

REF = "127.0.0.1:5000/octo-org/app:v1"


@pytest.mark.parametrize(
    ("text", "kind", "status"),
    [
        # the containerd store: the registry's message was its code's own
        ("error from registry: unavailable\nunavailable", registry_api.Kind.TRANSIENT, 503),
        ("error from registry: unknown\nunknown", registry_api.Kind.TRANSIENT, 500),
        ("error from registry: toomanyrequests\ntoomanyrequests",
         registry_api.Kind.TRANSIENT, 429),
        ("error from registry: denied\ndenied", registry_api.Kind.DENIED, 403),
        ("error from registry: manifest invalid", registry_api.Kind.PERMANENT, 400),
        # BuildKit with containerd's resolver: "failed to push REF: <code>[: <message>]"
        (f"ERROR: failed to build: failed to solve: failed to push {REF}: unavailable",
         registry_api.Kind.TRANSIENT, 503),
        (f"failed to push {REF}: toomanyrequests: rate limited",
         registry_api.Kind.TRANSIENT, 429),
        (f"failed to push {REF}: manifest invalid: manifest invalid",
         registry_api.Kind.PERMANENT, 400),
        # a stated status, either store's wording
        ('unknown: failed commit on ref "manifest-sha256:ab": unexpected status from PUT '
         "request to http://h/v2/o/a/manifests/v1: 500 Internal Server Error",
         registry_api.Kind.TRANSIENT, 500),
        ("received unexpected HTTP status: 504 Gateway Timeout", registry_api.Kind.TRANSIENT,
         504),
        ("unexpected status from PUT request to http://h/v2/o/a/manifests/v1: 400 Bad Request",
         registry_api.Kind.PERMANENT, 400),
    ],
)
def test_the_registry_status_comes_from_the_text_or_its_error_code(
    text: str, kind: registry_api.Kind, status: int
) -> None:
    verdict = registry_api.classify(text)
    assert (verdict.kind, verdict.registry_status, verdict.status_unknown) == (
        kind, status, False)


def test_the_registrys_own_message_leaves_the_status_to_our_own_read() -> None:
    """No English guessing: "rate limited" is not a code, so the text alone says permanent
    and asks for the status; the 429 our own read met makes it transient."""
    text = "error from registry: rate limited"
    alone = registry_api.classify(text)
    assert alone.kind is registry_api.Kind.PERMANENT and alone.status_unknown
    read = registry_api.classify(text, registry_status=429)
    assert read.transient and read.registry_status == 429 and not read.status_unknown
    assert not registry_api.classify(text, registry_status=404).transient


def test_a_denial_in_the_registrys_own_words_stays_a_denial_whatever_the_status() -> None:
    text = "error from registry: installation not allowed to Write organization package"
    verdict = registry_api.classify(text, registry_status=503)
    assert verdict.kind is registry_api.Kind.DENIED and verdict.hint


def test_is_busy() -> None:
    assert all(registry_api.is_busy(s) for s in (429, 500, 502, 503, 504))
    assert not any(registry_api.is_busy(s) for s in (None, 200, 401, 403, 404, 400))


def test_repository_and_tag() -> None:
    assert registry_api.repository_and_tag(REF) == ("octo-org/app", "v1")
