"""Retry-After as an HTTP-date: RFC 9110 dates are GMT, and parsedate_to_datetime returns a
naive datetime for a ``-0000`` zone; the wait must still be a number, not a TypeError."""

from __future__ import annotations

from datetime import UTC, datetime

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
