"""Recording → mock config: a pure function whose output ``mockd serve --config`` loads as it is.

The whole recording is converted: one mock per captured connection (a WebSocket connection, an SSE
stream, or an HTTP exchange), id ``<recording id>-<connection number>``. Each mock matches the request
that opened its connection — WebSocket upgrades on path and subprotocol, HTTP and SSE requests on
method, path, query and body (``matchOn``, ``ignoreQuery`` and ``ignoreBody`` change that) — and
connections whose requests match alike are served in recorded order to successive clients: each but the
last of them serves once (``times: 1``), the last every client after.

WebSocket: a scenario whose steps reproduce the connection — each server frame a ``send`` (byte for
byte, templating off) after the recorded gap since the previous step, each client message an
``expect``, a server ping a ``ping``, the server's close a ``close``. Gaps count from the previous step,
so after an ``expect`` the clock restarts when the client's message arrives: server think-time is kept,
client think-time is the client's.

SSE: an ``http`` mock answering the recorded status and headers with an ``sse`` block holding the
recorded events exactly as they came (data as the exact string, no ``event:`` line where the block had
none) and their gaps as ``perEventDelays``, the first counted from the connection's opening.

HTTP: an ``http`` mock answering the recorded status, headers and body after the recorded duration.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from mockd.config.model import (CONFIG_VERSION, BodyMatch, CloseStep, ConfigFile, ExpectStep, HttpMatcher, HttpMock,
                                HttpResponse, HttpSpec, MessageMatch, Mock, PingStep, Scenario, ScenarioStep, SendStep,
                                SseConfig, SseMockEvent, SseTiming, WaitStep, WebSocketMock, WebSocketSpec, WsMessage,
                                check_jsonpath)
from mockd.recording.format import (UNSET, ConnectionRecord, Frame, HttpExchange, Recording, SseRequest, SseSection,
                                    WebSocketSection, check_served_path)
from mockd.recording.reader import RecordingReader
from mockd.serving.headers import replayable_headers
from mockd.serving.mocks.http import child_path, decode_json, is_json
from mockd.serving.mocks.sse import event_from_block

MatchField = Literal["method", "path", "query", "body", "subprotocol"]
DEFAULT_MATCH_ON: dict[str, tuple[MatchField, ...]] = {
    "websocket": ("path", "subprotocol"),  # clients put cache-busters and tokens in an upgrade's query
    "sse": ("method", "path", "query", "body"),
    "http": ("method", "path", "query", "body"),
}
DEFAULT_REDACT_VALUE = "[REDACTED]"
DEFAULT_MIN_DELAY = 10  # ms
DEFAULT_MAX_DELAY = 5000  # ms


class ConvertOptions(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """The body of ``POST /stream-recordings/{id}/convert``, and the CLI's ``convert`` flags.

    ``minDelay`` or ``maxDelay`` without ``simplifyTiming`` imply it (they mean nothing else); an
    explicit ``simplifyTiming: false`` keeps the recorded delays whatever they say."""

    simplify_timing: bool | None = None
    min_delay: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_delay: Annotated[int, msgspec.Meta(ge=0)] | None = None
    include_client_messages: bool = True
    strict_matching: bool = False
    connection: int | None = None
    path: str | None = None
    match_on: list[MatchField] | None = None
    ignore_query: list[str] = []
    ignore_body: list[str] = []
    origins: list[Literal["mock", "proxy", "replay"]] | None = None  # only connections served this way

    def __post_init__(self) -> None:
        if (self.min_delay or 0) < 0 or (self.max_delay or 0) < 0:
            raise ValueError("minDelay and maxDelay must not be negative")
        if self.min_delay_ms > self.max_delay_ms:
            def shown(value: int | None, used: int) -> str:
                return f"{used}, the default" if value is None else str(used)

            raise ValueError(f"minDelay ({shown(self.min_delay, self.min_delay_ms)}) must not exceed maxDelay "
                             f"({shown(self.max_delay, self.max_delay_ms)})")
        check_served_path(self.path)
        for index, path in enumerate(self.ignore_body):
            check_jsonpath(path, f"ignoreBody[{index}]")

    @property
    def simplifies_timing(self) -> bool:
        if self.simplify_timing is not None:
            return self.simplify_timing
        return self.min_delay is not None or self.max_delay is not None

    @property
    def min_delay_ms(self) -> int:
        return DEFAULT_MIN_DELAY if self.min_delay is None else self.min_delay

    @property
    def max_delay_ms(self) -> int:
        return DEFAULT_MAX_DELAY if self.max_delay is None else self.max_delay

    def matches_on(self, protocol: str, field: MatchField) -> bool:
        return field in (self.match_on if self.match_on is not None else DEFAULT_MATCH_ON[protocol])


class NothingToConvert(Exception):
    """The recording (or the chosen connection) has no frame a mock could reproduce."""


class NoSuchConnection(Exception):
    """The connection asked for is not in the recording."""


DEFAULT_OPTIONS = ConvertOptions()


def convert(recording: Recording, options: ConvertOptions = DEFAULT_OPTIONS,
            redact_value: str = DEFAULT_REDACT_VALUE) -> ConfigFile:
    """A recording held in memory as a mock config: what :func:`convert_pieces` writes, read back."""
    return msgspec.json.decode(b"".join(convert_pieces(RecordingReader.of(recording), options, redact_value)),
                               type=ConfigFile)


def convert_pieces(reader: RecordingReader, options: ConvertOptions = DEFAULT_OPTIONS,
                   redact_value: str = DEFAULT_REDACT_VALUE) -> Iterator[bytes]:
    """Every connection (or the one asked for) as a mock: the config file's bytes (as
    :func:`config_bytes` writes them) in pieces, written connection by connection as the frames are
    read, so a recording of any length converts in bounded memory. ``redact_value`` marks recorded
    values a client's request cannot be compared with (they are left out of the matchers).

    Raises NoSuchConnection or NothingToConvert here, before the first piece."""
    converter = _Converter(reader, options, redact_value)
    keys = [_match_key(planned.mock) for planned in converter.planned()]
    if not keys:
        which = f"connection {options.connection}" if options.connection is not None else "the recording"
        raise NothingToConvert(f"{which} has no frames a mock could reproduce")
    return _document(converter, keys)


def config_bytes(config: ConfigFile) -> bytes:
    return msgspec.json.format(msgspec.json.encode(config), indent=2) + b"\n"


def _document(converter: _Converter, keys: list[bytes]) -> Iterator[bytes]:
    """The config: each planned mock, formatted, with its long lists spliced in as they are read.
    Mocks that would match the same requests serve them in order: all but the last of each such group
    serve once (``times: 1``); the last serves every request after."""
    last = {key: index for index, key in enumerate(keys)}
    tokens = converter.tokens
    wrapper = config_bytes(ConfigFile(version=CONFIG_VERSION, mocks=[tokens.item]))  # type: ignore[list-item]
    found = tokens.line(tokens.item).search(wrapper)
    assert found is not None
    indent = found.group(1)
    yield wrapper[:found.start() + 1]
    for index, planned in enumerate(converter.planned()):
        mock = planned.mock if last[keys[index]] == index else msgspec.structs.replace(planned.mock, times=1)
        text = indent + msgspec.json.format(msgspec.json.encode(mock), indent=2).replace(b"\n", b"\n" + indent)
        if index:
            yield b",\n"
        yield from _spliced(text, planned.lists, tokens)
    yield wrapper[found.end():]


def _spliced(text: bytes, lists: list[tuple[Any, Callable[[], Iterator[Any]]]], tokens: _Tokens) -> Iterator[bytes]:
    """``text`` with each token's line replaced by the items of its list, formatted at its depth."""
    position = 0
    for token, items in lists:
        found = tokens.line(token).search(text, position)
        assert found is not None
        yield text[position:found.start() + 1]
        yield from _formatted_items(items(), found.group(1))
        position = found.end()
    yield text[position:]


def _formatted_items(items: Iterator[Any], indent: bytes, batch_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Items as ``msgspec.json.format`` puts them in a list at this depth, about ``batch_bytes`` at a time."""
    prefix = indent[:-2]  # format indents a list's items by 2
    encoded: list[bytes] = []
    size = 0
    first = True
    for item in items:
        encoded.append(msgspec.json.encode(item))
        size += len(encoded[-1])
        if size >= batch_bytes:
            yield _formatted_batch(encoded, prefix, first)
            encoded, size, first = [], 0, False
    if encoded:
        yield _formatted_batch(encoded, prefix, first)


def _formatted_batch(encoded: list[bytes], prefix: bytes, first: bool) -> bytes:
    body = msgspec.json.format(b"[" + b",".join(encoded) + b"]", indent=2)[2:-2]  # without "[\n" and "\n]"
    return (b"" if first else b",\n") + prefix + body.replace(b"\n", b"\n" + prefix)


class _Tokens:
    """Placeholders that stand for a list's items in a mock until they are spliced in: random per
    conversion, on a line of their own, so recorded data cannot look like them."""

    def __init__(self) -> None:
        self.item = f"\0mockd-splice-{uuid.uuid4().hex}"
        self.number = random.randrange(10**18, 10**19)
        self._lines = {token: re.compile(rb"\n( *)" + re.escape(msgspec.json.encode(token)) + rb"(?=\n)")
                       for token in (self.item, self.number)}

    def line(self, token: Any) -> re.Pattern[bytes]:
        """The token on a line of its own (group 1: the line's indentation)."""
        return self._lines[token]


def _spans(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    ordered = sorted(numbers)
    return f"{ordered[0]}-{ordered[-1]}" if ordered == list(range(ordered[0], ordered[-1] + 1)) else \
        ", ".join(map(str, ordered))


def _match_key(mock: Mock) -> bytes:
    if isinstance(mock, WebSocketMock) and mock.websocket is not None:
        spec = mock.websocket
        required = spec.subprotocols if spec.require_subprotocol else []  # offered ones do not decide a match
        return _encoder.encode(["websocket", spec.path, spec.query, required])
    assert isinstance(mock, HttpMock) and mock.http is not None
    return _encoder.encode(["http", mock.http.matcher])


_encoder = msgspec.json.Encoder(order="sorted")  # bodies equal as JSON make the same key


def _delay(gap_ms: int, options: ConvertOptions) -> int:
    gap = max(gap_ms, 0)
    if options.simplifies_timing:
        if gap < options.min_delay_ms:
            return 0
        return min(gap, options.max_delay_ms)
    return gap


def redacted_paths(document: Any, redact_value: str, where: str = "$") -> Iterator[str]:
    """JSONPaths of the values redaction replaced (they hold exactly the redact value)."""
    if document == redact_value:
        yield where
    elif isinstance(document, dict):
        for key, value in document.items():
            yield from redacted_paths(value, redact_value, child_path(where, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from redacted_paths(value, redact_value, f"{where}[{index}]")


@dataclass
class _Planned:
    """A connection's mock, its long lists standing as tokens, with what reads their items."""

    mock: Mock
    lists: list[tuple[Any, Callable[[], Iterator[Any]]]] = field(default_factory=list)


class _Converter:
    """Turns one recording's connections into mocks."""

    def __init__(self, reader: RecordingReader, options: ConvertOptions, redact_value: str) -> None:
        self.reader = reader
        self.recording = reader.head
        self.options = options
        self.redact_value = redact_value
        self.tokens = _Tokens()
        self.records = {record.connection: record for record in self.recording.connections}
        self.first = self.recording.connections[0].connection if self.recording.connections else None
        self.numbers = reader.connection_numbers()
        if options.connection is not None:
            if options.connection not in self.numbers:
                raise NoSuchConnection(f"the recording has {len(self.numbers)} connection(s) ({_spans(self.numbers)}); "
                                       f"there is no connection {options.connection}")
            self.numbers = [options.connection]

    def planned(self) -> Iterator[_Planned]:
        """Each chosen connection's mock, in recorded order (an HTTP recording's: each exchange's)."""
        if self.recording.protocol == "http":
            chosen = set(self.numbers)
            for exchange in self.reader.entries():
                if exchange.connection in chosen and self._wanted(exchange.connection, exchange.origin):
                    yield _Planned(HttpMock(id=self._id(exchange.connection), name=self._name(exchange.connection),
                                            http=self._exchange(exchange)))
            return
        for number in self.numbers:
            record = self.records.get(number)
            if self._wanted(number, record.origin if record is not None else None):
                planned = self._websocket(number) if self.recording.protocol == "websocket" else self._sse(number)
                if planned is not None:
                    yield planned

    def _id(self, number: int) -> str:
        return f"{self.recording.id}-{number}"

    def _name(self, number: int) -> str:
        return f"{self.recording.name} #{number}"

    def _wanted(self, number: int, origin: str | None) -> bool:
        """Whether the connection was served the way ``origins`` asks for (any, when unset)."""
        return self.options.origins is None or origin in self.options.origins

    def _path(self, number: int) -> str:
        """The mock's path: as asked, else the connection's real path (a session path may be a glob)."""
        return self.options.path or self.recording.request_path(number)

    def _query(self, protocol: str, query: dict[str, str]) -> dict[str, str]:
        if not self.options.matches_on(protocol, "query"):
            return {}
        ignored = set(self.options.ignore_query)
        return {name: value for name, value in query.items() if name not in ignored and value != self.redact_value}

    # --- WebSocket ----------------------------------------------------------------------------------

    def _websocket(self, number: int) -> _Planned | None:
        record = self.records.get(number)
        opened_ms = self.recording.opened_ms(number)

        def steps() -> Iterator[ScenarioStep]:
            return websocket_steps(self.reader.entries(number), opened_ms, self.options)

        if next(steps(), None) is None:
            return None
        section = self.recording.websocket
        subprotocol = record.subprotocol if record is not None else UNSET
        if not isinstance(subprotocol, str) and number == self.first and isinstance(section, WebSocketSection):
            subprotocol = section.subprotocol
        subprotocols = [subprotocol] if isinstance(subprotocol, str) else []
        spec = WebSocketSpec(
            path=self._path(number), query=self._query("websocket", record.query if record else {}),
            subprotocols=subprotocols,
            require_subprotocol=bool(subprotocols) and self.options.matches_on("websocket", "subprotocol"),
            scenario=Scenario(name=self.recording.name, steps=[self.tokens.item]))  # type: ignore[list-item]
        return _Planned(WebSocketMock(id=self._id(number), name=self._name(number), websocket=spec),
                        [(self.tokens.item, steps)])

    # --- SSE ----------------------------------------------------------------------------------------

    def _sse(self, number: int) -> _Planned | None:
        if next(self.reader.entries(number), None) is None:
            return None
        section = self.recording.sse if isinstance(self.recording.sse, SseSection) else SseSection()
        record = self.records.get(number) or ConnectionRecord(connection=number, opened_at="", relative_ms=0,
                                                               origin="proxy")

        def events() -> Iterator[SseMockEvent]:
            return (event_from_block(event.block()) for event in self.reader.entries(number))

        def delays() -> Iterator[int]:
            last_ms = record.relative_ms
            for event in self.reader.entries(number):
                yield _delay(event.relative_ms - last_ms, self.options)
                last_ms = event.relative_ms

        status, headers = self.recording.stream_response(number)
        sse = SseConfig(events=[self.tokens.item],  # type: ignore[list-item]
                        timing=SseTiming(per_event_delays=[self.tokens.number]),
                        status_code=status, headers=replayable_headers(headers.items()))
        http = HttpSpec(matcher=self._stream_matcher(number, record, section), sse=sse)
        return _Planned(HttpMock(id=self._id(number), name=self._name(number), http=http),
                        [(self.tokens.item, events), (self.tokens.number, delays)])

    def _stream_matcher(self, number: int, record: ConnectionRecord, section: SseSection) -> HttpMatcher:
        method, body = self.recording.request_method(number), record.body
        if number == self.first and isinstance(section.request, SseRequest):
            body = body if isinstance(body, str) else section.request.body
        truncated = record.body_truncated is True
        return self._matcher("sse", method, self._path(number), record.query,
                             body if isinstance(body, str) and not truncated else None,
                             record.body_encoding == "base64")

    def _matcher(self, protocol: str, method: str, path: str, query: dict[str, str], body: str | None,
                 base64_body: bool) -> HttpMatcher:
        options = self.options
        return HttpMatcher(method=method if options.matches_on(protocol, "method") else None, path=path,
                           query=self._query(protocol, query),
                           body=self._body_match(body, base64_body) if options.matches_on(protocol, "body") else None)

    def _body_match(self, body: str | None, base64_body: bool) -> BodyMatch | None:
        """JSON bodies compared as JSON (less ignored and redacted fields), others byte for byte."""
        if body is None or body == self.redact_value:  # a body redaction could not read is not compared
            return None
        if base64_body:
            return BodyMatch(type="exact", value=body, encoding="base64")
        document = decode_json(body)
        if not is_json(document):
            return BodyMatch(type="exact", value=body)
        ignore = [*self.options.ignore_body, *redacted_paths(document, self.redact_value)]
        return BodyMatch(type="jsonEqual", value=document, ignore=ignore)

    # --- HTTP ---------------------------------------------------------------------------------------

    def _exchange(self, exchange: HttpExchange) -> HttpSpec:
        request, response = exchange.request, exchange.response
        path = self.options.path or request.path
        body = request.body if isinstance(request.body, str) and request.body_truncated is not True else None
        matcher = self._matcher("http", request.method, path, request.query, body, request.body_encoding == "base64")
        answer = HttpResponse(status_code=response.status, headers=replayable_headers(response.headers.items()),
                              body=response.body if isinstance(response.body, str) else None,
                              body_encoding="base64" if response.body_encoding == "base64" else None,
                              delay_ms=_delay(exchange.duration_ms, self.options))
        return HttpSpec(matcher=matcher, response=answer)


def websocket_steps(frames: Iterable[Frame], opened_ms: int, options: ConvertOptions) -> Iterator[ScenarioStep]:
    """The scenario steps that reproduce a connection's frames, as they are read."""
    last_ms = opened_ms
    client_closed = False
    for frame in frames:
        gap = _delay(frame.relative_ms - last_ms, options)
        if frame.direction == "c2s":
            if frame.type == "close":
                client_closed = True
            elif frame.type in ("text", "binary") and options.include_client_messages:
                yield ExpectStep(match=_client_match(frame, options))
                last_ms = frame.relative_ms
            continue
        if frame.type in ("text", "binary"):
            value = frame.data  # text as sent; binary is already base64
            delay = f"{gap}ms" if gap else None
            yield SendStep(message=WsMessage(type=frame.type, value=value, delay=delay, template=False))
        elif frame.type == "ping":
            if gap:
                yield WaitStep(duration=f"{gap}ms")
            yield PingStep(data=frame.data)
        elif frame.type == "close" and not client_closed:
            code = frame.close_code if isinstance(frame.close_code, int) else 1000
            reason = frame.close_reason if isinstance(frame.close_reason, str) else ""
            yield CloseStep(code=code, reason=reason, delay=f"{gap}ms" if gap else None)
            break
        else:
            continue  # pongs, and the server's answer to the client's close, produce no step
        last_ms = frame.relative_ms


def _client_match(frame: Frame, options: ConvertOptions) -> MessageMatch | None:
    if not options.strict_matching:
        return None
    if frame.type == "binary":  # compared as bytes: undecodable bytes must not all look alike
        return MessageMatch(type="exact", value=frame.data, message_type="binary", encoding="base64")
    return MessageMatch(type="exact", value=frame.data, message_type="text")

