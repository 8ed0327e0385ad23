"""Replaying a recording to the next client that connects: pure, synchronized or triggered.

The plan — which frames go out, and when — is a pure function of the recording and the options
(:func:`plan`). The async drivers only carry it out: pure mode against absolute deadlines from the
client's connect moment (so error never accumulates), synchronized mode step by step behind the
client's messages, triggered mode when the test says so. Replays emit the same stream events as mocks
and the proxy (origin ``replay``), so a recording session captures them like any other connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from aiohttp import WSMsgType, web
from ulid import ULID

from mockd.answers import FINISHED, ReplayMode, ReplayState, ReplayStatus
from mockd.clock import nap_before, now, sleep_until
from mockd.events import Connection, SseBlock, StreamEvents, WsFrame, connection_from_request
from mockd.headers import replayable_headers
from mockd.mocks.sse import sse_headers
from mockd.recording.format import Frame, Recording, SseEvent, SseSection, WebSocketSection
from mockd.ssewire import encode_block
from mockd.wsclose import (CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, CLOSE_TIMEOUT, NO_STATUS, close_payload, release,
                           send_close_frame)

KEEP_FINISHED = 1000


class ReplayOptions(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    mode: ReplayMode = "pure"
    timing_scale: float = 1.0
    strict_matching: bool = False
    timeout: int = 30_000
    auto_advance_on_connect: bool = False
    path: str | None = None
    connection: int | None = None

    def __post_init__(self) -> None:
        if self.timing_scale < 0:
            raise ValueError("timingScale must not be negative")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError("path must start with '/'")


class ReplayError(Exception):
    """A replay that cannot be made from this recording with these options (the API's 400)."""


# --- the plan (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One thing the replay does: send a server frame, or (synchronized) wait for a client message.

    ``offset_ms`` is the scaled time from the client's connect (pure mode); ``gap_ms`` the scaled time
    since the previous step (synchronized mode)."""

    kind: Literal["send", "expect"]
    item: Frame | SseEvent
    offset_ms: float
    gap_ms: float


def _connection(entries: list[Any], options: ReplayOptions) -> int:
    if options.connection is not None:
        if not any(entry.connection == options.connection for entry in entries):
            raise ReplayError(f"connection {options.connection} has no frames to replay")
        return options.connection
    if not entries:
        raise ReplayError("the recording has no frames to replay")
    return int(entries[0].connection)


def _opened_ms(recording: Recording, number: int) -> int:
    return next((record.relative_ms for record in recording.connections if record.connection == number), 0)


def _is_server_step(frame: Frame, client_closed: bool) -> bool:
    if frame.direction != "s2c":
        return False
    return frame.type in ("text", "binary", "ping") or (frame.type == "close" and not client_closed)


def plan(recording: Recording, options: ReplayOptions) -> list[Step]:
    """The steps of a replay: server frames (and client frames as ``expect`` steps when synchronized)."""
    scale = options.timing_scale
    if isinstance(recording.websocket, WebSocketSection):
        entries: list[Any] = recording.websocket.frames
    elif isinstance(recording.sse, SseSection):
        if options.mode == "synchronized":
            raise ReplayError("synchronized mode needs client messages, and an SSE recording has none")
        entries = recording.sse.events
    else:
        raise ReplayError("the recording has nothing to replay")
    number = _connection(entries, options)
    opened = _opened_ms(recording, number)
    steps: list[Step] = []
    previous = opened
    client_closed = False
    for entry in entries:
        if entry.connection != number:
            continue
        offset, gap = (entry.relative_ms - opened) * scale, (entry.relative_ms - previous) * scale
        if isinstance(entry, SseEvent):
            steps.append(Step("send", entry, offset, gap))
        elif entry.direction == "c2s":
            client_closed = client_closed or entry.type == "close"
            if entry.type in ("text", "binary") and options.mode == "synchronized":
                steps.append(Step("expect", entry, offset, gap))
            else:
                continue
        elif _is_server_step(entry, client_closed):
            steps.append(Step("send", entry, offset, gap))
            if entry.type == "close":
                break
        else:
            continue
        previous = entry.relative_ms
    return steps


def frame_payload(frame: Frame) -> str | bytes:
    return base64.b64decode(frame.data) if frame.encoding == "base64" else frame.data


def block_of(event: SseEvent) -> SseBlock:
    def present(value: Any) -> Any:
        return None if value is msgspec.UNSET else value

    return SseBlock(type=event.wire_type, data=present(event.data), id=present(event.id),
                    retry=present(event.retry), comment=present(event.comment))


# --- a replay session -------------------------------------------------------------------------------


@dataclass(eq=False)
class ReplaySession:
    recording: Recording
    options: ReplayOptions
    steps: list[Step]
    path: str
    id: str = field(default_factory=lambda: str(ULID()))
    status: ReplayState = "pending"
    frames_sent: int = 0
    position: int = 0  # index of the next step
    mismatches: int = 0
    error: str | None = None
    client: str | None = None
    started: float | None = None  # now() of the client's connect (uvloop's loop.time() is whole ms)
    finished_at: float | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _advance: asyncio.Queue[tuple[int, str | None, asyncio.Future[None]]] = field(default_factory=asyncio.Queue)
    _client_messages: asyncio.Queue[tuple[float, str | bytes]] = field(default_factory=asyncio.Queue)
    _paused_at: float | None = None
    _shift: float = 0.0
    _closer: Any = None  # how to end the client connection (set by the driver)

    @property
    def protocol(self) -> str:
        return self.recording.protocol

    def recorded_response(self) -> tuple[int, dict[str, str]]:
        """SSE: the replayed connection's response status and headers as recorded (less those that
        described the bytes on the wire)."""
        status, headers = self.recording.stream_response(self.steps[0].item.connection if self.steps else 0)
        return status, replayable_headers(headers.items())

    @property
    def total_frames(self) -> int:
        return sum(step.kind == "send" for step in self.steps)

    def describe(self) -> ReplayStatus:
        end = self.finished_at if self.finished_at is not None else now()
        elapsed = int((end - self.started) * 1000) if self.started is not None else 0
        return ReplayStatus(id=self.id, recording_id=self.recording.id, mode=self.options.mode, status=self.status,
                            current_frame=self.frames_sent, total_frames=self.total_frames,
                            frames_sent=self.frames_sent, elapsed_ms=elapsed, mismatches=self.mismatches,
                            error=self.error, client=self.client)

    def _finish(self, status: ReplayState, error: str | None = None) -> None:
        if self.status not in FINISHED:
            self.status, self.error = status, error
            self.finished_at = now()
            self._wake.set()

    # --- control from the API -------------------------------------------------------------------

    def pause(self) -> None:
        if self.options.mode != "pure" or self.status not in ("playing", "pending"):
            raise ReplayConflict(f"only a playing pure-mode replay can be paused (this one is {self.status})")
        self._paused_at = now()
        self.status = "paused"
        self._wake.set()

    def resume(self) -> None:
        if self.status != "paused" or self._paused_at is None:
            raise ReplayConflict(f"only a paused replay can be resumed (this one is {self.status})")
        self._shift += now() - self._paused_at
        self._paused_at = None
        self.status = "playing" if self.started is not None else "pending"
        self._wake.set()

    async def advance(self, count: int, until: str | None) -> None:
        """Triggered mode: queue the request and return once its frames are on the wire."""
        if self.options.mode != "triggered":
            raise ReplayBadRequest("advance is only for triggered replays")
        if self.status in FINISHED:
            return
        if self.started is None:
            raise ReplayConflict("no client has connected to this replay yet", code="no_client")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._advance.put((count, until, done))
        await asyncio.shield(done)

    def abort(self) -> None:
        if self.status not in FINISHED:
            self._finish("aborted")
            if self._closer is not None:
                asyncio.get_running_loop().create_task(self._closer(CLOSE_GOING_AWAY, "replay aborted"))

    # --- carrying out the plan ------------------------------------------------------------------

    async def _wait_until(self, offset_ms: float) -> bool:
        """Pure mode: sleep until connect + offset (+ paused time); False when the replay ended."""
        assert self.started is not None
        while True:
            if self.status in FINISHED:
                return False
            if self.status == "paused":
                self._wake.clear()
                await self._wake.wait()
                continue
            remaining = self.started + self._shift + offset_ms / 1000 - now()
            if remaining <= 0:
                return True
            nap = nap_before(remaining)
            if nap == 0:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), nap)

    async def run(self, send: Any) -> None:
        """Drive the plan; ``send(step)`` puts one server frame or event on the wire."""
        self.started = now()
        self.status = "paused" if self.status == "paused" else "playing"
        try:
            if self.options.mode == "pure":
                await self._run_pure(send)
            elif self.options.mode == "synchronized":
                await self._run_synchronized(send)
            else:
                await self._run_triggered(send)
        finally:
            self._finish("complete")

    async def _run_pure(self, send: Any) -> None:
        for step in self.steps:
            if not await self._wait_until(step.offset_ms):
                return
            await self._send(step, send)

    async def _send(self, step: Step, send: Any) -> None:
        await send(step)
        self.frames_sent += 1
        self.position += 1

    async def _run_synchronized(self, send: Any) -> None:
        """Server frames at deadlines counted from the anchor: the connect, then the arrival of the
        client message the last ``expect`` took (so a long replay does not drift)."""
        assert self.started is not None
        anchor, since_anchor_ms = self.started, 0.0
        for step in self.steps:
            if self.status in FINISHED:
                return
            if step.kind == "expect":
                arrived = await self._expect(step)
                if arrived is None:
                    return
                anchor, since_anchor_ms = arrived, 0.0
                self.position += 1
                continue
            self.status = "playing"
            since_anchor_ms += step.gap_ms
            await sleep_until(anchor + since_anchor_ms / 1000)
            if self.status in FINISHED:
                return
            await self._send(step, send)

    async def _expect(self, step: Step) -> float | None:
        """Wait for an acceptable client message and return when it arrived; on timeout the replay
        ends in ``error`` (None)."""
        self.status = "waiting"
        assert isinstance(step.item, Frame)
        expected = frame_payload(step.item)
        deadline = now() + self.options.timeout / 1000
        while True:
            remaining = deadline - now()
            try:
                arrived, message = await asyncio.wait_for(self._client_messages.get(), max(remaining, 0))
            except TimeoutError:
                index = self.steps.index(step) + 1
                self._finish("error", f"timeout waiting for client frame {index}")
                if self._closer is not None:
                    await self._closer(CLOSE_POLICY_VIOLATION, "timeout waiting for client frame")
                return None
            if not self.options.strict_matching or message == expected:
                return arrived
            self.mismatches += 1

    async def _run_triggered(self, send: Any) -> None:
        sends = [step for step in self.steps if step.kind == "send"]
        if self.options.auto_advance_on_connect and sends:
            await self._send(sends[0], send)
        while self.position < len(sends):
            count, until, done = await self._advance.get()
            try:
                await self._advance_by(sends, count, until, send)
            finally:
                if not done.done():
                    done.set_result(None)
        self._drain_advances()

    async def _advance_by(self, sends: list[Step], count: int, until: str | None, send: Any) -> None:
        while self.position < len(sends) and self.status not in FINISHED:
            step = sends[self.position]
            await self._send(step, send)
            if until is not None:
                data = step.item.data if isinstance(step.item.data, str) else ""
                if until in data:
                    return
            else:
                count -= 1
                if count <= 0:
                    return

    def _drain_advances(self) -> None:
        while not self._advance.empty():
            _, _, done = self._advance.get_nowait()
            if not done.done():
                done.set_result(None)

    def offer(self, message: str | bytes) -> None:
        """A client message (synchronized mode waits on these; the other modes ignore them)."""
        if self.options.mode == "synchronized":
            self._client_messages.put_nowait((now(), message))


class ReplayConflict(Exception):
    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class ReplayBadRequest(Exception):
    pass


# --- the registry of replays and the drivers --------------------------------------------------------


class Replays:
    """Pending replays wait here for their client; finished ones stay readable (the newest 1000)."""

    def __init__(self, events: StreamEvents) -> None:
        self.events = events
        self.sessions: OrderedDict[str, ReplaySession] = OrderedDict()

    def create(self, recording: Recording, options: ReplayOptions) -> ReplaySession:
        path = options.path or self._recorded_path(recording, options)
        session = ReplaySession(recording, options, plan(recording, options), path)
        self.sessions[session.id] = session
        self._forget_old()
        return session

    @staticmethod
    def _recorded_path(recording: Recording, options: ReplayOptions) -> str:
        entries: list[Any] = recording.entries()
        number = _connection(entries, options)
        for record in recording.connections:
            if record.connection == number and isinstance(record.path, str):
                return record.path
        return recording.metadata.path

    def _forget_old(self) -> None:
        finished = [key for key, session in self.sessions.items() if session.status in FINISHED]
        for key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self.sessions[key]

    def claim(self, protocol: str, path: str, method: str) -> ReplaySession | None:
        """The oldest pending replay for this kind of request, now bound to it."""
        for session in self.sessions.values():
            if (session.status in ("pending", "paused") and session.started is None and session.client is None
                    and session.path == path and session.protocol == protocol
                    and (protocol == "websocket" or self._method(session) == method)):
                session.client = "connecting"  # bound: no second client may take it
                return session
        return None

    @staticmethod
    def _method(session: ReplaySession) -> str:
        recording = session.recording
        if isinstance(recording.sse, SseSection) and not isinstance(recording.sse.request, type(msgspec.UNSET)):
            return recording.sse.request.method  # type: ignore[union-attr]
        return recording.metadata.method if isinstance(recording.metadata.method, str) else "GET"

    def shut_down(self) -> None:
        for session in self.sessions.values():
            session.abort()

    async def serve_websocket(self, session: ReplaySession, request: web.BaseRequest) -> web.StreamResponse:
        section = session.recording.websocket
        protocols = [section.subprotocol] if isinstance(section, WebSocketSection) and isinstance(
            section.subprotocol, str) else []
        ws = web.WebSocketResponse(protocols=protocols, autoping=False, autoclose=False, max_msg_size=0)
        await ws.prepare(request)
        connection = connection_from_request(request, "websocket", "replay", ws.ws_protocol)
        session.client = connection.remote
        driver = _WebSocketDriver(ws, connection, self.events, session)
        session._closer = driver.close
        self.events.connection_opened(connection)
        try:
            await driver.run()
        finally:
            self.events.connection_closed(connection)  # before the socket goes (StreamEvents.connection_closed)
            await release(ws)
        return ws

    async def serve_sse(self, session: ReplaySession, request: web.BaseRequest) -> web.StreamResponse:
        status, headers = session.recorded_response()
        response = web.StreamResponse(status=status, headers=sse_headers(headers))
        await response.prepare(request)
        connection = connection_from_request(request, "sse", "replay")
        connection.status = status
        connection.response_headers = list(response.headers.items())
        session.client = connection.remote
        self.events.connection_opened(connection)

        async def send(step: Step) -> None:
            assert isinstance(step.item, SseEvent)
            block = block_of(step.item)
            await response.write(encode_block(block))
            if self.events.listening:
                self.events.sse_block(connection, block)

        async def end(code: int, reason: str) -> None:
            if request.transport is not None:
                request.transport.close()

        session._closer = end
        try:
            await session.run(send)
            await response.write_eof()
        except ConnectionError:
            session._finish("aborted", "the client went away")
        finally:
            self.events.connection_closed(connection)
        return response


class _WebSocketDriver:
    def __init__(self, ws: web.WebSocketResponse, connection: Connection, events: StreamEvents,
                 session: ReplaySession) -> None:
        self.ws, self.connection, self.events, self.session = ws, connection, events, session
        self._close_sent = False

    def _emit(self, direction: str, kind: str, data: str | bytes, code: int | None = None,
              reason: str | None = None) -> None:
        if self.events.listening:
            self.events.ws_frame(self.connection, WsFrame(direction, kind, data, code, reason))  # type: ignore[arg-type]

    async def send(self, step: Step) -> None:
        frame = step.item
        assert isinstance(frame, Frame)
        if frame.type == "close":
            code = frame.close_code if isinstance(frame.close_code, int) else NO_STATUS
            await self.close(code, frame.close_reason if isinstance(frame.close_reason, str) else "")
            return
        payload = frame_payload(frame)
        if frame.type == "text":
            await self.ws.send_str(payload)  # type: ignore[arg-type]
        elif frame.type == "binary":
            await self.ws.send_bytes(payload)  # type: ignore[arg-type]
        else:
            await self.ws.ping(payload if isinstance(payload, bytes) else payload.encode())
        self._emit("s2c", frame.type, payload)

    async def close(self, code: int, reason: str) -> None:
        if self._close_sent or self.ws.closed:
            return
        self._close_sent = True
        if self.connection.close_code is None:
            self.connection.close_code, self.connection.close_reason = code, reason
        self._emit("s2c", "close", close_payload(code, reason), code, reason)
        await send_close_frame(self.ws, code, reason)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        player = loop.create_task(self.session.run(self.send))
        try:
            await self._read()
        finally:
            if not player.done():
                if self.session.status not in FINISHED:
                    self.session._finish("aborted", "the client went away")
                player.cancel()

    async def _read(self) -> None:
        while True:
            timeout = CLOSE_TIMEOUT if self._close_sent else None
            try:
                message = await self.ws.receive(timeout=timeout)
            except TimeoutError:
                return
            kind = message.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                self._emit("c2s", "text" if kind is WSMsgType.TEXT else "binary", message.data)
                self.session.offer(message.data)
            elif kind is WSMsgType.PING:
                self._emit("c2s", "ping", message.data)
                await self.ws.pong(message.data)
                self._emit("s2c", "pong", message.data)
            elif kind is WSMsgType.PONG:
                self._emit("c2s", "pong", message.data)
            elif kind is WSMsgType.CLOSE:
                code, reason = message.data or NO_STATUS, message.extra or ""
                self._emit("c2s", "close", close_payload(code, reason), code, reason)
                if self.connection.close_code is None:
                    self.connection.close_code, self.connection.close_reason = code, reason
                if not self._close_sent:
                    self._close_sent = True
                    self._emit("s2c", "close", close_payload(code, reason), code, reason)
                    await send_close_frame(self.ws, code, reason)
                return
            else:
                return
