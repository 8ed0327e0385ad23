"""The append-only journal a recording session writes while it runs, and its assembly into a file.

One line per record. A frame or SSE event is its JSON object exactly as it will stand in the file (so
a flush encodes all of its entries in one call); the other records are a letter then JSON: ``H`` the
session (first line), ``O`` a connection opened, ``C`` a connection closed. A crash leaves at worst a
torn last line, which is dropped. The same assembly serves a normal stop and the
recovery of an orphaned journal after a crash, so both produce the same file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import msgspec

from mockd.recording.format import (UNSET, ConnectionRecord, Frame, HttpExchange, HttpSection, Metadata, Recording,
                                    RecordingProtocol, SseEvent, SseRequest, SseSection, Stats, StopReason, Unset,
                                    WebSocketSection, parse_rfc3339, rfc3339)
from mockd.recording.index import EntryKey, IndexBuilder

log = logging.getLogger("mockd.recording")

JOURNAL_SUFFIX = ".journal"
ENTRY = b"{"  # how an entry line starts
LEGACY_ENTRY = b"F{"  # before 2026-11-25 entry lines had a letter too; a crash may have left such a journal


class JournalHeader(msgspec.Struct, rename="camel"):
    id: str
    name: str
    protocol: RecordingProtocol
    path: str
    start_ns: int
    source: str = "manual"
    headers: dict[str, str] = {}


class JournalOpen(msgspec.Struct, rename="camel"):
    """A captured connection, with what the recording's metadata takes from the first one."""

    record: ConnectionRecord
    method: str
    host: str
    status: int | Unset = UNSET
    response_headers: dict[str, str] | Unset = UNSET
    request_body: str | Unset = UNSET
    request_body_encoding: Literal["base64"] | Unset = UNSET
    request_body_truncated: bool | Unset = UNSET


class JournalClose(msgspec.Struct, rename="camel"):
    connection: int
    closed_ns: int
    close_code: int | Unset = UNSET
    close_reason: str | Unset = UNSET


class _Sized(msgspec.Struct):
    size: int = 0


class _EntryStats(msgspec.Struct, rename="camel"):
    """What the stats need of a frame, event or exchange; msgspec skips the rest of the line."""

    timestamp: str = ""
    connection: int = 1
    direction: str | Unset = UNSET
    type: str | Unset = UNSET
    size: int = 0
    data: str | Unset = UNSET
    request: _Sized | Unset = UNSET
    response: _Sized | Unset = UNSET


_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(JournalHeader)
_open_decoder = msgspec.json.Decoder(JournalOpen)
_close_decoder = msgspec.json.Decoder(JournalClose)
_entry_decoder = msgspec.json.Decoder(_EntryStats)
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1


def _write_some(fd: int, pieces: list[bytes]) -> int:
    """Write from the first pieces; how many bytes were written (Windows has no ``writev``: one piece)."""
    return os.writev(fd, pieces) if hasattr(os, "writev") else os.write(fd, pieces[0])


class JournalWriter:
    """Keeps lines in memory and appends them to the file on :meth:`flush` (called off the relay path).

    What waits is a list of encoded pieces, written with one ``writev`` per ``IOV_MAX`` of them: a
    batch of entries is never copied into a buffer first (at 200,000 SSE events a second the copies
    were a sixth of the recorder's time)."""

    def __init__(self, path: Path, header: JournalHeader) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        self._pieces: list[bytes] = []
        self.pending_bytes = 0
        self.size = 0
        self._add(b"H", _encoder.encode(header))
        self.flush()

    def _add(self, kind: bytes, payload: bytes) -> None:
        self.lines(kind + payload + b"\n")

    def opened(self, record: JournalOpen) -> None:
        self._add(b"O", _encoder.encode(record))

    def entries(self, entries: list[Frame | SseEvent | HttpExchange]) -> None:
        if entries:
            self.lines(_encoder.encode_lines(entries))

    def lines(self, *pieces: bytes) -> None:
        """Entry lines already encoded (each ending in a line break), in pieces."""
        self._pieces.extend(pieces)
        self.pending_bytes += sum(map(len, pieces))

    def closed(self, record: JournalClose) -> None:
        self._add(b"C", _encoder.encode(record))

    def flush(self) -> None:
        """Write what waits; what a failed write left is still waiting (none of it twice)."""
        pieces = self._pieces
        while pieces:
            written = _write_some(self._fd, pieces[:_IOV_MAX])
            self.size += written
            self.pending_bytes -= written
            done = 0
            while done < len(pieces) and written >= len(pieces[done]):
                written -= len(pieces[done])
                done += 1
            del pieces[:done]
            if written:
                pieces[0] = pieces[0][written:]

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def _lines(path: Path, end: int) -> Iterator[bytes]:
    """Complete lines of the first ``end`` bytes only (a running session appends meanwhile): a torn last
    line (a crash mid-write) is dropped. An entry line of a journal left by an older mockd (``F`` then
    the JSON) reads as an entry line of today's."""
    with open(path, "rb") as handle:
        read = 0
        for line in handle:
            read += len(line)
            if read > end:
                return
            if line.endswith(b"\n"):
                yield line[1:-1] if line[:2] == LEGACY_ENTRY else line[:-1]


@dataclass
class _Scan:
    header: JournalHeader
    opens: list[JournalOpen] = field(default_factory=list)
    closes: dict[int, JournalClose] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    entries_size: int = 0
    last_ns: int = 0  # the latest moment the journal shows


def _scan(path: Path, end: int) -> _Scan:
    lines = _lines(path, end)
    first = next(lines, b"")
    if not first.startswith(b"H"):
        raise ValueError(f"{path.name} does not start with a journal header")
    scan = _Scan(_header_decoder.decode(first[1:]))
    stats = scan.stats
    last_timestamp = ""
    for line in lines:
        kind, payload = line[:1], line[1:]
        try:
            if kind == ENTRY:
                entry = _entry_decoder.decode(line)
                _count(stats, entry)
                scan.entries_size += len(line)
                last_timestamp = entry.timestamp
            elif kind == b"O":
                scan.opens.append(_open_decoder.decode(payload))
            elif kind == b"C":
                record = _close_decoder.decode(payload)
                scan.closes[record.connection] = record
                scan.last_ns = max(scan.last_ns, record.closed_ns)
        except msgspec.DecodeError:
            log.warning("skipping an unreadable line in %s", path.name)
    if last_timestamp:
        scan.last_ns = max(scan.last_ns, parse_rfc3339(last_timestamp))
    return scan


def _count(stats: Stats, entry: _EntryStats) -> None:
    stats.frame_count += 1
    if isinstance(entry.request, _Sized):  # an HTTP exchange
        stats.exchange_count += 1
        stats.bytes_received += entry.request.size
        stats.bytes_sent += entry.response.size if isinstance(entry.response, _Sized) else 0
        return
    if entry.direction is UNSET:  # an SSE event
        stats.event_count += 1
        stats.bytes_sent += len(entry.data.encode()) if isinstance(entry.data, str) else 0
        return
    if entry.direction == "s2c":
        stats.bytes_sent += entry.size
    else:
        stats.bytes_received += entry.size
    if entry.type == "text":
        stats.text_frames += 1
    elif entry.type == "binary":
        stats.binary_frames += 1
    elif entry.type == "close":
        stats.close_frames += 1
    else:
        stats.ping_pong += 1


def _entry_lines(path: Path, end: int, index: IndexBuilder | None) -> Iterator[bytes]:
    for line in _lines(path, end):
        if line[:1] == ENTRY:
            try:
                entry = _entry_decoder.decode(line)
            except msgspec.DecodeError:
                continue
            if index is not None:
                index.add(len(line), EntryKey(entry.connection, entry.direction or "", entry.type or ""))
            yield line


def assemble(path: Path, status: str, stop_reason: StopReason | Unset, end_ns: int | None = None,
             index: IndexBuilder | None = None) -> tuple[Recording, Iterator[bytes], int, int]:
    """The recording head, its entries (streamed from the journal), their count and byte size; each
    entry goes past ``index`` as it is read.

    ``end_ns`` is the stop time; after a crash it is the last moment the journal shows. The journal is
    read as far as it was written when this was called (a running session goes on appending).
    """
    end = path.stat().st_size
    scan = _scan(path, end)
    header = scan.header
    if end_ns is None:
        end_ns = max(scan.last_ns, header.start_ns)
    connections = [_finished(opened, scan.closes.get(opened.record.connection)) for opened in scan.opens]
    scan.stats.connection_count = len(connections) or scan.stats.exchange_count
    first = scan.opens[0] if scan.opens else None
    recording = Recording(
        id=header.id, name=header.name, protocol=header.protocol, status=status,  # type: ignore[arg-type]
        start_time=rfc3339(header.start_ns), end_time=rfc3339(end_ns),
        duration=max(0, (end_ns - header.start_ns) // 1_000_000),
        metadata=_metadata(header, first), connections=connections, stop_reason=stop_reason, stats=scan.stats)
    if header.protocol == "websocket":
        closed_first = min(scan.closes.values(), key=lambda close: close.closed_ns, default=None)
        recording.websocket = WebSocketSection(
            subprotocol=first.record.subprotocol if first else UNSET,
            close_code=closed_first.close_code if closed_first else UNSET,
            close_reason=closed_first.close_reason if closed_first else UNSET)
    elif header.protocol == "sse":
        recording.sse = _sse_section(first)
    else:
        recording.http = HttpSection()
    return recording, _entry_lines(path, end, index), scan.stats.frame_count, scan.entries_size


def _finished(opened: JournalOpen, close: JournalClose | None) -> ConnectionRecord:
    """The connection's record with the request and response it opened with, and how it closed."""
    record = msgspec.structs.replace(
        opened.record, method=opened.method, body=opened.request_body, body_encoding=opened.request_body_encoding,
        body_truncated=opened.request_body_truncated, status=opened.status, response_headers=opened.response_headers)
    if close is None:
        return record
    return msgspec.structs.replace(record, closed_at=rfc3339(close.closed_ns), close_code=close.close_code,
                                   close_reason=close.close_reason)


def _metadata(header: JournalHeader, first: JournalOpen | None) -> Metadata:
    if first is None:
        return Metadata(path=header.path, headers=dict(header.headers), source=header.source)
    return Metadata(path=header.path, headers={**first.record.headers, **header.headers}, query=first.record.query,
                    source=header.source, method=first.method, host=first.host)


def _sse_section(first: JournalOpen | None) -> SseSection:
    if first is None:
        return SseSection()
    request = SseRequest(method=first.method, body=first.request_body) if first.method != "GET" else UNSET
    return SseSection(status=first.status, headers=first.response_headers, request=request)
