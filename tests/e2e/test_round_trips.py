"""Round trips with clients nobody in this project wrote (docs/recording.md; docs/replay.md, "Convert to a
mock config").

Each test records real traffic through a ``proxy`` mock to a local, independent upstream (the
``websockets`` library's server, aiohttp's web server, or a raw asyncio server), converts the recording
through the admin API and the CLI (same bytes, :func:`test_convert_round_trips.convert_both_ways`), serves the
converted config with a fresh ``mockd serve --config``, runs the same client against it and compares
what the client saw from the upstream through the proxy with what it sees from the converted mocks:
messages, their order, close codes and reasons, SSE blocks, and gaps where timing matters.

Clients: the ``websockets`` client; a raw socket that puts its first WebSocket frame in the same write
as the upgrade request; the OpenAI Python SDK streaming chat completions over POST; aiohttp's client
session for a plain-HTTP-around-a-stream conversation; raw HTTP/1.1 readers for SSE bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from processes import MockdFactory, RunningMockd
from configs import mocks_config
from httpclient import acall
from sessions import start_session, stop_session
from test_convert_round_trips import TOLERANCE_MS, assert_gaps, convert_both_ways, sse_client
from upstreams import (
    http_chunk,
    HOST,
    ReceivedRequest,
    RecordingClientConnection,
    RecordingServerConnection,
    http_upstream,
    open_request,
    proxy_mock,
    raw_server,
    read_request,
    websocket_accept,
    ws_upstream,
)
from upstreams import request as raw_request
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Opcode

DEADLINE = 5.0  # s: anything that should happen "now" (a 1008 after the 30 s expect timeout is far later)


async def converted(server: RunningMockd, recording_id: str, tmp_path: Path, name: str) -> Path:
    """The recording converted through the API and the CLI (same bytes), in its own file ``name``."""
    directory = tmp_path / name
    directory.mkdir()
    return await convert_both_ways(server, recording_id, {}, [], directory)


def loaded_mocks(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    assert document["version"] == "1.0"
    mocks: list[dict[str, Any]] = document["mocks"]
    return mocks


# === 1. a WebSocket client that talks first ========================================================

GREETING_AFTER = 0.100  # s after the upstream accepts
GREETING = "hello, whoever you are"
FIRST = "first words, before any greeting"
SECOND = "and a second message"
TALK_CLOSE = Close(4000, "talked enough")
TALK_TRANSCRIPT = [GREETING, f"you said: {FIRST}", f"you said: {SECOND}"]


async def greets_late_then_answers(ws: RecordingServerConnection) -> None:
    """Greets 100 ms after accepting, then answers each of two client messages, then closes."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(max(0.0, start + GREETING_AFTER - loop.time()))
    await ws.send(GREETING)
    for _ in range(2):
        message = await asyncio.wait_for(ws.recv(), DEADLINE)
        await ws.send(f"you said: {message}")
    await ws.close(TALK_CLOSE.code, TALK_CLOSE.reason)


@dataclass
class Transcript:
    """What a WebSocket client saw: the data messages in order, the close, and when the first message
    came (ms after the socket opened)."""

    messages: list[str]
    close: Close | None
    first_after_ms: float


async def talks_first_client(url: str) -> Transcript:
    """The ``websockets`` client: sends the instant the socket is open, then reads; asks again after
    the greeting and the first answer; reads the last answer and the server's close."""
    loop = asyncio.get_running_loop()
    async with connect(url, create_connection=RecordingClientConnection, open_timeout=DEADLINE,
                       ping_interval=None, compression=None, close_timeout=DEADLINE) as ws:
        assert isinstance(ws, RecordingClientConnection)
        opened = loop.time()
        await ws.send(FIRST)
        for _ in range(2):
            await asyncio.wait_for(ws.recv(), DEADLINE)
        await ws.send(SECOND)
        await asyncio.wait_for(ws.recv(), DEADLINE)
        closing = await ws.log.wait_opcode(Opcode.CLOSE, timeout=DEADLINE)
        await asyncio.wait_for(ws.wait_closed(), DEADLINE)
    data = ws.log.of(Opcode.TEXT, Opcode.BINARY)
    assert all(frame.opcode is Opcode.TEXT for frame in data), data
    return Transcript([frame.data.decode() for frame in data], closing.close(),
                      (data[0].at - opened) * 1000 if data else -1.0)


# --- a raw client whose first frame shares the upgrade request's write


def client_frame(opcode: Opcode, payload: bytes) -> bytes:
    """A masked, final client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x80 | opcode.value])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    return head + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


async def read_server_frame(reader: asyncio.StreamReader) -> tuple[Opcode, bytes]:
    """One unmasked, unfragmented server frame."""
    first, second = await reader.readexactly(2)
    assert first & 0x80, "a fragmented server frame (this client expects whole messages)"
    assert not second & 0x80, "a masked server frame"
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return Opcode(first & 0x0F), await reader.readexactly(size)


async def one_write_client(port: int, path: str) -> Transcript:
    """Writes the upgrade request and a masked text frame in ONE ``writer.write()``, then reads the 101
    and the frames with a hand-made decoder; answers the second server message with ``SECOND`` and the
    server's close with a close of the same code."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), DEADLINE)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        upgrade = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        writer.write(upgrade + client_frame(Opcode.TEXT, FIRST.encode()))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        opened = loop.time()  # the server cannot take the first message before its 101
        status_line, *lines = head.decode("latin-1").split("\r\n")
        assert status_line.split(" ")[1] == "101", head
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
                   if name}
        assert headers.get("sec-websocket-accept") == websocket_accept(key), head
        messages: list[str] = []
        first_at = -1.0
        while True:
            opcode, payload = await asyncio.wait_for(read_server_frame(reader), DEADLINE)
            if opcode is Opcode.TEXT:
                if not messages:
                    first_at = loop.time()
                messages.append(payload.decode())
                if len(messages) == 2:
                    writer.write(client_frame(Opcode.TEXT, SECOND.encode()))
            elif opcode is Opcode.CLOSE:
                close = Close.parse(payload)
                writer.write(client_frame(Opcode.CLOSE, Close(close.code, "").serialize()))
                await writer.drain()
                # the server ends the TCP connection after the closing handshake
                assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
                return Transcript(messages, close, (first_at - opened) * 1000)
            elif opcode is Opcode.PING:
                writer.write(client_frame(Opcode.PONG, payload))
            else:
                raise AssertionError(f"unexpected {opcode.name} frame {payload!r}")
    finally:
        writer.close()


def recorded_greeting_gap(recording: dict[str, Any]) -> float:
    """ms from the client's first message to the greeting, as recorded (what the converted mock's
    ``send`` after the ``expect`` must wait)."""
    frames = recording["websocket"]["frames"]
    first = next(f for f in frames if f["direction"] == "c2s" and f["type"] == "text")
    greeting = next(f for f in frames if f["direction"] == "s2c" and f["type"] == "text")
    assert first["data"] == FIRST and greeting["data"] == GREETING
    assert first["relativeMs"] < greeting["relativeMs"], "the premise: the client spoke before the greeting"
    return float(greeting["relativeMs"] - first["relativeMs"])


async def record_and_replay_talk(mockd: MockdFactory, tmp_path: Path,
                                 client: Callable[[RunningMockd], Awaitable[Transcript]]
                                 ) -> tuple[Transcript, Transcript, dict[str, Any]]:
    """The client through the proxy while a session records; then against the converted mock."""
    async with ws_upstream(greets_late_then_answers) as upstream:
        recorder = mockd.start(mocks_config(proxy_mock(upstream.url, "/ws/", "relay")))
        recording_id = await start_session(recorder, "websocket", "/ws/talk")
        through_proxy = await client(recorder)
        recording = await stop_session(recorder, recording_id)
        assert upstream.errors == []
    config = await converted(recorder, recording_id, tmp_path, "talk")
    assert len(loaded_mocks(config)) == 1
    replayer = mockd.start(None, "--config", str(config))
    return through_proxy, await client(replayer), recording


async def test_websockets_client_that_talks_first_sees_the_same_frames_from_the_converted_mock(
        mockd: MockdFactory, tmp_path: Path) -> None:
    through_proxy, replayed, recording = await record_and_replay_talk(
        mockd, tmp_path, lambda server: talks_first_client(server.ws_url("/ws/talk")))
    assert through_proxy.messages == TALK_TRANSCRIPT
    assert through_proxy.close == TALK_CLOSE
    assert replayed.messages == through_proxy.messages
    assert replayed.close == through_proxy.close
    # The greeting is the server's think-time after the client's first message: the mock keeps it.
    recorded = recorded_greeting_gap(recording)
    assert abs(recorded - GREETING_AFTER * 1000) <= 3 * TOLERANCE_MS, recording["websocket"]["frames"]
    assert_gaps([replayed.first_after_ms], [recorded], "greeting after the client's first message")


async def test_first_frame_in_the_upgrade_write_is_answered_through_proxy_and_converted_mock(
        mockd: MockdFactory, tmp_path: Path) -> None:
    """The client's first frame arrives in the same TCP segment as the upgrade request: neither the proxy
    nor the converted scenario may lose it (the scenario would wait for it and close with 1008 after
    30 s; the reads here give up after 5 s)."""
    through_proxy, replayed, recording = await record_and_replay_talk(
        mockd, tmp_path, lambda server: one_write_client(server.mock_port, "/ws/talk"))
    assert through_proxy.messages == TALK_TRANSCRIPT
    assert through_proxy.close == TALK_CLOSE
    assert [f["data"] for f in recording["websocket"]["frames"] if f["direction"] == "c2s" and f["type"] == "text"] \
        == [FIRST, SECOND]
    assert replayed.messages == through_proxy.messages
    assert replayed.close == through_proxy.close
    assert_gaps([replayed.first_after_ms], [recorded_greeting_gap(recording)],
                "greeting after the first message (sent with the upgrade)")


# === 2. the OpenAI Python SDK streaming chat completions over POST ==================================

OPENAI_CONTENT_TYPE = "text/event-stream; charset=utf-8"
PROMPT_A = "Say hello in English"
PROMPT_B = "Dis bonjour en français"
PROMPT_UNRECORDED = "Sing me a song"
ANSWERS = {
    PROMPT_A: ["Hello", ",", " world", "!"],
    PROMPT_B: ["Bonjour", " tout", " le", " monde", " — ça va ?"],
    PROMPT_UNRECORDED: ["la la la"],
}


def completion_chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": f"chatcmpl-{index}", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "gpt-test", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def completion_blocks(prompt: str) -> list[bytes]:
    """The blocks the fake upstream writes for ``prompt``, in order (deterministic, so a test can
    compare a replayed body with them byte for byte)."""
    return [completion_chunk(0, {"role": "assistant", "content": ""}),
            *(completion_chunk(0, {"content": piece}) for piece in ANSWERS[prompt]),
            completion_chunk(0, {}, "stop"), b"data: [DONE]\n\n"]


async def fake_openai(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
    """``POST /v1/chat/completions``: OpenAI's chunk format, no ``event:`` lines, then ``[DONE]``; the
    content depends on the last message's content."""
    if request.method != "POST" or request.path != "/v1/chat/completions":
        return web.json_response({"error": {"message": "not here"}}, status=404)
    prompt = json.loads(received.body)["messages"][-1]["content"]
    response = web.StreamResponse(status=200, headers={"Content-Type": OPENAI_CONTENT_TYPE,
                                                       "Cache-Control": "no-cache"})
    await response.prepare(request)
    for index, block in enumerate(completion_blocks(prompt)):
        if index:
            await asyncio.sleep(0.01)
        await response.write(block)
    await response.write_eof()
    return response


async def sdk_stream(client: openai.AsyncOpenAI, prompt: str) -> str:
    stream = await client.chat.completions.create(model="gpt-test", stream=True,
                                                  messages=[{"role": "user", "content": prompt}])
    pieces = []
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
    return "".join(pieces)


def chat_body(prompt: str) -> dict[str, Any]:
    """What the SDK sends (key order and spacing aside: the mocks compare JSON bodies as JSON)."""
    return {"messages": [{"role": "user", "content": prompt}], "model": "gpt-test", "stream": True}


def sdk_client(server: RunningMockd) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.mock_url}/v1", api_key="sk-test", max_retries=0, timeout=DEADLINE)


async def test_openai_sdk_streams_get_their_own_recorded_answers_in_any_order(
        mockd: MockdFactory, tmp_path: Path) -> None:
    async with http_upstream(fake_openai) as upstream:
        recorder = mockd.start(mocks_config(proxy_mock(upstream.url, "/v1/", "openai")))
        recording_id = await start_session(recorder, "sse", "/v1/*")
        async with sdk_client(recorder) as client:
            through_proxy = {prompt: await sdk_stream(client, prompt) for prompt in (PROMPT_A, PROMPT_B)}
        recording = await stop_session(recorder, recording_id)
        assert [r.method for r in upstream.requests] == ["POST", "POST"]
    assert through_proxy == {prompt: "".join(ANSWERS[prompt]) for prompt in (PROMPT_A, PROMPT_B)}
    assert [(c["method"], c["path"]) for c in recording["connections"]] == [("POST", "/v1/chat/completions")] * 2
    assert [json.loads(c["body"]) for c in recording["connections"]] == [chat_body(PROMPT_A), chat_body(PROMPT_B)]
    assert [c["responseHeaders"].get("Content-Type") for c in recording["connections"]] == [OPENAI_CONTENT_TYPE] * 2
    assert "sk-test" not in json.dumps(recording), "the API key reached the recording"

    config = await converted(recorder, recording_id, tmp_path, "openai")
    mocks = loaded_mocks(config)
    assert [mock["id"] for mock in mocks] == [f"{recording_id}-1", f"{recording_id}-2"]
    replayer = mockd.start(None, "--config", str(config))
    async with sdk_client(replayer) as client:
        replayed = {prompt: await sdk_stream(client, prompt) for prompt in (PROMPT_B, PROMPT_A)}
        assert replayed == through_proxy
        # and once more: neither mock was used up by the first round
        assert await sdk_stream(client, PROMPT_A) == through_proxy[PROMPT_A]
        with pytest.raises(openai.NotFoundError):
            await sdk_stream(client, PROMPT_UNRECORDED)

    # The converted mock's wire: the recorded status, the exact Content-Type, the upstream's bytes.
    for prompt in (PROMPT_B, PROMPT_A):
        raw = await raw_request(replayer.mock_port, "POST", "/v1/chat/completions",
                                [("Content-Type", "application/json")], json.dumps(chat_body(prompt)).encode(),
                                DEADLINE)
        assert raw.status == 200
        assert raw.value("Content-Type") == OPENAI_CONTENT_TYPE
        assert raw.body == b"".join(completion_blocks(prompt))

    reply = await acall("POST", f"{replayer.mock_url}/v1/chat/completions", chat_body(PROMPT_UNRECORDED))
    assert reply.status == 404, reply.text
    error = reply.json()
    assert error["error"] == "no_mock"
    assert error["closest"]["mock"] in {mock["id"] for mock in mocks}
    assert error["closest"]["field"] == "body"
    assert error["closest"]["method"] == "POST"
    assert error["closest"]["path"] == "/v1/chat/completions"
    assert error["closest"]["mock"] in error["message"] and "body" in error["message"]
    assert "$.messages[0].content" in error["message"], error["message"]


# === 3. several connections on one path, served in recorded order ===================================

CHAT_SCRIPTS = 3


def room_close(index: int) -> Close:
    return Close(4000 + index, f"room {index} closed")


def expected_room(index: int) -> Transcript:
    return Transcript([f"room {index}: welcome", f"room {index}: you said hi", f"room {index}: and {index} more"],
                      room_close(index), 0)


OTHER = Transcript(["other: hello", "other: you said hi", "other: bye"], Close(4100, "other done"), 0)


def several_rooms() -> Callable[[RecordingServerConnection], Awaitable[None]]:
    """Connection i on ``/ws/chat`` gets script i (1-based); ``/ws/other`` its own."""
    counter = {"chat": 0}

    async def handler(ws: RecordingServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path == "/ws/other":
            script, close = OTHER.messages, OTHER.close
        else:
            counter["chat"] += 1
            expected = expected_room(counter["chat"])
            script, close = expected.messages, expected.close
        assert close is not None
        await ws.send(script[0])
        await asyncio.wait_for(ws.recv(), DEADLINE)
        await ws.send(script[1])
        await ws.send(script[2])
        await ws.close(close.code, close.reason)

    return handler


async def room_client(url: str) -> Transcript:
    """Reads the welcome, says hi, reads until the server closes."""
    async with connect(url, open_timeout=DEADLINE, ping_interval=None, compression=None,
                       close_timeout=DEADLINE) as ws:
        messages = [await asyncio.wait_for(ws.recv(), DEADLINE)]
        await ws.send("hi")
        try:
            while True:
                messages.append(await asyncio.wait_for(ws.recv(), DEADLINE))
        except ConnectionClosed as closed:
            received = closed.rcvd
            assert received is not None, f"no close frame from the server: {closed}"
    return Transcript([str(m) for m in messages], received, 0)


SSE_FEEDS = {1: ["feed 1: a", "feed 1: b"], 2: ["feed 2: x", "feed 2: y", "feed 2: z"]}


def feed_upstream() -> Callable[[web.BaseRequest, ReceivedRequest], Awaitable[web.StreamResponse]]:
    """``GET /events/feed``: the n-th stream gets feed n (blocks ``event: feed`` with an id)."""
    counter = {"n": 0}

    async def handler(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
        counter["n"] += 1
        number = counter["n"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index, data in enumerate(SSE_FEEDS[number]):
            await response.write(f"event: feed\nid: {number}.{index}\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response

    return handler


def feed_events(number: int) -> list[dict[str, str]]:
    return [{"type": "feed", "id": f"{number}.{index}", "data": data} for index, data in enumerate(SSE_FEEDS[number])]


async def test_several_connections_convert_to_one_mock_each_served_in_recorded_order(
        mockd: MockdFactory, tmp_path: Path) -> None:
    async with ws_upstream(several_rooms()) as ws_up, http_upstream(feed_upstream()) as sse_up:
        recorder = mockd.start(mocks_config(proxy_mock(ws_up.url, "/ws/", "ws-relay"),
                                            proxy_mock(sse_up.url, "/events/", "sse-relay")))
        ws_id = await start_session(recorder, "websocket", "/ws/*")
        sse_id = await start_session(recorder, "sse", "/events/*")
        through_proxy = [await room_client(recorder.ws_url("/ws/chat")) for _ in range(CHAT_SCRIPTS)]
        other_through_proxy = await room_client(recorder.ws_url("/ws/other"))
        feeds_through_proxy = [await sse_client(recorder.mock_port, "GET", "/events/feed") for _ in SSE_FEEDS]
        ws_recording = await stop_session(recorder, ws_id)
        sse_recording = await stop_session(recorder, sse_id)
        assert ws_up.errors == []
    assert through_proxy == [expected_room(index) for index in range(1, CHAT_SCRIPTS + 1)]
    assert other_through_proxy == OTHER
    assert [[event for _, event in seen.events] for seen in feeds_through_proxy] == [feed_events(1), feed_events(2)]
    assert [c["path"] for c in ws_recording["connections"]] == ["/ws/chat"] * 3 + ["/ws/other"]
    assert len(sse_recording["connections"]) == 2

    ws_config = await converted(recorder, ws_id, tmp_path, "ws")
    sse_config = await converted(recorder, sse_id, tmp_path, "sse")
    ws_mocks, sse_mocks = loaded_mocks(ws_config), loaded_mocks(sse_config)
    assert [mock["id"] for mock in ws_mocks] == [f"{ws_id}-{n}" for n in range(1, 5)]
    assert [mock["id"] for mock in sse_mocks] == [f"{sse_id}-{n}" for n in range(1, 3)]
    assert [mock["websocket"]["path"] for mock in ws_mocks] == ["/ws/chat"] * 3 + ["/ws/other"]
    assert [mock.get("times") for mock in ws_mocks] == [1, 1, None, None]
    assert [mock.get("times") for mock in sse_mocks] == [1, None]

    # Each config alone loads (no id clash inside one recording) ...
    alone = mockd.start(None, "--config", str(ws_config))
    assert await room_client(alone.ws_url("/ws/chat")) == expected_room(1)
    # ... and both together (no clash between two recordings' mocks).
    replayer = mockd.start(None, "--config", str(ws_config), "--config", str(sse_config))
    listed = await acall("GET", f"{replayer.admin_url}/mocks")
    assert listed.status == 200, listed.text
    listed_body = listed.json()
    listed_mocks = listed_body["mocks"] if isinstance(listed_body, dict) else listed_body
    assert sorted(mock["id"] for mock in listed_mocks) == sorted(m["id"] for m in ws_mocks + sse_mocks)

    replayed = [await room_client(replayer.ws_url("/ws/chat")) for _ in range(CHAT_SCRIPTS + 1)]
    assert replayed == [*through_proxy, through_proxy[-1]], "connections 1, 2, 3 in order, then 3 again"
    assert await room_client(replayer.ws_url("/ws/other")) == other_through_proxy

    feeds = [await sse_client(replayer.mock_port, "GET", "/events/feed") for _ in range(3)]
    assert [[event for _, event in seen.events] for seen in feeds] == [feed_events(1), feed_events(2), feed_events(2)]
    assert all(seen.complete for seen in feeds)


# === 4. plain HTTP exchanges around a stream =========================================================

SESSION = {"session": "s-1", "user": {"name": "Ann", "roles": ["admin", "dev"]}}
REPLIES = {"hi": {"reply": "hello, Ann", "mood": "glad"}, "bye": {"reply": "see you", "mood": "sad", "n": 2}}
STREAM = [("tick", "1"), ("tick", "2"), ("done", '{"ticks": 2}')]


async def api_upstream(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
    if request.method == "GET" and request.path == "/api/session":
        if request.query.get("verbose") != "1":
            return web.json_response({"session": "s-1"})
        return web.json_response(SESSION)
    if request.method == "POST" and request.path == "/api/messages":
        text = json.loads(received.body)["text"]
        if text not in REPLIES:
            return web.json_response({"error": "unknown text"}, status=422)
        return web.json_response(REPLIES[text], status=201)
    if request.method == "GET" and request.path == "/api/stream":
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event, data in STREAM:
            await response.write(f"event: {event}\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response
    return web.json_response({"error": "not here"}, status=404)


@dataclass
class Conversation:
    """What the aiohttp client saw: (status, JSON body) of each plain request, the stream's events."""

    replies: list[tuple[int, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    stream_status: int = 0
    stream_type: str = ""


def parse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        kind, data = "message", []
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
        if data:
            events.append((kind, "\n".join(data)))
    return events


async def api_conversation(base: str) -> Conversation:
    """GET the session, POST "hi", read the stream, POST "bye" — with aiohttp's client."""
    seen = Conversation()
    timeout = aiohttp.ClientTimeout(total=DEADLINE)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"{base}/api/session", params={"verbose": "1"}) as reply:
            seen.replies.append((reply.status, await reply.json()))
            seen.content_types.append(reply.headers.get("Content-Type", ""))
        async with session.post(f"{base}/api/messages", json={"text": "hi"}) as reply:
            seen.replies.append((reply.status, await reply.json()))
            seen.content_types.append(reply.headers.get("Content-Type", ""))
        async with session.get(f"{base}/api/stream", headers={"Accept": "text/event-stream"}) as reply:
            seen.stream_status, seen.stream_type = reply.status, reply.headers.get("Content-Type", "")
            seen.events = parse_events(await reply.text())
        async with session.post(f"{base}/api/messages", json={"text": "bye"}) as reply:
            seen.replies.append((reply.status, await reply.json()))
            seen.content_types.append(reply.headers.get("Content-Type", ""))
    return seen


async def test_plain_http_exchanges_around_a_stream_convert_and_replay_together(
        mockd: MockdFactory, tmp_path: Path) -> None:
    async with http_upstream(api_upstream) as upstream:
        recorder = mockd.start(mocks_config(proxy_mock(upstream.url, "/api/", "api")))
        http_id = await start_session(recorder, "http", "/api/*")
        sse_id = await start_session(recorder, "sse", "/api/*")
        through_proxy = await api_conversation(recorder.mock_url)
        http_recording = await stop_session(recorder, http_id)
        sse_recording = await stop_session(recorder, sse_id)
        assert len(upstream.requests) == 4
    assert through_proxy.replies == [(200, SESSION), (201, REPLIES["hi"]), (201, REPLIES["bye"])]
    assert through_proxy.events == STREAM
    # The premise: the http session kept the three plain exchanges (not the stream), the sse one the stream.
    exchanges = http_recording["http"]["exchanges"]
    assert [(e["request"]["method"], e["request"]["path"], e["response"]["status"]) for e in exchanges] == [
        ("GET", "/api/session", 200), ("POST", "/api/messages", 201), ("POST", "/api/messages", 201)]
    assert exchanges[0]["request"]["query"] == {"verbose": "1"}
    assert [json.loads(e["request"]["body"]) for e in exchanges[1:]] == [{"text": "hi"}, {"text": "bye"}]
    assert [(c["method"], c["path"]) for c in sse_recording["connections"]] == [("GET", "/api/stream")]

    http_config = await converted(recorder, http_id, tmp_path, "http")
    sse_config = await converted(recorder, sse_id, tmp_path, "sse")
    assert len(loaded_mocks(http_config)) == 3 and len(loaded_mocks(sse_config)) == 1
    replayer = mockd.start(None, "--config", str(http_config), "--config", str(sse_config))
    replayed = await api_conversation(replayer.mock_url)
    assert replayed.replies == through_proxy.replies
    assert replayed.content_types == through_proxy.content_types == ["application/json; charset=utf-8"] * 3
    assert replayed.events == through_proxy.events
    assert (replayed.stream_status, replayed.stream_type) == (through_proxy.stream_status, through_proxy.stream_type)
    # the conversation again: every recorded request is still answered (the last of each kind repeats)
    again = await api_conversation(replayer.mock_url)
    assert again.replies == through_proxy.replies and again.events == through_proxy.events

    reply = await acall("POST", f"{replayer.mock_url}/api/messages", {"text": "what?"})
    assert reply.status == 404, reply.text
    error = reply.json()
    assert error["error"] == "no_mock"
    assert error["closest"]["field"] == "body", error
    assert error["closest"]["mock"] in {f"{http_id}-2", f"{http_id}-3"}
    assert (error["closest"]["method"], error["closest"]["path"]) == ("POST", "/api/messages")
    assert "$.text" in error["message"], error["message"]
    # JSON bodies are compared as JSON: other spacing and key order still match the recorded "bye"
    same = await raw_request(replayer.mock_port, "POST", "/api/messages", [("Content-Type", "application/json")],
                             b'{ "text" :\n "bye" }', DEADLINE)
    assert (same.status, same.json()) == (201, REPLIES["bye"])
    # the query is matched too: the session without ?verbose=1 was never recorded
    plain = await acall("GET", f"{replayer.mock_url}/api/session")
    assert plain.status == 404, plain.text
    assert plain.json()["closest"]["field"] == "query"


# === 5. SSE blocks byte for byte ====================================================================

SSE_WIRE_BLOCKS = [
    b"data: only data, no event line",
    b"event: message\ndata: an explicit message event",
    b"event: update\nid: 7\ndata: line one\ndata:   line two, indented\ndata: {\"k\": [1, 2]}",
    b"retry: 2500",
    b": keepalive comment",
    b"data: the end",
]
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


async def wire_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A raw asyncio SSE server: each block in its own chunk, then the end of the body."""
    try:
        await read_request(reader)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {SSE_CONTENT_TYPE}\r\nX-Stream-Id: 42\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
        for block in SSE_WIRE_BLOCKS:
            data = block + b"\n\n"
            writer.write(http_chunk(data))
            await writer.drain()
            await asyncio.sleep(0.005)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()


def block_lines(body: bytes) -> list[dict[str, list[bytes]]]:
    """The body's blocks (split at blank lines), each as its lines grouped by field name, in order
    within a field (``data`` lines keep their order; the order of different fields is free)."""
    assert body.endswith(b"\n\n"), body[-20:]
    blocks = []
    for raw in body[:-2].split(b"\n\n"):
        grouped: dict[str, list[bytes]] = {}
        for line in raw.split(b"\n"):
            grouped.setdefault(line.partition(b":")[0].decode(), []).append(line)
        blocks.append(grouped)
    return blocks


EVENT_FIELDS = ("type", "data", "id", "retry", "comment", "eventLine")


def event_fields(recording: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: event[k] for k in EVENT_FIELDS if k in event} for event in recording["sse"]["events"]]


async def raw_stream(server: RunningMockd) -> tuple[int, str | None, str | None, bytes]:
    response = await open_request(server.mock_port, "GET", "/stream/wire", [("Accept", "text/event-stream")])
    try:
        body = await response.read_body(DEADLINE)
        assert response.complete
    finally:
        await response.close()
    return response.status, response.value("Content-Type"), response.value("X-Stream-Id"), body


async def test_sse_blocks_round_trip_byte_for_byte(mockd: MockdFactory, tmp_path: Path) -> None:
    async with raw_server(wire_upstream) as upstream_url:
        recorder = mockd.start(mocks_config(proxy_mock(upstream_url, "/stream/", "wire")))
        first_id = await start_session(recorder, "sse", "/stream/*")
        through_proxy = await raw_stream(recorder)
        first = await stop_session(recorder, first_id)
    upstream_body = b"".join(block + b"\n\n" for block in SSE_WIRE_BLOCKS)
    assert through_proxy == (200, SSE_CONTENT_TYPE, "42", upstream_body)
    assert event_fields(first) == [
        {"type": "message", "data": "only data, no event line"},
        {"type": "message", "data": "an explicit message event", "eventLine": True},
        {"type": "update", "data": 'line one\n  line two, indented\n{"k": [1, 2]}', "id": "7"},
        {"retry": 2500},
        {"comment": "keepalive comment"},
        {"type": "message", "data": "the end"},
    ]

    config = await converted(recorder, first_id, tmp_path, "wire")
    replayer = mockd.start(None, "--config", str(config))
    second_id = await start_session(replayer, "sse", "/stream/*")
    status, content_type, stream_id, body = await raw_stream(replayer)
    second = await stop_session(replayer, second_id)
    assert event_fields(second) == event_fields(first)
    assert [(c["status"], c["responseHeaders"].get("Content-Type"), c["responseHeaders"].get("X-Stream-Id"))
            for c in second["connections"]] == [(200, SSE_CONTENT_TYPE, "42")]
    assert (status, content_type, stream_id) == (200, SSE_CONTENT_TYPE, "42")
    assert block_lines(body) == block_lines(upstream_body)
    assert body.count(b"\n\n") == len(SSE_WIRE_BLOCKS)

    # The other way back, a replay through the admin API, writes the same blocks with the same headers.
    reply = await acall("POST", f"{recorder.admin_url}/stream-recordings/{first_id}/replay", {"timingScale": 0})
    assert reply.status == 201, reply.text
    status, content_type, stream_id, body = await raw_stream(recorder)
    assert (status, content_type, stream_id) == (200, SSE_CONTENT_TYPE, "42")
    assert block_lines(body) == block_lines(upstream_body)
