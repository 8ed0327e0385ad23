"""A replay's plan, pure: which of the recorded frames go out, and when (no sockets, no clock).

The options say how (:class:`ReplayOptions`); :func:`plan_steps` turns one connection's entries into
:class:`Step`\\ s as they are read, so a long recording is planned a window at a time
(:mod:`mockd.playback.window`). The session (:mod:`mockd.playback.replay`) carries the steps out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from mockd.playback.errors import ReplayError
from mockd.recording.format import Frame, Recording, SseEvent, check_served_path

ReplayMode = Literal["pure", "synchronized", "triggered"]
ReplayState = Literal["pending", "playing", "waiting", "paused", "complete", "aborted", "error", "expired"]
FINISHED: tuple[ReplayState, ...] = ("complete", "aborted", "error", "expired")
"""The states a replay never leaves: ``expired`` is a pending replay no client took in ``expiresAfter``."""

# the bounds of the options (the CLI checks its flags against them too)
MAX_TIMING_SCALE = 1000.0  # x: a second of recording at most ~17 minutes of replay
DEFAULT_EXPIRES_AFTER = 300.0  # s a pending replay waits for its client
MAX_EXPIRES_AFTER = 86_400.0  # s: a day
MAX_TIMEOUT_MS = 86_400_000  # synchronized: a day per client message


class ReplayOptions(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """The body of ``POST /stream-recordings/{id}/replay``. The bounds are checked when decoding (the
    schema's ``minimum``/``maximum``) and again in ``__post_init__`` for options built in Python."""

    mode: ReplayMode = "pure"
    timing_scale: Annotated[float, msgspec.Meta(ge=0, le=MAX_TIMING_SCALE)] = 1.0
    strict_matching: bool = False
    timeout: Annotated[int, msgspec.Meta(gt=0, le=MAX_TIMEOUT_MS)] = 30_000
    auto_advance_on_connect: bool = False
    path: str | None = None
    connection: int | None = None
    expires_after: Annotated[float, msgspec.Meta(gt=0, le=MAX_EXPIRES_AFTER)] = DEFAULT_EXPIRES_AFTER

    def __post_init__(self) -> None:
        if not 0 <= self.timing_scale <= MAX_TIMING_SCALE:  # NaN fails this too
            raise ValueError(f"timingScale must be a number from 0 to {MAX_TIMING_SCALE:g}")
        if not 0 < self.timeout <= MAX_TIMEOUT_MS:
            raise ValueError(f"timeout must be from 1 to {MAX_TIMEOUT_MS} ms")
        if not 0 < self.expires_after <= MAX_EXPIRES_AFTER:
            raise ValueError(f"expiresAfter must be more than 0 and at most {MAX_EXPIRES_AFTER:g} s")
        check_served_path(self.path)


@dataclass(frozen=True)
class Step:
    """One thing the replay does: send a server frame, or (synchronized) wait for a client message.

    ``offset_ms`` is the scaled time from the client's connect (pure mode); ``gap_ms`` the scaled time
    since the previous step (synchronized mode); ``position`` the entry's number among all the
    recording's entries (what the dashboard highlights as the replay's next)."""

    kind: Literal["send", "expect"]
    item: Frame | SseEvent
    offset_ms: float
    gap_ms: float
    position: int


def check_replayable(recording: Recording, options: ReplayOptions) -> None:
    if recording.protocol == "sse" and options.mode == "synchronized":
        raise ReplayError("synchronized mode needs client messages, and an SSE recording has none")
    if recording.protocol not in ("websocket", "sse"):
        raise ReplayError("the recording has nothing to replay")


def chosen_connection(asked: int | None, has_frames: bool, first: int | None) -> int:
    """The connection a replay plays: the one asked for (which must have frames), else the one of the
    recording's first entry (``first``; None: the recording has none)."""
    if asked is not None:
        if not has_frames:
            raise ReplayError(f"connection {asked} has no frames to replay")
        return asked
    if first is None:
        raise ReplayError("the recording has no frames to replay")
    return first


def plan(recording: Recording, options: ReplayOptions) -> list[Step]:
    """The steps of a replay of a recording held in memory."""
    check_replayable(recording, options)
    entries: list[Any] = recording.entries()
    number = chosen_connection(options.connection, any(entry.connection == options.connection for entry in entries),
                               entries[0].connection if entries else None)
    return list(plan_steps(((position, entry) for position, entry in enumerate(entries) if entry.connection == number),
                           recording.opened_ms(number), options))


def _is_server_step(frame: Frame, client_closed: bool) -> bool:
    if frame.direction != "s2c":
        return False
    return frame.type in ("text", "binary", "ping") or (frame.type == "close" and not client_closed)


def plan_steps(entries: Iterable[tuple[int, Frame | SseEvent]], opened_ms: int,
               options: ReplayOptions) -> Iterator[Step]:
    """The steps of a replay of one connection's entries (in recorded order, each with its number in
    the recording): server frames, and client frames as ``expect`` steps when synchronized; produced as
    the entries are read."""
    scale = options.timing_scale
    previous = opened_ms
    client_closed = False
    for position, entry in entries:
        offset, gap = (entry.relative_ms - opened_ms) * scale, (entry.relative_ms - previous) * scale
        if isinstance(entry, SseEvent):
            yield Step("send", entry, offset, gap, position)
        elif entry.direction == "c2s":
            client_closed = client_closed or entry.type == "close"
            if entry.type in ("text", "binary") and options.mode == "synchronized":
                yield Step("expect", entry, offset, gap, position)
            else:
                continue
        elif _is_server_step(entry, client_closed):
            yield Step("send", entry, offset, gap, position)
            if entry.type == "close":
                return
        else:
            continue
        previous = entry.relative_ms


def searchable_text(item: Frame | SseEvent) -> str:
    """What ``advance {"until": ...}`` looks in: a text frame's text, a close frame's reason, an SSE
    event's data; never a base64 payload."""
    if isinstance(item, SseEvent):
        return item.data if isinstance(item.data, str) else ""
    return "" if item.encoding == "base64" else item.data
