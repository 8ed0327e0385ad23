"""The recording file: one set of typed models for the recorder, the store, the API, the CLI, the
converter and the replayer, plus the writer that produces the exact bytes on disk.

Key names and order are those docs/recording.md shows ("The recording file"). Recordings in the Go
mockd's layout (``dir``/``ts``/``rel``/``event``) are read by :func:`decode_recording` and always written
back in this layout.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import msgspec

from mockd.stream.events import SseBlock

FORMAT_VERSION = "1.0"
Status = Literal["recording", "complete", "incomplete"]
RecordingProtocol = Literal["websocket", "sse", "http"]
StopReason = Literal["api", "maxDurationMs", "maxFrames", "storage", "shutdown", "crash"]


Unset = msgspec.UnsetType
UNSET = msgspec.UNSET
T = TypeVar("T")


def or_unset(value: T | None) -> T | Unset:
    """None (absent, in stream events and the config) as UNSET (absent here: the key is not written)."""
    return UNSET if value is None else value


def or_none(value: T | Unset) -> T | None:
    """UNSET as None: the other way of :func:`or_unset`."""
    return None if value is UNSET else value


class _Model(msgspec.Struct, rename="camel"):
    """Keys every recording has are always written; optional ones default to UNSET, which is never written."""


class Frame(_Model, gc=False):
    """One WebSocket frame. ``data`` is the text, or base64 (``encoding``) for binary, ping and pong;
    for a close frame it is the reason, with ``closeCode``/``closeReason`` beside it."""

    direction: Literal["c2s", "s2c"]
    type: Literal["text", "binary", "ping", "pong", "close"]
    data: str
    timestamp: str
    relative_ms: int
    connection: int = 1
    encoding: Literal["base64"] | Unset = UNSET
    size: int = 0
    close_code: int | Unset = UNSET
    close_reason: str | Unset = UNSET
    redaction_failed: bool | Unset = UNSET  # the redactor could not read ``data``: it holds the redact value

    def payload(self) -> str | bytes:
        """What went over the wire: the text, or the bytes ``data`` holds in base64."""
        return base64.b64decode(self.data) if self.encoding == "base64" else self.data


class SseEvent(_Model, gc=False):
    """One SSE block exactly as it came: only the fields it had.

    A data block without an ``event:`` line reads ``type: "message"`` (clients treat the two alike);
    ``eventLine: true`` marks the rare block that said ``event: message`` itself, so a replay writes
    back exactly the lines that came."""

    type: str | Unset = UNSET
    data: str | Unset = UNSET
    id: str | Unset = UNSET
    retry: int | Unset = UNSET
    comment: str | Unset = UNSET
    timestamp: str = ""
    relative_ms: int = 0
    connection: int = 1
    event_line: bool | Unset = UNSET
    redaction_failed: bool | Unset = UNSET

    @property
    def wire_type(self) -> str | None:
        """The ``event:`` line's value as it was on the wire (None: the block had no such line)."""
        if self.type is UNSET or (self.type == "message" and self.event_line is not True):
            return None
        return self.type

    @classmethod
    def from_block(cls, block: SseBlock, timestamp: str, relative_ms: int, connection: int = 1) -> SseEvent:
        """The entry of a block seen at ``timestamp``. (The absent fields are translated in line, not by
        :func:`or_unset`: this runs once per recorded event.)"""
        kind, data = block.type, block.data
        return cls(kind if kind is not None else ("message" if data is not None else UNSET),
                   UNSET if data is None else data, UNSET if block.id is None else block.id,
                   UNSET if block.retry is None else block.retry, UNSET if block.comment is None else block.comment,
                   timestamp, relative_ms, connection, True if kind == "message" else UNSET)

    def block(self) -> SseBlock:
        """The block to write again: exactly the lines that came (``at_ns``: now)."""
        return SseBlock(self.wire_type, or_none(self.data), or_none(self.id), or_none(self.retry),
                        or_none(self.comment))


class Metadata(_Model):
    path: str
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    source: str = "manual"
    method: str | Unset = UNSET
    host: str | Unset = UNSET


class WebSocketSection(_Model):
    subprotocol: str | Unset = UNSET
    frames: list[Frame] = []
    close_code: int | Unset = UNSET
    close_reason: str | Unset = UNSET


class SseRequest(_Model):
    method: str
    body: str | Unset = UNSET


class SseSection(_Model):
    events: list[SseEvent] = []
    status: int | Unset = UNSET
    headers: dict[str, str] | Unset = UNSET
    request: SseRequest | Unset = UNSET


class ConnectionRecord(_Model):
    """One captured connection, with the request that opened it (so a converted mock can match it) and,
    for SSE, the response's status and headers."""

    connection: int
    opened_at: str
    relative_ms: int
    origin: Literal["mock", "proxy", "replay"]
    path: str | Unset = UNSET  # the request path (a session's path may be a glob)
    closed_at: str | Unset = UNSET
    remote_addr: str | Unset = UNSET
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    subprotocol: str | Unset = UNSET
    close_code: int | Unset = UNSET
    close_reason: str | Unset = UNSET
    method: str | Unset = UNSET
    body: str | Unset = UNSET  # the request body (POST streams), redacted, at most MAX_CAPTURED_BODY bytes
    body_encoding: Literal["base64"] | Unset = UNSET  # the body was not UTF-8: ``body`` is base64
    body_truncated: bool | Unset = UNSET
    status: int | Unset = UNSET  # SSE: the response
    response_headers: dict[str, str] | Unset = UNSET


class HttpRequestRecord(_Model):
    method: str
    path: str
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    body: str | Unset = UNSET
    body_encoding: Literal["base64"] | Unset = UNSET
    body_truncated: bool | Unset = UNSET
    size: int = 0  # the whole body's length in bytes, kept or not


class HttpResponseRecord(_Model):
    status: int
    headers: dict[str, str] = {}
    body: str | Unset = UNSET
    body_encoding: Literal["base64"] | Unset = UNSET
    body_truncated: bool | Unset = UNSET
    size: int = 0


class HttpExchange(_Model):
    """One plain HTTP request and its response (a session of protocol ``http``)."""

    request: HttpRequestRecord
    response: HttpResponseRecord
    timestamp: str
    relative_ms: int
    duration_ms: int = 0
    connection: int = 1  # the exchange's number in the recording
    origin: Literal["mock", "proxy", "replay"] = "proxy"
    redaction_failed: bool | Unset = UNSET


class HttpSection(_Model):
    exchanges: list[HttpExchange] = []


class Stats(_Model):
    frame_count: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    file_size_bytes: int = 0
    text_frames: int = 0
    binary_frames: int = 0
    ping_pong: int = 0
    close_frames: int = 0
    event_count: int = 0
    exchange_count: int = 0
    connection_count: int = 0


class _Header(_Model):
    """The keys a recording starts with: what a whole recording and a summary's view both read."""

    id: str
    name: str
    protocol: RecordingProtocol
    status: Status
    start_time: str
    metadata: Metadata


class Recording(_Header):
    """A whole recording. ``websocket``, ``sse`` or ``http`` is set, after its ``protocol``."""

    version: str = FORMAT_VERSION
    end_time: str | Unset = UNSET
    duration: int = 0
    websocket: WebSocketSection | Unset = UNSET
    sse: SseSection | Unset = UNSET
    http: HttpSection | Unset = UNSET
    connections: list[ConnectionRecord] = []
    stop_reason: StopReason | Unset = UNSET
    deleted: bool | Unset = UNSET
    deleted_at: str | Unset = UNSET
    stats: Stats = msgspec.field(default_factory=Stats)

    @property
    def path(self) -> str:
        return self.metadata.path

    def connection_record(self, number: int) -> ConnectionRecord | None:
        return next((record for record in self.connections if record.connection == number), None)

    def opened_ms(self, number: int) -> int:
        """When connection ``number`` opened, in ms from the recording's start (0 when not captured)."""
        record = self.connection_record(number)
        return record.relative_ms if record is not None else 0

    def request_path(self, number: int) -> str:
        """The path connection ``number`` asked for (the session's path may be a glob)."""
        record = self.connection_record(number)
        return record.path if record is not None and isinstance(record.path, str) else self.metadata.path

    def request_method(self, number: int) -> str:
        """The method connection ``number`` was opened with. Recordings made before connections kept
        their own request have the first connection's in ``sse.request``."""
        record = self.connection_record(number)
        if record is not None and isinstance(record.method, str):
            return record.method
        first = self.connections[0] if self.connections else None
        if isinstance(self.sse, SseSection) and isinstance(self.sse.request, SseRequest) and record is first:
            return self.sse.request.method
        return self.metadata.method if isinstance(self.metadata.method, str) else "GET"

    def stream_response(self, number: int) -> tuple[int, dict[str, str]]:
        """SSE: the status and headers connection ``number`` was answered with, as recorded (200 and none
        when unknown). Recordings made before connections kept their own response have the first
        connection's in ``sse``."""
        record = self.connection_record(number)
        status = record.status if record is not None else UNSET
        headers = record.response_headers if record is not None else UNSET
        if isinstance(self.sse, SseSection) and self.connections and record is self.connections[0]:
            status = status if isinstance(status, int) else self.sse.status
            headers = headers if isinstance(headers, dict) else self.sse.headers
        return (status if isinstance(status, int) else 200, headers if isinstance(headers, dict) else {})

    def entries(self) -> list[Frame] | list[SseEvent] | list[HttpExchange]:
        if isinstance(self.websocket, WebSocketSection):
            return self.websocket.frames
        if isinstance(self.http, HttpSection):
            return self.http.exchanges
        return self.sse.events if isinstance(self.sse, SseSection) else []


# The order keys are written in, as in the example of docs/recording.md.
_KEY_ORDER = ("id", "version", "name", "protocol", "status", "startTime", "endTime", "duration", "metadata",
              "websocket", "sse", "http", "connections", "stopReason", "deleted", "deletedAt", "stats")


class Summary(msgspec.Struct, rename="camel", omit_defaults=True):  # `deleted` only when true
    """What ``GET /stream-recordings`` lists for each recording."""

    id: str
    name: str
    protocol: RecordingProtocol
    path: str
    status: Status
    start_time: str
    duration: int
    frame_count: int
    file_size: int
    connection_count: int
    deleted: bool = False


class StorageStats(msgspec.Struct, rename="camel", omit_defaults=True):
    """``GET /stream-recordings/stats``: the quota's use and the recordings' counts (from the summary
    index: never a recording file read). The oldest and newest are there when a recording is."""

    used_bytes: int
    max_bytes: int
    used_percent: float
    warn_percent: int | float  # as configured (80 or 75.5)
    recording_count: int
    websocket_count: int
    sse_count: int
    http_count: int
    deleted_count: int
    deleted_bytes: int
    oldest_recording: str | None = None
    oldest_date: str | None = None
    newest_recording: str | None = None
    newest_date: str | None = None
    warning: str | None = None



class SessionSummary(msgspec.Struct, rename="camel"):
    """The items of ``GET /stream-recordings/sessions``: a running session with its live counts."""

    id: str
    name: str
    protocol: Literal["websocket", "sse", "http"]
    path: str
    start_time: str
    duration_ms: int
    frame_count: int
    connection_count: int



def summarize(recording: Recording) -> Summary:
    return Summary(id=recording.id, name=recording.name, protocol=recording.protocol, path=recording.path,
                   status=recording.status, start_time=recording.start_time, duration=recording.duration,
                   frame_count=recording.stats.frame_count, file_size=recording.stats.file_size_bytes,
                   connection_count=recording.stats.connection_count, deleted=recording.deleted is True)


# --- time -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _whole_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339(ns: int) -> str:
    """UTC with ``Z`` and microseconds: ``2024-01-15T10:30:00.100123Z``. (Frames come many to a second,
    so the formatted second is cached; this runs once per recorded frame.)"""
    seconds, remainder = divmod(ns, 1_000_000_000)
    return f"{_whole_second(seconds)}.{remainder // 1000:06d}Z"


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch (microsecond precision) from an RFC 3339 time."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


# --- writing --------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_ENTRIES_KEY = {"websocket": b'"frames":[]', "sse": b'"events":[]', "http": b'"exchanges":[]'}


_SECTION_ORDER = {"websocket": ("subprotocol", "frames", "closeCode", "closeReason"),
                  "sse": ("events", "status", "headers", "request"), "http": ("exchanges",)}


def _ordered(recording: Recording) -> dict[str, Any]:
    """The recording as builtins in the file's key order, its frame or event list always present
    (msgspec writes struct fields in definition order and leaves out empty defaults)."""
    builtins = msgspec.to_builtins(recording)
    section = builtins.get(recording.protocol, {})
    builtins[recording.protocol] = {key: section.get(key, []) for key in _SECTION_ORDER[recording.protocol]
                                    if key in section or key in ("frames", "events")}
    return {key: builtins[key] for key in _KEY_ORDER if key in builtins}


def encode_recording(head: Recording, entries: Iterable[bytes], count: int, size: int) -> Iterator[bytes]:
    """The file's bytes in pieces: ``head`` (whose frame/event list is empty) with ``count`` already
    encoded ``entries`` (``size`` bytes in all) spliced into that list, and ``stats.fileSizeBytes``
    equal to the total. Streaming the entries writes a recording of any length in flat memory."""
    marker = _ENTRIES_KEY[head.protocol]
    body = size + max(count - 1, 0)  # the entries and the commas between them
    file_size = 0
    for _ in range(4):  # the size's own digits change the size: iterate to the fixed point
        head.stats.file_size_bytes = file_size
        encoded = _encoder.encode(_ordered(head))
        split = encoded.rindex(marker) + len(marker) - 1
        if len(encoded) + body == file_size:
            break
        file_size = len(encoded) + body
    yield encoded[:split]
    first = True
    for entry in entries:
        yield entry if first else b"," + entry
        first = False
    yield encoded[split:]


def recording_bytes(recording: Recording) -> bytes:
    """A recording held in memory, as its file's exact bytes (``stats.fileSizeBytes`` filled in)."""
    entries = [encode_entry(entry) for entry in recording.entries()]
    head = without_entries(recording)
    raw = b"".join(encode_recording(head, entries, len(entries), sum(map(len, entries))))
    recording.stats.file_size_bytes = head.stats.file_size_bytes
    return raw


def head_bytes(recording: Recording) -> bytes:
    """A recording without its entries (:func:`without_entries`) as JSON in the file's key order, its
    stats as they are (they describe the whole file)."""
    return _encoder.encode(_ordered(recording))


def check_served_path(path: str | None) -> None:
    """The ``path`` option of a conversion or a replay: where to serve instead of the recorded path."""
    if path is not None and not path.startswith("/"):
        raise ValueError("path must start with '/'")


def without_entries(recording: Recording) -> Recording:
    """A copy of the recording with its frame, event or exchange list empty (and its own stats)."""
    head = msgspec.structs.replace(recording, stats=msgspec.structs.replace(recording.stats))
    if isinstance(head.websocket, WebSocketSection):
        head.websocket = msgspec.structs.replace(head.websocket, frames=[])
    if isinstance(head.sse, SseSection):
        head.sse = msgspec.structs.replace(head.sse, events=[])
    if isinstance(head.http, HttpSection):
        head.http = msgspec.structs.replace(head.http, exchanges=[])
    return head


def encode_entry(entry: Frame | SseEvent | HttpExchange) -> bytes:
    return _encoder.encode(entry)


# --- reading --------------------------------------------------------------------------------------

_decoder = msgspec.json.Decoder(Recording)


class _SummaryView(_Header):
    """The parts of a file a summary needs; msgspec skips the frames without building them."""

    duration: int = 0
    stats: Stats = msgspec.field(default_factory=Stats)
    deleted: bool = False


_summary_decoder = msgspec.json.Decoder(_SummaryView)


def decode_summary(raw: bytes, file_size: int | None = None) -> Summary:
    """The summary of a recording file (or of its head, the file being ``file_size`` bytes)."""
    view = _summary_decoder.decode(raw)
    return Summary(id=view.id, name=view.name, protocol=view.protocol, path=view.metadata.path,
                   status=view.status, start_time=view.start_time, duration=view.duration,
                   frame_count=view.stats.frame_count, file_size=len(raw) if file_size is None else file_size,
                   connection_count=view.stats.connection_count, deleted=view.deleted)


_GO_MARKERS = (b'"dir":', b'"rel":', b'"event":')


def is_foreign(raw: bytes) -> bool:
    """Whether a file is in the Go mockd's layout. The markers can only be keys (inside JSON strings
    quotes are escaped), so our own files are told apart without parsing them."""
    return any(marker in raw for marker in _GO_MARKERS) and _looks_foreign(msgspec.json.decode(raw))


def decode_recording(raw: bytes) -> Recording:
    """A recording file, in our layout or the Go mockd's (``dir``/``ts``/``rel``/``event``)."""
    if is_foreign(raw):
        return msgspec.convert(from_go_layout(msgspec.json.decode(raw)), Recording)
    return _decoder.decode(raw)


def _looks_foreign(document: Any) -> bool:
    section = document.get("websocket") or document.get("sse") or {} if isinstance(document, dict) else {}
    items = (section.get("frames") or section.get("events") or []) if isinstance(section, dict) else []
    return bool(items) and _foreign_item(items[0])


def _foreign_item(item: Any) -> bool:
    return isinstance(item, dict) and ("dir" in item or "rel" in item or "event" in item)


def is_foreign_entry(raw: bytes) -> bool:
    """Whether a frame or event (as it is in a file) is in the Go mockd's layout."""
    return any(marker in raw for marker in _GO_MARKERS) and _foreign_item(msgspec.json.decode(raw))


_GO_FRAME_KEYS = {"dir": "direction", "ts": "timestamp", "rel": "relativeMs", "msgType": "type",
                  "messageType": "type"}
_GO_EVENT_KEYS = {"event": "type", "ts": "timestamp", "rel": "relativeMs", "eventType": "type"}


def from_go_layout(document: dict[str, Any]) -> dict[str, Any]:
    """Rename the Go mockd's frame and event keys to ours (import); everything else is kept."""
    result = dict(document)
    if isinstance(document.get("websocket"), dict):
        section = dict(document["websocket"])
        section["frames"] = [_rename(frame, _GO_FRAME_KEYS) for frame in section.get("frames") or []]
        result["websocket"] = section
    if isinstance(document.get("sse"), dict):
        section = dict(document["sse"])
        section["events"] = [_message_by_default(_rename(event, _GO_EVENT_KEYS))
                             for event in section.get("events") or []]
        result["sse"] = section
    result.setdefault("version", FORMAT_VERSION)
    metadata = dict(result.get("metadata") or {})
    metadata.setdefault("path", "/")
    metadata.setdefault("source", "import")
    result["metadata"] = metadata
    return result


def _message_by_default(event: dict[str, Any]) -> dict[str, Any]:
    """A data block without ``event:`` is a ``message``, as in our own recordings."""
    if "data" in event and not event.get("type"):
        event["type"] = "message"
    return event


def _rename(item: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    renamed = {keys.get(key, key): value for key, value in item.items()}
    if renamed.get("encoding") != "base64":
        renamed.pop("encoding", None)  # the Go recorder marks text as "utf8"; ours leaves it out
    if isinstance(renamed.get("relativeMs"), float):
        renamed["relativeMs"] = int(renamed["relativeMs"])
    return renamed
