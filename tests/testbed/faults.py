"""A fault-injecting HTTP proxy for the test bed: put it between the daemon and the
registry, or between the action and the GitHub stand-in, and script what goes wrong.

Why our own: toxiproxy and mitmproxy are not installable here, and the faults the
hardening issue needs are few and HTTP-shaped (moby#53700 used a mitmproxy script for the
slow blob commit). Every request is forwarded unless a scripted ``Fault`` matches it:

- ``status``: answer ``status`` (with ``headers``, e.g. ``Retry-After``) instead of
  forwarding, ``times`` times (``None``: every time), then pass. The body is ``body``, else
  what the real producer of that status sends (``default_body``): the registry's JSON
  error with its code's own message (distribution: UNAVAILABLE "service unavailable" for
  503, UNKNOWN "unknown error" for 500, ...), or a gateway's HTML page for 502/504, so the
  daemons report them as they would a real registry's;
- ``reset``: read part of the request body, then close the connection with a TCP RST
  (a connection reset mid-blob);
- ``delay``: wait ``seconds`` before forwarding;
- ``slow_response``: forward (the registry commits), then wait ``seconds`` before
  answering: the client may give up while the outcome is already decided;
- ``stop()`` closes the listener: the registry is down (connection refused).

Use::

    with FaultProxy("127.0.0.1:5000") as proxy:      # proxy.address == "127.0.0.1:PORT"
        proxy.add(Fault("status", method="PUT", path=r"/manifests/", status=503, times=2))
        ... push to f"{proxy.address}/owner/name:tag" ...
        assert proxy.injected() == 2

The ``Host`` header is passed through, so the registry's ``Location`` URLs for blob
uploads point back at the proxy (distribution builds them from the request's host).
The token realm is not rewritten: the daemon fetches tokens from the stand-in directly
unless the stand-in is proxied too.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Action = Literal["status", "reset", "delay", "slow_response"]
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}
UPSTREAM_TIMEOUT = 120.0


@dataclass
class Fault:
    """One scripted fault: which requests it hits, what it does, how many times."""

    action: Action
    method: str = ""  # "" matches every method
    path: str = ""  # a regex searched in the request path ("" matches every path)
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, object] | str | None = None  # None: what a registry sends (str: HTML)
    times: int | None = 1  # None: every matching request
    seconds: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method != method:
            return False
        return not self.path or re.search(self.path, path) is not None


#: What a registry itself answers (distribution's registry/api/errcode: the code, its
#: default message, the status it maps to; OCI distribution-spec "error codes").
REGISTRY_ERRORS: dict[int, tuple[str, str]] = {
    401: ("UNAUTHORIZED", "authentication required"),
    403: ("DENIED", "requested access to the resource is denied"),
    429: ("TOOMANYREQUESTS", "too many requests"),
    500: ("UNKNOWN", "unknown error"),
    503: ("UNAVAILABLE", "service unavailable"),
}


def default_body(status: int) -> dict[str, object] | str:
    """The body the real producer of ``status`` sends: the registry's JSON error, or for a
    gateway answer (502, 504: a load balancer in front of the registry, never the
    registry itself) the proxy's HTML page."""
    if status in REGISTRY_ERRORS:
        code, message = REGISTRY_ERRORS[status]
        return {"errors": [{"code": code, "message": message}]}
    reason = http.client.responses.get(status, "Error")
    return f"<html><body><h1>{status} {reason}</h1></body></html>\n"


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled: what it was and what the proxy did with it."""

    method: str
    path: str
    action: str  # "forward" or the fault's action
    status: int  # what the client got (0 for a reset)
    at: float


class FaultProxy:
    """A threaded HTTP/1.1 proxy to ``upstream`` (``host:port``) with scripted faults."""

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.address = f"{host}:{self._server.server_address[1]}"
        self.url = f"http://{self.address}"
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"fault-proxy-{self.address}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener: from now on connections are refused (registry down)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def injected(self) -> int:
        """How many requests a fault hit so far."""
        with self._lock:
            return sum(f.hits for f in self._faults)

    def requests(self, method: str = "", path: str = "") -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.seen
                if (not method or s.method == method) and (not path or re.search(path, s.path))
            ]

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, method: str, path: str, action: str, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, action, status, time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    # A request line it cannot parse (a TLS ClientHello) gets "HTTP/1.1 400" as from the
    # registry's Go server, not http.server's bare HTTP/0.9 body: the containerd image
    # store falls back to plain HTTP for an insecure registry only when the answer to
    # its TLS handshake starts with "HTTP/" (containerd's HTTPFallback).
    default_request_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the proxy's own record is ``seen``

    def _handle(self) -> None:
        method, path = self.command, self.path
        fault = self.owner._pick(method, path)
        if fault is not None and fault.action == "reset":
            self._reset_mid_body()
            self.owner._record(method, path, "reset", 0)
            return
        body = self._read_body()
        if fault is not None and fault.action == "status":
            self.owner._record(method, path, "status", fault.status)
            self._answer(fault)
            return
        if fault is not None and fault.action == "delay":
            # Recorded on arrival (status 0: held), so a test sees it while it waits.
            self.owner._record(method, path, "delay", 0)
            time.sleep(fault.seconds)
        try:
            status, reason, headers, data = self._forward(method, path, body)
        except OSError:
            self.owner._record(method, path, "upstream-error", 502)
            self._answer(Fault("status", status=502))
            return
        action = fault.action if fault is not None else "forward"
        if action != "delay":
            self.owner._record(method, path, action, status)
        if fault is not None and fault.action == "slow_response":
            time.sleep(fault.seconds)  # the upstream has answered: the outcome is decided
        try:
            self.send_response(status, reason)  # adds its own Date and Server
            upstream_length = ""
            for key, value in headers:
                name = key.lower()
                if name == "content-length":
                    upstream_length = value
                if name not in HOP_BY_HOP and name not in ("date", "server"):
                    self.send_header(key, value)
            # A HEAD answer has no body, yet its Content-Length is the GET body's size
            # (RFC 9110 9.3.2): the daemon takes a blob's size in the manifest from it.
            length = upstream_length if method == "HEAD" and upstream_length else str(len(data))
            self.send_header("Content-Length", length)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up while we waited

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    # -- request body

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset_mid_body(self) -> None:
        """Take a little of the body, then RST: what a dropped connection looks like."""
        try:
            self.connection.settimeout(2)
            self.connection.recv(4096)
        except OSError:
            pass
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    # -- answers

    def _answer(self, fault: Fault) -> None:
        body = fault.body if fault.body is not None else default_body(fault.status)
        if isinstance(body, str):
            data, content_type = body.encode(), "text/html"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        self.send_response(fault.status)
        for key, value in fault.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(
        self, method: str, path: str, body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, _, port = self.owner.upstream.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=UPSTREAM_TIMEOUT)
        try:
            # Repeated fields (the daemon sends one Accept line per media type) are joined,
            # as RFC 9110 §5.3 allows: a dict of the last one would leave the registry one
            # type to offer, and distribution then rewrites a manifest to schema 1.
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
            headers["Content-Length"] = str(len(body))
            conn.request(method, path, body=body if body or method != "GET" else None,
                         headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        finally:
            conn.close()
