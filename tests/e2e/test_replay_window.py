"""Issue 16: a replay reads its connection's frames a window ahead of the schedule, never the whole
recording. Without sockets: the window holds at most about twice ``WINDOW`` steps and yields exactly the
plan. Over real sockets (a ``websockets`` client): a stored recording whose connection has more frames
than the window replays every one in order, in pure, triggered (``until`` far ahead) and synchronized
mode, and ten replays of it run at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ulid import ULID
from websockets.asyncio.client import connect

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from httpclient import acall
from polling import poll_value

from mockd.playback import window as windowing
from mockd.playback.plan import ReplayOptions, plan
from mockd.playback.replays import Replays
from mockd.playback.window import ReplaySource, StepWindow, prepare
from mockd.recording.format import ConnectionRecord, Frame, Metadata, Recording, Stats, WebSocketSection, rfc3339
from mockd.recording.store import Store
from mockd.stream.events import StreamEvents

FRAMES = 20_000  # more than two windows (window.WINDOW is 8192)


def long_recording(frames: int = FRAMES, client_every: int = 0) -> Recording:
    """One connection: ``frames`` server texts 0.1 ms apart (relative 0 ms … frames/10 ms), and a
    client message before every ``client_every``-th one; a second connection's frames interleaved."""
    start = time.time_ns()
    items = []
    for number in range(frames):
        if client_every and number % client_every == 0:
            items.append(Frame(direction="c2s", type="text", data=f"ask {number}", timestamp=rfc3339(start),
                               relative_ms=number // 10, connection=1))
        items.append(Frame(direction="s2c", type="text", data=f"frame {number}", timestamp=rfc3339(start),
                           relative_ms=number // 10, connection=1))
        if number % 7 == 0:
            items.append(Frame(direction="s2c", type="text", data="other", timestamp=rfc3339(start),
                               relative_ms=number // 10, connection=2))
    opened = rfc3339(start)
    return Recording(id=str(ULID()), name="long", protocol="websocket", status="complete", start_time=opened,
                     metadata=Metadata(path="/ws/long"), websocket=WebSocketSection(frames=items),
                     connections=[ConnectionRecord(connection=number, opened_at=opened, relative_ms=0, origin="proxy",
                                                   path="/ws/long") for number in (1, 2)],
                     stats=Stats(frame_count=len(items), connection_count=2))


async def test_the_window_yields_the_plan_holding_at_most_two_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(windowing, "WINDOW", 64)
    monkeypatch.setattr(windowing, "READ_PAGE", 10)
    recording = long_recording(1000)
    options = ReplayOptions(connection=1)
    prepared = await asyncio.to_thread(prepare, ReplaySource.of(recording, options), options)
    assert prepared.total_sends == 1000 and len(prepared.first) == 64
    window = StepWindow(prepared)
    seen = []
    while (step := await window.next()) is not None:
        seen.append(step)
        assert len(window._buffer) <= 2 * 64
    assert seen == plan(recording, options)


async def test_until_reads_ahead_as_far_as_the_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(windowing, "WINDOW", 32)
    recording = long_recording(500)
    options = ReplayOptions(mode="triggered", connection=1)
    window = StepWindow(await asyncio.to_thread(prepare, ReplaySource.of(recording, options), options))
    assert await window.first_matching(lambda step: step.item.data == "frame 400") == 401
    assert await window.first_matching(lambda step: step.item.data == "nowhere") is None
    assert (await window.next()).item.data == "frame 0"  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def long_server(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunningMockd, str, str]:
    data_dir = tmp_path_factory.mktemp("long-data")
    store = Store(data_dir, 1 << 30, 80)
    store.open()
    pure, chatty = long_recording(), long_recording(FRAMES, client_every=1000)
    store.save(pure)
    store.save(chatty)
    return mockd_module.start(mocks_config(ws_mock("echo", "/ws/echo")), data_dir=data_dir), pure.id, chatty.id


async def start(server: RunningMockd, recording_id: str, **options: Any) -> str:
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/replay", options)
    assert reply.status == 201, reply.text
    return str(reply.json()["sessionId"])


async def finished(server: RunningMockd, replay_id: str) -> dict[str, Any]:
    """The replay's status once it has finished (polled with a deadline; the last one seen after it)."""
    async def status() -> dict[str, Any]:
        answer: dict[str, Any] = (await acall("GET", f"{server.admin_url}/replay/{replay_id}")).json()
        return answer
    return await poll_value(status, lambda answer: answer["status"] in ("complete", "aborted", "error", "expired"),
                            30, interval=0.01)


async def receive(server: RunningMockd, path: str, count: int, answer_every: int = 0) -> list[str]:
    got: list[str] = []
    async with connect(server.ws_url(path), max_size=None) as ws:
        if answer_every:
            await ws.send("ask 0")
        while len(got) < count:
            got.append(str(await asyncio.wait_for(ws.recv(), 30)))
            if answer_every and len(got) % answer_every == 0 and len(got) < count:
                await ws.send(f"ask {len(got)}")
    return got


EXPECTED = [f"frame {number}" for number in range(FRAMES)]


async def test_a_long_connection_replays_every_frame_in_order(long_server: tuple[RunningMockd, str, str]) -> None:
    server, recording_id, _ = long_server
    replay_id = await start(server, recording_id, connection=1, path="/ws/pure", timingScale=0.1)
    assert await receive(server, "/ws/pure", FRAMES) == EXPECTED
    final = await finished(server, replay_id)
    assert (final["status"], final["totalFrames"], final["framesSent"]) == ("complete", FRAMES, FRAMES)


async def test_ten_replays_of_it_at_once(long_server: tuple[RunningMockd, str, str]) -> None:
    server, recording_id, _ = long_server
    ids = [await start(server, recording_id, connection=1, path=f"/ws/ten/{i}", timingScale=0.1) for i in range(10)]
    received = await asyncio.gather(*(receive(server, f"/ws/ten/{i}", FRAMES) for i in range(10)))
    assert all(frames == EXPECTED for frames in received)
    for replay_id in ids:
        assert (await finished(server, replay_id))["framesSent"] == FRAMES


async def test_triggered_until_far_ahead_then_one_more(long_server: tuple[RunningMockd, str, str]) -> None:
    server, recording_id, _ = long_server
    replay_id = await start(server, recording_id, connection=1, mode="triggered", path="/ws/triggered")
    async with connect(server.ws_url("/ws/triggered"), max_size=None) as ws:
        advanced = await acall("POST", f"{server.admin_url}/replay/{replay_id}/advance", {"until": "frame 4500"})
        assert advanced.status == 200, advanced.text
        assert advanced.json()["framesSent"] == 4501
        got = [await asyncio.wait_for(ws.recv(), 30) for _ in range(4501)]
        assert got == EXPECTED[:4501]
        one = await acall("POST", f"{server.admin_url}/replay/{replay_id}/advance", {})
        assert (one.json()["framesSent"], one.json()["currentFrame"]) == (1, 4502)
        assert await asyncio.wait_for(ws.recv(), 30) == "frame 4501"


async def test_synchronized_waits_for_each_client_message(long_server: tuple[RunningMockd, str, str]) -> None:
    server, _, recording_id = long_server
    replay_id = await start(server, recording_id, connection=1, mode="synchronized", path="/ws/sync",
                            timingScale=0.1)
    assert await receive(server, "/ws/sync", FRAMES, answer_every=1000) == EXPECTED
    final = await finished(server, replay_id)
    assert final["status"] == "complete" and final["framesSent"] == FRAMES


async def test_a_replay_of_a_missing_connection_is_400(long_server: tuple[RunningMockd, str, str]) -> None:
    server, recording_id, _ = long_server
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/replay", {"connection": 9})
    assert reply.status == 400 and "connection 9" in reply.json()["message"]


async def test_replays_of_a_stored_recording_share_a_plan_that_fits() -> None:
    replays = Replays(StreamEvents())
    recording = long_recording(300)
    options = ReplayOptions(connection=1)
    source = ReplaySource.of(recording, options)
    first = await replays.prepare(source, options, shared=True)
    assert await replays.prepare(source, options, shared=True) is first
    assert await replays.prepare(source, ReplayOptions(connection=1, timing_scale=2), shared=True) is not first
    assert await replays.prepare(source, options, shared=False) is not first  # a running session's: read again
