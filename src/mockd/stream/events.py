"""Stream events: what mocks, the proxy and replays emit, and what the recorder subscribes to.

Producers never know who listens (as with mitmproxy's addons): they call :class:`StreamEvents`, which
fans each event out to the current subscribers. Every subscriber is told of each connection's opening
and closing and of each HTTP exchange; a connection's frames and SSE events are emitted only while some
subscriber *follows* it (``Connection.followers``, counted by the subscribers), so the proxy decodes
and parses only the connections someone records. With nobody following, the cost is one truth test.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from aiohttp.web import BaseRequest

Protocol_ = Literal["websocket", "sse", "http"]
Origin = Literal["mock", "proxy", "replay"]
Direction = Literal["c2s", "s2c"]
FrameType = Literal["text", "binary", "ping", "pong", "close"]

_connection_numbers = itertools.count(1)
MAX_CAPTURED_BODY = 1024 * 1024  # how much of a request's or response's body is kept for a recording


@dataclass(slots=True, eq=False)
class Connection:
    """One client connection carrying a stream — or one plain HTTP exchange (protocol ``http``) — as the
    recorder needs to describe it. Bodies are kept up to ``MAX_CAPTURED_BODY`` bytes (a body one byte
    longer says it was cut); ``*_size`` count the whole body."""

    protocol: Protocol_
    origin: Origin
    method: str
    path: str
    host: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    remote: str | None
    subprotocol: str | None = None
    number: int = field(default_factory=lambda: next(_connection_numbers))
    opened_ns: int = field(default_factory=time.time_ns)
    closed_ns: int | None = None
    close_code: int | None = None
    close_reason: str | None = None
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: bytes | None = None
    request_size: int = 0
    response_body: bytes | None = None
    response_size: int = 0
    followers: int = 0  # subscribers that want this connection's frames and events (see the module docstring)


class BodyCapture:
    """What a recording keeps of a body passing through in chunks: its first ``MAX_CAPTURED_BODY`` bytes
    (one more when there was more, so the recording can say it was cut) and its whole size. A compressed
    body is kept decompressed (``decoder``), never inflated past the bound."""

    def __init__(self, decoder: zlib._Decompress | None = None) -> None:
        self.data = bytearray()
        self.size = 0
        self._decoder = decoder

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = MAX_CAPTURED_BODY + 1 - len(self.data)
        if room > 0:
            try:
                piece = self._decoder.decompress(chunk, room) if self._decoder is not None else chunk[:room]
            except zlib.error:
                self._decoder, piece = None, chunk[:room]  # not what it said it was: keep the bytes
            self.data += piece

    def kept(self) -> bytes:
        return bytes(self.data)


class WsFrame(msgspec.Struct, gc=False):
    """A WebSocket frame as it passed through mockd. ``data`` is ``str`` for text, ``bytes`` otherwise.

    (A Struct rather than a dataclass: one is made per frame on the relay path, and a Struct's
    constructor is about three times cheaper.)"""

    direction: Direction
    type: FrameType
    data: str | bytes
    close_code: int | None = None
    close_reason: str | None = None
    at_ns: int = msgspec.field(default_factory=time.time_ns)


class SseBlock(msgspec.Struct, gc=False):
    """One SSE block exactly as written or read: only the fields the block had are set."""

    type: str | None = None
    data: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None
    at_ns: int = msgspec.field(default_factory=time.time_ns)


SSE_DATA_SEPARATOR = "\n\ndata: "  # between the data of two one-line data blocks


class SseDataRun(msgspec.Struct, gc=False):
    """Blocks of one chunk that were each one ``data: `` line and nothing else — all that most streams
    (LLM APIs, feeds) ever send — kept as the text they came in: ``text`` is the blocks' lines less the
    first ``data: `` and the last blank line, so the blocks' data are ``text`` split at
    :data:`SSE_DATA_SEPARATOR`. A subscriber journals or counts the run without an object per event;
    :meth:`data` and :meth:`blocks` make them."""

    text: str
    count: int
    at_ns: int

    @classmethod
    def of(cls, data: list[str], at_ns: int) -> SseDataRun:
        """The run of these data strings (none may hold a line break)."""
        return cls(SSE_DATA_SEPARATOR.join(data), len(data), at_ns)

    def data(self) -> list[str]:
        return self.text.split(SSE_DATA_SEPARATOR)

    def blocks(self) -> list[SseBlock]:
        at_ns = self.at_ns
        return [SseBlock(None, data, None, None, None, at_ns) for data in self.data()]


def connection_from_request(request: BaseRequest, protocol: Protocol_, origin: Origin,
                            subprotocol: str | None = None) -> Connection:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return Connection(
        protocol=protocol, origin=origin, method=request.method, path=request.path, host=request.host,
        headers=list(request.headers.items()), query=list(request.query.items()),
        remote=f"{peer[0]}:{peer[1]}" if peer else None, subprotocol=subprotocol)


class LiveConnection(Protocol):
    """An open stream the registry may have to close: a WebSocket mock session or a proxy relay."""

    def request_close(self, code: int, reason: str = "") -> None: ...


class StreamSubscriber(Protocol):
    def connection_opened(self, connection: Connection) -> None: ...
    def ws_frame(self, connection: Connection, frame: WsFrame) -> None: ...
    def sse_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None: ...
    def sse_data(self, connection: Connection, run: SseDataRun) -> None: ...
    def connection_closed(self, connection: Connection) -> None: ...
    def http_exchange(self, exchange: Connection) -> None: ...


class StreamEvents:
    """Fan-out of stream activity to subscribers. Subscribers must not block: they run on the relay path."""

    def __init__(self) -> None:
        self._subscribers: tuple[StreamSubscriber, ...] = ()
        self.open_connections: set[Connection] = set()  # so a late subscriber can pick them up

    def subscribe(self, subscriber: StreamSubscriber) -> None:
        self._subscribers = (*self._subscribers, subscriber)

    def unsubscribe(self, subscriber: StreamSubscriber) -> None:
        self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    def connection_opened(self, connection: Connection) -> None:
        self.open_connections.add(connection)
        for subscriber in self._subscribers:
            subscriber.connection_opened(connection)

    def ws_frame(self, connection: Connection, frame: WsFrame) -> None:
        for subscriber in self._subscribers:
            subscriber.ws_frame(connection, frame)

    def sse_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None:
        """Blocks that arrived together (one chunk of a relayed stream; one block from a mock):
        one call for all, so a busy stream costs the subscribers one call per chunk."""
        for subscriber in self._subscribers:
            subscriber.sse_blocks(connection, blocks)

    def sse_data(self, connection: Connection, run: SseDataRun) -> None:
        """A chunk's blocks when each was a single ``data:`` line (see :class:`SseDataRun`)."""
        for subscriber in self._subscribers:
            subscriber.sse_data(connection, run)

    @contextmanager
    def connection(self, connection: Connection) -> Iterator[Connection]:
        """The connection is open inside the block: :meth:`connection_opened` on entry,
        :meth:`connection_closed` on leaving it, however it is left — so release the sockets after it."""
        self.connection_opened(connection)
        try:
            yield connection
        finally:
            self.connection_closed(connection)

    def connection_closed(self, connection: Connection) -> None:
        """Emitters call this as soon as the closing handshake is over (or the connection dropped) and
        *before* they release the sockets: a client that saw its connection end and at once stops a
        recording finds the close in it."""
        if connection.closed_ns is None:
            connection.closed_ns = time.time_ns()
        self.open_connections.discard(connection)
        for subscriber in self._subscribers:
            subscriber.connection_closed(connection)

    def http_exchange(self, exchange: Connection) -> None:
        """A plain HTTP request has been answered (``closed_ns`` is when the response ended)."""
        if exchange.closed_ns is None:
            exchange.closed_ns = time.time_ns()
        for subscriber in self._subscribers:
            subscriber.http_exchange(exchange)

    @property
    def listening(self) -> bool:
        return bool(self._subscribers)
