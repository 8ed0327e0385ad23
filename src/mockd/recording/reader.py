"""A recording as the converter and the replayer read it: its head (what it is, its connections, its
stats) and its frames, events or exchanges, typed, one connection at a time — from the file through its
frame index (a few thousand entries in memory at a time, whatever the recording's length) or from a
recording held in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from mockd.recording.format import (Frame, HttpExchange, Recording, SseEvent, decode_recording, encode_entry,
                                    head_bytes, without_entries)
from mockd.recording.index import Entries, Filter, MemoryEntries, entry_key, matching

_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "websocket": msgspec.json.Decoder(Frame), "sse": msgspec.json.Decoder(SseEvent),
    "http": msgspec.json.Decoder(HttpExchange)}


class RecordingReader:
    """``head`` is the recording without its entries; :meth:`entries` reads them as they are needed."""

    def __init__(self, head: Recording, entries: Entries) -> None:
        self.head = head
        self._entries = entries
        self._decode = _DECODERS[head.protocol].decode

    @classmethod
    def of(cls, recording: Recording) -> RecordingReader:
        """A recording held in memory."""
        head = without_entries(recording)
        return cls(head, MemoryEntries([encode_entry(item) for item in recording.entries()], head_bytes(head)))

    @classmethod
    def over(cls, entries: Entries, head: bytes) -> RecordingReader:
        return cls(decode_recording(head), entries)

    @property
    def protocol(self) -> str:
        return self.head.protocol

    @property
    def count(self) -> int:
        return self._entries.count

    def entries(self, connection: int | None = None) -> Iterator[Any]:
        """The entries (of one connection), in recorded order, decoded as they are read."""
        decode = self._decode
        return (decode(raw) for raw in matching(self._entries, Filter(connection=connection)))

    def connection_numbers(self) -> list[int]:
        """The captured connections' numbers in recorded order; those only the entries name come last,
        in the order they first appear."""
        numbers = [record.connection for record in self.head.connections]
        seen = set(numbers)
        for number in self._named_connections():
            if number not in seen:
                seen.add(number)
                numbers.append(number)
        return numbers

    def _named_connections(self) -> Iterator[int]:
        """The connections the entries name, each first where it first appears (an index without
        postings: every entry's, read in batches)."""
        postings = self._entries.postings
        if postings is None:
            return (entry_key(raw).connection for raw in matching(self._entries, Filter()))
        first: dict[int, int] = {}
        for key, posting in postings.items():
            if len(posting) and (key.connection not in first or posting[0] < first[key.connection]):
                first[key.connection] = posting[0]
        return iter(sorted(first, key=first.__getitem__))
