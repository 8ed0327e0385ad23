"""Recordings built by hand (the models of :mod:`mockd.recording.format`), for the tests of what is made of them."""

from __future__ import annotations

import base64
from typing import Any

from mockd.recording.format import (ConnectionRecord, Frame, Metadata, Recording, SseEvent, SseRequest, SseSection,
                                    WebSocketSection)

RECORDING_ID = "01HXYZ123456789ABCDEFGHJKM"


def frame(direction: str, kind: str, data: str | bytes = "", at: int = 0, connection: int = 1,
          code: int | None = None, reason: str | None = None) -> Frame:
    """A recorded frame: text as given; binary, ping and pong payloads (bytes) base64-encoded, as the
    recorder stores them; a close frame with its code and reason."""
    fields: dict[str, Any] = {}
    if isinstance(data, bytes):
        fields["encoding"] = "base64"
        size = len(data)
        data = base64.b64encode(data).decode()
    else:
        size = len(data.encode())
    if kind == "close":
        fields["close_code"] = 1005 if code is None else code
        fields["close_reason"] = reason or ""
        data = reason or ""
    return Frame(direction=direction, type=kind, data=data, timestamp="2024-01-15T10:30:00.000000Z",  # type: ignore[arg-type]
                 relative_ms=at, connection=connection, size=size, **fields)


def opened(connection: int = 1, at: int = 0, path: str | None = None) -> ConnectionRecord:
    record = ConnectionRecord(connection=connection, opened_at="2024-01-15T10:30:00.000000Z", relative_ms=at,
                              origin="proxy")
    if path is not None:
        record.path = path
    return record


def ws_recording(frames: list[Frame], connections: list[ConnectionRecord] | None = None, path: str = "/ws/chat",
                 subprotocol: str | None = None) -> Recording:
    section = WebSocketSection(frames=frames)
    if subprotocol is not None:
        section.subprotocol = subprotocol
    return Recording(id=RECORDING_ID, name="chat-session", protocol="websocket", status="complete",
                     start_time="2024-01-15T10:30:00.000000Z", metadata=Metadata(path=path), websocket=section,
                     connections=[opened()] if connections is None else connections)


def sse_event(at: int, connection: int = 1, **fields: Any) -> SseEvent:
    return SseEvent(timestamp="2024-01-15T10:30:00.000000Z", relative_ms=at, connection=connection, **fields)


def sse_recording(events: list[SseEvent], connections: list[ConnectionRecord] | None = None,
                  path: str = "/events", method: str | None = None, request: SseRequest | None = None,
                  status: int | None = None) -> Recording:
    section = SseSection(events=events)
    if request is not None:
        section.request = request
    if status is not None:
        section.status = status
    metadata = Metadata(path=path)
    if method is not None:
        metadata.method = method
    return Recording(id=RECORDING_ID, name="ticker", protocol="sse", status="complete",
                     start_time="2024-01-15T10:30:00.000000Z", metadata=metadata, sse=section,
                     connections=[opened()] if connections is None else connections)
