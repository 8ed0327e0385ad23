"""The recordings directory: one ``<id>.json`` per recording, atomic writes, a summary index so listing
never parses every file, soft delete, vacuum, stats, the quota, and recovery of orphaned journals.

Used by the server and, when no server answers, directly by the CLI.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from mockd.recording import journal
from mockd.recording.format import (Recording, StorageStats, Summary, decode_recording, decode_summary, encode_entry,
                                    encode_recording, head_bytes, is_foreign, is_foreign_entry, recording_bytes,
                                    rfc3339, summarize, without_entries)
from mockd.recording.index import (INDEX_SUFFIX, FileIndex, Filter, IndexBuilder, IndexError_, MemoryEntries, Page,
                                   describes, each_entry, entry_key, open_index, page, protocol_of, read_header, scan)
from mockd.recording.reader import RecordingReader
from mockd.support.files import write_atomically

log = logging.getLogger("mockd.recording")

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
ID_PREFIX = re.compile(r"[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{1,26}")
INDEX_NAME = ".index.json"
SORT_KEYS = {"startTime": lambda s: s.start_time, "name": lambda s: s.name.lower(), "size": lambda s: s.file_size}


class StoreError(Exception):
    """A recording-store failure: ``code`` names it (the admin API answers with it, mapping each kind to
    its HTTP status in one place), ``message`` says it in one sentence, ``extra`` adds facts."""

    code = "store_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


class InvalidId(StoreError):
    """A reference that cannot be a recording id (too long, not a ULID where a whole id is needed)."""

    code = "invalid_id"


class NotFound(StoreError):
    code = "not_found"


class AmbiguousId(StoreError):
    """A prefix more than one recording starts with (``candidates``)."""

    code = "ambiguous_id"


class UnreadableRecording(StoreError):
    """A recording whose file no longer parses (changed outside mockd)."""

    code = "unreadable_recording"


class InvalidSort(StoreError):
    code = "invalid_sort"


class StorageFull(StoreError):
    """The quota is used up: no session may start."""

    code = "storage_full"


class _IndexEntry(msgspec.Struct, rename="camel"):
    size: int
    mtime_ns: int
    summary: Summary
    native: bool | None = None  # in our layout (served from disk as it is); None: not known (an older index)


class _Index(msgspec.Struct):
    version: int = 1
    entries: dict[str, _IndexEntry] = {}


@dataclass
class ListQuery:
    protocol: str | None = None
    path: str | None = None
    status: str | None = None
    name: str | None = None
    include_deleted: bool = False
    sort_by: str = "startTime"
    sort_order: str = "desc"
    limit: int | None = None
    offset: int = 0


class Store:
    def __init__(self, directory: Path, max_bytes: int, warn_percent: float) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.warn_percent = warn_percent
        self._entries: dict[str, _IndexEntry] = {}  # changed through _put and _drop only (they keep _used)
        self._used = 0  # the sum of the entries' sizes: asked at every recording flush, 10 times a second
        # Recordings are finished in a worker thread while the API reads and changes the index.
        self._lock = threading.RLock()
        self._indexing = threading.Lock()  # one frame index built at a time

    # --- opening --------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory (0700), load the index and bring it up to date with the files."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        known = self._read_index()
        changed = False
        present: dict[str, _IndexEntry] = {}
        for path in self.directory.glob("*.json"):
            if not ULID.fullmatch(path.stem):
                continue
            try:
                info = path.stat()
            except OSError:
                continue
            cached = known.get(path.stem)
            if cached is not None and cached.size == info.st_size and cached.mtime_ns == info.st_mtime_ns:
                present[path.stem] = cached
                continue
            entry = self._entry_for(path)
            changed = True
            if entry is not None:
                present[path.stem] = entry
        with self._lock:
            self._entries, self._used = present, sum(entry.size for entry in present.values())
        if changed or set(known) != set(present):
            self._write_index()
        for path in self.directory.glob(f"*{INDEX_SUFFIX}"):
            if path.name[:-len(INDEX_SUFFIX)] not in present:  # its recording was removed by hand
                path.unlink(missing_ok=True)

    def _read_index(self) -> dict[str, _IndexEntry]:
        try:
            return msgspec.json.decode((self.directory / INDEX_NAME).read_bytes(), type=_Index).entries
        except (OSError, msgspec.DecodeError, RecursionError):
            return {}

    def _write_index(self) -> None:
        with self._lock:
            encoded = msgspec.json.encode(_Index(entries=self._entries))
            write_atomically(self.directory / INDEX_NAME, [encoded])

    def _entry_for(self, path: Path) -> _IndexEntry | None:
        """Summarize a file; one that does not parse is skipped with a warning, never deleted. A file in
        our layout is read through its frame index (built now if missing), so only its head is held."""
        try:
            info = path.stat()
            head = self._indexed_head(path)
            if head is None:
                raw = path.read_bytes()
                summary, native = decode_summary(raw), not is_foreign(raw)
            else:
                summary, native = decode_summary(head, info.st_size), True
        except (OSError, msgspec.DecodeError, RecursionError) as exc:  # a file nested too deep is not ours
            log.warning("skipping %s: not a readable recording (%s)", path.name, exc)
            return None
        if summary.id != path.stem:
            log.warning("skipping %s: its id is %r", path.name, summary.id)
            return None
        return _IndexEntry(size=info.st_size, mtime_ns=info.st_mtime_ns, summary=summary, native=native)

    def _indexed_head(self, path: Path) -> bytes | None:
        """The file without its entries, through its frame index (written first when there is none);
        None when the file is not laid out as mockd writes it (another layout, pretty-printed)."""
        index_path = path.with_suffix(INDEX_SUFFIX)
        if not describes(read_header(index_path), path):
            try:
                builder, entries_start = scan(path, protocol_of(path))
            except (IndexError_, ValueError):
                return None
            if builder.first_entry is not None and is_foreign_entry(builder.first_entry):
                return None
            builder.write(index_path, path, entries_start)
        try:
            with open_index(index_path, path) as index:
                return index.head()
        except FileNotFoundError:
            return None

    # --- ids ------------------------------------------------------------------------------------

    def resolve(self, reference: str, extra: Iterable[str] = ()) -> str:
        """The full id for an id or a unique prefix of one (``extra``: ids of live sessions too)."""
        if not ID_PREFIX.fullmatch(reference):
            kind = InvalidId if len(reference) > 26 or not reference else NotFound
            raise kind(f"{reference[:40]!r} is not a recording id")
        wanted = reference.upper()
        candidates = sorted({*(i for i in self._entries if i.startswith(wanted)),
                             *(i for i in extra if i.startswith(wanted))})
        if not candidates:
            raise NotFound(f"No stream recording with id {reference!r}")
        if len(candidates) > 1:
            raise AmbiguousId(f"{reference!r} matches {len(candidates)} recordings; give more characters",
                              candidates=candidates)
        return candidates[0]

    def path_of(self, recording_id: str) -> Path:
        if not ULID.fullmatch(recording_id):
            raise InvalidId(f"{recording_id[:40]!r} is not a recording id")
        return self.directory / f"{recording_id}.json"

    def index_path(self, recording_id: str) -> Path:
        self.path_of(recording_id)  # validates
        return self.directory / f"{recording_id}{INDEX_SUFFIX}"

    def journal_path(self, recording_id: str) -> Path:
        self.path_of(recording_id)  # validates
        return self.directory / f"{recording_id}{journal.JOURNAL_SUFFIX}"

    # --- reading --------------------------------------------------------------------------------

    def summary(self, recording_id: str) -> Summary:
        return self._entries[recording_id].summary

    def read_bytes(self, recording_id: str) -> bytes:
        """The file's bytes; a file in the Go mockd's layout comes back in ours (import)."""
        entry = self._checked(recording_id)
        try:
            raw = self.path_of(recording_id).read_bytes()
        except FileNotFoundError:
            raise _not_found(recording_id) from None
        return raw if entry.native else recording_bytes(decode_recording(raw))

    def file_to_send(self, recording_id: str) -> Path | None:
        """The file itself when it can be sent as it is (our layout), so a recording of any size leaves
        in chunks from disk; None when it must be read (and converted)."""
        return self.path_of(recording_id) if self._checked(recording_id).native else None

    def _checked(self, recording_id: str) -> _IndexEntry:
        """The recording's summary entry, brought up to date first when its file changed behind the
        index (restored from a backup, edited by hand); StoreError when the file is gone or unreadable."""
        path = self.path_of(recording_id)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise _not_found(recording_id) from None
        entry = self._entries.get(recording_id)
        if entry is not None and (entry.size, entry.mtime_ns) == (info.st_size, info.st_mtime_ns):
            return entry
        fresh = self._entry_for(path)  # warns when it cannot be read
        if fresh is None:
            raise UnreadableRecording(f"The file of recording {recording_id} is not a readable recording any more "
                                      "(changed outside mockd?); see the server's log")
        with self._lock:
            self._put(recording_id, fresh)
            self._write_index()
        return fresh

    def load(self, recording_id: str) -> Recording:
        return decode_recording(self.read_bytes(recording_id))

    @contextmanager
    def entries(self, recording_id: str) -> Iterator[FileIndex | MemoryEntries]:
        """The recording's frames, events or exchanges, read through its frame index (built first when
        missing or out of date). A file the index cannot describe (another layout, pretty-printed by
        hand) is read whole."""
        path, index_path = self.path_of(recording_id), self.index_path(recording_id)
        entry = self._checked(recording_id)
        if entry.native and (describes(read_header(index_path), path) or self._build_index(recording_id)):
            with ExitStack() as stack:
                try:
                    index = stack.enter_context(open_index(index_path, path))
                except FileNotFoundError:  # replaced or deleted meanwhile
                    raise _not_found(recording_id) from None
                yield index
            return
        recording = self.load(recording_id)
        yield MemoryEntries([encode_entry(item) for item in recording.entries()],
                            head_bytes(without_entries(recording)))

    @contextmanager
    def reader(self, recording_id: str) -> Iterator[RecordingReader]:
        """The recording for the converter and the replayer: its head, its entries read as needed."""
        with self.entries(recording_id) as entries:
            yield RecordingReader.over(entries, entries.head())

    def _build_index(self, recording_id: str) -> bool:
        """Scan the file and write its frame index; False when it is not laid out as mockd writes it."""
        path, index_path = self.path_of(recording_id), self.index_path(recording_id)
        with self._indexing:
            if describes(read_header(index_path), path):
                return True  # built by another request meanwhile
            started = time.perf_counter()
            try:
                builder, entries_start = scan(path, self.summary(recording_id).protocol)
                builder.write(index_path, path, entries_start)
            except (IndexError_, msgspec.DecodeError) as exc:
                log.warning("recording %s has no frame index, so it is read whole: %s", recording_id, exc)
                return False
            except FileNotFoundError:
                raise _not_found(recording_id) from None
        log.info("built the frame index of recording %s (%d entries, %.1f s)", recording_id,
                 len(builder.starts), time.perf_counter() - started)
        return True

    def head(self, recording_id: str) -> Recording:
        """The recording without its frames, events or exchanges: what it is, its connections, its stats."""
        with self.entries(recording_id) as entries:
            return decode_recording(entries.head())

    def page(self, recording_id: str, where: Filter, offset: int, limit: int) -> Page:
        with self.entries(recording_id) as entries:
            return page(entries, where, offset, limit)

    def summaries(self, query: ListQuery) -> tuple[list[Summary], int]:
        if query.sort_by not in SORT_KEYS:
            raise InvalidSort(f"sortBy must be one of {', '.join(SORT_KEYS)}")
        summaries = [entry.summary for entry in self._snapshot()
                     if (query.include_deleted or not entry.summary.deleted)
                     and (query.protocol is None or entry.summary.protocol == query.protocol)
                     and (query.status is None or entry.summary.status == query.status)
                     and (query.path is None or entry.summary.path.startswith(query.path))
                     and (query.name is None or query.name.lower() in entry.summary.name.lower())]
        summaries.sort(key=SORT_KEYS[query.sort_by], reverse=query.sort_order == "desc")
        end = None if query.limit is None else query.offset + query.limit
        return summaries[query.offset:end], len(summaries)

    # --- writing --------------------------------------------------------------------------------

    def save(self, recording: Recording) -> Summary:
        """Write a recording held in memory (an import) with its frame index."""
        entries = [encode_entry(item) for item in recording.entries()]
        head = without_entries(recording)
        path = self._write(recording.id, head, entries, len(entries), sum(map(len, entries)))
        recording.stats.file_size_bytes = head.stats.file_size_bytes
        return self._written(recording.id, path, summarize(head))

    def finish_journal(self, recording_id: str, status: str, stop_reason: str, end_ns: int | None = None) -> Summary:
        """Turn a session's journal into its recording file, streaming the frames, then drop the journal."""
        source = self.journal_path(recording_id)
        index = IndexBuilder()
        head, entries, count, size = journal.assemble(source, status, stop_reason, end_ns, index)  # type: ignore[arg-type]
        path = self._write(recording_id, head, entries, count, size, index)
        source.unlink()
        return self._written(recording_id, path, summarize(head))

    def _write(self, recording_id: str, head: Recording, entries: Iterable[bytes], count: int, size: int,
               index: IndexBuilder | None = None) -> Path:
        """Write the recording file from its head and encoded entries, streaming them, and its frame
        index beside it (``index`` is filled as the entries go past; without one they are keyed here)."""
        if index is None:
            index = IndexBuilder()
            entries = _keyed(entries, index)
        pieces = encode_recording(head, entries, count, size)
        start = next(pieces)  # up to the entries' list
        path = write_atomically(self.path_of(recording_id), itertools.chain([start], pieces))
        try:
            index.write(self.index_path(recording_id), path, len(start))
        except OSError as exc:
            log.warning("could not write the frame index of recording %s (%s); it is built when needed",
                        recording_id, exc)
        return path

    def _written(self, recording_id: str, path: Path, summary: Summary) -> Summary:
        info = path.stat()
        summary.file_size = info.st_size
        with self._lock:
            self._put(recording_id, _IndexEntry(size=info.st_size, mtime_ns=info.st_mtime_ns, summary=summary,
                                                native=True))
            self._write_index()
        return summary

    def recover_journals(self, active: Iterable[str] = ()) -> list[str]:
        """Journals no running session owns (a crash): each becomes an ``incomplete`` recording."""
        recovered = []
        busy = set(active)
        for path in self.directory.glob(f"*{journal.JOURNAL_SUFFIX}"):
            recording_id = path.name[:-len(journal.JOURNAL_SUFFIX)]
            if not ULID.fullmatch(recording_id) or recording_id in busy:
                continue
            try:
                self.finish_journal(recording_id, "incomplete", "crash")
            except (OSError, ValueError, msgspec.DecodeError) as exc:
                log.warning("could not recover %s: %s", path.name, exc)
                continue
            log.warning("recovered recording %s from its journal (status incomplete)", recording_id)
            recovered.append(recording_id)
        return recovered

    def soft_delete(self, recording_id: str) -> None:
        """Mark the recording deleted: its file is written again with ``deleted``, its entries copied
        from the old file in pieces."""
        with self.entries(recording_id) as entries:
            head = decode_recording(entries.head())
            if head.deleted is True:
                return
            head.deleted = True
            head.deleted_at = rfc3339(time.time_ns())
            path = self._write(recording_id, head, each_entry(entries, range(entries.count)), entries.count,
                               entries.entries_size)
        self._written(recording_id, path, summarize(head))

    def delete_permanently(self, recording_id: str) -> int:
        path = self.path_of(recording_id)
        size = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
        self.index_path(recording_id).unlink(missing_ok=True)
        with self._lock:
            self._drop(recording_id)
            self._write_index()
        return size

    def vacuum(self, on_removed: Callable[[int, int], None] | None = None) -> tuple[int, int]:
        """Remove the soft-deleted recordings: (how many, bytes freed). ``on_removed(done, total)`` after
        each file (the CLI's progress)."""
        with self._lock:
            return self._vacuum(on_removed)

    def _vacuum(self, on_removed: Callable[[int, int], None] | None) -> tuple[int, int]:
        deleted = [recording_id for recording_id, entry in self._entries.items() if entry.summary.deleted]
        freed = 0
        for done, recording_id in enumerate(deleted, 1):
            path = self.path_of(recording_id)
            freed += path.stat().st_size if path.exists() else 0
            path.unlink(missing_ok=True)
            self.index_path(recording_id).unlink(missing_ok=True)
            self._drop(recording_id)
            if on_removed is not None:
                on_removed(done, len(deleted))
        if deleted:
            self._write_index()
        return len(deleted), freed

    # --- usage ----------------------------------------------------------------------------------

    def _put(self, recording_id: str, entry: _IndexEntry) -> None:
        self._drop(recording_id)
        self._entries[recording_id] = entry
        self._used += entry.size

    def _drop(self, recording_id: str) -> None:
        entry = self._entries.pop(recording_id, None)
        if entry is not None:
            self._used -= entry.size

    def _snapshot(self) -> list[_IndexEntry]:
        with self._lock:
            return list(self._entries.values())

    @property
    def used_bytes(self) -> int:
        return self._used

    def over_warning(self, extra: int = 0) -> str | None:
        used = self.used_bytes + extra
        percent = 100 * used / self.max_bytes
        if percent >= self.warn_percent:
            return (f"Recording storage is {percent:.1f}% full ({used} of {self.max_bytes} bytes; "
                    f"warning at {self.warn_percent:g}%)")
        return None

    def stats(self) -> StorageStats:
        entries = self._snapshot()
        live = [entry for entry in entries if not entry.summary.deleted]
        deleted = [entry for entry in entries if entry.summary.deleted]
        used = self.used_bytes
        result = StorageStats(
            used_bytes=used, max_bytes=self.max_bytes, used_percent=round(100 * used / self.max_bytes, 2),
            warn_percent=self.warn_percent, recording_count=len(live),
            websocket_count=sum(entry.summary.protocol == "websocket" for entry in live),
            sse_count=sum(entry.summary.protocol == "sse" for entry in live),
            http_count=sum(entry.summary.protocol == "http" for entry in live),
            deleted_count=len(deleted), deleted_bytes=sum(entry.size for entry in deleted),
            warning=self.over_warning())
        if live:
            oldest = min(live, key=lambda entry: entry.summary.start_time).summary
            newest = max(live, key=lambda entry: entry.summary.start_time).summary
            result.oldest_recording, result.oldest_date = oldest.id, oldest.start_time
            result.newest_recording, result.newest_date = newest.id, newest.start_time
        return result


def _keyed(entries: Iterable[bytes], index: IndexBuilder) -> Iterator[bytes]:
    for raw in entries:
        index.add(len(raw), entry_key(raw))
        yield raw


def _not_found(recording_id: str) -> NotFound:
    return NotFound(f"No stream recording with id {recording_id!r}")
