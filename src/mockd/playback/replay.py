"""A replay session: the state machine that carries a plan out for one client — pure, synchronized
or triggered — and what the API does to it (pause, resume, advance, abort).

Pure mode runs against absolute deadlines from the client's connect moment (so error never accumulates),
synchronized mode step by step behind the client's messages, triggered mode when the test says so. The
session does no I/O of its own: a driver (:mod:`mockd.playback.drivers`) gives it the client's ``send``
and ``close`` and feeds it the client's messages.

Every replay ends in one of :data:`mockd.admin.answers.FINISHED`: ``complete``, ``aborted`` (deleted, or the
client went away), ``error`` (a synchronized timeout, or a fault while sending: the client is closed
with 1011 and the cause logged on the ``mockd.replay`` logger) or ``expired`` (no client came within
``expiresAfter`` seconds; a timer at that absolute deadline, no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ulid import ULID

from mockd.playback.errors import ReplayBadRequest, ReplayConflict, ReplayFailed
from mockd.playback.plan import FINISHED, ReplayOptions, ReplayState, Step, searchable_text
from mockd.playback.window import StepWindow
from mockd.recording.format import Frame, Recording
from mockd.serving.headers import replayable_headers
from mockd.stream.clock import nap_before, now, sleep_until
from mockd.stream.wsclose import CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_POLICY_VIOLATION

log = logging.getLogger("mockd.replay")

Send = Callable[[Step], Awaitable[None]]
"""Puts one server frame or event on the client's wire."""
Close = Callable[[int, str], Awaitable[None]]
"""Ends the client's connection (a WebSocket with this code and reason; an SSE stream is cut)."""


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
    _close: Close | None = None  # how the driver ends the client (given by connected())
    _aborting: asyncio.Task[None] | None = None  # abort's close, held until done
    _expiry: asyncio.TimerHandle | None = None
    _held: Step | None = None  # a send step taken from the window and not sent yet (waiting for its time)

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

    @property
    def next_entry(self) -> int | None:
        """The recording's entry number of the server frame or event the replay sends next; None once it
        has finished, or when the window has not read that far."""
        if self.status in FINISHED:
            return None
        step = self._held or self.window.next_send()
        return step.position if step is not None else None

    @property
    def elapsed_ms(self) -> int:
        """Since the client connected: until now, or until the replay finished."""
        end = self.finished_at if self.finished_at is not None else now()
        return int((end - self.started) * 1000) if self.started is not None else 0

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

    def connected(self, remote: str | None, close: Close) -> None:
        """The client's connection is set up: ``remote`` is its address, ``close`` how to end it."""
        self.client, self._close = remote, close

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
            if self._close is not None:
                self._aborting = asyncio.ensure_future(self._close(CLOSE_GOING_AWAY, "replay aborted"))

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

    async def run(self, send: Send) -> None:
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
        if self._close is not None:
            with contextlib.suppress(Exception):  # the connection may be what broke
                await self._close(CLOSE_INTERNAL_ERROR, "replay failed")

    async def _run_pure(self, send: Send) -> None:
        while (step := await self._take()) is not None:
            if not await self._wait_until(step.offset_ms):
                return
            await self._send(step, send)

    async def _take(self) -> Step | None:
        """The next step from the window; a send step is held (:attr:`next_entry`) until it is sent."""
        step = await self.window.next()
        self._held = step if step is not None and step.kind == "send" else None
        return step

    async def _send(self, step: Step, send: Send) -> None:
        try:
            await send(step)
        except ConnectionError:
            raise
        except Exception as exc:
            raise ReplayFailed(f"server frame {self.frames_sent + 1} of {self.total_frames} could not be sent: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.frames_sent += 1
        self.position += 1
        self._held = None

    async def _run_synchronized(self, send: Send) -> None:
        """Server frames at deadlines counted from the anchor: the connect, then the arrival of the
        client message the last ``expect`` took (so a long replay does not drift)."""
        assert self.started is not None
        anchor, since_anchor_ms = self.started, 0.0
        while (step := await self._take()) is not None:
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
        expected = step.item.payload()
        deadline = now() + self.options.timeout / 1000
        while True:
            remaining = deadline - now()
            try:
                arrived, message = await asyncio.wait_for(self._client_messages.get(), max(remaining, 0))
            except TimeoutError:
                self.finish("error", f"timeout waiting for client frame {self.position + 1}")
                if self._close is not None:
                    await self._close(CLOSE_POLICY_VIOLATION, "timeout waiting for client frame")
                return None
            if not self.options.strict_matching or message == expected:
                return arrived
            self.mismatches += 1

    async def _run_triggered(self, send: Send) -> None:
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

    async def _advance_by(self, count: int, send: Send) -> None:
        for _ in range(count):
            if self.status in FINISHED:
                return
            step = await self._take()
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
