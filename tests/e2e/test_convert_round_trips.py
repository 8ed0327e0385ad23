"""Recording → mock config → serving, over real sockets (docs/replay.md, "Convert to a mock config";
docs/cli.md `convert`).

Round trips: an independent upstream (the ``websockets`` library's server; a raw asyncio SSE server) sends at
known gaps through a ``proxy`` mock while a recording session runs; the recording is converted by
``POST /stream-recordings/{id}/convert`` (and by the CLI, which must give the same bytes); a fresh
``mockd serve --config`` of that file must give a client the same frames in the same order, with the recorded
gaps. The pure conversion rules are tested in ``tests/unit/test_convert.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from processes import MockdFactory, RunningMockd, run_mockd
from configs import mocks_config, ws_mock
from httpclient import acall, call
from sessions import start_session, stop_session
from handmade import frame, ws_recording
from sseblocks import field_line
from upstreams import (
    http_chunk,
    RecordingClientConnection,
    RecordingServerConnection,
    proxy_mock,
    raw_server,
    read_request,
    unreachable_url,
    ws_upstream,
)
from websockets.asyncio.client import connect
from websockets.frames import Close, Opcode

from mockd.config.model import mocks_from_document
from mockd.playback.convert import ConvertOptions, config_bytes, convert


DEADLINE = 10.0  # seconds: an upper bound for anything that should happen "soon" on a noisy machine
# Timing tolerance of a replayed (or recorded) gap against the one it must reproduce. The replay target
# of docs/benchmarks.md is far tighter (P4, measured by the benchmark); this is a black-box check across three
# processes on a shared 2-core machine. Observed errors here are 0-5 ms; ±15 ms leaves room for one
# scheduling hiccup without hiding a real timing bug (a lost or doubled delay is 50 ms or more).
TOLERANCE_MS = 15.0


# --- (b) round trips over real sockets -------------------------------------------------------------


async def convert_both_ways(server: RunningMockd, recording_id: str, body: dict[str, Any], flags: list[str],
                            tmp_path: Path) -> Path:
    """``POST .../convert`` and ``mockd stream-recordings convert`` must give the same document;
    returns the file it was written to."""
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", body)
    assert reply.status == 200, reply.text
    cli = await asyncio.to_thread(run_mockd, "stream-recordings", "convert", recording_id[:12], *flags,
                                  "--admin-url", server.admin_url)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == reply.json()
    assert cli.stdout.encode() == reply.body, "the CLI and the API gave different bytes"
    path = tmp_path / "scenario.json"
    path.write_bytes(reply.body)
    return path


def assert_gaps(observed: list[float], expected: list[float], what: str) -> None:
    assert len(observed) == len(expected), (what, observed, expected)
    for index, (seen, wanted) in enumerate(zip(observed, expected)):
        assert abs(seen - wanted) <= TOLERANCE_MS, (
            f"{what}: gap {index} was {seen:.1f} ms, expected {wanted:.1f} ms ± {TOLERANCE_MS} ms "
            f"(all observed {[round(g, 1) for g in observed]}, expected {expected})")


# --- WebSocket round trip

UPSTREAM_AT = [0.0, 0.150, 0.300]  # s after the upstream accepts: three greetings
THINK = 0.100  # the upstream's think-time before answering the client's message
AFTER_REPLY = 0.060  # then a binary frame
BEFORE_CLOSE = 0.080  # then the close
BINARY = b"\x00\x01\xfe\xff binary"
CLOSE = Close(4000, "done")


async def scripted_upstream(ws: RecordingServerConnection) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, offset in enumerate(UPSTREAM_AT):
        await asyncio.sleep(max(0.0, start + offset - loop.time()))
        await ws.send(f'{{"greeting": {index}, "template": "{{{{now}}}}"}}')
    question = await asyncio.wait_for(ws.recv(), DEADLINE)
    answered = loop.time()
    await asyncio.sleep(THINK)
    await ws.send(f"you said: {question}")
    await asyncio.sleep(max(0.0, answered + THINK + AFTER_REPLY - loop.time()))
    await ws.send(BINARY)
    await asyncio.sleep(max(0.0, answered + THINK + AFTER_REPLY + BEFORE_CLOSE - loop.time()))
    await ws.close(CLOSE.code, CLOSE.reason)


@dataclass
class WsSeen:
    """What a client saw: the data messages and the close, each with its arrival time (loop clock, s)."""

    opened: float
    asked: float = 0.0
    messages: list[tuple[float, str | bytes]] = field(default_factory=list)
    close: tuple[float, Close] | None = None

    def gaps(self) -> list[float]:
        """ms between consecutive server messages and the close; the first from the opening, the one
        after the client's message from the moment it was sent."""
        times = [at for at, _ in self.messages] + ([self.close[0]] if self.close else [])
        gaps, previous = [], self.opened
        for index, at in enumerate(times):
            if index == len(UPSTREAM_AT):
                previous = self.asked
            gaps.append((at - previous) * 1000)
            previous = at
        return gaps


async def chat_client(url: str) -> WsSeen:
    """Read the greetings, ask once the third arrives, read the answer, the binary frame and the close."""
    loop = asyncio.get_running_loop()
    async with connect(url, create_connection=RecordingClientConnection, open_timeout=DEADLINE,
                       ping_interval=None, compression=None) as ws:
        assert isinstance(ws, RecordingClientConnection)
        seen = WsSeen(opened=loop.time())
        for _ in UPSTREAM_AT:
            await asyncio.wait_for(ws.recv(), DEADLINE)
        seen.asked = loop.time()
        await ws.send("hello there")
        for _ in range(2):
            await asyncio.wait_for(ws.recv(), DEADLINE)
        closing = await ws.log.wait_opcode(Opcode.CLOSE, timeout=DEADLINE)
        await asyncio.wait_for(ws.wait_closed(), DEADLINE)
        for logged in ws.log.of(Opcode.TEXT, Opcode.BINARY):
            seen.messages.append((logged.at, logged.data.decode() if logged.opcode is Opcode.TEXT else logged.data))
        seen.close = (closing.at, closing.close())
    return seen


def recorded_ws_gaps(recording: dict[str, Any]) -> list[float]:
    """The recorded gaps a replay must reproduce, as :meth:`WsSeen.gaps` measures them."""
    frames = [f for f in recording["websocket"]["frames"] if f["connection"] == 1]
    previous = float(recording["connections"][0]["relativeMs"])
    gaps = []
    for item in frames:
        if item["direction"] == "c2s":
            if item["type"] == "text":
                previous = item["relativeMs"]
            continue
        if item["type"] in ("text", "binary", "close"):
            gaps.append(item["relativeMs"] - previous)
            previous = item["relativeMs"]
    return gaps


EXPECTED_MESSAGES: list[str | bytes] = [*(f'{{"greeting": {index}, "template": "{{{{now}}}}"}}' for index in range(3)),
                                        "you said: hello there", BINARY]


async def test_websocket_round_trip_reproduces_frames_order_and_gaps(mockd: MockdFactory, tmp_path: Path) -> None:
    async with ws_upstream(scripted_upstream) as upstream:
        recorder = mockd.start(mocks_config(proxy_mock(upstream.url, "/ws/", "relay")))
        recording_id = await start_session(recorder, "websocket", "/ws/chat")
        through_proxy = await chat_client(recorder.ws_url("/ws/chat"))
        recording = await stop_session(recorder, recording_id)
    assert [m for _, m in through_proxy.messages] == EXPECTED_MESSAGES
    assert through_proxy.close is not None and through_proxy.close[1] == CLOSE
    # The premise: the recording holds the upstream's known gaps (0/150/150 ms between greetings,
    # 100 ms of think-time after the client's message, then 60 and 80 ms).
    recorded = recorded_ws_gaps(recording)
    assert len(recorded) == 6, recording["websocket"]["frames"]
    assert_gaps(recorded[1:], [150, 150, THINK * 1000, AFTER_REPLY * 1000, BEFORE_CLOSE * 1000],
                "the recording against the upstream's schedule")

    config = await convert_both_ways(recorder, recording_id, {}, [], tmp_path)
    replayer = mockd.start(None, "--config", str(config))
    replayed = await chat_client(replayer.ws_url("/ws/chat"))
    assert [m for _, m in replayed.messages] == EXPECTED_MESSAGES
    assert replayed.close is not None and replayed.close[1] == CLOSE
    assert_gaps(replayed.gaps(), recorded, "the replay against the recording")


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_strict_expect_ignores_a_different_message_and_answers_the_recorded_one(
        mockd: MockdFactory, tmp_path: Path, kind: str) -> None:
    """``strictMatching``: only the exact recorded client message moves the scenario on. The binary case
    uses bytes that are not UTF-8, where a text comparison would confuse different messages."""
    right: str | bytes = "join general" if kind == "text" else b"\xff\x00\x01"
    wrong: str | bytes = "join random" if kind == "text" else b"\xfe\x00\x01"
    recording = ws_recording([frame("c2s", kind, right, 100), frame("s2c", "text", "welcome", 120)])
    path = tmp_path / "strict.json"
    path.write_bytes(config_bytes(convert(recording, ConvertOptions(strict_matching=True))))
    server = mockd.start(None, "--config", str(path))
    async with connect(server.ws_url("/ws/chat"), open_timeout=DEADLINE, ping_interval=None) as ws:
        await ws.send(wrong)
        # The recorded answer comes 20 ms after the expected message; half a second of silence shows
        # the different message was not taken for it.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
        await ws.send(right)
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "welcome"


# --- SSE round trip

SSE_AT = [0.050, 0.200, 0.500]  # s after the upstream reads the request
SSE_EVENTS = [
    {"type": "greeting", "data": "hello", "id": "1"},
    {"type": "message", "data": "line one\nline two"},
    {"type": "done", "data": '{"ok": true,  "n": 3}', "id": "3"},
]


def encode_event(event: dict[str, str]) -> bytes:
    lines = [f"event: {event['type']}"] if event["type"] != "message" else []
    lines += [f"id: {event['id']}"] if "id" in event else []
    lines += [f"data: {line}" for line in event["data"].split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


async def sse_upstream_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A raw asyncio SSE server: the events at known offsets, chunked, then the end of the stream."""
    try:
        await read_request(reader)
        loop = asyncio.get_running_loop()
        start = loop.time()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        await writer.drain()
        for offset, event in zip(SSE_AT, SSE_EVENTS):
            await asyncio.sleep(max(0.0, start + offset - loop.time()))
            writer.write(http_chunk(encode_event(event)))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()


@dataclass
class SseSeen:
    sent: float
    events: list[tuple[float, dict[str, str]]]
    complete: bool

    def gaps(self) -> list[float]:
        times = [self.sent] + [at for at, _ in self.events]
        return [(b - a) * 1000 for a, b in itertools.pairwise(times)]


async def sse_client(port: int, method: str, path: str) -> SseSeen:
    """Read an event stream off a raw HTTP/1.1 connection, timing each block's arrival."""
    from upstreams import open_request

    body = b'{"stream": true}' if method == "POST" else None
    headers = [("Accept", "text/event-stream")] + ([("Content-Type", "application/json")] if body else [])
    response = await open_request(port, method, path, headers, body, timeout=DEADLINE)
    assert response.status == 200, response.status
    assert (response.value("Content-Type") or "").startswith("text/event-stream")
    events: list[tuple[float, dict[str, str]]] = []
    buffer = ""
    try:
        async with asyncio.timeout(DEADLINE):
            async for piece in response.iter_body():
                at = response.chunks[-1][0]
                buffer += piece.decode()
                buffer = buffer.replace("\r\n", "\n")
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    parsed: dict[str, str] = {}
                    data: list[str] = []
                    for line in block.split("\n"):
                        name, value = field_line(line)
                        if name == "data":
                            data.append(value)
                        elif name in ("event", "id"):
                            parsed["type" if name == "event" else "id"] = value
                    if data:
                        parsed["data"] = "\n".join(data)
                        parsed.setdefault("type", "message")
                        events.append((at, parsed))
    finally:
        await response.close()
    return SseSeen(response.sent_at, events, response.complete)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_sse_round_trip_reproduces_events_and_gaps(mockd: MockdFactory, tmp_path: Path, method: str) -> None:
    async with raw_server(sse_upstream_handler) as upstream_url:
        recorder = mockd.start(mocks_config(proxy_mock(upstream_url, "/v1/", "relay")))
        recording_id = await start_session(recorder, "sse", "/v1/stream")
        through_proxy = await sse_client(recorder.mock_port, method, "/v1/stream")
        recording = await stop_session(recorder, recording_id)
    assert [event for _, event in through_proxy.events] == SSE_EVENTS
    events = recording["sse"]["events"]
    assert [{k: e[k] for k in ("type", "data", "id") if k in e} for e in events] == SSE_EVENTS
    opened_ms = recording["connections"][0]["relativeMs"]
    recorded = [b - a for a, b in zip([opened_ms] + [e["relativeMs"] for e in events],
                                      [e["relativeMs"] for e in events])]
    assert_gaps(recorded, [50, 150, 300], "the recording against the upstream's schedule")

    config = await convert_both_ways(recorder, recording_id, {}, [], tmp_path)
    matcher = json.loads(config.read_text())["mocks"][0]["http"]["matcher"]
    assert matcher["method"] == method
    replayer = mockd.start(None, "--config", str(config))
    replayed = await sse_client(replayer.mock_port, method, "/v1/stream")
    assert [event for _, event in replayed.events] == SSE_EVENTS
    assert replayed.complete, "the replayed stream did not end after the last event"
    assert_gaps(replayed.gaps(), recorded, "the replay against the recording")


# --- conversions the server refuses, and options through the API and CLI --------------------------


async def test_empty_recording_is_nothing_to_convert_through_api_and_cli(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    await stop_session(server, recording_id)
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", {})
    assert reply.status == 400
    assert reply.json()["error"] == "nothing_to_convert"
    cli = await asyncio.to_thread(run_mockd, "stream-recordings", "convert", recording_id[:12],
                                  "--admin-url", server.admin_url)
    assert cli.returncode == 1
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert "Traceback" not in cli.stderr
    assert cli.stdout == ""


async def echo_traffic(url: str, messages: list[str]) -> None:
    async with connect(url, open_timeout=DEADLINE, ping_interval=None) as ws:
        for message in messages:
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == message


@pytest.mark.parametrize(("body", "flags"), [
    ({"simplifyTiming": True, "minDelay": 50, "maxDelay": 2000}, ["--simplify-timing", "--min-delay", "50",
                                                                  "--max-delay", "2000"]),
    ({"includeClientMessages": False}, ["--no-client-messages"]),
    ({"strictMatching": True}, ["--strict"]),
    ({"connection": 2, "path": "/ws/replayed"}, ["--connection", "2", "--path", "/ws/replayed"]),
], ids=["simplify", "no-client-messages", "strict", "connection-and-path"])
async def test_cli_flags_give_the_same_document_as_the_api_options(mockd: MockdFactory, tmp_path: Path,
                                                                   body: dict[str, Any], flags: list[str]) -> None:
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    await echo_traffic(server.ws_url("/ws/echo"), ["first", "second"])
    await echo_traffic(server.ws_url("/ws/echo"), ["third"])
    await stop_session(server, recording_id)
    path = await convert_both_ways(server, recording_id, body, flags, tmp_path)
    document = json.loads(path.read_text())
    mocks_from_document(document, str(path))
    # the whole recording unless one connection is asked for; both connections were on one path
    per_connection = {2: ["third"]} if "connection" in body else {1: ["first", "second"], 2: ["third"]}
    assert [mock["id"] for mock in document["mocks"]] == [f"{recording_id}-{number}" for number in per_connection]
    assert [mock.get("times") for mock in document["mocks"]] == [1] * (len(per_connection) - 1) + [None]
    for mock, client in zip(document["mocks"], per_connection.values()):  # an echo: the server said the same
        spec = mock["websocket"]
        steps = spec["scenario"]["steps"]
        expects = [step for step in steps if step["type"] == "expect"]
        sends = [step["message"]["value"] for step in steps if step["type"] == "send"]
        assert spec["path"] == body.get("path", "/ws/echo")
        assert sends == client
        if body.get("includeClientMessages") is False:
            assert expects == []
        elif body.get("strictMatching"):
            assert [step["match"]["value"] for step in expects] == client
        else:
            assert len(expects) == len(client)
            assert all(step.get("match", {"type": "any"})["type"] == "any" for step in expects)


def test_offline_cli_convert_gives_the_api_document(mockd: MockdFactory) -> None:
    """With no server answering, the CLI converts from the data directory: the same bytes as the API gave."""
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")))
    recording_id = call("POST", f"{server.admin_url}/stream-recordings/start",
                        {"protocol": "websocket", "path": "/ws/echo"}).json()["recordingId"]
    asyncio.run(echo_traffic(server.ws_url("/ws/echo"), ["{{now}}", "plain"]))
    assert call("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop").status == 200
    body = {"simplifyTiming": True, "minDelay": 50, "maxDelay": 2000}
    api = call("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", body)
    assert api.status == 200
    assert server.stop() == 0
    with unreachable_url() as nobody:
        with_closed_port = run_mockd("stream-recordings", "convert", recording_id[:12], "--simplify-timing",
                                     "--min-delay", "50", "--max-delay", "2000", "--admin-url", nobody,
                                     "--data-dir", str(server.data_dir))
    assert with_closed_port.returncode == 0, with_closed_port.stderr
    assert with_closed_port.stdout.encode() == api.body
    assert len(with_closed_port.stderr.strip().splitlines()) == 1  # the offline notice
