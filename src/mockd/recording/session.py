"""Recording sessions, and the recorder that feeds them: a subscriber of the stream events.

On the relay path a session only appends the event to a list. Every ``FLUSH_INTERVAL`` the recorder
turns what was appended into recording entries — redacted, then encoded — and appends them to each
session's journal, so memory stays flat and a crash loses at most that interval.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec
from ulid import ULID

from mockd.recording.format import (UNSET, ConnectionRecord, Frame, HttpExchange, HttpRequestRecord, HttpResponseRecord,
                                    Recording, RecordingProtocol, SessionSummary, SseEvent, Status, StopReason,
                                    encode_recording, or_unset, rfc3339)
from mockd.recording.index import Filter, JournalEntries, Page, page
from mockd.recording.journal import JournalClose, JournalHeader, JournalOpen, JournalWriter, assemble
from mockd.recording.store import StorageFull, Store
from mockd.stream.events import (MAX_CAPTURED_BODY, SSE_DATA_SEPARATOR, Connection, SseBlock, SseDataRun, StreamEvents,
                                 WsFrame)
from mockd.stream.redact import Redactor
from mockd.support.files import spool

log = logging.getLogger("mockd.recording")

FLUSH_INTERVAL = 0.1
FOLLOW_PAGE = 10_000  # entries a follower is handed at a time
# Appended frames are encoded as soon as this many wait (the write still happens every FLUSH_INTERVAL):
# a small batch is encoded while it is still in the CPU cache, which made the whole relay ~10 % cheaper.
ENCODE_BATCH = 256
PROTOCOLS = ("websocket", "sse", "http")
_encoder = msgspec.json.Encoder()
_MARK = "\0"  # the data of the entry whose encoding frames a run of data blocks (see _data_lines)
_ENCODED_MARK = _encoder.encode(_MARK)
_ENCODED_SEPARATOR = _encoder.encode(SSE_DATA_SEPARATOR)[1:-1]


@dataclass
class SessionLimits:
    max_duration_ms: int | None = None
    max_frames: int | None = None


class Stamps:
    """``timestamp`` and ``relativeMs`` of moments in a session that started at ``start_ns``.

    This runs once per recorded frame, so the formatted second is kept: a frame costs one division and
    one short format instead of a full :func:`rfc3339`."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self._second = -1
        self._second_text = ""  # up to and including the "."
        self._last_ns = -1  # frames of one chunk share their time: the last stamp is kept
        self._last: tuple[str, int] = ("", 0)

    def at(self, at_ns: int) -> tuple[str, int]:
        if at_ns == self._last_ns:
            return self._last
        micros = at_ns // 1000
        second = micros // 1_000_000
        if second != self._second:
            self._second, self._second_text = second, rfc3339(at_ns)[:-7]
        relative = (at_ns - self.start_ns) // 1_000_000
        self._last_ns = at_ns
        # the six digits of the microseconds: one addition and a slice (cheaper than a format spec)
        stamp = self._last = (self._second_text + str(micros - second * 1_000_000 + 1_000_000)[1:] + "Z",
                              relative if relative > 0 else 0)
        return stamp


@dataclass(eq=False)
class RecordingSession:
    header: JournalHeader
    journal: JournalWriter
    redactor: Redactor
    limits: SessionLimits
    numbers: dict[Connection, int] = field(default_factory=dict)
    pending: list[tuple[str, Connection, Any]] = field(default_factory=list)
    frame_count: int = 0
    waiting: int = 0  # frames and events appended since the last encode
    stop_reason: StopReason | None = None  # set when a limit asks the session to stop
    exchanges: int = 0  # HTTP exchanges captured so far
    unredactable: set[int] = field(default_factory=set)  # connections already warned about (once each)

    def __post_init__(self) -> None:
        self.redacts_bodies = self.redactor.redacts_bodies  # asked once per frame: keep the answer
        self._stamp = Stamps(self.header.start_ns).at

    @property
    def id(self) -> str:
        return self.header.id

    def matches(self, connection: Connection) -> bool:
        return connection.protocol == self.header.protocol and fnmatch.fnmatchcase(connection.path, self.header.path)

    # --- the relay path: append only ------------------------------------------------------------

    def capture(self, connection: Connection) -> None:
        self.numbers[connection] = len(self.numbers) + 1
        self.pending.append(("open", connection, None))

    def add(self, kind: str, connection: Connection, item: WsFrame | int) -> None:
        if self.stop_reason is not None:
            return  # a limit was reached; the recorder stops this session at its next flush
        self.pending.append((kind, connection, item))
        self._counted(1)

    def add_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None:
        """SSE blocks that arrived together are kept as one run (one entry, one time stamp)."""
        if self.stop_reason is not None:
            return
        if self.limits.max_frames is not None:
            blocks = blocks[:self.limits.max_frames - self.frame_count]
            if not blocks:
                return
        self.pending.append(("sse", connection, blocks))
        self._counted(len(blocks))

    def add_data(self, connection: Connection, run: SseDataRun) -> None:
        """A run of one-line data blocks (:class:`SseDataRun`): kept as it came, journaled in bulk."""
        if self.stop_reason is not None:
            return
        if self.limits.max_frames is not None and run.count > self.limits.max_frames - self.frame_count:
            kept = run.data()[:self.limits.max_frames - self.frame_count]
            if not kept:
                return
            run = SseDataRun.of(kept, run.at_ns)
        self.pending.append(("data", connection, run))
        self._counted(run.count)

    def _counted(self, added: int) -> None:
        """Encode as soon as ``ENCODE_BATCH`` frames or events wait; stop at ``maxFrames``."""
        before, self.waiting = self.waiting, self.waiting + added
        if before < ENCODE_BATCH <= self.waiting:
            asyncio.get_running_loop().call_soon(self.encode)
        self.frame_count += added
        if self.frame_count == self.limits.max_frames:
            self.stop_reason = "maxFrames"

    def add_exchange(self, exchange: Connection) -> None:
        """An HTTP exchange is numbered as it comes (it is not kept among the open connections)."""
        self.exchanges += 1
        self.add("http", exchange, self.exchanges)

    def release(self, connection: Connection) -> None:
        self.pending.append(("close", connection, None))

    # --- off the relay path ---------------------------------------------------------------------

    def flush(self) -> None:
        """Journal what was appended and write the journal."""
        self.encode()
        self.journal.flush()

    def encode(self) -> None:
        """Turn what was appended into journal lines, in order (runs of frames or events in one call)."""
        pending, self.pending, self.waiting = self.pending, [], 0
        numbers, frame_of = self.numbers, self._frame
        entries: list[Frame | SseEvent | HttpExchange] = []
        for kind, connection, item in pending:
            try:
                if kind == "ws":
                    entries.append(frame_of(numbers[connection], item))
                elif kind == "sse":
                    entries.extend(self._events(numbers[connection], item))
                elif kind == "data":
                    if self.redacts_bodies:
                        entries.extend(self._events(numbers[connection], item.blocks()))
                    else:
                        self.journal.entries(entries)
                        entries = []
                        self.journal.lines(*self._data_lines(numbers[connection], item))
                elif kind == "http":
                    entries.append(self._exchange(item, connection))
                else:
                    self.journal.entries(entries)
                    entries = []
                    self._journal_connection(kind, numbers[connection], connection)
            except Exception:  # one odd frame must not cost the others their place on disk
                log.exception("recording %s: could not record a %s event", self.id, kind)
        self.journal.entries(entries)

    def _journal_connection(self, kind: str, number: int, connection: Connection) -> None:
        if kind == "open":
            self.journal.opened(self._opened(number, connection))
        else:
            self.journal.closed(JournalClose(connection=number, closed_ns=connection.closed_ns or time.time_ns(),
                                             close_code=or_unset(connection.close_code),
                                             close_reason=or_unset(connection.close_reason)))

    def _frame(self, number: int, frame: WsFrame) -> Frame:
        """The frame as the file holds it (positional arguments: this runs once per recorded frame)."""
        kind, data = frame.type, frame.data
        timestamp, relative = self._stamp(frame.at_ns)
        if kind == "text":
            assert isinstance(data, str)
            size = len(data) if data.isascii() else len(data.encode())
            if not self.redacts_bodies:
                return Frame(frame.direction, kind, data, timestamp, relative, number, UNSET, size)
            text, problem = self.redactor.redact_body_reason(data)
            if problem is not None:
                self._redaction_failed(number, "a frame", problem)
                return Frame(frame.direction, kind, text, timestamp, relative, number, UNSET, size,
                             redaction_failed=True)
            return Frame(frame.direction, kind, text, timestamp, relative, number, UNSET, size)
        if kind == "close":
            reason = frame.close_reason or ""
            return Frame(frame.direction, kind, reason, timestamp, relative, number, UNSET, len(data),
                         or_unset(frame.close_code), reason)
        raw = data.encode() if isinstance(data, str) else bytes(data)  # aiohttp gives bytearray for pings
        return Frame(frame.direction, kind, base64.b64encode(raw).decode(), timestamp, relative, number, "base64",
                     len(raw))

    def _events(self, number: int, blocks: list[SseBlock]) -> list[SseEvent]:
        """A run of blocks as entries; should one fail, the others still are."""
        try:
            if self.redacts_bodies:
                return [self._event(number, block) for block in blocks]
            from_block, stamp = SseEvent.from_block, self._stamp
            if blocks[0].at_ns == blocks[-1].at_ns:  # one chunk's blocks (the usual run): one time stamp
                timestamp, relative = stamp(blocks[0].at_ns)
                return [from_block(block, timestamp, relative, number) for block in blocks]
            entries = []
            for block in blocks:  # :meth:`_event` in line (one call a block fewer: this runs once per event)
                timestamp, relative = stamp(block.at_ns)
                entries.append(from_block(block, timestamp, relative, number))
            return entries
        except Exception:  # noqa: BLE001 - found again below, block by block, and logged
            kept = []
            for block in blocks:
                try:
                    kept.append(self._event(number, block))
                except Exception:
                    log.exception("recording %s: could not record an sse event", self.id)
            return kept

    def _data_lines(self, number: int, run: SseDataRun) -> tuple[bytes, bytes, bytes]:
        """The journal lines of a run of one-line data blocks, made in bulk (in three pieces, so that the
        long middle one is not copied again): the run's text is JSON-encoded as one string, where each
        separator between two blocks' data reads ``\\n\\ndata: `` (no other ``\\n`` is in it: the data
        hold no line break, and a backslash of the data is encoded ``\\\\``), and each separator becomes
        the end of one entry and the start of the next. The same bytes as an :class:`SseEvent` per block."""
        timestamp, relative = self._stamp(run.at_ns)
        start, end = _encoder.encode(SseEvent("message", _MARK, UNSET, UNSET, UNSET, timestamp, relative,
                                              number)).split(_ENCODED_MARK)
        end += b"\n"
        between = b'"' + end + start + b'"'  # closes one entry's data and opens the next one's
        return start, _encoder.encode(run.text).replace(_ENCODED_SEPARATOR, between), end

    def _event(self, number: int, block: SseBlock) -> SseEvent:
        timestamp, relative = self._stamp(block.at_ns)
        event = SseEvent.from_block(block, timestamp, relative, number)
        if block.data is not None and self.redacts_bodies:
            event.data, problem = self.redactor.redact_body_reason(block.data)
            if problem is not None:
                self._redaction_failed(number, "an event", problem)
                event.redaction_failed = True
        return event

    def _redaction_failed(self, number: int, what: str, problem: str) -> None:
        """Warn once per connection that an entry holds the redact value instead of its data (never the data)."""
        if number not in self.unredactable:
            self.unredactable.add(number)
            log.warning("recording %s: connection %d: %s could not be redacted (%s); its data was replaced "
                        "by the redact value", self.id, number, what, problem)

    def _opened(self, number: int, connection: Connection) -> JournalOpen:
        """A connection open before the session started keeps its real ``openedAt``, at relativeMs 0."""
        opened_at, relative = self._stamp(connection.opened_ns)
        record = ConnectionRecord(
            connection=number, opened_at=opened_at, relative_ms=relative,
            origin=connection.origin, path=connection.path, remote_addr=or_unset(connection.remote),
            headers=self.redactor.headers(connection.headers), query=self.redactor.query(connection.query),
            subprotocol=or_unset(connection.subprotocol))
        body = connection.request_body
        body, encoding, truncated, _ = self._body(number, connection.request_body, "the request body")
        return JournalOpen(
            record=record, method=connection.method, host=connection.host, status=or_unset(connection.status),
            response_headers=self.redactor.headers(connection.response_headers) if connection.status else UNSET,
            request_body=body, request_body_encoding=encoding, request_body_truncated=truncated)

    def _body(self, number: int, raw: bytes | None, what: str) -> tuple[Any, Any, Any, bool]:
        """``body``, ``bodyEncoding`` and ``bodyTruncated`` of a captured body — UTF-8 text redacted (the
        redact value when it could not be), anything else base64; cut at ``MAX_CAPTURED_BODY`` — and
        whether redaction failed."""
        if not raw:
            return UNSET, UNSET, UNSET, False
        truncated = True if len(raw) > MAX_CAPTURED_BODY else UNSET
        kept = raw[:MAX_CAPTURED_BODY]
        try:
            text = kept.decode()
        except UnicodeDecodeError:
            return base64.b64encode(kept).decode(), "base64", truncated, False
        if not self.redacts_bodies:
            return text, UNSET, truncated, False
        redacted, problem = self.redactor.redact_body_reason(text)
        if problem is not None:
            self._redaction_failed(number, what, problem)
        return redacted, UNSET, truncated, problem is not None

    def _exchange(self, number: int, exchange: Connection) -> HttpExchange:
        """A plain HTTP exchange as the file holds it, redacted like the streams."""
        timestamp, relative = self._stamp(exchange.opened_ns)
        redactor = self.redactor
        body, encoding, truncated, request_failed = self._body(number, exchange.request_body, "a request body")
        request = HttpRequestRecord(
            method=exchange.method, path=exchange.path, query=redactor.query(exchange.query),
            headers=redactor.headers(exchange.headers), body=body, body_encoding=encoding, body_truncated=truncated,
            size=exchange.request_size)
        body, encoding, truncated, response_failed = self._body(number, exchange.response_body, "a response body")
        response = HttpResponseRecord(
            status=exchange.status or 0, headers=redactor.headers(exchange.response_headers), body=body,
            body_encoding=encoding, body_truncated=truncated, size=exchange.response_size)
        duration = ((exchange.closed_ns or exchange.opened_ns) - exchange.opened_ns) // 1_000_000
        return HttpExchange(request=request, response=response, timestamp=timestamp, relative_ms=relative,
                            duration_ms=duration, connection=number, origin=exchange.origin,
                            redaction_failed=True if request_failed or response_failed else UNSET)

    def summary(self) -> SessionSummary:
        return SessionSummary(id=self.id, name=self.header.name, protocol=self.header.protocol,
                              path=self.header.path, start_time=rfc3339(self.header.start_ns),
                              duration_ms=(time.time_ns() - self.header.start_ns) // 1_000_000,
                              frame_count=self.frame_count, connection_count=len(self.numbers) + self.exchanges)


def _spool_live(journal: Path, directory: Path) -> BinaryIO:
    """A running session's recording so far, written from its journal to an unnamed temporary file:
    the journal is read once, in pieces, whatever its length."""
    def pieces() -> Iterator[bytes]:
        head, entries, count, size = assemble(journal, "recording", UNSET, time.time_ns())
        return encode_recording(head, entries, count, size)

    return spool(directory, pieces)


class _LiveEntries:
    """A running session's entries for pages, read from its journal (indexed on the first page asked
    for, then as it grows); pages are read in a worker thread, hence the lock."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._handle = open(path, "rb")  # noqa: SIM115 - open as long as the session runs
        self._entries = JournalEntries(self._handle)

    def page(self, where: Filter, offset: int, limit: int) -> Page | None:
        """None when the session stopped (its journal closed) before this read began: the finished
        recording holds the same entries in the same order."""
        with self._lock:
            if self._handle.closed:
                return None
            self._entries.update()
            return page(self._entries, where, offset, limit)

    def close(self) -> None:
        with self._lock:
            self._handle.close()


async def _set_within(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event``: False when ``timeout`` s pass first."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


class Recorder:
    """Owns the sessions; subscribes to the stream events while at least one session runs."""

    def __init__(self, events: StreamEvents, store: Store, redactor: Redactor) -> None:
        self.events = events
        self.store = store
        self.redactor = redactor
        self.sessions: dict[str, RecordingSession] = {}
        self.finishing: dict[str, asyncio.Future[None]] = {}  # stopped, file being written
        self._routes: dict[Connection, list[RecordingSession]] = {}
        self._live: dict[str, _LiveEntries] = {}  # running sessions someone asked a page of
        self._flusher: asyncio.Task[None] | None = None
        self._flushed = asyncio.Event()  # set and replaced after each round of flushes and each stop
        # (a push channel waits on it instead of asking for pages)
        self._warned = False

    # --- sessions -------------------------------------------------------------------------------

    def start(self, protocol: Literal["websocket", "sse", "http"], path: str, name: str | None = None,
              headers: dict[str, str] | None = None, limits: SessionLimits | None = None,
              source: str = "manual") -> tuple[RecordingSession, str | None]:
        """Open a session; returns it and the storage warning, if any. Raises StorageFull when full."""
        if self.store.used_bytes + self._journal_bytes() >= self.store.max_bytes:
            raise StorageFull(f"Recording storage is full ({self.store.used_bytes} of "
                              f"{self.store.max_bytes} bytes); delete or vacuum recordings first")
        recording_id = str(ULID())
        header = JournalHeader(id=recording_id, name=name or f"{protocol} {path}", protocol=protocol, path=path,
                               start_ns=time.time_ns(), source=source,
                               headers=self.redactor.headers((headers or {}).items()))
        session = RecordingSession(header, JournalWriter(self.store.journal_path(recording_id), header),
                                   self.redactor, limits or SessionLimits())
        self.sessions[recording_id] = session
        if len(self.sessions) == 1:
            self.events.subscribe(self)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_regularly())
        for connection in list(self.events.open_connections):
            self._offer(session, connection)
        warning = self.store.over_warning(self._journal_bytes())
        if warning and not self._warned:
            log.warning(warning)
        self._warned = warning is not None
        return session, warning

    def _offer(self, session: RecordingSession, connection: Connection) -> None:
        if session.matches(connection):
            session.capture(connection)
            routes = self._routes.setdefault(connection, [])
            if not routes:
                connection.followers += 1
            routes.append(session)

    def _journal_bytes(self) -> int:
        return sum(session.journal.size + session.journal.pending_bytes for session in self.sessions.values())

    def resolve(self, reference: str) -> str:
        return self.store.resolve(reference, extra=[*self.sessions, *self.finishing])

    async def recording_source(self, recording_id: str) -> bytes | Path | BinaryIO:
        """What to send for a recording: its file (streamed from disk) when it can go as it is; a running
        session's recording so far spooled to an unnamed file; else its bytes (another layout, converted)."""
        if recording_id in self.sessions:
            session = self.sessions[recording_id]
            session.flush()
            return await asyncio.to_thread(_spool_live, session.journal.path, self.store.directory)
        await self._written(recording_id)
        path = await asyncio.to_thread(self.store.file_to_send, recording_id)  # may summarize a changed file
        return path if path is not None else await asyncio.to_thread(self.store.read_bytes, recording_id)

    async def recording_bytes(self, recording_id: str) -> bytes:
        """The recording's bytes, read whole: a running session's so far, a stopping one's once it is
        written."""
        if recording_id in self.sessions:
            return self.live_view(recording_id)
        await self._written(recording_id)
        return self.store.read_bytes(recording_id)

    async def stop(self, recording_id: str, status: str = "complete", reason: StopReason = "api") -> None:
        """Close the session and write its recording."""
        session = self.sessions.pop(recording_id)
        live = self._live.pop(recording_id, None)
        if live is not None:
            live.close()
        for connection, sessions in list(self._routes.items()):
            if session in sessions:
                sessions.remove(session)
                if not sessions:
                    del self._routes[connection]
                    connection.followers -= 1
        if not self.sessions:
            self.events.unsubscribe(self)  # the flusher ends by itself once no session is left
        session.flush()
        session.journal.close()
        end_ns = time.time_ns()
        loop = asyncio.get_running_loop()
        written = self.finishing[recording_id] = loop.create_future()
        try:  # written off the event loop: a long recording takes a while
            await loop.run_in_executor(None, self.store.finish_journal, recording_id, status, reason, end_ns)
        finally:
            del self.finishing[recording_id]
            written.set_result(None)
            self._announce_flush()

    async def protocol_of(self, recording_id: str) -> RecordingProtocol:
        if recording_id in self.sessions:
            return self.sessions[recording_id].header.protocol
        await self._written(recording_id)
        return self.store.summary(recording_id).protocol

    async def page(self, recording_id: str, where: Filter, offset: int, limit: int) -> Page:
        """A page of the recording's entries (a running session's so far), read off the event loop."""
        session = self.sessions.get(recording_id)
        if session is not None:
            session.flush()
            live = self._live.get(recording_id)
            if live is None:
                live = self._live[recording_id] = _LiveEntries(session.journal.path)
            found = await asyncio.to_thread(live.page, where, offset, limit)
            if found is not None:
                return found
        await self._written(recording_id)
        return await asyncio.to_thread(self.store.page, recording_id, where, offset, limit)

    async def follow(self, recording_id: str, offset: int,
                     quiet: float) -> AsyncIterator[tuple[int, Page] | Status | None]:
        """The recording's entries from ``offset`` on, as ``(offset, page)`` pages, then those a running
        session writes, after each flush; ``None`` after ``quiet`` s without a flush; at the end (the
        session stopped, or it was not recording) the recording's status."""
        while True:
            flushed = self._flushed  # taken before reading: a flush or stop during the read still wakes us
            running = recording_id in self.sessions
            found = await self.page(recording_id, Filter(), offset, FOLLOW_PAGE)
            if found.entries:
                yield offset, found
                offset += len(found.entries)
            elif not running:
                yield (await self.head(recording_id)).status
                return
            elif not await _set_within(flushed, quiet):
                yield None

    async def head(self, recording_id: str) -> Recording:
        """The recording without its entries (a running session's so far), read off the event loop."""
        if recording_id in self.sessions:
            self.sessions[recording_id].flush()
            path = self.sessions[recording_id].journal.path
            return (await asyncio.to_thread(assemble, path, "recording", UNSET, time.time_ns()))[0]
        await self._written(recording_id)
        return await asyncio.to_thread(self.store.head, recording_id)

    async def _written(self, recording_id: str) -> None:
        """Wait for a stopped session's file to be written."""
        if recording_id in self.finishing:
            await asyncio.shield(self.finishing[recording_id])

    async def stop_all(self, status: str, reason: StopReason) -> None:
        for recording_id in list(self.sessions):
            await self.stop(recording_id, status, reason)

    def live_view(self, recording_id: str) -> bytes:
        """A running session as a recording so far (``status: "recording"``)."""
        session = self.sessions[recording_id]
        session.flush()
        head, entries, count, size = assemble(session.journal.path, "recording", UNSET, time.time_ns())
        return b"".join(encode_recording(head, entries, count, size))

    def _announce_flush(self) -> None:
        self._flushed.set()
        self._flushed = asyncio.Event()

    async def _flush_regularly(self) -> None:
        while self.sessions:
            await asyncio.sleep(FLUSH_INTERVAL)
            for session in list(self.sessions.values()):
                try:
                    await self._flush(session)
                except Exception:  # one broken session must not stop the others' journals
                    log.exception("recording %s: flushing failed", session.id)
            self._announce_flush()

    async def _flush(self, session: RecordingSession) -> None:
        """Write what the session captured, then stop it if a limit says so."""
        try:
            session.flush()
        except OSError as exc:
            log.error("recording %s: cannot write its journal: %s", session.id, exc)
            session.stop_reason = "storage"
        limit = session.limits.max_duration_ms
        if limit is not None and time.time_ns() - session.header.start_ns >= limit * 1_000_000:
            session.stop_reason = session.stop_reason or "maxDurationMs"
        if self.store.used_bytes + self._journal_bytes() > self.store.max_bytes:
            session.stop_reason = "storage"
        if session.stop_reason is not None and session.id in self.sessions:
            status = "incomplete" if session.stop_reason == "storage" else "complete"
            await self.stop(session.id, status, session.stop_reason)

    # --- the stream events ----------------------------------------------------------------------

    def connection_opened(self, connection: Connection) -> None:
        for session in self.sessions.values():
            self._offer(session, connection)

    def ws_frame(self, connection: Connection, frame: WsFrame) -> None:
        for session in self._routes.get(connection, ()):
            session.add("ws", connection, frame)

    def sse_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None:
        for session in self._routes.get(connection, ()):
            session.add_blocks(connection, blocks)

    def sse_data(self, connection: Connection, run: SseDataRun) -> None:
        for session in self._routes.get(connection, ()):
            session.add_data(connection, run)

    def connection_closed(self, connection: Connection) -> None:
        sessions = self._routes.pop(connection, ())
        if sessions:
            connection.followers -= 1
        for session in sessions:
            session.release(connection)

    def http_exchange(self, exchange: Connection) -> None:
        for session in self.sessions.values():
            if session.matches(exchange):
                session.add_exchange(exchange)
