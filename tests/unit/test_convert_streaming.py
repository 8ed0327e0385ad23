"""Issue 16: convert streams. The config written piece by piece — each connection's steps, events and
delays read from the file through the frame index and spliced into the formatted document — is byte
for byte what formatting the whole document at once gives, for recordings of many connections and
both protocols, whatever the batch sizes; from the data directory and from memory alike. (Over a real
server — converting a 60 MB recording does not grow the server's peak memory with it, and the CLI's
offline convert writes the same bytes the API sends — is in tests/e2e/test_recording_streaming.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from mockd.config.model import CloseStep, ConfigFile
from mockd.playback import convert as converting
from mockd.playback.convert import ConvertOptions, config_bytes, convert_pieces
from mockd.recording import index as frame_index
from mockd.recording.format import (ConnectionRecord, Frame, Metadata, Recording, SseEvent, SseSection, Stats,
                                    WebSocketSection, rfc3339)
from mockd.recording.reader import RecordingReader
from mockd.recording.store import Store

KINDS = [("s2c", "text"), ("c2s", "text"), ("s2c", "binary"), ("s2c", "ping"), ("c2s", "pong"), ("s2c", "close")]


def ws_recording(shapes: list[tuple[int, int]], connections: int) -> Recording:
    now = time.time_ns()
    frames = [Frame(direction=KINDS[kind][0], type=KINDS[kind][1], data=f'{{"n": {i}, "s": "a\\nb"}}'  # type: ignore[arg-type]
                    if KINDS[kind][1] == "text" else "AAE=", timestamp=rfc3339(now), relative_ms=i * 3,
                    connection=connection, size=4) for i, (connection, kind) in enumerate(shapes)]
    opened = rfc3339(now)
    return Recording(id=str(ULID()), name="many", protocol="websocket", status="complete", start_time=opened,
                     metadata=Metadata(path="/ws/x"), websocket=WebSocketSection(frames=frames),
                     connections=[ConnectionRecord(connection=number, opened_at=opened, relative_ms=number,
                                                   origin="proxy", path=f"/ws/{number % 2}", query={"k": "v"})
                                  for number in range(1, connections + 1)],
                     stats=Stats(frame_count=len(frames), connection_count=connections))


def sse_recording(shapes: list[tuple[int, int]], connections: int) -> Recording:
    now = time.time_ns()
    events = [SseEvent(type=("delta", "message", "done")[kind % 3], data=f"chunk {i}\nline", id=str(i),
                       timestamp=rfc3339(now), relative_ms=i * 2, connection=connection)
              for i, (connection, kind) in enumerate(shapes)]
    opened = rfc3339(now)
    return Recording(id=str(ULID()), name="llm", protocol="sse", status="complete", start_time=opened,
                     metadata=Metadata(path="/v1/chat", method="POST"), sse=SseSection(events=events),
                     connections=[ConnectionRecord(connection=number, opened_at=opened, relative_ms=0, origin="proxy",
                                                   method="POST", body=f'{{"prompt": "p{number}", "steps": []}}',
                                                   status=200, response_headers={"content-type": "text/event-stream"})
                                  for number in range(1, connections + 1)],
                     stats=Stats(frame_count=len(events), connection_count=connections))


shapes = st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.lists(st.tuples(st.integers(1, n), st.integers(0, len(KINDS) - 1)), max_size=80), st.just(n)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=shapes, protocol=st.sampled_from(["websocket", "sse"]), strict=st.booleans(),
       tiny_batches=st.booleans())
def test_the_streamed_config_is_the_whole_document_formatted(tmp_path_factory: pytest.TempPathFactory,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             case: tuple[list[tuple[int, int]], int], protocol: str,
                                                             strict: bool, tiny_batches: bool) -> None:
    monkeypatch.setattr(frame_index, "BATCH_ENTRIES", 3 if tiny_batches else 4096)
    monkeypatch.setattr(converting._formatted_items, "__defaults__", (40 if tiny_batches else 1 << 20,))
    recording = (ws_recording if protocol == "websocket" else sse_recording)(*case)
    options = ConvertOptions(strict_matching=strict)
    try:
        in_memory = b"".join(convert_pieces(RecordingReader.of(recording), options))
    except converting.NothingToConvert:
        return
    store = Store(tmp_path_factory.mktemp("data"), 1 << 30, 80)
    store.open()
    store.save(recording)
    with store.reader(recording.id) as reader:
        from_disk = b"".join(convert_pieces(reader, options))
    assert from_disk == in_memory
    assert in_memory == config_bytes(msgspec.json.decode(in_memory, type=ConfigFile))


def test_a_long_connection_is_spliced_across_many_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(converting._formatted_items, "__defaults__", (1000,))  # about 10 steps a batch
    recording = ws_recording([(1, 0)] * 5000 + [(1, 5)], 1)
    raw = b"".join(convert_pieces(RecordingReader.of(recording)))
    config = msgspec.json.decode(raw, type=ConfigFile)
    assert raw == config_bytes(config)
    steps = config.mocks[0].websocket.scenario.steps  # type: ignore[union-attr]
    assert len(steps) == 5001 and isinstance(steps[-1], CloseStep)


def test_an_index_without_postings_converts_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More keys than MAX_KEYS: each connection's frames are found by reading every entry's key."""
    monkeypatch.setattr(frame_index, "MAX_KEYS", 2)
    recording = ws_recording([(1 + i % 4, i % len(KINDS)) for i in range(60)], 4)
    store = Store(tmp_path, 1 << 30, 80)
    store.open()
    store.save(recording)
    with store.reader(recording.id) as reader:
        assert reader.connection_numbers() == [1, 2, 3, 4]
        from_disk = b"".join(convert_pieces(reader))
    assert from_disk == b"".join(convert_pieces(RecordingReader.of(recording)))
