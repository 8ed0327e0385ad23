"""The admin listener's push channel and the dashboard's files, against a real ``mockd serve``:
``GET /stream-recordings/{id}/live`` read as raw chunked HTTP (no SSE library of ours on this side)
while a ``websockets`` client talks, and ``/ui/`` with its headers, its token rule and its refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from configs import mocks_config, ws_mock
from httpclient import acall, call, send
from processes import MockdFactory, RunningMockd
from sessions import start_session, stop_session
from upstreams import RawResponse, open_request, recv

from mockd.admin.dashboard import CONTENT_SECURITY_POLICY, UI_DIRECTORY

PATH = "/live/echo"
CONFIG = mocks_config(ws_mock("echo", PATH, echoMode=True))
TOKEN = "dashboard-t0ken"


@pytest.fixture(scope="module")
def shared(mockd_module: MockdFactory) -> RunningMockd:
    return mockd_module.start(CONFIG)


def sse_events(body: bytes) -> list[tuple[str | None, str | None]]:
    """The (event, data) of each block of a text/event-stream body; comments as (None, None)."""
    events = []
    for block in body.decode().split("\n\n")[:-1]:
        kind = data = None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                kind = value
            elif field == "data":
                data = value
        events.append((kind, data))
    return events


def entries_of(body: bytes) -> list[dict[str, Any]]:
    """Every entry the channel sent, checking each page starts where the one before ended."""
    entries: list[dict[str, Any]] = []
    for kind, data in sse_events(body):
        if kind == "entries":
            assert data is not None
            page = json.loads(data)
            assert page["offset"] == len(entries)
            entries.extend(page["frames"])
    return entries


async def open_live(server: RunningMockd, recording_id: str, query: str = "") -> RawResponse:
    live = await open_request(server.admin_port, "GET", f"/stream-recordings/{recording_id}/live{query}")
    assert live.status == 200
    assert live.value("Content-Type") == "text/event-stream"
    return live


async def test_a_running_sessions_frames_arrive_on_the_channel_as_they_are_recorded_then_its_end(
        shared: RunningMockd) -> None:
    recording_id = await start_session(shared, "websocket", PATH)
    live = await open_live(shared, recording_id)
    try:
        async with connect(shared.ws_url(PATH)) as ws:
            await ws.send("first ✓")
            assert await recv(ws) == "first ✓"
            await live.read_until(b'"direction":"s2c","type":"text","data":"first \xe2\x9c\x93"')
            await ws.send("second")
            assert await recv(ws) == "second"
            await live.read_until(b'"direction":"s2c","type":"text","data":"second"')
        recording = await stop_session(shared, recording_id)
        body = await live.read_body()
    finally:
        await live.close()
    assert sse_events(body)[-1] == ("end", '{"status":"complete"}')
    stored = [(frame["direction"], frame["type"], frame.get("data")) for frame in recording["websocket"]["frames"]]
    sent = [(frame["direction"], frame["type"], frame.get("data")) for frame in entries_of(body)]
    assert sent == stored
    assert [data for _, kind, data in sent if kind == "text"] == ["first ✓", "first ✓", "second", "second"]


async def test_a_finished_recording_is_sent_from_the_offset_then_the_channel_ends(shared: RunningMockd) -> None:
    recording_id = await start_session(shared, "websocket", PATH)
    async with connect(shared.ws_url(PATH)) as ws:
        for word in ("a", "b", "c"):
            await ws.send(word)
            assert await recv(ws) == word
    await stop_session(shared, recording_id)
    whole = await open_live(shared, recording_id)
    later = await open_live(shared, recording_id, "?offset=2")
    try:
        all_entries = entries_of(await whole.read_body())
        body = await later.read_body()
    finally:
        await whole.close()
        await later.close()
    pages = [json.loads(data or "") for kind, data in sse_events(body) if kind == "entries"]
    assert [page["offset"] for page in pages] == [2]
    assert pages[0]["frames"] == all_entries[2:]
    assert pages[0]["total"] == len(all_entries)
    assert sse_events(body)[-1] == ("end", '{"status":"complete"}')


@pytest.mark.parametrize(("query", "code"), [("?offset=-1", "invalid_filter"), ("?offset=ten", "invalid_filter"),
                                             ("?limit=5", "invalid_filter"), ("?offset=1&offset=2", "invalid_filter")])
async def test_a_bad_query_is_a_400_naming_it(shared: RunningMockd, query: str, code: str) -> None:
    recording_id = await start_session(shared, "websocket", PATH)
    try:
        reply = await acall("GET", f"{shared.admin_url}/stream-recordings/{recording_id}/live{query}")
    finally:
        await stop_session(shared, recording_id)
    assert reply.status == 400, reply.text
    assert reply.json()["error"] == code
    assert reply.json()["message"]


def test_an_unknown_recording_is_a_404(shared: RunningMockd) -> None:
    reply = call("GET", f"{shared.admin_url}/stream-recordings/01HXYZ123456789ABCDEFGHJKM/live")
    assert reply.status == 404
    assert reply.json()["error"] == "not_found"


# --- the dashboard's files --------------------------------------------------------------------------


def test_the_page_is_served_with_a_strict_policy(shared: RunningMockd) -> None:
    reply = call("GET", f"{shared.admin_url}/ui/")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.body == (UI_DIRECTORY / "index.html").read_bytes()


def test_every_shipped_file_is_served_as_itself_with_its_type(shared: RunningMockd) -> None:
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    shipped = sorted(path for path in UI_DIRECTORY.iterdir() if path.suffix in types)
    assert any(path.suffix == ".js" for path in shipped)
    for path in shipped:
        reply = call("GET", f"{shared.admin_url}/ui/{path.name}")
        assert reply.status == 200, path.name
        assert reply.headers["Content-Type"].split(";")[0] == types[path.suffix]
        assert reply.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert reply.body == path.read_bytes()


@pytest.mark.parametrize("target", ["/ui/nothing.js", "/ui/..%2Fdashboard.py", "/ui/%2e%2e/app.py",
                                    "/ui/.hidden.js", "/ui/INDEX.HTML", "/ui/index.html%00.js", "/ui/sub/index.html"])
def test_nothing_but_a_shipped_file_is_served(shared: RunningMockd, target: str) -> None:
    reply = send(shared.admin_port, "GET", target, {"Host": "127.0.0.1"})
    assert reply.status == 404, reply.text
    assert json.loads(reply.body)["error"] == "not_found"


def test_a_browser_is_sent_to_the_page_and_a_program_told_where_it_is(shared: RunningMockd) -> None:
    browser = send(shared.admin_port, "GET", "/", {"Host": "127.0.0.1", "Accept": "text/html,*/*;q=0.8"})
    assert (browser.status, browser.headers["Location"]) == (302, "/ui/")
    program = call("GET", f"{shared.admin_url}/")
    assert program.status == 200
    assert program.json()["dashboard"] == "/ui/"
    assert program.json()["openapi"] == "/openapi.json"
    bare = send(shared.admin_port, "GET", "/ui", {"Host": "127.0.0.1"})
    assert (bare.status, bare.headers["Location"]) == (301, "/ui/")


def test_a_foreign_host_is_refused_the_page_too(shared: RunningMockd) -> None:
    reply = send(shared.admin_port, "GET", "/ui/", {"Host": "evil.example"})
    assert reply.status == 403
    assert json.loads(reply.body)["error"] == "host_not_allowed"


def test_with_a_token_the_page_loads_without_it_and_its_data_needs_it(mockd: MockdFactory) -> None:
    server = mockd.start(CONFIG, "--admin-token", TOKEN)
    assert call("GET", f"{server.admin_url}/ui/").status == 200
    assert call("GET", f"{server.admin_url}/").status == 200
    assert call("GET", f"{server.admin_url}/stream-recordings").status == 401
    live = call("GET", f"{server.admin_url}/stream-recordings/01HXYZ123456789ABCDEFGHJKM/live")
    assert live.status == 401
    authorized = call("GET", f"{server.admin_url}/stream-recordings", headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorized.status == 200
