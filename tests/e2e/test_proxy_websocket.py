"""The upstream proxy, WebSocket side (docs/config.md, "Proxy mocks"), black-box over real sockets.

A real ``mockd serve`` sits between a ``websockets`` client and a ``websockets`` server (or a hand-made
asyncio upstream where a test needs to misbehave at the TCP level). Both ends log every frame they
receive, control frames included, and the tests compare what one end sent with what the other saw.
Negative checks ("no pong arrives while the upstream is not reading") use a short fixed window; every
positive expectation is awaited with a generous deadline instead of a sleep.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.datastructures import Headers as WsHeaders
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Opcode

from processes import MockdFactory, RunningMockd
from configs import mocks_config
from polling import poll_until
from upstreams import (
    DEADLINE,
    Data,
    RecordingClientConnection,
    RecordingServerConnection,
    WsHandler,
    WsUpstream,
    dropping_ws_upstream,
    echo,
    exchange,
    fd_count,
    open_ws,
    proxy_mock,
    recv,
    rss_bytes,
    send_close_without_status,
    server_close,
    silent_upstream,
    start_proxying,
    unreachable_url,
    ws_upstream,
)

QUIET_WINDOW = 0.5  # how long a test waits to be sure something did NOT happen
BAD_GATEWAY_CODES = (1011, 1014)
CYCLES = 1000  # connect/disconnect cycles in the leak test, as the issue asks


def open_client(server: RunningMockd, path: str = "/ws", **options: Any) -> connect:
    """A ``websockets`` client through mockd that logs every frame it receives."""
    return open_ws(server.ws_url(path), **{"create_connection": RecordingClientConnection, "max_size": None,
                                          **options})


@asynccontextmanager
async def proxied(mockd: MockdFactory, handler: WsHandler = echo,
                  **options: Any) -> AsyncIterator[tuple[RunningMockd, WsUpstream]]:
    """A ``websockets`` upstream running ``handler`` (``options`` go to :func:`ws_upstream`), and a mockd
    whose only mock proxies every path to it."""
    async with ws_upstream(handler, **options) as upstream:
        yield mockd.start(mocks_config(proxy_mock(upstream.url))), upstream


async def connected_pair(server: RunningMockd, upstream: WsUpstream, path: str = "/ws",
                         **options: Any) -> tuple[RecordingClientConnection, RecordingServerConnection]:
    """A client through mockd and the upstream connection mockd opened for it."""
    client = await open_client(server, path, **options)
    assert isinstance(client, RecordingClientConnection)
    return client, await upstream.next_connection()


def payloads(seed: int, count: int) -> list[Data]:
    """Many small messages alternating text and binary, so ordering across types is checked too."""
    rng = random.Random(seed)
    out: list[Data] = []
    for index in range(count):
        if index % 2:
            out.append(rng.randbytes(rng.randrange(0, 200)))
        else:
            out.append(f"msg {index} " + "".join(rng.choice("abcé✓🌍{}\"\\\n") for _ in range(rng.randrange(0, 60))))
    return out


SPECIAL_MESSAGES: list[Data] = [
    "", b"", "hello", "héllo wörld ✓ 🌍", '{"type":"join","room":"{{message}}"}', "line1\r\nline2\n\x00end",
    bytes(range(256)), b"\x00" * 125, b"\xff" * 126, "x" * 65535, "y" * 65536,
    random.Random(7).randbytes(3 * 1024 * 1024),  # larger than any default frame or message limit
]


def typed(messages: list[Data]) -> list[tuple[str, Data]]:
    """Messages with their type made explicit, so a text message never compares equal to binary."""
    return [("text" if isinstance(message, str) else "binary", message) for message in messages]


# --- messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream_compression", ["deflate", None], ids=["upstream-deflate", "upstream-plain"])
@pytest.mark.parametrize("client_compression", ["deflate", None], ids=["client-deflate", "client-plain"])
async def test_messages_byte_for_byte_in_order_both_directions(
        mockd: MockdFactory, client_compression: str | None, upstream_compression: str | None) -> None:
    s2c = SPECIAL_MESSAGES + payloads(1, 300)
    c2s = list(reversed(SPECIAL_MESSAGES)) + payloads(2, 300)
    upstream_received: list[Data] = []

    async def script(ws: RecordingServerConnection) -> None:
        for message in s2c:  # upstream-initiated burst
            await ws.send(message)
        async for message in ws:
            upstream_received.append(message)
            await ws.send(message)

    async with proxied(mockd, script, compression=upstream_compression) as (server, upstream):
        async with open_client(server, compression=client_compression) as client:
            up = await upstream.next_connection()
            assert typed([await recv(client) for _ in s2c]) == typed(s2c)
            for message in c2s:
                await client.send(message)
            await client.send(["frag", "ment", "ed ✓"])  # a fragmented message arrives as one message
            await client.send([b"\x00bin", b"ary\xff"])
            expected = [*c2s, "fragmented ✓", b"\x00binary\xff"]
            echoed = [await recv(client) for _ in expected]
        assert typed(upstream_received) == typed(expected)
        assert typed(echoed) == typed(expected)
        assert not upstream.errors

    # permessage-deflate is negotiated end to end (issue 15): the client's offer goes upstream, the
    # upstream's answer comes back, so both legs compress only when both ends allow it
    both = client_compression is not None and upstream_compression is not None
    client_extensions = client.response.headers.get("Sec-WebSocket-Extensions") or ""
    assert ("permessage-deflate" in client_extensions) == both
    assert bool(up.protocol.extensions) == both


@pytest.mark.parametrize("direction", ["client-to-upstream", "upstream-to-client"])
async def test_ping_is_relayed_with_payload_and_answered_only_by_the_far_end(
        mockd: MockdFactory, direction: str) -> None:
    async with proxied(mockd) as (server, upstream):
        client, up = await connected_pair(server, upstream)
        async with client:
            assert await exchange(client, "sync") == "sync"  # the relay is up in both directions
            pinger, ponger = (client, up) if direction == "client-to-upstream" else (up, client)
            payload = f"ping {direction} \x00\xff".encode()
            ponger.transport.pause_reading()  # the far end cannot answer while it is not reading
            pong = await pinger.ping(payload)
            done, _ = await asyncio.wait({pong}, timeout=QUIET_WINDOW)
            assert not done, "a pong came back while the far end was not reading: mockd answered the ping itself"
            assert not pinger.log.of(Opcode.PONG)
            ponger.transport.resume_reading()
            await asyncio.wait_for(pong, DEADLINE)
            seen = await ponger.log.wait_opcode(Opcode.PING)
            assert seen.data == payload
            assert [frame.data for frame in pinger.log.of(Opcode.PONG)] == [payload]
            assert [frame.data for frame in ponger.log.of(Opcode.PING)] == [payload]


@pytest.mark.parametrize("direction", ["client-to-upstream", "upstream-to-client"])
async def test_unsolicited_pong_is_relayed_in_order_with_messages(mockd: MockdFactory, direction: str) -> None:
    async with proxied(mockd) as (server, upstream):
        client, up = await connected_pair(server, upstream)
        async with client:
            sender, receiver = (client, up) if direction == "client-to-upstream" else (up, client)
            await sender.send("before")
            await sender.pong(b"unsolicited \x01\x02")
            await sender.pong(b"")
            await sender.send(b"after")
            await receiver.log.wait_opcode(Opcode.BINARY, b"after")
            relevant = [(frame.opcode, frame.data) for frame in receiver.log.frames
                        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.PONG)]
            assert relevant[:4] == [(Opcode.TEXT, b"before"), (Opcode.PONG, b"unsolicited \x01\x02"),
                                    (Opcode.PONG, b""), (Opcode.BINARY, b"after")]


# --- closing ------------------------------------------------------------------------------------

CLOSES_FROM_UPSTREAM = [(4001, "kicked"), (1000, ""), (1000, "done"), (1001, "going away"),
                        (1008, "policy violation"), (1011, "internal error"), (3000, "ünïcödé ✓"), (4999, "r" * 123)]
CLOSES_FROM_CLIENT = [(4000, "bye"), (1000, ""), (1001, "tab closed"), (3000, "ünïcödé ✓"), (4999, "c" * 123)]


@pytest.mark.parametrize(("code", "reason"), CLOSES_FROM_UPSTREAM)
async def test_upstream_close_code_and_reason_reach_the_client(mockd: MockdFactory, code: int, reason: str) -> None:
    async with proxied(mockd) as (server, upstream):
        client, up = await connected_pair(server, upstream)
        assert await exchange(client, "last words") == "last words"
        await asyncio.wait_for(up.close(code, reason), DEADLINE)  # returns once the handshake completed
        _, close = await server_close(client)
        assert close == Close(code, reason)
        [close_frame] = client.log.of(Opcode.CLOSE)
        assert close_frame.close() == Close(code, reason)
        assert up.log.of(Opcode.CLOSE), "the upstream's close handshake was not answered"
        await asyncio.wait_for(client.wait_closed(), DEADLINE)


@pytest.mark.parametrize(("code", "reason"), CLOSES_FROM_CLIENT)
async def test_client_close_code_and_reason_reach_the_upstream(mockd: MockdFactory, code: int, reason: str) -> None:
    async with proxied(mockd) as (server, upstream):
        client, up = await connected_pair(server, upstream)
        assert await exchange(client, "last words") == "last words"
        await asyncio.wait_for(client.close(code, reason), DEADLINE)
        close_frame = await up.log.wait_opcode(Opcode.CLOSE)
        assert close_frame.close() == Close(code, reason)
        await asyncio.wait_for(up.wait_closed(), DEADLINE)
        assert up.close_code == code and up.close_reason == reason
        assert client.log.of(Opcode.CLOSE), "the client's close handshake was not answered"


@pytest.mark.parametrize("direction", ["client-to-upstream", "upstream-to-client"])
async def test_close_without_status_code_stays_without_one(mockd: MockdFactory, direction: str) -> None:
    """A close frame with no payload (no status code) must not turn into 1000 on the other side."""
    async with proxied(mockd) as (server, upstream):
        client, up = await connected_pair(server, upstream)
        assert await exchange(client, "sync") == "sync"
        closer, other = (client, up) if direction == "client-to-upstream" else (up, client)
        await send_close_without_status(closer)
        close_frame = await other.log.wait_opcode(Opcode.CLOSE)
        assert close_frame.data == b"", f"relayed as {close_frame.close()}"


# --- the handshake ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("offer", "choice"), [
    (["v1", "v2", "v3"], "v2"),  # the upstream's choice, not mockd's or the client's first
    (["chat"], "chat"),
    (["v1", "v2"], None),  # the upstream picks none: neither does the client
    ([], None),
])
async def test_subprotocol_offer_goes_upstream_and_choice_comes_back(
        mockd: MockdFactory, offer: list[str], choice: str | None) -> None:
    seen_offers: list[list[str]] = []

    def select(connection: Any, offered: list[str]) -> str | None:
        seen_offers.append(list(offered))
        return choice

    async with proxied(mockd, select_subprotocol=select) as (server, upstream):
        client, up = await connected_pair(server, upstream, subprotocols=offer or None)
        async with client:
            assert await exchange(client, "hi") == "hi"
            assert client.subprotocol == choice
            assert up.subprotocol == choice
            header = client.response.headers.get_all("Sec-WebSocket-Protocol")
            assert header == ([choice] if choice else [])
    assert seen_offers == [offer]
    if not offer:
        assert up.request.headers.get_all("Sec-WebSocket-Protocol") == []


CLIENT_HEADERS: list[tuple[str, str]] = [
    ("X-Custom", "v1"), ("X-Multi", "a"), ("X-Multi", "b"), ("Authorization", "Bearer tok"),
    ("Cookie", "a=1; b=2"), ("X-Override", "from-client"),
    # hop-by-hop: never forwarded
    ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Proxy-Authorization", "Basic eA=="), ("Trailer", "X-T"),
]
MOCK_HEADERS = {"X-Forwarded-By": "mockd", "X-Override": "from-mock"}


@pytest.mark.parametrize(("prefix", "strip", "client_path", "upstream_path"), [
    ("/", False, "/room/42?token=abc&x=a%20b&x=2&flag", "/room/42?token=abc&x=a%20b&x=2&flag"),
    ("/ws", False, "/ws/room?q=%2F%3D&empty=", "/ws/room?q=%2F%3D&empty="),
    ("/ws", True, "/ws/room/7?q=1", "/room/7?q=1"),
    ("/ws", True, "/ws?q=1", "/?q=1"),
])
async def test_path_query_and_headers_are_forwarded(mockd: MockdFactory, prefix: str, strip: bool,
                                                    client_path: str, upstream_path: str) -> None:
    async with ws_upstream(echo) as upstream:
        server = mockd.start(mocks_config(
            proxy_mock(upstream.url, prefix, headers=MOCK_HEADERS, stripPrefix=strip)))
        client, up = await connected_pair(server, upstream, client_path, additional_headers=CLIENT_HEADERS,
                                          user_agent_header="proxy-test/1.0", origin="http://example.test")
        async with client:
            assert await exchange(client, "hi") == "hi"
    assert up.request.path == upstream_path
    headers: WsHeaders = up.request.headers
    assert headers.get_all("X-Custom") == ["v1"]
    assert headers.get_all("X-Multi") == ["a", "b"]
    assert headers.get_all("Authorization") == ["Bearer tok"]
    assert headers.get_all("Cookie") == ["a=1; b=2"]
    assert headers.get_all("User-Agent") == ["proxy-test/1.0"]
    assert headers.get_all("Origin") == ["http://example.test"]
    assert headers.get_all("X-Forwarded-By") == ["mockd"]
    assert headers.get_all("X-Override") == ["from-mock"]
    for hop_by_hop in ("Keep-Alive", "TE", "Proxy-Authorization", "Trailer"):
        assert headers.get_all(hop_by_hop) == [], f"{hop_by_hop} was forwarded"


async def greet_then_echo(ws: RecordingServerConnection) -> None:
    await ws.send("from-upstream")
    await echo(ws)


LOCAL_WS_MOCK = {"id": "local", "type": "websocket", "websocket": {"path": "/ws/local", "scenario": {
    "name": "greet", "steps": [{"type": "send", "message": {"type": "text", "value": "from-mock"}}]}}}


@pytest.mark.parametrize(("layout", "local_answers"), [
    ("mock-then-proxy", "from-mock"), ("mock-then-upstream-flag", "from-mock"), ("proxy-then-mock", "from-upstream")])
async def test_mocks_and_proxies_match_in_file_order(mockd: MockdFactory, layout: str, local_answers: str) -> None:
    async with ws_upstream(greet_then_echo) as upstream:
        server = start_proxying(mockd, upstream.url, layout, LOCAL_WS_MOCK)
        async with open_client(server, "/ws/local") as local:
            assert await recv(local) == local_answers
        assert len(upstream.connections) == (1 if local_answers == "from-upstream" else 0)
        async with open_client(server, "/ws/elsewhere?x=1") as other:
            assert await recv(other) == "from-upstream"
            up = upstream.connections[-1]
            assert up.request.path == "/ws/elsewhere?x=1"


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["config", "upstream-flag"])
async def test_unreachable_upstream_refuses_the_upgrade_with_502(mockd: MockdFactory, via: str) -> None:
    with unreachable_url() as url:
        server = start_proxying(mockd, url, via)
        with pytest.raises(InvalidStatus) as info:
            await open_client(server, "/ws/chat?x=1")
    response = info.value.response
    assert response.status_code == 502
    error = json.loads(response.body or b"{}")
    assert set(error) >= {"error", "message"}
    assert url in error["message"]


@pytest.mark.parametrize("upstream_kind", ["websockets-abort", "raw-reset", "raw-fin"])
async def test_upstream_dropping_tcp_closes_the_client_with_bad_gateway(mockd: MockdFactory,
                                                                       upstream_kind: str) -> None:
    if upstream_kind == "websockets-abort":
        async def ready_then_wait(ws: RecordingServerConnection) -> None:
            await ws.send("ready")
            await ws.wait_closed()

        async with proxied(mockd, ready_then_wait) as (server, upstream):
            client, up = await connected_pair(server, upstream)
            assert await recv(client) == "ready"
            up.transport.abort()
            _, close = await server_close(client)  # with a close frame: mockd did not just drop the client
    else:
        async with dropping_ws_upstream(abort=upstream_kind == "raw-reset") as raw:
            server = mockd.start(mocks_config(proxy_mock(raw.url)))
            client = await open_client(server)
            assert await recv(client) == "ready"
            raw.drop.set()
            _, close = await server_close(client)  # with a close frame: mockd did not just drop the client
            assert raw.request_head.startswith(b"GET /ws HTTP/1.1\r\n")
    assert close.code in BAD_GATEWAY_CODES


async def test_a_silent_upstream_does_not_delay_other_connections(mockd: MockdFactory) -> None:
    async with silent_upstream() as silent, ws_upstream(echo) as upstream:
        server = mockd.start(mocks_config(proxy_mock(silent.url, "/slow"), proxy_mock(upstream.url, "/fast")))
        async def attempt() -> RecordingClientConnection:
            return await open_client(server, "/slow")

        stuck = asyncio.create_task(attempt())
        try:
            first_bytes = await asyncio.wait_for(silent.accepted.get(), DEADLINE)
            assert first_bytes.startswith(b"GET /slow")  # mockd is now waiting on the silent upstream
            loop = asyncio.get_running_loop()
            started = loop.time()
            for round_trip in range(3):
                async with open_client(server, "/fast") as client:
                    for index in range(5):
                        assert await exchange(client, f"{round_trip}-{index}") == f"{round_trip}-{index}"
            elapsed = loop.time() - started
            assert elapsed < 2.0, f"three proxied connections took {elapsed:.2f}s while another hung"
            assert not stuck.done()
        finally:
            stuck.cancel()


@pytest.mark.parametrize("direction", ["upstream-to-client", "client-to-upstream"])
async def test_a_slow_reader_gets_back_pressure_not_unbounded_buffering(mockd: MockdFactory, direction: str) -> None:
    """50 MB pushed as fast as possible at a reader that reads nothing for a while: mockd's memory stays
    far below that, the writer is held back, another connection is served meanwhile, and once the reader
    reads, every message arrives intact and in order."""
    block = random.Random(3).randbytes(64 * 1024)
    count = 800  # 50 MiB
    sent = 0
    release = asyncio.Event()
    received_upstream: list[bytes] = []

    def message(index: int) -> bytes:
        return index.to_bytes(4, "big") + block[4:]

    async def upstream_side(ws: RecordingServerConnection) -> None:
        nonlocal sent
        if ws.request.path == "/other":
            await echo(ws)
        elif direction == "upstream-to-client":
            for index in range(count):
                await ws.send(message(index))
                sent = index + 1
            await ws.wait_closed()
        else:
            await release.wait()
            for _ in range(count):
                received_upstream.append(await recv(ws))
            await ws.close()

    async with proxied(mockd, upstream_side, compression=None, max_queue=4) as (server, upstream):
        pid = server.process.pid
        async with open_client(server, "/other", compression=None) as other:  # warms the proxy up
            assert await exchange(other, "warm") == "warm"
            baseline = rss_bytes(pid)
            async with open_client(server, "/flood", compression=None, max_queue=4) as client:
                flooder: asyncio.Task[None] | None = None
                if direction == "client-to-upstream":
                    async def flood() -> None:
                        nonlocal sent
                        for index in range(count):
                            await client.send(message(index))
                            sent = index + 1
                    flooder = asyncio.create_task(flood())

                # let the writer run until it is held back (no progress for a while), watching memory
                loop = asyncio.get_running_loop()
                peak, last_progress, last_sent, deadline = baseline, loop.time(), -1, loop.time() + 20
                while loop.time() - last_progress < 0.5 and sent < count and loop.time() < deadline:
                    await asyncio.sleep(0.05)
                    peak = max(peak, rss_bytes(pid))
                    if sent != last_sent:
                        last_sent, last_progress = sent, loop.time()
                stalled_at = sent
                assert stalled_at < count, "the writer pushed all 50 MB while nobody read: no back-pressure"
                assert peak - baseline < 20 * 1024 * 1024, \
                    f"mockd's RSS grew by {(peak - baseline) / 2**20:.1f} MiB while the reader was stalled"

                # another connection through the same mockd is served promptly meanwhile
                started = loop.time()
                assert await exchange(other, "still there?", 2.0) == "still there?"
                assert loop.time() - started < 2.0

                # the reader catches up: everything arrives, intact and in order
                if direction == "upstream-to-client":
                    received = [await recv(client) for _ in range(count)]
                else:
                    release.set()
                    assert flooder is not None
                    await asyncio.wait_for(flooder, 30)
                    await asyncio.wait_for(poll_until(lambda: len(received_upstream) == count, 30), 31)
                    received = list(received_upstream)
                assert len(received) == count
                assert [item[:4] for item in received] == [message(i)[:4] for i in range(count)]
                assert all(item == message(index) for index, item in enumerate(received))
    assert not upstream.errors


async def test_no_leak_after_many_connect_disconnect_cycles(mockd: MockdFactory) -> None:
    """300 proxied connections ended every way there is; mockd's open descriptors return to where they were."""

    async def handler(ws: RecordingServerConnection) -> None:
        async for message in ws:
            if message == "close please":
                await ws.close(1000, "as asked")
            elif message == "abort please":
                ws.transport.abort()
            else:
                await ws.send(message)

    async with proxied(mockd, handler, compression=None) as (server, upstream):
        pid = server.process.pid
        async with open_client(server) as warm:
            assert await exchange(warm, "warm") == "warm"
        assert await poll_until(lambda: not upstream.live)
        baseline = fd_count(pid)
        endings = ["client-close", "upstream-close", "client-abort", "upstream-abort"]
        for cycle in range(CYCLES):
            ending = endings[cycle % len(endings)]
            client = await open_client(server, f"/cycle/{cycle}", compression=None)
            assert await exchange(client, f"hello {cycle}") == f"hello {cycle}"
            if ending == "client-close":
                await asyncio.wait_for(client.close(), DEADLINE)
            elif ending == "client-abort":
                client.transport.abort()
            else:
                await client.send("close please" if ending == "upstream-close" else "abort please")
                _, close = await server_close(client)
                expected = (1000,) if ending == "upstream-close" else BAD_GATEWAY_CODES
                assert close.code in expected, f"cycle {cycle} ({ending}): {close}"
            await asyncio.wait_for(client.wait_closed(), DEADLINE)
        assert await poll_until(lambda: not upstream.live, 10), \
            f"{len(upstream.live)} upstream connection(s) still open after their clients left"
        assert await poll_until(lambda: fd_count(pid) <= baseline + 5, 10), \
            f"mockd holds {fd_count(pid)} descriptors, {baseline} before {CYCLES} cycles"


# --- shutdown ------------------------------------------------------------------------------------


async def test_sigterm_closes_a_proxied_websocket_with_1001(mockd: MockdFactory) -> None:
    async with proxied(mockd) as (server, upstream):
        client, up = await connected_pair(server, upstream)
        assert await exchange(client, "hi") == "hi"
        server.process.send_signal(signal.SIGTERM)
        _, close = await server_close(client)
        assert close.code == 1001
        exit_code = await asyncio.wait_for(asyncio.to_thread(server.process.wait, 20), 25)
        assert exit_code == 0
        await asyncio.wait_for(up.wait_closed(), DEADLINE)
