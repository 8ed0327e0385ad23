"""Bounded, validated replay inputs and replays that cannot go on (issue 13, part A), over real sockets.

* ``timingScale`` is a finite number from 0 to 1000, ``expiresAfter`` more than 0 and at most a day:
  anything else is ``400 {"error", "message"}`` and makes no replay;
* ``advance`` takes ``count`` or ``until``, never both (400); an ``until`` no remaining frame contains
  sends nothing and answers ``409 no_match``;
* ``pause`` before a client has connected is ``409 no_client``;
* a replay that fails while sending ends in ``error`` with the cause (logged on the ``mockd.replay`` logger), its
  WebSocket client closed with 1011, its SSE stream cut — never a silent ``complete``;
* a pending replay no client takes within ``expiresAfter`` seconds becomes ``expired`` and leaves its
  path to the mocks;
* convert's ``minDelay``/``maxDelay`` alone imply ``simplifyTiming`` (API and CLI).

One ``mockd serve`` process serves the module. Its recordings are real: a scenario mock is recorded
through the admin API by a ``websockets`` client, then the server is stopped and a copy of that
recording with a binary frame whose base64 cannot be decoded is put beside it (a corrupt file, as a
disk or a hand edit makes them) before the server starts again on the same data directory. The SSE
failure is a fault injected into an in-process server (``mockd.Server``): its event encoder raises.
Nothing sleeps in place of synchronisation: tests poll the API with a deadline or await frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from processes import MockdFactory, RunningMockd, run_mockd
from configs import mocks_config, write_config, ws_mock
from polling import poll
from httpclient import Reply, acall, call
from sessions import start_session_sync, stop_session_sync
from test_replay import replay_status, send_step, start_replay, wait_replay
from ulid import ULID
from upstreams import (
    RecordingClientConnection,
    open_request,
    open_ws,
    recv,
    server_close,
)
from websockets.frames import Opcode

import mockd.playback.drivers
from mockd import Server
from mockd.admin.client import ApiError, Client
from mockd.playback.plan import ReplayOptions

SOON = 10.0  # s: for anything that should happen "soon" on a noisy two-core machine
WELCOME, TICK, GOODBYE = '{"type":"welcome"}', '{"type":"tick"}', '{"type":"goodbye"}'
BINARY = b"\x00\x01\x02\xff"
CLOSE_CODE, CLOSE_REASON = 4000, "done"
CORRUPT_BASE64 = "AAE"  # three characters: "Incorrect padding"
EXPIRES_AFTER = 0.5  # s: the short expiry the expiry tests wait out
DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.CLOSE)


CHAT_SCENARIO = {"name": "chat", "loop": False, "steps": [
    send_step(WELCOME),
    send_step(TICK, "20ms"),
    {"type": "send", "message": {"type": "binary", "value": "AAEC/w==", "delay": "20ms"}},
    send_step(GOODBYE, "20ms"),
    {"type": "close", "code": CLOSE_CODE, "reason": CLOSE_REASON},
]}
SSE_EVENTS = [{"data": "first"}, {"data": "second"}, {"data": "third"}]


def sse_mock(mock_id: str, path: str) -> dict[str, Any]:
    return {"id": mock_id, "type": "http", "http": {"matcher": {"method": "GET", "path": path},
                                                    "sse": {"events": SSE_EVENTS, "timing": {"fixedDelay": 10}}}}


CONFIG = mocks_config(
    ws_mock("chat", "/ws/chat", scenario=CHAT_SCENARIO),
    ws_mock("fallback", "/ws/fallback", scenario={"name": "fallback", "steps": [send_step("from-mock")]}),
    sse_mock("events", "/events"),
)


# --- the admin API ----------------------------------------------------------------------------------


async def api(server: RunningMockd, method: str, path: str, body: Any = None, **options: Any) -> Reply:
    return await acall(method, server.admin_url + path, body, **options)




def is_status(value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status["status"] == value


def bound(status: dict[str, Any]) -> bool:
    return status["status"] == "playing" and status["client"] is not None


async def replay_ids(server: RunningMockd) -> set[str]:
    reply = await api(server, "GET", "/replay")
    assert reply.status == 200, reply.text
    return {item["id"] for item in reply.json()}


async def advance(server: RunningMockd, replay_id: str, body: Any = None) -> Reply:
    return await api(server, "POST", f"/replay/{replay_id}/advance", body)


def assert_error(reply: Reply, status: int, code: str | None = None) -> dict[str, Any]:
    assert reply.status == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) >= {"error", "message"} and body["message"], body
    if code is not None:
        assert body["error"] == code, body
    return body


def unique_path(prefix: str = "/replayed") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def ws_client(server: RunningMockd, path: str) -> AsyncIterator[RecordingClientConnection]:
    """A ``websockets`` client that logs every frame it receives (close frames too)."""
    async with open_ws(server.ws_url(path), create_connection=RecordingClientConnection) as ws:
        assert isinstance(ws, RecordingClientConnection)
        yield ws


async def data_frames(ws: RecordingClientConnection, count: int, timeout: float = SOON) -> list[bytes]:
    """The payloads of the first ``count`` frames of the kinds a replay sends, once they have arrived."""
    await ws.log.wait_for(lambda _: len(ws.log.of(*DATA_OPCODES)) >= count, timeout)
    return [frame.data for frame in ws.log.of(*DATA_OPCODES)[:count]]


# --- the recordings -----------------------------------------------------------------------------------


@dataclass
class World:
    server: RunningMockd
    chat: dict[str, Any]  # a real recording of the chat scenario
    sse: dict[str, Any]  # a real recording of the SSE mock
    corrupt: str  # the id of the chat recording with an undecodable binary frame



def record(server: RunningMockd, protocol: str, path: str, traffic: Callable[[], None], frames: int) -> dict[str, Any]:
    """Record ``traffic`` through the admin API; stop once the session has taken in ``frames`` frames."""
    recording_id = start_session_sync(server, protocol, path)
    traffic()

    def captured() -> bool:
        sessions = call("GET", f"{server.admin_url}/stream-recordings/sessions").json()
        return any(item["id"] == recording_id and item["frameCount"] >= frames for item in sessions)

    poll(captured, f"session {recording_id} to take in {frames} frames")
    return stop_session_sync(server, recording_id)


def chat_traffic(server: RunningMockd) -> None:
    async def run() -> None:
        async with open_ws(server.ws_url("/ws/chat")) as ws:
            messages, close = await server_close(ws)
            assert messages == [WELCOME, TICK, BINARY, GOODBYE]
            assert (close.code, close.reason) == (CLOSE_CODE, CLOSE_REASON)

    asyncio.run(run())


def sse_traffic(server: RunningMockd) -> None:
    reply = call("GET", f"{server.mock_url}/events")
    assert reply.status == 200 and "data: third" in reply.text, reply.text


def corrupt_copy(recording: dict[str, Any], data_dir: Path) -> str:
    """Write a copy of ``recording`` whose binary frame's base64 cannot be decoded; returns its id."""
    copy = json.loads(json.dumps(recording))
    copy["id"], copy["name"] = str(ULID()), "corrupt"
    binaries = [frame for frame in copy["websocket"]["frames"] if frame["type"] == "binary"]
    assert len(binaries) == 1, copy["websocket"]["frames"]
    binaries[0]["data"] = CORRUPT_BASE64
    (data_dir / f"{copy['id']}.json").write_text(json.dumps(copy, indent=2))
    return str(copy["id"])


@pytest.fixture(scope="module")
def world(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> World:
    data_dir = tmp_path_factory.mktemp("validation") / "data"
    recorder = mockd_module.start(CONFIG, data_dir=data_dir)
    chat = record(recorder, "websocket", "/ws/chat", lambda: chat_traffic(recorder), 6)  # 4 + both closes
    sse = record(recorder, "sse", "/events", lambda: sse_traffic(recorder), 3)
    assert recorder.stop() == 0
    corrupt = corrupt_copy(chat, data_dir)
    server = mockd_module.start(CONFIG, "--log-format", "json", data_dir=data_dir)
    return World(server, chat, sse, corrupt)


@pytest.fixture
def server(world: World) -> RunningMockd:
    return world.server


# --- timingScale and expiresAfter are bounded --------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b'{"timingScale": 1e308}', b'{"timingScale": 1001}', b'{"timingScale": -1}', b'{"timingScale": -0.001}',
    b'{"timingScale": 1e400}', b'{"timingScale": Infinity}', b'{"timingScale": NaN}', b'{"timingScale": "fast"}',
    b'{"timingScale": null}',
], ids=["1e308", "1001", "minus-one", "slightly-negative", "overflows-to-inf", "Infinity", "NaN", "a-string", "null"])
async def test_a_timing_scale_out_of_range_is_400_and_makes_no_replay(world: World, server: RunningMockd,
                                                                      raw: bytes) -> None:
    before = await replay_ids(server)
    reply = await api(server, "POST", f"/stream-recordings/{world.chat['id']}/replay", raw=raw)
    assert_error(reply, 400)
    assert await replay_ids(server) == before


@pytest.mark.parametrize("scale", [0, 0.001, 1000])
async def test_the_ends_of_the_timing_scale_range_are_accepted(world: World, server: RunningMockd,
                                                               scale: float) -> None:
    replay_id = await start_replay(server, world.chat["id"], timingScale=scale, path=unique_path())
    assert (await replay_status(server, replay_id))["status"] == "pending"
    assert (await api(server, "DELETE", f"/replay/{replay_id}")).status == 204


@pytest.mark.parametrize("value", [0, -1, 86_401, 1e308, "soon", None], ids=str)
async def test_an_expires_after_out_of_range_is_400(world: World, server: RunningMockd, value: Any) -> None:
    before = await replay_ids(server)
    reply = await api(server, "POST", f"/stream-recordings/{world.chat['id']}/replay", {"expiresAfter": value})
    assert "expiresAfter" in assert_error(reply, 400, "invalid_options")["message"]
    assert await replay_ids(server) == before


def test_options_built_in_python_are_checked_too() -> None:
    for options in ({"timing_scale": math.inf}, {"timing_scale": math.nan}, {"timing_scale": -1.0},
                    {"timing_scale": 1000.5}, {"expires_after": 0.0}, {"expires_after": math.inf}, {"timeout": 0}):
        with pytest.raises(ValueError):
            ReplayOptions(**options)
    assert ReplayOptions().expires_after == 300.0  # the documented default


async def test_the_python_client_gets_the_400_as_an_api_error(world: World, server: RunningMockd) -> None:
    client = Client(server.admin_url)
    with pytest.raises(ApiError) as caught:
        await asyncio.to_thread(client.replay, world.chat["id"], timing_scale=1e308)
    assert (caught.value.status, caught.value.code) == (400, "invalid_options")
    assert "timingScale" in caught.value.message


# --- advance: count or until, and an until that matches nothing ---------------------------------------


@pytest.mark.parametrize("body", [{"count": 1, "until": "tick"}, {"count": 3, "until": "no such text"}],
                         ids=["count-1-and-until", "count-3-and-until"])
async def test_advance_with_both_count_and_until_is_400_and_sends_nothing(world: World, server: RunningMockd,
                                                                         body: dict[str, Any]) -> None:
    path = unique_path()
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path)
    async with ws_client(server, path) as ws:
        await wait_replay(server, replay_id, bound, "bound to its client")
        assert_error(await advance(server, replay_id, body), 400)
        status = await replay_status(server, replay_id)
        assert (status["framesSent"], status["status"]) == (0, "playing")
        one = await advance(server, replay_id, {})  # {} still means one frame
        assert one.status == 200 and one.json()["framesSent"] == 1, one.text
        # the first frame the client ever gets is the first recorded one: the 400 sent nothing
        assert await data_frames(ws, 1) == [WELCOME.encode()]
    assert (await api(server, "DELETE", f"/replay/{replay_id}")).status == 204


async def test_advance_until_text_no_remaining_frame_contains_is_409_no_match_and_sends_nothing(
        world: World, server: RunningMockd) -> None:
    path = unique_path()
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path)
    async with ws_client(server, path) as ws:
        await wait_replay(server, replay_id, bound, "bound to its client")
        first = await advance(server, replay_id, {"until": "welcome"})
        assert first.status == 200 and first.json()["framesSent"] == 1, first.text
        before = await replay_status(server, replay_id)
        for text in ("no frame says this", "welcome"):  # "welcome" was in a frame already sent
            body = assert_error(await advance(server, replay_id, {"until": text}), 409, "no_match")
            assert text in body["message"]
        after = await replay_status(server, replay_id)
        assert (after["framesSent"], after["currentFrame"], after["status"]) == (1, 1, "playing")
        assert before["framesSent"] == 1
        nxt = await advance(server, replay_id, {"until": "goodbye"})
        assert nxt.status == 200 and nxt.json()["framesSent"] == 3, nxt.text
        # exactly the frames asked for, in order: nothing went out for the 409s
        assert await data_frames(ws, 4) == [WELCOME.encode(), TICK.encode(), BINARY, GOODBYE.encode()]
        assert len(ws.log.of(*DATA_OPCODES)) == 4
        last = await advance(server, replay_id, {"until": CLOSE_REASON})  # a close frame's reason counts
        assert last.status == 200 and (last.json()["framesSent"], last.json()["complete"]) == (1, True), last.text
        close = (await ws.log.wait_opcode(Opcode.CLOSE)).close()
        assert close is not None and (close.code, close.reason) == (CLOSE_CODE, CLOSE_REASON)
    await wait_replay(server, replay_id, is_status("complete"), "complete")


async def test_advance_until_does_not_look_into_base64_payloads(world: World, server: RunningMockd) -> None:
    binary = next(frame for frame in world.chat["websocket"]["frames"] if frame["type"] == "binary")
    path = unique_path()
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path)
    async with ws_client(server, path):
        await wait_replay(server, replay_id, bound, "bound to its client")
        assert_error(await advance(server, replay_id, {"until": binary["data"]}), 409, "no_match")
        assert (await replay_status(server, replay_id))["framesSent"] == 0
    assert (await api(server, "DELETE", f"/replay/{replay_id}")).status in (204, 404)


# --- pause before a client -----------------------------------------------------------------------------


async def test_pause_on_a_pending_replay_is_409_and_the_replay_still_plays(world: World, server: RunningMockd) -> None:
    path = unique_path()
    replay_id = await start_replay(server, world.chat["id"], timingScale=0, path=path)
    assert_error(await api(server, "POST", f"/replay/{replay_id}/pause"), 409, "no_client")
    assert_error(await api(server, "POST", f"/replay/{replay_id}/resume"), 409)
    assert (await replay_status(server, replay_id))["status"] == "pending"
    async with ws_client(server, path) as ws:
        messages, close = await server_close(ws)
    assert messages == [WELCOME, TICK, BINARY, GOODBYE] and close.code == CLOSE_CODE
    status = await wait_replay(server, replay_id, is_status("complete"), "complete")
    assert status["framesSent"] == status["totalFrames"] == 5


# --- a replay that cannot go on ends in error ---------------------------------------------------------


def replay_warnings(server: RunningMockd, replay_id: str) -> list[dict[str, Any]]:
    """The server's JSON log lines from the ``mockd.replay`` logger about this replay."""
    return [entry for entry in server.log_entries()
            if entry.get("logger") == "mockd.replay" and replay_id in entry.get("message", "")]


def assert_logged(server: RunningMockd, replay_id: str) -> dict[str, Any]:
    poll(lambda: bool(replay_warnings(server, replay_id)), f"the warning about replay {replay_id}")
    entry = replay_warnings(server, replay_id)[0]
    assert entry["level"] == "warning", entry
    assert "server frame 3" in entry["message"] and "padding" in entry["message"], entry
    assert "binascii" in entry.get("exception", "") or "Error" in entry.get("exception", ""), entry
    return entry


async def test_a_replay_whose_frame_cannot_be_sent_ends_in_error_and_closes_its_client_with_1011(
        world: World, server: RunningMockd) -> None:
    path = unique_path()
    replay_id = await start_replay(server, world.corrupt, timingScale=0, path=path)
    async with ws_client(server, path) as ws:
        messages, close = await server_close(ws)
    assert messages == [WELCOME, TICK]  # the frames before the corrupt one went out
    assert close.code == 1011, close
    status = await wait_replay(server, replay_id, lambda s: s["status"] != "playing", "finished")
    assert status["status"] == "error", status
    assert "server frame 3" in status["error"] and "padding" in status["error"], status
    assert status["framesSent"] == 2
    assert_logged(server, replay_id)


async def test_a_triggered_replay_that_fails_answers_the_advance_with_error(world: World,
                                                                           server: RunningMockd) -> None:
    path = unique_path()
    replay_id = await start_replay(server, world.corrupt, mode="triggered", path=path)
    async with ws_client(server, path) as ws:
        await wait_replay(server, replay_id, bound, "bound to its client")
        reply = await advance(server, replay_id, {"count": 3})
        assert reply.status == 200, reply.text
        answer = reply.json()
        assert (answer["framesSent"], answer["status"], answer["complete"]) == (2, "error", True), answer
        close = (await ws.log.wait_opcode(Opcode.CLOSE)).close()
        assert close is not None and close.code == 1011
        assert await data_frames(ws, 2) == [WELCOME.encode(), TICK.encode()]
    status = await replay_status(server, replay_id)
    assert status["status"] == "error" and "server frame 3" in status["error"]
    again = await advance(server, replay_id, {})
    assert again.status == 200 and (again.json()["framesSent"], again.json()["complete"]) == (0, True)
    assert_logged(server, replay_id)


@dataclass
class InProcess:
    server: Server
    sse_recording: str


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    """A mockd in this process (so a fault can be injected into it) with a real SSE recording."""
    config = write_config(tmp_path, mocks_config(sse_mock("events", "/events")))
    with Server(config=[config], data_dir=tmp_path / "data") as server:
        client = server.client
        started = client.start_recording("sse", "/events")
        reply = call("GET", f"{server.url}/events")
        assert reply.status == 200 and "data: third" in reply.text
        poll(lambda: len(client.recording(started.recording_id).entries()) >= 3, "the three events to be recorded")
        recording = client.stop_recording(started.recording_id)
        yield InProcess(server, recording.id)


async def test_an_sse_replay_that_fails_ends_in_error_and_cuts_the_stream(in_process: InProcess,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    encode = mockd.playback.drivers.encode_block
    written: list[Any] = []

    def failing_on_the_second_event(block: Any) -> bytes:
        written.append(block)
        if len(written) == 2:
            raise RuntimeError("injected fault")
        return encode(block)

    monkeypatch.setattr(mockd.playback.drivers, "encode_block", failing_on_the_second_event)
    caplog.set_level(logging.WARNING, logger="mockd.replay")
    server, client = in_process.server, in_process.server.client
    started = await asyncio.to_thread(client.replay, in_process.sse_recording, timing_scale=0, path="/sse/fails")
    response = await open_request(server.mock_port, "GET", "/sse/fails", [("Accept", "text/event-stream")])
    try:
        assert response.status == 200
        body = await response.read_body(SOON)  # ends: the server cut the connection
    finally:
        await response.close()
    assert b"data: first" in body and b"second" not in body, body
    assert response.complete is False, "a failed replay's stream must not end like a complete one"
    status = await asyncio.to_thread(client.replay_status, started.session_id)
    assert status.status == "error" and status.error is not None and "injected fault" in status.error, status
    assert status.frames_sent == 1
    warnings = [record for record in caplog.records
                if record.name == "mockd.replay" and started.session_id in record.getMessage()]
    assert warnings and warnings[0].levelno == logging.WARNING and warnings[0].exc_info is not None


# --- pending replays expire ----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["websocket", "sse"])
async def test_a_pending_replay_expires_and_its_path_goes_back_to_the_mocks(world: World, server: RunningMockd,
                                                                            protocol: str) -> None:
    recording, path = (world.chat, "/ws/fallback") if protocol == "websocket" else (world.sse, unique_path("/sse"))
    sent = time.monotonic()
    replay_id = await start_replay(server, recording["id"], timingScale=0, path=path, expiresAfter=EXPIRES_AFTER)
    status = await wait_replay(server, replay_id, lambda s: s["status"] != "pending", "expired")
    waited = time.monotonic() - sent
    assert status["status"] == "expired", status
    assert waited >= EXPIRES_AFTER, f"expired after {waited:.3f} s, before its {EXPIRES_AFTER} s"
    assert path in status["error"] and f"{EXPIRES_AFTER:g} s" in status["error"], status
    assert (status["client"], status["framesSent"]) == (None, 0)
    if protocol == "websocket":
        async with ws_client(server, path) as ws:
            assert await recv(ws) == "from-mock"  # the mock on the path, not the replay
    else:
        reply = await acall("GET", server.mock_url + path)
        assert_error(reply, 404, "no_mock")  # nothing on that path but the expired replay
    listed = {item["id"]: item["status"] for item in (await api(server, "GET", "/replay")).json()}
    assert listed[replay_id] == "expired"
    assert (await replay_status(server, replay_id))["client"] is None


async def test_a_replay_bound_before_its_expiry_plays_on_after_it(world: World, server: RunningMockd) -> None:
    path = unique_path()
    replay_id = await start_replay(server, world.chat["id"], mode="triggered", path=path, expiresAfter=0.2)
    async with ws_client(server, path) as ws:
        await wait_replay(server, replay_id, bound, "bound to its client")
        # well past the expiry (elapsedMs counts from the connect, which came after the start)
        status = await wait_replay(server, replay_id, lambda s: s["elapsedMs"] >= 600, "600 ms old")
        assert status["status"] == "playing", status
        reply = await advance(server, replay_id, {"count": 1})
        assert reply.status == 200 and reply.json()["framesSent"] == 1, reply.text
        assert await data_frames(ws, 1) == [WELCOME.encode()]
    assert (await api(server, "DELETE", f"/replay/{replay_id}")).status == 204


async def test_a_deleted_pending_replay_stays_aborted_past_its_expiry(world: World, server: RunningMockd) -> None:
    replay_id = await start_replay(server, world.chat["id"], path=unique_path(), expiresAfter=0.2)
    assert (await api(server, "DELETE", f"/replay/{replay_id}")).status == 204
    reference = await start_replay(server, world.chat["id"], path=unique_path(), expiresAfter=0.2)
    await wait_replay(server, reference, is_status("expired"), "expired")  # the first one's expiry has passed
    assert (await replay_status(server, replay_id))["status"] == "aborted"


# --- convert: minDelay / maxDelay imply simplifyTiming -------------------------------------------------


def send_delays(config: dict[str, Any]) -> list[str | None]:
    return [step["message"].get("delay") for mock in config["mocks"]
            for step in mock["websocket"]["scenario"]["steps"] if step["type"] == "send"]


async def convert(server: RunningMockd, recording_id: str, body: dict[str, Any]) -> Reply:
    return await api(server, "POST", f"/stream-recordings/{recording_id}/convert", body)


async def test_min_or_max_delay_alone_imply_simplify_timing_in_the_api(world: World, server: RunningMockd) -> None:
    recorded = await convert(server, world.chat["id"], {})
    assert recorded.status == 200, recorded.text
    gaps = [delay for delay in send_delays(recorded.json()) if delay is not None]
    # the scenario's 20 ms gaps (the first send's delay is the time from the connection's opening)
    assert len(gaps) >= 3 and all(delay.endswith("ms") and int(delay[:-2]) >= 15 for delay in gaps[-3:]), gaps
    for bounds in ({"minDelay": 1000}, {"maxDelay": 10}, {"minDelay": 0, "maxDelay": 12}):
        implied = await convert(server, world.chat["id"], bounds)
        explicit = await convert(server, world.chat["id"], {"simplifyTiming": True, **bounds})
        assert implied.status == explicit.status == 200, (implied.text, explicit.text)
        assert implied.body == explicit.body, bounds
        assert implied.body != recorded.body, bounds
    delays = send_delays((await convert(server, world.chat["id"], {"maxDelay": 10})).json())
    assert all(delay in (None, "0ms", "10ms") for delay in delays), delays
    kept = await convert(server, world.chat["id"], {"simplifyTiming": False, "minDelay": 1000})
    assert kept.body == recorded.body  # an explicit false keeps the recorded delays


async def test_a_bound_that_contradicts_the_default_other_bound_is_400(world: World, server: RunningMockd) -> None:
    body = assert_error(await convert(server, world.chat["id"], {"maxDelay": 5}), 400, "invalid_options")
    assert "minDelay" in body["message"] and "default" in body["message"], body


async def test_min_or_max_delay_alone_imply_simplify_timing_in_the_cli(world: World, server: RunningMockd) -> None:
    def cli(*flags: str) -> str:
        result = run_mockd("stream-recordings", "convert", world.chat["id"][:12], *flags, "--admin-url",
                           server.admin_url)
        assert result.returncode == 0, result.stderr
        return result.stdout

    implied, explicit, plain = await asyncio.gather(
        asyncio.to_thread(cli, "--min-delay", "1000"),
        asyncio.to_thread(cli, "--simplify-timing", "--min-delay", "1000"), asyncio.to_thread(cli))
    assert implied == explicit != plain
    assert all(delay in (None, "0ms") for delay in send_delays(json.loads(implied)))
    api_answer = await convert(server, world.chat["id"], {"minDelay": 1000})
    assert msgspec.json.decode(api_answer.body) == json.loads(implied)
