"""Nothing lost silently: JSON nested too deep (or otherwise unreadable) in frames, events, admin bodies,
config and settings files, and WebSocket mock messages.

A recorded frame whose JSON cannot be redacted is still recorded — its data replaced by the redact value,
flagged ``redactionFailed`` and with its real size — and the server says so once per connection, never
with the payload. An admin body nested too deep is a ``400 invalid_json``; a config or settings file
nested too deep is one line and exit 1; a WebSocket mock answers such a message as "no match" and goes
on serving. Real sockets and a real ``mockd serve`` process throughout; the Redactor's contract, as a pure
function, is checked in ``tests/unit/test_deep_json_units.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from processes import MockdFactory, RunningMockd, run_mockd
from configs import mocks_config, write_config, ws_mock
from deepjson import DEEP_LEVELS, REDACTED, SECRET, deep_document, nested
from httpclient import Reply, acall
from sessions import poll_recording, start_session, stop_session
from test_recording_api import write_settings
from upstreams import DEADLINE, echo, open_request, open_ws, proxy_mock, recv, streaming_upstream, ws_upstream

Json = dict[str, Any]
TOO_DEEP_BODY = b"[" * 100_000 + b"]" * 100_000
WARNING = "could not be redacted (nested too deep); its data was replaced by the redact value"

NORMAL_SENT = ['{"password": "%s", "n": 1}' % SECRET, '{"n": 2, "password": "%s"}' % SECRET]
NORMAL_STORED = ['{"password": "[REDACTED]", "n": 1}', '{"n": 2, "password": "[REDACTED]"}']


# --- the admin API ------------------------------------------------------------------------------------


async def admin(server: RunningMockd, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
    return await acall(method, server.admin_url + path, body, **kwargs)


def filled(recording: Json, entries: int) -> bool:
    """Every captured connection closed and ``entries`` frames or events in."""
    section = recording.get("websocket") or recording.get("sse") or {}
    items = section.get("frames") or section.get("events") or []
    connections = recording.get("connections") or []
    return bool(connections) and all("closedAt" in c for c in connections) and len(items) >= entries


async def stop_once_closed(server: RunningMockd, recording_id: str, entries: int) -> Json:
    """Wait (polling with a deadline) until every captured connection closed and ``entries`` frames or
    events are in, then stop the session; returns the recording the stop answered with."""
    recording = await poll_recording(server, recording_id, lambda live: filled(live, entries), DEADLINE)
    assert filled(recording, entries), f"the recording did not fill up: {recording}"
    stopped = await stop_session(server, recording_id)
    assert stopped["id"] == recording_id, stopped
    return stopped


def secret_files(server: RunningMockd) -> list[str]:
    return sorted(str(p) for p in server.data_dir.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes())


def assert_quiet_log(server: RunningMockd, warnings: int) -> None:
    """The server log warned ``warnings`` times, without the payload and without a traceback."""
    log = server.stderr
    assert log.count(WARNING) == warnings, log
    assert "Traceback" not in log, log
    assert SECRET not in log, log
    assert "could not record" not in log, log


# --- 1. recording: the entry is kept, flagged, redacted -------------------------------------------------


@pytest.mark.parametrize("origin", ["mock", "proxy"])
async def test_deep_ws_frames_are_recorded_flagged_with_the_redact_value(mockd: MockdFactory, tmp_path: Path,
                                                                        origin: str) -> None:
    settings_file = write_settings(tmp_path / "settings", filterBodyKeys=["password"])
    messages = [NORMAL_SENT[0], *(deep_document(levels) for levels in DEEP_LEVELS), NORMAL_SENT[1]]
    stored = [NORMAL_STORED[0], REDACTED, REDACTED, NORMAL_STORED[1]]
    async with ws_upstream(echo) as upstream:
        server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo"), proxy_mock(upstream.url, "/up")),
                             "--settings", str(settings_file))
        path = "/ws/echo" if origin == "mock" else "/up/ws"
        recording_id = await start_session(server, "websocket", path)
        async with open_ws(server.ws_url(path), max_size=None) as ws:
            for message in messages:
                await ws.send(message)
                assert await recv(ws) == message  # the live traffic is untouched
        recording = await stop_once_closed(server, recording_id, 2 * len(messages))

    assert recording["status"] == "complete"
    frames = recording["websocket"]["frames"]
    assert recording["stats"]["frameCount"] == len(frames)
    texts = [frame for frame in frames if frame["type"] == "text"]
    assert [(f["direction"], f["data"]) for f in texts] == [(d, s) for s in stored for d in ("c2s", "s2c")]
    for index, frame in enumerate(texts):
        sent = messages[index // 2]
        assert frame["size"] == len(sent.encode())  # the payload's size, not the redact value's
        if stored[index // 2] == REDACTED:
            assert frame["redactionFailed"] is True, frame
        else:
            assert "redactionFailed" not in frame, frame
    assert secret_files(server) == [], "a secret reached the disk"
    assert_quiet_log(server, warnings=1)  # four failed frames, one connection: one warning


async def test_deep_json_without_a_filtered_key_is_kept_verbatim(mockd: MockdFactory, tmp_path: Path) -> None:
    """Unreadable, but no filtered key can be in it: nothing to hide, so it is stored as it came."""
    settings_file = write_settings(tmp_path / "settings", filterBodyKeys=["password"])
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")), "--settings", str(settings_file))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    message = '{"harmless": %s}' % nested(3000)
    async with open_ws(server.ws_url("/ws/echo"), max_size=None) as ws:
        await ws.send(message)
        assert await recv(ws) == message
    recording = await stop_once_closed(server, recording_id, 2)
    texts = [frame for frame in recording["websocket"]["frames"] if frame["type"] == "text"]
    assert [(f["data"], "redactionFailed" in f) for f in texts] == [(message, False)] * 2
    assert_quiet_log(server, warnings=0)


SSE_EVENTS = [NORMAL_SENT[0], *(deep_document(levels) for levels in DEEP_LEVELS), NORMAL_SENT[1]]
SSE_STORED = [NORMAL_STORED[0], REDACTED, REDACTED, NORMAL_STORED[1]]


@pytest.mark.parametrize("origin", ["mock", "proxy"])
async def test_deep_sse_events_and_request_body_are_recorded_with_the_redact_value(
        mockd: MockdFactory, tmp_path: Path, origin: str) -> None:
    settings_file = write_settings(tmp_path / "settings", filterBodyKeys=["password"])
    chunks = [f"data: {data}\n\n".encode() for data in SSE_EVENTS]
    sse = {"id": "sse", "type": "http", "http": {"matcher": {"method": "POST", "path": "/sse/mock"},
                                                 "sse": {"events": [{"data": data} for data in SSE_EVENTS]}}}
    async with streaming_upstream(lambda i: chunks[i] if i < len(chunks) else None, 0.01,
                                  headers=[("Content-Type", "text/event-stream")]) as upstream:
        server = mockd.start(mocks_config(sse, proxy_mock(upstream.url, "/up")), "--settings", str(settings_file))
        path = "/sse/mock" if origin == "mock" else "/up/stream"
        recording_id = await start_session(server, "sse", path)
        response = await open_request(server.mock_port, "POST", path,
                                      [("Accept", "text/event-stream"), ("Content-Type", "application/json")],
                                      deep_document(2000).encode())
        assert response.status == 200
        body = await response.read_body()
        await response.close()
        assert all(data.encode() in body for data in SSE_EVENTS)  # the live stream is untouched
        recording = await stop_once_closed(server, recording_id, len(SSE_EVENTS))

    assert recording["status"] == "complete"
    events = [event for event in recording["sse"]["events"] if "data" in event]
    assert [event["data"] for event in events] == SSE_STORED
    for event, stored in zip(events, SSE_STORED, strict=True):
        assert event.get("redactionFailed") is (True if stored == REDACTED else None), event
    assert recording["stats"]["eventCount"] == len(recording["sse"]["events"])
    assert recording["sse"]["request"]["body"] == REDACTED
    assert secret_files(server) == [], "a secret reached the disk"
    assert_quiet_log(server, warnings=1)  # the request body and two events, one connection: one warning


# --- 2. the admin API: 400 invalid_json, never a 500 -----------------------------------------------------

BODY_ROUTES = ["/mocks", "/stream-recordings/start", "/stream-recordings/{id}/convert",
               "/stream-recordings/{id}/replay", "/replay/{id}/advance"]


@pytest.fixture
async def admin_targets(mockd: MockdFactory) -> tuple[RunningMockd, list[str]]:
    """A server with one recording and one triggered replay of it, and every POST route that takes a
    JSON body (the five named, plus any other the OpenAPI document lists) with its ids filled in."""
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    async with open_ws(server.ws_url("/ws/echo")) as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
    await stop_once_closed(server, recording_id, 2)
    started = await admin(server, "POST", f"/stream-recordings/{recording_id}/replay",
                          {"mode": "triggered", "path": "/replayed"})
    assert started.status == 201, started.text
    replay_id = started.json()["sessionId"]
    document = (await admin(server, "GET", "/openapi.json")).json()
    documented = {path for path, item in document["paths"].items() if "requestBody" in item.get("post", {})}
    assert set(BODY_ROUTES) <= documented, documented
    routes = sorted(documented)
    return server, [route.replace("{id}", replay_id if route.startswith("/replay/") else recording_id)
                    for route in routes]


async def test_json_nested_too_deep_is_400_invalid_json_on_every_body_route(
        admin_targets: tuple[RunningMockd, list[str]]) -> None:
    server, targets = admin_targets
    bad: list[str] = []
    for target in targets:
        reply = await admin(server, "POST", target, raw=TOO_DEEP_BODY)
        answer = reply.json() if reply.headers.get("Content-Type", "").startswith("application/json") else None
        if reply.status != 400 or not isinstance(answer, dict) or answer.get("error") != "invalid_json" \
                or "nested too deep" not in answer.get("message", ""):
            bad.append(f"POST {target}: {reply.status} {reply.body[:200]!r}")
    assert not bad, "\n".join(bad)
    assert (await admin(server, "GET", "/health")).status == 200
    assert "Traceback" not in server.stderr


async def test_json_near_the_depth_limit_is_a_4xx_json_answer(admin_targets: tuple[RunningMockd, list[str]]) -> None:
    """Just under the parser's limit the body decodes, and what follows (validation) must cope too."""
    server, targets = admin_targets
    bad: list[str] = []
    for levels in (1000, 990, 980, 970, 960, 950, 900):
        deep = nested(levels, "")
        for raw in (deep.encode(), ('{"name": %s}' % deep).encode()):
            for target in targets:
                reply = await admin(server, "POST", target, raw=raw)
                if not 400 <= reply.status < 500 or "error" not in reply.json():
                    bad.append(f"POST {target} ({levels} levels): {reply.status} {reply.body[:200]!r}")
    assert not bad, "\n".join(bad)
    assert "Traceback" not in server.stderr


# --- 3. config and settings files: one line, exit 1 ------------------------------------------------------

DEEP_FILES = {
    "json": ("mocks.json", '{"version": "1.0", "mocks": %s}' % nested(5000, "")),
    "yaml-flow": ("mocks.yaml", 'version: "1.0"\nmocks: %s\n' % nested(5000, "")),
    "yaml-block": ("mocks.yaml", 'version: "1.0"\nmocks:\n' + "".join(" " * i + "- \n" for i in range(1, 3000))),
}


def assert_one_line_failure(result: Any, path: Path) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and ("nested too deep" in lines[0] or "nesting depth" in lines[0]), lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("kind", DEEP_FILES)
def test_config_file_nested_too_deep_is_one_line_and_exit_1(tmp_path: Path, kind: str) -> None:
    name, text = DEEP_FILES[kind]
    path = write_config(tmp_path, text, name)
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path / "data"),
                       "--config", str(path))
    assert_one_line_failure(result, path)


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_settings_file_nested_too_deep_is_one_line_and_exit_1(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"mockd.{kind}"
    path.write_text('{"recording": %s}' % nested(5000, "") if kind == "json"
                    else "recording: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n")
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path / "data"),
                       "--settings", str(path))
    assert_one_line_failure(result, path)


# --- 4. WebSocket mocks: no match, the connection stays up ---------------------------------------------


@pytest.mark.parametrize("default", [True, False], ids=["defaultResponse", "no-default"])
async def test_ws_json_matcher_answers_a_deep_message_as_no_match_and_keeps_serving(
        mockd: MockdFactory, default: bool) -> None:
    fields: Json = {"matchers": [
        {"match": {"type": "json", "path": "$.kind", "value": "ping"}, "response": {"value": "pong"}},
        {"match": {"type": "json", "path": "$..kind", "value": "hello"}, "response": {"value": "hi"}}]}
    if default:
        fields["defaultResponse"] = {"value": "no match: [{{message.kind}}]"}
    server = mockd.start(mocks_config(ws_mock("m", "/ws/m", **fields)))
    async with open_ws(server.ws_url("/ws/m"), max_size=None) as ws:
        for levels in (*DEEP_LEVELS, 100_000):
            await ws.send('{"kind": "ping", "d": %s}' % nested(levels))
            if default:
                assert await recv(ws) == "no match: []"  # undecodable: no match, its fields are missing
        # decodable, but deep enough that a recursive search ($..) may give up: an answer either way
        await ws.send('{"kind": "hello", "d": %s}' % nested(800))
        if default:
            assert await recv(ws) in ("hi", "no match: [hello]")
        await ws.send('{"kind": "ping"}')
        answer = await recv(ws)
        if not default:
            while answer == "hi":  # the 800-level message may have matched $..kind
                answer = await recv(ws)
        assert answer == "pong"  # the next answer: nothing was sent for the deep messages without a default
        assert ws.close_code is None
    assert server.process.poll() is None
    assert "Traceback" not in server.stderr
