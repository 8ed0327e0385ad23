"""The recordings directory and the file format, in process (docs/recording.md, "The recording file" and
"Storage").

* a stateful test drives ``mockd.recording.store.Store`` through saves, soft and permanent deletes,
  vacuums, re-opens, lost indexes, outside rewrites and foreign files, checking it after every step
  against an independent model and against the files on disk;
* ``resolve`` of id prefixes (unique, ambiguous, unknown, hostile), never touching anything outside
  the data directory;
* ``recording_bytes`` / ``decode_recording`` round trips, and the import of the Go mockd's layout;
* journals: a torn last line (a crash mid-write) loses only that line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from mockd.recording.format import (UNSET, ConnectionRecord, Frame, Metadata, Recording, SseEvent, SseSection, Stats,
                                    WebSocketSection, decode_recording, encode_recording, recording_bytes, rfc3339)
from mockd.recording.journal import JournalHeader, JournalOpen, JournalWriter, assemble
from mockd.recording.store import AmbiguousId, InvalidId, ListQuery, NotFound, Store, StoreError

MAX_BYTES = 500 * 1024 * 1024
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE_NS = 1_700_000_000_000_000_000
SEED_KEYS = ["id", "version", "name", "protocol", "status", "startTime", "endTime", "duration", "metadata", "stats"]

# --- building recordings --------------------------------------------------------------------------

texts = st.text(max_size=12)
ids = st.text(alphabet=CROCKFORD, min_size=26, max_size=26)
saved_ids = st.builds(lambda first, rest: first + rest, st.sampled_from("01"), st.text(alphabet="0123AB", min_size=25,
                                                                                      max_size=25))
foreign_ids = st.text(alphabet=CROCKFORD, min_size=25, max_size=25).map(lambda rest: "Z" + rest)  # never saved


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    kind = draw(st.sampled_from(["text", "binary", "ping", "pong", "close"]))
    at = BASE_NS + draw(st.integers(0, 10**12))
    common: dict[str, Any] = {"direction": draw(st.sampled_from(["c2s", "s2c"])), "type": kind,
                              "timestamp": rfc3339(at), "relative_ms": draw(st.integers(0, 10**6)),
                              "connection": draw(st.integers(1, 5))}
    if kind == "text":
        data = draw(st.text(max_size=20))
        return Frame(data=data, size=len(data.encode()), **common)
    if kind == "close":
        reason = draw(st.text(max_size=8))
        return Frame(data=reason, size=2 + len(reason.encode()), close_code=draw(st.integers(1000, 4999)),
                     close_reason=reason, **common)
    raw = draw(st.binary(max_size=12))
    return Frame(data=msgspec.json.encode(raw).decode()[1:-1], encoding="base64", size=len(raw), **common)


@st.composite
def sse_events(draw: st.DrawFn) -> SseEvent:
    fields = draw(st.fixed_dictionaries({}, optional={"type": texts, "data": st.text(max_size=20), "id": texts,
                                                      "retry": st.integers(0, 10**6), "comment": texts}))
    return SseEvent(timestamp=rfc3339(BASE_NS + draw(st.integers(0, 10**12))),
                    relative_ms=draw(st.integers(0, 10**6)), connection=draw(st.integers(1, 3)), **fields)


headers = st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True), texts, max_size=3)


@st.composite
def recordings(draw: st.DrawFn, recording_id: str | None = None) -> Recording:
    protocol = draw(st.sampled_from(["websocket", "sse"]))
    start = BASE_NS + draw(st.integers(0, 10**15))
    duration = draw(st.integers(0, 10**7))
    recording = Recording(
        id=recording_id or draw(ids), name=draw(texts), protocol=protocol,
        status=draw(st.sampled_from(["recording", "complete", "incomplete"])), start_time=rfc3339(start),
        end_time=rfc3339(start + duration * 1_000_000), duration=duration,
        metadata=Metadata(path="/" + draw(texts), headers=draw(headers), query=draw(headers),
                          source=draw(st.sampled_from(["manual", "pytest", "import"]))),
        connections=[ConnectionRecord(connection=1, opened_at=rfc3339(start), relative_ms=0,
                                      origin=draw(st.sampled_from(["mock", "proxy", "replay"])))],
        stop_reason=draw(st.sampled_from(["api", "maxFrames", "crash", "shutdown"])))
    if protocol == "websocket":
        recording.websocket = WebSocketSection(frames=draw(st.lists(frames(), max_size=5)))
    else:
        recording.sse = SseSection(events=draw(st.lists(sse_events(), max_size=5)))
    entries = recording.entries()
    recording.stats = Stats(frame_count=len(entries), connection_count=1)
    return recording


def simple_recording(recording_id: str, name: str = "r", protocol: str = "websocket", start_ns: int = BASE_NS,
                     frame_count: int = 1) -> Recording:
    recording = Recording(id=recording_id, name=name, protocol=protocol,  # type: ignore[arg-type]
                          status="complete", start_time=rfc3339(start_ns), end_time=rfc3339(start_ns),
                          metadata=Metadata(path=f"/{protocol}/{name}"))
    if protocol == "websocket":
        recording.websocket = WebSocketSection(frames=[
            Frame(direction="s2c", type="text", data=f"frame {n}", timestamp=rfc3339(start_ns), relative_ms=n,
                  size=len(f"frame {n}")) for n in range(frame_count)])
    else:
        recording.sse = SseSection(events=[SseEvent(type="message", data=f"event {n}", timestamp=rfc3339(start_ns),
                                                    relative_ms=n) for n in range(frame_count)])
    recording.stats = Stats(frame_count=frame_count)
    return recording


def open_store(directory: Path) -> Store:
    store = Store(directory, MAX_BYTES, 80)
    store.open()
    return store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def recording_files(directory: Path) -> dict[str, Path]:
    return {path.stem: path for path in directory.glob("*.json") if re.fullmatch(f"[{CROCKFORD}]{{26}}", path.stem)}


# --- the stateful test ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the model knows of one recording."""

    name: str
    protocol: str
    start_time: str
    frame_count: int
    deleted: bool = False


class StoreMachine(RuleBasedStateMachine):
    saved = Bundle("saved")

    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="mockd-store-"))
        self.directory = self.base / "recordings"
        self.outside = self.base / f"{'7' * 26}.json"  # beside the directory, never to be touched
        self.outside.write_bytes(recording_bytes(simple_recording("7" * 26)))
        self.outside_bytes = self.outside.read_bytes()
        self.store = open_store(self.directory)
        self.model: dict[str, Expected] = {}
        self.foreign: dict[str, bytes] = {}
        self.clock = 0

    def teardown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def _start_time(self, offset: int) -> str:
        self.clock += 1  # distinct start times, so "oldest" and "newest" are well defined
        return rfc3339(BASE_NS + offset * 1_000_000_000 + self.clock * 1000)

    def _size(self, recording_id: str) -> int:
        return (self.directory / f"{recording_id}.json").stat().st_size

    # --- rules ----------------------------------------------------------------------------------

    @rule(target=saved, recording_id=saved_ids, name=texts, protocol=st.sampled_from(["websocket", "sse"]),
          offset=st.integers(0, 10**6), frame_count=st.integers(0, 4))
    def save(self, recording_id: str, name: str, protocol: str, offset: int, frame_count: int) -> str:
        start_time = self._start_time(offset)
        recording = simple_recording(recording_id, name, protocol, BASE_NS, frame_count)
        recording.start_time = start_time
        summary = self.store.save(recording)
        assert summary.id == recording_id
        assert summary.file_size == self._size(recording_id)
        self.model[recording_id] = Expected(name, protocol, start_time, frame_count)
        return recording_id

    @rule(recording_id=saved)
    def soft_delete(self, recording_id: str) -> None:
        if recording_id not in self.model:
            with pytest.raises(StoreError) as failure:
                self.store.soft_delete(recording_id)
            assert isinstance(failure.value, NotFound)
            return
        self.store.soft_delete(recording_id)
        self.model[recording_id] = replace(self.model[recording_id], deleted=True)
        assert self.store.load(recording_id).deleted is True  # can still be fetched by id

    @rule(recording_id=saved)
    def delete_permanently(self, recording_id: str) -> None:
        size = self._size(recording_id) if recording_id in self.model else 0
        assert self.store.delete_permanently(recording_id) == size
        self.model.pop(recording_id, None)

    @rule()
    def vacuum(self) -> None:
        deleted = [recording_id for recording_id, entry in self.model.items() if entry.deleted]
        freed = sum(self._size(recording_id) for recording_id in deleted)
        assert self.store.vacuum() == (len(deleted), freed)
        for recording_id in deleted:
            del self.model[recording_id]

    @rule()
    def reopen(self) -> None:
        self.store = open_store(self.directory)

    @rule()
    def reopen_without_index(self) -> None:
        keep = set(recording_files(self.directory).values())
        for path in self.directory.iterdir():
            if path not in keep:
                path.unlink()  # whatever index the store keeps: gone
        self.store = open_store(self.directory)

    @rule(recording_id=saved, name=texts)
    def rewrite_outside_then_reopen(self, recording_id: str, name: str) -> None:
        """Another process (the CLI) rewrote a recording: a re-opened store sees the new file."""
        if recording_id not in self.model:
            return
        recording = self.store.load(recording_id)
        recording.name = name + "-renamed"
        path = self.directory / f"{recording_id}.json"
        temporary = self.directory / ".outside.tmp"
        temporary.write_bytes(recording_bytes(recording))
        temporary.chmod(0o600)
        os.replace(temporary, path)
        self.model[recording_id] = replace(self.model[recording_id], name=name + "-renamed")
        self.store = open_store(self.directory)

    @rule(recording_id=foreign_ids,
          content=st.sampled_from([b"", b"garbage", b"{}", b'{"id": 1}', b"[1]", b"\xff\xfe"]))
    def foreign_file_then_reopen(self, recording_id: str, content: bytes) -> None:
        if recording_id in self.foreign:
            return
        path = self.directory / f"{recording_id}.json"
        path.write_bytes(content)
        path.chmod(0o600)
        self.foreign[recording_id] = content
        self.store = open_store(self.directory)

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def listing_agrees(self) -> None:
        live = {recording_id for recording_id, entry in self.model.items() if not entry.deleted}
        listed, total = self.store.summaries(ListQuery())
        assert {summary.id for summary in listed} == live
        assert total == len(live)
        everything, total = self.store.summaries(ListQuery(include_deleted=True, sort_order="asc"))
        assert total == len(self.model)
        assert [summary.id for summary in everything] == sorted(self.model, key=lambda i: self.model[i].start_time)
        for summary in everything:
            expected = self.model[summary.id]
            assert (summary.name, summary.protocol, summary.start_time, summary.frame_count, summary.deleted) == (
                expected.name, expected.protocol, expected.start_time, expected.frame_count, expected.deleted)
            assert summary.path.startswith(f"/{expected.protocol}/")
            assert summary.file_size == self._size(summary.id)
        by_size, _ = self.store.summaries(ListQuery(include_deleted=True, sort_by="size", sort_order="desc"))
        sizes = [summary.file_size for summary in by_size]
        assert sizes == sorted(sizes, reverse=True)
        page, total = self.store.summaries(ListQuery(include_deleted=True, sort_order="asc", limit=2, offset=1))
        assert total == len(self.model)
        assert [summary.id for summary in page] == [summary.id for summary in everything][1:3]

    @invariant()
    def stats_agree(self) -> None:
        stats = self.store.stats()
        live = {i: entry for i, entry in self.model.items() if not entry.deleted}
        deleted = [i for i, entry in self.model.items() if entry.deleted]
        assert stats.used_bytes == sum(self._size(i) for i in self.model)
        assert stats.recording_count == len(live)
        assert stats.websocket_count == sum(entry.protocol == "websocket" for entry in live.values())
        assert stats.sse_count == sum(entry.protocol == "sse" for entry in live.values())
        assert stats.deleted_count == len(deleted)
        assert stats.deleted_bytes == sum(self._size(i) for i in deleted)
        assert stats.max_bytes == MAX_BYTES
        if live:
            oldest = min(live, key=lambda i: live[i].start_time)
            newest = max(live, key=lambda i: live[i].start_time)
            assert (stats.oldest_recording, stats.oldest_date) == (oldest, live[oldest].start_time)
            assert (stats.newest_recording, stats.newest_date) == (newest, live[newest].start_time)
        else:
            assert stats.oldest_recording is None and b"oldestRecording" not in msgspec.json.encode(stats)

    @invariant()
    def disk_agrees(self) -> None:
        on_disk = recording_files(self.directory)
        assert set(on_disk) == set(self.model) | set(self.foreign)
        for recording_id, content in self.foreign.items():
            assert on_disk[recording_id].read_bytes() == content  # skipped, never deleted or rewritten
        for recording_id, expected in self.model.items():
            raw = on_disk[recording_id].read_bytes()
            document = json.loads(raw)
            assert document["stats"]["fileSizeBytes"] == len(raw)
            assert document["id"] == recording_id
            assert document.get("deleted", False) is expected.deleted
            assert ("deletedAt" in document) is expected.deleted
        assert mode(self.directory) == 0o700
        for path in self.directory.iterdir():
            if path.name[:26] not in self.foreign:
                assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
        assert not [path.name for path in self.directory.iterdir() if path.name.endswith(".tmp")]
        assert self.outside.read_bytes() == self.outside_bytes

    @invariant()
    def ids_resolve(self) -> None:
        for recording_id in self.model:
            assert self.store.resolve(recording_id) == recording_id
            assert self.store.resolve(recording_id.lower()) == recording_id
        for recording_id in self.foreign:
            with pytest.raises(StoreError) as failure:
                self.store.resolve(recording_id)
            assert isinstance(failure.value, NotFound)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- resolve ----------------------------------------------------------------------------------------

SMALL = "01AZ"  # a tiny alphabet, so that ids share long prefixes


class FileAccess:
    """Every path the process opens, lists, stats, removes or renames while ``active``."""

    EVENTS: ClassVar[set[str]] = {"open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "os.rmdir",
                                  "os.chmod", "os.truncate", "os.utime", "shutil.rmtree", "os.link", "os.symlink"}

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event in self.EVENTS and args and isinstance(args[0], str | bytes | os.PathLike):
            self.paths.append(os.fsdecode(args[0]))

    def outside(self, directory: Path) -> list[str]:
        root = os.path.realpath(directory)
        return [path for path in self.paths if os.path.commonpath([root, os.path.realpath(path)]) != root]

    def run(self, operation: Any) -> Any:
        """``operation()`` with its file access recorded; a StoreError is returned, not raised."""
        self.active = True
        try:
            return operation()
        except StoreError as error:
            return error
        finally:
            self.active = False


ACCESS = FileAccess()


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileAccess]:
    """File access recorded (``os.stat``/``os.lstat`` too, which raise no audit event)."""
    original_stat, original_lstat = os.stat, os.lstat

    def recording_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if ACCESS.active and isinstance(path, str | bytes | os.PathLike):
            ACCESS.paths.append(os.fsdecode(path))
        return original_stat(path, *args, **kwargs)

    def recording_lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if ACCESS.active and isinstance(path, str | bytes | os.PathLike):
            ACCESS.paths.append(os.fsdecode(path))
        return original_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", recording_stat)
    monkeypatch.setattr(os, "lstat", recording_lstat)
    ACCESS.paths.clear()
    try:
        yield ACCESS
    finally:
        ACCESS.active = False


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=SMALL, min_size=26, max_size=26), min_size=1, max_size=8, unique=True),
       st.data())
def test_resolve_prefixes(tmp_path_factory: pytest.TempPathFactory, stored: list[str], data: st.DataObject) -> None:
    store = open_store(tmp_path_factory.mktemp("resolve") / "recordings")
    live = data.draw(st.lists(st.text(alphabet=SMALL, min_size=26, max_size=26).filter(lambda i: i not in stored),
                              max_size=2, unique=True), "live sessions")
    for recording_id in stored:
        store.save(simple_recording(recording_id))
    everything = sorted({*stored, *live})
    for _ in range(10):
        source = data.draw(st.sampled_from(everything), "id")
        prefix = source[:data.draw(st.integers(1, 26), "length")]
        prefix = prefix.lower() if data.draw(st.booleans(), "lower") else prefix
        candidates = [i for i in everything if i.startswith(prefix.upper())]
        if len(candidates) == 1:
            assert store.resolve(prefix, extra=live) == source
        else:
            with pytest.raises(StoreError) as failure:
                store.resolve(prefix, extra=live)
            assert isinstance(failure.value, AmbiguousId) and failure.value.code == "ambiguous_id"
            assert failure.value.extra["candidates"] == candidates
    unknown = data.draw(st.text(alphabet=CROCKFORD, min_size=1, max_size=26), "unknown")
    assume(not any(i.startswith(unknown) for i in everything))
    with pytest.raises(StoreError) as failure:
        store.resolve(unknown, extra=live)
    assert isinstance(failure.value, NotFound) and failure.value.code == "not_found"


HOSTILE = ["../../etc/passwd", "..", ".", "/", "/etc/passwd", "%2e%2e", "%2e%2e%2fetc%2fpasswd", "..%2f..%2f",
           "....//....//etc/passwd", "\\..\\..\\windows", "01ARZ3NDEKTSV4RRFFQ69G5FAV/../../x",
           "01ARZ3NDEKTSV4RRFFQ69G5FAV.json", "../" + "7" * 26, "7" * 26 + "\x00", "\x00", "", " ", "a" * 10_000,
           "0" * 27, "01ARZ3NDEKTSV4RRFFQ69G5FA!", "~", "$HOME", "*", "0*", "0?", "[0-9]",
           "01ARZ3NDEKTSV4RRFFQ69G5FA\n", "ÖÄ", "０１"]


def hostile_operations(store: Store, reference: str) -> list[tuple[str, Any]]:
    return [("resolve", lambda: store.resolve(reference)), ("path_of", lambda: store.path_of(reference)),
            ("journal_path", lambda: store.journal_path(reference)),
            ("read_bytes", lambda: store.read_bytes(reference)),
            ("load", lambda: store.load(reference)), ("soft_delete", lambda: store.soft_delete(reference)),
            ("delete_permanently", lambda: store.delete_permanently(reference))]


def check_hostile(tmp_path: Path, watched: FileAccess, reference: str) -> None:
    directory = tmp_path / "recordings"
    store = open_store(directory)
    store.save(simple_recording("01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    secret = tmp_path / f"{'7' * 26}.json"
    if not secret.exists():
        secret.write_bytes(recording_bytes(simple_recording("7" * 26)))
    watched.paths.clear()
    for name, operation in hostile_operations(store, reference):
        failure = watched.run(operation)
        assert isinstance(failure, StoreError), f"{name}({reference[:30]!r}) returned {failure!r}"
        assert isinstance(failure, (InvalidId, NotFound)), f"{name}({reference[:30]!r}) -> {failure!r}"
        assert failure.code in ("invalid_id", "not_found")
        assert len(failure.message) < 200  # a 10 kB id is not echoed back whole
    assert watched.outside(directory) == [], f"touched outside the data directory: {watched.outside(directory)}"
    assert secret.exists()


@pytest.mark.parametrize("reference", HOSTILE, ids=[repr(item)[:30] for item in HOSTILE])
def test_hostile_ids_are_rejected_without_leaving_the_directory(tmp_path: Path, watched: FileAccess,
                                                               reference: str) -> None:
    check_hostile(tmp_path, watched, reference)


def is_plausible_prefix(text: str) -> bool:
    return 1 <= len(text) <= 26 and all(char.upper() in CROCKFORD for char in text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_random_references_never_leave_the_directory(tmp_path: Path, watched: FileAccess, reference: str) -> None:
    assume(not is_plausible_prefix(reference))
    check_hostile(tmp_path, watched, reference)


def test_unknown_valid_id_is_404_and_only_looks_inside(tmp_path: Path, watched: FileAccess) -> None:
    store = open_store(tmp_path / "recordings")
    for name, operation in hostile_operations(store, "7" * 26):
        result = watched.run(operation)
        if name in ("path_of", "journal_path"):
            assert result.parent == tmp_path / "recordings"
        elif name == "delete_permanently":
            assert result == 0
        else:
            assert isinstance(result, StoreError), f"{name} returned {result!r}"
            assert isinstance(result, NotFound) and result.code == "not_found"
    assert watched.outside(tmp_path / "recordings") == []


# --- the file format ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(recordings())
def test_recording_bytes_round_trip(recording: Recording) -> None:
    raw = recording_bytes(recording)
    assert recording.stats.file_size_bytes == len(raw)
    document = json.loads(raw)
    assert document["stats"]["fileSizeBytes"] == len(raw)
    assert set(SEED_KEYS) <= set(document)
    assert {"path", "headers", "query", "source"} <= set(document["metadata"])
    assert {"frameCount", "bytesSent", "bytesReceived", "fileSizeBytes"} <= set(document["stats"])
    section = document[recording.protocol]
    assert ("frames" if recording.protocol == "websocket" else "events") in section
    assert decode_recording(raw) == recording
    assert recording_bytes(decode_recording(raw)) == raw  # stable


def test_empty_lists_are_written_as_empty_lists() -> None:
    for protocol, key in (("websocket", "frames"), ("sse", "events")):
        raw = recording_bytes(simple_recording("01ARZ3NDEKTSV4RRFFQ69G5FAV", protocol=protocol, frame_count=0))
        document = json.loads(raw)
        assert document[protocol][key] == []
        assert document["metadata"]["headers"] == {} and document["metadata"]["query"] == {}


GO_TIME = "2024-01-15T10:30:00.123456789Z"
GO_WEBSOCKET: dict[str, Any] = {
    "id": "01HXYZ123456789ABCDEFGHJKM", "version": "1.0", "protocol": "websocket", "name": "chat",
    "updatedAt": "2024-01-15T10:30:12Z", "syncStatus": "local", "status": "complete",
    "startTime": "2024-01-15T10:30:00.000000001+01:00", "endTime": "2024-01-15T10:30:12Z", "duration": 12345,
    "metadata": {"method": "GET", "path": "/ws/chat", "host": "localhost:4280", "headers": {"Origin": "x"},
                 "queryParams": {"room": "general"}, "source": "proxy", "subprotocol": "chat.v1"},
    "websocket": {"connectedAt": GO_TIME, "closeCode": 1000, "closeReason": "bye", "frames": [
        {"seq": 1, "ts": GO_TIME, "rel": 100, "dir": "s2c", "type": "text", "data": "{\"type\":\"welcome\"}",
         "encoding": "utf8", "size": 18},
        {"seq": 2, "ts": GO_TIME, "rel": 250, "dir": "c2s", "type": "binary", "data": "AAH+/w==", "encoding": "base64",
         "size": 4},
        {"seq": 3, "ts": GO_TIME, "rel": 300, "dir": "s2c", "type": "close", "data": "bye", "encoding": "utf8",
         "size": 3, "closeCode": 1000, "closeReason": "bye"}]},
    "stats": {"frameCount": 3, "bytesSent": 21, "bytesReceived": 4, "fileSizeBytes": 0, "textFrames": 1,
              "binaryFrames": 1, "pingPongs": 0},
}
GO_SSE: dict[str, Any] = {
    "id": "01HXYZ789012ABCDEFGHJKMNPQ", "version": "1.0", "protocol": "sse", "name": "events",
    "updatedAt": "2024-01-15T10:30:12Z", "syncStatus": "local", "status": "complete", "startTime": GO_TIME,
    "metadata": {"method": "GET", "path": "/events", "source": "proxy"},
    "sse": {"responseStatus": 200, "responseHeaders": {"Content-Type": "text/event-stream"},
            "streamStartedAt": GO_TIME, "events": [
                {"seq": 1, "ts": GO_TIME, "rel": 0, "event": "update", "data": "Hello world", "id": "evt-001",
                 "size": 11},
                {"seq": 2, "ts": GO_TIME, "rel": 50, "data": "second", "retry": 3000, "size": 6}]},
    "stats": {"frameCount": 2, "bytesSent": 17, "bytesReceived": 0, "fileSizeBytes": 0, "eventCount": 2},
}
GO_BINARY_ONLY: dict[str, Any] = {**GO_WEBSOCKET, "websocket": {**GO_WEBSOCKET["websocket"],
                                                                "frames": GO_WEBSOCKET["websocket"]["frames"][1:2]}}


@pytest.mark.parametrize("document", [GO_WEBSOCKET, GO_BINARY_ONLY, GO_SSE], ids=["websocket", "binary-only", "sse"])
def test_go_layout_imports_and_is_written_back_in_ours(document: dict[str, Any]) -> None:
    recording = decode_recording(json.dumps(document).encode())
    assert recording.id == document["id"]
    assert recording.metadata.path == document["metadata"]["path"]
    foreign = document[recording.protocol]["frames" if recording.protocol == "websocket" else "events"]
    entries = recording.entries()
    assert len(entries) == len(foreign)
    for entry, original in zip(entries, foreign, strict=True):
        assert entry.timestamp == original["ts"]
        assert entry.relative_ms == original["rel"]
        assert entry.data == original["data"]
        if isinstance(entry, Frame):
            assert (entry.direction, entry.type, entry.size) == (original["dir"], original["type"], original["size"])
            assert (entry.encoding == "base64") is (original["encoding"] == "base64")
        elif "event" in original:
            assert entry.type == original["event"]
        else:
            assert entry.type in ("message", UNSET)  # a block without an ``event:`` line
    raw = recording_bytes(recording)
    written = json.loads(raw)
    assert written["stats"]["fileSizeBytes"] == len(raw)
    for item in written[recording.protocol]["frames" if recording.protocol == "websocket" else "events"]:
        assert not {"dir", "ts", "rel", "event", "seq"} & set(item)
        assert {"timestamp", "relativeMs"} <= set(item)
    assert decode_recording(raw) == recording


def test_store_lists_an_imported_go_file(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    directory.mkdir(mode=0o700)
    (directory / f"{GO_SSE['id']}.json").write_text(json.dumps(GO_SSE))
    store = open_store(directory)
    listed, total = store.summaries(ListQuery())
    assert total == 1 and listed[0].id == GO_SSE["id"] and listed[0].protocol == "sse"
    assert len(store.load(GO_SSE["id"]).entries()) == 2


# --- journals -------------------------------------------------------------------------------------

JOURNAL_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def write_journal(path: Path, entries: list[Frame]) -> None:
    header = JournalHeader(id=JOURNAL_ID, name="torn", protocol="websocket", path="/ws/*", start_ns=BASE_NS)
    writer = JournalWriter(path, header)
    writer.opened(JournalOpen(record=ConnectionRecord(connection=1, opened_at=rfc3339(BASE_NS), relative_ms=0,
                                                      origin="mock", headers={"Host": "h"}),
                              method="GET", host="127.0.0.1"))
    writer.flush()
    for entry in entries:
        writer.entries([entry])
        writer.flush()
    writer.close()


def numbered_frames(count: int) -> list[Frame]:
    return [Frame(direction="c2s" if n % 2 else "s2c", type="text", data=f"message {n} ünïcödé \"q\"",
                  timestamp=rfc3339(BASE_NS + n * 1_000_000), relative_ms=n,
                  size=len(f"message {n} ünïcödé \"q\"".encode()))
            for n in range(count)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 8), cut=st.floats(0, 1, exclude_max=True))
def test_torn_last_line_is_dropped_and_only_it(tmp_path_factory: pytest.TempPathFactory, count: int,
                                               cut: float) -> None:
    path = tmp_path_factory.mktemp("journal") / f"{JOURNAL_ID}.journal"
    entries = numbered_frames(count)
    write_journal(path, entries)
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    last_start = raw.rindex(b"\n", 0, len(raw) - 1) + 1
    keep = last_start + int(cut * (len(raw) - last_start))  # from the line's start up to just before its newline
    assert last_start <= keep < len(raw)
    with open(path, "r+b") as handle:
        handle.truncate(keep)

    head, lines, frame_count, size = assemble(path, "incomplete", "crash")
    kept = list(lines)
    assert frame_count == count - 1 == len(kept)
    assert [msgspec.json.decode(line, type=Frame) for line in kept] == entries[:-1]
    assert size == sum(map(len, kept))
    assert head.stats.frame_count == count - 1
    assert head.stats.bytes_sent == sum(f.size for f in entries[:-1] if f.direction == "s2c")
    assert head.stats.bytes_received == sum(f.size for f in entries[:-1] if f.direction == "c2s")
    assert head.status == "incomplete" and head.stop_reason == "crash"
    assert [connection.connection for connection in head.connections] == [1]

    head, lines, frame_count, size = assemble(path, "incomplete", "crash")
    raw_file = b"".join(encode_recording(head, lines, frame_count, size))
    document = json.loads(raw_file)
    assert document["stats"]["fileSizeBytes"] == len(raw_file)
    assert [frame["data"] for frame in document["websocket"]["frames"]] == [f.data for f in entries[:-1]]


def test_a_journal_left_by_an_older_mockd_recovers_with_every_frame(tmp_path: Path) -> None:
    """Before 2026-11-25 entry lines were ``F`` + JSON; a crash may leave such a journal behind an upgrade."""
    current, legacy = tmp_path / "current.journal", tmp_path / f"{JOURNAL_ID}.journal"
    entries = numbered_frames(4)
    write_journal(current, entries)
    legacy.write_bytes(b"".join(b"F" + line if line.startswith(b"{") else line
                                for line in current.read_bytes().splitlines(keepends=True)))
    assert legacy.read_bytes().count(b"\nF{") == 4

    new_head, new_lines, new_count, new_size = assemble(current, "incomplete", "crash")
    head, lines, count, size = assemble(legacy, "incomplete", "crash")
    assert (head.stats, count, size) == (new_head.stats, new_count, new_size)
    assert list(lines) == list(new_lines)
    assert [msgspec.json.decode(line, type=Frame) for line in assemble(legacy, "incomplete", "crash")[1]] == entries


def test_store_recovers_a_torn_journal(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    store = open_store(directory)
    journal = store.journal_path(JOURNAL_ID)
    entries = numbered_frames(5)
    write_journal(journal, entries)
    with open(journal, "r+b") as handle:
        handle.truncate(journal.stat().st_size - 7)

    assert store.recover_journals() == [JOURNAL_ID]
    assert not journal.exists()
    path = directory / f"{JOURNAL_ID}.json"
    raw = path.read_bytes()
    document = json.loads(raw)
    assert (document["status"], document["stopReason"]) == ("incomplete", "crash")
    assert document["stats"]["fileSizeBytes"] == len(raw)
    assert [frame["data"] for frame in document["websocket"]["frames"]] == [f.data for f in entries[:4]]
    assert mode(path) == 0o600
    listed, total = open_store(directory).summaries(ListQuery())
    assert total == 1 and listed[0].status == "incomplete" and listed[0].frame_count == 4
    assert store.recover_journals() == []  # nothing left to recover
