"""Stream recording (docs/recording.md), black-box over real sockets.

A real ``mockd serve`` process sits between independent peers: the ``websockets`` library as the
WebSocket client and (behind ``proxy`` mocks) as the WebSocket upstream, raw asyncio HTTP/1.1 for SSE
clients and upstreams, ``urllib`` / ``http.client`` / ``curl`` for the admin API. Each test compares
what the recording says with what the peers really sent and received.

Most tests share one module-scoped server and keep apart by using their own paths (mocks and proxy
mocks are added at run time through ``POST /mocks``). Scenarios whose recordings several tests inspect
run once, in a thread with its own event loop, from module-scoped fixtures.

No sleep stands in for synchronisation: tests await messages or poll the admin API with a deadline.
The only sleep is the 300 ms pause whose recording one test measures.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import uuid4

import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.frames import Close, Opcode

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from httpclient import Reply, acall, call, send
from polling import poll_value
from sessions import poll_recording, settled, start_session, start_session_sync, stop_session, stop_session_sync
from upstreams import (
    DEADLINE,
    RecordingClientConnection,
    RecordingServerConnection,
    SeenFrame,
    open_request,
    proxy_mock,
    recv,
    send_close_without_status,
    streaming_upstream,
    ws_upstream,
)

T = TypeVar("T")
Json = dict[str, Any]
Origin = Literal["mock", "proxy"]
ORIGINS: list[Origin] = ["mock", "proxy"]

ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
TIME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3,9})Z")
SUBPROTOCOL = "chat.v1"
REDACTED = "[REDACTED]"
PAUSE = 0.3  # the client's pause whose recording is measured, seconds
PAUSE_TOLERANCE_MS = 50
FILTER_HEADERS = ["x-custom-secret"]  # given lower-case: matching must ignore case
FILTER_BODY_KEYS = ["password", "secret", "$.user.ssn", "$.items[*].token"]

_numbers = itertools.count(1)


def fresh(prefix: str) -> str:
    """A path no other test uses: ``/<prefix><n>``."""
    return f"/{prefix}{next(_numbers)}"


def run_in_thread(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on its own event loop in a worker thread (for module fixtures,
    whose set-up must not touch the event loop pytest-asyncio gives each test)."""
    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def write_settings(directory: Path, **recording: Any) -> Path:
    """A ``mockd.yaml`` holding a ``recording:`` block (docs/config.md, "Settings file")."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "mockd.yaml"
    path.write_text(yaml.safe_dump({"recording": recording}, sort_keys=False))
    return path


# --- time ---------------------------------------------------------------------------------------------


def ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 UTC time ``...T..:..:..[.fraction]Z``."""
    match = TIME_RE.fullmatch(text)
    assert match, f"{text!r} is not RFC 3339 UTC with 'Z' and at least millisecond precision"
    base = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(base.timestamp()) * 1_000_000_000 + int(match[2].ljust(9, "0"))


def assert_time(text: Any) -> None:
    assert isinstance(text, str) and TIME_RE.fullmatch(text), \
        f"{text!r} is not RFC 3339 UTC with 'Z' and at least millisecond precision"


# --- the admin API ------------------------------------------------------------------------------------


def admin(server: RunningMockd, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
    return call(method, server.admin_url + path, body, **kwargs)


async def aadmin(server: RunningMockd, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
    return await acall(method, server.admin_url + path, body, **kwargs)


def assert_error(reply: Reply, status: int | tuple[int, ...], code: str | None = None) -> Json:
    """A JSON ``{"error", "message"}`` answer with ``status`` (and ``code``)."""
    statuses = (status,) if isinstance(status, int) else status
    assert reply.status in statuses, f"expected {statuses}, got {reply.status}: {reply.body[:300]!r}"
    assert (reply.headers.get("Content-Type") or "").startswith("application/json"), reply.headers
    document = reply.json()
    assert isinstance(document.get("error"), str) and document["error"], document
    assert isinstance(document.get("message"), str) and document["message"].strip(), document
    if code is not None:
        assert document["error"] == code, document
    return document


def answered(reply: Reply, status: int = 200) -> Json:
    """The JSON of a reply that must have ``status``."""
    assert reply.status == status, reply.text
    document: Json = reply.json()
    return document


def fetch(server: RunningMockd, recording_id: str) -> Json:
    return answered(admin(server, "GET", f"/stream-recordings/{recording_id}"))


async def afetch(server: RunningMockd, recording_id: str) -> Json:
    return answered(await aadmin(server, "GET", f"/stream-recordings/{recording_id}"))


async def poll_sessions(server: RunningMockd, predicate: Callable[[list[Json]], bool],
                        timeout: float = DEADLINE) -> list[Json]:
    """GET the running sessions until ``predicate`` holds or ``timeout`` passes; returns the last list."""
    async def sessions() -> list[Json]:
        reply = await aadmin(server, "GET", "/stream-recordings/sessions")
        assert reply.status == 200, reply.text
        listed: list[Json] = reply.json()
        return listed
    return await poll_value(sessions, predicate, timeout)


async def add_mock(server: RunningMockd, mock: Json) -> None:
    reply = await aadmin(server, "POST", "/mocks", mock)
    assert reply.status in (200, 201), reply.text


def stopped_recording(reply: Reply) -> Json:
    """The recording a ``stop`` answered with (checked to be a 200)."""
    assert reply.status == 200, f"stopping the session failed: {reply.status} {reply.body[:300]!r}"
    return reply.json()


def recording_file(server: RunningMockd, recording_id: str) -> Path:
    return server.data_dir / f"{recording_id}.json"


# --- recordings: reading ------------------------------------------------------------------------------


def frames(recording: Json) -> list[Json]:
    return list(recording["websocket"]["frames"])


def events(recording: Json) -> list[Json]:
    return list(recording["sse"]["events"])


def payload(frame: Json) -> Any:
    """What a recorded frame carried: text, bytes, or (code, reason) for a close frame."""
    if frame["type"] == "close":
        return frame.get("closeCode"), frame.get("closeReason")
    if frame.get("encoding") == "base64":
        return base64.b64decode(frame["data"])
    return frame["data"]


def summary(recording: Json) -> list[tuple[str, str, Any]]:
    return [(frame["direction"], frame["type"], payload(frame)) for frame in frames(recording)]


def seen(frame: SeenFrame) -> tuple[str, Any]:
    """A frame a peer received, as (type, payload) in the recording's terms."""
    if frame.opcode is Opcode.TEXT:
        return "text", frame.data.decode()
    if frame.opcode is Opcode.CLOSE:
        close = Close.parse(frame.data)
        return "close", (close.code, close.reason)
    return {Opcode.BINARY: "binary", Opcode.PING: "ping", Opcode.PONG: "pong"}[frame.opcode], frame.data


def closed(recording: Json, count: int = 1) -> bool:
    """``count`` connections captured and all of them closed."""
    connections = recording.get("connections") or []
    return len(connections) >= count and all("closedAt" in c for c in connections)


def has_frames(count: int) -> Callable[[Json], bool]:
    return lambda recording: len(frames(recording)) >= count


# --- peers --------------------------------------------------------------------------------------------


def ws_client(server: RunningMockd, path: str, **options: Any) -> connect:
    """A ``websockets`` client through mockd that logs every frame it receives, control frames included."""
    settings: dict[str, Any] = {"create_connection": RecordingClientConnection, "ping_interval": None,
                                "max_size": None, "open_timeout": DEADLINE, "close_timeout": DEADLINE}
    return connect(server.ws_url(path), **{**settings, **options})


def client_addr(ws: RecordingClientConnection) -> str:
    host, port = ws.local_address[:2]
    return f"{host}:{port}"


async def upstream_handler(ws: RecordingServerConnection) -> None:
    """Echoes; ``kick`` closes with 4001 "kicked"; ``ping-me`` pings with ``srv-ping``, waits for the pong
    and says ``pong-received``."""
    async for message in ws:
        if message == "kick":
            await ws.close(4001, "kicked")
            return
        if message == "ping-me":
            pong = await ws.ping(b"srv-ping")
            await asyncio.wait_for(pong, DEADLINE)
            await ws.send("pong-received")
            continue
        await ws.send(message)


def pick_subprotocol(connection: Any, offered: Sequence[str]) -> str | None:
    """The upstream's choice: ``chat.v1`` when offered, else none (clients without one are accepted)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


KICK_SCENARIO = {"steps": [{"type": "expect", "match": {"type": "exact", "value": "kick"}, "timeout": "60s"},
                           {"type": "close", "code": 4001, "reason": "kicked"}]}
PING_SCENARIO = {"steps": [{"type": "expect", "match": {"type": "exact", "value": "ping-me"}, "timeout": "60s"},
                           {"type": "ping", "data": base64.b64encode(b"srv-ping").decode()}]}


@asynccontextmanager
async def ws_endpoint(server: RunningMockd, origin: Origin, scenario: Json | None = None) -> AsyncIterator[str]:
    """A WebSocket path on ``server`` served by a fresh echo mock (with ``scenario``) or proxied to a fresh
    ``websockets`` upstream running :func:`upstream_handler`; yields the client path."""
    if origin == "mock":
        path = fresh("wsmock")
        fields: Json = {"subprotocols": [SUBPROTOCOL], "echoMode": True}
        if scenario is not None:
            fields["scenario"] = scenario
        await add_mock(server, ws_mock(path.strip("/"), path, **fields))
        yield path
        return
    prefix = fresh("wsproxy")
    async with ws_upstream(upstream_handler, subprotocols=[SUBPROTOCOL],
                           select_subprotocol=pick_subprotocol) as upstream:
        await add_mock(server, proxy_mock(upstream.url, prefix, mock_id=prefix.strip("/")))
        yield f"{prefix}/chat"


def sse_mock(mock_id: str, path: str, events: list[Json], method: str = "GET", **options: Any) -> Json:
    return {"id": mock_id, "type": "http",
            "http": {"matcher": {"method": method, "path": path}, "sse": {"events": events, **options}}}


def parse_sse(body: bytes) -> list[Json]:
    """The blocks a client read, each as the recording writes an entry: only the fields it had,
    ``type`` "message" for data without an ``event:`` line, data lines joined with ``\\n``."""
    blocks: list[Json] = []
    for raw in re.split(r"\r\n\r\n|\n\n|\r\r", body.decode()):
        if not raw:
            continue
        block: Json = {}
        data: list[str] = []
        for line in re.split(r"\r\n|\n|\r", raw):
            name, colon, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if not name and colon:
                block["comment"] = f"{block['comment']}\n{value}" if "comment" in block else value
            elif name == "event":
                block["type"] = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                block["id"] = value
            elif name == "retry":
                block["retry"] = int(value)
        if data:
            block["data"] = "\n".join(data)
            block.setdefault("type", "message")
        if block:
            blocks.append(block)
    return blocks


ENTRY_FIELDS = ("type", "data", "id", "retry", "comment")


def entry_fields(event: Json) -> Json:
    return {key: event[key] for key in ENTRY_FIELDS if key in event}


# --- the shared server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_settings(tmp_path_factory.mktemp("settings"), filterHeaders=FILTER_HEADERS,
                          filterBodyKeys=FILTER_BODY_KEYS)


@pytest.fixture(scope="module")
def shared(mockd_module: MockdFactory, settings_path: Path) -> RunningMockd:
    """One server for the module: an echo mock on the quick start's ``/ws/chat``; tests add their own mocks."""
    return mockd_module.start(mocks_config(ws_mock("chat", "/ws/chat", subprotocols=[SUBPROTOCOL])),
                              "--settings", str(settings_path))


# ==== 1. the quick start of README.md and docs/recording.md ===========================================


async def test_quick_start_from_the_seed(shared: RunningMockd) -> None:
    reply = await aadmin(shared, "POST", "/stream-recordings/start",
                         {"protocol": "websocket", "path": "/ws/chat", "name": "chat-session"})
    assert reply.status == 201, reply.text
    started = reply.json()
    assert set(started) == {"sessionId", "recordingId"}
    assert started["sessionId"] == started["recordingId"]
    recording_id = started["recordingId"]
    assert ULID_RE.fullmatch(recording_id), recording_id

    join = '{"type":"join","room":"general"}'
    async with ws_client(shared, "/ws/chat?room=general", subprotocols=[SUBPROTOCOL]) as ws:
        await ws.send(join)
        assert await recv(ws) == join
    await poll_recording(shared, recording_id, closed)

    reply = await aadmin(shared, "POST", f"/stream-recordings/{recording_id[:12]}/stop")
    assert reply.status == 200, reply.text
    recording = reply.json()
    assert recording["id"] == recording_id
    assert recording["version"] == "1.0"
    assert recording["name"] == "chat-session"
    assert recording["protocol"] == "websocket"
    assert recording["status"] == "complete"
    assert recording["metadata"]["path"] == "/ws/chat"
    assert recording["metadata"]["query"] == {"room": "general"}
    assert summary(recording)[:2] == [("c2s", "text", join), ("s2c", "text", join)]

    for query in ("", "?protocol=websocket", "?path=/ws/chat"):
        listed = (await aadmin(shared, "GET", f"/stream-recordings{query}")).json()
        assert recording_id in [item["id"] for item in listed["recordings"]], query
    shown = await afetch(shared, recording_id[:12])
    assert shown["id"] == recording_id and shown["status"] == "complete"


async def test_start_body_headers_are_merged_into_metadata(shared: RunningMockd) -> None:
    async with ws_endpoint(shared, "mock") as path:
        recording_id = await start_session(shared, "websocket", path,
                                    headers={"X-Env": "ci", "Authorization": "Bearer from-start"})
        async with ws_client(shared, path, additional_headers={"X-Client": "one"}) as ws:
            await ws.send("x")
            await recv(ws)
        recording = await stop_session(shared, recording_id)
    headers = recording["metadata"]["headers"]
    assert headers.get("X-Env") == "ci"
    assert headers.get("X-Client") == "one"
    assert {value for key, value in headers.items() if key.lower() == "authorization"} == {REDACTED}


# ==== 2. WebSocket capture, field by field ============================================================

TEXT = 'héllo ✓ {"n": 1}'
BINARY = b"\x00\xffbin\x7f\x80"
CLIENT_HEADERS = {"Authorization": "Bearer tok-123", "X-Trace": "trace-1"}
QUERY = "?room=general&lang=en"


@dataclass
class WsRun:
    """One recorded WebSocket conversation and what its peers really saw."""

    origin: Origin
    path: str
    host: str
    started: Json
    stopped: Reply
    client: str  # the client's address, host:port
    client_saw: list[tuple[str, Any]]  # every frame the client received
    client_close: tuple[int | None, str | None]
    subprotocol: str | None
    gap_ms: float = 0.0  # the client's measured gap between its first two sends

    @property
    def recording(self) -> Json:
        return stopped_recording(self.stopped)


async def basic_conversation(server: RunningMockd, origin: Origin) -> WsRun:
    """Text, a measured pause, binary, then the server side closes with 4001 "kicked"."""
    async with ws_endpoint(server, origin, KICK_SCENARIO) as path:
        reply = await aadmin(server, "POST", "/stream-recordings/start",
                             {"protocol": "websocket", "path": path, "name": f"fields-{origin}"})
        assert reply.status == 201, reply.text
        recording_id = reply.json()["recordingId"]
        loop = asyncio.get_running_loop()
        async with ws_client(server, path + QUERY, subprotocols=[SUBPROTOCOL],
                             additional_headers=CLIENT_HEADERS) as ws:
            first = loop.time()
            await ws.send(TEXT)
            assert await recv(ws) == TEXT
            await asyncio.sleep(PAUSE)  # the pause being measured
            second = loop.time()
            await ws.send(BINARY)
            assert await recv(ws) == BINARY
            await ws.send("kick")
            await asyncio.wait_for(ws.wait_closed(), DEADLINE)
            client = client_addr(ws)
            client_close = (ws.close_code, ws.close_reason)
            subprotocol = ws.subprotocol
            client_saw = [seen(frame) for frame in ws.log.frames]
        await poll_recording(server, recording_id, closed)
        stopped = await aadmin(server, "POST", f"/stream-recordings/{recording_id}/stop")
    return WsRun(origin, path, f"127.0.0.1:{server.mock_port}", reply.json(), stopped, client, client_saw,
                 client_close, subprotocol, (second - first) * 1000)


@pytest.fixture(scope="module", params=ORIGINS)
def basic_run(request: pytest.FixtureRequest, shared: RunningMockd) -> WsRun:
    return run_in_thread(lambda: basic_conversation(shared, request.param))


EXPECTED_BASIC = [("c2s", "text", TEXT), ("s2c", "text", TEXT), ("c2s", "binary", BINARY),
                  ("s2c", "binary", BINARY), ("c2s", "text", "kick"), ("s2c", "close", (4001, "kicked")),
                  ("c2s", "close", (4001, "kicked"))]


def test_ws_frames_are_recorded_in_order_with_direction_type_and_data(basic_run: WsRun) -> None:
    assert summary(basic_run.recording) == EXPECTED_BASIC


def test_ws_s2c_frames_are_what_the_client_received(basic_run: WsRun) -> None:
    recorded = [(frame["type"], payload(frame)) for frame in frames(basic_run.recording)
                if frame["direction"] == "s2c"]
    assert recorded == basic_run.client_saw
    assert basic_run.client_close == (4001, "kicked")


def test_ws_text_frame_fields(basic_run: WsRun) -> None:
    text = frames(basic_run.recording)[0]
    assert text["data"] == TEXT  # exact, not re-encoded
    assert text["size"] == len(TEXT.encode())
    assert "encoding" not in text


def test_ws_binary_frame_is_base64_with_encoding(basic_run: WsRun) -> None:
    binary = [frame for frame in frames(basic_run.recording) if frame["type"] == "binary"]
    assert [frame["direction"] for frame in binary] == ["c2s", "s2c"]
    for frame in binary:
        assert frame["encoding"] == "base64"
        assert frame["data"] == base64.b64encode(BINARY).decode()
        assert frame["size"] == len(BINARY)


def test_ws_close_frames_carry_code_reason_and_size(basic_run: WsRun) -> None:
    closes = [frame for frame in frames(basic_run.recording) if frame["type"] == "close"]
    assert [(f["direction"], f.get("closeCode"), f.get("closeReason")) for f in closes] == \
        [("s2c", 4001, "kicked"), ("c2s", 4001, "kicked")]
    for frame in closes:
        assert frame["size"] == 2 + len(b"kicked")  # the close payload: code and reason


def test_ws_close_code_subprotocol_and_metadata(basic_run: WsRun) -> None:
    recording = basic_run.recording
    websocket = recording["websocket"]
    assert websocket["subprotocol"] == basic_run.subprotocol == SUBPROTOCOL
    assert (websocket["closeCode"], websocket["closeReason"]) == (4001, "kicked")
    metadata = recording["metadata"]
    assert metadata["path"] == basic_run.path
    assert metadata["query"] == {"room": "general", "lang": "en"}
    assert metadata["source"] == "manual"
    assert metadata["method"] == "GET"
    assert metadata["host"] == basic_run.host
    assert metadata["headers"].get("X-Trace") == "trace-1"
    assert metadata["headers"].get("Authorization") == REDACTED


def test_ws_recording_top_level_fields(basic_run: WsRun) -> None:
    recording = basic_run.recording
    assert recording["id"] == basic_run.started["recordingId"]
    assert recording["version"] == "1.0"
    assert recording["name"] == f"fields-{basic_run.origin}"
    assert (recording["protocol"], recording["status"], recording["stopReason"]) == ("websocket", "complete", "api")
    assert_time(recording["startTime"])
    assert_time(recording["endTime"])
    elapsed_ms = (ns(recording["endTime"]) - ns(recording["startTime"])) / 1e6
    assert isinstance(recording["duration"], int)
    assert abs(recording["duration"] - elapsed_ms) <= 1
    assert recording["duration"] >= PAUSE * 1000


def assert_stamped_in_order(recording: Json, entries: list[Json]) -> None:
    """Every entry is on connection 1, has an RFC 3339 ``timestamp`` and an integer ``relativeMs``
    that agrees with it (±1 ms) from the recording's start, in the order the entries passed."""
    start_ns = ns(recording["startTime"])
    previous = 0
    for entry in entries:
        assert entry["connection"] == 1
        assert_time(entry["timestamp"])
        assert isinstance(entry["relativeMs"], int) and entry["relativeMs"] >= 0
        assert abs(entry["relativeMs"] - (ns(entry["timestamp"]) - start_ns) / 1e6) <= 1, entry
        assert ns(entry["timestamp"]) >= previous, "entries are not in the order they passed through"
        previous = ns(entry["timestamp"])


def test_ws_frames_have_connection_timestamp_and_integer_relative_ms(basic_run: WsRun) -> None:
    assert_stamped_in_order(basic_run.recording, frames(basic_run.recording))


def test_ws_client_pause_is_kept_in_relative_ms(basic_run: WsRun) -> None:
    text, _, binary = [frame for frame in frames(basic_run.recording) if frame["direction"] == "c2s"][:3]
    assert basic_run.gap_ms >= PAUSE * 1000
    recorded_gap = binary["relativeMs"] - text["relativeMs"]
    assert abs(recorded_gap - basic_run.gap_ms) <= PAUSE_TOLERANCE_MS, (recorded_gap, basic_run.gap_ms)
    stamped_gap = (ns(binary["timestamp"]) - ns(text["timestamp"])) / 1e6
    assert abs(stamped_gap - basic_run.gap_ms) <= PAUSE_TOLERANCE_MS, (stamped_gap, basic_run.gap_ms)


def test_ws_connection_entry(basic_run: WsRun) -> None:
    recording = basic_run.recording
    assert len(recording["connections"]) == 1
    entry = recording["connections"][0]
    assert entry["connection"] == 1
    assert entry["origin"] == basic_run.origin
    assert_time(entry["openedAt"])
    assert_time(entry["closedAt"])
    assert ns(recording["startTime"]) <= ns(entry["openedAt"]) <= ns(entry["closedAt"]) <= ns(recording["endTime"])
    assert isinstance(entry["relativeMs"], int)
    assert entry["remoteAddr"] == basic_run.client
    assert entry["headers"].get("X-Trace") == "trace-1"
    assert entry["headers"].get("Authorization") == REDACTED
    assert entry["query"] == {"room": "general", "lang": "en"}
    assert entry["subprotocol"] == SUBPROTOCOL
    assert (entry["closeCode"], entry["closeReason"]) == (4001, "kicked")


# --- ping / pong --------------------------------------------------------------------------------------


@dataclass
class PingRun:
    origin: Origin
    stopped: Reply
    client_saw: list[tuple[str, Any]]

    @property
    def recording(self) -> Json:
        return stopped_recording(self.stopped)


async def ping_conversation(server: RunningMockd, origin: Origin) -> PingRun:
    """The client pings with ``cli-ping``; the server side pings with ``srv-ping`` and gets its pong."""
    async with ws_endpoint(server, origin, PING_SCENARIO) as path:
        recording_id = await start_session(server, "websocket", path)
        async with ws_client(server, path) as ws:
            pong = await ws.ping(b"cli-ping")
            await asyncio.wait_for(pong, DEADLINE)
            await ws.send("ping-me")
            await ws.log.wait_opcode(Opcode.PING, b"srv-ping")
            if origin == "proxy":  # the upstream confirms that the client's pong reached it
                assert await recv(ws) == "pong-received"

            def pong_recorded(recording: Json) -> bool:
                return any(f["type"] == "pong" and f["direction"] == "c2s" for f in frames(recording))

            await poll_recording(server, recording_id, pong_recorded)
        client_saw = [seen(frame) for frame in ws.log.frames]  # the closing handshake included
        await poll_recording(server, recording_id, closed)
        stopped = await aadmin(server, "POST", f"/stream-recordings/{recording_id}/stop")
    return PingRun(origin, stopped, client_saw)


@pytest.fixture(scope="module", params=ORIGINS)
def ping_run(request: pytest.FixtureRequest, shared: RunningMockd) -> PingRun:
    return run_in_thread(lambda: ping_conversation(shared, request.param))


def test_ws_ping_and_pong_both_directions_with_payloads(ping_run: PingRun) -> None:
    control = [(f["direction"], f["type"], payload(f)) for f in frames(ping_run.recording)
               if f["type"] in ("ping", "pong")]
    assert control == [("c2s", "ping", b"cli-ping"), ("s2c", "pong", b"cli-ping"),
                       ("s2c", "ping", b"srv-ping"), ("c2s", "pong", b"srv-ping")]


def test_ws_ping_pong_frames_are_base64_with_size(ping_run: PingRun) -> None:
    control = [f for f in frames(ping_run.recording) if f["type"] in ("ping", "pong")]
    assert control, "no ping or pong frame recorded"
    for frame in control:
        assert frame["encoding"] == "base64"
        assert frame["size"] == 8


def test_ws_ping_run_is_whole(ping_run: PingRun) -> None:
    """Every frame of the conversation, including the normal close that follows the pings."""
    recording = ping_run.recording
    kinds = [(f["direction"], f["type"]) for f in frames(recording)]
    assert ("c2s", "text") in kinds
    assert kinds[-2:] == [("c2s", "close"), ("s2c", "close")]
    assert recording["websocket"]["closeCode"] == 1000
    assert recording["stats"]["pingPong"] == 4
    recorded_s2c = [(f["type"], payload(f)) for f in frames(recording) if f["direction"] == "s2c"]
    assert recorded_s2c == ping_run.client_saw


# --- client close codes -------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_client_close_4000_is_recorded_as_4000(shared: RunningMockd, origin: Origin) -> None:
    async with ws_endpoint(shared, origin) as path:
        recording_id = await start_session(shared, "websocket", path)
        async with ws_client(shared, path) as ws:
            await ws.send("hi")
            await recv(ws)
            await ws.close(4000, "client leaving")
            answer = (ws.close_code, ws.close_reason)
        await poll_recording(shared, recording_id, closed)
        recording = await stop_session(shared, recording_id)
    closes = [(f["direction"], payload(f)) for f in frames(recording) if f["type"] == "close"]
    assert closes[0] == ("c2s", (4000, "client leaving"))
    assert closes[1:] == [("s2c", answer)]
    assert (recording["websocket"]["closeCode"], recording["websocket"]["closeReason"]) == (4000, "client leaving")
    assert recording["connections"][0]["closeCode"] == 4000


# --- several connections, late start, several sessions, paths -------------------------------------


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_two_concurrent_clients_are_kept_apart(shared: RunningMockd, origin: Origin) -> None:
    async with ws_endpoint(shared, origin) as path:
        recording_id = await start_session(shared, "websocket", path)
        async with ws_client(shared, path) as a, ws_client(shared, path) as b:
            for n in range(3):  # interleaved
                await a.send(f"a{n}")
                await b.send(f"b{n}")
                assert await recv(a) == f"a{n}"
                assert await recv(b) == f"b{n}"
            addresses = {"a": client_addr(a), "b": client_addr(b)}
        recording = await poll_recording(shared, recording_id, lambda r: closed(r, 2))
        recording = await stop_session(shared, recording_id)
    connections = recording["connections"]
    assert sorted(entry["connection"] for entry in connections) == [1, 2]
    number = {entry["remoteAddr"]: entry["connection"] for entry in connections}
    assert set(number) == set(addresses.values())
    for name, address in addresses.items():
        mine = [(f["direction"], f["data"]) for f in frames(recording)
                if f["connection"] == number[address] and f["type"] == "text"]
        assert mine == [(direction, f"{name}{n}") for n in range(3) for direction in ("c2s", "s2c")]
    assert recording["stats"]["connectionCount"] == 2


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_connection_open_before_the_session_is_captured_from_then_on(shared: RunningMockd,
                                                                              origin: Origin) -> None:
    async with ws_endpoint(shared, origin) as path:
        async with ws_client(shared, path + "?early=1") as ws:
            await ws.send("before")
            assert await recv(ws) == "before"
            recording_id = await start_session(shared, "websocket", path)
            await ws.send("after")
            assert await recv(ws) == "after"
            address = client_addr(ws)
        recording = await poll_recording(shared, recording_id, closed)
        recording = await stop_session(shared, recording_id)
    texts = [(f["direction"], f["data"]) for f in frames(recording) if f["type"] == "text"]
    assert texts == [("c2s", "after"), ("s2c", "after")]
    assert len(recording["connections"]) == 1
    entry = recording["connections"][0]
    assert entry["remoteAddr"] == address
    assert ns(entry["openedAt"]) <= ns(recording["startTime"])
    assert recording["metadata"]["query"] == {"early": "1"}


@pytest.mark.parametrize("origin", ORIGINS)
async def test_ws_two_sessions_on_the_same_path_both_get_every_frame(shared: RunningMockd, origin: Origin) -> None:
    async with ws_endpoint(shared, origin) as path:
        first = await start_session(shared, "websocket", path, "twin-1")
        second = await start_session(shared, "websocket", path, "twin-2")
        assert first != second
        async with ws_client(shared, path) as ws:
            for message in ("one", "two", b"\x01three"):
                await ws.send(message)
                assert await recv(ws) == message
        recordings = []
        for recording_id in (first, second):
            await poll_recording(shared, recording_id, closed)
            recordings.append(await stop_session(shared, recording_id))
    expected = [(d, t, m) for m, t in (("one", "text"), ("two", "text"), (b"\x01three", "binary"))
                for d in ("c2s", "s2c")]
    for recording in recordings:
        assert summary(recording)[:6] == expected
    assert summary(recordings[0]) == summary(recordings[1])


async def test_ws_glob_path_captures_every_matching_path_and_nothing_else(shared: RunningMockd) -> None:
    prefix = fresh("glob")
    async with ws_upstream(upstream_handler) as upstream:
        await add_mock(shared, proxy_mock(upstream.url, prefix, mock_id=prefix.strip("/")))
        recording_id = await start_session(shared, "websocket", f"{prefix}/ws/*")
        for name in ("alpha", "beta", "other"):
            client_path = f"{prefix}/ws/{name}" if name != "other" else f"{prefix}/elsewhere"
            async with ws_client(shared, client_path) as ws:
                await ws.send(name)
                assert await recv(ws) == name
        recording = await poll_recording(shared, recording_id, lambda r: closed(r, 2))
        recording = await stop_session(shared, recording_id)
    assert recording["metadata"]["path"] == f"{prefix}/ws/*"
    texts = [(f["connection"], f["direction"], f["data"]) for f in frames(recording) if f["type"] == "text"]
    assert texts == [(1, "c2s", "alpha"), (1, "s2c", "alpha"), (2, "c2s", "beta"), (2, "s2c", "beta")]
    assert len(recording["connections"]) == 2


@pytest.mark.parametrize("protocol", ["websocket", "sse"])
async def test_session_ignores_the_other_protocol_and_other_paths(shared: RunningMockd, protocol: str) -> None:
    """A WebSocket and an SSE mock share a path; a session for one protocol captures only that
    protocol's connection on that path (the control), not the other protocol's, not another path's."""
    path = fresh("mixed")
    await add_mock(shared, ws_mock(path.strip("/") + "-ws", path))
    await add_mock(shared, ws_mock(path.strip("/") + "-ws-other", path + "-other"))
    await add_mock(shared, sse_mock(path.strip("/") + "-sse", path, [{"data": "sse-on-path"}]))
    await add_mock(shared, sse_mock(path.strip("/") + "-sse-other", path + "-other", [{"data": "sse-elsewhere"}]))
    recording_id = await start_session(shared, protocol, path)
    for client_path in (path, path + "-other"):
        async with ws_client(shared, client_path) as ws:
            await ws.send(f"ws:{client_path}")
            assert await recv(ws) == f"ws:{client_path}"
        response = await open_request(shared.mock_port, "GET", client_path)
        assert response.status == 200
        await response.read_body()
        await response.close()
    recording = await poll_recording(shared, recording_id, closed)
    recording = await stop_session(shared, recording_id)
    assert len(recording["connections"]) == 1
    if protocol == "websocket":
        assert "sse" not in recording
        assert {f["data"] for f in frames(recording) if f["type"] == "text"} == {f"ws:{path}"}
    else:
        assert "websocket" not in recording
        assert [e.get("data") for e in events(recording)] == ["sse-on-path"]


@pytest.mark.parametrize("origin", ORIGINS)
async def test_stopping_does_not_close_client_connections(shared: RunningMockd, origin: Origin) -> None:
    async with ws_endpoint(shared, origin) as path:
        recording_id = await start_session(shared, "websocket", path)
        async with ws_client(shared, path) as ws:
            await ws.send("during")
            assert await recv(ws) == "during"
            await poll_recording(shared, recording_id, has_frames(2))
            stopped = await stop_session(shared, recording_id)
            for message in ("after-stop", b"\x02after"):
                await ws.send(message)
                assert await recv(ws) == message  # still open, still relayed
            assert ws.close_code is None
        later = await afetch(shared, recording_id)
    assert summary(stopped) == [("c2s", "text", "during"), ("s2c", "text", "during")]
    assert summary(later) == summary(stopped)  # nothing after the stop was recorded
    assert later["status"] == "complete"


async def test_ws_close_without_status_is_recorded_as_1005(shared: RunningMockd) -> None:
    async with ws_endpoint(shared, "mock") as path:
        recording_id = await start_session(shared, "websocket", path)
        async with ws_client(shared, path) as ws:
            await ws.send("x")
            await recv(ws)
            await send_close_without_status(ws)
        recording = await poll_recording(shared, recording_id, closed)
        recording = await stop_session(shared, recording_id)
    c2s_close = [f for f in frames(recording) if f["type"] == "close" and f["direction"] == "c2s"]
    assert [f.get("closeCode") for f in c2s_close] == [1005]
    assert c2s_close[0]["size"] == 0
    assert recording["websocket"]["closeCode"] == 1005


# ==== 3. SSE capture ==================================================================================

SSE_JSON_SENT = '{"user": {"name": "ann", "ssn": "123-45-6789"},  "ok": true}'
SSE_JSON_STORED = '{"user": {"name": "ann", "ssn": "[REDACTED]"},  "ok": true}'
SSE_WIRE = [b": keepalive\n\n",
            b"event: greet\nid: e1\nretry: 1500\ndata: line1\ndata: line2\n\n",
            b"data: " + SSE_JSON_SENT.encode() + b"\n\n",
            b"retry: 2500\n\n",
            b"event: done\ndata: bye\n\n"]
SSE_MOCK_EVENTS = [{"comment": "keepalive"},
                   {"type": "greet", "data": "line1\nline2", "id": "e1", "retry": 1500},
                   {"data": SSE_JSON_SENT},
                   {"retry": 2500},
                   {"type": "done", "data": "bye"}]
SSE_RECORDED = [{"comment": "keepalive"},
                {"type": "greet", "data": "line1\nline2", "id": "e1", "retry": 1500},
                {"type": "message", "data": SSE_JSON_STORED},
                {"retry": 2500},
                {"type": "done", "data": "bye"}]
SSE_RESPONSE_HEADERS = {"Set-Cookie": "sid=cookie-value", "X-Custom-Secret": "hush", "X-Upstream": "sse-1"}
SSE_POST_BODY = '{"model": "m1", "password": "hunter2", "stream": true}'
SSE_POST_BODY_STORED = '{"model": "m1", "password": "[REDACTED]", "stream": true}'
SSE_CASES = ["mock-GET", "mock-POST", "proxy-GET", "proxy-POST"]


@dataclass
class SseRun:
    origin: Origin
    method: str
    path: str
    stopped: Reply
    client_body: bytes
    client_status: int
    client_headers: list[tuple[str, str]]
    upstream_body: bytes | None = None

    @property
    def recording(self) -> Json:
        return stopped_recording(self.stopped)


async def sse_conversation(server: RunningMockd, case: str) -> SseRun:
    origin, method = case.split("-")
    body = SSE_POST_BODY.encode() if method == "POST" else None
    request_headers = [("Accept", "text/event-stream"), ("authorization", "Bearer sse-token"), ("X-API-KEY", "k-1"),
                      ("X-Trace", "sse-trace")] + ([("Content-Type", "application/json")] if body else [])

    async def converse(path: str) -> SseRun:
        recording_id = await start_session(server, "sse", path, f"sse-{case}")
        response = await open_request(server.mock_port, method, path + "?topic=news", request_headers, body)
        client_body = await response.read_body()
        await response.close()
        await poll_recording(server, recording_id, closed)
        stopped = await aadmin(server, "POST", f"/stream-recordings/{recording_id}/stop")
        return SseRun(origin, method, path, stopped, client_body, response.status, response.headers)

    if origin == "mock":
        path = fresh("ssemock")
        await add_mock(server, sse_mock(path.strip("/"), path, SSE_MOCK_EVENTS, method, headers=SSE_RESPONSE_HEADERS))
        return await converse(path)
    chunks = list(SSE_WIRE)
    headers = [("Content-Type", "text/event-stream"), *SSE_RESPONSE_HEADERS.items()]
    async with streaming_upstream(lambda i: chunks[i] if i < len(chunks) else None, 0.02,
                                  headers=headers) as upstream:
        prefix = fresh("sseproxy")
        await add_mock(server, proxy_mock(upstream.url, prefix, mock_id=prefix.strip("/")))
        run = await converse(f"{prefix}/stream")
        run.upstream_body = upstream.exchanges[0].request.body
        return run


@pytest.fixture(scope="module", params=SSE_CASES)
def sse_run(request: pytest.FixtureRequest, shared: RunningMockd) -> SseRun:
    return run_in_thread(lambda: sse_conversation(shared, request.param))


def test_sse_events_one_entry_per_block_with_only_its_fields(sse_run: SseRun) -> None:
    assert [entry_fields(event) for event in events(sse_run.recording)] == SSE_RECORDED


def test_sse_entries_match_what_the_client_read_except_redaction(sse_run: SseRun) -> None:
    client_blocks = parse_sse(sse_run.client_body)
    assert SSE_JSON_SENT in sse_run.client_body.decode()  # the live stream is not redacted
    expected = [dict(block, data=SSE_JSON_STORED) if block.get("data") == SSE_JSON_SENT else block
                for block in client_blocks]
    assert [entry_fields(event) for event in events(sse_run.recording)] == expected


def test_sse_entries_have_connection_timestamp_and_relative_ms_in_order(sse_run: SseRun) -> None:
    assert_stamped_in_order(sse_run.recording, events(sse_run.recording))


def test_sse_status_headers_and_request(sse_run: SseRun) -> None:
    sse = sse_run.recording["sse"]
    assert sse["status"] == sse_run.client_status == 200
    headers = {key.lower(): value for key, value in sse["headers"].items()}
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-upstream"] == "sse-1"
    assert headers["set-cookie"] == REDACTED
    assert headers["x-custom-secret"] == REDACTED
    client_headers = {key.lower(): value for key, value in sse_run.client_headers}
    assert client_headers["x-custom-secret"] == "hush"  # the live response is not redacted
    if sse_run.method == "POST":
        assert sse["request"] == {"method": "POST", "body": SSE_POST_BODY_STORED}
        if sse_run.upstream_body is not None:
            assert sse_run.upstream_body == SSE_POST_BODY.encode()
    else:
        assert "request" not in sse


def test_sse_metadata_and_connection(sse_run: SseRun) -> None:
    recording = sse_run.recording
    metadata = recording["metadata"]
    assert metadata["path"] == sse_run.path
    assert metadata["method"] == sse_run.method
    assert metadata["query"] == {"topic": "news"}
    assert metadata["source"] == "manual"
    lowered = {key.lower(): value for key, value in metadata["headers"].items()}
    assert lowered["authorization"] == REDACTED
    assert lowered["x-api-key"] == REDACTED
    assert lowered["x-trace"] == "sse-trace"
    [entry] = recording["connections"]
    assert entry["origin"] == sse_run.origin
    assert_time(entry["openedAt"])
    assert_time(entry["closedAt"])
    assert {key.lower(): value for key, value in entry["headers"].items()}["authorization"] == REDACTED


# ==== 4. stats ========================================================================================


def check_stats(recording: Json, path: Path, exported: bytes) -> None:
    stats = recording["stats"]
    on_disk = path.read_bytes()
    assert stats["fileSizeBytes"] == len(on_disk) == len(exported)
    assert json.loads(on_disk)["stats"]["fileSizeBytes"] == len(on_disk)
    assert stats["connectionCount"] == len(recording["connections"])
    if recording["protocol"] == "websocket":
        entries = frames(recording)
        assert stats["frameCount"] == len(entries)
        assert stats["bytesSent"] == sum(f["size"] for f in entries if f["direction"] == "s2c")
        assert stats["bytesReceived"] == sum(f["size"] for f in entries if f["direction"] == "c2s")
        assert stats["textFrames"] == sum(f["type"] == "text" for f in entries)
        assert stats["binaryFrames"] == sum(f["type"] == "binary" for f in entries)
        assert stats["pingPong"] == sum(f["type"] in ("ping", "pong") for f in entries)
        assert stats["closeFrames"] == sum(f["type"] == "close" for f in entries)
    else:
        entries = events(recording)
        assert stats["frameCount"] == stats["eventCount"] == len(entries)
        assert stats["bytesSent"] == sum(len(e["data"].encode()) for e in entries if "data" in e)
        assert stats["bytesReceived"] == 0


def test_ws_stats_match_frames_and_file(shared: RunningMockd, basic_run: WsRun) -> None:
    recording_id = basic_run.recording["id"]
    exported = admin(shared, "POST", f"/stream-recordings/{recording_id}/export").body
    check_stats(basic_run.recording, recording_file(shared, recording_id), exported)
    assert basic_run.recording["stats"]["frameCount"] == len(EXPECTED_BASIC)
    assert basic_run.recording["stats"]["closeFrames"] == 2


def test_sse_stats_match_events_and_file(shared: RunningMockd, sse_run: SseRun) -> None:
    recording_id = sse_run.recording["id"]
    exported = admin(shared, "POST", f"/stream-recordings/{recording_id}/export").body
    check_stats(sse_run.recording, recording_file(shared, recording_id), exported)
    assert sse_run.recording["stats"]["eventCount"] == len(SSE_RECORDED)


def test_stopped_recording_is_the_file_on_disk(shared: RunningMockd, basic_run: WsRun) -> None:
    recording_id = basic_run.recording["id"]
    assert json.loads(recording_file(shared, recording_id).read_bytes()) == basic_run.recording
    assert fetch(shared, recording_id) == basic_run.recording


# ==== 5. redaction ====================================================================================

REDACTION_CASES: list[tuple[str, str, str]] = [
    ("jsonpath-nested", '{"user": {"name": "ann", "ssn": "123-45-6789"}}',
     '{"user": {"name": "ann", "ssn": "[REDACTED]"}}'),
    ("jsonpath-wildcard", '{"items":[{"token":"t1","id":1},{"id":2,"token":"t2"}],"token":"top"}',
     '{"items":[{"token":"[REDACTED]","id":1},{"id":2,"token":"[REDACTED]"}],"token":"top"}'),
    ("plain-key-any-depth", '{"a":{"b":[{"password":"pw1","x":[1,2]}]},"secret":{"deep":1}}',
     '{"a":{"b":[{"password":"[REDACTED]","x":[1,2]}]},"secret":"[REDACTED]"}'),
    ("spacing-and-order-kept", '{ "zeta" : 1.50e0 ,\n  "password" :  "pw" , "alpha":[ 3 , 1 ] }',
     '{ "zeta" : 1.50e0 ,\n  "password" :  "[REDACTED]" , "alpha":[ 3 , 1 ] }'),
    ("non-string-value", '{"user": {"ssn": 123456789, "age": 30}}', '{"user": {"ssn": "[REDACTED]", "age": 30}}'),
    ("top-level-array", '[{"password": "a"}, {"other": "b"}]', '[{"password": "[REDACTED]"}, {"other": "b"}]'),
    ("unlisted-keys-untouched", '{"ssn": "top", "user": {"name": "n"}, "passwords": 1}',
     '{"ssn": "top", "user": {"name": "n"}, "passwords": 1}'),
    ("not-json", "password=hunter2&secret=s", "password=hunter2&secret=s"),
    ("broken-json", '{"password": "pw"', '{"password": "pw"'),
]
REDACTION_HEADERS = {"authorization": "Bearer a", "COOKIE": "c=1", "x-api-key": "k", "X-AUTH-TOKEN": "t",
                     "X-Custom-Secret": "s", "X-Keep": "visible"}


@dataclass
class RedactionRun:
    stopped: Reply
    echoes: list[str]
    upstream_headers: list[tuple[str, str]]
    upstream_received: list[str]

    @property
    def recording(self) -> Json:
        return stopped_recording(self.stopped)


async def redaction_conversation(server: RunningMockd) -> RedactionRun:
    """Every case through the proxy to an echoing upstream, with secret headers and query parameters."""
    prefix = fresh("redact")
    async with ws_upstream(upstream_handler) as upstream:
        await add_mock(server, proxy_mock(upstream.url, prefix, mock_id=prefix.strip("/")))
        path = f"{prefix}/ws"
        recording_id = await start_session(server, "websocket", path)
        echoes = []
        async with ws_client(server, path + "?password=hunter2&room=lobby&secret=s&ssn=1",
                             additional_headers=REDACTION_HEADERS) as ws:
            for _, sent, _ in REDACTION_CASES:
                await ws.send(sent)
                echoes.append(await recv(ws))
        connection = upstream.connections[0]
        assert connection.request is not None
        upstream_headers = list(connection.request.headers.raw_items())
        upstream_received = [frame.data.decode() for frame in connection.log.of(Opcode.TEXT)]
        await poll_recording(server, recording_id, closed)
        stopped = await aadmin(server, "POST", f"/stream-recordings/{recording_id}/stop")
    return RedactionRun(stopped, echoes, upstream_headers, upstream_received)


@pytest.fixture(scope="module")
def redaction_run(shared: RunningMockd) -> RedactionRun:
    return run_in_thread(lambda: redaction_conversation(shared))


@pytest.mark.parametrize(("index", "case"), list(enumerate(REDACTION_CASES)), ids=[c[0] for c in REDACTION_CASES])
def test_body_keys_are_redacted_in_text_frames(redaction_run: RedactionRun, index: int,
                                               case: tuple[str, str, str]) -> None:
    _, sent, stored = case
    texts = [f for f in frames(redaction_run.recording) if f["type"] == "text"]
    pair = texts[2 * index:2 * index + 2]
    assert [(f["direction"], f["data"]) for f in pair] == [("c2s", stored), ("s2c", stored)]
    for frame in pair:
        assert frame["size"] == len(sent.encode())  # the size is the payload's, before redaction
    if stored != sent and stored.lstrip().startswith(("{", "[")):
        json.loads(stored)  # still valid JSON


def test_live_traffic_is_not_redacted(redaction_run: RedactionRun) -> None:
    sent = [case[1] for case in REDACTION_CASES]
    assert redaction_run.echoes == sent
    assert redaction_run.upstream_received == sent
    upstream = {key.lower(): value for key, value in redaction_run.upstream_headers}
    assert upstream["authorization"] == "Bearer a"
    assert upstream["x-custom-secret"] == "s"


@pytest.mark.parametrize("where", ["metadata", "connection"])
def test_default_and_filtered_headers_are_redacted_case_insensitively(redaction_run: RedactionRun,
                                                                     where: str) -> None:
    recording = redaction_run.recording
    headers = recording["metadata"]["headers"] if where == "metadata" else recording["connections"][0]["headers"]
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in ("authorization", "cookie", "x-api-key", "x-auth-token", "x-custom-secret"):
        assert lowered.get(name) == REDACTED, (name, headers)
    assert lowered.get("x-keep") == "visible"


@pytest.mark.parametrize("where", ["metadata", "connection"])
def test_query_parameters_named_like_body_keys_are_redacted(redaction_run: RedactionRun, where: str) -> None:
    recording = redaction_run.recording
    query = recording["metadata"]["query"] if where == "metadata" else recording["connections"][0]["query"]
    # plain keys redact query parameters of that name; JSONPath entries ($.user.ssn) name no parameter
    assert query == {"password": REDACTED, "room": "lobby", "secret": REDACTED, "ssn": "1"}


async def test_custom_redact_value(mockd: MockdFactory, tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "custom", filterBodyKeys=["password"], redactValue="<<hidden>>")
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")), "--settings", str(settings))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    async with ws_client(server, "/ws/echo?password=p", additional_headers={"Cookie": "c=1"}) as ws:
        await ws.send('{"password": "pw", "n": 1}')
        assert await recv(ws) == '{"password": "pw", "n": 1}'
    await poll_recording(server, recording_id, closed)
    recording = await stop_session(server, recording_id)
    assert [f["data"] for f in frames(recording) if f["type"] == "text"] == ['{"password": "<<hidden>>", "n": 1}'] * 2
    assert recording["metadata"]["headers"]["Cookie"] == "<<hidden>>"
    assert recording["metadata"]["query"] == {"password": "<<hidden>>"}


async def test_secret_never_reaches_the_data_directory(mockd: MockdFactory, tmp_path: Path) -> None:
    secret = f"S3cr3t{uuid4().hex}"
    settings = write_settings(tmp_path / "secret", filterHeaders=["X-Custom-Secret"], filterBodyKeys=FILTER_BODY_KEYS)
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")), "--settings", str(settings))
    messages = [json.dumps({"password": secret, "nested": {"secret": secret}}),
                json.dumps({"user": {"ssn": secret}}), json.dumps({"items": [{"token": secret}]})]
    chunks = [f'data: {{"secret": "{secret}"}}\n\n'.encode(), b"data: plain\n\n"]

    def grep() -> list[str]:
        return sorted(str(p) for p in server.data_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes())

    async with streaming_upstream(lambda i: chunks[i] if i < len(chunks) else None, 0.01,
                                  headers=[("Content-Type", "text/event-stream"),
                                           ("Set-Cookie", f"sid={secret}")]) as upstream:
        await add_mock(server, proxy_mock(upstream.url, "/sse", mock_id="sse-up"))
        ws_id = await start_session(server, "websocket", "/ws/echo")
        sse_id = await start_session(server, "sse", "/sse/*")
        async with ws_client(server, f"/ws/echo?password={secret}",
                             additional_headers={"Authorization": f"Bearer {secret}", "Cookie": f"k={secret}",
                                                 "X-Api-Key": secret, "X-Custom-Secret": secret}) as ws:
            for message in messages:
                await ws.send(message)
                assert await recv(ws) == message  # live traffic carries the secret
            await poll_recording(server, ws_id, has_frames(2 * len(messages)))
            assert grep() == [], "a secret reached the disk while recording"
        response = await open_request(server.mock_port, "POST", f"/sse/chat?secret={secret}",
                                      [("Authorization", f"Bearer {secret}")],
                                      json.dumps({"password": secret, "prompt": "hi"}).encode())
        assert secret.encode() in await response.read_body()
        await response.close()
        for recording_id in (ws_id, sse_id):
            await poll_recording(server, recording_id, closed)
            reply = await aadmin(server, "POST", f"/stream-recordings/{recording_id}/stop")
            assert reply.status == 200 and secret not in reply.text
            exported = await aadmin(server, "POST", f"/stream-recordings/{recording_id}/export")
            assert secret not in exported.text
    sse = await afetch(server, sse_id)
    assert len(events(sse)) == 2 and sse["sse"]["request"]["method"] == "POST"
    assert len(frames(await afetch(server, ws_id))) >= 2 * len(messages)
    assert grep() == []
    assert secret not in server.stdout + server.stderr


# ==== 6. limits and live sessions =====================================================================


async def test_max_frames_stops_the_session_by_itself(shared: RunningMockd) -> None:
    async with ws_endpoint(shared, "mock") as path:
        recording_id = await start_session(shared, "websocket", path, maxFrames=4)
        async with ws_client(shared, path) as ws:
            for n in range(5):
                await ws.send(f"m{n}")
                assert await recv(ws) == f"m{n}"  # the client is not affected by the limit
            sessions = await poll_sessions(shared, lambda s: recording_id not in [x["id"] for x in s])
            assert recording_id not in [x["id"] for x in sessions], "maxFrames did not stop the session"
            await ws.send("still-open")
            assert await recv(ws) == "still-open"
    recording = await settled(shared, recording_id)
    assert (recording["status"], recording.get("stopReason")) == ("complete", "maxFrames")
    assert summary(recording) == [(d, "text", f"m{n}") for n in range(2) for d in ("c2s", "s2c")]
    assert recording["stats"]["frameCount"] == 4
    stop_again = await aadmin(shared, "POST", f"/stream-recordings/{recording_id}/stop")
    assert_error(stop_again, 409, "not_recording")


async def test_max_duration_stops_the_session_by_itself(shared: RunningMockd) -> None:
    path = fresh("duration")
    loop = asyncio.get_running_loop()
    begun = loop.time()
    recording_id = await start_session(shared, "websocket", path, maxDurationMs=400)
    sessions = await poll_sessions(shared, lambda s: recording_id not in [x["id"] for x in s])
    ended = loop.time()
    assert recording_id not in [x["id"] for x in sessions], "maxDurationMs did not stop the session"
    recording = await settled(shared, recording_id)
    assert (recording["status"], recording.get("stopReason")) == ("complete", "maxDurationMs")
    assert 400 <= recording["duration"] <= (ended - begun) * 1000 + 50


async def test_sessions_list_live_counts_and_running_recording(shared: RunningMockd) -> None:
    async with ws_endpoint(shared, "mock") as path:
        recording_id = await start_session(shared, "websocket", path, "live-one")
        async with ws_client(shared, path) as a, ws_client(shared, path) as b:
            for ws, message in ((a, "a1"), (b, "b1"), (a, "a2")):
                await ws.send(message)
                assert await recv(ws) == message

            def counted(sessions: list[Json]) -> bool:
                mine = [s for s in sessions if s["id"] == recording_id]
                return bool(mine) and mine[0]["frameCount"] == 6 and mine[0]["connectionCount"] == 2

            sessions = await poll_sessions(shared, counted)
            [mine] = [s for s in sessions if s["id"] == recording_id]
            assert (mine["frameCount"], mine["connectionCount"]) == (6, 2)
            assert (mine["name"], mine["protocol"], mine["path"]) == ("live-one", "websocket", path)
            assert_time(mine["startTime"])
            assert isinstance(mine["durationMs"], int) and mine["durationMs"] >= 0

            running = await afetch(shared, recording_id)
            assert running["status"] == "recording"
            assert running["id"] == recording_id
            assert {(f["direction"], f["data"]) for f in frames(running)} == \
                {(d, m) for m in ("a1", "b1", "a2") for d in ("c2s", "s2c")}
            assert len(running["connections"]) == 2

            stopped = await aadmin(shared, "POST", f"/stream-recordings/{recording_id}/stop")
            assert stopped.status == 200 and stopped.json()["status"] == "complete"
    again = await aadmin(shared, "POST", f"/stream-recordings/{recording_id}/stop")
    assert_error(again, 409, "not_recording")
    sessions = (await aadmin(shared, "GET", "/stream-recordings/sessions")).json()
    assert recording_id not in [s["id"] for s in sessions]


# ==== 7. admin API errors =============================================================================

UNKNOWN_ID = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
ID_ROUTES = [("GET", "/stream-recordings/{id}"), ("DELETE", "/stream-recordings/{id}"),
             ("POST", "/stream-recordings/{id}/stop"), ("POST", "/stream-recordings/{id}/export")]


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
@pytest.mark.parametrize("reference", [UNKNOWN_ID, UNKNOWN_ID[:12]])
def test_unknown_id_is_404_not_found(shared: RunningMockd, method: str, route: str, reference: str) -> None:
    assert_error(admin(shared, method, route.format(id=reference)), 404, "not_found")


@pytest.fixture(scope="module")
def two_recordings(shared: RunningMockd) -> tuple[str, str]:
    path = fresh("twins")
    first = start_session_sync(shared, "websocket", path, "twin-a")
    second = start_session_sync(shared, "websocket", path, "twin-b")
    stop_session_sync(shared, first)
    stop_session_sync(shared, second)
    return first, second


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
@pytest.mark.parametrize("prefix_kind", ["common-prefix", "one-character"])
def test_ambiguous_prefix_is_409_listing_the_candidates(shared: RunningMockd, two_recordings: tuple[str, str],
                                                        method: str, route: str, prefix_kind: str) -> None:
    common = ""
    for x, y in zip(*two_recordings):
        if x != y:
            break
        common += x
    assert common, "two ULIDs made a moment apart share their leading timestamp characters"
    prefix = common if prefix_kind == "common-prefix" else common[:1]
    reply = admin(shared, method, route.format(id=prefix))
    assert_error(reply, 409, "ambiguous_id")
    for recording_id in two_recordings:
        assert recording_id in reply.text, "the candidates are listed"
    for recording_id in two_recordings:  # and nothing was done to them
        assert fetch(shared, recording_id).get("deleted") is not True


HOSTILE_IDS = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2e%2e",
               "..", ".index", ".index.json", "%00", "01ABC%00", "A" * 10_000, "x" * 27, "0" * 26 + "/../x"]


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
@pytest.mark.parametrize("hostile", HOSTILE_IDS, ids=lambda h: h[:30])
def test_hostile_ids_are_a_json_400_or_404(shared: RunningMockd, method: str, route: str, hostile: str) -> None:
    assert_error(admin(shared, method, route.format(id=hostile)), (400, 404))


@pytest.mark.parametrize("traversal", ["../{id}", "..%2F{id}", "%2e%2e%2f{id}", "..%5C{id}"])
def test_nothing_outside_the_data_directory_is_read(shared: RunningMockd, two_recordings: tuple[str, str],
                                                    traversal: str) -> None:
    """A valid recording file planted beside the data directory cannot be reached through the id."""
    planted = "7" + "Y" * 25
    source = recording_file(shared, two_recordings[0]).read_text()
    (shared.data_dir.parent / f"{planted}.json").write_text(source.replace(two_recordings[0], planted))
    for method, route in ID_ROUTES:
        url = shared.admin_url + route.format(id=traversal.format(id=planted))
        result = subprocess.run(["curl", "-s", "--path-as-is", "-X", method, "-o", "/dev/null", "-w", "%{http_code}",
                                 url], capture_output=True, text=True, timeout=30)
        assert result.stdout in ("400", "404"), (method, url, result.stdout)
    assert (shared.data_dir.parent / f"{planted}.json").exists()


BAD_STARTS: list[tuple[str, bytes, str]] = [
    ("not-json", b'{"protocol": "websocket", "path": ', "invalid_json"),
    ("garbage", b"\xff\xfe\x00", "invalid_json"),
    ("unknown-protocol", b'{"protocol": "mqtt", "path": "/x"}', "invalid_protocol"),
    ("protocol-not-a-string", b'{"protocol": 5, "path": "/x"}', "invalid_protocol"),
    ("no-protocol", b'{"path": "/x"}', "invalid_protocol"),
    ("no-path", b'{"protocol": "websocket"}', "invalid_path"),
    ("relative-path", b'{"protocol": "sse", "path": "events"}', "invalid_path"),
    ("path-not-a-string", b'{"protocol": "websocket", "path": 7}', "invalid_path"),
]


@pytest.mark.parametrize(("body", "code"), [(b, c) for _, b, c in BAD_STARTS], ids=[n for n, _, _ in BAD_STARTS])
def test_bad_start_body_is_400(shared: RunningMockd, body: bytes, code: str) -> None:
    def session_ids() -> set[str]:
        return {session["id"] for session in admin(shared, "GET", "/stream-recordings/sessions").json()}

    before = session_ids()
    assert_error(admin(shared, "POST", "/stream-recordings/start", raw=body), 400, code)
    assert session_ids() == before  # nothing was started


@pytest.mark.parametrize("action", ["stop", "export"])
@pytest.mark.parametrize("body", [None, b"", b"{}"], ids=["no-body", "empty-body", "empty-object"])
def test_stop_and_export_accept_an_empty_body(shared: RunningMockd, action: str, body: bytes | None) -> None:
    recording_id = start_session_sync(shared, "websocket", fresh("emptybody"))
    if action == "export":
        stop_session_sync(shared, recording_id)
    target = f"/stream-recordings/{recording_id[:12]}/{action}"
    if body is None:  # curl sends neither a body nor a Content-Length
        text, status = curl("-X", "POST", shared.admin_url + target)
        assert status == "200", text
        assert json.loads(text)["id"] == recording_id
        return
    headers = {"Content-Length": str(len(body))} | ({"Content-Type": "application/json"} if body else {})
    reply = send(shared.admin_port, "POST", target, headers, body)
    assert reply.status == 200, reply.text
    assert reply.json()["id"] == recording_id


# ==== 8. export =======================================================================================


@pytest.mark.parametrize("reference", ["full", "prefix"])
def test_export_returns_the_file_bytes_as_an_attachment(shared: RunningMockd, basic_run: WsRun,
                                                        reference: str) -> None:
    recording_id = basic_run.recording["id"]
    reply = admin(shared, "POST",
                  f"/stream-recordings/{recording_id if reference == 'full' else recording_id[:12]}/export")
    assert reply.status == 200
    assert reply.body == recording_file(shared, recording_id).read_bytes()
    assert reply.headers["Content-Disposition"] == f'attachment; filename="{recording_id}.json"'
    assert (reply.headers.get("Content-Type") or "").startswith("application/json")
    assert json.loads(reply.body)["stats"]["fileSizeBytes"] == len(reply.body)


def curl(*args: str, cwd: Path | None = None) -> tuple[str, str]:
    """Run curl; returns (body, status code)."""
    result = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                            timeout=30, cwd=cwd)
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return body, status


async def test_the_seed_curl_commands(shared: RunningMockd, tmp_path: Path) -> None:
    base = shared.admin_url
    body, status = await asyncio.to_thread(
        curl, "-X", "POST", f"{base}/stream-recordings/start", "-H", "Content-Type: application/json",
        "-d", '{"protocol": "websocket", "path": "/ws/chat", "name": "chat-session-1"}')
    assert status == "201", body
    started = json.loads(body)
    assert started["sessionId"] == started["recordingId"]
    recording_id = started["recordingId"]
    async with ws_client(shared, "/ws/chat", subprotocols=[SUBPROTOCOL]) as ws:
        await ws.send('{"type":"join","room":"general"}')
        await recv(ws)
    await poll_recording(shared, recording_id, closed)
    short = recording_id[:12]

    body, status = await asyncio.to_thread(curl, "-X", "POST", f"{base}/stream-recordings/{short}/stop")
    assert status == "200", body
    assert json.loads(body)["status"] == "complete"
    for query in ("", "?protocol=websocket", "?path=/ws/chat"):
        body, status = await asyncio.to_thread(curl, f"{base}/stream-recordings{query}")
        assert status == "200" and recording_id in [r["id"] for r in json.loads(body)["recordings"]], query
    body, status = await asyncio.to_thread(curl, f"{base}/stream-recordings/{short}")
    assert status == "200" and json.loads(body)["name"] == "chat-session-1"

    _, status = await asyncio.to_thread(curl, "-X", "POST", f"{base}/stream-recordings/{short}/export",
                                        "-o", "recording.json", cwd=tmp_path)
    assert status == "200"
    exported = (tmp_path / "recording.json").read_bytes()
    assert exported == recording_file(shared, recording_id).read_bytes()
    assert json.loads(exported)["id"] == recording_id
