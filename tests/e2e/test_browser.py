"""A real browser's ``WebSocket`` and ``EventSource`` APIs against mocks served by mockd itself.

The page is an HTTP mock on ``/``; its script talks to a WebSocket mock and an SSE mock on the same
origin, collects everything it receives into ``window.results``, and the test reads that back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

from playwright.async_api import (
    ConsoleMessage,
    Error as PlaywrightError,
    async_playwright,
)

from websockets.asyncio.server import ServerConnection

from chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from processes import MockdFactory, RunningMockd
from configs import mocks_config
from upstreams import proxy_mock, raw_server, ws_upstream

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.timeout(30)]

RESULTS_DEADLINE_MS = 10_000

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>mockd browser test</title></head>
<body>
<p id="status">running</p>
<script>
(function () {
  const progress = {ws: [], wsTypes: [], protocol: null, open: false, close: null,
                    sse: [], errors: []};
  window.progress = progress;
  let wsDone = false, sseDone = false;
  function finish() {
    if (wsDone && sseDone) {
      window.results = progress;
      document.getElementById("status").textContent = "done";
    }
  }

  const ws = new WebSocket("ws://" + location.host + "/ws/chat", ["legacy.v0", "chat.v2"]);
  ws.onopen = function () { progress.open = true; progress.protocol = ws.protocol; };
  ws.onmessage = function (event) {
    progress.wsTypes.push(typeof event.data);
    progress.ws.push(event.data);
    let message = null;
    try { message = JSON.parse(event.data); } catch (e) { progress.errors.push("ws: not JSON: " + event.data); }
    if (message && message.type === "welcome") {
      ws.send(JSON.stringify({type: "hello", user: "ada"}));
    } else if (message && message.type === "ack") {
      ws.close(1000, "bye");
    }
  };
  ws.onerror = function () { progress.errors.push("ws: error event"); };
  ws.onclose = function (event) {
    progress.close = {code: event.code, reason: event.reason, wasClean: event.wasClean};
    wsDone = true;
    finish();
  };

  const es = new EventSource("/events");
  function record(event) {
    progress.sse.push({type: event.type, data: event.data, lastEventId: event.lastEventId});
  }
  es.onmessage = record;
  es.addEventListener("greeting", record);
  es.addEventListener("update", record);
  es.addEventListener("done", function (event) {
    record(event);
    es.close();
    sseDone = true;
    finish();
  });
  es.onerror = function () {
    progress.errors.push("sse: error event, readyState " + es.readyState);
  };
})();
</script>
</body>
</html>
"""

PAGE_MOCK: dict[str, Any] = {
    "id": "page", "type": "http",
    "http": {"matcher": {"method": "GET", "path": "/"},
             "response": {"statusCode": 200, "headers": {"Content-Type": "text/html; charset=utf-8"},
                          "body": PAGE}},
}

WS_MOCK: dict[str, Any] = {
    "id": "chat", "type": "websocket",
    "websocket": {
        "path": "/ws/chat",
        "subprotocols": ["chat.v2"],
        "requireSubprotocol": True,
        "scenario": {"name": "welcome", "loop": False, "steps": [
            {"type": "send", "message": {"type": "json", "value": {"type": "welcome", "room": "lobby"}}},
        ]},
        "matchers": [
            {"match": {"type": "json", "path": "$.type", "value": "hello"},
             "response": {"type": "json", "value": {"type": "ack", "user": "{{message.user}}"}}},
        ],
    },
}

SSE_MOCK: dict[str, Any] = {
    "id": "events", "type": "http",
    "http": {"matcher": {"method": "GET", "path": "/events"},
             "sse": {"events": [
                 {"type": "greeting", "data": "hello browser", "id": "1"},
                 {"data": "line one\nline two\nline three", "id": "2"},
                 {"type": "update", "data": {"n": 3, "ok": True}, "id": "3"},
             ],
                 "timing": {"initialDelay": 0, "fixedDelay": 0},
                 "lifecycle": {"termination": {"finalEvent": {"type": "done", "data": "bye"}}}}},
}


async def results_of_page(page_url: str, server: RunningMockd) -> dict[str, Any]:
    """Load the page in chromium and wait (with a deadline) for what its script collected."""
    console: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()

            def on_console(message: ConsoleMessage) -> None:
                console.append(f"{message.type}: {message.text}")

            page.on("console", on_console)
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))

            response = await page.goto(page_url)
            assert response is not None
            assert response.status == 200
            assert (await response.header_value("content-type") or "").startswith("text/html")

            try:
                await page.wait_for_function("() => window.results !== undefined",
                                             timeout=RESULTS_DEADLINE_MS)
            except PlaywrightError as error:
                progress = await page.evaluate("() => window.progress")
                pytest.fail(f"page did not finish within {RESULTS_DEADLINE_MS} ms: {error}\n"
                            f"progress: {json.dumps(progress, indent=2)}\nconsole: {console}\n"
                            f"mockd stderr: {server.stderr}")
            results: dict[str, Any] = await page.evaluate("() => window.results")
        finally:
            await browser.close()
    assert console == []
    return results


def assert_page_saw_the_streams(results: dict[str, Any]) -> None:
    assert results["errors"] == [], results
    assert results["open"] is True

    # WebSocket: negotiated subprotocol, the welcome, the templated answer.
    assert results["protocol"] == "chat.v2"
    assert results["wsTypes"] == ["string", "string"]  # text frames, not Blobs
    assert [json.loads(message) for message in results["ws"]] == [
        {"type": "welcome", "room": "lobby"},
        {"type": "ack", "user": "ada"},
    ]
    assert results["close"] == {"code": 1000, "reason": "bye", "wasClean": True}

    # EventSource: named and unnamed events, multi-line data, compact JSON, lastEventId carried over.
    assert results["sse"] == [
        {"type": "greeting", "data": "hello browser", "lastEventId": "1"},
        {"type": "message", "data": "line one\nline two\nline three", "lastEventId": "2"},
        {"type": "update", "data": '{"n":3,"ok":true}', "lastEventId": "3"},
        {"type": "done", "data": "bye", "lastEventId": "3"},
    ]


async def test_browser_websocket_and_eventsource_against_mockd(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(PAGE_MOCK, WS_MOCK, SSE_MOCK))
    assert_page_saw_the_streams(await results_of_page(f"{server.mock_url}/", server))


# --- the same page through the upstream proxy, to servers that are not mockd ---------------------

SSE_BODY = (b'event: greeting\nid: 1\ndata: hello browser\n\n'
            b'id: 2\ndata: line one\ndata: line two\ndata: line three\n\n'
            b'event: update\nid: 3\ndata: {"n":3,"ok":true}\n\n'
            b'event: done\ndata: bye\n\n')


async def chat_upstream(connection: ServerConnection) -> None:
    """What the chat mock does, written with the websockets library."""
    await connection.send(json.dumps({"type": "welcome", "room": "lobby"}))
    async for message in connection:
        request = json.loads(message)
        if request.get("type") == "hello":
            await connection.send(json.dumps({"type": "ack", "user": request["user"]}))


async def sse_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An SSE server on raw asyncio: one block per write, then the end of the body."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 b"Connection: close\r\n\r\n")
    for block in SSE_BODY.split(b"\n\n")[:-1]:
        writer.write(block + b"\n\n")
        await writer.drain()
    writer.close()


async def test_browser_streams_through_the_proxy_to_real_upstreams(mockd: MockdFactory) -> None:
    async with ws_upstream(chat_upstream, subprotocols=["chat.v2"]) as chat, raw_server(sse_upstream) as sse_url:
        server = mockd.start(mocks_config(PAGE_MOCK, proxy_mock(chat.url, "/ws", "chat-upstream"),
                                          proxy_mock(sse_url, "/events", "events-upstream")))
        assert_page_saw_the_streams(await results_of_page(f"{server.mock_url}/", server))


# --- a page that talks first, against a converted recording ---------------------------------------

TALK_FIRST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>talks first</title></head>
<body><script>
(function () {
  const got = [];
  window.progress = got;
  const ws = new WebSocket("ws://" + location.host + "/ws/talk");
  ws.onopen = function () { ws.send(JSON.stringify({type: "join", room: "lobby"})); };
  ws.onmessage = function (event) {
    got.push(event.data);
    if (got.length === 2) { ws.send("thanks"); }
  };
  ws.onclose = function (event) {
    window.results = {got: got, close: {code: event.code, reason: event.reason}, errors: [], open: true};
  };
})();
</script></body></html>
"""
TALK_FIRST_PAGE_MOCK: dict[str, Any] = {
    "id": "talk-page", "type": "http",
    "http": {"matcher": {"method": "GET", "path": "/"},
             "response": {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": TALK_FIRST_PAGE}},
}
WELCOME_AFTER = 0.1  # s: the upstream greets a while after the upgrade


async def greeting_upstream(connection: ServerConnection) -> None:
    """Greets after a pause, then answers the join and the thanks (written with the websockets library)."""
    await asyncio.sleep(WELCOME_AFTER)
    await connection.send("welcome")
    join = json.loads(await connection.recv())
    await connection.send(f"joined {join['room']}")
    assert await connection.recv() == "thanks"
    await connection.close(4000, "done")


async def test_a_page_that_sends_on_open_gets_the_converted_recording(mockd: MockdFactory, tmp_path: Any) -> None:
    """Recorded with a client that waits for the greeting, replayed to a browser whose onopen sends at
    once: the converted scenario keeps the early join for its expect step instead of dropping it (which
    left the page with the greeting, then nothing, then a 1008 close 30 s later)."""
    from sessions import start_session, stop_session
    from test_convert_round_trips import convert_both_ways
    from websockets.asyncio.client import connect

    async with ws_upstream(greeting_upstream) as upstream:
        recorder = mockd.start(mocks_config(proxy_mock(upstream.url, "/ws", "talk-upstream")))
        recording_id = await start_session(recorder, "websocket", "/ws/talk")
        async with connect(recorder.ws_url("/ws/talk"), open_timeout=10) as ws:
            assert await asyncio.wait_for(ws.recv(), 10) == "welcome"  # this client waits, then talks
            await ws.send(json.dumps({"type": "join", "room": "lobby"}))
            assert await asyncio.wait_for(ws.recv(), 10) == "joined lobby"
            await ws.send("thanks")
            await asyncio.wait_for(ws.wait_closed(), 10)
        await stop_session(recorder, recording_id)
    converted = await convert_both_ways(recorder, recording_id, {}, [], tmp_path)
    page = tmp_path / "page.json"
    page.write_text(json.dumps(mocks_config(TALK_FIRST_PAGE_MOCK)))
    server = mockd.start(None, "--config", str(page), "--config", str(converted))
    results = await results_of_page(f"{server.mock_url}/", server)
    assert results["got"] == ["welcome", "joined lobby"]
    assert results["close"] == {"code": 4000, "reason": "done"}
