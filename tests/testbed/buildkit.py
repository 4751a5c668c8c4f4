"""A BuildKit at a ``tcp://`` address for buildx's remote driver (``builder: tcp://…``).

No standalone ``buildkitd`` can be had here (Debian ships none; Docker Hub's
``moby/buildkit`` cannot be pulled), so the bed serves the BuildKit **embedded in each of
its Docker Engines**: a Docker Engine answers BuildKit's gRPC control API on ``POST /grpc``
once the connection is upgraded to ``h2c`` (moby api/server/router/grpc; buildx's docker
driver dials it so). This proxy accepts TCP (plain, or TLS that requires a client
certificate, as ``buildkitd --tlscacert`` does), sends that upgrade request over the
engine's unix socket, waits for ``101 Switching Protocols`` and then pipes bytes both ways.
buildx's remote driver opens its session (the build context, registry credentials) with
the control API's ``Session`` call on the same kind of connection, so ``/session`` is not
needed.

What this is not: a buildkitd of its own. It is the engine's BuildKit, with the engine's
exporters: on the containerd image store ``image`` (push), ``docker``/``oci`` (``--load``)
and ``local``; on the classic store only ``moby`` and ``local`` ("exporter \\"image\\" could
not be found"), so a push through it works on ``e28-containerd`` only.

Run by ``bed.up()`` as ``python -m tests.testbed.buildkit --route PORT=SOCKET[,tls] …``
(one process, two listeners per engine) and recorded in the bed's state; ``answers()``
decides whether a running one is reused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .procs import cmdline, free_port, owned, port_in_use, spawn, stop, wait_for
from .tls import TLSFiles, ensure_tls_files

START_TIMEOUT = 20.0
# What buildx's docker driver sends (docker/cli DialHijack): moby's grpc router answers
# 101 and then serves HTTP/2 on the connection.
_UPGRADE = (
    b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Content-Length: 0\r\n\r\n"
)
_CHUNK = 1 << 16
# An HTTP/2 client's preface (RFC 9113 §3.4), then an empty SETTINGS frame.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@dataclass(frozen=True)
class Endpoints:
    """One engine's BuildKit: ``plain`` and ``tls`` are ``tcp://127.0.0.1:PORT``."""

    engine: str
    plain: str
    tls: str

    def env(self) -> dict[str, str]:
        key = self.engine.upper().replace("-", "_")
        return {f"TESTBED_BUILDKIT_{key}": self.plain, f"TESTBED_BUILDKIT_TLS_{key}": self.tls}


def tls_files(root: Path) -> TLSFiles:
    """The CA, server and client certificates of the TLS listeners (``root`` = STATE/buildkit)."""
    return ensure_tls_files(root / "tls")


def answers(port: int, timeout: float = 2.0) -> bool:
    """The plain listener on ``port`` reaches an engine's BuildKit: an HTTP/2 preface is
    answered with a SETTINGS frame (it went through the upgrade to the gRPC server)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(_H2_PREFACE)
            head = conn.recv(9)
    except OSError:
        return False
    return len(head) >= 4 and head[3] == 0x4


def ensure(
    root: Path,
    sockets: Mapping[str, str],
    recorded_pid: int | None,
    recorded_ports: Mapping[str, Sequence[int]],
) -> tuple[int, tuple[Endpoints, ...]]:
    """The proxy for every engine in ``sockets`` (name -> its unix socket path), reused
    while it runs with the same routes and answers. Returns its pid and the endpoints."""
    files = tls_files(root)
    if not sockets:  # every engine is someone else's, reached over TCP: nothing to serve
        stop(recorded_pid, str(root))
        return 0, ()
    ports: dict[str, tuple[int, int]] = {}
    taken: set[int] = set()
    for name in sockets:
        recorded = list(recorded_ports.get(name) or ())
        reuse = len(recorded) == 2 and (
            owned(recorded_pid, str(root)) or not any(port_in_use(p) for p in recorded)
        )
        pair = tuple(recorded) if reuse else (_new_port(taken), _new_port(taken))
        taken.update(pair)
        ports[name] = (int(pair[0]), int(pair[1]))
    argv = _argv(root, sockets, ports, files)
    endpoints = tuple(
        Endpoints(name, f"tcp://127.0.0.1:{plain}", f"tcp://127.0.0.1:{tls}")
        for name, (plain, tls) in ports.items()
    )
    if (
        recorded_pid and owned(recorded_pid, str(root)) and cmdline(recorded_pid)[1:] == argv[1:]
        and all(answers(plain) for plain, _ in ports.values())
    ):
        return recorded_pid, endpoints
    stop(recorded_pid, str(root))
    log = root / "buildkit.log"
    proc = spawn(argv, log, cwd=Path(__file__).resolve().parents[2])
    for name, (plain, _) in ports.items():
        wait_for(
            lambda port=plain: answers(port, timeout=1),  # type: ignore[misc]
            what=f"the BuildKit proxy for {name} on 127.0.0.1:{plain} (log {log})",
            timeout=START_TIMEOUT, proc=proc, log_path=log,
        )
    return proc.pid, endpoints


def shutdown(root: Path, pid: int | None) -> bool:
    return stop(pid, str(root))


def _new_port(taken: set[int]) -> int:
    port = free_port()
    while port in taken:
        port = free_port()
    return port


def _argv(
    root: Path, sockets: Mapping[str, str], ports: Mapping[str, tuple[int, int]],
    files: TLSFiles,
) -> list[str]:
    routes = []
    for name, path in sockets.items():
        plain, tls = ports[name]
        routes += ["--route", f"{plain}={path}", "--route", f"{tls}={path},tls"]
    return [
        sys.executable, "-m", "tests.testbed.buildkit", "--state", str(root),
        "--ca", str(files.ca), "--cert", str(files.server_cert), "--key", str(files.server_key),
        *routes,
    ]


# --- the proxy process ---------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()


async def _serve(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, engine_socket: str
) -> None:
    engine_writer: asyncio.StreamWriter | None = None
    try:
        engine_reader, engine_writer = await asyncio.open_unix_connection(engine_socket)
        engine_writer.write(_UPGRADE)
        await engine_writer.drain()
        head = await engine_reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            print(f"{engine_socket}: the engine refused the upgrade: {status!r}", flush=True)
            return
        # Either side closing ends the connection: HTTP/2 does not half-close a stream of
        # frames, and a TLS socket cannot be half-closed.
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(_pipe(client_reader, engine_writer)),
             asyncio.ensure_future(_pipe(engine_reader, client_writer))],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
    except (OSError, ConnectionError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError) as exc:
        print(f"{engine_socket}: {type(exc).__name__}: {exc}", flush=True)
    finally:
        for writer in (client_writer, engine_writer):
            if writer is not None:
                writer.close()


def _server_tls(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """As ``buildkitd --tlscacert --tlscert --tlskey``: a client certificate signed by the
    CA is required; ALPN ``h2``, which gRPC clients insist on."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    return context


async def _main(args: argparse.Namespace) -> None:
    tls = _server_tls(args.ca, args.cert, args.key)
    servers = []
    for route in args.route:
        port, _, target = route.partition("=")
        path, _, mode = target.partition(",")

        async def handle(
            r: asyncio.StreamReader, w: asyncio.StreamWriter, path: str = path
        ) -> None:
            await _serve(r, w, path)

        servers.append(await asyncio.start_server(
            handle, "127.0.0.1", int(port), ssl=tls if mode == "tls" else None,
        ))
        print(f"127.0.0.1:{port}{' (TLS)' if mode == 'tls' else ''} -> {path} /grpc", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.buildkit", description=__doc__)
    parser.add_argument("--state", required=True, help="STATE/buildkit (marks the process)")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--route", action="append", required=True, help="PORT=SOCKET[,tls]")
    try:
        asyncio.run(_main(parser.parse_args(argv)))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:  # a port taken meanwhile: up() reports it with this log's tail
        print(f"BuildKit proxy: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
