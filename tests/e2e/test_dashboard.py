"""The admin dashboard (``/ui/``, docs/dashboard.md) in Debian's chromium against real ``mockd serve``
processes: recordings made through the proxy to a ``websockets`` upstream by a ``websockets`` client,
a recording written straight into the data directory, replays driven from the page.

One browser and one mockd serve the module (its tests share an event loop); each test has its own
browser context (its own sessionStorage). The screenshots of docs/dashboard.md are taken on the way
into the test's temporary directory and copied to docs/images/ when ``MOCKD_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, Request, async_playwright
from playwright.async_api import Error as PlaywrightError
from ulid import ULID
from websockets.frames import Opcode

from chromium import require_chromium
from configs import mocks_config
from handmade import frame, opened, sse_event, sse_recording, ws_recording
from browserkit import TOKEN_KEY, VIEWPORT, dashboard_url, launch, wait_for_hook, wait_for_marks
from httpclient import acall, call, send
from processes import MockdFactory, RunningMockd
from sessions import start_session, stop_session
from upstreams import RecordingClientConnection, WsUpstream, open_ws, proxy_mock, raw_server, recv, ws_upstream

from mockd.recording.format import (ConnectionRecord, Frame, Metadata, Recording, Stats, WebSocketSection,
                                    recording_bytes, rfc3339)

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

DEADLINE_MS = 10_000  # for anything the page should do soon
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TOKEN = "dashboard-token-5f3a"

# --- the 1,000-frame recording, written as the store writes files ------------------------------------

TIMELINE_FRAMES = 1000
FRAME_GAP_MS = 10
SECOND_CONNECTION_FROM = 500  # frames 500… belong to connection 2, opened then
TIMELINE_HEADERS = {"X-Client": "dashboard-test", "Authorization": "[REDACTED]"}


def timeline_frame(number: int, start_ns: int) -> Frame:
    """Frame ``number``: client and server in turn, 10 ms apart; every 50th (from 25) binary."""
    relative = number * FRAME_GAP_MS
    common = {"direction": "s2c" if number % 2 else "c2s", "timestamp": rfc3339(start_ns + relative * 1_000_000),
              "relative_ms": relative, "connection": 1 if number < SECOND_CONNECTION_FROM else 2}
    if number % 50 == 25:
        payload = bytes((number + i) % 256 for i in range(8))
        return Frame(type="binary", data=base64.b64encode(payload).decode(), encoding="base64", size=len(payload),
                     **common)
    text = json.dumps({"seq": number, "text": f"message {number}"}, separators=(",", ":"))
    return Frame(type="text", data=text, size=len(text), **common)


def write_timeline_recording(data_dir: Path) -> tuple[str, list[Frame]]:
    start_ns = time.time_ns()
    frames = [timeline_frame(number, start_ns) for number in range(TIMELINE_FRAMES)]
    second_opened = SECOND_CONNECTION_FROM * FRAME_GAP_MS
    end = frames[-1].relative_ms

    def connection(number: int, opened_ms: int, closed_ms: int) -> ConnectionRecord:
        return ConnectionRecord(connection=number, opened_at=rfc3339(start_ns + opened_ms * 1_000_000),
                                relative_ms=opened_ms, origin="proxy", path="/ws/timeline", method="GET",
                                closed_at=rfc3339(start_ns + closed_ms * 1_000_000), remote_addr="127.0.0.1:50000",
                                headers=TIMELINE_HEADERS, query={"room": f"lobby-{number}"}, subprotocol="chat.v1",
                                close_code=4000 + number, close_reason=f"bye from {number}")

    recording = Recording(
        id=str(ULID()), name="a thousand frames", protocol="websocket", status="complete", start_time=rfc3339(start_ns),
        end_time=rfc3339(start_ns + end * 1_000_000), duration=end,
        metadata=Metadata(path="/ws/timeline", method="GET", host="127.0.0.1"),
        websocket=WebSocketSection(subprotocol="chat.v1", frames=frames),
        connections=[connection(1, 0, second_opened - 1), connection(2, second_opened, end)], stop_reason="api",
        stats=Stats(frame_count=len(frames), connection_count=2, text_frames=sum(f.type == "text" for f in frames),
                    binary_frames=sum(f.type == "binary" for f in frames)))
    return write_recording(data_dir, recording), frames


def write_recording(data_dir: Path, recording: Recording) -> str:
    """``recording`` as the store writes its files, for the server started on ``data_dir`` to find."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / f"{recording.id}.json"
    path.write_bytes(recording_bytes(recording))
    path.chmod(0o600)
    return recording.id


# --- a paced recording (for pause and resume) and an SSE one, built by hand -------------------------

PAUSE_GAP_MS = 2000  # between the paced recording's two server frames
PAUSE_HELD_S = 0.6   # how long the test keeps that replay paused


def paced_recording() -> Recording:
    """Two server frames PAUSE_GAP_MS apart, then the server's close, on /ws/paced."""
    frames = [frame("s2c", "text", "one", at=50), frame("s2c", "text", "two", at=50 + PAUSE_GAP_MS),
              frame("s2c", "close", at=100 + PAUSE_GAP_MS, code=1000, reason="done")]
    recording = ws_recording(frames, [opened(path="/ws/paced")], path="/ws/paced")
    recording.id, recording.name = str(ULID()), "paced"
    return recording


SSE_EVENTS = [sse_event(0, type="message", data='{"delta":"Hel"}'), sse_event(40, comment="keepalive"),
              sse_event(80, retry=3000), sse_event(120, type="done", data="[DONE]", id="3")]


def llm_stream_recording() -> Recording:
    recording = sse_recording(SSE_EVENTS, [opened(path="/v1/chat")], path="/v1/chat", method="POST")
    recording.id, recording.name = str(ULID()), "llm stream"
    return recording


# --- fixtures: one upstream, one mockd, one browser for the module ----------------------------------


@dataclass
class Served:
    server: RunningMockd
    upstream: WsUpstream
    timeline_id: str
    timeline_frames: list[Frame]
    paced_id: str
    sse_id: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with ws_upstream() as upstream:  # echoes every message
        data_dir = tmp_path_factory.mktemp("dashboard-data")
        timeline_id, frames = write_timeline_recording(data_dir)
        paced_id = write_recording(data_dir, paced_recording())
        sse_id = write_recording(data_dir, llm_stream_recording())
        server = mockd_module.start(mocks_config(proxy_mock(upstream.url, "/ws", "chat-upstream")), data_dir=data_dir)
        yield Served(server, upstream, timeline_id, frames, paced_id, sse_id)
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch(playwright)
        yield chromium
        await chromium.close()


@dataclass
class Dashboard:
    """A page of the dashboard and what the browser reported while the test used it."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page
    console: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def testid(self, name: str) -> Any:
        return self.page.get_by_test_id(name)

    async def goto(self, url: str) -> None:
        response = await self.page.goto(url)
        assert response is not None and response.status == 200, url
        assert response.headers["content-security-policy"] == CSP

    async def hook(self, name: str) -> str:
        return str(await self.page.evaluate("(name) => document.body.dataset[name]", name))

    def api_requests(self, path_part: str) -> list[str]:
        return [request.url for request in self.requests if path_part in request.url]

    def assert_quiet(self) -> None:
        """No dialog opened, no exception escaped the page's scripts, nothing logged as an error."""
        assert self.dialogs == []
        assert self.errors == []
        assert [line for line in self.console if line.startswith("error")] == []


@pytest_asyncio.fixture(loop_scope="module")
async def dashboard(browser: Browser) -> AsyncIterator[Dashboard]:
    context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = await context.new_page()
    seen = Dashboard(page)

    async def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        seen.console.append(f"{message.type}: {message.text}")

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request))
    yield seen
    await context.close()


async def screenshot(dashboard: Dashboard, name: str, tmp_path: Path) -> None:
    """The docs' screenshot ``dashboard-NAME.png``: taken every run, kept when MOCKD_SCREENSHOTS=1."""
    shot = tmp_path / f"dashboard-{name}.png"
    await dashboard.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a real picture, not a blank page
    if os.environ.get("MOCKD_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOTS / shot.name)


# --- helpers -------------------------------------------------------------------------------------


async def record_chat(served: Served, path: str, messages: list[str], name: str | None = None,
                      headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A real proxied session: started over the API, a ``websockets`` client talking to the echo upstream
    through mockd, closing; the stopped recording."""
    recording_id = await start_session(served.server, "websocket", path, name)
    async with open_ws(served.server.ws_url(path), additional_headers=headers or {}) as ws:
        await chat(ws, *messages)
    return await stop_session(served.server, recording_id)


async def open_recording(dashboard: Dashboard, served: Served, recording_id: str) -> None:
    await dashboard.goto(dashboard_url(served.server.admin_url, recording=recording_id))
    await wait_for_hook(dashboard.page, "timelineLoaded", "1", DEADLINE_MS)


async def click_entry(dashboard: Dashboard, index: int) -> None:
    """Click entry ``index``'s mark where the page draws it (its own hit test decides what is selected)."""
    point = await dashboard.page.evaluate("(i) => window.__mockdDashboard.pointOf(i)", index)
    assert point is not None, f"entry {index} is not on the timeline"
    await dashboard.page.mouse.click(point["x"], point["y"])
    try:
        await dashboard.page.wait_for_function("(i) => window.__mockdDashboard.selected?.index === i", arg=index,
                                               timeout=DEADLINE_MS)
    except PlaywrightError:
        selected = await dashboard.page.evaluate("() => window.__mockdDashboard.selected")
        pytest.fail(f"clicking {point} did not select entry {index} but {selected}")


async def chat(ws: Any, *messages: str) -> None:
    """Send each message and read its echo."""
    for message in messages:
        await ws.send(message)
        assert await recv(ws) == message


async def row_of(dashboard: Dashboard, recording_id: str) -> Any:
    row = dashboard.page.locator(f'[data-testid="recording-row"][data-id="{recording_id}"]')
    await row.wait_for(timeout=DEADLINE_MS)
    return row


async def list_settled(dashboard: Dashboard) -> None:
    await wait_for_hook(dashboard.page, "listReady", "1", DEADLINE_MS)


# --- the list ------------------------------------------------------------------------------------


async def test_the_list_shows_a_proxied_recording_and_its_actions_work(served: Served, dashboard: Dashboard,
                                                                       tmp_path: Path) -> None:
    recording = await record_chat(served, "/ws/chat-list", ["hello", '{"n":1}', "bye"], name="chat list test")
    summary = call("GET", f"{served.server.admin_url}/stream-recordings?name=chat+list+test").json()["recordings"][0]
    await dashboard.goto(dashboard_url(served.server.admin_url))
    await list_settled(dashboard)
    row = await row_of(dashboard, recording["id"])
    cells = await row.locator("td").all_inner_texts()
    assert cells[:6] == [recording["id"][:12], "chat list test", "websocket", "/ws/chat-list", "complete",
                         str(summary["frameCount"])]
    assert summary["frameCount"] == 8  # three messages each way, and the closing handshake
    assert cells[6].endswith("ms") or cells[6].endswith("s")
    assert cells[7].endswith(" B") or cells[7].endswith(" KB")
    await screenshot(dashboard, "list", tmp_path)

    # filters: the name matches, a protocol that does not hides the row
    await dashboard.testid("filter-name").fill("chat list")
    await dashboard.page.wait_for_function("() => document.body.dataset.listCount === '1'", timeout=DEADLINE_MS)
    await dashboard.testid("filter-protocol").select_option("sse")
    await row.wait_for(state="detached", timeout=DEADLINE_MS)
    await dashboard.testid("filter-protocol").select_option("")
    row = await row_of(dashboard, recording["id"])

    # export and convert download what the API answers
    async with dashboard.page.expect_download() as exported:
        await row.get_by_test_id("row-export").click()
    download = await exported.value
    assert download.suggested_filename == f"{recording['id']}.json"
    assert json.loads(Path(await download.path()).read_text())["id"] == recording["id"]
    async with dashboard.page.expect_download() as converted:
        await row.get_by_test_id("row-convert").click()
    config = json.loads(Path(await (await converted.value).path()).read_text())
    assert [mock["id"] for mock in config["mocks"]] == [f"{recording['id']}-1"]

    # delete (soft: shown as such with "show deleted"), then vacuum removes it
    await row.get_by_test_id("row-delete").click()
    await row.get_by_test_id("row-delete").click()  # the inline confirmation
    await row.wait_for(state="detached", timeout=DEADLINE_MS)
    await dashboard.testid("filter-deleted").check()
    row = await row_of(dashboard, recording["id"])
    assert await row.get_attribute("data-deleted") == "true"
    assert "deleted" in await row.get_by_test_id("row-status").inner_text()
    await dashboard.testid("vacuum").click()
    await dashboard.testid("vacuum").click()
    await row.wait_for(state="detached", timeout=DEADLINE_MS)
    assert "removed 1 recording" in await dashboard.testid("message").inner_text()
    gone = await acall("GET", f"{served.server.admin_url}/stream-recordings/{recording['id']}")
    assert gone.status == 404
    dashboard.assert_quiet()


# --- the timeline --------------------------------------------------------------------------------


async def test_the_timeline_of_a_thousand_frames_shows_each_and_the_clicked_ones_detail(
        served: Served, dashboard: Dashboard, tmp_path: Path) -> None:
    await open_recording(dashboard, served, served.timeline_id)
    assert await dashboard.hook("timelineMarks") == str(TIMELINE_FRAMES)
    assert await dashboard.hook("timelineReady") == "1"
    lanes = await dashboard.page.evaluate("() => window.__mockdDashboard.lanes")
    assert lanes == [{"connection": c, "direction": d, "marks": 250} for c in (1, 2) for d in ("c2s", "s2c")]

    # zooming in spreads the marks: two neighbours of a lane are 4 times further apart after two clicks
    async def spacing() -> float:
        first = await dashboard.page.evaluate("() => window.__mockdDashboard.pointOf(135)")
        second = await dashboard.page.evaluate("() => window.__mockdDashboard.pointOf(137)")
        return float(second["x"] - first["x"])
    before = await spacing()
    await dashboard.testid("zoom-in").click()
    await dashboard.testid("zoom-in").click()
    assert await spacing() == pytest.approx(4 * before, rel=0.01)

    # a text frame: JSON pretty-printed, its size, the gap to its lane's previous frame, its connection
    await click_entry(dashboard, 137)
    frame = served.timeline_frames[137]
    assert await dashboard.testid("detail-data").inner_text() == json.dumps(json.loads(frame.data), indent=2)
    assert await dashboard.testid("detail-size").inner_text() == f"{frame.size} bytes"
    assert await dashboard.testid("detail-gap").inner_text() == f"{2 * FRAME_GAP_MS} ms"
    assert await dashboard.testid("detail-timestamp").inner_text() == frame.timestamp
    assert await dashboard.testid("detail-direction").inner_text() == "s2c (server → client)"
    meta = await dashboard.testid("connection-meta").inner_text()
    for expected in ("Connection 1", "chat.v1", "4001", "bye from 1", "lobby-1", "X-Client", "dashboard-test"):
        assert expected in meta
    await screenshot(dashboard, "timeline", tmp_path)

    # a binary frame of the second connection: a hex dump
    await click_entry(dashboard, 525)
    hex_bytes = " ".join(f"{(525 + i) % 256:02x}" for i in range(8))
    assert hex_bytes in await dashboard.testid("detail-data").inner_text()
    assert await dashboard.testid("detail-size").inner_text() == "8 bytes"
    assert "bye from 2" in await dashboard.testid("connection-meta").inner_text()
    dashboard.assert_quiet()


# --- live ----------------------------------------------------------------------------------------


async def test_a_live_sessions_frames_appear_while_a_client_talks(served: Served, dashboard: Dashboard) -> None:
    await dashboard.goto(dashboard_url(served.server.admin_url, view="live"))
    await dashboard.testid("start-path").fill("/ws/live")
    await dashboard.testid("start-name").fill("live from the page")
    await dashboard.testid("start-session").click()
    await wait_for_hook(dashboard.page, "timelineReady", "1", DEADLINE_MS)
    recording_id = await dashboard.testid("recording-id").inner_text()
    sessions = (await acall("GET", f"{served.server.admin_url}/stream-recordings/sessions")).json()
    assert [session["id"] for session in sessions] == [recording_id]

    # the live list shows it, and "Watch" opens it again
    await dashboard.testid("nav-live").click()
    row = dashboard.page.locator(f'[data-testid="session-row"][data-id="{recording_id}"]')
    await row.get_by_test_id("session-open").click()
    await wait_for_hook(dashboard.page, "timelineReady", "1", DEADLINE_MS)
    assert await dashboard.testid("recording-state").get_attribute("data-state") == "live"

    async with open_ws(served.server.ws_url("/ws/live")) as ws:
        await chat(ws, "one", "two")
        assert await wait_for_marks(dashboard.page, 4, DEADLINE_MS) == 4
        await chat(ws, "three", "four", "five")
        assert await wait_for_marks(dashboard.page, 10, DEADLINE_MS) == 10
    await dashboard.testid("stop-session").click()
    await dashboard.page.wait_for_function(
        "() => document.querySelector('[data-testid=recording-state]').dataset.state === 'complete'",
        timeout=DEADLINE_MS)
    assert (await acall("GET", f"{served.server.admin_url}/stream-recordings/sessions")).json() == []
    assert await wait_for_marks(dashboard.page, 12, DEADLINE_MS) == 12  # and the closing handshake
    # the frames came over the push channel, never by polling pages
    assert dashboard.api_requests(f"/stream-recordings/{recording_id}/live")
    assert dashboard.api_requests(f"/stream-recordings/{recording_id}/frames") == []
    dashboard.assert_quiet()


@dataclass
class CuttingRelay:
    """A TCP relay in front of the admin listener that can cut every connection through it at once, as a
    network that drops would (the page, loaded through it, is its own origin: the port is not compared)."""

    target_port: int
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


async def test_a_broken_push_channel_is_opened_again_from_the_last_entry(served: Served,
                                                                        dashboard: Dashboard) -> None:
    recording_id = await start_session(served.server, "websocket", "/ws/reconnect", "reconnected")
    relay = CuttingRelay(served.server.admin_port)
    async with raw_server(relay.handle) as relay_url, open_ws(served.server.ws_url("/ws/reconnect")) as ws:
        await dashboard.goto(dashboard_url(relay_url, recording=recording_id))
        await wait_for_hook(dashboard.page, "timelineReady", "1", DEADLINE_MS)
        await chat(ws, "one", "two")
        assert await wait_for_marks(dashboard.page, 4, DEADLINE_MS) == 4
        async with dashboard.page.expect_request(lambda request: "/live?offset=4" in request.url,
                                                 timeout=DEADLINE_MS):
            relay.cut()
        await chat(ws, "three", "four", "five")
        assert await wait_for_marks(dashboard.page, 10, DEADLINE_MS) == 10
    await stop_session(served.server, recording_id)
    await wait_for_hook(dashboard.page, "timelineLoaded", "1", DEADLINE_MS)
    assert int(await dashboard.hook("timelineMarks")) == 12  # each entry once, none lost, none twice
    assert dashboard.errors == [] and dashboard.dialogs == []


EVENT_STREAM = ": keepalive\r\nevent: entries\r\ndata: {\"a\":\r\ndata: 1}\r\nid: 7\r\n\r\n" \
               "retry: 250\revent: lonely\r\rdata:no space\n\n"
PARSE_EVERY_SPLIT = """async (stream) => {
  const {SseParser} = await import("./sse.js");
  const results = new Set();
  for (let cut = 0; cut <= stream.length; cut++) {
    const events = [];
    const parser = new SseParser((event) => events.push(event));
    parser.feed(stream.slice(0, cut));
    parser.feed(stream.slice(cut));
    results.add(JSON.stringify({events, retry: parser.retry}));
  }
  return [...results];
}"""


async def test_the_pages_event_stream_parser_reads_a_stream_cut_anywhere(served: Served, dashboard: Dashboard) -> None:
    """The push channel's parser (sse.js), as the page loads it: CR, LF and CRLF line ends, comments, an
    event without data (not dispatched), multi-line data, id and retry — split at every position."""
    await dashboard.goto(dashboard_url(served.server.admin_url))
    results = await dashboard.page.evaluate(PARSE_EVERY_SPLIT, EVENT_STREAM)
    assert [json.loads(result) for result in results] == [{"events": [
        {"type": "entries", "data": '{"a":\n1}', "lastEventId": "7"},
        {"type": "message", "data": "no space", "lastEventId": "7"}], "retry": 250}]


# --- replay --------------------------------------------------------------------------------------


async def test_a_triggered_replay_advanced_from_the_page_sends_exactly_those_frames(
        served: Served, dashboard: Dashboard, tmp_path: Path) -> None:
    recording = await record_chat(served, "/ws/replayed", ["alpha", "beta", "gamma"], name="replayed chat")
    frames = (await acall("GET", f"{served.server.admin_url}/stream-recordings/{recording['id']}/frames")).json()
    server_texts = [i for i, frame in enumerate(frames["frames"]) if frame["direction"] == "s2c"
                    and frame["type"] == "text"]
    await open_recording(dashboard, served, recording["id"])
    await dashboard.testid("replay-mode").select_option("triggered")
    await dashboard.testid("replay-start").click()
    state = dashboard.testid("replay-state")
    await dashboard.page.wait_for_function(
        "() => document.querySelector('[data-testid=replay-state]').dataset.status === 'pending'", timeout=DEADLINE_MS)
    assert await dashboard.page.evaluate("() => window.__mockdDashboard.replayNext") == server_texts[0]

    async with open_ws(served.server.ws_url("/ws/replayed"), create_connection=RecordingClientConnection) as ws:
        assert isinstance(ws, RecordingClientConnection)
        await dashboard.page.wait_for_function(
            "() => !['pending', ''].includes(document.querySelector('[data-testid=replay-state]').dataset.status)",
            timeout=DEADLINE_MS)
        await dashboard.testid("advance-count").fill("2")
        await dashboard.testid("advance").click()
        assert [await recv(ws), await recv(ws)] == ["alpha", "beta"]
        # nothing else came: a ping's pong arrives behind anything sent before it, and only those two did
        pong = await ws.ping()
        await pong
        texts = [frame.data for frame in ws.log.frames if frame.opcode is Opcode.TEXT]
        assert texts == [b"alpha", b"beta"]
        assert ws.log.frames[-1].opcode is Opcode.PONG
        await dashboard.page.wait_for_function(
            "() => document.querySelector('[data-testid=replay-state]').dataset.currentFrame === '2'",
            timeout=DEADLINE_MS)
        assert await dashboard.testid("replay-current").inner_text() == "2 of 3 sent"
        assert await dashboard.testid("replay-mismatches").inner_text() == "0"
        assert await dashboard.page.evaluate("() => window.__mockdDashboard.replayNext") == server_texts[2]
        assert await state.get_attribute("data-next-entry") == str(server_texts[2])
        await screenshot(dashboard, "replay", tmp_path)

        await dashboard.testid("advance-count").fill("")
        await dashboard.testid("advance-until").fill("gam")
        await dashboard.testid("advance").click()
        assert await recv(ws) == "gamma"
        await dashboard.page.wait_for_function(
            "() => document.querySelector('[data-testid=replay-state]').dataset.status === 'complete'",
            timeout=DEADLINE_MS)
    assert await dashboard.page.evaluate("() => window.__mockdDashboard.replayNext") is None
    dashboard.assert_quiet()


async def replay_status(dashboard: Dashboard, status: str) -> None:
    """Wait until the replay panel shows ``status`` (it reads the replay's status every 250 ms)."""
    await dashboard.page.wait_for_function(
        "(s) => document.querySelector('[data-testid=replay-state]').dataset.status === s", arg=status,
        timeout=DEADLINE_MS)


async def start_replay_from_page(dashboard: Dashboard, mode: str, **options: str) -> None:
    """Choose ``mode``, fill the form's ``options`` (input names), start, and wait for it to be pending."""
    await dashboard.testid("replay-mode").select_option(mode)
    for name, value in options.items():
        await dashboard.testid("replay-form").locator(f'[name="{name}"]').fill(value)
    await dashboard.testid("replay-start").click()
    await replay_status(dashboard, "pending")


async def test_a_pure_replay_paused_from_the_page_shifts_the_rest_of_its_schedule(
        served: Served, dashboard: Dashboard) -> None:
    await open_recording(dashboard, served, served.paced_id)
    assert await dashboard.testid("advance-controls").is_hidden()
    await start_replay_from_page(dashboard, "pure")
    async with open_ws(served.server.ws_url("/ws/paced")) as ws:
        assert await recv(ws) == "one"
        first = time.monotonic()
        await dashboard.testid("pause").click()
        await replay_status(dashboard, "paused")
        replays = (await acall("GET", f"{served.server.admin_url}/replay")).json()
        assert [(replay["status"], replay["currentFrame"]) for replay in replays
                if replay["recordingId"] == served.paced_id] == [("paused", 1)]
        await asyncio.sleep(PAUSE_HELD_S)  # the length of the pause: the input of this test, not a wait
        await dashboard.testid("resume").click()
        assert await recv(ws) == "two"
        gap = time.monotonic() - first
        # the second frame came its recorded gap after the first, plus at least the time held paused
        assert gap >= PAUSE_GAP_MS / 1000 + PAUSE_HELD_S - 0.05, gap
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1000, "done")
    await replay_status(dashboard, "complete")
    assert await dashboard.testid("replay-current").inner_text() == "3 of 3 sent"
    dashboard.assert_quiet()


async def test_a_synchronized_replay_from_the_page_waits_for_the_client_and_cancel_closes_it(
        served: Served, dashboard: Dashboard) -> None:
    recording = await record_chat(served, "/ws/synced", ["alpha", "beta"], name="synchronized chat")
    await open_recording(dashboard, served, recording["id"])
    await start_replay_from_page(dashboard, "synchronized", timingScale="0")
    assert await dashboard.testid("pause").is_hidden()
    async with open_ws(served.server.ws_url("/ws/synced")) as ws:
        await replay_status(dashboard, "waiting")
        await ws.send("alpha")
        assert await recv(ws) == "alpha"
        await dashboard.page.wait_for_function(
            "() => document.querySelector('[data-testid=replay-state]').dataset.currentFrame === '1'",
            timeout=DEADLINE_MS)
        await replay_status(dashboard, "waiting")  # for "beta" now
        await dashboard.testid("replay-cancel").click()
        await ws.wait_closed()
        assert ws.close_code == 1001
    await replay_status(dashboard, "aborted")
    replays = (await acall("GET", f"{served.server.admin_url}/replay")).json()
    assert [(replay["mode"], replay["status"]) for replay in replays if replay["recordingId"] == recording["id"]] \
        == [("synchronized", "aborted")]
    dashboard.assert_quiet()


async def test_an_sse_recordings_timeline_shows_events_comments_and_retries(served: Served,
                                                                            dashboard: Dashboard) -> None:
    await open_recording(dashboard, served, served.sse_id)
    assert await dashboard.page.evaluate("() => window.__mockdDashboard.lanes") == [
        {"connection": 1, "direction": "s2c", "marks": len(SSE_EVENTS)}]
    kinds = await dashboard.page.evaluate("(n) => [...Array(n).keys()].map((i) => window.__mockdDashboard.kindOf(i))",
                                          len(SSE_EVENTS))
    assert kinds == ["event", "comment", "retry", "event"]

    await click_entry(dashboard, 0)
    assert await dashboard.testid("detail-type").inner_text() == "message"
    assert await dashboard.testid("detail-data").inner_text() == json.dumps({"delta": "Hel"}, indent=2)
    await click_entry(dashboard, 2)
    fields = await dashboard.testid("detail-fields").inner_text()
    assert "retry" in fields and "3000" in fields
    assert await dashboard.testid("detail-gap").inner_text() == "40 ms"
    await click_entry(dashboard, 3)
    assert await dashboard.testid("detail-type").inner_text() == "done"
    assert await dashboard.testid("detail-data").inner_text() == "[DONE]"
    assert "/v1/chat" in await dashboard.testid("connection-meta").inner_text()
    dashboard.assert_quiet()


# --- hostile data ----------------------------------------------------------------------------------

HOSTILE_NAME = '<script>window.__pwned = "name"</script>'
HOSTILE_FRAME = "<img src=x onerror=alert(1)>"
HOSTILE_HEADER = "<b onmouseover=alert(2)>bold</b>"
TRY_SCRIPT = """() => {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation",
                            (event) => window.__violations.push(event.violatedDirective + " " + event.blockedURI));
  setTimeout("window.__ran = 'string timer'", 0);  // a string compiled as code: eval (CDP's own evaluate may eval)
  const script = document.createElement("script");
  script.textContent = "window.__ran = 'inline script'";
  document.body.append(script);
  const image = document.createElement("img");
  image.setAttribute("onerror", "window.__ran = 'inline handler'");
  image.src = "data:,not-an-image";
  document.body.append(image);
}"""


async def test_hostile_names_and_frames_show_as_text_and_the_csp_blocks_inline_script(
        served: Served, dashboard: Dashboard) -> None:
    recording = await record_chat(served, "/ws/hostile", [HOSTILE_FRAME], name=HOSTILE_NAME,
                                  headers={"X-Evil": HOSTILE_HEADER})
    await dashboard.goto(dashboard_url(served.server.admin_url))
    await list_settled(dashboard)
    row = await row_of(dashboard, recording["id"])
    assert await row.get_by_test_id("row-name").inner_text() == HOSTILE_NAME

    await row.get_by_test_id("row-open").click()
    await wait_for_hook(dashboard.page, "timelineLoaded", "1", DEADLINE_MS)
    assert await dashboard.testid("recording-title").inner_text() == HOSTILE_NAME
    await click_entry(dashboard, 0)
    assert await dashboard.testid("detail-data").inner_text() == HOSTILE_FRAME
    assert HOSTILE_HEADER in await dashboard.testid("connection-headers").inner_text()
    assert await dashboard.page.evaluate("() => [window.__pwned, document.querySelectorAll('img, b').length, "
                                         "document.querySelectorAll('script').length]") == [None, 0, 1]

    # the CSP is on: a string run as code (eval), an inline script and an inline handler, each blocked and reported
    await dashboard.page.evaluate(TRY_SCRIPT)
    await dashboard.page.wait_for_function("() => window.__violations.length >= 3", timeout=DEADLINE_MS)
    assert sorted(await dashboard.page.evaluate("() => window.__violations")) == [
        "script-src eval", "script-src-attr inline", "script-src-elem inline"]
    assert await dashboard.page.evaluate("() => window.__ran") is None
    assert sum("Content Security Policy" in line for line in dashboard.console) == 3
    assert dashboard.dialogs == []
    assert dashboard.errors == []


# --- the token and the host check ------------------------------------------------------------------


async def test_with_a_token_the_page_works_from_the_fragment_and_the_api_refuses_without_it(
        mockd_module: MockdFactory, browser: Browser, tmp_path: Path) -> None:
    data_dir = tmp_path / "token-data"
    recording_id, _ = write_timeline_recording(data_dir)
    server = mockd_module.start(None, "--admin-token", TOKEN, data_dir=data_dir)
    assert call("GET", f"{server.admin_url}/stream-recordings").status == 401
    ui = call("GET", f"{server.admin_url}/ui/")
    assert ui.status == 200
    assert ui.headers["Content-Security-Policy"] == CSP
    assert ui.headers["X-Content-Type-Options"] == "nosniff"
    refused = send(server.admin_port, "GET", "/ui/", headers={"Host": "evil.example"})
    assert refused.status == 403
    assert refused.json()["error"] == "host_not_allowed"
    assert send(server.admin_port, "GET", "/ui/app.js", headers={"Host": "evil.example"}).status == 403

    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        authorizations: list[str | None] = []

        def note_authorization(request: Request) -> None:
            if "/stream-recordings" in request.url:
                authorizations.append(request.headers.get("authorization"))

        page.on("request", note_authorization)
        await page.goto(dashboard_url(server.admin_url, token=TOKEN))
        await wait_for_hook(page, "listReady", "1", DEADLINE_MS)
        await page.locator(f'[data-testid="recording-row"][data-id="{recording_id}"]').wait_for(timeout=DEADLINE_MS)
        assert TOKEN not in page.url
        assert await page.evaluate("(key) => sessionStorage.getItem(key)", TOKEN_KEY) == TOKEN
        assert TOKEN not in await page.content()
        assert authorizations and set(authorizations) == {f"Bearer {TOKEN}"}

        # a tab without the token gets the form; a wrong token is refused, the right one works
        fresh = await context.new_page()
        await fresh.goto(dashboard_url(server.admin_url))
        await fresh.get_by_test_id("token-panel").wait_for(timeout=DEADLINE_MS)
        await fresh.get_by_test_id("token-input").fill("wrong")
        await fresh.get_by_test_id("token-submit").click()
        await fresh.get_by_test_id("token-panel").wait_for(timeout=DEADLINE_MS)
        assert "refused" in await fresh.get_by_test_id("token-message").inner_text()
        await fresh.get_by_test_id("token-input").fill(TOKEN)
        await fresh.get_by_test_id("token-submit").click()
        await fresh.locator(f'[data-testid="recording-row"][data-id="{recording_id}"]').wait_for(timeout=DEADLINE_MS)
        assert await fresh.get_by_test_id("token-panel").is_hidden()
    finally:
        await context.close()
    server.stop()
