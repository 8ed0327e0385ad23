"""Answers of the admin API as typed models, shared by the server that sends them and the client
(:mod:`mockd.admin.client`, the CLI) that reads them. Light on purpose: nothing here imports the server stack.

The answers the domain computes itself are its own models, which the API sends as they are: a recording's
:class:`~mockd.recording.format.Summary`, :class:`~mockd.recording.format.StorageStats` and
:class:`~mockd.recording.format.SessionSummary`; a replay's states and bounds in :mod:`mockd.playback.plan`."""

from __future__ import annotations

import msgspec

from mockd.config.model import Mock
from mockd.playback.plan import FINISHED, ReplayMode, ReplayState
from mockd.recording.format import Frame, HttpExchange, SseEvent, Status, Summary


class Started(msgspec.Struct, rename="camel", omit_defaults=True):
    """``POST /stream-recordings/start``."""

    session_id: str
    recording_id: str
    warning: str | None = None


class RecordingList(msgspec.Struct):
    """``GET /stream-recordings``."""

    recordings: list[Summary]
    total: int
    limit: int | None = None
    offset: int = 0


class Vacuumed(msgspec.Struct, rename="camel"):
    """``POST /stream-recordings/vacuum``."""

    removed: int
    freed_bytes: int


class _Page(msgspec.Struct):
    total: int  # how many entries match the filter
    offset: int
    limit: int
    types: dict[str, int] = {}  # how many of those have each type (frame type, SSE event type)


class FramePage(_Page, kw_only=True):
    """``GET /stream-recordings/{id}/frames`` of a WebSocket recording."""

    frames: list[Frame]


class EventPage(_Page, kw_only=True):
    """The same for an SSE recording."""

    events: list[SseEvent]


class ExchangePage(_Page, kw_only=True):
    """The same for an HTTP recording."""

    exchanges: list[HttpExchange]


class LiveEnd(msgspec.Struct):
    """The last event of ``GET /stream-recordings/{id}/live``: the recording's status once it is written."""

    status: Status


class ReplayStarted(msgspec.Struct, rename="camel"):
    """``POST /stream-recordings/{id}/replay``."""

    session_id: str
    status: ReplayState


class ReplayStatus(msgspec.Struct, rename="camel"):
    """``GET /replay/{id}`` and the items of ``GET /replay``."""

    id: str
    recording_id: str
    mode: ReplayMode
    status: ReplayState
    current_frame: int
    total_frames: int
    frames_sent: int
    elapsed_ms: int
    mismatches: int
    error: str | None
    client: str | None
    path: str = ""  # where the replay waits for (or served) its client
    next_entry: int | None = None  # the recording's entry number of the frame sent next (None: finished)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Advanced(msgspec.Struct, rename="camel"):
    """``POST /replay/{id}/advance``: answered once the frames are on the wire."""

    frames_sent: int
    current_frame: int
    total_frames: int
    status: ReplayState
    complete: bool


class LoadedMocks(msgspec.Struct):
    """``POST /mocks`` with a config document: its mocks as stored (ids filled in), in document order."""

    mocks: list[Mock]
    added: int
    replaced: int
