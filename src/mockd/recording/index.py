"""The frame index beside a recording (``<id>.index``): where each frame, event or exchange of the file
starts, and which connection, direction and type it has. With it a page of frames, one connection's
frames or the recording without its frames are read from the file without loading the rest.

mockd writes the index when it writes the recording (the entries go past it one by one anyway); a file
without one, or whose index no longer describes it (size or modification time changed), is scanned
once and the index written then. The file's entries are compact JSON objects between the ``[`` and
``]`` of the protocol's list, separated by commas, so an entry's end is the next one's start minus one.

On disk: ``MOCKDIX1``, the header's length (4 bytes, little-endian), the header as JSON, zero bytes to
a multiple of 8, then each entry's start relative to the first (``I`` or ``Q`` array), then the
postings: for each key, in the order the header lists them, the numbers of its entries (``I``).
"""

from __future__ import annotations

import bisect
import heapq
import mmap
import os
import re
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from mockd.support.files import write_atomically

INDEX_SUFFIX = ".index"
MAGIC = b"MOCKDIX1"
VERSION = 1
MAX_KEYS = 4096  # beyond this many (connection, direction, type) keys a filtered page scans the entries
ENTRY_LISTS = {"websocket": b'"frames":[', "sse": b'"events":[', "http": b'"exchanges":['}
LITTLE = sys.byteorder == "little"


class IndexError_(Exception):  # noqa: N801 - not the builtin IndexError
    """The file's entries cannot be found: it is not a recording in mockd's layout."""


class EntryKey(NamedTuple):
    """What a page can be filtered on. ``direction`` is empty for SSE and HTTP, ``type`` for HTTP and
    for an SSE block without ``event:`` or data (a comment)."""

    connection: int
    direction: str
    type: str


class _KeyFields(msgspec.Struct):
    connection: int = 1
    direction: str = ""
    type: str = ""


_key_decoder = msgspec.json.Decoder(_KeyFields)


def entry_key(raw: bytes) -> EntryKey:
    """The key of an entry as it is in the file (msgspec skips the fields it does not need)."""
    fields = _key_decoder.decode(raw)
    return EntryKey(fields.connection, fields.direction, fields.type)


class Posting(msgspec.Struct, array_like=True):
    connection: int
    direction: str
    type: str
    count: int


class IndexHeader(msgspec.Struct, rename="camel"):
    file_size: int
    file_mtime_ns: int
    entries_start: int  # the file's entries occupy [entries_start, entries_end)
    entries_end: int
    count: int
    offsets: str  # the array type of the entry starts: "I" or "Q"
    keys: list[Posting] | None  # None: more than MAX_KEYS, no postings
    types: dict[str, int] | None = None  # how many entries have each type (None: more than MAX_KEYS types)
    version: int = VERSION


_header_decoder = msgspec.json.Decoder(IndexHeader)


class _Postings:
    """The entry numbers of each key, in order, and how many entries have each type; each given up
    (None) past MAX_KEYS keys or types."""

    def __init__(self) -> None:
        self.lists: dict[EntryKey, array[int]] | None = {}
        self.types: dict[str, int] | None = {}

    def add(self, number: int, key: EntryKey) -> None:
        if self.types is not None and key.type:
            if key.type in self.types or len(self.types) < MAX_KEYS:
                self.types[key.type] = self.types.get(key.type, 0) + 1
            else:
                self.types = None
        if self.lists is None:
            return
        numbers = self.lists.get(key)
        if numbers is None:
            if len(self.lists) >= MAX_KEYS:
                self.lists = None
                return
            numbers = self.lists[key] = array("I")
        numbers.append(number)


class IndexBuilder:
    """Collects the entries' lengths and keys in file order (while they are written, or scanned)."""

    def __init__(self) -> None:
        self.starts = array("Q")
        self._keys = _Postings()
        self._position = 0
        self.first_entry: bytes | None = None  # kept by scan(), to tell a file in another layout

    def add(self, length: int, key: EntryKey) -> None:
        self._keys.add(len(self.starts), key)
        self.starts.append(self._position)
        self._position += length + 1  # and the comma

    @property
    def entries_size(self) -> int:
        """The entries' bytes with the commas between them."""
        return max(self._position - 1, 0)

    def write(self, path: Path, recording: Path, entries_start: int) -> None:
        """Write the index of ``recording`` (already in place) to ``path``."""
        info = recording.stat()
        offsets = "I" if self._position < 2**32 else "Q"
        lists = self._keys.lists
        keys = None if lists is None else [Posting(*key, len(numbers)) for key, numbers in lists.items()]
        header = msgspec.json.encode(IndexHeader(
            file_size=info.st_size, file_mtime_ns=info.st_mtime_ns, entries_start=entries_start,
            entries_end=entries_start + self.entries_size, count=len(self.starts), offsets=offsets, keys=keys,
            types=self._keys.types))
        lead = MAGIC + struct.pack("<I", len(header)) + header
        pieces = [lead + b"\0" * (-len(lead) % 8), _little(array(offsets, self.starts))]
        pieces += [_little(numbers) for numbers in (lists or {}).values()]
        write_atomically(path, pieces)


def _little(numbers: array[int]) -> bytes:
    if not LITTLE:
        numbers = array(numbers.typecode, numbers)
        numbers.byteswap()
    return numbers.tobytes()


# --- reading ----------------------------------------------------------------------------------------


class Entries:
    """Where a recording's entries are, and their keys: an index read from disk, a running session's
    journal, or a recording held in memory. ``postings`` is None when there were too many keys."""

    count: int = 0
    postings: Mapping[EntryKey, Sequence[int]] | None = None
    types: dict[str, int] | None = None  # how many entries have each type

    def raw(self, numbers: list[int]) -> list[bytes]:
        raise NotImplementedError

    def size_of(self, number: int) -> int:
        raise NotImplementedError


class _Spans(Entries):
    """Entries at known byte spans of an open file; consecutive ones are read with one call."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def span(self, number: int) -> tuple[int, int]:
        raise NotImplementedError

    def size_of(self, number: int) -> int:
        start, end = self.span(number)
        return end - start

    def raw(self, numbers: list[int]) -> list[bytes]:
        result: list[bytes] = []
        fd = self.handle.fileno()
        run_start = 0
        while run_start < len(numbers):
            run_end = run_start
            while run_end + 1 < len(numbers) and numbers[run_end + 1] == numbers[run_end] + 1:
                run_end += 1
            first, _ = self.span(numbers[run_start])
            _, last = self.span(numbers[run_end])
            block = os.pread(fd, last - first, first)
            for number in numbers[run_start:run_end + 1]:
                start, end = self.span(number)
                result.append(block[start - first:end - first])
            run_start = run_end + 1
        return result


class FileIndex(_Spans):
    """An index mapped from its file, over the recording file ``handle``; valid while the
    ``with open_index(...)`` block runs."""

    def __init__(self, header: IndexHeader, view: memoryview, body: int, handle: BinaryIO) -> None:
        super().__init__(handle)
        self.header = header
        self.count, self.types = header.count, header.types
        width = struct.calcsize(header.offsets)
        self._starts = view[body:body + width * self.count].cast("I" if header.offsets == "I" else "Q")
        self._views: list[memoryview] = [self._starts]
        if header.keys is not None:
            postings: dict[EntryKey, Sequence[int]] = {}
            position = body + width * self.count
            for key in header.keys:
                numbers = view[position:position + 4 * key.count].cast("I")
                self._views.append(numbers)
                postings[EntryKey(key.connection, key.direction, key.type)] = numbers
                position += 4 * key.count
            self.postings = postings

    def span(self, number: int) -> tuple[int, int]:
        start = self.header.entries_start + self._starts[number]
        end = (self.header.entries_start + self._starts[number + 1] - 1 if number + 1 < self.count
               else self.header.entries_end)
        return start, end

    @property
    def entries_size(self) -> int:
        """The entries' bytes, without the commas between them."""
        return self.header.entries_end - self.header.entries_start - max(self.count - 1, 0)

    def head(self) -> bytes:
        """The recording without its entries (its list left empty): metadata, connections, stats."""
        fd = self.handle.fileno()
        tail = os.fstat(fd).st_size - self.header.entries_end
        return (os.pread(fd, self.header.entries_start, 0)
                + os.pread(fd, tail, self.header.entries_end))

    def release(self) -> None:
        for view in self._views:
            view.release()


class JournalEntries(_Spans):
    """A running session's entries: the entry lines of its journal, indexed as far as read so far
    (:meth:`update` reads what was appended since)."""

    def __init__(self, handle: BinaryIO) -> None:
        super().__init__(handle)
        self.starts, self.ends = array("Q"), array("Q")
        self._keys = _Postings()
        self._read = 0

    def update(self) -> None:
        self.handle.seek(self._read)
        position = self._read
        for line in self.handle:
            if not line.endswith(b"\n"):
                break  # being written: read next time
            if line[:1] == b"{":
                try:
                    key = entry_key(line)
                except msgspec.DecodeError:
                    key = None
                if key is not None:
                    self._keys.add(len(self.starts), key)
                    self.starts.append(position)
                    self.ends.append(position + len(line) - 1)
            position += len(line)
        self._read = position
        self.count = len(self.starts)
        self.postings, self.types = self._keys.lists, self._keys.types

    def span(self, number: int) -> tuple[int, int]:
        return self.starts[number], self.ends[number]


class MemoryEntries(Entries):
    """The entries of a recording held in memory (a file in another layout, read whole)."""

    def __init__(self, encoded: list[bytes], head: bytes) -> None:
        self._encoded = encoded
        self._head = head
        self.count = len(encoded)
        keys = _Postings()
        for number, raw in enumerate(encoded):
            keys.add(number, entry_key(raw))
        self.postings, self.types = keys.lists, keys.types

    def raw(self, numbers: list[int]) -> list[bytes]:
        return [self._encoded[number] for number in numbers]

    def size_of(self, number: int) -> int:
        return len(self._encoded[number])

    def head(self) -> bytes:
        return self._head

    @property
    def entries_size(self) -> int:
        return sum(map(len, self._encoded))


def read_header(path: Path) -> IndexHeader | None:
    """The index's header, or None when there is no readable index of this version."""
    try:
        with open(path, "rb") as handle:
            lead = handle.read(12)
            if len(lead) < 12 or lead[:8] != MAGIC:
                return None
            header = _header_decoder.decode(handle.read(struct.unpack("<I", lead[8:])[0]))
    except (OSError, msgspec.DecodeError):
        return None
    return header if header.version == VERSION else None


def describes(header: IndexHeader | None, recording: Path) -> bool:
    """Whether the index was made of the recording file as it is now."""
    try:
        info = recording.stat()
    except OSError:
        return False
    return header is not None and (header.file_size, header.file_mtime_ns) == (info.st_size, info.st_mtime_ns)


@contextmanager
def open_index(path: Path, recording: Path) -> Iterator[FileIndex]:
    """The index at ``path`` over the ``recording`` file; FileNotFoundError when there is no index
    that describes the file as it is (the caller builds one)."""
    header = read_header(path)
    if header is None or not LITTLE:  # written little-endian; elsewhere it is rebuilt in memory
        raise FileNotFoundError(path)
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    try:
        with open(recording, "rb") as source:
            info = os.fstat(source.fileno())
            if (header.file_size, header.file_mtime_ns) != (info.st_size, info.st_mtime_ns):
                raise FileNotFoundError(path)
            lead = 12 + struct.unpack("<I", view[8:12])[0]
            index = FileIndex(header, view, lead + -lead % 8, source)
            try:
                yield index
            finally:
                index.release()
    finally:
        view.release()
        mapped.close()


# --- scanning a file without an index ----------------------------------------------------------------

_STRING = rb'"(?:[^"\\]++|\\.)*+"'


def _object(depth: int) -> bytes:
    inner = rb'[^{}"]++|' + _STRING + (rb"|" + _object(depth - 1) if depth else b"")
    return rb"\{(?:" + inner + rb")*+\}"


# an entry and what follows it; an HTTP exchange nests three deep (request → headers)
_ENTRY = re.compile(rb"(" + _object(4) + rb")([,\]])", re.DOTALL)
_CHUNK = 1 << 20


_PROTOCOL = re.compile(rb'"protocol":"(websocket|sse|http)"')


def protocol_of(path: Path) -> str:
    """A recording file's protocol, from its first piece (where mockd writes it); ValueError if not there."""
    with open(path, "rb") as handle:
        found = _PROTOCOL.search(handle.read(1 << 16))
    if found is None:
        raise ValueError(f"{path.name}: no protocol near the start")
    return found.group(1).decode()


def scan(path: Path, protocol: str) -> tuple[IndexBuilder, int]:
    """Find every entry of a recording file in pieces: the builder and where the entries start.
    Raises IndexError_ when the file is not laid out as mockd writes it (compact JSON: a file
    pretty-printed by hand has no index and is read whole)."""
    builder = IndexBuilder()
    with open(path, "rb") as handle:
        reader = _Reader(handle)
        entries_start = reader.find(ENTRY_LISTS[protocol])
        if reader.peek() == b"]":
            return builder, entries_start
        add, match = builder.add, reader.match
        while True:
            found = match(_ENTRY)
            raw = found.group(1)
            if builder.first_entry is None:
                builder.first_entry = raw
            add(len(raw), entry_key(raw))
            if found.group(2) == b"]":
                return builder, entries_start


class _Reader:
    """A file read forwards in pieces into one buffer (what was matched is dropped from its front in
    place), with the file position of the next byte."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.buffer = bytearray()
        self.at = 0  # position in buffer
        self.base = 0  # the file position of buffer[0]
        self.chunk = _CHUNK

    def _more(self) -> bool:
        piece = self.handle.read(self.chunk)
        if not piece:
            return False
        self.base += self.at
        del self.buffer[:self.at]
        self.at = 0
        self.buffer += piece
        return True

    def find(self, marker: bytes) -> int:
        """Skip past the first ``marker``; the file position after it."""
        while (found := self.buffer.find(marker, self.at)) < 0:
            self.at = max(self.at, len(self.buffer) - len(marker))
            if not self._more():
                raise IndexError_(f"no {marker.decode()} list")
        self.at = found + len(marker)
        return self.base + self.at

    def peek(self) -> bytes:
        if self.at >= len(self.buffer) and not self._more():
            return b""
        return bytes(self.buffer[self.at:self.at + 1])

    def match(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        while (found := pattern.match(self.buffer, self.at)) is None:
            self.chunk *= 2  # an entry longer than what is read: read more each time
            if not self._more():
                raise IndexError_(f"no entry followed by ',' or ']' at byte {self.base + self.at}")
        self.chunk = _CHUNK
        self.at = found.end()
        return found


# --- pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    connection: int | None = None
    direction: str | None = None
    type: str | None = None

    def wanted(self, key: EntryKey) -> bool:
        return ((self.connection is None or key.connection == self.connection)
                and (self.direction is None or key.direction == self.direction)
                and (self.type is None or key.type == self.type))

    @property
    def everything(self) -> bool:
        return self.connection is None and self.direction is None and self.type is None


def select(entries: Entries, where: Filter, offset: int, limit: int) -> tuple[list[int], int] | None:
    """The numbers of the page's entries and how many match in all; None when the index has no
    postings (too many keys) and the entries must be read (:func:`page`)."""
    if where.everything:
        return list(range(min(offset, entries.count), min(offset + limit, entries.count))), entries.count
    if entries.postings is None:
        return None
    lists = [numbers for key, numbers in entries.postings.items() if where.wanted(key)]
    total = sum(map(len, lists))
    if offset >= total or limit == 0:
        return [], total
    if len(lists) == 1:
        return list(lists[0][offset:offset + limit]), total
    first = _nth(lists, offset, entries.count)
    tails = (numbers[start:start + limit] for numbers in lists
             if (start := bisect.bisect_left(numbers, first)) < len(numbers))
    return list(islice(heapq.merge(*tails), limit)), total


def _nth(lists: list[Sequence[int]], rank: int, count: int) -> int:
    """The entry number at ``rank`` (from 0) in the union of sorted ``lists``: the least number with
    more than ``rank`` of them at or below it."""
    low, high = 0, count - 1
    while low < high:
        middle = (low + high) // 2
        if sum(bisect.bisect_right(numbers, middle) for numbers in lists) > rank:
            high = middle
        else:
            low = middle + 1
    return low


def type_counts(entries: Entries, where: Filter) -> dict[str, int] | None:
    """How many of the matching entries have each type (None: no postings to count them with)."""
    if where.everything and entries.types is not None:
        return dict(sorted(entries.types.items()))
    if entries.postings is None:
        return None
    counts: dict[str, int] = {}
    for key, numbers in entries.postings.items():
        if where.wanted(key) and key.type:
            counts[key.type] = counts.get(key.type, 0) + len(numbers)
    return dict(sorted(counts.items()))


BATCH_ENTRIES = 4096
BATCH_BYTES = 1 << 20


def each_entry(entries: Entries, numbers: Iterable[int]) -> Iterator[bytes]:
    """Entries by number, read a batch at a time (at most ``BATCH_ENTRIES`` or about ``BATCH_BYTES``):
    constant memory whatever the count or the frames' size."""
    chunk: list[int] = []
    size = 0
    for number in numbers:
        chunk.append(number)
        size += entries.size_of(number)
        if len(chunk) >= BATCH_ENTRIES or size >= BATCH_BYTES:
            yield from entries.raw(chunk)
            chunk, size = [], 0
    if chunk:
        yield from entries.raw(chunk)


@dataclass
class Page:
    entries: list[bytes]  # as they are in the file
    total: int  # how many match
    types: dict[str, int]  # how many of those have each type
    positions: list[int]  # each entry's number among all the recording's entries (from 0)


def page(entries: Entries, where: Filter, offset: int, limit: int) -> Page:
    """The entries ``offset`` to ``offset + limit`` of those matching ``where``."""
    chosen, counts = select(entries, where, offset, limit), type_counts(entries, where)
    if chosen is not None and counts is not None:
        numbers, total = chosen
        return Page(entries.raw(numbers), total, counts, numbers)
    found: list[bytes] = []
    positions: list[int] = []
    total = 0
    tally: dict[str, int] = {}
    for number, raw in enumerate(each_entry(entries, range(entries.count))):  # no postings: every key is read
        key = entry_key(raw)
        if where.wanted(key):
            if offset <= total < offset + limit:
                found.append(raw)
                positions.append(number)
            total += 1
            if key.type:
                tally[key.type] = tally.get(key.type, 0) + 1
    return Page(found, total, dict(sorted(tally.items())), positions)


def matching(entries: Entries, where: Filter) -> Iterator[bytes]:
    """Every matching entry, in order, read in batches."""
    if where.everything:
        return each_entry(entries, range(entries.count))
    if entries.postings is None:
        return (raw for raw in each_entry(entries, range(entries.count)) if where.wanted(entry_key(raw)))
    return each_entry(entries, heapq.merge(*(numbers for key, numbers in entries.postings.items()
                                             if where.wanted(key))))
