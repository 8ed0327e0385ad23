"""``mockd.stream.events.StreamEvents``: the hook the recorder subscribes to, driven by real traffic.

The real server runs inside the test's event loop (``MockdServer``), so a subscriber sees exactly what
it is told. Clients are independent: the ``websockets`` library for WebSocket, the raw asyncio HTTP/1.1
client of ``upstreams`` for SSE. Upstreams for the proxy are a ``websockets`` server and an aiohttp SSE
server, both on port 0.

Nothing waits on a fixed sleep for synchronisation: tests poll the subscriber's list with a deadline.
The one deliberate pause (300 ms) is the thing a timing assertion measures, with a wide tolerance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from mockd.server import MockdServer, ServeOptions, prepare
from mockd.stream.events import Connection, SseBlock, SseDataRun, WsFrame

from configs import mocks_config, write_config, ws_mock
from sseblocks import block as sse
from sseblocks import fields
from polling import wait_until
from upstreams import (
    DEADLINE,
    Headers,
    HttpHandler,
    RawResponse,
    ReceivedRequest,
    exchange,
    http_upstream,
    open_request,
    open_ws,
    proxy_mock,
    recv,
    request,
    ws_upstream,
)

PAUSE = 0.3  # the client's pause between two messages in the timing test, seconds
PAUSE_TOLERANCE_NS = 100_000_000

Origin = Literal["mock", "proxy"]
ORIGINS: list[Origin] = ["mock", "proxy"]
WS_PATHS: dict[Origin, str] = {"mock": "/ws/echo", "proxy": "/up/ws/echo"}
SUBPROTOCOL = "chat.v1"


def close_payload(code: int, reason: str) -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


# --- the subscriber ---------------------------------------------------------------------------------


@dataclass
class Event:
    kind: Literal["opened", "frame", "block", "closed"]
    connection: Connection
    item: WsFrame | SseBlock | None = None
    close_code: int | None = None  # the connection's close code when the event was delivered
    close_reason: str | None = None


@dataclass
class Recorder:
    """A subscriber that appends everything it is told, in order."""

    events: list[Event] = field(default_factory=list)

    def connection_opened(self, connection: Connection) -> None:
        connection.followers += 1  # it wants every connection's frames and events, as a recorder of "/*"
        self.events.append(Event("opened", connection))

    def ws_frame(self, connection: Connection, frame: WsFrame) -> None:
        self.events.append(Event("frame", connection, frame))

    def sse_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None:
        self.events.extend(Event("block", connection, block) for block in blocks)

    def sse_data(self, connection: Connection, run: SseDataRun) -> None:
        self.sse_blocks(connection, run.blocks())

    def connection_closed(self, connection: Connection) -> None:
        self.events.append(Event("closed", connection, None, connection.close_code, connection.close_reason))

    def of(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]

    @property
    def frames(self) -> list[WsFrame]:
        return [event.item for event in self.events if isinstance(event.item, WsFrame)]

    @property
    def blocks(self) -> list[SseBlock]:
        return [event.item for event in self.events if isinstance(event.item, SseBlock)]

    def frame_summary(self) -> list[tuple[str, str, str | bytes]]:
        return [(frame.direction, frame.type, frame.data) for frame in self.frames]

    def closes(self) -> list[WsFrame]:
        return [frame for frame in self.frames if frame.type == "close"]


def has_frames(recorder: Recorder, count: int) -> Callable[[], bool]:
    return lambda: len(recorder.frames) >= count


def is_closed(recorder: Recorder) -> Callable[[], bool]:
    return lambda: bool(recorder.of("closed"))


# --- upstreams for the proxy -------------------------------------------------------------------------

UPSTREAM_PING = b"from-upstream"


async def upstream_ws_handler(ws: ServerConnection) -> None:
    """Echoes; ``kick`` closes with 4001 "kicked"; ``ping-me`` pings the client and reports its pong."""
    async for message in ws:
        if message == "kick":
            await ws.close(4001, "kicked")
            return
        if message == "ping-me":
            pong = await ws.ping(UPSTREAM_PING)
            await asyncio.wait_for(pong, DEADLINE)
            await ws.send("pong-received")
            continue
        await ws.send(message)


# The upstream SSE body, in the chunks it is written in: a BOM, CRLF split over chunks, a multi-byte
# character split over chunks, CR-only endings, a comment-only and a retry-only block.
UPSTREAM_SSE_CHUNKS = [
    b"\xef\xbb", b"\xbf: hello\r", b"\n\r\nevent: greet\r\ndata: caf\xc3", b"\xa9\r\nid: 7\r\n\r",
    b"\ndata:no-space\rdata:\rdata: third\r\r", b"retry: 2500\n\n", b"data: last\n\n",
]
UPSTREAM_SSE_BLOCKS = [sse(comment="hello"), sse(type="greet", data="café", id="7"),
                       sse(data="no-space\n\nthird"), sse(retry=2500), sse(data="last")]


@dataclass
class SseUpstream:
    url: str = ""
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # holds back the second block of /gated
    bodies: list[bytes] = field(default_factory=list)  # request bodies received on /chat


def sse_upstream_handler(upstream: SseUpstream) -> HttpHandler:
    """``GET /up/sse/stream``: UPSTREAM_SSE_CHUNKS; ``POST /up/sse/chat``: two blocks about the body;
    ``GET /up/sse/gated``: one block, then another once ``gate`` is set."""

    async def start(request: web.BaseRequest, status: int) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "text/event-stream",
                                                              "X-Upstream": "sse-1", "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    async def stream(request: web.BaseRequest) -> web.StreamResponse:
        response = await start(request, 200)
        for chunk in UPSTREAM_SSE_CHUNKS:
            await response.write(chunk)
        await response.write_eof()
        return response

    async def chat(request: web.BaseRequest, body: bytes) -> web.StreamResponse:
        upstream.bodies.append(body)
        response = await start(request, 201)
        await response.write(f"event: received\ndata: {len(body)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def gated(request: web.BaseRequest) -> web.StreamResponse:
        response = await start(request, 200)
        await response.write(b"data: first\n\n")
        await asyncio.wait_for(upstream.gate.wait(), DEADLINE)
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    async def handle(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
        route = (received.method, request.path)
        if route == ("GET", "/up/sse/stream"):
            return await stream(request)
        if route == ("POST", "/up/sse/chat"):
            return await chat(request, received.body)
        if route == ("GET", "/up/sse/gated"):
            return await gated(request)
        return web.Response(status=404)

    return handle


# --- the server --------------------------------------------------------------------------------------

SSE_MOCK_EVENTS: list[dict[str, Any]] = [
    {"type": "greeting", "data": "hello\nworld", "id": "1", "retry": 1500},
    {"comment": "just a comment"},
    {"data": {"n": 1}},
    {"retry": 2000},
    {"type": "only-type"},
]
SSE_MOCK_BLOCKS = [sse(type="greeting", data="hello\nworld", id="1", retry=1500), sse(comment="just a comment"),
                   sse(data='{"n":1}'), sse(retry=2000), sse(type="only-type")]
SSE_MOCK_WIRE = (b"event: greeting\nid: 1\nretry: 1500\ndata: hello\ndata: world\n\n"
                 b": just a comment\n\n"
                 b'data: {"n":1}\n\n'
                 b"retry: 2000\n\n"
                 b"event: only-type\n\n")


@dataclass
class Running:
    server: MockdServer
    port: int
    sse_upstream: SseUpstream

    def subscribe(self) -> Recorder:
        recorder = Recorder()
        self.server.events.subscribe(recorder)
        for connection in self.server.events.open_connections:  # as a recording session starting now
            connection.followers += 1
        return recorder

    def ws_url(self, origin: Origin, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATHS[origin]}{query}"


@pytest.fixture
async def ws_target() -> AsyncIterator[str]:
    """The URL of a ``websockets`` upstream running :func:`upstream_ws_handler`."""
    async with ws_upstream(upstream_ws_handler, subprotocols=[SUBPROTOCOL]) as upstream:
        yield upstream.url


@pytest.fixture
async def sse_upstream() -> AsyncIterator[SseUpstream]:
    upstream = SseUpstream()
    async with http_upstream(sse_upstream_handler(upstream)) as server:
        upstream.url = server.url
        yield upstream
        upstream.gate.set()


@pytest.fixture
async def running(tmp_path: Path, ws_target: str, sse_upstream: SseUpstream) -> AsyncIterator[Running]:
    config_path = write_config(tmp_path, mocks_config(
        ws_mock("echo", "/ws/echo", subprotocols=[SUBPROTOCOL]),
        {"id": "events", "type": "http",
         "http": {"matcher": {"method": "GET", "path": "/events"}, "sse": {"events": SSE_MOCK_EVENTS}}},
        proxy_mock(ws_target, "/up/ws", "up-ws"),
        proxy_mock(sse_upstream.url, "/up/sse", "up-sse"),
    ))
    prepared = prepare(ServeOptions(config_paths=[config_path], port=0, admin_port=0,
                                    data_dir=str(tmp_path / "data")))
    server = MockdServer(prepared)
    mock_port, _ = await server.start()
    try:
        yield Running(server, mock_port, sse_upstream)
    finally:
        await server.stop()


def ws_connect(url: str, **kwargs: Any) -> connect:
    return open_ws(url, subprotocols=[SUBPROTOCOL], proxy=None, **kwargs)


# --- SSE requests over the raw HTTP/1.1 client ------------------------------------------------------

SSE_CLIENT_HEADERS: Headers = [("Connection", "close"), ("Accept", "text/event-stream")]


async def http_stream(port: int, method: str, target: str, body: bytes | None = None,
                      headers: Headers | None = None) -> RawResponse:
    """Send one request as an SSE client would and read the whole response."""
    return await request(port, method, target, [*SSE_CLIENT_HEADERS, *(headers or [])], body)


# --- WebSocket: mock and proxy --------------------------------------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_connection_opened_describes_the_request(running: Running, origin: Origin) -> None:
    recorder = running.subscribe()
    async with ws_connect(running.ws_url(origin, "?room=general&n=2"),
                          additional_headers={"X-Test-Header": "yes"}) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        await wait_until(lambda: bool(recorder.of("opened")), "connection_opened")
        (opened,) = recorder.of("opened")
        connection = opened.connection
        assert (connection.protocol, connection.origin, connection.method) == ("websocket", origin, "GET")
        assert connection.path == WS_PATHS[origin]
        assert connection.query == [("room", "general"), ("n", "2")]
        assert ("x-test-header", "yes") in [(name.lower(), value) for name, value in connection.headers]
        assert connection.subprotocol == SUBPROTOCOL
        assert connection.remote is not None and connection.remote.startswith("127.0.0.1:")
        assert connection.closed_ns is None and recorder.of("closed") == []
    await wait_until(is_closed(recorder), "connection_closed")
    assert recorder.events[0].kind == "opened"
    assert recorder.events[-1].kind == "closed" and recorder.events[-1].connection is connection
    assert all(event.connection is connection for event in recorder.events)


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("payload", ["hello ✓", "", b"\x00\x01\xfe\xffbinary\x80", b""],
                         ids=["text", "empty-text", "binary", "empty-binary"])
async def test_ws_message_gives_c2s_then_s2c_frame_with_the_same_data(running: Running, origin: Origin,
                                                                     payload: str | bytes) -> None:
    recorder = running.subscribe()
    kind = "text" if isinstance(payload, str) else "binary"
    async with ws_connect(running.ws_url(origin)) as ws:
        echoed = await exchange(ws, payload)
        assert echoed == payload and type(echoed) is type(payload)
        await wait_until(has_frames(recorder, 2), "two frames")
        assert recorder.frame_summary() == [("c2s", kind, payload), ("s2c", kind, payload)]
        assert all(type(frame.data) is type(payload) for frame in recorder.frames)


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_client_ping_gives_c2s_ping_and_s2c_pong(running: Running, origin: Origin) -> None:
    recorder = running.subscribe()
    async with ws_connect(running.ws_url(origin)) as ws:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, DEADLINE)
        await wait_until(has_frames(recorder, 2), "ping and pong frames")
        assert recorder.frame_summary() == [("c2s", "ping", b"are you there"), ("s2c", "pong", b"are you there")]


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_client_close_4000_is_a_c2s_close_frame_then_connection_closed(running: Running,
                                                                                origin: Origin) -> None:
    recorder = running.subscribe()
    async with ws_connect(running.ws_url(origin)) as ws:
        await exchange(ws, "last words")
        await ws.close(4000, "bye")
        assert ws.close_code == 4000  # the close is answered with the same code
    await wait_until(is_closed(recorder), "connection_closed")
    c2s_closes = [frame for frame in recorder.closes() if frame.direction == "c2s"]
    assert len(c2s_closes) == 1, recorder.frame_summary()
    assert (c2s_closes[0].close_code, c2s_closes[0].close_reason) == (4000, "bye")
    assert c2s_closes[0].data == close_payload(4000, "bye")
    s2c_closes = [frame for frame in recorder.closes() if frame.direction == "s2c"]
    assert [frame.close_code for frame in s2c_closes] == [4000]
    assert recorder.frames.index(c2s_closes[0]) < recorder.frames.index(s2c_closes[0])
    closed = recorder.events[-1]
    assert closed.kind == "closed"
    assert (closed.close_code, closed.close_reason) == (4000, "bye")
    assert (closed.connection.close_code, closed.connection.close_reason) == (4000, "bye")
    assert closed.connection.closed_ns is not None and closed.connection.closed_ns >= c2s_closes[0].at_ns
    assert len(recorder.of("closed")) == 1


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_frame_timestamps_are_wall_clock_and_keep_the_pause(running: Running, origin: Origin) -> None:
    recorder = running.subscribe()
    started = time.time_ns()
    async with ws_connect(running.ws_url(origin)) as ws:
        sent_one = time.time_ns()
        assert await exchange(ws, "one") == "one"
        await asyncio.sleep(PAUSE)  # the pause being measured, not a synchronisation
        sent_two = time.time_ns()
        assert await exchange(ws, "two") == "two"
    await wait_until(is_closed(recorder), "connection_closed")
    finished = time.time_ns()
    stamps = [frame.at_ns for frame in recorder.frames]
    assert stamps == sorted(stamps), recorder.frame_summary()
    assert all(started <= stamp <= finished for stamp in stamps)
    opened = recorder.of("opened")[0].connection
    assert started <= opened.opened_ns <= stamps[0]
    by_data = {(frame.direction, frame.data): frame.at_ns for frame in recorder.frames if frame.type == "text"}
    gap = by_data[("c2s", "two")] - by_data[("c2s", "one")]
    client_gap = sent_two - sent_one
    assert abs(gap - PAUSE * 1e9) <= PAUSE_TOLERANCE_NS or abs(gap - client_gap) <= PAUSE_TOLERANCE_NS, \
        (gap, client_gap)
    assert gap >= PAUSE * 1e9 - PAUSE_TOLERANCE_NS
    echo_gap = by_data[("s2c", "two")] - by_data[("s2c", "one")]
    assert abs(echo_gap - gap) <= PAUSE_TOLERANCE_NS


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_subscriber_added_mid_connection_gets_frames_from_then_on(running: Running,
                                                                           origin: Origin) -> None:
    early = running.subscribe()
    async with ws_connect(running.ws_url(origin)) as ws:
        assert await exchange(ws, "before") == "before"
        await wait_until(has_frames(early, 2), "the early subscriber's frames")
        late = running.subscribe()
        assert await exchange(ws, "after") == "after"
        await ws.close(4000, "bye")
    await wait_until(is_closed(late), "connection_closed for the late subscriber")
    assert late.of("opened") == []
    texts = [(frame.direction, frame.data) for frame in late.frames if frame.type == "text"]
    assert texts == [("c2s", "after"), ("s2c", "after")]
    assert [frame.close_code for frame in late.closes() if frame.direction == "c2s"] == [4000]
    assert late.events[-1].kind == "closed" and late.events[-1].close_code == 4000
    assert late.events[-1].connection is early.of("opened")[0].connection
    assert [(frame.direction, frame.data) for frame in early.frames if frame.type == "text"] == [
        ("c2s", "before"), ("s2c", "before"), ("c2s", "after"), ("s2c", "after")]


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_without_subscribers_works_and_records_nothing(running: Running, origin: Origin) -> None:
    assert not running.server.events.listening
    async with ws_connect(running.ws_url(origin)) as ws:
        assert await exchange(ws, "text") == "text"
        assert await exchange(ws, b"\x00bin") == b"\x00bin"
        await asyncio.wait_for(await ws.ping(b"p"), DEADLINE)
        await ws.close(4000, "bye")
        assert ws.close_code == 4000
    # the server is still healthy, and a subscriber added now sees the next connection whole
    recorder = running.subscribe()
    async with ws_connect(running.ws_url(origin)) as ws:
        assert await exchange(ws, "again") == "again"
    await wait_until(is_closed(recorder), "connection_closed")
    assert [event.kind for event in recorder.events][:3] == ["opened", "frame", "frame"]
    assert [frame.data for frame in recorder.frames if frame.type == "text"] == ["again", "again"]


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_unsubscribed_recorder_hears_nothing_more(running: Running, origin: Origin) -> None:
    recorder = running.subscribe()
    async with ws_connect(running.ws_url(origin)) as ws:
        assert await exchange(ws, "heard") == "heard"
        await wait_until(has_frames(recorder, 2), "two frames")
        running.server.events.unsubscribe(recorder)
        assert not running.server.events.listening
        assert await exchange(ws, "unheard") == "unheard"
    assert [frame.data for frame in recorder.frames] == ["heard", "heard"]


# --- WebSocket: proxy only -------------------------------------------------------------------------


async def test_proxy_upstream_close_4001_is_an_s2c_close_frame(running: Running) -> None:
    recorder = running.subscribe()
    async with ws_connect(running.ws_url("proxy")) as ws:
        await ws.send("kick")
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert (ws.close_code, ws.close_reason) == (4001, "kicked")
    await wait_until(is_closed(recorder), "connection_closed")
    assert recorder.frame_summary()[0] == ("c2s", "text", "kick")
    s2c_closes = [frame for frame in recorder.closes() if frame.direction == "s2c"]
    assert [(frame.close_code, frame.close_reason, frame.data) for frame in s2c_closes] == [
        (4001, "kicked", close_payload(4001, "kicked"))]
    closed = recorder.events[-1]
    assert closed.kind == "closed" and (closed.close_code, closed.close_reason) == (4001, "kicked")
    assert closed.connection.origin == "proxy"


async def test_proxy_upstream_ping_gives_s2c_ping_and_c2s_pong(running: Running) -> None:
    recorder = running.subscribe()
    async with ws_connect(running.ws_url("proxy")) as ws:
        assert await exchange(ws, "ping-me") == "pong-received"  # the upstream got its pong
        await wait_until(has_frames(recorder, 4), "four frames")
        assert recorder.frame_summary() == [("c2s", "text", "ping-me"), ("s2c", "ping", UPSTREAM_PING),
                                            ("c2s", "pong", UPSTREAM_PING), ("s2c", "text", "pong-received")]


# --- SSE ---------------------------------------------------------------------------------------------


async def test_sse_mock_emits_one_block_per_event(running: Running) -> None:
    recorder = running.subscribe()
    started = time.time_ns()
    result = await http_stream(running.port, "GET", "/events?from=test", headers=[("X-Test-Header", "sse")])
    assert result.status == 200 and result.body == SSE_MOCK_WIRE
    await wait_until(is_closed(recorder), "connection_closed")
    kinds = [event.kind for event in recorder.events]
    assert kinds == ["opened", *["block"] * len(SSE_MOCK_BLOCKS), "closed"]
    connection = recorder.events[0].connection
    assert (connection.protocol, connection.origin, connection.method, connection.path) == ("sse", "mock", "GET",
                                                                                            "/events")
    assert connection.query == [("from", "test")]
    assert ("x-test-header", "sse") in [(name.lower(), value) for name, value in connection.headers]
    assert all(event.connection is connection for event in recorder.events)
    assert [fields(block) for block in recorder.blocks] == SSE_MOCK_BLOCKS
    stamps = [block.at_ns for block in recorder.blocks]
    assert stamps == sorted(stamps) and started <= connection.opened_ns <= stamps[0]
    assert connection.closed_ns is not None and stamps[-1] <= connection.closed_ns <= time.time_ns()


async def test_proxy_sse_emits_the_parsed_upstream_blocks(running: Running) -> None:
    recorder = running.subscribe()
    result = await http_stream(running.port, "GET", "/up/sse/stream?q=1")
    assert result.status == 200
    assert result.body == b"".join(UPSTREAM_SSE_CHUNKS)  # relayed as the upstream sent it
    await wait_until(is_closed(recorder), "connection_closed")
    assert [event.kind for event in recorder.events] == ["opened", *["block"] * len(UPSTREAM_SSE_BLOCKS), "closed"]
    connection = recorder.events[0].connection
    assert (connection.protocol, connection.origin, connection.method) == ("sse", "proxy", "GET")
    assert (connection.path, connection.query) == ("/up/sse/stream", [("q", "1")])
    assert connection.status == 200
    response_headers = [(name.lower(), value) for name, value in connection.response_headers]
    assert ("x-upstream", "sse-1") in response_headers
    assert ("content-type", "text/event-stream") in response_headers
    assert not connection.request_body
    assert [fields(block) for block in recorder.blocks] == UPSTREAM_SSE_BLOCKS


@pytest.mark.parametrize("body", [b'{"stream": true, "messages": [{"role": "user", "content": "h\xc3\xa9"}]}',
                                  bytes(range(256)) * 1200], ids=["json", "300KB"])
async def test_proxy_sse_post_records_the_request_body(running: Running, body: bytes) -> None:
    recorder = running.subscribe()
    result = await http_stream(running.port, "POST", "/up/sse/chat", body=body,
                               headers=[("Content-Type", "application/json")])
    assert result.status == 201
    assert running.sse_upstream.bodies == [body]
    await wait_until(is_closed(recorder), "connection_closed")
    connection = recorder.events[0].connection
    assert (connection.protocol, connection.origin, connection.method) == ("sse", "proxy", "POST")
    assert connection.status == 201
    assert connection.request_body == body
    assert [fields(block) for block in recorder.blocks] == [sse(type="received", data=str(len(body))),
                                                            sse(data="[DONE]")]
    assert recorder.events[-1].kind == "closed"


async def test_proxy_sse_subscriber_added_mid_stream_gets_blocks_from_then_on(running: Running) -> None:
    early = running.subscribe()
    response = await open_request(running.port, "GET", "/up/sse/gated", SSE_CLIENT_HEADERS)
    try:
        await response.read_until(b"data: first\n\n")
        await wait_until(lambda: len(early.blocks) == 1, "the first block")
        late = running.subscribe()
        running.sse_upstream.gate.set()
        await response.read_body()
    finally:
        await response.close()
    assert response.body == b"data: first\n\ndata: second\n\n"
    await wait_until(is_closed(late), "connection_closed for the late subscriber")
    assert [event.kind for event in late.events] == ["block", "closed"]
    assert [fields(block) for block in late.blocks] == [sse(data="second")]
    assert late.events[-1].connection is early.of("opened")[0].connection
    assert [fields(block) for block in early.blocks] == [sse(data="first"), sse(data="second")]


@pytest.mark.parametrize(("target", "expected_body"), [
    ("/events", SSE_MOCK_WIRE), ("/up/sse/stream", b"".join(UPSTREAM_SSE_CHUNKS)),
], ids=["mock", "proxy"])
async def test_sse_without_subscribers_works(running: Running, target: str, expected_body: bytes) -> None:
    assert not running.server.events.listening
    result = await http_stream(running.port, "GET", target)
    assert (result.status, result.body) == (200, expected_body)
    recorder = running.subscribe()
    again = await http_stream(running.port, "GET", target)
    assert again.body == expected_body
    await wait_until(is_closed(recorder), "connection_closed")
    assert recorder.events[0].kind == "opened"
    assert len(recorder.blocks) == 5
