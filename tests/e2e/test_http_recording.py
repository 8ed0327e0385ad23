"""Plain HTTP exchanges recorded by a session of protocol ``http`` (docs/recording.md, "HTTP recordings"),
and the convert options around them, over real sockets: an aiohttp upstream behind the proxy, aiohttp
clients."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from processes import MockdFactory, run_mockd
from configs import http_mock, mocks_config, ws_mock
from httpclient import acall, send
from sessions import start_session, stop_session
from test_recording_api import write_settings
from upstreams import DEADLINE, ReceivedRequest, http_upstream, open_ws, proxy_mock

MIB = 1024 * 1024
BIG_REQUEST = b"r" * (MIB + MIB // 2)
BIG_RESPONSE = b"s" * (2 * MIB)
BINARY = bytes(range(256)) * 4
GZIPPED = {"compressed": True, "secret": "s3cr3t"}
DEEP = b'{"password": "hunter2", "deep": ' + b"[" * 3000 + b"]" * 3000 + b"}"  # deeper than redaction reads


async def api(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
    """``/api/*`` answers by path; anything else is an SSE stream (which an http session must not keep)."""
    path = request.path
    if path == "/api/echo":
        return web.json_response({"got": json.loads(received.body), "secret": "from the server"}, status=201)
    if path == "/api/big":
        return web.Response(body=BIG_RESPONSE, content_type="application/octet-stream")
    if path == "/api/binary":
        return web.Response(body=BINARY, content_type="application/octet-stream")
    if path == "/api/gzip":
        return web.Response(body=gzip.compress(json.dumps(GZIPPED).encode()),
                            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    if path == "/api/deep":
        return web.Response(body=DEEP, content_type="application/json")
    if path == "/api/stream":
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        await response.write_eof()
        return response
    return web.json_response({"path": path, "query": dict(request.query)})


def by_path(recording: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {exchange["request"]["path"]: exchange for exchange in recording["http"]["exchanges"]}


async def test_exchanges_through_the_proxy_are_recorded_redacted_bounded_and_flagged(mockd: MockdFactory,
                                                                                     tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "settings", filterBodyKeys=["password", "secret", "token"])
    async with http_upstream(api) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url, "/", "relay")), "--settings", str(settings))
        recording_id = await start_session(server, "http", "/api/*")
        async with aiohttp.ClientSession(auto_decompress=False) as client:
            base = server.mock_url
            async with client.get(f"{base}/api/list?q=1&token=abc", headers={"Authorization": "Bearer t"}) as got:
                assert got.status == 200
            async with client.post(f"{base}/api/echo", json={"user": "ann", "password": "hunter2"}) as got:
                assert got.status == 201
            async with client.post(f"{base}/api/big", data=BIG_REQUEST) as got:
                assert await got.read() == BIG_RESPONSE  # the client gets every byte; the recording keeps 1 MiB
            async with client.get(f"{base}/api/binary") as got:
                assert await got.read() == BINARY
            async with client.get(f"{base}/api/gzip") as got:
                compressed = await got.read()
                assert json.loads(gzip.decompress(compressed)) == GZIPPED  # passed on compressed, as sent
            async with client.get(f"{base}/api/deep") as got:
                assert await got.read() == DEEP
            async with client.get(f"{base}/api/stream") as got:
                assert await got.read() == b"data: one\n\n"
        recording = await stop_session(server, recording_id)

    assert recording["protocol"] == "http" and recording["status"] == "complete"
    exchanges = by_path(recording)
    assert "/api/stream" not in exchanges, "an SSE stream is not a plain exchange"
    assert recording["stats"]["exchangeCount"] == recording["stats"]["frameCount"] == len(exchanges) == 6
    assert sorted(exchange["connection"] for exchange in exchanges.values()) == [1, 2, 3, 4, 5, 6]
    deep = exchanges["/api/deep"]
    assert deep["redactionFailed"] is True and deep["response"]["body"] == "[REDACTED]"
    assert deep["response"]["size"] == len(DEEP)
    assert "redactionFailed" not in exchanges["/api/echo"]

    listed = exchanges["/api/list"]
    assert listed["request"]["method"] == "GET" and listed["origin"] == "proxy"
    assert listed["request"]["query"] == {"q": "1", "token": "[REDACTED]"}
    assert listed["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert json.loads(listed["response"]["body"]) == {"path": "/api/list", "query": {"q": "1", "token": "[REDACTED]"}}
    assert listed["response"]["status"] == 200 and listed["durationMs"] >= 0

    echoed = exchanges["/api/echo"]
    assert json.loads(echoed["request"]["body"]) == {"user": "ann", "password": "[REDACTED]"}
    assert json.loads(echoed["response"]["body"]) == {"got": {"user": "ann", "password": "[REDACTED]"},
                                                      "secret": "[REDACTED]"}
    assert "hunter2" not in json.dumps(echoed["request"])
    assert echoed["response"]["status"] == 201

    big = exchanges["/api/big"]
    assert big["request"]["bodyTruncated"] is True and big["response"]["bodyTruncated"] is True
    assert (big["request"]["size"], big["response"]["size"]) == (len(BIG_REQUEST), len(BIG_RESPONSE))
    assert big["request"]["body"] == "r" * MIB and big["response"]["body"] == "s" * MIB

    binary = exchanges["/api/binary"]["response"]
    assert binary["bodyEncoding"] == "base64" and base64.b64decode(binary["body"]) == BINARY
    assert "bodyTruncated" not in binary

    zipped = exchanges["/api/gzip"]["response"]
    assert json.loads(zipped["body"]) == {"compressed": True, "secret": "[REDACTED]"}  # kept decompressed
    assert zipped["headers"]["Content-Encoding"] == "gzip" and zipped["size"] == len(compressed)


async def test_http_mock_exchanges_are_recorded_and_convert_back(mockd: MockdFactory, tmp_path: Path) -> None:
    server = mockd.start(mocks_config(http_mock("hello", "/api/hello", {"hello": "world"}, status=202)))
    recording_id = await start_session(server, "http", "/api/*")
    reply = await acall("GET", f"{server.mock_url}/api/hello")
    assert reply.status == 202
    recording = await stop_session(server, recording_id)
    (exchange,) = recording["http"]["exchanges"]
    assert exchange["origin"] == "mock" and exchange["response"]["status"] == 202
    assert json.loads(exchange["response"]["body"]) == {"hello": "world"}

    config = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert")
    assert config.status == 200, config.text
    path = tmp_path / "http.json"
    path.write_bytes(config.body)
    replayer = mockd.start(None, "--config", str(path))
    again = await acall("GET", f"{replayer.mock_url}/api/hello")
    assert (again.status, again.json()) == (202, {"hello": "world"})
    assert again.headers.get("Content-Type", "").startswith("application/json")


async def test_a_connection_that_is_not_in_the_recording_is_400_and_exit_1(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    for message in ("one", "two"):
        async with open_ws(server.ws_url("/ws/echo")) as ws:
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == message
    await stop_session(server, recording_id)
    answer = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", {"connection": 3})
    assert answer.status == 400
    assert answer.json()["error"] == "no_such_connection"
    assert "2 connection(s)" in answer.json()["message"]
    cli = await asyncio.to_thread(run_mockd, "stream-recordings", "convert", recording_id[:12], "--connection", "3",
                                  "--admin-url", server.admin_url)
    assert cli.returncode == 1 and cli.stdout == ""
    assert cli.stderr.strip().splitlines() == [f"mockd: error: {answer.json()['message']}"]


async def test_a_converted_websocket_mock_takes_any_query_by_default(mockd: MockdFactory, tmp_path: Path) -> None:
    """Engine.IO and friends put a fresh cache-buster in every upgrade's query; the recorded one must
    not keep the converted mock from answering (and ``matchOn`` with ``query`` makes it count)."""
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")))
    recording_id = await start_session(server, "websocket", "/ws/echo")
    async with open_ws(server.ws_url("/ws/echo?EIO=4&t=first")) as ws:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "hello"
    await stop_session(server, recording_id)
    for body, later_query_served in (({}, True), ({"matchOn": ["path", "query"]}, False)):
        config = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", body)
        assert config.status == 200, config.text
        path = tmp_path / f"ws-{len(body)}.json"
        path.write_bytes(config.body)
        replayer = mockd.start(None, "--config", str(path))
        if later_query_served:
            async with open_ws(replayer.ws_url("/ws/echo?EIO=4&t=second")) as ws:
                await ws.send("hello")
                assert await asyncio.wait_for(ws.recv(), DEADLINE) == "hello"
        else:
            refused = await asyncio.to_thread(
                send, replayer.mock_port, "GET", "/ws/echo?EIO=4&t=second",
                {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()})
            assert refused.status == 404 and refused.json()["error"] == "no_mock"
            async with open_ws(replayer.ws_url("/ws/echo?EIO=4&t=first")) as ws:
                await ws.send("hello")
                assert await asyncio.wait_for(ws.recv(), DEADLINE) == "hello"
