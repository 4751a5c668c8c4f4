"""Status codes in registry messages are matched as numbers, not as digits inside a digest
or an upload UUID: a dropped connection whose URL happens to hold "401" is still transient."""

from __future__ import annotations

from gh_docker_publish.edges import engine

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
