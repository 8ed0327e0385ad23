"""Recording → mock config: a pure function whose output ``mockd serve --config`` loads as it is.

WebSocket: one ``websocket`` mock whose scenario replays one recorded connection — each server frame a
``send`` (byte for byte, templating off) after the recorded gap since the previous step, each client
message an ``expect``, a server ping a ``ping``, the server's close a ``close``. Gaps are measured from
the previous step, so after an ``expect`` the clock restarts when the client's message arrives: server
think-time is kept, client think-time is the client's.

SSE: one ``http`` mock with an ``sse`` block holding the recorded events (data as the exact string)
and their gaps as ``perEventDelays``, the first gap counted from the connection's opening.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mockd.config import (CONFIG_VERSION, CloseStep, ConfigFile, ExpectStep, HttpMatcher, HttpMock, HttpSpec,
                          MessageMatch, PingStep, Scenario, ScenarioStep, SendStep, SseConfig, SseTiming, WaitStep,
                          WebSocketMock, WebSocketSpec, WsMessage)
from mockd.config import SseEvent as ConfigSseEvent
from mockd.recording.format import UNSET, Frame, Recording, SseEvent, SseRequest, SseSection, WebSocketSection


class ConvertOptions(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    simplify_timing: bool = False
    min_delay: int = 10
    max_delay: int = 5000
    include_client_messages: bool = True
    strict_matching: bool = False
    connection: int | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.min_delay < 0 or self.max_delay < 0:
            raise ValueError("minDelay and maxDelay must not be negative")
        if self.min_delay > self.max_delay:
            raise ValueError("minDelay must not exceed maxDelay")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError("path must start with '/'")


class NothingToConvert(Exception):
    """The recording (or the chosen connection) has no frame a mock could reproduce."""


DEFAULT_OPTIONS = ConvertOptions()


def convert(recording: Recording, options: ConvertOptions = DEFAULT_OPTIONS) -> ConfigFile:
    if isinstance(recording.websocket, WebSocketSection):
        mock: HttpMock | WebSocketMock = _websocket_mock(recording, recording.websocket, options)
    elif isinstance(recording.sse, SseSection):
        mock = _sse_mock(recording, recording.sse, options)
    else:
        raise NothingToConvert("the recording has neither WebSocket frames nor SSE events")
    return ConfigFile(version=CONFIG_VERSION, mocks=[mock])


def config_bytes(config: ConfigFile) -> bytes:
    return msgspec.json.format(msgspec.json.encode(config), indent=2) + b"\n"


def _delay(gap_ms: int, options: ConvertOptions) -> int:
    gap = max(gap_ms, 0)
    if options.simplify_timing:
        if gap < options.min_delay:
            return 0
        return min(gap, options.max_delay)
    return gap


def _by_connection(entries: list[Any]) -> dict[int, list[Any]]:
    """Entries grouped by connection number, connections in the order they first appear."""
    groups: dict[int, list[Any]] = {}
    for entry in entries:
        groups.setdefault(int(entry.connection), []).append(entry)
    return groups


def _opened_ms(recording: Recording, connection: int) -> int:
    for record in recording.connections:
        if record.connection == connection:
            return record.relative_ms
    return 0


def _mock_path(recording: Recording, connection: int, options: ConvertOptions) -> str:
    """The mock's path: as asked, else the connection's real path (a session path may be a glob)."""
    if options.path:
        return options.path
    for record in recording.connections:
        if record.connection == connection and isinstance(record.path, str):
            return record.path
    return recording.metadata.path


def _mock_id(recording: Recording) -> str:
    return f"recording-{recording.id[:12].lower()}"


# --- WebSocket --------------------------------------------------------------------------------------


def _websocket_mock(recording: Recording, section: WebSocketSection, options: ConvertOptions) -> WebSocketMock:
    """The connection asked for, else the first one that gives a non-empty scenario."""
    groups = _by_connection(section.frames)
    if options.connection is not None:
        groups = {options.connection: groups.get(options.connection, [])}
    for number, frames in groups.items():
        steps = websocket_steps(frames, _opened_ms(recording, number), options)
        if steps:
            spec = WebSocketSpec(path=_mock_path(recording, number, options),
                                 subprotocols=[section.subprotocol] if isinstance(section.subprotocol, str) else [],
                                 scenario=Scenario(name=recording.name, steps=steps))
            return WebSocketMock(id=_mock_id(recording), name=recording.name, websocket=spec)
    which = f"connection {options.connection}" if options.connection is not None else "the recording"
    raise NothingToConvert(f"{which} has no frames a mock could reproduce")


def websocket_steps(frames: list[Frame], opened_ms: int, options: ConvertOptions) -> list[ScenarioStep]:
    steps: list[ScenarioStep] = []
    last_ms = opened_ms
    client_closed = False
    for frame in frames:
        gap = _delay(frame.relative_ms - last_ms, options)
        if frame.direction == "c2s":
            if frame.type == "close":
                client_closed = True
            elif frame.type in ("text", "binary") and options.include_client_messages:
                steps.append(ExpectStep(match=_client_match(frame, options)))
                last_ms = frame.relative_ms
            continue
        if frame.type in ("text", "binary"):
            value = frame.data  # text as sent; binary is already base64
            delay = f"{gap}ms" if gap else None
            steps.append(SendStep(message=WsMessage(type=frame.type, value=value, delay=delay, template=False)))
        elif frame.type == "ping":
            if gap:
                steps.append(WaitStep(duration=f"{gap}ms"))
            steps.append(PingStep(data=frame.data))
        elif frame.type == "close" and not client_closed:
            code = frame.close_code if isinstance(frame.close_code, int) else 1000
            reason = frame.close_reason if isinstance(frame.close_reason, str) else ""
            steps.append(CloseStep(code=code, reason=reason, delay=f"{gap}ms" if gap else None))
            break
        else:
            continue  # pongs, and the server's answer to the client's close, produce no step
        last_ms = frame.relative_ms
    return steps


def _client_match(frame: Frame, options: ConvertOptions) -> MessageMatch | None:
    if not options.strict_matching:
        return None
    if frame.type == "binary":  # compared as bytes: undecodable bytes must not all look alike
        return MessageMatch(type="exact", value=frame.data, message_type="binary", encoding="base64")
    return MessageMatch(type="exact", value=frame.data, message_type="text")


# --- SSE --------------------------------------------------------------------------------------------


def _sse_mock(recording: Recording, section: SseSection, options: ConvertOptions) -> HttpMock:
    groups = _by_connection(section.events)
    number = options.connection if options.connection is not None else next(iter(groups), None)
    events = groups.get(number, []) if number is not None else []
    if number is None or not events:
        which = f"connection {options.connection}" if options.connection is not None else "the recording"
        raise NothingToConvert(f"{which} has no events to convert")
    delays, last_ms = [], _opened_ms(recording, number)
    for event in events:
        delays.append(_delay(event.relative_ms - last_ms, options))
        last_ms = event.relative_ms
    if isinstance(section.request, SseRequest):
        method = section.request.method
    else:
        method = recording.metadata.method if isinstance(recording.metadata.method, str) else "GET"
    headers = {}
    if isinstance(section.headers, dict):
        content_type = next((value for name, value in section.headers.items() if name.lower() == "content-type"), None)
        if content_type and content_type != "text/event-stream":
            headers["Content-Type"] = content_type
    sse = SseConfig(events=[_config_event(event) for event in events], timing=SseTiming(per_event_delays=delays),
                    status_code=section.status if isinstance(section.status, int) else 200, headers=headers)
    matcher = HttpMatcher(method=method, path=_mock_path(recording, number, options))
    return HttpMock(id=_mock_id(recording), name=recording.name, http=HttpSpec(matcher=matcher, sse=sse))


def _config_event(event: SseEvent) -> ConfigSseEvent:
    def present(value: Any) -> Any:
        return None if value is UNSET else value

    return ConfigSseEvent(type=present(event.type), data=present(event.data), id=present(event.id),
                          retry=present(event.retry), comment=present(event.comment))
