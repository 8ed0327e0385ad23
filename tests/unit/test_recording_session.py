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
import os
import tempfile
import time
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from mockd.recording.format import Frame, SseEvent, rfc3339
from mockd.recording.journal import ENTRY, JournalHeader, JournalWriter
from mockd.recording.session import ENCODE_BATCH, RecordingSession, SessionLimits, Stamps
from mockd.stream.events import Connection, SseBlock, SseDataRun, WsFrame
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


# --- runs of one-line data blocks (SseDataRun): journaled in bulk, the same bytes as block by block ----

DATA = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=12) | st.sampled_from(
    ["\\", '"', "\\n\\ndata: ", "data: ", "\x00", "\u2028", "é😀", '{"password": "x"}', ""])
Run = tuple[int, list[str], int]  # connection (0-2), the data, when (ns after the start)
RUNS = st.lists(st.tuples(st.integers(0, 2), st.lists(DATA, min_size=1, max_size=6),
                          st.integers(-5_000_000_000, 3_000_000_000)), max_size=8)


def journals_of_both_ways(runs: list[Run], redactor: Redactor) -> tuple[list[bytes], list[bytes]]:
    """The entry lines of a session given ``runs`` as SseDataRuns, and of one given them as blocks."""
    with tempfile.TemporaryDirectory() as bulk_dir, tempfile.TemporaryDirectory() as single_dir:
        bulk, single = new_session(Path(bulk_dir), "sse"), new_session(Path(single_dir), "sse")
        bulk.redactor = single.redactor = redactor
        bulk.redacts_bodies = single.redacts_bodies = redactor.redacts_bodies
        links = [connection("sse") for _ in range(3)]
        for link in links:
            bulk.capture(link)
            single.capture(link)
        for which, data, offset in runs:
            run = SseDataRun.of(data, START_NS + offset)
            bulk.add_data(links[which], run)
            single.add_blocks(links[which], run.blocks())
        bulk.flush()
        single.flush()
        assert bulk.frame_count == single.frame_count == sum(len(data) for _, data, _ in runs)
        return journal_lines(bulk), journal_lines(single)


@settings(deadline=None, max_examples=200)
@given(RUNS)
def test_property_a_run_of_data_blocks_journals_the_bytes_its_blocks_would_one_by_one(runs: list[Run]) -> None:
    bulk, single = journals_of_both_ways(runs, Redactor())
    assert bulk == single
    assert all(msgspec.json.decode(line, type=SseEvent).type == "message" for line in bulk if line[:1] == ENTRY)


def test_a_redacting_session_redacts_the_data_of_a_run() -> None:
    runs = [(0, ['{"password": "hunter2", "n": 1}', "plain"], 1_000), (1, ['{"password": "x"}'], 2_000)]
    bulk, single = journals_of_both_ways(runs, Redactor(filter_body_keys=["password"]))
    assert bulk == single
    assert b"hunter2" not in b"".join(bulk) and b'\\"n\\":1' in b"".join(bulk).replace(b" ", b"")


async def test_a_run_of_data_blocks_stops_at_max_frames_and_later_runs_are_not_kept(tmp_path: Path) -> None:
    session = new_session(tmp_path, "sse")
    session.limits = SessionLimits(max_frames=3)
    session.capture(link := connection("sse"))
    session.add_data(link, SseDataRun.of(["e0", "e1"], START_NS + 1))
    session.add_data(link, SseDataRun.of(["e2", "e3", "e4"], START_NS + 2))
    session.add_data(link, SseDataRun.of(["late"], START_NS + 3))
    session.flush()
    assert [event.data for event in entries(session, SseEvent)] == ["e0", "e1", "e2"]
    assert (session.frame_count, session.stop_reason) == (3, "maxFrames")


def test_the_journal_writes_more_pieces_than_one_writev_takes_in_order(tmp_path: Path) -> None:
    header = JournalHeader(id="01JTESTSESSION0000000000000", name="unit", protocol="sse", path="/*", start_ns=START_NS)
    writer = JournalWriter(tmp_path / "many.journal", header)
    pieces = [b"%d\n" % n for n in range(3 * 1024 + 5)] + [b"x" * (1 << 20) + b"\n"]
    writer.lines(*pieces[:2000])
    writer.lines(*pieces[2000:])
    assert writer.pending_bytes == sum(map(len, pieces))
    writer.flush()
    assert writer.pending_bytes == 0
    written = (tmp_path / "many.journal").read_bytes()
    assert written.split(b"\n", 1)[1] == b"".join(pieces)
    assert writer.size == len(written) == os.path.getsize(tmp_path / "many.journal")
    writer.close()


def test_a_live_page_read_after_the_session_closed_its_journal_says_so_instead_of_failing(tmp_path: Path) -> None:
    """The push channel reads a running session's pages in a worker thread; the session may stop (and
    close its journal) before that read begins. The read then answers None — the recorder reads the
    finished recording instead — rather than raising on the closed file (which broke the channel's
    chunked stream with a 500 in the middle of it)."""
    from mockd.recording.index import Filter
    from mockd.recording.session import _LiveEntries

    session = new_session(tmp_path)
    link = connection()
    session.capture(link)
    for n in range(3):
        session.add("ws", link, WsFrame("s2c", "text", f"m{n}", at_ns=START_NS + n))
    session.flush()
    live = _LiveEntries(session.journal.path)
    found = live.page(Filter(), 0, 10)
    assert found is not None and [msgspec.json.decode(raw, type=Frame).data for raw in found.entries] == \
        ["m0", "m1", "m2"]
    assert found.positions == [0, 1, 2]
    live.close()
    assert live.page(Filter(), 0, 10) is None
