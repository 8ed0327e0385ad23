"""``mockd.recording.session.RecordingSession`` on its own: what it journals, in what order, with what
timestamps. No sockets: frames and events are handed to the session as the stream events would.

Contract (docs/recording.md, "Sessions"): every frame or event reaches the journal in the order it was
appended, between the records of its connection's opening and closing, whatever batches the session
encodes them in (``ENCODE_BATCH`` as soon as that many wait, the rest at the flush); each entry's
``timestamp`` is its moment in RFC 3339 with microseconds and ``relativeMs`` the whole milliseconds
since the session started (never negative).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from mockd.recording.format import Frame, SseEvent, rfc3339
from mockd.recording.journal import ENTRY, JournalHeader, JournalWriter
from mockd.recording.session import ENCODE_BATCH, RecordingSession, SessionLimits, Stamps
from mockd.stream.events import Connection, SseBlock, WsFrame
from mockd.stream.redact import Redactor

START_NS = 1_764_108_000_123_456_789


def new_session(directory: Path, protocol: str = "websocket", start_ns: int = START_NS) -> RecordingSession:
    header = JournalHeader(id="01JTESTSESSION0000000000000", name="unit", protocol=protocol,  # type: ignore[arg-type]
                           path="/*", start_ns=start_ns)
    return RecordingSession(header, JournalWriter(directory / "unit.journal", header), Redactor(), SessionLimits())


def connection(protocol: str = "websocket") -> Connection:
    return Connection(protocol, "proxy", "GET", "/feed", "127.0.0.1", [], [], None)  # type: ignore[arg-type]


def journal_lines(session: RecordingSession) -> list[bytes]:
    return session.journal.path.read_bytes().splitlines()[1:]  # the header line aside


def entries(session: RecordingSession, model: type[Frame] | type[SseEvent] = Frame) -> list[Frame] | list[SseEvent]:
    return [msgspec.json.decode(line, type=model) for line in journal_lines(session) if line[:1] == ENTRY]


async def test_frames_keep_their_order_and_connection_across_encode_batches(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    first, second = connection(), connection()
    session.capture(first)
    total = 3 * ENCODE_BATCH + 7
    for n in range(total):
        if n == ENCODE_BATCH + 3:
            session.capture(second)
        if n == 2 * ENCODE_BATCH + 1:
            session.release(first)
        target = first if n <= 2 * ENCODE_BATCH else second
        session.add("ws", target, WsFrame("c2s", "text", f"frame {n}", at_ns=START_NS + n * 1000))
        if n % 50 == 0:
            await asyncio.sleep(0)  # let the scheduled encodes run between appends, as on a live loop
    session.flush()
    kinds = [line[:1] for line in journal_lines(session)]
    assert kinds.count(b"O") == 2 and kinds.count(b"C") == 1
    assert kinds.index(b"O", 1) == 1 + ENCODE_BATCH + 3  # the second opening stands where it was appended
    assert kinds.index(b"C") == 1 + (2 * ENCODE_BATCH + 1) + 1  # opening, 513 frames, opening
    frames = entries(session)
    assert [frame.data for frame in frames] == [f"frame {n}" for n in range(total)]
    assert [frame.connection for frame in frames] == [1 if n <= 2 * ENCODE_BATCH else 2 for n in range(total)]


async def test_a_full_batch_is_encoded_before_the_flush_and_written_only_by_it(tmp_path: Path) -> None:
    session = new_session(tmp_path)
    session.capture(link := connection())
    for n in range(ENCODE_BATCH):
        session.add("ws", link, WsFrame("s2c", "text", "x", at_ns=START_NS + n))
    assert session.journal.pending_bytes == 0  # appending only appends
    await asyncio.sleep(0)
    assert session.pending == [] and session.journal.pending_bytes > 0
    assert entries(session) == []  # nothing on disk before the flush
    session.flush()
    assert len(entries(session)) == ENCODE_BATCH and session.journal.pending_bytes == 0


@given(st.integers(min_value=0, max_value=4_000_000_000_000_000_000))
def test_every_timestamp_is_rfc3339_of_its_moment_and_relative_to_the_start(offset_ns: int) -> None:
    stamps = Stamps(START_NS).at
    at_ns = START_NS - 5_000_000_000 + offset_ns  # a few moments before the start too
    timestamp, relative = stamps(at_ns)
    assert timestamp == rfc3339(at_ns)
    assert relative == max(0, (at_ns - START_NS) // 1_000_000)


async def test_sse_events_of_one_chunk_share_their_stamp_and_later_ones_move_on(tmp_path: Path) -> None:
    session = new_session(tmp_path, "sse")
    session.capture(link := connection("sse"))
    moments = [START_NS + 1_500_000, START_NS + 1_500_000, START_NS + 1_000_000_000, START_NS + 2_999_999_999]
    for n, at_ns in enumerate(moments):
        session.add_blocks(link, [SseBlock(None, f"e{n}", None, None, None, at_ns)])
    session.flush()
    events = entries(session, SseEvent)
    assert [(event.timestamp, event.relative_ms) for event in events] == [
        (rfc3339(at_ns), (at_ns - START_NS) // 1_000_000) for at_ns in moments]


def test_the_stamps_of_a_session_match_rfc3339_on_second_boundaries() -> None:
    stamps = Stamps(START_NS).at
    second = (START_NS // 1_000_000_000 + 1) * 1_000_000_000
    for at_ns in (second - 1, second, second + 999, second - 1, time.time_ns()):
        assert stamps(at_ns)[0] == rfc3339(at_ns)


async def test_a_run_of_sse_blocks_stops_at_max_frames_and_later_runs_are_not_kept(tmp_path: Path) -> None:
    session = new_session(tmp_path, "sse")
    session.limits = SessionLimits(max_frames=3)
    session.capture(link := connection("sse"))
    session.add_blocks(link, [SseBlock(None, f"e{n}", None, None, None, START_NS + n) for n in range(5)])
    session.add_blocks(link, [SseBlock(None, "late", None, None, None, START_NS + 9)])
    session.flush()
    assert [event.data for event in entries(session, SseEvent)] == ["e0", "e1", "e2"]
    assert (session.frame_count, session.stop_reason) == (3, "maxFrames")
