"""SSE mocks: the pure event schedule, and the driver that writes it on time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
from aiohttp import web
from multidict import CIMultiDict

from mockd.config.model import SseConfig, SseMockEvent
from mockd.serving.mocks.http import captured_body
from mockd.stream.clock import now, sleep_until
from mockd.stream.events import SseBlock, StreamEvents, connection_from_request
from mockd.stream.ssewire import encode_block

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _data_text(data: Any) -> str | None:
    if data is None or isinstance(data, str):
        return data
    return msgspec.json.encode(data).decode()


def block_from_event(event: SseMockEvent) -> SseBlock:
    """The block a configured event writes: ``data`` that is not a string goes as its compact JSON."""
    return SseBlock(event.type, _data_text(event.data), event.id, event.retry, event.comment)


def event_from_block(block: SseBlock) -> SseMockEvent:
    """The configured event that writes ``block`` again (``data`` as the exact string): the other way of
    :func:`block_from_event`, as the converter makes mocks of recorded blocks."""
    return SseMockEvent(type=block.type, data=block.data, id=block.id, retry=block.retry, comment=block.comment)


def resume_index(config: SseConfig, last_event_id: str | None) -> int:
    """Where a stream starts: after the event whose id the client last saw, when resuming is on."""
    if not (config.resume.enabled and last_event_id):
        return 0
    for index, event in enumerate(config.events):
        if event.id == last_event_id:
            return index + 1
    return 0


def schedule(config: SseConfig, first: int = 0) -> Iterator[tuple[float, SseMockEvent]]:
    """(offset in seconds from the start of the stream, event), in order; endless when looping.

    The delay before event *i* is its own ``delay``, else ``perEventDelays[i]``, else ``fixedDelay``;
    ``initialDelay`` comes before the first event; ``maxEvents`` (when set) caps the count.
    """
    timing = config.timing
    offset_ms = float(timing.initial_delay)
    sent, index = 0, first
    limit = config.lifecycle.max_events
    while not limit or sent < limit:
        if index >= len(config.events):
            if not config.loop:
                return
            index = 0
        event = config.events[index]
        if event.delay is not None:
            offset_ms += event.delay
        elif index < len(timing.per_event_delays):
            offset_ms += timing.per_event_delays[index]
        else:
            offset_ms += timing.fixed_delay
        yield offset_ms / 1000.0, event
        sent += 1
        index += 1


class _Stream:
    """Writes blocks to one client and tells subscribers about each."""

    def __init__(self, response: web.StreamResponse, events: StreamEvents, request: web.BaseRequest) -> None:
        self.response = response
        self.events = events
        self.connection = connection_from_request(request, "sse", "mock")

    async def write(self, block: SseBlock) -> None:
        await self.response.write(encode_block(block))
        if self.connection.followers:
            self.events.sse_blocks(self.connection, [block])


def sse_headers(configured: dict[str, str]) -> CIMultiDict[str]:
    """The SSE defaults, replaced (names compared case-insensitively) by the configured or recorded ones."""
    headers = CIMultiDict(SSE_HEADERS)
    for name, value in configured.items():
        headers[name] = value
    return headers


async def serve_sse(request: web.BaseRequest, config: SseConfig, events: StreamEvents,
                    stop: asyncio.Event, body: bytes | None = None) -> web.StreamResponse:
    response = web.StreamResponse(status=config.status_code, headers=sse_headers(config.headers))
    request_body = await captured_body(request, body)
    await response.prepare(request)
    stream = _Stream(response, events, request)
    stream.connection.status = config.status_code
    stream.connection.response_headers = list(response.headers.items())
    stream.connection.request_body = request_body
    with events.connection(stream.connection), contextlib.suppress(ConnectionError):  # the client may go away
        if await _play(stream, config, request.headers.get("Last-Event-ID"), stop):
            final = config.lifecycle.termination.final_event
            if final is not None:
                await stream.write(block_from_event(final))
        await response.write_eof()
    return response


async def _play(stream: _Stream, config: SseConfig, last_event_id: str | None, stop: asyncio.Event) -> bool:
    """Write the scheduled events, with keepalives in the gaps. False when the server is shutting down."""
    start = now()
    lifecycle = config.lifecycle
    timeout_at = start + lifecycle.connection_timeout if lifecycle.connection_timeout else float("inf")
    keepalive = lifecycle.keepalive_interval
    keepalive_at = start + keepalive if keepalive else float("inf")
    for offset, event in schedule(config, resume_index(config, last_event_id)):
        due = start + offset
        while True:
            wake = min(due, keepalive_at, timeout_at)
            if not await sleep_until(wake, stop):
                return False
            if wake == timeout_at:
                return True
            if wake == due:
                break
            await stream.write(SseBlock(comment="keepalive"))
            keepalive_at = now() + keepalive
        await stream.write(block_from_event(event))
        if keepalive:
            keepalive_at = now() + keepalive
    return True
