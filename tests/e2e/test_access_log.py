"""The access log (``--access-log``, on at ``--log-level debug``): one line per request on both listeners
naming what answered, each WebSocket/SSE connection's open and close with codes and frame counts, in text
and JSON — and never a secret, since headers and query pass through the recording's redaction."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from processes import MockdFactory, RunningMockd
from configs import http_mock, mocks_config
from polling import wait_until
from upstreams import unreachable_url

SECRET = "s3cr3t-token-value"
CONFIG = mocks_config(
    http_mock("hello", "/hello", {"hi": True}),
    {"id": "chat", "type": "websocket", "websocket": {"path": "/ws/chat"}},
    {"id": "ticks", "type": "http", "http": {"matcher": {"method": "GET", "path": "/events"},
                                             "sse": {"events": [{"data": "one"}, {"data": "two"}]}}},
)


def settings_file(directory: Path) -> Path:
    path = directory / "mockd.yaml"
    path.write_text("recording:\n  filterHeaders: [X-Api-Key]\n  filterBodyKeys: [token]\n")
    return path


def curl(url: str, *args: str) -> str:
    return subprocess.run(["curl", "-sS", "-N", "--max-time", "20", *args, url], capture_output=True, text=True,
                          timeout=30, check=True).stdout


async def traffic(server: RunningMockd) -> None:
    """A plain request with a secret header and query, a WebSocket with two messages, an SSE stream, a 404,
    and one admin call."""
    await asyncio.to_thread(curl, f"{server.mock_url}/hello?token={SECRET}&page=2", "-H", f"X-Api-Key: {SECRET}",
                            "-H", f"Authorization: Bearer {SECRET}")
    async with connect(server.ws_url("/ws/chat"), additional_headers={"X-Api-Key": SECRET}) as ws:
        for message in ("a", "b"):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), 10) == message
        await ws.close(4000, "done here")
    assert "data: two" in await asyncio.to_thread(curl, f"{server.mock_url}/events")
    await asyncio.to_thread(curl, f"{server.mock_url}/nothing-here")
    await asyncio.to_thread(curl, f"{server.admin_url}/health")


def lines_with(server: RunningMockd, text: str) -> list[str]:
    return [line for line in server.stderr.splitlines() if text in line]


async def test_text_access_log_at_debug_names_each_request_and_stream_without_secrets(
        mockd: MockdFactory, tmp_path: Path) -> None:
    server = mockd.start(CONFIG, "--log-level", "debug", "--settings", str(settings_file(tmp_path)))
    await traffic(server)
    await wait_until(lambda: bool(lines_with(server, "admin GET /health 200")), "the admin request's line")
    log = server.stderr
    assert SECRET not in log

    hello, = lines_with(server, "mock GET /hello")
    assert "?token=[REDACTED]&page=2 200 " in hello and "mock=hello" in hello
    assert "'X-Api-Key': '[REDACTED]'" in hello and "'Authorization': '[REDACTED]'" in hello  # debug: headers
    ws_open, = lines_with(server, "WS open /ws/chat")
    assert "via mock" in ws_open
    ws_close, = lines_with(server, "WS close /ws/chat")
    assert "4000 'done here' frames in=3 out=3" in ws_close  # two messages and a close each way
    upgrade, = lines_with(server, "mock GET /ws/chat 101")
    assert "mock=chat" in upgrade
    sse_close, = lines_with(server, "SSE close /events")
    assert "events=2" in sse_close
    assert lines_with(server, "mock GET /nothing-here 404")


async def test_json_access_log_is_one_object_per_line_and_the_banner_is_json_too(
        mockd: MockdFactory, tmp_path: Path) -> None:
    server = mockd.start(CONFIG, "--access-log", "--log-format", "json", "--settings", str(settings_file(tmp_path)))
    banner = json.loads(server.stdout.strip())
    assert banner["event"] == "started" and banner["mockUrl"] == server.mock_url
    assert banner["adminUrl"] == server.admin_url and banner["mocks"] == 3

    await traffic(server)
    await wait_until(lambda: '"listener": "admin"' in server.stderr, "the admin request's line")
    entries = [json.loads(line) for line in server.stderr.splitlines()]  # every line parses
    assert SECRET not in server.stderr
    access = [entry for entry in entries if entry["logger"] == "mockd.access"]

    def one(**fields: Any) -> dict[str, Any]:
        found = [entry for entry in access if all(entry.get(name) == value for name, value in fields.items())]
        assert len(found) == 1, (fields, access)
        return found[0]

    hello = one(kind="request", path="/hello")
    assert hello["status"] == 200 and hello["answeredBy"] == "mock=hello" and hello["method"] == "GET"
    assert hello["query"] == {"token": "[REDACTED]", "page": "2"}
    assert isinstance(hello["durationMs"], float)
    assert "headers" not in hello  # headers only at debug
    closed = one(kind="close", protocol="websocket")
    assert (closed["closeCode"], closed["closeReason"], closed["framesIn"], closed["framesOut"]) == \
        (4000, "done here", 3, 3)
    assert one(kind="close", protocol="sse")["events"] == 2
    assert one(kind="request", path="/nothing-here")["status"] == 404
    assert one(kind="request", listener="admin", path="/health")["status"] == 200


async def test_no_access_log_by_default(mockd: MockdFactory) -> None:
    server = mockd.start(CONFIG)
    await traffic(server)
    assert "mockd.access" not in server.stderr


async def test_a_proxy_failure_is_a_warning_with_its_cause_at_the_default_level(mockd: MockdFactory) -> None:
    with unreachable_url() as url:
        server = mockd.start(None, "--upstream", url)
        await asyncio.to_thread(curl, f"{server.mock_url}/api/x")
        await wait_until(lambda: bool(lines_with(server, "WARNING")), "the warning")
    warning, = lines_with(server, "WARNING")
    assert "GET /api/x" in warning and url in warning and "is unreachable" in warning
