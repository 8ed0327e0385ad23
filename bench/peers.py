"""Independent peers for the benchmark: upstreams and load generators, each run as its own process.

None of this imports mockd or aiohttp (mockd is built on aiohttp): WebSocket ends use the
``websockets`` library, SSE ends are raw asyncio. Every command prints one JSON object on stdout
(load generators) or writes its port to ``--ready`` (upstreams) and serves until killed.

    python bench/peers.py ws-echo --ready FILE
    python bench/peers.py sse --ready FILE
    python bench/peers.py ws-load --url ws://... --conns 100 --count 200 --window 1
    python bench/peers.py sse-load --url http://.../events?n=1000&gap_us=0
    python bench/peers.py ws-collect --url ws://... --conns 100 --expect 1000

Times are ``time.monotonic_ns()`` (CLOCK_MONOTONIC), which every process on the machine shares, so an
SSE upstream's send stamp can be compared with the client's arrival time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

HOST = "127.0.0.1"
CONNECT_BATCH = 50  # connections opened at once; keeps under the listeners' accept backlog


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p99/max of ``values`` (nearest rank), 0 for an empty list."""
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1], "n": len(ordered)}


# --- upstreams ------------------------------------------------------------------------------------


async def _echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def ws_echo(ready: Path) -> None:
    async with serve(_echo, HOST, 0, compression=None, max_size=None, backlog=2048) as server:
        port = server.sockets[0].getsockname()[1]
        announce(ready, port)
        await asyncio.Future()


SSE_BATCH = 64  # unpaced events written (then drained) at once


def sse_request(query: str) -> tuple[int, int]:
    """An SSE upstream's ``?n=N&gap_us=G``: (N events, default 100; G µs between them, in ns)."""
    fields = parse_qs(query)
    return int(fields.get("n", ["100"])[0]), int(fields.get("gap_us", ["0"])[0]) * 1000


async def sse_batches(count: int, gap_ns: int) -> AsyncIterator[list[bytes]]:
    """The events of one stream, each ``data: <seq> <monotonic_ns at send>``, in the batches an upstream
    writes before it drains: ``SSE_BATCH`` at a time as fast as possible (``gap_ns`` 0), or one at a time
    every ``gap_ns`` against absolute deadlines (a late event does not push the later ones back)."""
    start = time.monotonic_ns()
    step = 1 if gap_ns else SSE_BATCH
    for first in range(0, count, step):
        if gap_ns and (delay := (start + first * gap_ns - time.monotonic_ns()) / 1e9) > 0:
            await asyncio.sleep(delay)
        yield [f"data: {seq} {time.monotonic_ns()}\n\n".encode() for seq in range(first, min(count, first + step))]


async def _sse_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve ``GET /anything?n=N&gap_us=G`` (see :func:`sse_batches`): each event its own chunk, then
    the end."""
    request = await reader.readuntil(b"\r\n\r\n")
    count, gap_ns = sse_request(urlsplit(request.split(b" ", 2)[1].decode()).query)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    async for batch in sse_batches(count, gap_ns):
        for event in batch:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    writer.close()


async def sse_upstream(ready: Path) -> None:
    server = await asyncio.start_server(_sse_stream, HOST, 0, backlog=2048)
    announce(ready, server.sockets[0].getsockname()[1])
    await server.serve_forever()


def announce(ready: Path, port: int) -> None:
    """Write ``port`` to ``ready`` atomically (the harness waits for the file to appear)."""
    temporary = ready.with_suffix(".tmp")
    temporary.write_text(str(port))
    temporary.replace(ready)


# --- WebSocket load -------------------------------------------------------------------------------


async def _open_all(url: str, conns: int) -> list[ClientConnection]:
    opened: list[ClientConnection] = []
    for first in range(0, conns, CONNECT_BATCH):
        batch = range(first, min(conns, first + CONNECT_BATCH))
        opened += await asyncio.gather(*(connect(url, compression=None, max_size=None, open_timeout=30)
                                         for _ in batch))
    return opened


async def _drive(connection: ClientConnection, tag: int, count: int, window: int, until: float,
                 rtts: list[float] | None) -> tuple[int, int, int]:
    """Send ``count`` messages (or until ``until``, monotonic s) keeping at most ``window`` unanswered;
    read every echo. Returns (sent, echoed, mismatched)."""
    credit = asyncio.Semaphore(window)
    sent_at: list[int] = []
    state = {"sent": 0, "echoed": 0, "mismatched": 0, "done": False}

    async def receiver() -> None:
        while not state["done"] or state["echoed"] < state["sent"]:
            message = await connection.recv()
            echoed = state["echoed"]
            if rtts is not None:
                rtts.append((time.monotonic_ns() - sent_at[echoed]) / 1e6)
            state["mismatched"] += message != f"m {tag} {echoed}"
            state["echoed"] = echoed + 1
            credit.release()

    receiving = asyncio.create_task(receiver())
    while state["sent"] < count and time.monotonic() < until:
        await credit.acquire()
        sent_at.append(time.monotonic_ns())
        state["sent"] += 1
        await connection.send(f"m {tag} {state['sent'] - 1}")
    state["done"] = True
    if state["echoed"] == state["sent"]:
        receiving.cancel()
    await asyncio.gather(receiving, return_exceptions=True)
    return state["sent"], state["echoed"], state["mismatched"]


async def ws_load(url: str, conns: int, count: int, window: int, seconds: float) -> dict[str, Any]:
    """Open ``conns`` connections, then drive them all at once; report messages/s and (when each
    connection sends one message at a time) round-trip percentiles in ms."""
    connections = await _open_all(url, conns)
    rtts: list[float] | None = [] if window == 1 else None
    until = time.monotonic() + seconds if seconds else float("inf")
    started = time.perf_counter()
    results = await asyncio.gather(*(_drive(c, i, count, window, until, rtts) for i, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(c.close() for c in connections))
    sent, echoed, mismatched = (sum(column) for column in zip(*results))
    return {"sent": sent, "echoed": echoed, "mismatched": mismatched, "elapsed": elapsed,
            "rate": echoed / elapsed, "rtt_ms": percentiles(rtts or [])}


async def ws_collect(url: str, conns: int, expect: int) -> dict[str, Any]:
    """Open ``conns`` connections; record when each handshake completed and each message's arrival
    (monotonic ns) until each connection saw ``expect`` messages or closed. Used for replay timing."""

    async def opened() -> tuple[ClientConnection, int]:
        connection = await connect(url, compression=None, max_size=None, open_timeout=30)
        return connection, time.monotonic_ns()

    pairs: list[tuple[ClientConnection, int]] = []
    for first in range(0, conns, CONNECT_BATCH):
        pairs += await asyncio.gather(*(opened() for _ in range(first, min(conns, first + CONNECT_BATCH))))
    connections = [connection for connection, _ in pairs]

    async def collect(connection: ClientConnection) -> list[int]:
        arrivals: list[int] = []
        async for _ in connection:
            arrivals.append(time.monotonic_ns())
            if len(arrivals) == expect:
                break
        await connection.close()
        return arrivals

    arrivals = await asyncio.gather(*(collect(c) for c in connections))
    return {"connected": [at for _, at in pairs], "arrivals": arrivals}


# --- SSE load -------------------------------------------------------------------------------------


class _ChunkedBody:
    """Decodes a chunked (or, without chunking, raw until EOF) HTTP body as it arrives."""

    def __init__(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        self.reader, self.chunked = reader, chunked

    async def next(self) -> bytes:
        if not self.chunked:
            return await self.reader.read(65536)
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]


async def sse_load(url: str) -> dict[str, Any]:
    """GET an SSE stream; per event, arrival − the upstream's send stamp (ms), and events/s."""
    parts = urlsplit(url)
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
                 f"Connection: close\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    body = _ChunkedBody(reader, b"transfer-encoding: chunked" in head)
    buffer, latencies = b"", []
    while chunk := await body.next():
        now = time.monotonic_ns()
        buffer += chunk
        *blocks, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        for block in blocks:
            stamp = int(block.rsplit(b" ", 1)[1])
            latencies.append((now - stamp) / 1e6)
    elapsed = time.perf_counter() - started
    writer.close()
    return {"events": len(latencies), "elapsed": elapsed, "rate": len(latencies) / elapsed,
            "latency_ms": percentiles(latencies)}


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("ws-echo", "sse"):
        commands.add_parser(name).add_argument("--ready", type=Path, required=True)
    load = commands.add_parser("ws-load")
    load.add_argument("--url", required=True)
    load.add_argument("--conns", type=int, default=1)
    load.add_argument("--count", type=int, default=1000)
    load.add_argument("--window", type=int, default=1)
    load.add_argument("--seconds", type=float, default=0.0)
    commands.add_parser("sse-load").add_argument("--url", required=True)
    collect = commands.add_parser("ws-collect")
    collect.add_argument("--url", required=True)
    collect.add_argument("--conns", type=int, default=1)
    collect.add_argument("--expect", type=int, required=True)
    return parser


def _command(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, Any]]:
    commands: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
        "ws-echo": lambda: ws_echo(args.ready),
        "sse": lambda: sse_upstream(args.ready),
        "ws-load": lambda: ws_load(args.url, args.conns, args.count, args.window, args.seconds),
        "sse-load": lambda: sse_load(args.url),
        "ws-collect": lambda: ws_collect(args.url, args.conns, args.expect),
    }
    return commands[args.command]


def run_fast(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on uvloop when it is importable (the peers should never be the bottleneck)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> None:
    args = _parser().parse_args()
    result = run_fast(_command(args)())
    if result is not None:
        json.dump(result, sys.stdout)
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
