"""Retry-After as an HTTP-date: RFC 9110 dates are GMT, and parsedate_to_datetime returns a
naive datetime for a ``-0000`` zone; the wait must still be a number, not a TypeError."""

from __future__ import annotations

from datetime import UTC, datetime

from gh_docker_publish.edges import engine
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
