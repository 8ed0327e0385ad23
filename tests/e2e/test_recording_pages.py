"""Issue 16, over real sockets: ``GET /stream-recordings/{id}/frames`` pages a running session's frames
and a finished recording's alike (the ``websockets`` library is the client, on two connections); the
pages agree with the whole document; SSE and HTTP recordings page as ``events`` and ``exchanges``;
``?entries=false`` is the recording without its frames; hostile paging values are a 400."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID
from websockets.asyncio.client import connect

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from httpclient import acall, call

from mockd.recording.format import (HttpExchange, HttpRequestRecord, HttpResponseRecord, HttpSection, Metadata,
                                    Recording, SseEvent, SseSection, Stats, rfc3339)
from mockd.recording.store import Store

ECHO_CONFIG = mocks_config(ws_mock("echo", "/ws/echo"))
MESSAGES = 40


async def frames_by_page(server: RunningMockd, recording_id: str, query: str = "", size: int = 7,
                         key: str = "frames") -> tuple[list[dict[str, Any]], int]:
    found: list[dict[str, Any]] = []
    while True:
        reply = await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}/frames?offset={len(found)}"
                            f"&limit={size}{query}")
        assert reply.status == 200, reply.text
        page = reply.json()
        assert (page["offset"], page["limit"]) == (len(found), size)
        found += page[key]
        if len(page[key]) < size:
            return found, page["total"]


async def echo(server: RunningMockd, prefix: str, count: int) -> None:
    async with connect(server.ws_url("/ws/echo")) as ws:
        for number in range(count):
            await ws.send(f"{prefix}{number}")
            assert await ws.recv() == f"{prefix}{number}"


async def test_a_running_session_and_its_finished_recording_page_alike(mockd: MockdFactory) -> None:
    server = mockd.start(ECHO_CONFIG)
    started = await acall("POST", f"{server.admin_url}/stream-recordings/start",
                          {"protocol": "websocket", "path": "/ws/*"})
    recording_id = started.json()["recordingId"]
    await echo(server, "a", MESSAGES)
    await echo(server, "b", MESSAGES // 2)

    live, total = await frames_by_page(server, recording_id)
    document = (await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}")).json()
    assert document["status"] == "recording"
    assert live == document["websocket"]["frames"] and total == len(live)
    texts = [frame["data"] for frame in live if frame["type"] == "text"]
    assert texts == [f"a{n}" for n in range(MESSAGES) for _ in "12"] + [f"b{n}" for n in range(MESSAGES // 2)
                                                                         for _ in "12"]
    second, _ = await frames_by_page(server, recording_id, "&connection=2&direction=s2c&type=text", size=3)
    assert [frame["data"] for frame in second] == [f"b{n}" for n in range(MESSAGES // 2)]

    await echo(server, "c", 3)  # the live index goes on from where it was
    grown, _ = await frames_by_page(server, recording_id, "&connection=3&type=text")
    assert [frame["data"] for frame in grown] == ["c0", "c0", "c1", "c1", "c2", "c2"]

    stopped = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop")
    assert stopped.status == 200
    finished = stopped.json()["websocket"]["frames"]
    assert (server.data_dir / f"{recording_id}.index").exists()  # written with the file
    paged, total = await frames_by_page(server, recording_id, size=11)
    assert paged == finished and total == len(finished)
    counts = (await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}/frames?limit=0")).json()
    assert counts["frames"] == [] and counts["types"]["text"] == 2 * (MESSAGES + MESSAGES // 2 + 3)


async def test_entries_false_is_the_recording_without_its_frames(mockd: MockdFactory) -> None:
    server = mockd.start(ECHO_CONFIG)
    started = await acall("POST", f"{server.admin_url}/stream-recordings/start",
                          {"protocol": "websocket", "path": "/ws/*"})
    recording_id = started.json()["recordingId"]
    await echo(server, "x", 5)
    live_head = (await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}?entries=false")).json()
    assert live_head["status"] == "recording" and live_head["websocket"]["frames"] == []
    assert live_head["stats"]["textFrames"] == 10
    whole = (await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop")).json()
    head = (await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id[:12]}?entries=0")).json()
    assert head == {**whole, "websocket": {**whole["websocket"], "frames": []}}
    bad = await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}?entries=maybe")
    assert bad.status == 400 and bad.json()["error"] == "invalid_filter"


def write_recordings(data_dir: Path) -> tuple[str, str]:
    """An SSE recording of two connections and an HTTP one of five exchanges, as the store writes them."""
    store = Store(data_dir, 1 << 30, 80)
    store.open()
    now = rfc3339(time.time_ns())
    events = [SseEvent(type="delta" if i % 2 else "done", data=f"e{i}", connection=1 + i % 2, timestamp=now,
                       relative_ms=i) for i in range(9)]
    sse = Recording(id=str(ULID()), name="sse", protocol="sse", status="complete", start_time=now,
                    metadata=Metadata(path="/events"), sse=SseSection(events=events), stats=Stats(frame_count=9))
    exchanges = [HttpExchange(request=HttpRequestRecord(method="GET", path=f"/api/{i}"),
                              response=HttpResponseRecord(status=200), timestamp=now, relative_ms=i, connection=i + 1)
                 for i in range(5)]
    http = Recording(id=str(ULID()), name="http", protocol="http", status="complete", start_time=now,
                     metadata=Metadata(path="/api/*"), http=HttpSection(exchanges=exchanges),
                     stats=Stats(frame_count=5))
    store.save(sse)
    store.save(http)
    return sse.id, http.id


@pytest.fixture(scope="module")
def paged_server(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunningMockd, str, str]:
    data_dir = tmp_path_factory.mktemp("paged-data")
    sse_id, http_id = write_recordings(data_dir)
    for index in data_dir.glob("*.index"):
        index.unlink()  # built by the server when first asked
    return mockd_module.start(None, data_dir=data_dir), sse_id, http_id


async def test_sse_pages_events_and_http_pages_exchanges(paged_server: tuple[RunningMockd, str, str]) -> None:
    server, sse_id, http_id = paged_server
    deltas, total = await frames_by_page(server, sse_id, "&type=delta", size=2, key="events")
    assert [event["data"] for event in deltas] == ["e1", "e3", "e5", "e7"] and total == 4
    second, _ = await frames_by_page(server, sse_id, "&connection=1", key="events")
    assert [event["data"] for event in second] == ["e0", "e2", "e4", "e6", "e8"]
    assert (server.data_dir / f"{sse_id}.index").exists()
    exchanges, total = await frames_by_page(server, http_id, size=2, key="exchanges")
    assert [exchange["request"]["path"] for exchange in exchanges] == [f"/api/{i}" for i in range(5)]
    one, _ = await frames_by_page(server, http_id, "&connection=4", key="exchanges")
    assert [exchange["request"]["path"] for exchange in one] == ["/api/3"]


HOSTILE = [("offset=-1", "websocket"), ("offset=abc", "websocket"), ("offset=1e3", "websocket"),
           ("offset=%C2%B2", "websocket"), ("offset=" + "9" * 40, "websocket"), ("offset=", "websocket"),
           ("limit=10001", "websocket"), ("limit=-5", "websocket"), ("limit=0x10", "websocket"),
           ("connection=0", "websocket"), ("connection=two", "websocket"), ("direction=up", "websocket"),
           ("type=message", "websocket"), ("offset=1&offset=2", "websocket"), ("ofset=5", "websocket"),
           ("direction=s2c", "sse"), ("type=", "sse"), ("type=" + "x" * 1001, "sse"), ("type=get", "http"),
           ("direction=c2s", "http")]


@pytest.mark.parametrize(("query", "protocol"), HOSTILE, ids=[query[:24] for query, _ in HOSTILE])
def test_hostile_paging_values_get_400(paged_server: tuple[RunningMockd, str, str], ws_recording: str,
                                       query: str, protocol: str) -> None:
    server, sse_id, http_id = paged_server
    recording_id = {"websocket": ws_recording, "sse": sse_id, "http": http_id}[protocol]
    reply = call("GET", f"{server.admin_url}/stream-recordings/{recording_id}/frames?{query}")
    assert reply.status == 400, reply.text
    assert reply.json()["error"] == "invalid_filter" and reply.json()["message"]


@pytest.fixture(scope="module")
def ws_recording(paged_server: tuple[RunningMockd, str, str]) -> str:
    server = paged_server[0]
    started = call("POST", f"{server.admin_url}/stream-recordings/start", {"protocol": "websocket", "path": "/x"})
    recording_id = str(started.json()["recordingId"])
    assert call("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop").status == 200
    return recording_id


def test_unknown_recordings_are_404(paged_server: tuple[RunningMockd, str, str]) -> None:
    server = paged_server[0]
    reply = call("GET", f"{server.admin_url}/stream-recordings/{ULID()}/frames")
    assert reply.status == 404 and reply.json()["error"] == "not_found"
    reply = call("GET", f"{server.admin_url}/stream-recordings/..%2F..%2Fetc/frames")
    assert reply.status in (400, 404) and reply.json()["error"] in ("invalid_id", "not_found")


def test_stats_sessions_and_the_list_never_read_the_recordings(mockd: MockdFactory, tmp_path: Path) -> None:
    """Issue 16 point 4: they answer from the summary index and the sessions' counters — shown by
    replacing a recording's file with garbage behind the server's back (reading it would fail)."""
    data_dir = tmp_path / "data"
    sse_id, _http_id = write_recordings(data_dir)
    server = mockd.start(None, data_dir=data_dir)
    (data_dir / f"{sse_id}.json").write_bytes(b"\0" * 1000)
    stats = call("GET", f"{server.admin_url}/stream-recordings/stats")
    assert stats.status == 200 and (stats.json()["sseCount"], stats.json()["httpCount"]) == (1, 1)
    listed = call("GET", f"{server.admin_url}/stream-recordings?protocol=sse").json()
    assert [summary["id"] for summary in listed["recordings"]] == [sse_id] \
        and listed["recordings"][0]["frameCount"] == 9
    sessions = call("GET", f"{server.admin_url}/stream-recordings/sessions")
    assert sessions.status == 200 and sessions.json() == []
    for path in ("/frames", "", "?entries=false"):  # the file itself is unreadable now: said so, not a 500
        garbage = call("GET", f"{server.admin_url}/stream-recordings/{sse_id}{path}")
        assert garbage.status == 409 and garbage.json()["error"] == "unreadable_recording", garbage.text
