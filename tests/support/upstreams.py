"""Fake upstreams and raw clients, first written for the upstream-proxy tests (docs/config.md, "Proxy mocks")
and shared by every black-box test that speaks WebSocket or raw HTTP/1.1 to mockd.

Every upstream here is an independent implementation, listening on 127.0.0.1 port 0 inside the test's
event loop: the ``websockets`` library's server for WebSocket, aiohttp's web server for plain HTTP,
and raw ``asyncio`` servers where a test needs control over the bytes (hand-made WebSocket handshakes,
paced chunked streams, sockets that never answer). Clients are the ``websockets`` client and a small raw
HTTP/1.1 client; never aiohttp, which mockd itself is built on.

Each end records what it saw (frames, requests, times from the event loop's clock), so tests compare
what one end sent with what the other received.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode

from processes import MockdFactory, RunningMockd
from configs import mocks_config

DEADLINE = 5.0  # generous deadline for anything that should happen "now" on a noisy machine
HOST = "127.0.0.1"

# --- WebSocket: frame logs ------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenFrame:
    """One frame as it arrived on the wire (after permessage-deflate), with its arrival time."""

    opcode: Opcode
    data: bytes
    fin: bool
    at: float

    def close(self) -> Close | None:
        """The close code and reason of a CLOSE frame (code 1005 when it carried no payload)."""
        assert self.opcode is Opcode.CLOSE
        return Close.parse(self.data)


class FrameLog:
    """Every frame one WebSocket end received, in order; tests can wait for a frame that matches."""

    def __init__(self) -> None:
        self.frames: list[SeenFrame] = []
        self._changed = asyncio.Event()

    def add(self, frame: Frame) -> None:
        self.frames.append(SeenFrame(frame.opcode, bytes(frame.data), frame.fin,
                                     asyncio.get_running_loop().time()))
        self._changed.set()

    def of(self, *opcodes: Opcode) -> list[SeenFrame]:
        return [frame for frame in self.frames if frame.opcode in opcodes]

    async def wait_for(self, predicate: Callable[[SeenFrame], bool], timeout: float = DEADLINE) -> SeenFrame:
        """The first frame (already seen or yet to come) that satisfies ``predicate``."""

        async def scan() -> SeenFrame:
            seen = 0
            while True:
                for frame in self.frames[seen:]:
                    if predicate(frame):
                        return frame
                seen = len(self.frames)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def wait_opcode(self, opcode: Opcode, data: bytes | None = None, timeout: float = DEADLINE) -> SeenFrame:
        return await self.wait_for(lambda f: f.opcode is opcode and (data is None or f.data == data), timeout)


class FrameRecording(Connection):
    """Mixin for a ``websockets`` connection: logs every frame it receives once the opening handshake is
    done, control frames included (the public API never shows pings, pongs or close frames)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = FrameLog()

    def handshake_done(self) -> bool:
        raise NotImplementedError

    def process_event(self, event: Any) -> None:
        if self.handshake_done() and isinstance(event, Frame):
            self.log.add(event)
        super().process_event(event)


class RecordingServerConnection(FrameRecording, ServerConnection):
    """A ``websockets`` server connection that logs every frame it receives, control frames included."""

    def handshake_done(self) -> bool:
        return self.request is not None


class RecordingClientConnection(FrameRecording, ClientConnection):
    """A ``websockets`` client connection that logs every frame it receives, control frames included."""

    def handshake_done(self) -> bool:
        return self.response is not None


Data = str | bytes


def open_ws(url: str, **options: Any) -> connect:
    """``websockets`` connect with no client keepalive (it would add pings to frame logs) and generous
    handshake deadlines; ``options`` go to :func:`websockets.asyncio.client.connect` and win."""
    return connect(url, **{"ping_interval": None, "open_timeout": DEADLINE, "close_timeout": DEADLINE, **options})


async def recv(ws: Connection, timeout: float = DEADLINE) -> Data:
    """The next message, within ``timeout``."""
    return await asyncio.wait_for(ws.recv(), timeout)


async def exchange(ws: Connection, message: Data, timeout: float = DEADLINE) -> Data:
    """Send ``message`` and return the next message received (the echo, on an echoing peer)."""
    await ws.send(message)
    return await recv(ws, timeout)


async def server_close(ws: Connection, timeout: float = DEADLINE) -> tuple[list[Data], Close]:
    """Read until the other end closes; the messages read on the way and the close frame it sent."""
    messages: list[Data] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                messages.append(await ws.recv())
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, f"connection ended without a close frame from the server: {closed}"
        return messages, closed.rcvd


async def send_close_without_status(ws: ServerConnection | ClientConnection) -> None:
    """Send a close frame with an empty payload (no status code), then wait for the handshake to end.

    The public ``close()`` always sends a code, so this goes through the connection's send context.
    """
    async with ws.send_context():
        ws.protocol.send_close()
    await asyncio.wait_for(ws.wait_closed(), DEADLINE)


# --- WebSocket: the websockets-library upstream -----------------------------------------------------

WsHandler = Callable[[RecordingServerConnection], Awaitable[None]]


@dataclass
class WsUpstream:
    url: str  # http://127.0.0.1:PORT, what a proxy mock's ``target`` names
    accepted: asyncio.Queue[RecordingServerConnection] = field(default_factory=asyncio.Queue)
    connections: list[RecordingServerConnection] = field(default_factory=list)
    live: set[RecordingServerConnection] = field(default_factory=set)  # handlers still running
    errors: list[BaseException] = field(default_factory=list)

    async def next_connection(self, timeout: float = DEADLINE) -> RecordingServerConnection:
        return await asyncio.wait_for(self.accepted.get(), timeout)


async def echo(ws: RecordingServerConnection) -> None:
    """Echo every message back with its type; the log keeps what arrived."""
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def ws_upstream(handler: WsHandler = echo, **options: Any) -> AsyncIterator[WsUpstream]:
    """A ``websockets`` server on 127.0.0.1:0 running ``handler`` for every connection.

    ``options`` go to :func:`websockets.asyncio.server.serve` (``subprotocols``, ``compression``,
    ``select_subprotocol``, ``max_queue``...). No keepalive pings (they would pollute frame logs) and
    no message size limit unless a test asks.
    """
    upstream = WsUpstream(url="")

    async def run(ws: ServerConnection) -> None:
        assert isinstance(ws, RecordingServerConnection)
        upstream.connections.append(ws)
        upstream.live.add(ws)
        upstream.accepted.put_nowait(ws)
        try:
            await handler(ws)
        except Exception as exc:  # surfaced by tests that check ``errors``
            upstream.errors.append(exc)
            raise
        finally:
            upstream.live.discard(ws)

    settings: dict[str, Any] = {"ping_interval": None, "max_size": None, **options}
    async with serve(run, HOST, 0, create_connection=RecordingServerConnection, **settings) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        upstream.url = f"http://{HOST}:{port}"
        yield upstream


# --- raw asyncio servers ---------------------------------------------------------------------------

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handle: ConnectionHandler) -> AsyncIterator[str]:
    """A raw asyncio TCP server on 127.0.0.1:0 running ``handle`` for each connection; yields its http:// URL."""
    server = await asyncio.start_server(handle, HOST, 0)
    async with server:
        yield f"http://{HOST}:{server.sockets[0].getsockname()[1]}"


# --- WebSocket: a hand-made upstream that drops the TCP connection -------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def websocket_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def server_frame(opcode: Opcode, payload: bytes) -> bytes:
    """An unmasked, final server frame."""
    head = bytes([0x80 | opcode.value])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + size.to_bytes(2, "big")
    else:
        head += bytes([127]) + size.to_bytes(8, "big")
    return head + payload


@dataclass
class DroppingWsUpstream:
    """Completes the opening handshake by hand, sends one text frame ``ready``, then on ``drop`` closes
    the TCP connection without a close frame: ``abort=True`` resets it, otherwise a plain FIN."""

    abort: bool
    url: str = ""
    request_head: bytes = b""
    drop: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.request_head = await reader.readuntil(b"\r\n\r\n")
            headers = parse_header_lines(self.request_head.decode("latin-1").split("\r\n")[1:])
            key = header_value(headers, "Sec-WebSocket-Key")
            assert key is not None, "no Sec-WebSocket-Key in the upgrade request"
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {websocket_accept(key)}\r\n\r\n").encode()
                         + server_frame(Opcode.TEXT, b"ready"))
            await writer.drain()
            await self.drop.wait()
        finally:
            if self.abort:
                writer.transport.abort()
            else:
                writer.close()
            self.dropped.set()


@asynccontextmanager
async def dropping_ws_upstream(abort: bool) -> AsyncIterator[DroppingWsUpstream]:
    upstream = DroppingWsUpstream(abort)
    async with raw_server(upstream.handle) as upstream.url:
        try:
            yield upstream
        finally:
            upstream.drop.set()


# --- HTTP: parsing helpers ------------------------------------------------------------------------

Headers = list[tuple[str, str]]


def parse_header_lines(lines: Sequence[str]) -> Headers:
    headers: Headers = []
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return headers


def header_values(headers: Headers, name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


def header_value(headers: Headers, name: str) -> str | None:
    values = header_values(headers, name)
    return values[0] if values else None


def http_chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked HTTP body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def read_chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Decode a chunked body, yielding each chunk as soon as it is complete; ends at the last chunk."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return
        data = await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        yield data


@dataclass(frozen=True)
class ReceivedRequest:
    """What an upstream received: method, the raw request target, the header lines, the body."""

    method: str
    target: str
    headers: Headers
    body: bytes

    def values(self, name: str) -> list[str]:
        return header_values(self.headers, name)


# --- HTTP: the aiohttp upstream -------------------------------------------------------------------

HttpHandler = Callable[[web.BaseRequest, ReceivedRequest], Awaitable[web.StreamResponse]]


@dataclass
class HttpUpstream:
    url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    received: asyncio.Queue[ReceivedRequest] = field(default_factory=asyncio.Queue)

    async def next_request(self, timeout: float = DEADLINE) -> ReceivedRequest:
        return await asyncio.wait_for(self.received.get(), timeout)


async def reply_ok(request: web.BaseRequest, received: ReceivedRequest) -> web.StreamResponse:
    return web.Response(body=f"upstream saw {received.method} {received.target}".encode())


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[int]:
    """An aiohttp application on 127.0.0.1:0 for the ``with`` block; yields its port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@asynccontextmanager
async def http_upstream(handler: HttpHandler = reply_ok) -> AsyncIterator[HttpUpstream]:
    """An aiohttp web server on 127.0.0.1:0: records each request (body read in full, any size), then ``handler``."""
    upstream = HttpUpstream()

    async def run(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.content.read()  # read() stops at 1 MiB; an upstream takes any body
        received = ReceivedRequest(request.method, request.raw_path,
                                   [(name.decode("latin-1"), value.decode("latin-1"))
                                    for name, value in request.raw_headers], body)
        upstream.requests.append(received)
        upstream.received.put_nowait(received)
        return await handler(request, received)

    runner = web.ServerRunner(web.Server(run, access_log=None), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    upstream.url = f"http://{HOST}:{runner.addresses[0][1]}"
    try:
        yield upstream
    finally:
        await runner.cleanup()


# --- HTTP: a raw, paced streaming upstream --------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> ReceivedRequest:
    """Read one HTTP/1.1 request: head, then a Content-Length or chunked body."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = parse_header_lines(lines)
    if "chunked" in (header_value(headers, "Transfer-Encoding") or "").lower():
        body = b"".join([chunk async for chunk in read_chunked(reader)])
    else:
        body = await reader.readexactly(int(header_value(headers, "Content-Length") or 0))
    return ReceivedRequest(method, target, headers, body)


@dataclass
class StreamExchange:
    """One connection to a :class:`StreamingUpstream`: the request, when each chunk was written, and
    whether the peer (mockd) closed the connection."""

    request: ReceivedRequest
    sent_at: list[float] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the upstream is done with the connection
    peer_closed: asyncio.Event = field(default_factory=asyncio.Event)  # mockd closed its end first


@dataclass
class StreamingUpstream:
    """A raw HTTP/1.1 server: answers each request with ``status`` and ``headers``, then the chunks of
    ``make_chunk(0)``, ``make_chunk(1)``... one every ``interval`` seconds (the first at once) until it
    returns None, using chunked encoding. ``cut_after=N`` resets the connection after N chunks instead
    of ending the body. One request per connection."""

    make_chunk: Callable[[int], bytes | None]
    interval: float
    status: int = 200
    headers: Headers = field(default_factory=lambda: [("Content-Type", "text/event-stream")])
    cut_after: int | None = None
    url: str = ""
    exchanges: list[StreamExchange] = field(default_factory=list)
    accepted: asyncio.Queue[StreamExchange] = field(default_factory=asyncio.Queue)

    async def next_exchange(self, timeout: float = DEADLINE) -> StreamExchange:
        return await asyncio.wait_for(self.accepted.get(), timeout)

    @property
    def open_connections(self) -> int:
        return sum(1 for exchange in self.exchanges if not exchange.finished.is_set())

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            request = await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        exchange = StreamExchange(request)
        self.exchanges.append(exchange)
        self.accepted.put_nowait(exchange)

        async def watch_peer() -> None:
            try:
                while await reader.read(65536):
                    pass
            except ConnectionError:
                pass
            exchange.peer_closed.set()

        watcher = loop.create_task(watch_peer())
        head = f"HTTP/1.1 {self.status} Status\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers)
        writer.write((head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode("latin-1"))
        index = 0
        try:
            while not exchange.peer_closed.is_set():
                if self.cut_after is not None and index >= self.cut_after:
                    writer.transport.abort()  # mid-body, without the terminating chunk
                    break
                chunk = self.make_chunk(index)
                if chunk is None:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    break
                if index:  # pacing; a peer that closes ends the wait (and the stream) at once
                    try:
                        await asyncio.wait_for(exchange.peer_closed.wait(), self.interval)
                        break
                    except TimeoutError:
                        pass
                writer.write(http_chunk(chunk))
                exchange.sent_at.append(loop.time())
                await writer.drain()
                index += 1
        except ConnectionError:
            pass
        finally:
            exchange.finished.set()
            writer.close()
            watcher.cancel()


@asynccontextmanager
async def streaming_upstream(make_chunk: Callable[[int], bytes | None], interval: float,
                             **options: Any) -> AsyncIterator[StreamingUpstream]:
    upstream = StreamingUpstream(make_chunk, interval, **options)
    async with raw_server(upstream.handle) as upstream.url:
        yield upstream


# --- a socket that accepts and never answers ------------------------------------------------------


@dataclass
class SilentUpstream:
    url: str = ""
    accepted: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)  # the first bytes of each
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        first = await reader.read(65536)
        self.accepted.put_nowait(first)
        while await reader.read(65536):
            pass


@asynccontextmanager
async def silent_upstream() -> AsyncIterator[SilentUpstream]:
    """Accepts TCP connections and reads the request, but never writes a byte back."""
    upstream = SilentUpstream()
    async with raw_server(upstream.handle) as upstream.url:
        try:
            yield upstream
        finally:
            for writer in upstream.writers:
                writer.transport.abort()


@contextmanager
def unreachable_url() -> Iterator[str]:
    """An http:// URL on a port that is bound (so nobody else takes it) but not listening: refused."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        yield f"http://{HOST}:{sock.getsockname()[1]}"


# --- a raw HTTP/1.1 client ------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: Headers
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sent_at: float  # when the whole request had been written (event loop clock)
    head_at: float  # when the response head had arrived
    no_body: bool = False
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # arrival time, bytes
    complete: bool = False  # the body's framing said it ended (not a cut connection)
    _pieces: AsyncIterator[bytes] | None = field(default=None, init=False, repr=False)  # see iter_body

    def value(self, name: str) -> str | None:
        return header_value(self.headers, name)

    def values(self, name: str) -> list[str]:
        return header_values(self.headers, name)

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    def json(self) -> Any:
        return json.loads(self.body)

    def iter_body(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked, Content-Length or until EOF), arrival times logged in ``chunks``.

        Every call continues the same iteration, so a test can read part of the body, then the rest.
        A connection that ends before the framing says the body is complete leaves ``complete`` False.
        """
        if self._pieces is None:
            self._pieces = self._read_pieces()
        return self._pieces

    async def _read_pieces(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        if self.no_body:
            self.complete = True
            return
        try:
            if "chunked" in (self.value("Transfer-Encoding") or "").lower():
                async for data in read_chunked(self.reader):
                    self.chunks.append((loop.time(), data))
                    yield data
            elif (length := self.value("Content-Length")) is not None:
                remaining = int(length)
                while remaining:
                    data = await self.reader.read(min(remaining, 65536))
                    if not data:
                        return
                    remaining -= len(data)
                    self.chunks.append((loop.time(), data))
                    yield data
            else:
                while data := await self.reader.read(65536):
                    self.chunks.append((loop.time(), data))
                    yield data
            self.complete = True
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    async def read_body(self, timeout: float = DEADLINE) -> bytes:
        """The rest of the body, which must end within ``timeout``."""
        async def drain() -> None:
            async for _ in self.iter_body():
                pass

        await asyncio.wait_for(drain(), timeout)
        return self.body

    async def read_until(self, marker: bytes, timeout: float = DEADLINE) -> bytes:
        """Read the body until it holds ``marker`` (within ``timeout``; failing if the body ends first)."""
        async def scan() -> None:
            async for _ in self.iter_body():
                if marker in self.body:
                    return
            raise AssertionError(f"the body ended before {marker!r}; got {self.body!r}")

        if marker not in self.body:
            await asyncio.wait_for(scan(), timeout)
        return self.body

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


async def open_request(port: int, method: str, target: str, headers: Headers | None = None,
                       body: bytes | Sequence[bytes] | None = None, timeout: float = DEADLINE) -> RawResponse:
    """Send one request over a new connection and read the response head.

    ``body`` as bytes goes with Content-Length; as a sequence of chunks, with chunked encoding.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    lines: Headers = [("Host", f"{HOST}:{port}"), *(headers or [])]
    payload = b""
    if isinstance(body, (bytes, bytearray)):
        lines.append(("Content-Length", str(len(body))))
        payload = bytes(body)
    elif body is not None:
        lines.append(("Transfer-Encoding", "chunked"))
        payload = b"".join(http_chunk(chunk) for chunk in body if chunk) + b"0\r\n\r\n"
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n"
    writer.write(head.encode("latin-1") + payload)
    await writer.drain()
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    version, status, *_ = status_line.split(" ", 2)
    assert version.startswith("HTTP/1."), status_line
    code = int(status)
    return RawResponse(code, parse_header_lines(header_lines), reader, writer, sent_at, loop.time(),
                       no_body=method == "HEAD" or code in (204, 304) or 100 <= code < 200)


async def request(port: int, method: str, target: str, headers: Headers | None = None,
                  body: bytes | Sequence[bytes] | None = None, timeout: float = DEADLINE) -> RawResponse:
    """A whole request: head and body read (within ``timeout``), connection closed."""
    response = await open_request(port, method, target, headers, body, timeout)
    try:
        await response.read_body(timeout)
    finally:
        await response.close()
    return response


# --- the mockd process ----------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def assert_held_back(pid: int, sent: Callable[[], int], total: int, rss_allowance: int,
                           timeout: float = 15) -> None:
    """While a client reads nothing, an upstream writing ``total`` pieces (``sent()`` of them written so
    far, each write returning once its buffer drains) must come to a halt before the end — back-pressure
    reaching it through mockd — and mockd's RSS must grow by less than ``rss_allowance`` meanwhile."""
    loop = asyncio.get_running_loop()
    baseline = peak = rss_bytes(pid)
    last_sent, last_progress, deadline = -1, loop.time(), loop.time() + timeout
    while loop.time() - last_progress < 0.5 and sent() < total:  # until the upstream is held back
        assert loop.time() < deadline, f"the upstream kept sending slowly: {sent()} sent"
        await asyncio.sleep(0.05)  # a sampling interval, not a synchronisation
        peak = max(peak, rss_bytes(pid))
        if sent() != last_sent:
            last_sent, last_progress = sent(), loop.time()
    assert sent() < total, f"the upstream sent all {total} pieces to a client that read nothing: no back-pressure"
    assert peak - baseline < rss_allowance, \
        f"mockd's RSS grew by {(peak - baseline) / 2**20:.1f} MiB while the client did not read ({sent()} sent)"


def proxy_mock(target: str, path_prefix: str = "/", mock_id: str | None = None, **fields: Any) -> dict[str, Any]:
    mock: dict[str, Any] = {"type": "proxy", "proxy": {"pathPrefix": path_prefix, "target": target, **fields}}
    if mock_id is not None:
        mock["id"] = mock_id
    return mock


def start_proxying(mockd: MockdFactory, url: str, layout: str, *mocks: dict[str, Any]) -> RunningMockd:
    """Start mockd with ``mocks`` and a catch-all proxy to ``url``, placed as ``layout`` says.

    ``"mock-then-proxy"`` (or ``"config"``): a proxy mock after the mocks in the config file;
    ``"mock-then-upstream-flag"`` (or ``"upstream-flag"``): ``--upstream URL``, which goes after them too;
    ``"proxy-then-mock"``: a proxy mock before them.
    """
    if layout in ("mock-then-proxy", "config"):
        return mockd.start(mocks_config(*mocks, proxy_mock(url)))
    if layout in ("mock-then-upstream-flag", "upstream-flag"):
        return mockd.start(mocks_config(*mocks), "--upstream", url)
    assert layout == "proxy-then-mock", f"unknown layout {layout!r}"
    return mockd.start(mocks_config(proxy_mock(url), *mocks))
