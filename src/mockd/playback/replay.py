"""Replaying a recording to the next client that connects: pure, synchronized or triggered.

The plan — which frames go out, and when — is a pure function of the recording and the options
(:func:`plan`). The async drivers only carry it out: pure mode against absolute deadlines from the
client's connect moment (so error never accumulates), synchronized mode step by step behind the
client's messages, triggered mode when the test says so. Replays emit the same stream events as mocks
and the proxy (origin ``replay``), so a recording session captures them like any other connection.

Every replay ends in one of :data:`mockd.admin.answers.FINISHED`: ``complete``, ``aborted`` (deleted, or the
client went away), ``error`` (a synchronized timeout, or a fault while sending: the client is closed
with 1011 and the cause logged on the ``mockd.replay`` logger) or ``expired`` (no client came within
``expiresAfter`` seconds; a timer at that absolute deadline, no polling).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import WSMsgType, web
from ulid import ULID

from mockd.admin.answers import (DEFAULT_EXPIRES_AFTER, FINISHED, MAX_EXPIRES_AFTER, MAX_TIMEOUT_MS, MAX_TIMING_SCALE,
                                 ReplayMode, ReplayState, ReplayStatus)
from mockd.recording.format import Frame, Recording, SseEvent, SseSection, WebSocketSection, without_entries
from mockd.recording.index import Filter, entry_key
from mockd.recording.store import Store
from mockd.serving.headers import replayable_headers
from mockd.serving.mocks.sse import sse_headers
from mockd.stream.clock import nap_before, now, sleep_until
from mockd.stream.events import Connection, SseBlock, StreamEvents, WsFrame, connection_from_request
from mockd.stream.ssewire import encode_block
from mockd.stream.wsclose import (CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_POLICY_VIOLATION, CLOSE_TIMEOUT,
                                  NO_STATUS, close_payload, release, send_close_frame)

log = logging.getLogger("mockd.replay")

KEEP_FINISHED = 1000


class ReplayOptions(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """The body of ``POST /stream-recordings/{id}/replay``. The bounds are checked when decoding (the
    schema's ``minimum``/``maximum``) and again in ``__post_init__`` for options built in Python."""

    mode: ReplayMode = "pure"
    timing_scale: Annotated[float, msgspec.Meta(ge=0, le=MAX_TIMING_SCALE)] = 1.0
    strict_matching: bool = False
    timeout: Annotated[int, msgspec.Meta(gt=0, le=MAX_TIMEOUT_MS)] = 30_000
    auto_advance_on_connect: bool = False
    path: str | None = None
    connection: int | None = None
    expires_after: Annotated[float, msgspec.Meta(gt=0, le=MAX_EXPIRES_AFTER)] = DEFAULT_EXPIRES_AFTER

    def __post_init__(self) -> None:
        if not 0 <= self.timing_scale <= MAX_TIMING_SCALE:  # NaN fails this too
            raise ValueError(f"timingScale must be a number from 0 to {MAX_TIMING_SCALE:g}")
        if not 0 < self.timeout <= MAX_TIMEOUT_MS:
            raise ValueError(f"timeout must be from 1 to {MAX_TIMEOUT_MS} ms")
        if not 0 < self.expires_after <= MAX_EXPIRES_AFTER:
            raise ValueError(f"expiresAfter must be more than 0 and at most {MAX_EXPIRES_AFTER:g} s")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError("path must start with '/'")


class ReplayError(Exception):
    """A replay that cannot be made from this recording with these options (the API's 400)."""


class ReplayFailed(Exception):
    """A fault while carrying out a replay: it ends in ``error`` with this message."""


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


def check_replayable(recording: Recording, options: ReplayOptions) -> None:
    if recording.protocol == "sse" and options.mode == "synchronized":
        raise ReplayError("synchronized mode needs client messages, and an SSE recording has none")
    if recording.protocol not in ("websocket", "sse"):
        raise ReplayError("the recording has nothing to replay")


def plan(recording: Recording, options: ReplayOptions) -> list[Step]:
    """The steps of a replay of a recording held in memory."""
    check_replayable(recording, options)
    entries: list[Any] = recording.entries()
    number = _connection(entries, options)
    return list(plan_steps((entry for entry in entries if entry.connection == number),
                           _opened_ms(recording, number), options))


def plan_steps(entries: Iterable[Frame | SseEvent], opened_ms: int, options: ReplayOptions) -> Iterator[Step]:
    """The steps of a replay of one connection's entries (in recorded order): server frames, and
    client frames as ``expect`` steps when synchronized; produced as the entries are read."""
    scale = options.timing_scale
    previous = opened_ms
    client_closed = False
    for entry in entries:
        offset, gap = (entry.relative_ms - opened_ms) * scale, (entry.relative_ms - previous) * scale
        if isinstance(entry, SseEvent):
            yield Step("send", entry, offset, gap)
        elif entry.direction == "c2s":
            client_closed = client_closed or entry.type == "close"
            if entry.type in ("text", "binary") and options.mode == "synchronized":
                yield Step("expect", entry, offset, gap)
            else:
                continue
        elif _is_server_step(entry, client_closed):
            yield Step("send", entry, offset, gap)
            if entry.type == "close":
                return
        else:
            continue
        previous = entry.relative_ms


# --- reading a plan ahead of its schedule ------------------------------------------------------------

WINDOW = 8192  # steps read ahead; a replay holds at most about this many (a plan that fits is shared)
READ_PAGE = 256  # entries decoded per call while a replay plays (the GIL is held that long)


@dataclass(frozen=True)
class ReplaySource:
    """What a replay reads: the recording without its entries, the connection it replays, and
    ``read(offset, limit)`` — that connection's entries from ``offset`` (blocking; called in a worker
    thread, through the frame index for a recording on disk)."""

    head: Recording
    connection: int
    read: Callable[[int, int], list[Any]]

    @classmethod
    def of(cls, recording: Recording, options: ReplayOptions) -> ReplaySource:
        """A recording held in memory (a running session's so far)."""
        entries: list[Any] = recording.entries()
        number = _connection(entries, options)
        own = [entry for entry in entries if entry.connection == number]
        return cls(without_entries(recording), number, lambda offset, limit: own[offset:offset + limit])

    @classmethod
    def stored(cls, store: Store, recording_id: str, head: Recording, options: ReplayOptions) -> ReplaySource:
        """A recording on disk, read a page at a time through its frame index (blocking: in a thread)."""
        if options.connection is not None:
            if store.page(recording_id, Filter(connection=options.connection), 0, 0).total == 0:
                raise ReplayError(f"connection {options.connection} has no frames to replay")
            number = options.connection
        else:
            first = store.page(recording_id, Filter(), 0, 1).entries
            if not first:
                raise ReplayError("the recording has no frames to replay")
            number = entry_key(first[0]).connection
        decode = msgspec.json.Decoder(Frame if head.protocol == "websocket" else SseEvent).decode
        own = Filter(connection=number)

        def read(offset: int, limit: int) -> list[Any]:
            return [decode(raw) for raw in store.page(recording_id, own, offset, limit).entries]

        return cls(head, number, read)

    def entries(self) -> Iterator[Any]:
        offset = 0
        while batch := self.read(offset, READ_PAGE):
            yield from batch
            offset += len(batch)

    def steps(self, options: ReplayOptions) -> Iterator[Step]:
        return plan_steps(self.entries(), _opened_ms(self.head, self.connection), options)


@dataclass
class Prepared:
    """A plan's first window, the rest still to read, and how many frames it sends in all."""

    first: list[Step]
    rest: Iterator[Step] | None
    total_sends: int


def prepare(source: ReplaySource, options: ReplayOptions, known_sends: int | None = None) -> Prepared:
    """Read the first window of the plan (blocking: in a worker thread). A longer plan's frames are
    counted in a second pass unless ``known_sends`` says (a plan counted before)."""
    steps = source.steps(options)
    first = list(islice(steps, WINDOW))
    if len(first) < WINDOW:
        return Prepared(first, None, sum(step.kind == "send" for step in first))
    if known_sends is None:
        known_sends = sum(step.kind == "send" for step in source.steps(options))
    return Prepared(first, steps, known_sends)


SHARED_PLANS = 8  # plans kept for later replays of the same recording (each at most WINDOW steps)


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > SHARED_PLANS:
        cache.popitem(last=False)


class StepWindow:
    """A replay's steps in order, read ahead of the schedule in a worker thread whenever fewer than half
    of ``WINDOW`` wait, so the event loop never reads the file while a deadline is near."""

    def __init__(self, prepared: Prepared) -> None:
        self._buffer: deque[Step] = deque(prepared.first)
        self._rest = prepared.rest
        self._reading: asyncio.Future[list[Step]] | None = None

    def _read_more(self) -> None:
        if self._rest is not None and self._reading is None:
            rest = self._rest
            self._reading = asyncio.ensure_future(asyncio.to_thread(lambda: list(islice(rest, WINDOW))))

    async def _take_read(self) -> bool:
        """Wait for the read under way (starting one); False when the plan has no more steps."""
        self._read_more()
        if self._reading is None:
            return False
        more = await self._reading
        self._reading = None
        self._buffer.extend(more)
        if len(more) < WINDOW:
            self._rest = None
        return bool(more)

    async def next(self) -> Step | None:
        if self._reading is not None and self._reading.done():
            await self._take_read()  # a read that finished meanwhile joins the buffer at once
        if len(self._buffer) < WINDOW // 2:
            self._read_more()
        while not self._buffer:
            if not await self._take_read():
                return None
        return self._buffer.popleft()

    async def first_matching(self, wanted: Callable[[Step], bool]) -> int | None:
        """How many steps from here up to and including the first ``wanted`` one (reading ahead as far
        as it takes); None when no remaining step is."""
        index = 0
        while True:
            while index < len(self._buffer):
                if wanted(self._buffer[index]):
                    return index + 1
                index += 1
            if not await self._take_read():
                return None

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()


def frame_payload(frame: Frame) -> str | bytes:
    return base64.b64decode(frame.data) if frame.encoding == "base64" else frame.data


def searchable_text(item: Frame | SseEvent) -> str:
    """What ``advance {"until": ...}`` looks in: a text frame's text, a close frame's reason, an SSE
    event's data; never a base64 payload."""
    if isinstance(item, SseEvent):
        return item.data if isinstance(item.data, str) else ""
    return "" if item.encoding == "base64" else item.data


def block_of(event: SseEvent) -> SseBlock:
    def present(value: Any) -> Any:
        return None if value is msgspec.UNSET else value

    return SseBlock(type=event.wire_type, data=present(event.data), id=present(event.id),
                    retry=present(event.retry), comment=present(event.comment))


# --- a replay session -------------------------------------------------------------------------------


@dataclass(eq=False)
class ReplaySession:
    recording: Recording  # without its entries: the steps come from ``window``
    options: ReplayOptions
    window: StepWindow
    total_sends: int
    connection: int  # the recorded connection it replays
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
    expires_at: float | None = None  # now() after which a pending replay expires
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    # advance requests for the triggered driver; None (put by finish) stops it
    _advance: asyncio.Queue[PendingAdvance | None] = field(default_factory=asyncio.Queue)
    _client_messages: asyncio.Queue[tuple[float, str | bytes]] = field(default_factory=asyncio.Queue)
    _paused_at: float | None = None
    _shift: float = 0.0
    closer: Callable[[int, str], Coroutine[Any, Any, None]] | None = None  # how the driver ends the client
    _aborting: asyncio.Task[None] | None = None  # abort's close, held until done
    _expiry: asyncio.TimerHandle | None = None

    @property
    def protocol(self) -> str:
        return self.recording.protocol

    def recorded_response(self) -> tuple[int, dict[str, str]]:
        """SSE: the replayed connection's response status and headers as recorded (less those that
        described the bytes on the wire)."""
        status, headers = self.recording.stream_response(self.connection)
        return status, replayable_headers(headers.items())

    @property
    def total_frames(self) -> int:
        return self.total_sends

    def describe(self) -> ReplayStatus:
        end = self.finished_at if self.finished_at is not None else now()
        elapsed = int((end - self.started) * 1000) if self.started is not None else 0
        return ReplayStatus(id=self.id, recording_id=self.recording.id, mode=self.options.mode, status=self.status,
                            current_frame=self.frames_sent, total_frames=self.total_frames,
                            frames_sent=self.frames_sent, elapsed_ms=elapsed, mismatches=self.mismatches,
                            error=self.error, client=self.client, path=self.path)

    def finish(self, status: ReplayState, error: str | None = None) -> None:
        if self.status not in FINISHED:
            self.status, self.error = status, error
            self.finished_at = now()
            self._cancel_expiry()
            self._wake.set()
            self._advance.put_nowait(None)  # a triggered driver waiting for an advance stops
            self.window.close()

    # --- waiting for a client -------------------------------------------------------------------

    def arm_expiry(self) -> None:
        """Expire at now + ``expiresAfter`` unless a client binds first (a timer, no polling)."""
        self.expires_at = now() + self.options.expires_after
        self._expiry = asyncio.get_running_loop().call_later(self.options.expires_after, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        if self.status != "pending" or self.client is not None or self.expires_at is None:
            return
        remaining = self.expires_at - now()
        if remaining > 0:  # the loop's timers tick coarser than the clock: not quite due yet
            self._expiry = asyncio.get_running_loop().call_later(remaining, self._expire)
            return
        self.finish("expired", f"no client connected to {self.path} within {self.options.expires_after:g} s")
        log.info("replay %s (recording %s) expired: %s", self.id, self.recording.id, self.error)

    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def bind(self) -> None:
        """A client has come for this replay: no other may take it, and it no longer expires."""
        self.client = "connecting"
        self._cancel_expiry()

    def handshake_failed(self, exc: BaseException) -> None:
        self.finish("error", f"the client's connection could not be set up: {type(exc).__name__}: {exc}")

    # --- control from the API -------------------------------------------------------------------

    def pause(self) -> None:
        if self.options.mode != "pure":
            raise ReplayConflict(f"only a pure-mode replay can be paused (this one is {self.options.mode})")
        if self.status == "pending":
            raise ReplayConflict("no client has connected to this replay yet, so its clock has not started",
                                 code="no_client")
        if self.status != "playing":
            raise ReplayConflict(f"only a playing replay can be paused (this one is {self.status})")
        self._paused_at = now()
        self.status = "paused"
        self._wake.set()

    def resume(self) -> None:
        if self.status != "paused" or self._paused_at is None:
            raise ReplayConflict(f"only a paused replay can be resumed (this one is {self.status})")
        self._shift += now() - self._paused_at
        self._paused_at = None
        self.status = "playing"
        self._wake.set()

    async def advance(self, count: int | None = None, until: str | None = None) -> None:
        """Triggered mode: send the next ``count`` server frames (default 1), or up to and including the
        first remaining one whose text contains ``until``; return once they are on the wire.

        ``until`` that no remaining frame contains sends nothing (:class:`ReplayConflict` ``no_match``)."""
        if self.options.mode != "triggered":
            raise ReplayBadRequest("advance is only for triggered replays")
        if count is not None and until is not None:
            raise ReplayBadRequest("give count or until, not both", code="count_and_until")
        if count is not None and count < 1:
            raise ReplayBadRequest("count must be at least 1", code="invalid_request")
        if self.status in FINISHED:
            return
        if self.started is None:
            raise ReplayConflict("no client has connected to this replay yet", code="no_client")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # its error is read even when the waiting request has gone
        self._advance.put_nowait(PendingAdvance(count if until is None else None, until, done))
        await asyncio.shield(done)

    def abort(self) -> None:
        if self.status not in FINISHED:
            self.finish("aborted")
            if self.closer is not None:
                self._aborting = asyncio.get_running_loop().create_task(self.closer(CLOSE_GOING_AWAY, "replay aborted"))

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
        """Drive the plan; ``send(step)`` puts one server frame or event on the wire.

        Ends ``complete`` when the plan is carried out, ``aborted`` when the client goes away, and
        ``error`` (logged, the client closed with 1011) on any other failure: never a silent ``complete``."""
        self.started = now()
        self.status = "playing"
        try:
            if self.options.mode == "pure":
                await self._run_pure(send)
            elif self.options.mode == "synchronized":
                await self._run_synchronized(send)
            else:
                await self._run_triggered(send)
        except ConnectionError:
            self.finish("aborted", "the client went away")
        except asyncio.CancelledError:
            self.finish("aborted", "the replay was cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - any fault ends the replay in error, with its cause
            await self._fail(exc)
        else:
            self.finish("complete")
        finally:
            self._drain_advances()

    async def _fail(self, exc: Exception) -> None:
        if self.status in FINISHED:  # already ended (aborted): what failed afterwards does not matter
            return
        reason = str(exc) if isinstance(exc, ReplayFailed) else f"the replay failed: {type(exc).__name__}: {exc}"
        log.warning("replay %s (recording %s): %s", self.id, self.recording.id, reason, exc_info=exc)
        self.finish("error", reason)
        if self.closer is not None:
            with contextlib.suppress(Exception):  # the connection may be what broke
                await self.closer(CLOSE_INTERNAL_ERROR, "replay failed")

    async def _run_pure(self, send: Any) -> None:
        while (step := await self.window.next()) is not None:
            if not await self._wait_until(step.offset_ms):
                return
            await self._send(step, send)

    async def _send(self, step: Step, send: Any) -> None:
        try:
            await send(step)
        except ConnectionError:
            raise
        except Exception as exc:
            raise ReplayFailed(f"server frame {self.frames_sent + 1} of {self.total_frames} could not be sent: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.frames_sent += 1
        self.position += 1

    async def _run_synchronized(self, send: Any) -> None:
        """Server frames at deadlines counted from the anchor: the connect, then the arrival of the
        client message the last ``expect`` took (so a long replay does not drift)."""
        assert self.started is not None
        anchor, since_anchor_ms = self.started, 0.0
        while (step := await self.window.next()) is not None:
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
                self.finish("error", f"timeout waiting for client frame {self.position + 1}")
                if self.closer is not None:
                    await self.closer(CLOSE_POLICY_VIOLATION, "timeout waiting for client frame")
                return None
            if not self.options.strict_matching or message == expected:
                return arrived
            self.mismatches += 1

    async def _run_triggered(self, send: Any) -> None:
        if self.options.auto_advance_on_connect:
            await self._advance_by(1, send)
        while self.frames_sent < self.total_sends:
            request = await self._advance.get()
            if request is None:  # the replay ended (aborted)
                return
            try:
                await self._advance_by(await self._how_many(request), send)
            except ReplayConflict as exc:
                request.done.set_exception(exc)
            finally:
                if not request.done.done():
                    request.done.set_result(None)

    async def _how_many(self, request: PendingAdvance) -> int:
        """The frames an advance sends from the current position; ``no_match`` when ``until`` is in none."""
        if request.until is None:
            return request.count or 1
        until = request.until
        count = await self.window.first_matching(lambda step: until in searchable_text(step.item))
        if count is None:
            raise ReplayConflict(f"no remaining server frame contains {until!r}; nothing was sent", code="no_match")
        return count

    async def _advance_by(self, count: int, send: Any) -> None:
        for _ in range(count):
            if self.status in FINISHED:
                return
            step = await self.window.next()
            if step is None:
                return
            await self._send(step, send)

    def _drain_advances(self) -> None:
        while not self._advance.empty():
            request = self._advance.get_nowait()
            if request is not None and not request.done.done():
                request.done.set_result(None)

    def offer(self, message: str | bytes) -> None:
        """A client message (synchronized mode waits on these; the other modes ignore them)."""
        if self.options.mode == "synchronized":
            self._client_messages.put_nowait((now(), message))


@dataclass(frozen=True)
class PendingAdvance:
    """One ``advance`` for the triggered driver: ``count`` frames, or up to the one containing ``until``."""

    count: int | None
    until: str | None
    done: asyncio.Future[None]


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


class ReplayConflict(Exception):
    """Not possible in the replay's state (the API's 409, with ``code``)."""

    def __init__(self, message: str, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class ReplayBadRequest(Exception):
    """Never possible for this replay (the API's 400, with ``code``)."""

    def __init__(self, message: str, code: str = "not_triggered") -> None:
        super().__init__(message)
        self.code = code


# --- the registry of replays and the drivers --------------------------------------------------------


class Replays:
    """Pending replays wait here for their client; finished ones stay readable (the newest 1000)."""

    def __init__(self, events: StreamEvents) -> None:
        self.events = events
        self.sessions: OrderedDict[str, ReplaySession] = OrderedDict()
        # what replays of one stored recording share: plans that fit in a window, whole (by recording,
        # connection, mode and timing scale), and the frame counts of longer ones (scale aside)
        self._plans: OrderedDict[tuple[str, int, str, float], Prepared] = OrderedDict()
        self._counts: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    async def prepare(self, source: ReplaySource, options: ReplayOptions, shared: bool) -> Prepared:
        """The plan's first window (read in a worker thread); ``shared``: a stored recording's, which
        other replays of it reuse (the file does not change once finished)."""
        plan_key = (source.head.id, source.connection, options.mode, options.timing_scale)
        count_key = plan_key[:3]
        if shared and plan_key in self._plans:
            self._plans.move_to_end(plan_key)
            return self._plans[plan_key]
        prepared = await asyncio.to_thread(prepare, source, options, self._counts.get(count_key) if shared else None)
        if shared and prepared.rest is None:
            _remember(self._plans, plan_key, prepared)
        elif shared:
            _remember(self._counts, count_key, prepared.total_sends)
        return prepared

    def create(self, source: ReplaySource, options: ReplayOptions, prepared: Prepared) -> ReplaySession:
        """A pending replay of ``source``'s connection (its first window read by :func:`prepare`)."""
        path = options.path or self._recorded_path(source)
        session = ReplaySession(source.head, options, StepWindow(prepared), prepared.total_sends, source.connection,
                                path)
        self.sessions[session.id] = session
        session.arm_expiry()
        self._forget_old()
        return session

    @staticmethod
    def _recorded_path(source: ReplaySource) -> str:
        for record in source.head.connections:
            if record.connection == source.connection and isinstance(record.path, str):
                return record.path
        return source.head.metadata.path

    def _forget_old(self) -> None:
        finished = [key for key, session in self.sessions.items() if session.status in FINISHED]
        for key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self.sessions[key]

    def claim(self, protocol: str, path: str, method: str) -> ReplaySession | None:
        """The oldest pending replay for this kind of request, now bound to it."""
        for session in self.sessions.values():
            if (session.status == "pending" and session.client is None
                    and session.path == path and session.protocol == protocol
                    and (protocol == "websocket" or self._method(session) == method)):
                session.bind()
                return session
        return None

    @staticmethod
    def _method(session: ReplaySession) -> str:
        recording = session.recording
        if isinstance(recording.sse, SseSection) and not isinstance(recording.sse.request, type(msgspec.UNSET)):
            return recording.sse.request.method
        return recording.metadata.method if isinstance(recording.metadata.method, str) else "GET"

    def shut_down(self) -> None:
        for session in self.sessions.values():
            session.abort()

    async def serve_websocket(self, session: ReplaySession, request: web.BaseRequest) -> web.StreamResponse:
        section = session.recording.websocket
        protocols = [section.subprotocol] if isinstance(section, WebSocketSection) and isinstance(
            section.subprotocol, str) else []
        ws = web.WebSocketResponse(protocols=protocols, autoping=False, autoclose=False, max_msg_size=0)
        try:
            await ws.prepare(request)
        except Exception as exc:
            session.handshake_failed(exc)
            raise
        connection = connection_from_request(request, "websocket", "replay", ws.ws_protocol)
        session.client = connection.remote
        driver = _WebSocketDriver(ws, connection, self.events, session)
        session.closer = driver.close
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
        try:
            await response.prepare(request)
        except Exception as exc:
            session.handshake_failed(exc)
            raise
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
                self.events.sse_blocks(connection, [block])

        async def end(code: int, reason: str) -> None:
            if request.transport is not None:
                request.transport.close()

        session.closer = end  # an aborted or failed replay cuts the stream (no normal end)
        try:
            await session.run(send)
            if session.status == "complete":
                await response.write_eof()
        except ConnectionError:
            session.finish("aborted", "the client went away")
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
                    self.session.finish("aborted", "the client went away")
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
