"""Replaying recordings through the admin API (docs/replay.md, "Replay through the admin API"), black-box
over real sockets.

One ``mockd serve`` process is shared by the module. Before the tests run, the fixture makes real
recordings on it through the admin API (``POST /stream-recordings/start`` ... ``/stop``):

* ``chat`` — a WebSocket scenario mock (subprotocol ``chat.v1``) driven by a ``websockets`` client:
  a JSON text at once, another 150 ms later, a binary frame 150 ms after that, then it waits for a
  client message, answers 100 ms later with a text holding ``{{`` (sent byte for byte), pings, and
  closes with 4000 "done";
* ``sse`` — a GET SSE mock with events 0, 150 and 300 ms after the request (one with two data lines);
* ``post`` — a POST SSE mock (LLM style);
* ``echo`` — 200 messages through an echo mock (200 server frames, then the client closes).

Every timing expectation is taken from the recording itself (``relativeMs`` minus the connection's
opening), never from the nominal delays, and checked with a wide tolerance (``TOLERANCE``): the real
timing figures belong to the benchmark (P4). Each test replays to a path of its own (the ``path``
option) unless it is about the recorded path or a mock's path, so a replay left pending by one test
cannot take another test's client.

Clients are independent of mockd's stack: the ``websockets`` client (with a frame log that sees pings
and close frames), the raw asyncio HTTP/1.1 client of ``upstreams`` for SSE, ``urllib`` (``httpclient``)
and ``curl`` for the admin API. Nothing sleeps in place of synchronisation: tests poll the API with a
deadline or await frames; the only fixed waits are the durations a test measures (a pause, or a window
in which nothing may arrive).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.frames import Opcode

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from httpclient import Reply, acall
from polling import poll_value
from sessions import start_session, stop_session
from sseblocks import field_line
from upstreams import (
    DEADLINE,
    Headers,
    RawResponse,
    RecordingClientConnection,
    SeenFrame,
    exchange,
    open_request,
    open_ws,
    recv,
    server_close,
)

TOLERANCE = 0.025  # s: a replayed frame's arrival vs its recorded offset (wide: the machine is noisy)
PROMPT = 0.2  # s: "at once" for a frame already on the wire, or a reply from an idle admin API
QUIET = 0.3  # s: the window in which a test checks that nothing arrives
PAUSE = 0.4  # s: how long the pause test holds a replay

SUBPROTOCOL = "chat.v1"
WELCOME = '{"type":"welcome","room":"general"}'
TICK = '{"type":"tick","n":1}'
BINARY = bytes([0, 1, 2, 255, 128, 10])
READY = '{"type":"ready"}'  # what the recording's client sent (the scenario's expect)
GOODBYE = '{"type":"goodbye","note":"{{not a template}}"}'
PING_DATA = b"hi"
CLOSE_CODE, CLOSE_REASON = 4000, "done"
DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.CLOSE)  # what a replay sends

STATUS_FIELDS = {"id", "recordingId", "mode", "status", "currentFrame", "totalFrames", "framesSent", "elapsedMs",
                 "mismatches", "error", "client", "path", "nextEntry"}
ADVANCE_FIELDS = {"framesSent", "currentFrame", "totalFrames", "status", "complete"}
UNKNOWN_ID = "01HXYZ123456789ABCDEFGHJKM"  # well-formed, never issued


def send_step(value: str, delay: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "text", "value": value, "template": False}
    if delay is not None:
        message["delay"] = delay
    return {"type": "send", "message": message}


CHAT_SCENARIO = {"name": "chat", "loop": False, "steps": [
    send_step(WELCOME),
    send_step(TICK, "150ms"),
    {"type": "send", "message": {"type": "binary", "value": base64.b64encode(BINARY).decode(), "delay": "150ms"}},
    {"type": "expect", "timeout": "10s"},
    send_step(GOODBYE, "100ms"),
    {"type": "ping", "data": base64.b64encode(PING_DATA).decode()},
    {"type": "close", "code": CLOSE_CODE, "reason": CLOSE_REASON},
]}

SSE_EVENTS = [{"type": "greet", "id": "1", "data": "hello"}, {"data": "line1\nline2"},
              {"type": "end", "id": "3", "data": "bye"}]
POST_EVENTS = [{"data": '{"token":"Hel"}'}, {"data": '{"token":"lo"}'}]
POST_BODY = b'{"model":"m","stream":true}'


def sse_mock(mock_id: str, method: str, path: str, events: list[dict[str, Any]],
             delays: list[int]) -> dict[str, Any]:
    return {"id": mock_id, "type": "http", "http": {"matcher": {"method": method, "path": path},
                                                    "sse": {"events": events, "timing": {"perEventDelays": delays}}}}


CONFIG = mocks_config(
    ws_mock("chat", "/ws/chat", subprotocols=[SUBPROTOCOL], scenario=CHAT_SCENARIO),
    ws_mock("echo", "/ws/echo"),
    # a mock that answers differently from every replay: shows who served a client
    ws_mock("play", "/ws/play", subprotocols=[SUBPROTOCOL],
            scenario={"name": "mock", "steps": [send_step("from-mock")]}),
    sse_mock("events", "GET", "/events", SSE_EVENTS, [0, 150, 150]),
    sse_mock("llm", "POST", "/llm", POST_EVENTS, [0, 100]),
    sse_mock("sse-play", "GET", "/sse/play", [{"data": "from-mock"}], [0]),
)


# --- the admin API ----------------------------------------------------------------------------------


async def admin(server: RunningMockd, method: str, path: str, body: Any = None, **options: Any) -> Reply:
    return await acall(method, server.admin_url + path, body, **options)


async def start_replay(server: RunningMockd, recording_id: str, **options: Any) -> str:
    reply = await admin(server, "POST", f"/stream-recordings/{recording_id}/replay", options)
    assert reply.status == 201, reply.text
    body = reply.json()
    assert set(body) == {"sessionId", "status"} and body["status"] == "pending", body
    assert isinstance(body["sessionId"], str) and body["sessionId"]
    return str(body["sessionId"])


async def replay_status(server: RunningMockd, replay_id: str) -> dict[str, Any]:
    reply = await admin(server, "GET", f"/replay/{replay_id}")
    assert reply.status == 200, reply.text
    status: dict[str, Any] = reply.json()
    return status


async def wait_replay(server: RunningMockd, replay_id: str, condition: Callable[[dict[str, Any]], bool],
                      what: str, timeout: float = DEADLINE) -> dict[str, Any]:
    """Poll ``GET /replay/{id}`` until ``condition`` holds; fail naming ``what`` after ``timeout``."""
    status = await poll_value(lambda: replay_status(server, replay_id), condition, timeout, interval=0.01)
    assert condition(status), f"replay {replay_id} never became {what}; last status: {status}"
    return status


def has_status(*values: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status["status"] in values


async def advance(server: RunningMockd, replay_id: str, body: Any = None) -> Reply:
    """``POST /replay/{id}/advance``; ``body`` None sends no body at all."""
    return await admin(server, "POST", f"/replay/{replay_id}/advance", body)


async def settle_session(server: RunningMockd, recording_id: str, frames: int) -> None:
    """Wait until the session has taken in ``frames`` frames, then read it once: the live recording
    answers 200 with them (a ping or pong from the client, whose payload aiohttp hands over as a
    ``bytearray``, once made the flush raise and this read answer 500)."""
    async def frame_counts() -> list[int]:
        sessions = (await admin(server, "GET", "/stream-recordings/sessions")).json()
        return [item["frameCount"] for item in sessions if item["id"] == recording_id]

    def enough(counts: list[int]) -> bool:
        return bool(counts) and counts[0] >= frames

    counts = await poll_value(frame_counts, enough, DEADLINE, interval=0.01)
    assert enough(counts), f"session {recording_id} took in {counts} frames, {frames} expected"
    live = await admin(server, "GET", f"/stream-recordings/{recording_id}")
    assert live.status == 200, live.text
    assert len(live.json()["websocket"]["frames"]) >= frames


def unique_path(prefix: str = "/replayed") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


# --- what a recording says a replay must send -------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A server frame or SSE event of the recording, with its offset from the connection's opening."""

    item: dict[str, Any]
    offset: float  # seconds, unscaled

    @property
    def opcode(self) -> Opcode:
        return {"text": Opcode.TEXT, "binary": Opcode.BINARY, "ping": Opcode.PING,
                "close": Opcode.CLOSE}[self.item["type"]]

    @property
    def payload(self) -> bytes:
        """The frame's payload on the wire."""
        kind, data = self.item["type"], self.item["data"]
        if kind == "text":
            return str(data).encode()
        if kind == "close":
            return int(self.item["closeCode"]).to_bytes(2, "big") + str(self.item.get("closeReason", "")).encode()
        return base64.b64decode(data)


def entries(recording: dict[str, Any]) -> list[dict[str, Any]]:
    section = recording.get("websocket") or recording.get("sse") or {}
    items: list[dict[str, Any]] = section.get("frames", section.get("events", []))
    return items


def opened_ms(recording: dict[str, Any], connection: int) -> int:
    return next(int(record["relativeMs"]) for record in recording["connections"]
                if record["connection"] == connection)


def server_items(recording: dict[str, Any]) -> list[Expected]:
    """What a replay sends, for the first connection with frames: server text,
    binary and ping frames and a close the server started (never a pong, nor the answer to a client
    close), or every SSE event."""
    items = entries(recording)
    number = items[0].get("connection", 1)
    opened = opened_ms(recording, number)
    chosen: list[Expected] = []
    for item in items:
        if item.get("connection", 1) != number:
            continue
        if recording["protocol"] == "sse":
            chosen.append(Expected(item, (item["relativeMs"] - opened) / 1000))
            continue
        if item["direction"] == "c2s" and item["type"] == "close":
            break
        if item["direction"] == "s2c" and item["type"] in ("text", "binary", "ping", "close"):
            chosen.append(Expected(item, (item["relativeMs"] - opened) / 1000))
            if item["type"] == "close":
                break
    return chosen


def server_positions(recording: dict[str, Any]) -> list[int]:
    """Where each of :func:`server_items` is among all the recording's entries (``nextEntry``)."""
    items = entries(recording)
    return [next(index for index, item in enumerate(items) if item is expected.item)
            for expected in server_items(recording)]


def first_client_message(recording: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(1-based step number in a synchronized replay, the frame) of the recording's first client message."""
    step = 0
    for item in entries(recording):
        if item["direction"] == "s2c" and item["type"] in ("text", "binary", "ping", "close"):
            step += 1
        elif item["direction"] == "c2s" and item["type"] in ("text", "binary"):
            return step + 1, item
    raise AssertionError("the recording has no client message")


def frame_summary(recording: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(type, data, closeCode, closeReason) of what a replay of ``recording`` sends, for comparisons."""
    return [(e.item["type"], e.item.get("data"), e.item.get("closeCode"), e.item.get("closeReason"))
            for e in server_items(recording)]


def sse_fields(item: dict[str, Any]) -> tuple[Any, ...]:
    """An SSE event's fields; a data block without a type is a ``message`` (clients treat them alike)."""
    kind = item.get("type") if item.get("type") is not None else ("message" if item.get("data") is not None else None)
    return (kind, item.get("data"), item.get("id"), item.get("retry"), item.get("comment"))


# --- recordings made by the fixture -----------------------------------------------------------------


@dataclass
class World:
    server: RunningMockd
    chat: dict[str, Any]
    sse: dict[str, Any]
    post: dict[str, Any]
    echo: dict[str, Any]


@asynccontextmanager
async def ws_client(server: RunningMockd, path: str, **options: Any) -> AsyncIterator[RecordingClientConnection]:
    """A ``websockets`` client offering the recorded subprotocol, logging every frame it receives."""
    settings = {"subprotocols": [SUBPROTOCOL], "create_connection": RecordingClientConnection, **options}
    async with open_ws(server.ws_url(path), **settings) as ws:
        assert isinstance(ws, RecordingClientConnection)
        yield ws


async def record_chat(server: RunningMockd) -> dict[str, Any]:
    recording_id = await start_session(server, "websocket", "/ws/chat", "chat-session")
    async with ws_client(server, "/ws/chat") as ws:
        assert [await recv(ws) for _ in range(3)] == [WELCOME, TICK, BINARY]
        await ws.send(READY)
        messages, close = await server_close(ws)
        assert messages == [GOODBYE] and (close.code, close.reason) == (CLOSE_CODE, CLOSE_REASON)
        await ws.log.wait_opcode(Opcode.PING)
    # 6 server frames, the client's message, its pong and its close
    await settle_session(server, recording_id, 9)
    return await stop_session(server, recording_id)


async def record_echo(server: RunningMockd) -> dict[str, Any]:
    recording_id = await start_session(server, "websocket", "/ws/echo", "echo-200")
    async with open_ws(server.ws_url("/ws/echo")) as ws:
        for number in range(200):
            assert await exchange(ws, f"m{number:03d}") == f"m{number:03d}"
    return await stop_session(server, recording_id)


async def record_sse(server: RunningMockd, method: str, path: str, body: bytes | None) -> dict[str, Any]:
    recording_id = await start_session(server, "sse", path, f"sse {method} {path}")
    headers: Headers = [("Accept", "text/event-stream")]
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    response = await open_request(server.mock_port, method, path, headers, body)
    try:
        await response.read_body()
        assert response.complete
    finally:
        await response.close()
    return await stop_session(server, recording_id)


async def make_recordings(server: RunningMockd) -> World:
    return World(server, chat=await record_chat(server), sse=await record_sse(server, "GET", "/events", None),
                 post=await record_sse(server, "POST", "/llm", POST_BODY), echo=await record_echo(server))


@pytest.fixture(scope="module")
def world(mockd_module: MockdFactory) -> Iterator[World]:
    server = mockd_module.start(CONFIG)
    made = asyncio.run(make_recordings(server))
    # the recordings are what the tests below take them to be
    assert [(e.item["type"], e.payload) for e in server_items(made.chat)] == [
        ("text", WELCOME.encode()), ("text", TICK.encode()), ("binary", BINARY), ("text", GOODBYE.encode()),
        ("ping", PING_DATA), ("close", CLOSE_CODE.to_bytes(2, "big") + CLOSE_REASON.encode())]
    assert made.chat["websocket"]["subprotocol"] == SUBPROTOCOL
    assert first_client_message(made.chat)[1]["data"] == READY
    assert [sse_fields(e.item)[:3] for e in server_items(made.sse)] == [
        ("greet", "hello", "1"), ("message", "line1\nline2", None), ("end", "bye", "3")]
    assert [e.item["data"] for e in server_items(made.post)] == [event["data"] for event in POST_EVENTS]
    assert len(server_items(made.echo)) == 200
    yield made


@pytest.fixture
def server(world: World) -> RunningMockd:
    return world.server


# --- reading what a replay sends --------------------------------------------------------------------


def sent_frames(ws: RecordingClientConnection) -> list[SeenFrame]:
    return ws.log.of(*DATA_OPCODES)


async def wait_frames(ws: RecordingClientConnection, count: int, timeout: float = DEADLINE) -> list[SeenFrame]:
    """The first ``count`` frames of the kinds a replay sends, once they have arrived."""
    async def scan() -> list[SeenFrame]:
        while len(sent_frames(ws)) < count:
            await ws.log.wait_for(lambda frame: frame.opcode in DATA_OPCODES and len(sent_frames(ws)) >= count)
        return sent_frames(ws)[:count]

    return await asyncio.wait_for(scan(), timeout)


async def nothing_arrives(ws: RecordingClientConnection, after: int, window: float = QUIET) -> None:
    """No frame beyond the first ``after`` arrives within ``window`` seconds."""
    with pytest.raises(TimeoutError):
        await wait_frames(ws, after + 1, window)


def now() -> float:
    return asyncio.get_running_loop().time()


def assert_on_schedule(frames: list[tuple[float, Expected]], start: float, scale: float,
                       shift: Callable[[int], tuple[float, float]] = lambda _: (0.0, 0.0)) -> None:
    """Each (arrival, expected) arrived at ``start`` + its offset x ``scale`` (+ the ``shift`` range of
    frame i, for a pause), within ``TOLERANCE``."""
    for index, (arrival, expected) in enumerate(frames):
        low, high = shift(index)
        due = expected.offset * scale
        observed = arrival - start
        assert due + low - TOLERANCE <= observed <= due + high + TOLERANCE, (
            f"frame {index} ({expected.item['type']}) arrived {observed * 1000:.1f} ms after connect, "
            f"due at {due * 1000:.1f} ms (+{low * 1000:.1f}..{high * 1000:.1f} ms paused)")


@dataclass
class SeenEvent:
    at: float
    lines: list[str]

    @property
    def fields(self) -> tuple[Any, ...]:
        values: dict[str, list[str]] = {}
        for line in self.lines:
            name, value = field_line(line)
            values.setdefault(name, []).append(value)
        retry = values.get("retry", [None])[-1]
        return sse_fields({"type": values.get("event", [None])[-1],
                           "data": "\n".join(values["data"]) if "data" in values else None,
                           "id": values.get("id", [None])[-1], "retry": None if retry is None else int(retry),
                           "comment": "\n".join(values[""]) if "" in values else None})


@dataclass
class SseClient:
    """Reads an SSE response in the background, stamping each block with the time it arrived."""

    response: RawResponse
    events: list[SeenEvent] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        buffer = b""
        try:
            async for piece in self.response.iter_body():
                at = now()
                buffer += piece
                while (end := re.search(rb"\r\n\r\n|\n\n|\r\r", buffer)) is not None:
                    block, buffer = buffer[:end.start()], buffer[end.end():]
                    self.events.append(SeenEvent(at, re.split(r"\r\n|\r|\n", block.decode())))
                    self._changed.set()
        finally:
            self.ended.set()
            self._changed.set()

    async def wait_events(self, count: int, timeout: float = DEADLINE) -> list[SeenEvent]:
        async def scan() -> list[SeenEvent]:
            while len(self.events) < count:
                if self.ended.is_set():
                    raise AssertionError(f"the stream ended after {len(self.events)} events, {count} expected")
                self._changed.clear()
                await self._changed.wait()
            return self.events[:count]

        return await asyncio.wait_for(scan(), timeout)

    async def wait_end(self, timeout: float = DEADLINE) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)
        assert self.response.complete, "the stream was cut instead of ending"

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.response.close()


@asynccontextmanager
async def sse_client(server: RunningMockd, path: str, method: str = "GET",
                     body: bytes | None = None) -> AsyncIterator[SseClient]:
    headers: Headers = [("Accept", "text/event-stream")]
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    response = await open_request(server.mock_port, method, path, headers, body)
    client = SseClient(response)
    client.start()
    try:
        yield client
    finally:
        await client.close()


# --- starting a replay, and its status --------------------------------------------------------------


async def test_replay_answers_201_pending_and_its_status_object_has_every_field(world: World,
                                                                               server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path)
    status = await replay_status(server, replay_id)
    assert set(status) == STATUS_FIELDS
    assert {key: status[key] for key in STATUS_FIELDS - {"elapsedMs"}} == {
        "id": replay_id, "recordingId": world.chat["id"], "mode": "triggered", "status": "pending",
        "currentFrame": 0, "totalFrames": len(server_items(world.chat)), "framesSent": 0, "mismatches": 0,
        "error": None, "client": None, "path": path, "nextEntry": server_positions(world.chat)[0]}
    assert isinstance(status["elapsedMs"], int) and status["elapsedMs"] >= 0
    listing = await admin(server, "GET", "/replay")
    assert listing.status == 200
    listed = [item for item in listing.json() if item["id"] == replay_id]
    assert len(listed) == 1 and set(listed[0]) == STATUS_FIELDS
    assert {key: listed[0][key] for key in STATUS_FIELDS - {"elapsedMs"}} == {
        key: status[key] for key in STATUS_FIELDS - {"elapsedMs"}}
    async with ws_client(server, path) as ws:
        bound = await wait_replay(server, replay_id, lambda s: s["client"] is not None, "bound to a client")
        host, port = ws.local_address[:2]
        assert bound["client"] == f"{host}:{port}"
        assert bound["status"] == "playing"
        first = bound["elapsedMs"]
        later = await wait_replay(server, replay_id, lambda s: s["elapsedMs"] > first, "older (elapsedMs is live)")
        assert later["framesSent"] == 0  # triggered: nothing without an advance
    assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204


async def test_replay_list_is_an_empty_array_when_there_are_no_replays(mockd: MockdFactory) -> None:
    fresh = mockd.start(mocks_config())
    reply = await admin(fresh, "GET", "/replay")
    assert reply.status == 200
    assert reply.headers.get_content_type() == "application/json"
    assert reply.json() == []


async def test_an_empty_body_means_the_defaults_pure_at_scale_one(world: World, server: RunningMockd) -> None:
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/{world.chat['id']}/replay", raw=b"")
    assert reply.status == 201, reply.text
    replay_id = reply.json()["sessionId"]
    status = await replay_status(server, replay_id)
    assert (status["mode"], status["status"]) == ("pure", "pending")
    assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204  # it is on /ws/chat


# --- binding: the next client on the path, one client, the recorded subprotocol ----------------------


async def test_replay_binds_the_next_client_ahead_of_the_mock_and_only_that_one(world: World,
                                                                              server: RunningMockd) -> None:
    async with ws_client(server, "/ws/play") as earlier:  # already connected: never taken by a later replay
        assert await recv(earlier) == "from-mock"
        replay_id = await start_replay(server, world.chat["id"], path="/ws/play", timingScale=0)
        assert (await replay_status(server, replay_id))["status"] == "pending"
        async with ws_client(server, "/ws/play") as first:
            assert first.subprotocol == SUBPROTOCOL
            assert await recv(first) == WELCOME
            async with ws_client(server, "/ws/play") as second:
                assert await recv(second) == "from-mock"
            frames = await wait_frames(first, len(server_items(world.chat)))
            assert frames[-1].opcode is Opcode.CLOSE
        status = await wait_replay(server, replay_id, has_status("complete"), "complete")
        assert status["client"] == "{}:{}".format(*first.local_address[:2])
    async with ws_client(server, "/ws/play") as after:  # the replay is used up
        assert await recv(after) == "from-mock"


async def test_replay_waits_on_the_recorded_path_by_default(world: World, server: RunningMockd) -> None:
    replay_id = await start_replay(server, world.chat["id"], timingScale=0)
    async with ws_client(server, world.chat["metadata"]["path"]) as ws:
        # the mock on /ws/chat would wait for a client message before the goodbye; the replay does not
        frames = await wait_frames(ws, len(server_items(world.chat)))
        assert [frame.data for frame in frames if frame.opcode is Opcode.TEXT] == [
            WELCOME.encode(), TICK.encode(), GOODBYE.encode()]
    assert (await wait_replay(server, replay_id, has_status("complete"), "complete"))["client"] is not None


@pytest.mark.parametrize("offer", [[SUBPROTOCOL], ["other.v2", SUBPROTOCOL]], ids=["only", "among-others"])
async def test_replay_negotiates_the_recorded_subprotocol(world: World, server: RunningMockd,
                                                         offer: list[str]) -> None:
    path = unique_path("/ws")
    await start_replay(server, world.chat["id"], path=path, timingScale=0)
    async with ws_client(server, path, subprotocols=offer) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        assert await recv(ws) == WELCOME


# --- pure mode --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
async def test_pure_replay_sends_byte_exact_frames_at_their_recorded_offsets(world: World, server: RunningMockd,
                                                                            scale: float) -> None:
    expected = server_items(world.chat)
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="pure", timingScale=scale, path=path)
    async with ws_client(server, path) as ws:
        start = now()
        await wait_frames(ws, 1)
        await ws.send("client chatter is read and ignored in pure mode")
        frames = await wait_frames(ws, len(expected))
        await asyncio.wait_for(ws.wait_closed(), DEADLINE)
    assert [(frame.opcode, frame.data) for frame in frames] == [(e.opcode, e.payload) for e in expected]
    assert len(sent_frames(ws)) == len(expected)  # nothing after the recorded close
    close = frames[-1].close()
    assert close is not None and (close.code, close.reason) == (CLOSE_CODE, CLOSE_REASON)
    # the goodbye came at its offset although this client never sent the recorded message
    assert_on_schedule([(frame.at, e) for frame, e in zip(frames, expected)], start, scale)
    status = await wait_replay(server, replay_id, has_status("complete"), "complete")
    assert (status["framesSent"], status["currentFrame"], status["totalFrames"]) == (len(expected),) * 3
    assert status["error"] is None and status["elapsedMs"] >= int(expected[-1].offset * scale * 1000) - 25


async def test_pure_replay_at_scale_zero_sends_everything_without_delay(world: World, server: RunningMockd) -> None:
    expected = server_items(world.chat)
    assert expected[-1].offset > 0.3  # the recording spans 400 ms
    path = unique_path("/ws")
    await start_replay(server, world.chat["id"], timingScale=0, path=path)
    async with ws_client(server, path) as ws:
        start = now()
        frames = await wait_frames(ws, len(expected))
    assert [(frame.opcode, frame.data) for frame in frames] == [(e.opcode, e.payload) for e in expected]
    assert frames[-1].at - start <= 0.1  # all of it at once, not spread over the recorded 400 ms


async def test_pause_and_resume_shift_the_rest_of_the_schedule_by_the_paused_time(world: World,
                                                                                 server: RunningMockd) -> None:
    expected = server_items(world.chat)
    assert expected[1].offset >= 0.1  # the second frame is due well after the first
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], path=path)
    async with ws_client(server, path) as ws:
        start = now()
        await wait_frames(ws, 1)
        pause_sent = now()
        paused = await admin(server, "POST", f"/replay/{replay_id}/pause")
        pause_done = now()
        assert paused.status == 200, paused.text
        assert set(paused.json()) == STATUS_FIELDS and paused.json()["status"] == "paused"
        await nothing_arrives(ws, 1, PAUSE)  # the second frame was due during the pause
        assert (await replay_status(server, replay_id))["status"] == "paused"
        resume_sent = now()
        resumed = await admin(server, "POST", f"/replay/{replay_id}/resume")
        resume_done = now()
        assert resumed.status == 200, resumed.text
        assert resumed.json()["status"] == "playing"
        frames = await wait_frames(ws, len(expected))
    assert [(frame.opcode, frame.data) for frame in frames] == [(e.opcode, e.payload) for e in expected]
    # the paused time lies between (resume sent - pause answered) and (resume answered - pause sent)
    shift = (resume_sent - pause_done, resume_done - pause_sent)
    assert_on_schedule([(frame.at, e) for frame, e in zip(frames, expected)], start, 1.0,
                       lambda index: (0.0, 0.0) if index == 0 else shift)
    status = await wait_replay(server, replay_id, has_status("complete"), "complete")
    assert status["framesSent"] == len(expected)


async def test_pause_on_a_finished_replay_is_409(world: World, server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], timingScale=0, path=path)
    async with ws_client(server, path) as ws:
        await wait_frames(ws, len(server_items(world.chat)))
    await wait_replay(server, replay_id, has_status("complete"), "complete")
    for action in ("pause", "resume"):
        reply = await admin(server, "POST", f"/replay/{replay_id}/{action}")
        assert reply.status == 409, (action, reply.text)
        assert "error" in reply.json()
    assert (await replay_status(server, replay_id))["status"] == "complete"


@pytest.mark.parametrize("mode, action", [("triggered", "pause"), ("pure", "resume")],
                         ids=["pause-triggered", "resume-not-paused"])
async def test_pause_and_resume_in_the_wrong_mode_or_state_are_409(world: World, server: RunningMockd,
                                                                   mode: str, action: str) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode=mode, timingScale=10, path=path)
    async with ws_client(server, path):
        await wait_replay(server, replay_id, has_status("playing"), "playing")
        reply = await admin(server, "POST", f"/replay/{replay_id}/{action}")
        assert reply.status == 409, reply.text
        assert (await replay_status(server, replay_id))["status"] == "playing"
        assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204


# --- synchronized mode ------------------------------------------------------------------------------


async def test_synchronized_replay_waits_for_any_client_message_then_keeps_the_server_think_time(
        world: World, server: RunningMockd) -> None:
    expected = server_items(world.chat)
    step, message = first_client_message(world.chat)
    before = step - 1  # server frames before the client message
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="synchronized", path=path)
    async with ws_client(server, path) as ws:
        start = now()
        frames = await wait_frames(ws, before)
        assert_on_schedule([(frame.at, e) for frame, e in zip(frames, expected)], start, 1.0)
        waiting = await wait_replay(server, replay_id, has_status("waiting"), "waiting")
        assert waiting["framesSent"] == before
        assert len(sent_frames(ws)) == before
        sent_at = now()
        await ws.send("anything at all (loose matching)")
        frames = await wait_frames(ws, len(expected))
    assert [(frame.opcode, frame.data) for frame in frames] == [(e.opcode, e.payload) for e in expected]
    # the frames after the client message keep their recorded delay since that message
    think = [(frames[i].at, Expected(expected[i].item, expected[i].offset - (message["relativeMs"]
                                                                             - opened_ms(world.chat, 1)) / 1000))
             for i in range(before, len(expected))]
    assert_on_schedule(think, sent_at, 1.0)
    close = frames[-1].close()
    assert close is not None and (close.code, close.reason) == (CLOSE_CODE, CLOSE_REASON)
    status = await wait_replay(server, replay_id, has_status("complete"), "complete")
    assert (status["mismatches"], status["framesSent"], status["error"]) == (0, len(expected), None)


async def test_synchronized_strict_counts_a_different_message_and_keeps_waiting(world: World,
                                                                               server: RunningMockd) -> None:
    expected = server_items(world.chat)
    before = first_client_message(world.chat)[0] - 1
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="synchronized", strictMatching=True,
                                   timingScale=0, path=path)
    async with ws_client(server, path) as ws:
        await wait_frames(ws, before)
        await wait_replay(server, replay_id, has_status("waiting"), "waiting")
        await ws.send('{"type":"not ready"}')
        status = await wait_replay(server, replay_id, lambda s: s["mismatches"] == 1, "one mismatch")
        assert status["status"] == "waiting"
        await nothing_arrives(ws, before)
        await ws.send(READY.encode())  # the same bytes as a binary message: not the recorded text message
        await wait_replay(server, replay_id, lambda s: s["mismatches"] == 2, "two mismatches")
        await ws.send(READY)
        frames = await wait_frames(ws, len(expected))
    assert [(frame.opcode, frame.data) for frame in frames] == [(e.opcode, e.payload) for e in expected]
    status = await wait_replay(server, replay_id, has_status("complete"), "complete")
    assert (status["mismatches"], status["framesSent"]) == (2, len(expected))


async def test_synchronized_timeout_ends_in_error_and_closes_with_1008(world: World, server: RunningMockd) -> None:
    step = first_client_message(world.chat)[0]
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="synchronized", timeout=300, timingScale=0,
                                   path=path)
    async with ws_client(server, path) as ws:
        frames = await wait_frames(ws, step - 1)
        waiting_from = frames[-1].at
        _, close = await server_close(ws)
        assert close.code == 1008
        closed_at = (await ws.log.wait_opcode(Opcode.CLOSE)).at
    assert closed_at - waiting_from >= 0.3 - TOLERANCE
    status = await wait_replay(server, replay_id, has_status("error"), "error")
    assert status["error"] == f"timeout waiting for client frame {step}"
    assert status["framesSent"] == step - 1


# --- triggered mode ---------------------------------------------------------------------------------


async def test_triggered_replay_sends_only_what_advance_asks_and_answers_once_it_is_on_the_wire(
        world: World, server: RunningMockd) -> None:
    expected = server_items(world.chat)
    total = len(expected)
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path)
    early = await advance(server, replay_id)
    assert early.status == 409 and early.json()["error"] == "no_client", early.text
    async with ws_client(server, path) as ws:
        await wait_replay(server, replay_id, lambda s: s["client"] is not None, "bound")
        await nothing_arrives(ws, 0)

        steps: list[tuple[Any, int]] = [(None, 1), ({"until": "goodbye"}, 3), ({"count": 2}, 2)]
        sent = 0
        for body, count in steps:
            reply = await advance(server, replay_id, body)
            assert reply.status == 200, reply.text
            answer = reply.json()
            sent += count
            assert set(answer) == ADVANCE_FIELDS
            assert (answer["framesSent"], answer["currentFrame"], answer["totalFrames"], answer["complete"]) == (
                count, sent, total, sent == total), (body, answer)
            if sent < total:
                assert answer["status"] == "playing"
            frames = await wait_frames(ws, sent, PROMPT)  # already on the wire when the answer came
            assert len(sent_frames(ws)) == sent, body
            following = server_positions(world.chat)[sent] if sent < total else None
            assert (await replay_status(server, replay_id))["nextEntry"] == following, body
        assert [(frame.opcode, frame.data) for frame in frames] == [(e.opcode, e.payload) for e in expected]
        await asyncio.wait_for(ws.wait_closed(), DEADLINE)
    status = await wait_replay(server, replay_id, has_status("complete"), "complete")
    assert status["framesSent"] == total
    assert status["nextEntry"] is None
    again = await advance(server, replay_id, {"count": 3})
    assert again.status == 200, again.text
    assert again.json()["framesSent"] == 0 and again.json()["complete"] is True


async def test_auto_advance_on_connect_sends_the_first_frame_at_once(world: World, server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", autoAdvanceOnConnect=True,
                                   path=path)
    async with ws_client(server, path) as ws:
        start = now()
        first = await wait_frames(ws, 1)
        assert first[0].data == WELCOME.encode() and first[0].at - start <= PROMPT
        await nothing_arrives(ws, 1)
        assert (await replay_status(server, replay_id))["framesSent"] == 1
        reply = await advance(server, replay_id)
        assert reply.json()["framesSent"] == 1 and reply.json()["currentFrame"] == 2
        assert (await wait_frames(ws, 2, PROMPT))[1].data == TICK.encode()
    assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204


@pytest.mark.parametrize("mode", ["pure", "synchronized"])
async def test_advance_on_a_replay_that_is_not_triggered_is_400(world: World, server: RunningMockd,
                                                                mode: str) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], mode=mode, timingScale=10, path=path)
    async with ws_client(server, path) as ws:
        await wait_frames(ws, 1)
        reply = await advance(server, replay_id)
        assert reply.status == 400, reply.text
        assert "error" in reply.json()
        assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204


async def test_two_hundred_advances_in_a_row_stay_fast(world: World, server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.echo["id"], mode="triggered", path=path)
    async with ws_client(server, path, subprotocols=None) as ws:
        await wait_replay(server, replay_id, lambda s: s["client"] is not None, "bound")
        began = time.monotonic()
        for number in range(200):
            reply = await advance(server, replay_id)
            assert reply.status == 200 and reply.json()["framesSent"] == 1, reply.text
            assert await recv(ws, PROMPT) == f"m{number:03d}"
        average = (time.monotonic() - began) / 200
    assert average < 0.1, f"{average * 1000:.1f} ms per advance"
    assert reply.json()["complete"] is True  # the client's close and the server's answer are not frames to send
    assert (await wait_replay(server, replay_id, has_status("complete"), "complete"))["totalFrames"] == 200


# --- SSE --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5])
async def test_pure_sse_replay_writes_the_recorded_events_at_their_offsets(world: World, server: RunningMockd,
                                                                          scale: float) -> None:
    expected = server_items(world.sse)
    path = unique_path("/sse")
    replay_id = await start_replay(server, world.sse["id"], timingScale=scale, path=path)
    async with sse_client(server, path) as client:
        assert client.response.status == 200
        assert (client.response.value("Content-Type") or "").startswith("text/event-stream")
        events = await client.wait_events(len(expected))
        await client.wait_end()
        start = client.response.head_at
    assert [event.fields for event in client.events] == [sse_fields(e.item) for e in expected]
    assert_on_schedule([(event.at, e) for event, e in zip(events, expected)], start, scale)
    status = await wait_replay(server, replay_id, has_status("complete"), "complete")
    assert status["framesSent"] == status["totalFrames"] == len(expected)


async def test_triggered_sse_replay_writes_one_event_per_advance_then_ends(world: World,
                                                                          server: RunningMockd) -> None:
    expected = server_items(world.sse)
    path = unique_path("/sse")
    replay_id = await start_replay(server, world.sse["id"], mode="triggered", path=path)
    async with sse_client(server, path) as client:
        await wait_replay(server, replay_id, lambda s: s["client"] is not None, "bound")
        with pytest.raises(TimeoutError):
            await client.wait_events(1, QUIET)
        for count in range(1, len(expected) + 1):
            reply = await advance(server, replay_id)
            assert reply.status == 200, reply.text
            assert (reply.json()["framesSent"], reply.json()["currentFrame"]) == (1, count)
            await client.wait_events(count, PROMPT)
            assert len(client.events) == count
        assert reply.json()["complete"] is True
        await client.wait_end()
    assert [event.fields for event in client.events] == [sse_fields(e.item) for e in expected]


async def test_a_post_recorded_stream_binds_only_a_post_request(world: World, server: RunningMockd) -> None:
    assert world.post["sse"].get("request", {}).get("method", world.post["metadata"].get("method")) == "POST"
    expected = server_items(world.post)
    replay_id = await start_replay(server, world.post["id"], timingScale=0, path="/sse/play")
    async with sse_client(server, "/sse/play") as get:  # a GET is served by the mock there
        await get.wait_end()
    assert [event.fields[1] for event in get.events] == ["from-mock"]
    assert (await replay_status(server, replay_id))["status"] == "pending"
    async with sse_client(server, "/sse/play", "POST", POST_BODY) as post:
        await post.wait_end()
    assert [event.fields for event in post.events] == [sse_fields(e.item) for e in expected]
    assert (await wait_replay(server, replay_id, has_status("complete"), "complete"))["client"] is not None


async def test_an_sse_replay_goes_ahead_of_the_mock_on_its_path(world: World, server: RunningMockd) -> None:
    replay_id = await start_replay(server, world.sse["id"], timingScale=0, path="/sse/play")
    async with sse_client(server, "/sse/play") as first, sse_client(server, "/sse/play") as second:
        await first.wait_end()
        await second.wait_end()
    assert [event.fields[1] for event in first.events] == [e.item["data"] for e in server_items(world.sse)]
    assert [event.fields[1] for event in second.events] == ["from-mock"]
    await wait_replay(server, replay_id, has_status("complete"), "complete")


# --- DELETE -----------------------------------------------------------------------------------------


async def test_delete_aborts_a_running_replay_and_closes_its_client_with_1001(world: World,
                                                                            server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], timingScale=20, path=path)
    async with ws_client(server, path) as ws:
        await wait_frames(ws, 1)
        reply = await admin(server, "DELETE", f"/replay/{replay_id}")
        assert reply.status == 204 and reply.body == b""
        _, close = await server_close(ws)
        assert close.code == 1001
        assert [frame.opcode for frame in sent_frames(ws)] == [Opcode.TEXT, Opcode.CLOSE]
    status = await replay_status(server, replay_id)
    assert status["status"] == "aborted" and status["framesSent"] == 1
    listed = [item for item in (await admin(server, "GET", "/replay")).json() if item["id"] == replay_id]
    assert [item["status"] for item in listed] == ["aborted"]


async def test_delete_a_pending_replay_and_no_client_gets_it(world: World, server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], path=path)
    assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204
    assert (await replay_status(server, replay_id))["status"] == "aborted"
    with pytest.raises(InvalidStatus) as refused:  # nothing else serves this path
        async with ws_client(server, path):
            pass
    assert refused.value.response.status_code == 404


async def test_finished_replays_stay_readable_with_their_final_status(world: World, server: RunningMockd) -> None:
    outcomes: dict[str, str] = {}
    path = unique_path("/ws")
    outcomes[await start_replay(server, world.chat["id"], timingScale=0, path=path)] = "complete"
    async with ws_client(server, path) as ws:
        await wait_frames(ws, len(server_items(world.chat)))
    path = unique_path("/ws")
    outcomes[await start_replay(server, world.chat["id"], mode="synchronized", timeout=100, timingScale=0,
                                path=path)] = "error"
    async with ws_client(server, path) as ws:
        await server_close(ws)
    for replay_id, final in outcomes.items():
        await wait_replay(server, replay_id, has_status(final), final)
    listing = {item["id"]: item for item in (await admin(server, "GET", "/replay")).json()}
    for replay_id, final in outcomes.items():
        assert listing[replay_id]["status"] == final
        assert (await replay_status(server, replay_id))["status"] == final


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("recording, body, status", [
    ("unknown", {}, 404),
    ("chat", {"mode": "bogus"}, 400),
    ("chat", {"timingScale": -1}, 400),
    ("chat", {"timingScale": "fast"}, 400),
    ("chat", {"unknownOption": True}, 400),
    ("chat", {"mode": "synchronized", "timeout": 0}, 400),
    ("chat", {"connection": 42}, 400),
    ("sse", {"mode": "synchronized"}, 400),
], ids=["unknown-recording", "bad-mode", "negative-scale", "scale-not-a-number", "unknown-option", "zero-timeout",
        "unknown-connection", "synchronized-sse"])
async def test_starting_a_replay_is_refused(world: World, server: RunningMockd, recording: str, body: dict[str, Any],
                                           status: int) -> None:
    recording_id = UNKNOWN_ID if recording == "unknown" else getattr(world, recording)["id"]
    before = {item["id"] for item in (await admin(server, "GET", "/replay")).json()}
    reply = await admin(server, "POST", f"/stream-recordings/{recording_id}/replay", body)
    assert reply.status == status, reply.text
    assert set(reply.json()) >= {"error", "message"}
    assert {item["id"] for item in (await admin(server, "GET", "/replay")).json()} == before


@pytest.mark.parametrize("method, suffix", [("GET", ""), ("DELETE", ""), ("POST", "/advance"), ("POST", "/pause"),
                                            ("POST", "/resume")])
async def test_an_unknown_replay_is_404(server: RunningMockd, method: str, suffix: str) -> None:
    reply = await admin(server, method, f"/replay/{UNKNOWN_ID}{suffix}")
    assert reply.status == 404, reply.text
    assert reply.json()["error"] == "not_found"


# --- a replay is recorded like any other connection -------------------------------------------------


async def test_a_replayed_websocket_is_recorded_with_origin_replay_and_the_same_server_frames(
        world: World, server: RunningMockd) -> None:
    path = unique_path("/ws")
    session = await start_session(server, "websocket", path, "round trip")
    replay_id = await start_replay(server, world.chat["id"], timingScale=0.5, path=path)
    async with ws_client(server, path) as ws:
        await wait_frames(ws, len(server_items(world.chat)))
    await wait_replay(server, replay_id, has_status("complete"), "complete")
    await settle_session(server, session, len(server_items(world.chat)) + 2)  # + the client's pong and close
    again = await stop_session(server, session)
    assert [record["origin"] for record in again["connections"]] == ["replay"]
    assert again["connections"][0]["path"] == path
    assert again["websocket"].get("subprotocol") == SUBPROTOCOL
    assert frame_summary(again) == frame_summary(world.chat)


async def test_a_replayed_sse_stream_is_recorded_with_origin_replay_and_the_same_events(
        world: World, server: RunningMockd) -> None:
    path = unique_path("/sse")
    session = await start_session(server, "sse", path, "round trip")
    replay_id = await start_replay(server, world.sse["id"], timingScale=0.5, path=path)
    async with sse_client(server, path) as client:
        await client.wait_end()
    await wait_replay(server, replay_id, has_status("complete"), "complete")
    again = await stop_session(server, session)
    assert [record["origin"] for record in again["connections"]] == ["replay"]
    assert [sse_fields(e.item) for e in server_items(again)] == [sse_fields(e.item) for e in server_items(world.sse)]


async def test_a_replayed_connection_is_recorded_whole_when_the_client_pings(world: World,
                                                                           server: RunningMockd) -> None:
    """Clients ping (browsers, and ``websockets`` every 20 s by default); the replay answers, and a
    recording of the replayed connection keeps the ping, the pong and every frame after them."""
    path = unique_path("/ws")
    session = await start_session(server, "websocket", path, "pinged replay")
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path)
    async with ws_client(server, path) as ws:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, DEADLINE)
        reply = await advance(server, replay_id, {"count": 100})
        assert reply.json()["complete"] is True
        await wait_frames(ws, len(server_items(world.chat)))
    # the server frames, the ping and pong at the start, the client's pong and close at the end
    await settle_session(server, session, len(server_items(world.chat)) + 4)
    again = await stop_session(server, session)
    control = [(item["direction"], item["type"], item["data"]) for item in entries(again)
               if item["type"] in ("ping", "pong")]
    pinged = base64.b64encode(b"are you there").decode()
    assert ("c2s", "ping", pinged) in control and ("s2c", "pong", pinged) in control, control
    assert frame_summary(again) == frame_summary(world.chat)


# --- no admin request waits on a replay -------------------------------------------------------------


async def test_the_admin_api_answers_promptly_while_a_slow_replay_runs(world: World, server: RunningMockd) -> None:
    path = unique_path("/ws")
    replay_id = await start_replay(server, world.chat["id"], timingScale=20, path=path)  # gaps of 3 s and more
    async with ws_client(server, path) as ws:
        await wait_frames(ws, 1)
        for _ in range(5):
            for target in ("/health", "/replay", f"/replay/{replay_id}"):
                began = time.monotonic()
                reply = await admin(server, "GET", target)
                assert reply.status == 200, (target, reply.text)
                assert time.monotonic() - began < PROMPT * 2.5, target
        assert (await replay_status(server, replay_id))["status"] == "playing"
        assert len(sent_frames(ws)) == 1
        assert (await admin(server, "DELETE", f"/replay/{replay_id}")).status == 204


# --- the documented curl examples -------------------------------------------------------------------


async def curl(*args: str) -> tuple[int, bytes]:
    """Run ``curl -s ARGS`` and return (HTTP status, body)."""
    process = await asyncio.create_subprocess_exec("curl", "-s", "-w", "\n%{http_code}", *args,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode == 0, err.decode()
    body, _, code = out.rpartition(b"\n")
    return int(code), body


async def test_the_documented_curl_examples_work_as_written(world: World, server: RunningMockd) -> None:
    # curl -X POST http://localhost:4290/stream-recordings/01HXYZ123456/replay \
    #   -H "Content-Type: application/json" -d '{"mode": "triggered"}'      (a 12-character id prefix)
    code, body = await curl("-X", "POST", f"{server.admin_url}/stream-recordings/{world.chat['id'][:12]}/replay",
                            "-H", "Content-Type: application/json", "-d", '{"mode": "triggered"}')
    assert code == 201, body
    started = json.loads(body)
    assert started["status"] == "pending"
    replay_id = started["sessionId"]
    advance_url = f"{server.admin_url}/replay/{replay_id}/advance"
    # wscat -c ws://localhost:4280/ws/chat: the next client on the recorded path gets the replay
    async with ws_client(server, world.chat["metadata"]["path"]) as ws:
        await wait_replay(server, replay_id, lambda s: s["client"] is not None, "bound")
        code, body = await curl("-X", "POST", advance_url)  # one frame, no body
        assert code == 200, body
        assert json.loads(body)["framesSent"] == 1
        assert (await wait_frames(ws, 1, PROMPT))[0].data == WELCOME.encode()
        code, body = await curl("-X", "POST", advance_url, "-H", "Content-Type: application/json",
                                "-d", '{"until": "goodbye"}')
        assert code == 200, body
        assert json.loads(body)["framesSent"] == 3
        assert (await wait_frames(ws, 4, PROMPT))[-1].data == GOODBYE.encode()
        code, body = await curl("-X", "POST", advance_url, "-H", "Content-Type: application/json",
                                "-d", '{"count": 3}')
        assert code == 200, body
        assert (json.loads(body)["framesSent"], json.loads(body)["complete"]) == (2, True)
        assert (await wait_frames(ws, 6, PROMPT))[-1].opcode is Opcode.CLOSE
