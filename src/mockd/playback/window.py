"""Reading a replay's plan ahead of its schedule: what a replay reads (:class:`ReplaySource`), its first
window (:func:`prepare`, in a worker thread before the replay is created) and the rest a window at a
time (:class:`StepWindow`), so a replay of a long recording holds a few thousand steps, never all."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import msgspec

from mockd.playback.plan import ReplayOptions, Step, chosen_connection, plan_steps
from mockd.recording.format import Frame, Recording, SseEvent, without_entries
from mockd.recording.index import Filter, entry_key
from mockd.recording.store import Store

WINDOW = 8192  # steps read ahead; a replay holds at most about this many (a plan that fits is shared)
READ_PAGE = 256  # entries decoded per call while a replay plays (the GIL is held that long)


@dataclass(frozen=True)
class ReplaySource:
    """What a replay reads: the recording without its entries, the connection it replays, and
    ``read(offset, limit)`` — that connection's entries from ``offset``, each with its number among all
    the recording's entries (blocking; called in a worker thread, through the frame index for a
    recording on disk)."""

    head: Recording
    connection: int
    read: Callable[[int, int], list[tuple[int, Any]]]

    @classmethod
    def of(cls, recording: Recording, options: ReplayOptions) -> ReplaySource:
        """A recording held in memory (a running session's so far)."""
        entries: list[Any] = recording.entries()
        asked = options.connection
        number = chosen_connection(asked, any(entry.connection == asked for entry in entries),
                                   entries[0].connection if entries else None)
        own = [(position, entry) for position, entry in enumerate(entries) if entry.connection == number]
        return cls(without_entries(recording), number, lambda offset, limit: own[offset:offset + limit])

    @classmethod
    def stored(cls, store: Store, recording_id: str, head: Recording, options: ReplayOptions) -> ReplaySource:
        """A recording on disk, read a page at a time through its frame index (blocking: in a thread)."""
        asked = options.connection
        has_frames = asked is not None and store.page(recording_id, Filter(connection=asked), 0, 0).total > 0
        first = store.page(recording_id, Filter(), 0, 1).entries if asked is None else []
        number = chosen_connection(asked, has_frames, entry_key(first[0]).connection if first else None)
        decode = msgspec.json.Decoder(Frame if head.protocol == "websocket" else SseEvent).decode
        own = Filter(connection=number)

        def read(offset: int, limit: int) -> list[tuple[int, Any]]:
            found = store.page(recording_id, own, offset, limit)
            return [(position, decode(raw)) for position, raw in zip(found.positions, found.entries, strict=True)]

        return cls(head, number, read)

    def entries(self) -> Iterator[tuple[int, Any]]:
        offset = 0
        while batch := self.read(offset, READ_PAGE):
            yield from batch
            offset += len(batch)

    def steps(self, options: ReplayOptions) -> Iterator[Step]:
        return plan_steps(self.entries(), self.head.opened_ms(self.connection), options)


@dataclass
class PreparedPlan:
    """A plan's first window, the rest still to read, and how many frames it sends in all."""

    first: list[Step]
    rest: Iterator[Step] | None
    total_sends: int


def prepare(source: ReplaySource, options: ReplayOptions, known_sends: int | None = None) -> PreparedPlan:
    """Read the first window of the plan (blocking: in a worker thread). A longer plan's frames are
    counted in a second pass unless ``known_sends`` says (a plan counted before)."""
    steps = source.steps(options)
    first = list(islice(steps, WINDOW))
    if len(first) < WINDOW:
        return PreparedPlan(first, None, sum(step.kind == "send" for step in first))
    if known_sends is None:
        known_sends = sum(step.kind == "send" for step in source.steps(options))
    return PreparedPlan(first, steps, known_sends)


class StepWindow:
    """A replay's steps in order, read ahead of the schedule in a worker thread whenever fewer than half
    of ``WINDOW`` wait, so the event loop never reads the file while a deadline is near."""

    def __init__(self, prepared: PreparedPlan) -> None:
        self._buffer: deque[Step] = deque(prepared.first)
        self._rest = prepared.rest
        self._reading: asyncio.Future[list[Step]] | None = None

    def _read_more(self) -> None:
        if self._rest is not None and self._reading is None:
            rest = self._rest
            self._reading = asyncio.ensure_future(asyncio.to_thread(lambda: list(islice(rest, WINDOW))))

    async def _take_read(self) -> bool:
        """Wait for the read under way (starting one); False when the plan has no more steps."""
        self._read_more()
        if self._reading is None:
            return False
        more = await self._reading
        self._reading = None
        self._buffer.extend(more)
        if len(more) < WINDOW:
            self._rest = None
        return bool(more)

    async def next(self) -> Step | None:
        if self._reading is not None and self._reading.done():
            await self._take_read()  # a read that finished meanwhile joins the buffer at once
        if len(self._buffer) < WINDOW // 2:
            self._read_more()
        while not self._buffer:
            if not await self._take_read():
                return None
        return self._buffer.popleft()

    async def first_matching(self, wanted: Callable[[Step], bool]) -> int | None:
        """How many steps from here up to and including the first ``wanted`` one (reading ahead as far
        as it takes); None when no remaining step is."""
        index = 0
        while True:
            while index < len(self._buffer):
                if wanted(self._buffer[index]):
                    return index + 1
                index += 1
            if not await self._take_read():
                return None

    def next_send(self) -> Step | None:
        """The first send step waiting in the buffer (None when none is read yet, or none is left)."""
        return next((step for step in self._buffer if step.kind == "send"), None)

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
