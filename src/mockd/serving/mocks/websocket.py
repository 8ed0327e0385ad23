"""WebSocket mocks: message matching (pure), and one session per client connection.

A client message is offered first to the scenario's current ``expect`` step, then to the matchers, then
to ``defaultResponse``, then echoed when ``echoMode`` is on; one none of these takes waits in the
scenario's inbox for its next ``expect`` step (:mod:`mockd.serving.mocks.scenario`).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from mockd.config.durations import seconds
from mockd.config.model import MessageMatch, WebSocketSpec, WsMessage, jsonpath_find
from mockd.serving.mocks.scenario import ScenarioRunner
from mockd.serving.mocks.templating import render, render_value
from mockd.stream.clock import now
from mockd.stream.endpoint import WsEndpoint
from mockd.stream.events import StreamEvents, connection_from_request
from mockd.stream.wsclose import (CLOSE_GOING_AWAY, CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION, CLOSE_TIMEOUT,
                                  NO_STATUS, release, send_close_frame)

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024



@functools.lru_cache(maxsize=256)
def _regex(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _json_matches(match: MessageMatch, text: str) -> bool:
    """Whether a text message is JSON with ``match.path`` (equal to ``match.value``, if given). A message
    nested too deep to decode, or to search (``$..`` recurses), does not match."""
    try:
        document = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    assert match.path is not None
    try:
        found = [value for _, value in jsonpath_find(match.path, document)]
    except RecursionError:
        return False
    if match.value is msgspec.UNSET:
        return bool(found)
    return any(item == match.value and type(item) is type(match.value) for item in found)


def message_matches(match: MessageMatch | None, data: str | bytes) -> bool:
    """Whether a client message (``str`` for text, ``bytes`` for binary) satisfies ``match``."""
    if match is None:
        return True
    if match.message_type is not None and (match.message_type == "text") != isinstance(data, str):
        return False
    if match.type == "any":
        return True
    value = match.value if isinstance(match.value, str) else ""  # a string for every type but "any" (checked)
    if match.encoding == "base64":
        return _bytes_match(match.type, base64.b64decode(value), data.encode() if isinstance(data, str) else data)
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    if match.type == "exact":
        return text == value
    if match.type == "contains":
        return value in text
    if match.type == "prefix":
        return text.startswith(value)
    if match.type == "suffix":
        return text.endswith(value)
    if match.type == "regex":
        return _regex(value).search(text) is not None
    return _json_matches(match, text)


def _bytes_match(kind: str, expected: bytes, data: bytes) -> bool:
    if kind == "exact":
        return data == expected
    if kind == "contains":
        return expected in data
    if kind == "prefix":
        return data.startswith(expected)
    return data.endswith(expected)


def message_payload(message: WsMessage, received: str | bytes | None) -> str | bytes:
    """What a response puts on the wire: ``str`` for a text frame, ``bytes`` for a binary one."""
    if message.type == "binary":
        return base64.b64decode(message.value)
    context = received if isinstance(received, str) or received is None else received.decode("utf-8", "replace")
    if message.type == "json":
        value: Any = render_value(message.value, context) if message.template else message.value
        return msgspec.json.encode(value).decode()
    return render(message.value, context) if message.template else message.value


class WebSocketMockSession:
    """Serves one client of a WebSocket mock until either side closes."""

    def __init__(self, spec: WebSocketSpec, ws: web.WebSocketResponse, endpoint: WsEndpoint, started: float) -> None:
        self.spec = spec
        self.started = started  # now() once the upgrade was answered: the scenario's first anchor
        self.ws = ws
        self.endpoint = endpoint
        self.connection = endpoint.connection
        self.scenario = (ScenarioRunner(spec.scenario, self, message_matches,
                                        (CLOSE_POLICY_VIOLATION, "expected message not received"))
                         if spec.scenario is not None else None)
        self._pong = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    # --- output ---------------------------------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            await self.ws.send_str(payload)
            self.endpoint.emit("s2c", "text", payload)
        else:
            await self.ws.send_bytes(payload)
            self.endpoint.emit("s2c", "binary", payload)

    async def send_message(self, message: WsMessage, received: str | bytes | None = None) -> None:
        """A matcher's or ``defaultResponse``'s answer, after its ``delay`` (the reader waits behind it)."""
        if message.delay is not None:
            await asyncio.sleep(seconds(message.delay))
        await self.send_message_now(message, received)

    async def send_message_now(self, message: WsMessage, received: str | bytes | None = None) -> None:
        await self.send(message_payload(message, received))

    async def ping(self, payload: bytes) -> None:
        await self.ws.ping(payload)
        self.endpoint.emit("s2c", "ping", payload)

    def request_close(self, code: int, reason: str = "") -> None:
        """Send a close frame once. The reader records the client's answer as it comes (code and
        reason); a client that does not answer within ``CLOSE_TIMEOUT`` is dropped."""
        if self.ws.closed:
            return
        client_owes_answer = not self.endpoint.closing  # we close first
        if self.endpoint.begin_close(self.ws, "s2c", code, reason):
            loop = asyncio.get_running_loop()
            self._close_task = loop.create_task(send_close_frame(self.ws, code, reason))
            if client_owes_answer:
                self._watchdog = loop.create_task(self._drop_after(CLOSE_TIMEOUT))

    async def _drop_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await release(self.ws)

    # --- the connection -------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        helpers = []
        if self.scenario is not None:
            helpers.append(loop.create_task(self.scenario.run(self.started)))
        if self.spec.heartbeat is not None and self.spec.heartbeat.enabled:
            helpers.append(loop.create_task(self._heartbeat()))
        try:
            await self._read()
        finally:
            for task in helpers:
                task.cancel()
            if self._close_task is not None:
                await asyncio.shield(self._close_task)
            if self._watchdog is not None:
                self._watchdog.cancel()

    async def _read(self) -> None:
        idle = seconds(self.spec.idle_timeout) or None
        ws, endpoint = self.ws, self.endpoint
        while True:
            try:
                msg = await ws.receive(timeout=idle)
            except TimeoutError:
                self.request_close(CLOSE_GOING_AWAY, "idle timeout")
                idle = None  # now only the client's answer is awaited (the watchdog bounds it)
                continue
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                arrived = now()
                endpoint.emit("c2s", "text" if kind is WSMsgType.TEXT else "binary", msg.data)
                if self._too_big(msg.data):
                    self.request_close(CLOSE_MESSAGE_TOO_BIG, "message too big")
                elif not endpoint.close_sent_to(ws):
                    await self._answer(arrived, msg.data)
            elif kind is WSMsgType.PING:
                await endpoint.answer_ping(ws, msg.data)
            elif kind is WSMsgType.PONG:
                endpoint.emit("c2s", "pong", msg.data)
                self._pong.set()
            elif kind is WSMsgType.CLOSE:
                self._client_closed(msg.data, msg.extra or "")
                return
            else:  # CLOSING (we started the close), CLOSED, ERROR (aiohttp has closed, e.g. 1009)
                if kind is WSMsgType.ERROR and ws.close_code is not None:
                    endpoint.emit_close("s2c", ws.close_code, "")
                    endpoint.closed_by(ws.close_code, "")
                return

    def _too_big(self, data: str | bytes) -> bool:
        """``maxMessageSize`` in bytes after decompression; aiohttp's own limit is off by one for
        uncompressed frames, so it is given one byte of slack and the exact check is made here."""
        limit = self.spec.max_message_size
        if limit is None or len(data) * (4 if isinstance(data, str) else 1) <= limit:
            return False
        return len(data.encode() if isinstance(data, str) else data) > limit

    def _client_closed(self, code: int, reason: str) -> None:
        """Record the client's close as it really was; if it was not the answer to ours, answer it
        with the same code and reason."""
        recorded = code or NO_STATUS
        self.endpoint.emit_close("c2s", recorded, reason)
        self.endpoint.closed_by(recorded, reason)
        self.request_close(recorded, reason)

    async def _answer(self, arrived: float, data: str | bytes) -> None:
        """The scenario's waiting ``expect``, the matchers, ``defaultResponse``, the echo — else the inbox."""
        scenario = self.scenario
        if scenario is not None and scenario.offer(arrived, data):
            return
        for matcher in self.spec.matchers:
            if message_matches(matcher.match, data):
                if matcher.response is not None and not matcher.no_response:
                    await self.send_message(matcher.response, data)
                return
        if self.spec.default_response is not None:
            await self.send_message(self.spec.default_response, data)
        elif self.spec.echoes:
            await self.send(data)
        elif scenario is not None:
            scenario.keep(arrived, data, f"WebSocket {self.connection.path} ({self.connection.remote})")

    async def _heartbeat(self) -> None:
        assert self.spec.heartbeat is not None
        interval, timeout = seconds(self.spec.heartbeat.interval), seconds(self.spec.heartbeat.timeout)
        while True:
            await asyncio.sleep(interval)
            self._pong.clear()
            await self.ping(b"")
            try:
                await asyncio.wait_for(self._pong.wait(), timeout)
            except TimeoutError:
                self.request_close(CLOSE_GOING_AWAY, "heartbeat timeout")
                return


def negotiate(spec: WebSocketSpec, request: web.BaseRequest) -> tuple[web.WebSocketResponse, str | None]:
    """The response object for an upgrade, and the subprotocol that would be chosen."""
    ws = web.WebSocketResponse(protocols=spec.subprotocols, autoping=False, autoclose=False,
                               max_msg_size=(spec.max_message_size or DEFAULT_MAX_MESSAGE_SIZE) + 1)
    return ws, ws.can_prepare(request).protocol


async def serve_websocket(request: web.BaseRequest, ws: web.WebSocketResponse, spec: WebSocketSpec,
                          events: StreamEvents, sessions: set[Any]) -> web.WebSocketResponse:
    await ws.prepare(request)
    started = now()
    connection = connection_from_request(request, "websocket", "mock", ws.ws_protocol)
    session = WebSocketMockSession(spec, ws, WsEndpoint(events, connection), started)
    sessions.add(session)
    try:
        with events.connection(connection):
            await session.run()
    finally:
        sessions.discard(session)
        await release(ws)
    return ws
