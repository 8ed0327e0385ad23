"""The upstream proxy, HTTP side (docs/config.md, "Proxy mocks"): plain HTTP, streamed responses and SSE,
prefix matching, failures and shutdown — black-box over real sockets.

Upstreams are aiohttp's web server (requests recorded as received) or a raw asyncio server that paces
a chunked body and logs when it wrote each chunk; the client is a raw HTTP/1.1 client that logs when
each chunk arrived, so "relayed as it arrives" is measured on one clock. Timing bounds are wide (a
noisy 2-core machine): the upstream paces events 200 ms apart and the tests only require the client to
see them at least 150 ms apart and each one before the upstream sends the next.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import random
import signal
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from processes import MockdFactory
from configs import http_mock, mocks_config
from polling import poll_until
from upstreams import (
    http_chunk,
    assert_held_back,
    DEADLINE,
    Headers,
    ReceivedRequest,
    RawResponse,
    fd_count,
    http_upstream,
    open_request,
    proxy_mock,
    raw_server,
    request,
    silent_upstream,
    start_proxying,
    streaming_upstream,
    unreachable_url,
)

PACE = 0.200  # the upstream's interval between streamed chunks
MIN_GAP = 0.150  # the smallest gap the client may see between two of them
PROMPT = 2.0  # "promptly" for a request that must not wait on another one


def no_mock_matched(response: RawResponse, method: str, path: str) -> bool:
    """mockd's own 404: JSON naming the method and the path."""
    if response.status != 404:
        return False
    message = json.dumps(response.json())
    return method in message and path in message


# --- plain HTTP: the request ----------------------------------------------------------------------

CLIENT_HEADERS: Headers = [
    ("X-Custom", "v1"), ("X-Multi", "a"), ("X-Multi", "b"), ("Authorization", "Bearer tok"),
    ("Cookie", "a=1; b=2"), ("User-Agent", "proxy-test/1.0"), ("Accept", "application/json"),
    ("X-Override", "from-client"),
    # hop-by-hop, including a header named by Connection: never forwarded
    ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
    ("Proxy-Authorization", "Basic eA=="), ("Trailer", "X-T"),
]
HOP_BY_HOP = ("X-Hop", "Keep-Alive", "TE", "Proxy-Authorization", "Trailer")
MOCK_HEADERS = {"X-Forwarded-By": "mockd", "X-Override": "from-mock"}
BINARY_BODY = random.Random(11).randbytes(1024 * 1024)


async def describe_request(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
    return web.Response(body=f"{received.method} ok".encode(), headers={"X-Upstream": "yes"})


@pytest.mark.parametrize(("method", "target", "body", "content_type"), [
    ("GET", "/api/items?b=2&a=1&a=3&sp=a%20b&enc=%2F%3D&flag", None, None),
    ("POST", "/api/items", b'{"name":"widget","tags":["a","b"],"n":1.50}', "application/json"),
    ("PUT", "/api/blob/x%20y", BINARY_BODY, "application/octet-stream"),
    ("PATCH", "/api/items/1?v=2", [b'{"op":', b'"replace",', b'"value":"\xc3\xa9"}'], "application/json"),
    ("POST", "/api/empty", b"", "text/plain"),
    ("DELETE", "/api/items/1?hard=true", None, None),
    ("OPTIONS", "/api/items", None, None),
    ("HEAD", "/api/items", None, None),
], ids=["get-query", "post-json", "put-binary", "patch-chunked", "post-empty", "delete", "options", "head"])
async def test_method_path_query_headers_and_body_are_forwarded(
        mockd: MockdFactory, method: str, target: str, body: bytes | list[bytes] | None,
        content_type: str | None) -> None:
    async with http_upstream(describe_request) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url, headers=MOCK_HEADERS)))
        headers = CLIENT_HEADERS + ([("Content-Type", content_type)] if content_type else [])
        response = await request(server.mock_port, method, target, headers, body)
        [received] = upstream.requests
    assert response.status == 200
    assert response.value("X-Upstream") == "yes"
    assert response.body == (b"" if method == "HEAD" else f"{method} ok".encode())
    assert received.method == method
    assert received.target == target
    assert received.body == (b"".join(body) if isinstance(body, list) else body or b"")
    if content_type:
        assert received.values("Content-Type") == [content_type]
    assert received.values("X-Custom") == ["v1"]
    assert received.values("X-Multi") == ["a", "b"]
    for name in ("Authorization", "Cookie", "User-Agent", "Accept"):
        assert received.values(name) == [value for key, value in CLIENT_HEADERS if key == name]
    assert received.values("X-Forwarded-By") == ["mockd"]
    assert received.values("X-Override") == ["from-mock"]
    for name in HOP_BY_HOP:
        assert received.values(name) == [], f"{name} was forwarded"


# --- plain HTTP: the response ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [201, 302, 404, 418, 429, 500, 503])
async def test_status_headers_and_cookies_pass_through(mockd: MockdFactory, status: int) -> None:
    body = json.dumps({"status": status, "detail": "from upstream"}).encode()

    async def respond(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
        response = web.Response(status=status, body=body, content_type="application/problem+json")
        response.headers["X-Custom-Response"] = "value 1"
        response.headers.add("Set-Cookie", "session=abc; Path=/; HttpOnly")
        response.headers.add("Set-Cookie", "theme=dark; Max-Age=60")
        if status == 302:
            response.headers["Location"] = "/somewhere/else"  # passed on, never followed by mockd
        return response

    async with http_upstream(respond) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await request(server.mock_port, "GET", "/resource?id=1")
        assert len(upstream.requests) == 1
    assert response.status == status
    assert response.value("Content-Type") == "application/problem+json"
    assert response.value("X-Custom-Response") == "value 1"
    assert response.values("Set-Cookie") == ["session=abc; Path=/; HttpOnly", "theme=dark; Max-Age=60"]
    assert response.body == body
    if status == 302:
        assert response.value("Location") == "/somewhere/else"


LARGE_BODY = random.Random(5).randbytes(3 * 1024 * 1024)
GZIPPED = gzip.compress(b"compressed " * 1000, mtime=0)  # no time in it: the same test id in every process (xdist)


async def respond_with(kind: str, request: web.BaseRequest) -> web.StreamResponse:
    if kind == "content-length":
        return web.Response(body=LARGE_BODY, content_type="application/octet-stream")
    if kind == "chunked":
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one ", b"two ", b"three"):
            await response.write(part)
        await response.write_eof()
        return response
    if kind == "gzip":
        return web.Response(body=GZIPPED, headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    return web.Response(status=204)


@pytest.mark.parametrize(("kind", "expected"), [
    ("content-length", LARGE_BODY), ("chunked", b"one two three"), ("gzip", GZIPPED), ("no-content", b"")])
async def test_response_body_passes_through_byte_for_byte(mockd: MockdFactory, kind: str, expected: bytes) -> None:
    async with http_upstream(lambda request, received: respond_with(kind, request)) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await request(server.mock_port, "GET", f"/body/{kind}", [("Accept-Encoding", "gzip")])
    assert response.status == (204 if kind == "no-content" else 200)
    assert response.complete
    assert response.body == expected  # gzip stays gzip: the client decodes, not mockd
    if kind == "gzip":
        assert response.value("Content-Encoding") == "gzip"


# --- streamed responses and SSE -------------------------------------------------------------------

UNITS = 6  # chunks per streamed response, PACE apart


def sse_units(index: int) -> bytes:
    return f'id: {index}\nevent: tick\ndata: {{"n": {index}}}\n\n'.encode()


def llm_units(index: int) -> bytes:
    if index == UNITS - 1:
        return b"data: [DONE]\n\n"
    return ('data: {"choices":[{"delta":{"content":"tok%d"}}]}\n\n' % index).encode()


def ndjson_units(index: int) -> bytes:
    return json.dumps({"line": index, "text": "é✓"}).encode() + b"\n"


def binary_units(index: int) -> bytes:
    return random.Random(index).randbytes(1000)


STREAM_CASES = {
    # id: (method, request headers, request body, response Content-Type, unit maker)
    "sse-get": ("GET", [("Accept", "text/event-stream")], None, "text/event-stream", sse_units),
    "sse-post-llm": ("POST", [("Accept", "application/json"), ("Content-Type", "application/json"),
                              ("Authorization", "Bearer sk-test")],
                     b'{"model":"gpt-x","stream":true,"messages":[{"role":"user","content":"h\xc3\xa9"}]}',
                     "text/event-stream; charset=utf-8", llm_units),
    "ndjson": ("GET", [("Accept", "application/json")], None, "application/x-ndjson", ndjson_units),
    "octet-stream": ("GET", [], None, "application/octet-stream", binary_units),
}


def arrival_times(response: RawResponse, units: list[bytes]) -> list[float]:
    """When the client had each whole unit: the arrival of the chunk that completed it."""
    times: list[float] = []
    received, boundary, index = 0, 0, 0
    for at, data in response.chunks:
        received += len(data)
        while index < len(units) and received >= boundary + len(units[index]):
            boundary += len(units[index])
            times.append(at)
            index += 1
    return times


@pytest.mark.parametrize("case", list(STREAM_CASES))
async def test_streamed_response_is_relayed_chunk_by_chunk_as_it_arrives(mockd: MockdFactory, case: str) -> None:
    method, headers, body, content_type, make = STREAM_CASES[case]
    units = [make(index) for index in range(UNITS)]
    async with streaming_upstream(lambda i: units[i] if i < UNITS else None, PACE,
                                  headers=[("Content-Type", content_type), ("Cache-Control", "no-cache"),
                                           ("X-Stream", case)]) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, method, f"/v1/stream?case={case}", headers, body)
        try:
            await response.read_body(DEADLINE + UNITS * PACE)
        finally:
            await response.close()
        [exchange] = upstream.exchanges
    assert response.status == 200
    assert response.value("Content-Type") == content_type
    assert response.value("X-Stream") == case
    assert response.complete
    assert response.body == b"".join(units)
    # the upstream got the request as sent (the LLM case: the exact JSON body, Accept: application/json)
    assert exchange.request.method == method
    assert exchange.request.target == f"/v1/stream?case={case}"
    assert exchange.request.body == (body or b"")
    for name, value in headers:
        assert exchange.request.values(name) == [value]
    # timing: each unit reached the client before the upstream sent the next one
    sent, seen = exchange.sent_at, arrival_times(response, units)
    assert len(sent) == len(seen) == UNITS
    gaps = [later - earlier for earlier, later in itertools.pairwise(seen)]
    assert min(gaps) >= MIN_GAP, f"units arrived bunched together: gaps {gaps}"
    assert seen[0] < sent[-1] - 2 * PACE, "the first unit arrived only when the stream was nearly over"
    late = [index for index in range(UNITS - 1) if seen[index] >= sent[index + 1]]
    assert not late, f"units {late} reached the client only after the upstream had sent the next one"


async def test_client_leaving_mid_stream_closes_the_upstream_connection(mockd: MockdFactory) -> None:
    async with streaming_upstream(sse_units, 0.05) as upstream:  # never ends by itself
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        chunks = response.iter_body()
        assert await asyncio.wait_for(anext(chunks), DEADLINE) == sse_units(0)
        exchange = await upstream.next_exchange()
        response.writer.transport.abort()
        await asyncio.wait_for(exchange.peer_closed.wait(), DEADLINE)


async def test_upstream_cutting_a_stream_is_not_passed_on_as_a_clean_end(mockd: MockdFactory) -> None:
    async with streaming_upstream(sse_units, 0.05, cut_after=3) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        try:
            await response.read_body()
        finally:
            await response.close()
    assert response.body == b"".join(sse_units(index) for index in range(3))
    assert not response.complete, "a stream the upstream broke off reached the client as a complete body"


# --- matching -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "proxied"), [
    ("/api", True), ("/api/", True), ("/api/x", True), ("/api/x/y?z=1", True),
    ("/apix", False), ("/apix/y", False), ("/ap", False), ("/", False), ("/x/api", False)])
async def test_path_prefix_covers_the_prefix_and_below_only(mockd: MockdFactory, path: str, proxied: bool) -> None:
    async with http_upstream() as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url, "/api")))
        response = await request(server.mock_port, "GET", path)
        if proxied:
            assert response.status == 200
            assert [received.target for received in upstream.requests] == [path]
        else:
            assert no_mock_matched(response, "GET", path.partition("?")[0]), (response.status, response.body)
            assert upstream.requests == []


@pytest.mark.parametrize(("strip", "path", "upstream_target"), [
    (True, "/api/users?x=1", "/users?x=1"),
    (True, "/api/users/7/orders", "/users/7/orders"),
    (True, "/api", "/"),
    (True, "/api?x=1", "/?x=1"),
    (True, "/api/a%2Fb", "/a%2Fb"),
    (False, "/api/users?x=1", "/api/users?x=1"),
])
async def test_strip_prefix(mockd: MockdFactory, strip: bool, path: str, upstream_target: str) -> None:
    async with http_upstream() as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url, "/api", stripPrefix=strip)))
        response = await request(server.mock_port, "GET", path)
        received = await upstream.next_request()
    assert response.status == 200
    assert received.target == upstream_target


@pytest.mark.parametrize(("layout", "hello_from"), [
    ("mock-then-proxy", "mock"), ("mock-then-upstream-flag", "mock"), ("proxy-then-mock", "upstream")])
async def test_mocks_and_proxies_match_in_file_order(mockd: MockdFactory, layout: str, hello_from: str) -> None:
    mock = http_mock("hello", "/api/hello", "from mock")
    async with http_upstream() as upstream:
        server = start_proxying(mockd, upstream.url, layout, mock)
        hello = await request(server.mock_port, "GET", "/api/hello")
        other = await request(server.mock_port, "POST", "/api/other?q=1", body=b"x")
    assert hello.status == 200
    if hello_from == "mock":
        assert hello.body == b"from mock"
        assert [received.target for received in upstream.requests] == ["/api/other?q=1"]
    else:
        assert hello.body == b"upstream saw GET /api/hello"
        assert [received.target for received in upstream.requests] == ["/api/hello", "/api/other?q=1"]
    assert other.status == 200 and other.body == b"upstream saw POST /api/other?q=1"


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["config", "upstream-flag"])
@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", b'{"prompt":"hi"}')])
async def test_unreachable_upstream_is_a_502_json_error_naming_the_target(
        mockd: MockdFactory, via: str, method: str, body: bytes | None) -> None:
    with unreachable_url() as url:
        server = start_proxying(mockd, url, via)
        response = await request(server.mock_port, method, "/v1/chat?x=1", [("Content-Type", "application/json")],
                                 body)
    assert response.status == 502
    assert (response.value("Content-Type") or "").startswith("application/json")
    error = response.json()
    assert set(error) >= {"error", "message"}
    assert url in error["message"]


@pytest.mark.parametrize("slowness", ["response-delayed", "body-stalled", "silent-socket"])
async def test_a_slow_upstream_does_not_delay_other_requests(mockd: MockdFactory, slowness: str) -> None:
    release = asyncio.Event()

    async def respond(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
        if received.target != "/slow":
            return await describe_request(request, received)
        if slowness == "response-delayed":
            await release.wait()
            return web.Response(body=b"finally")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"first ")
        await release.wait()
        await response.write(b"rest")
        await response.write_eof()
        return response

    async with http_upstream(respond) as upstream, silent_upstream() as silent:
        mocks = [proxy_mock(upstream.url)]
        if slowness == "silent-socket":
            mocks.insert(0, proxy_mock(silent.url, "/slow"))
        server = mockd.start(mocks_config(*mocks))
        slow = asyncio.create_task(request(server.mock_port, "GET", "/slow", timeout=30))
        try:
            if slowness == "silent-socket":
                assert (await asyncio.wait_for(silent.accepted.get(), DEADLINE)).startswith(b"GET /slow ")
            else:
                assert (await upstream.next_request()).target == "/slow"
            loop = asyncio.get_running_loop()
            started = loop.time()
            for index in range(5):
                fast = await request(server.mock_port, "POST", f"/fast/{index}", body=b"x", timeout=PROMPT)
                assert fast.status == 200 and fast.body == b"POST ok"
            elapsed = loop.time() - started
            assert elapsed < PROMPT, f"5 requests took {elapsed:.2f}s while another hung on a slow upstream"
            assert not slow.done()
            if slowness != "silent-socket":
                release.set()
                finished = await asyncio.wait_for(slow, DEADLINE)
                assert finished.status == 200
                assert finished.body == (b"finally" if slowness == "response-delayed" else b"first rest")
        finally:
            slow.cancel()


async def test_no_leak_after_many_requests_and_abandoned_streams(mockd: MockdFactory) -> None:
    """200 cycles: whole requests, and streams the client leaves mid-way (closing or resetting its
    connection). Afterwards no upstream stream is still open and mockd's descriptors are back."""
    async with http_upstream() as finite, streaming_upstream(sse_units, 0.05) as endless:
        server = mockd.start(mocks_config(proxy_mock(finite.url, "/full"), proxy_mock(endless.url, "/events")))
        pid = server.process.pid

        async def abandon_stream(reset: bool) -> None:
            response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
            assert await asyncio.wait_for(anext(response.iter_body()), DEADLINE) == sse_units(0)
            if reset:
                response.writer.transport.abort()
            else:
                await response.close()

        # warm-up: the proxy's client session and one pooled upstream connection exist before counting
        assert (await request(server.mock_port, "GET", "/full/warm")).status == 200
        await abandon_stream(reset=False)
        assert await poll_until(lambda: endless.open_connections == 0)
        baseline = fd_count(pid)
        for cycle in range(200):
            kind = cycle % 3
            if kind == 0:
                response = await request(server.mock_port, "POST", f"/full/{cycle}", body=b"payload")
                assert response.status == 200 and response.body == f"upstream saw POST /full/{cycle}".encode()
            else:
                await abandon_stream(reset=kind == 2)
        assert await poll_until(lambda: endless.open_connections == 0, 10), \
            f"{endless.open_connections} upstream stream(s) still open after their clients left"
        assert await poll_until(lambda: fd_count(pid) <= baseline + 5, 10), \
            f"mockd holds {fd_count(pid)} descriptors, {baseline} before 200 cycles"


# --- shutdown -------------------------------------------------------------------------------------


async def test_sigterm_ends_a_proxied_sse_stream_and_exits_0(mockd: MockdFactory) -> None:
    async with streaming_upstream(sse_units, 0.1) as upstream:  # never ends by itself
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        try:
            chunks = response.iter_body()
            for index in range(2):
                assert await asyncio.wait_for(anext(chunks), DEADLINE) == sse_units(index)
            server.process.send_signal(signal.SIGTERM)
            await response.read_body(DEADLINE + 5)
        finally:
            await response.close()
        exit_code = await asyncio.wait_for(asyncio.to_thread(server.process.wait, 20), 25)
    assert response.complete, "the stream was cut instead of ended"
    count = len(upstream.exchanges[0].sent_at)
    assert response.body in {b"".join(sse_units(i) for i in range(n)) for n in range(2, count + 1)}
    assert exit_code == 0


# --- a recording that joins an SSE stream under way (the proxy parses SSE only while recording) -----

JOIN_EVENTS = 80


def sse_stream_text() -> bytes:
    return b"".join(sse_units(index) for index in range(JOIN_EVENTS))


@pytest.mark.parametrize("piece", [7, len(sse_units(10))], ids=["cut-inside-events", "one-event-per-chunk"])
async def test_a_recording_started_mid_stream_holds_every_later_event_once_and_whole(
        mockd: MockdFactory, piece: int) -> None:
    """Nothing is parsed before the session starts; once it does, the parser joins at the next block:
    no half event is recorded, no event after the join is missed or garbled."""
    from sessions import start_session, stop_session

    text = sse_stream_text()
    pieces = [text[start:start + piece] for start in range(0, len(text), piece)]
    async with streaming_upstream(lambda i: pieces[i] if i < len(pieces) else None, 0.004) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        received = bytearray()
        chunks = response.iter_body()
        while received.count(b"\n\n") < 10:
            received += await asyncio.wait_for(anext(chunks), DEADLINE)
        before = received.count(b"\n\n")  # events the client had whole before the session started
        recording_id = await start_session(server, "sse", "/*")
        after_start = len(upstream.exchanges[0].sent_at)  # pieces the upstream had sent by then
        async for chunk in chunks:
            received += chunk
        assert bytes(received) == text  # the client got the stream unchanged
        recording = await stop_session(server, recording_id)
    ids = [int(event["id"]) for event in recording["sse"]["events"]]
    assert ids, "nothing was recorded"
    assert ids == list(range(ids[0], JOIN_EVENTS)), ids  # each later event once, in order, none missed
    assert before <= ids[0] <= len(text[:after_start * piece].split(b"\n\n")), (before, ids[0], after_start)
    assert all(event["data"] == f'{{"n": {int(event["id"])}}}' and event["type"] == "tick"
               for event in recording["sse"]["events"])


def data_units(index: int) -> bytes:
    return b"data: %d\n\n" % index  # one-line data blocks: the proxy parses them in bulk


async def test_two_recordings_one_after_the_other_on_one_stream_each_hold_whole_events_from_their_start(
        mockd: MockdFactory) -> None:
    """The parser stops when the first session stops and joins again at the next block for the second."""
    from sessions import start_session, stop_session

    text = b"".join(data_units(index) for index in range(JOIN_EVENTS))
    pieces = [text[start:start + 5] for start in range(0, len(text), 5)]  # cut inside events
    async with streaming_upstream(lambda i: pieces[i] if i < len(pieces) else None, 0.002) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        received = bytearray()
        chunks = response.iter_body()

        async def read_until_events(count: int) -> None:
            nonlocal received
            while received.count(b"\n\n") < count:
                received += await asyncio.wait_for(anext(chunks), DEADLINE)

        await read_until_events(5)
        first = await start_session(server, "sse", "/*")
        await read_until_events(25)
        first_recording = await stop_session(server, first)
        await read_until_events(40)
        second = await start_session(server, "sse", "/*")
        async for chunk in chunks:
            received += chunk
        assert bytes(received) == text
        second_recording = await stop_session(server, second)
    firsts = [int(event["data"]) for event in first_recording["sse"]["events"]]
    seconds = [int(event["data"]) for event in second_recording["sse"]["events"]]
    assert firsts and seconds, (firsts, seconds)
    assert firsts == list(range(firsts[0], firsts[-1] + 1)) and firsts[0] >= 5, firsts  # whole, once, in order
    assert seconds == list(range(seconds[0], JOIN_EVENTS)) and seconds[0] >= 40, seconds  # ... to the end
    assert firsts[-1] < seconds[0], (firsts, seconds)
    assert all(event["type"] == "message" and set(event) <= {"type", "data", "timestamp", "relativeMs", "connection"}
               for event in first_recording["sse"]["events"] + second_recording["sse"]["events"])


# --- the body pass-through (mockd.serving.httpbytes): framing, the connection after it, back-pressure ------


async def test_the_upstream_connection_is_reused_after_each_relayed_body(mockd: MockdFactory) -> None:
    """The upstream's parser still finds where each body ends, so its connection goes back to the pool
    clean: one upstream connection serves every request, and every body is whole."""
    peers: list[int] = []

    async def respond(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        if "sse" in request.path:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for index in range(3):
                await response.write(data_units(index))
            await response.write_eof()
            return response
        return await respond_with(request.path.rsplit("/", 1)[1], request)

    kinds = ["content-length", "sse", "chunked", "sse", "content-length"]
    async with http_upstream(respond) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        responses = [await request(server.mock_port, "GET", f"/body/{kind}") for kind in kinds]
    expected = {"content-length": LARGE_BODY, "chunked": b"one two three", "sse": b"data: 0\n\ndata: 1\n\ndata: 2\n\n"}
    assert [response.body for response in responses] == [expected[kind] for kind in kinds]
    assert all(response.complete for response in responses)
    assert len(peers) == len(kinds) and len(set(peers)) == 1, f"upstream connections used: {peers}"


async def test_an_http_1_0_client_gets_the_stream_unframed_until_the_connection_ends(mockd: MockdFactory) -> None:
    units = [data_units(index) for index in range(4)]
    async with streaming_upstream(lambda i: units[i] if i < len(units) else None, 0.01) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.mock_port)
        writer.write(b"GET /events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), DEADLINE)  # to EOF: mockd closes the connection
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding" not in head.lower(), head
    assert body == b"".join(units)  # no chunk framing: an HTTP/1.0 client could not read it


def two_part_sse_upstream(first: bytes, go_on: asyncio.Event,
                          rest: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A raw upstream that answers a chunked SSE head with ``first`` (framed chunks) in the same write,
    then — once ``go_on`` is set — ``rest`` and the end of the body in one more."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + first)
        await writer.drain()
        await asyncio.wait_for(go_on.wait(), DEADLINE)
        writer.write(rest + b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    return handle


async def test_body_bytes_that_came_with_the_head_reach_the_client_before_the_upstream_sends_more(
        mockd: MockdFactory) -> None:
    """Events in the same read as the response head are already parsed when the relay takes the body
    over: they go out at once, then the rest as it comes."""
    first = b"".join(data_units(index) for index in range(3))
    rest = b"".join(data_units(index) for index in range(3, 6))
    client_has_first = asyncio.Event()

    handle = two_part_sse_upstream(http_chunk(first), client_has_first, http_chunk(rest))  # head + events: one write
    async with raw_server(handle) as url:
        server = mockd.start(mocks_config(proxy_mock(url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        try:
            assert await response.read_until(first) == first
            client_has_first.set()
            assert await response.read_body() == first + rest
        finally:
            await response.close()
    assert response.complete


async def test_a_burst_of_small_upstream_chunks_goes_to_the_client_in_few_writes(mockd: MockdFactory) -> None:
    """The pieces the parser finds in one read from the upstream are written together: 200 one-event
    chunks sent in one write (after the head, once the client has it) reach the client as a handful of
    chunks, not 200 (a send each)."""
    units = [data_units(index) for index in range(200)]
    client_has_head = asyncio.Event()

    handle = two_part_sse_upstream(b"", client_has_head, b"".join(map(http_chunk, units)))
    async with raw_server(handle) as url:
        server = mockd.start(mocks_config(proxy_mock(url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        try:
            client_has_head.set()
            await response.read_body()
        finally:
            await response.close()
    assert response.complete
    assert response.body == b"".join(units)
    assert len(response.chunks) <= 10, f"{len(response.chunks)} chunks for one burst of 200"


async def test_a_recorded_stream_that_is_not_what_its_content_encoding_says_still_reaches_the_client(
        mockd: MockdFactory) -> None:
    """``Content-Encoding: gzip`` on a body that is not gzip: the recording cannot parse it, so the log says
    the rest is not recorded — and the client still gets every byte as the upstream sent it."""
    from sessions import start_session, stop_session

    units = [data_units(index) for index in range(5)]
    async with streaming_upstream(lambda i: units[i] if i < len(units) else None, 0.01,
                                  headers=[("Content-Type", "text/event-stream"),
                                           ("Content-Encoding", "gzip")]) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)), "--log-format", "json")
        recording_id = await start_session(server, "sse", "/*")
        response = await request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        recording = await stop_session(server, recording_id)
    assert response.status == 200 and response.complete
    assert response.body == b"".join(units)
    assert response.value("Content-Encoding") == "gzip"
    [connection] = recording["connections"]
    assert connection["path"] == "/events"
    assert recording["sse"]["events"] == []
    errors = [entry["message"] for entry in server.log_entries() if entry.get("level") == "error"]
    assert any("/events" in message and "relayed but not recorded" in message for message in errors), errors


FLOOD_BLOCKS = 200
FLOOD_BLOCK = 256 * 1024  # 50 MiB in all


async def test_a_client_that_does_not_read_holds_the_upstream_back_in_bounded_memory(mockd: MockdFactory) -> None:
    payload = random.Random(9).randbytes(FLOOD_BLOCK // 2).hex().encode()
    sent = 0

    def block(index: int) -> bytes:
        return b"data: %08d " % index + payload[14:] + b"\n\n"

    async def flood(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index in range(FLOOD_BLOCKS):
            await response.write(block(index))  # returns once the transport drains below its limit
            sent = index + 1
        await response.write_eof()
        return response

    async with http_upstream(flood) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        response = await open_request(server.mock_port, "GET", "/flood", [("Accept", "text/event-stream")])
        try:
            await assert_held_back(server.process.pid, lambda: sent, FLOOD_BLOCKS, 64 * 2**20)
            body = await response.read_body(60)
        finally:
            await response.close()
    assert response.complete
    assert body == b"".join(block(index) for index in range(FLOOD_BLOCKS))


@pytest.mark.parametrize("burst_kib", [256, 512, 1024, 2048, 4096, 8192, 16384])
async def test_a_stream_that_ends_after_the_client_held_it_back_ends_for_the_client(
        mockd: MockdFactory, burst_kib: int) -> None:
    """The upstream sends a burst the client reads slowly (so reading the upstream pauses and resumes),
    then — once the client has all of it — the last event and the end: the client gets both at once,
    not when some later read from the upstream comes (there is none). (Reading paused outside the
    parser's call left the parser to stop after the first piece of the next read: the end waited.
    Whether a run meets that depends on where the last pause falls, hence the several sizes.)"""
    burst = b"data: " + b"x" * (burst_kib * 1024) + b"\n\n"
    last = data_units(1)
    client_has_burst = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(burst), 65536):
            piece = burst[start:start + 65536]
            writer.write(http_chunk(piece))
            await writer.drain()
        await asyncio.wait_for(client_has_burst.wait(), 60)
        writer.write(http_chunk(last) + b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # keep the connection open (a keep-alive upstream does not close it)
        writer.close()

    async with raw_server(handle) as url:
        server = mockd.start(mocks_config(proxy_mock(url)))
        response = await open_request(server.mock_port, "GET", "/events", [("Accept", "text/event-stream")])
        try:
            received = 0
            async for chunk in response.iter_body():
                received += len(chunk)
                if received >= len(burst):
                    client_has_burst.set()
                    break
                await asyncio.sleep(0)  # each read its own loop turn: the client drains slowly
            await response.read_body(DEADLINE)
        finally:
            await response.close()
    assert response.complete
    assert response.body == burst + last
