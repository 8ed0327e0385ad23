"""Issue 16: the frame index beside a recording, without sockets. Pages at every offset, with every
filter, cover each matching frame exactly once and in order — through the index mockd writes, the one
rebuilt by scanning a file that has none, an index without postings (too many keys), and a file read
whole (pretty-printed by hand); the index is rebuilt when deleted or out of date; a soft delete copies
the frames byte for byte."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from mockd.recording import index as frame_index
from mockd.recording.format import (ConnectionRecord, Frame, HttpExchange, HttpRequestRecord, HttpResponseRecord,
                                    HttpSection, Metadata, Recording, SseEvent, SseSection, Stats, WebSocketSection,
                                    encode_entry, recording_bytes, rfc3339)
from mockd.recording.index import EntryKey, Filter
from mockd.recording.store import Store, StoreError

DIRECTIONS = ("c2s", "s2c")
TYPES = ("text", "binary", "ping", "pong", "close")


def frame(number: int, connection: int, direction: str, kind: str) -> Frame:
    data = f'{{"n":{number},"tricky":"}},{{\\"frames\\":[ \\u00e9"}}' if kind == "text" else "AAE="
    return Frame(direction=direction, type=kind, data=data, timestamp=rfc3339(time.time_ns()),  # type: ignore[arg-type]
                 relative_ms=number, connection=connection, encoding="base64" if kind != "text" else msgspec.UNSET,
                 size=len(data))


def websocket_recording(frames: list[Frame]) -> Recording:
    opened = rfc3339(time.time_ns())
    connections = sorted({item.connection for item in frames})
    return Recording(
        id=str(ULID()), name="paged", protocol="websocket", status="complete", start_time=opened,
        metadata=Metadata(path="/ws", headers={"frames": '"frames":[ {}'}), websocket=WebSocketSection(frames=frames),
        connections=[ConnectionRecord(connection=number, opened_at=opened, relative_ms=0, origin="proxy")
                     for number in connections],
        stats=Stats(frame_count=len(frames), connection_count=len(connections)))


def sse_recording(events: list[SseEvent]) -> Recording:
    return Recording(id=str(ULID()), name="events", protocol="sse", status="complete",
                     start_time=rfc3339(time.time_ns()), metadata=Metadata(path="/events"),
                     sse=SseSection(events=events), stats=Stats(frame_count=len(events)))


def http_recording(count: int) -> Recording:
    exchanges = [HttpExchange(request=HttpRequestRecord(method="POST", path=f"/api/{i}", query={"q": "}"},
                                                        headers={"x": "{"}, body='{"a":{"b":{"c":1}}}'),
                              response=HttpResponseRecord(status=200, headers={"a": "b"}, body="ok"),
                              timestamp=rfc3339(time.time_ns()), relative_ms=i, connection=i + 1)
                 for i in range(count)]
    return Recording(id=str(ULID()), name="calls", protocol="http", status="complete",
                     start_time=rfc3339(time.time_ns()), metadata=Metadata(path="/api/*"),
                     http=HttpSection(exchanges=exchanges), stats=Stats(frame_count=count))


def new_store(directory: Path) -> Store:
    store = Store(directory, 1 << 34, 80)
    store.open()
    return store


def saved(store: Store, recording: Recording) -> str:
    store.save(recording)
    return recording.id


def all_pages(store: Store, recording_id: str, where: Filter, size: int) -> tuple[list[bytes], set[int], list[int]]:
    """Every page of ``size`` from offset 0 until one comes back short; the totals they reported, and
    the entries' positions among all the recording's."""
    found: list[bytes] = []
    totals = set()
    positions: list[int] = []
    offset = 0
    while True:
        page = store.page(recording_id, where, offset, size)
        totals.add(page.total)
        found += page.entries
        positions += page.positions
        assert len(page.positions) == len(page.entries)
        if len(page.entries) < size:
            return found, totals, positions
        offset += size


def key_of(item: Frame) -> EntryKey:
    return EntryKey(item.connection, item.direction, item.type)


FILTERS = [Filter(), Filter(connection=2), Filter(direction="s2c"), Filter(type="text"),
           Filter(connection=1, direction="c2s", type="binary"), Filter(connection=99)]

frames_strategy = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(DIRECTIONS), st.sampled_from(TYPES)),
                           max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=frames_strategy, size=st.integers(1, 7), rebuilt=st.booleans(), overflow=st.booleans())
def test_pages_cover_every_matching_frame_once_in_order(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shapes: list[tuple[int, str, str]],
        size: int, rebuilt: bool, overflow: bool) -> None:
    monkeypatch.setattr(frame_index, "MAX_KEYS", 2 if overflow else 4096)
    store = new_store(tmp_path_factory.mktemp("data"))
    frames = [frame(number, *shape) for number, shape in enumerate(shapes)]
    recording_id = saved(store, websocket_recording(frames))
    if rebuilt:
        store.index_path(recording_id).unlink()
    for where in FILTERS:
        expected = [encode_entry(item) for item in frames if where.wanted(key_of(item))]
        found, totals, positions = all_pages(store, recording_id, where, size)
        assert found == expected, where
        assert totals == {len(expected)}, where
        assert positions == [number for number, item in enumerate(frames) if where.wanted(key_of(item))], where
    assert store.index_path(recording_id).exists()


def test_a_page_past_the_end_is_empty_with_the_total(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    recording_id = saved(store, websocket_recording([frame(i, 1, "s2c", "text") for i in range(5)]))
    page = store.page(recording_id, Filter(), 10**12, 100)
    assert (page.entries, page.total, page.types) == ([], 5, {"text": 5})
    assert store.page(recording_id, Filter(type="text"), 0, 0).total == 5


def test_type_counts_follow_the_filter(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    frames = [frame(0, 1, "c2s", "text"), frame(1, 1, "s2c", "text"), frame(2, 2, "s2c", "binary"),
              frame(3, 2, "s2c", "ping"), frame(4, 1, "s2c", "close")]
    recording_id = saved(store, websocket_recording(frames))
    assert store.page(recording_id, Filter(), 0, 0).types == {"binary": 1, "close": 1, "ping": 1, "text": 2}
    assert store.page(recording_id, Filter(connection=2), 0, 0).types == {"binary": 1, "ping": 1}
    assert store.page(recording_id, Filter(direction="s2c", connection=1), 0, 0).types == {"close": 1, "text": 1}


def test_the_index_is_written_beside_the_recording_and_rebuilt_when_deleted(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    frames = [frame(i, 1 + i % 3, DIRECTIONS[i % 2], TYPES[i % 5]) for i in range(200)]
    recording_id = saved(store, websocket_recording(frames))
    index_path = store.index_path(recording_id)
    assert index_path.exists()
    first = store.page(recording_id, Filter(connection=2), 10, 20)

    index_path.unlink()
    assert store.page(recording_id, Filter(connection=2), 10, 20) == first
    assert index_path.exists()
    assert frame_index.describes(frame_index.read_header(index_path), store.path_of(recording_id))

    index_path.write_bytes(b"MOCKDIX1 not an index")  # torn or foreign: rebuilt too
    assert store.page(recording_id, Filter(connection=2), 10, 20) == first
    assert frame_index.read_header(index_path) is not None


def test_an_index_of_another_version_of_the_file_is_not_used(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    recording_id = saved(store, websocket_recording([frame(i, 1, "s2c", "text") for i in range(10)]))
    stale = store.index_path(recording_id).read_bytes()
    other = websocket_recording([frame(i, 2, "c2s", "binary") for i in range(3)])
    other.id = recording_id
    store.save(other)  # same id, another file
    store.index_path(recording_id).write_bytes(stale)
    page = store.page(recording_id, Filter(), 0, 100)
    assert page.entries == [encode_entry(item) for item in other.websocket.frames]  # type: ignore[union-attr]


def test_the_head_is_the_recording_without_its_frames(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    recording = websocket_recording([frame(i, 1, "s2c", "text") for i in range(50)])
    recording_id = saved(store, recording)
    whole = store.load(recording_id)
    head = store.head(recording_id)
    assert head.websocket.frames == []  # type: ignore[union-attr]
    assert head.stats == whole.stats and head.connections == whole.connections
    assert head.metadata == whole.metadata and head.stats.file_size_bytes == store.path_of(recording_id).stat().st_size


def test_sse_and_http_recordings_page_by_connection_and_event_type(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    events = [SseEvent(type="delta" if i % 3 else "message", data=f"chunk {i}", connection=1 + i % 2,
                       timestamp=rfc3339(time.time_ns()), relative_ms=i) for i in range(30)]
    events.append(SseEvent(comment="keep-alive", timestamp=rfc3339(time.time_ns()), relative_ms=31))
    sse_id = saved(store, sse_recording(events))
    page = store.page(sse_id, Filter(type="delta"), 0, 100)
    assert page.entries == [encode_entry(event) for event in events if event.type == "delta"]
    assert store.page(sse_id, Filter(), 0, 0).types == {"delta": 20, "message": 10}  # the comment has no type
    assert store.page(sse_id, Filter(connection=2), 0, 100).total == 15

    http_id = saved(store, http_recording(12))
    exchanges = store.page(http_id, Filter(connection=5), 0, 10).entries
    assert [msgspec.json.decode(raw, type=HttpExchange).request.path for raw in exchanges] == ["/api/4"]
    store.index_path(http_id).unlink()  # nested three deep: the scan finds each exchange's end
    assert store.page(http_id, Filter(), 3, 4).entries == [
        encode_entry(item) for item in store.load(http_id).http.exchanges[3:7]]  # type: ignore[union-attr]


def test_a_pretty_printed_file_is_read_whole_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recording = websocket_recording([frame(i, 1 + i % 2, "s2c", "text") for i in range(8)])
    path = tmp_path / f"{recording.id}.json"
    path.write_text(json.dumps(json.loads(recording_bytes(recording)), indent=2))
    store = new_store(tmp_path)
    with caplog.at_level(logging.WARNING, "mockd.recording"):
        page = store.page(recording.id, Filter(connection=2), 1, 2)
    assert [msgspec.json.decode(raw, type=Frame).relative_ms for raw in page.entries] == [3, 5]
    assert page.total == 4
    assert "read whole" in caplog.text
    assert not store.index_path(recording.id).exists()
    assert store.head(recording.id).stats.frame_count == 8


def test_soft_delete_copies_the_frames_byte_for_byte_and_keeps_the_index_true(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    frames = [frame(i, 1 + i % 4, DIRECTIONS[i % 2], "text") for i in range(300)]
    recording_id = saved(store, websocket_recording(frames))
    before = store.load(recording_id)
    store.soft_delete(recording_id)
    after = store.load(recording_id)
    assert after.deleted is True and isinstance(after.deleted_at, str)
    assert after.websocket.frames == before.websocket.frames  # type: ignore[union-attr]
    raw = store.path_of(recording_id).read_bytes()
    assert json.loads(raw)["stats"]["fileSizeBytes"] == len(raw)
    assert frame_index.describes(frame_index.read_header(store.index_path(recording_id)), store.path_of(recording_id))
    assert store.page(recording_id, Filter(connection=3), 0, 5).entries == [
        encode_entry(item) for item in frames if item.connection == 3][:5]


def test_removing_a_recording_removes_its_index(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    kept = saved(store, websocket_recording([frame(0, 1, "s2c", "text")]))
    removed = saved(store, websocket_recording([frame(0, 1, "s2c", "text")]))
    vacuumed = saved(store, websocket_recording([frame(0, 1, "s2c", "text")]))
    store.delete_permanently(removed)
    store.soft_delete(vacuumed)
    store.vacuum()
    assert sorted(path.name for path in tmp_path.glob("*.index")) == [f"{kept}.index"]
    orphan = tmp_path / f"{ULID()}.index"
    orphan.write_bytes(b"left behind")
    new_store(tmp_path)  # opening the directory drops an index whose recording is gone
    assert not orphan.exists()
    with pytest.raises(StoreError):
        store.page(removed, Filter(), 0, 1)


def test_an_index_without_postings_still_pages_unfiltered_without_reading_keys(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP recording of more exchanges than MAX_KEYS (each exchange is a key): no postings, yet an
    unfiltered page is read by position and its counts come from the header."""
    monkeypatch.setattr(frame_index, "MAX_KEYS", 8)
    store = new_store(tmp_path)
    recording_id = saved(store, http_recording(40))
    with store.entries(recording_id) as entries:
        assert entries.postings is None and entries.count == 40
    calls = []
    monkeypatch.setattr(frame_index, "entry_key", lambda raw: calls.append(raw))
    page = store.page(recording_id, Filter(), 30, 5)
    assert [msgspec.json.decode(raw, type=HttpExchange).request.path for raw in page.entries] == [
        f"/api/{i}" for i in range(30, 35)]
    assert (page.total, page.types, calls) == (40, {}, [])
