"""SSE mocks, black-box: a real ``mockd serve`` read over raw asyncio streams (and once with ``curl -N``).

Contract: docs/config.md, "SSE mocks". The client below reads the body off the raw HTTP/1.1 client of
``upstreams`` (request line, headers, chunked transfer decoding) and timestamps every line as it
arrives, so the tests can tell an event written when due from one held back until the end of the stream.

Timing interpretation (docs/config.md, "Timing"): the delay of event *i* (its own ``delay``, else
``perEventDelays[i]``, else ``fixedDelay``) is waited *before* event *i*, the first one included, and
``initialDelay`` comes before all of it; so event *i* is due at
``initialDelay + delay(0) + ... + delay(i)`` ms after the request.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from processes import MockdFactory, RunningMockd
from configs import mocks_config
from sseblocks import field_line
from upstreams import RawResponse, open_request

DEADLINE = 10.0  # seconds: generous upper bound for anything to arrive
FLOOR = 0.020  # an event may look up to 20 ms early (clock granularity)
SLACK = 0.400  # and up to 400 ms late on a noisy 2-core machine


# --- an SSE client on a raw HTTP/1.1 response -----------------------------------------------------


@dataclass
class Line:
    at: float  # seconds since the request was sent
    text: str


@dataclass
class Block:
    """One SSE block as it came off the wire: its raw lines, and when its terminating blank line arrived."""

    at: float
    lines: list[str]

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(name, value) per line, parsed per WHATWG: a comment line has the name ``""``."""
        return [field_line(line) for line in self.lines]

    def get(self, name: str) -> str | None:
        values = [value for field_name, value in self.fields if field_name == name]
        return values[-1] if values else None

    @property
    def data(self) -> str | None:
        values = [value for field_name, value in self.fields if field_name == "data"]
        return "\n".join(values) if values else None

    @property
    def is_keepalive(self) -> bool:
        return self.fields == [("", "keepalive")]


@dataclass
class SseStream:
    """The body of ``response`` as SSE lines and blocks, stamped with their arrival time."""

    response: RawResponse
    headers: dict[str, str] = field(init=False)  # names lower-cased
    ended_at: float | None = None
    leftover: bytes = b""
    partial: list[str] = field(default_factory=list)
    _buffer: bytes = b""
    _eof: bool = False

    def __post_init__(self) -> None:
        self.headers = {name.lower(): value for name, value in self.response.headers}

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def reader(self) -> asyncio.StreamReader:
        return self.response.reader

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def _now(self) -> float:
        """Seconds since the request was sent."""
        return asyncio.get_running_loop().time() - self.response.sent_at

    async def _body_piece(self) -> bytes | None:
        """The next piece of the body as it arrives; None at the (clean) end of the body."""
        piece = await anext(self.response.iter_body(), None)
        if piece is None:
            assert self.response.complete, "the connection was cut before the end of the body"
        return piece

    async def lines(self) -> AsyncIterator[Line]:
        """Lines of the body (CRLF, LF or CR terminated) stamped with their arrival time."""
        while True:
            while True:
                cut = _first_line_end(self._buffer)
                if cut is None:
                    break
                end, width = cut
                text = self._buffer[:end].decode()
                self._buffer = self._buffer[end + width:]
                yield Line(self._now(), text)
            if self._eof:
                return
            piece = await self._body_piece()
            if piece is None:
                self._eof = True
                self.ended_at = self._now()
                self.leftover = self._buffer
                if self._buffer.endswith(b"\r"):
                    self._buffer += b"\n"
                    continue
                return
            self._buffer += piece

    async def blocks(self) -> AsyncIterator[Block]:
        """Blocks terminated by a blank line; lines after the last blank line are kept in ``partial``."""
        current: list[str] = []
        async for line in self.lines():
            if line.text == "":
                yield Block(line.at, current)
                current = []
            else:
                current.append(line.text)
        self.partial = current

    async def read_all(self, deadline: float = DEADLINE) -> list[Block]:
        """Every block up to the end of the stream, which must arrive within ``deadline`` seconds."""
        async def collect() -> list[Block]:
            return [block async for block in self.blocks()]
        assert self.chunked or "content-length" not in self.headers, "an SSE stream must not have a fixed length"
        result = await asyncio.wait_for(collect(), deadline)
        assert self.ended_at is not None
        assert self.leftover == b"" and self.partial == [], "stream ended in the middle of a block"
        return result

    async def close(self) -> None:
        await self.response.close()


def _first_line_end(buffer: bytes) -> tuple[int, int] | None:
    """Position and width of the first line terminator (CRLF, LF, or a CR not at the buffer's end)."""
    for index, byte in enumerate(buffer):
        if byte == 0x0A:
            return index, 1
        if byte == 0x0D:
            if index + 1 == len(buffer):
                return None  # may be the first half of a CRLF
            return index, 2 if buffer[index + 1] == 0x0A else 1
    return None


async def open_stream(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> SseStream:
    head = {"Accept": "text/event-stream", "Connection": "close", **(headers or {})}
    return SseStream(await open_request(port, method, path, list(head.items()), body, DEADLINE))


async def fetch(server: RunningMockd, path: str, **kwargs: Any) -> tuple[SseStream, list[Block]]:
    stream = await open_stream(server.mock_port, path, **kwargs)
    try:
        return stream, await stream.read_all()
    finally:
        await stream.close()


def events_of(blocks: list[Block]) -> list[Block]:
    """The blocks that are not keepalive comments."""
    return [block for block in blocks if not block.is_keepalive]


def assert_due(at: float, due_ms: float) -> None:
    due = due_ms / 1000
    assert due - FLOOR <= at <= due + SLACK, f"arrived at {at * 1000:.0f} ms, due at {due_ms:.0f} ms"


# --- the mocks ------------------------------------------------------------------------------------


def sse_mock(mock_id: str, path: str, sse: dict[str, Any], method: str = "GET") -> dict[str, Any]:
    return {"id": mock_id, "type": "http", "http": {"matcher": {"method": method, "path": path}, "sse": sse}}


FORMAT_EVENTS: list[dict[str, Any]] = [
    {"type": "update", "id": "1", "retry": 3000, "data": {"n": 1, "s": "a b", "list": [1, 2]}},
    {"data": "line one\nline two\n\nline four"},
    {"comment": "just a comment"},
    {"retry": 5000},
    {"data": "plain text"},
    {"type": "list", "data": [1, "two", {"three": None}]},
    {"type": "ping"},
    {"id": "42"},
    {"data": " leading space and trailing space "},
]
FORMAT_EXPECTED: list[list[tuple[str, str]]] = [
    [("event", "update"), ("id", "1"), ("retry", "3000"), ("data", '{"n":1,"s":"a b","list":[1,2]}')],
    [("data", "line one"), ("data", "line two"), ("data", ""), ("data", "line four")],
    [("", "just a comment")],
    [("retry", "5000")],
    [("data", "plain text")],
    [("event", "list"), ("data", '[1,"two",{"three":null}]')],
    [("event", "ping")],
    [("id", "42")],
    [("data", " leading space and trailing space ")],
]

PRECEDENCE_TIMING = {"initialDelay": 100, "fixedDelay": 700, "perEventDelays": [50, 250, 0, 900]}
PRECEDENCE_EVENTS: list[dict[str, Any]] = [
    {"data": "e0", "delay": 300},  # own delay 300 beats perEventDelays[0] = 50
    {"data": "e1"},                # perEventDelays[1] = 250 beats fixedDelay 700
    {"data": "e2"},                # perEventDelays[2] = 0 beats fixedDelay 700
    {"data": "e3", "delay": 0},    # own delay 0 beats perEventDelays[3] = 900
    {"data": "e4"},                # no own delay, no perEventDelays[4]: fixedDelay 700
]
PRECEDENCE_DUE_MS = [400, 650, 650, 650, 1350]

LLM_CHUNKS = [{"id": "chatcmpl-1", "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {"content": word}}]} for word in ("Hello", " there", "!")]

MOCKS: list[dict[str, Any]] = [
    sse_mock("format", "/sse/format", {"events": FORMAT_EVENTS}),
    sse_mock("initial", "/sse/initial", {"events": [{"data": "a"}, {"data": "b"}],
                                         "timing": {"initialDelay": 300}}),
    sse_mock("fixed", "/sse/fixed", {"events": [{"data": str(i)} for i in range(3)],
                                     "timing": {"fixedDelay": 200}}),
    sse_mock("per-event", "/sse/per-event", {"events": [{"data": str(i)} for i in range(3)],
                                             "timing": {"perEventDelays": [0, 300, 100]}}),
    sse_mock("precedence", "/sse/precedence", {"events": PRECEDENCE_EVENTS, "timing": PRECEDENCE_TIMING}),
    sse_mock("unbuffered", "/sse/unbuffered", {"events": [{"id": str(i), "data": f"tick {i}"} for i in range(4)],
                                               "timing": {"fixedDelay": 400, "perEventDelays": [0]}}),
    sse_mock("keepalive", "/sse/keepalive", {"events": [{"data": "first"}, {"data": "second", "delay": 2500}],
                                             "lifecycle": {"keepaliveInterval": 1}}),
    sse_mock("loop-max", "/sse/loop-max", {"events": [{"data": "a"}, {"data": "b"}, {"data": "c"}],
                                           "loop": True, "lifecycle": {"maxEvents": 7}}),
    sse_mock("max-no-loop", "/sse/max-no-loop", {"events": [{"data": "a"}, {"data": "b"}, {"data": "c"}],
                                                 "lifecycle": {"maxEvents": 2}}),
    sse_mock("timeout", "/sse/timeout", {"events": [{"data": "tick"}], "loop": True,
                                         "timing": {"fixedDelay": 100},
                                         "lifecycle": {"connectionTimeout": 1}}),
    sse_mock("final", "/sse/final", {"events": [{"data": "a"}, {"data": "b"}],
                                     "lifecycle": {"termination": {"finalEvent": {"type": "close", "data": "bye"}}}}),
    sse_mock("resume", "/sse/resume", {"events": [{"id": str(i), "data": f"event {i}"} for i in range(1, 5)],
                                       "resume": {"enabled": True}}),
    sse_mock("no-resume", "/sse/no-resume", {"events": [{"id": str(i), "data": f"event {i}"} for i in range(1, 5)]}),
    sse_mock("llm", "/v1/chat/completions",
             {"events": [*({"data": chunk} for chunk in LLM_CHUNKS), {"data": "[DONE]"}],
              "timing": {"fixedDelay": 300, "perEventDelays": [0]}}, method="POST"),
    sse_mock("custom", "/sse/custom", {"events": [{"data": "x"}], "statusCode": 202,
                                       "headers": {"X-Stream": "yes", "X-Request-Id": "abc-123"}}),
    sse_mock("curl", "/sse/curl", {"events": [{"id": str(i), "data": f"line {i}"} for i in range(4)],
                                   "timing": {"fixedDelay": 300, "perEventDelays": [0]}}),
]


@pytest.fixture(scope="module")
def server(mockd_module: MockdFactory) -> Iterator[RunningMockd]:
    yield mockd_module.start(mocks_config(*MOCKS))


# --- wire format ----------------------------------------------------------------------------------


async def test_headers(server: RunningMockd) -> None:
    stream, _ = await fetch(server, "/sse/format")
    assert stream.status == 200
    assert stream.headers["content-type"].split(";")[0].strip() == "text/event-stream"
    assert "no-cache" in [part.strip() for part in stream.headers["cache-control"].split(",")]


async def test_wire_format_fields_exactly(server: RunningMockd) -> None:
    _, blocks = await fetch(server, "/sse/format")
    assert [block.fields for block in blocks] == FORMAT_EXPECTED


async def test_comment_only_event_is_a_colon_line(server: RunningMockd) -> None:
    _, blocks = await fetch(server, "/sse/format")
    assert blocks[2].lines == [": just a comment"]


async def test_object_data_is_compact_json_on_one_line(server: RunningMockd) -> None:
    _, blocks = await fetch(server, "/sse/format")
    data_lines = [line for line in blocks[0].lines if line.startswith("data:")]
    assert len(data_lines) == 1
    assert json.loads(blocks[0].data or "") == FORMAT_EVENTS[0]["data"]
    assert blocks[0].data == '{"n":1,"s":"a b","list":[1,2]}'


async def test_stream_ends_after_last_event_without_loop(server: RunningMockd) -> None:
    stream, blocks = await fetch(server, "/sse/format")
    assert len(blocks) == len(FORMAT_EVENTS)
    assert stream.ended_at is not None and stream.ended_at < 1.0


# --- timing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "due_ms"), [
    ("/sse/initial", [300, 300]),
    ("/sse/fixed", [200, 400, 600]),
    ("/sse/per-event", [0, 300, 400]),
    ("/sse/precedence", PRECEDENCE_DUE_MS),
])
async def test_event_timing(server: RunningMockd, path: str, due_ms: list[float]) -> None:
    _, blocks = await fetch(server, path)
    events = events_of(blocks)
    assert len(events) == len(due_ms)
    for block, due in zip(events, due_ms, strict=True):
        assert_due(block.at, due)


async def test_event_delay_precedence_order_and_gaps(server: RunningMockd) -> None:
    _, blocks = await fetch(server, "/sse/precedence")
    events = events_of(blocks)
    assert [block.data for block in events] == [f"e{i}" for i in range(5)]
    # e1 waited perEventDelays[1] (250 ms), not fixedDelay (700 ms) nor nothing
    assert 0.250 - FLOOR <= events[1].at - events[0].at <= 0.250 + SLACK
    # e4 waited fixedDelay (700 ms) after e3
    assert events[4].at - events[3].at >= 0.700 - FLOOR


async def test_events_are_not_buffered(server: RunningMockd) -> None:
    stream = await open_stream(server.mock_port, "/sse/unbuffered")
    try:
        blocks = stream.blocks()
        first = await asyncio.wait_for(anext(blocks), DEADLINE)
        assert first.data == "tick 0"
        assert first.at < 0.300, f"first event only arrived after {first.at * 1000:.0f} ms"
        assert stream.ended_at is None  # the stream is still open while we hold the first event
        rest = await asyncio.wait_for(_collect(blocks), DEADLINE)
    finally:
        await stream.close()
    assert [block.data for block in rest] == ["tick 1", "tick 2", "tick 3"]
    assert stream.ended_at is not None and stream.ended_at >= 1.200 - FLOOR
    assert rest[-1].at - first.at >= 1.200 - FLOOR
    for index, block in enumerate(rest, start=1):
        assert_due(block.at, 400 * index)


async def _collect(blocks: AsyncIterator[Block]) -> list[Block]:
    return [block async for block in blocks]


async def test_keepalive_comments_fill_a_long_gap(server: RunningMockd) -> None:
    _, blocks = await fetch(server, "/sse/keepalive")
    assert blocks[0].data == "first"
    assert blocks[-1].data == "second"
    assert_due(blocks[-1].at, 2500)
    keepalives = blocks[1:-1]
    assert len(keepalives) >= 2  # due at about 1 s and 2 s
    for block in keepalives:
        assert block.lines == [": keepalive"]
    assert keepalives[0].at >= 1.0 - FLOOR
    assert keepalives[0].at <= 1.0 + SLACK


@pytest.mark.parametrize(("path", "expected"), [
    ("/sse/loop-max", ["a", "b", "c", "a", "b", "c", "a"]),
    ("/sse/max-no-loop", ["a", "b"]),
])
async def test_max_events(server: RunningMockd, path: str, expected: list[str]) -> None:
    stream, blocks = await fetch(server, path)
    assert [block.data for block in blocks] == expected
    assert stream.ended_at is not None


CONNECTION_TIMEOUT = 1.0  # seconds, as configured on /sse/timeout


async def test_connection_timeout_ends_a_looping_stream(server: RunningMockd) -> None:
    stream, blocks = await fetch(server, "/sse/timeout")
    ticks = [block for block in blocks if block.data == "tick"]
    assert stream.ended_at is not None
    assert stream.ended_at >= CONNECTION_TIMEOUT - FLOOR
    assert stream.ended_at <= CONNECTION_TIMEOUT + SLACK
    assert 5 <= len(ticks) <= 11  # one every 100 ms for a second
    assert all(block.at <= 1.0 + SLACK for block in ticks)


async def test_final_event_is_written_at_the_end(server: RunningMockd) -> None:
    _, blocks = await fetch(server, "/sse/final")
    assert [block.fields for block in blocks] == [
        [("data", "a")], [("data", "b")], [("event", "close"), ("data", "bye")]]


@pytest.mark.parametrize(("path", "last_event_id", "expected_ids"), [
    ("/sse/resume", None, ["1", "2", "3", "4"]),
    ("/sse/resume", "2", ["3", "4"]),
    ("/sse/resume", "1", ["2", "3", "4"]),
    ("/sse/resume", "4", []),
    ("/sse/no-resume", "2", ["1", "2", "3", "4"]),
])
async def test_resume_with_last_event_id(server: RunningMockd, path: str, last_event_id: str | None,
                                         expected_ids: list[str]) -> None:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    _, blocks = await fetch(server, path, headers=headers)
    assert [block.get("id") for block in blocks] == expected_ids
    assert [block.data for block in blocks] == [f"event {i}" for i in expected_ids]


# --- SSE over POST, custom status and headers -----------------------------------------------------


async def test_sse_over_post_as_an_llm_client(server: RunningMockd) -> None:
    body = json.dumps({"model": "gpt-test", "stream": True,
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    stream = await open_stream(server.mock_port, "/v1/chat/completions", method="POST", body=body,
                               headers={"Content-Type": "application/json", "Accept": "application/json",
                                        "Authorization": "Bearer sk-test"})
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].split(";")[0].strip() == "text/event-stream"
        blocks = await stream.read_all()
    finally:
        await stream.close()
    assert [json.loads(block.data or "") for block in blocks[:-1]] == LLM_CHUNKS
    assert blocks[-1].data == "[DONE]"
    assert blocks[0].at < 0.300  # streamed, not held back until the end
    assert blocks[-1].at - blocks[0].at >= 0.900 - FLOOR


async def test_sse_post_mock_does_not_answer_get(server: RunningMockd) -> None:
    stream = await open_stream(server.mock_port, "/v1/chat/completions")
    try:
        length = int(stream.headers["content-length"])
        body = await asyncio.wait_for(stream.reader.readexactly(length), DEADLINE)
    finally:
        await stream.close()
    assert stream.status == 404
    assert "GET" in json.loads(body)["message"]


async def test_custom_status_code_and_headers(server: RunningMockd) -> None:
    stream, blocks = await fetch(server, "/sse/custom")
    assert stream.status == 202
    assert stream.headers["x-stream"] == "yes"
    assert stream.headers["x-request-id"] == "abc-123"
    assert stream.headers["content-type"].split(";")[0].strip() == "text/event-stream"
    assert [block.data for block in blocks] == ["x"]


# --- curl -N --------------------------------------------------------------------------------------


async def test_curl_reads_the_stream_line_by_line(server: RunningMockd) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    loop = asyncio.get_running_loop()
    process = await asyncio.create_subprocess_exec(
        curl, "-sS", "-N", "-H", "Accept: text/event-stream", f"{server.mock_url}/sse/curl",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    started = loop.time()
    assert process.stdout is not None
    lines: list[tuple[float, str]] = []
    try:
        while True:
            raw = await asyncio.wait_for(process.stdout.readline(), DEADLINE)
            if not raw:
                break
            lines.append((loop.time() - started, raw.decode().rstrip("\r\n")))
        code = await asyncio.wait_for(process.wait(), DEADLINE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    assert [text for _, text in lines] == [
        text for i in range(4) for text in (f"id: {i}", f"data: line {i}", "")]
    data_times = [at for at, text in lines if text.startswith("data:")]
    assert data_times[0] < 0.500  # curl has the first event long before the stream ends (at 900 ms)
    assert data_times[-1] - data_times[0] >= 0.900 - FLOOR


# --- shutdown -------------------------------------------------------------------------------------


async def test_sigterm_ends_an_open_stream_cleanly(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(sse_mock("endless", "/sse/endless", {
        "events": [{"data": "tick"}], "loop": True, "timing": {"fixedDelay": 100}})))
    stream = await open_stream(server.mock_port, "/sse/endless")
    try:
        blocks = stream.blocks()
        first = await asyncio.wait_for(anext(blocks), DEADLINE)
        assert first.data == "tick"
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        # the client sees the clean end of the body (the chunked terminator), not a reset or a hang
        rest = await asyncio.wait_for(_collect(blocks), DEADLINE)
        exit_code = await asyncio.wait_for(stopping, DEADLINE + 15)
    finally:
        await stream.close()
    assert stream.ended_at is not None
    assert stream.leftover == b"" and stream.partial == []
    assert all(block.data == "tick" for block in rest)
    assert exit_code == 0
