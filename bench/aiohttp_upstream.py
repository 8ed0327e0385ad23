"""A fast upstream for P9 ("relay against the limit", docs/benchmarks.md): the same two upstreams as
bench/peers.py, served by aiohttp (on uvloop when it is importable) instead of ``websockets`` and raw
asyncio.

    python bench/aiohttp_upstream.py ws-echo --ready FILE
    python bench/aiohttp_upstream.py sse --ready FILE

``ws-echo`` echoes every text and binary message (pings answered by aiohttp, no compression, no size
limit); ``sse`` serves ``GET /anything?n=N&gap_us=G`` exactly as peers.py's ``sse`` does (same events,
same pacing), except that each batch of unpaced events goes out as one chunk. Each writes its port to
``--ready`` atomically and serves until killed.

peers.py stays free of aiohttp (mockd is built on it, and the load generators must not share its code);
an aiohttp *upstream* is another matter: P9 measures what the proxy costs over the fastest Python
upstream there is, so that the proxy, not the upstream, is what tops out.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import WSMsgType, web
from peers import HOST, announce, run_fast, sse_batches, sse_request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def ws_echo(request: web.Request) -> web.StreamResponse:
    connection = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=0)
    await connection.prepare(request)
    async for message in connection:
        if message.type == WSMsgType.TEXT:
            await connection.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await connection.send_bytes(message.data)
    return connection


async def sse(request: web.Request) -> web.StreamResponse:
    count, gap_ns = sse_request(request.query_string)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for batch in sse_batches(count, gap_ns):
        await response.write(b"".join(batch))  # one chunk; aiohttp drains every 64 KiB written
    await response.write_eof()
    return response


HANDLERS: dict[str, Handler] = {"ws-echo": ws_echo, "sse": sse}


async def serve(handler: Handler, ready: Path) -> None:
    """``handler`` on every path of a free loopback port; the port goes to ``ready``."""
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0, backlog=2048).start()
    announce(ready, runner.addresses[0][1])
    await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(HANDLERS))
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args()
    run_fast(serve(HANDLERS[args.command], args.ready))


if __name__ == "__main__":
    main()
