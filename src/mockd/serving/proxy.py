"""The upstream proxy: relays WebSocket, SSE and plain HTTP to a real server, emitting every frame.

The relay does as little as it can per frame. A WebSocket normally takes the byte relay of
:mod:`mockd.serving.wsbytes` (frames forwarded as bytes, decoded on the side only while someone listens); a
client offering an extension mockd cannot decode takes :class:`WebSocketRelay`, which receives and
sends every message again — control frames still relayed, never answered locally (``autoping=False``,
``autoclose=False`` on both sides), so pings, pongs and close codes reach the other side as sent.
HTTP bodies go through piece by piece as the upstream's parser finds them (:mod:`mockd.serving.httpbytes`);
an SSE body is parsed into events on the side, only while someone records.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable
from ssl import SSLContext

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from mockd.config.model import ProxySpec
from mockd.serving.headers import HOP_BY_HOP
from mockd.serving.httpbytes import BodyForwarder
from mockd.serving.jsonhttp import json_error
from mockd.serving.tls import tls_failure
from mockd.serving.wsbytes import (DEFLATE, ByteRelay, byte_path_refusal, extension_names, handshake_problem,
                                   switching_response, upgrade_headers)
from mockd.stream.endpoint import WsEndpoint
from mockd.stream.events import (BodyCapture, Connection, Direction, LiveConnection, Protocol_, SseDataRun,
                                 StreamEvents, connection_from_request)
from mockd.stream.ssewire import SseParser
from mockd.stream.wsclose import (CLOSE_ABNORMAL, CLOSE_BAD_GATEWAY, CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR,
                                  CLOSE_TIMEOUT, NO_STATUS, RELEASE_TIMEOUT, AnyWebSocket, release, send_close_frame)

log = logging.getLogger("mockd.proxy")

NOT_FORWARDED_ON_UPGRADE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                                      "sec-websocket-protocol", "sec-websocket-accept"})


def path_matches_prefix(prefix: str, path: str) -> bool:
    """``/api`` covers ``/api`` and ``/api/x`` but not ``/apix``; ``/`` covers everything."""
    if prefix.endswith("/"):
        return path.startswith(prefix) or path == prefix[:-1]
    return path == prefix or path.startswith(prefix + "/")


def upstream_url(spec: ProxySpec, request: web.BaseRequest, websocket: bool = False) -> URL:
    """The target's URL for this request: same path (less the prefix with ``stripPrefix``) and raw query."""
    target = URL(spec.target)
    path = request.raw_path.partition("?")[0]
    if spec.strip_prefix and spec.path_prefix != "/":
        path = path[len(spec.path_prefix.rstrip("/")):] or "/"
    base = target.path.rstrip("/")
    secure = target.scheme in ("https", "wss")
    scheme = ("wss" if secure else "ws") if websocket else ("https" if secure else "http")
    query = request.raw_path.partition("?")[2]
    return URL.build(scheme=scheme, authority=target.raw_authority, path=base + path,
                     query_string=query, encoded=True)


def forwarded_headers(request: web.BaseRequest, spec: ProxySpec, websocket: bool = False) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop ones (and those named in ``Connection``), plus the mock's."""
    named = {token.strip().lower() for token in request.headers.get("Connection", "").split(",")}
    dropped = HOP_BY_HOP | named | {"host"} | (NOT_FORWARDED_ON_UPGRADE if websocket else frozenset())
    headers = CIMultiDict((name, value) for name, value in request.headers.items() if name.lower() not in dropped)
    for name, value in spec.headers.items():
        headers[name] = value
    return headers


def _bad_gateway(request: web.BaseRequest, spec: ProxySpec, error: BaseException) -> web.Response:
    """502 saying why the upstream could not be reached (a TLS failure says which check failed), and
    the same as a warning in the log."""
    tls = tls_failure(error)
    message = f"Upstream {spec.target}: {tls}" if tls else \
        f"Upstream {spec.target} is unreachable: {str(error) or type(error).__name__}"
    log.warning("%s %s: %s", request.method, request.path, message)
    return json_error(502, "bad_gateway", message)


def _upgrade_refused(request: web.BaseRequest, spec: ProxySpec, status: int, problem: str) -> web.Response:
    """The upstream answered the upgrade with something else: its refusal (4xx, 5xx) goes to the
    client with that status; anything else is a bad gateway."""
    if status >= 400:
        return json_error(status, "upstream_refused",
                          f"Upstream {spec.target} refused the WebSocket upgrade: {status} {problem}")
    return _bad_gateway(request, spec, aiohttp.ClientError(f"{status}, message={problem!r}"))


class Upstream:
    """The one HTTP client all proxy mocks share; no total timeout, so long streams are never cut.
    ``ssl`` verifies https/wss upstreams (None: the system's trust store)."""

    def __init__(self, events: StreamEvents, ssl: SSLContext | None = None) -> None:
        self.events = events
        self.ssl = ssl
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, ssl=self.ssl or True),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def serve(self, request: web.BaseRequest, spec: ProxySpec, relays: set[LiveConnection],
                    body: bytes | None = None) -> web.StreamResponse:
        """Relay the request; ``body`` is its body when a mock already read it for matching."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._serve_websocket(request, spec, relays)
        return await self._serve_http(request, spec, relays, body)

    # --- plain HTTP and SSE ---------------------------------------------------------------------

    async def _serve_http(self, request: web.BaseRequest, spec: ProxySpec, relays: set[LiveConnection],
                          read: bytes | None) -> web.StreamResponse:
        started_ns = time.time_ns()
        captured = BodyCapture()
        body: bytes | AsyncIterator[bytes] | None = read
        if read is not None:
            captured.feed(read)
        elif request.body_exists:
            body = _tee(request.content, captured)
        try:
            upstream = await self.session.request(
                request.method, upstream_url(spec, request), headers=forwarded_headers(request, spec), data=body,
                allow_redirects=False)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _bad_gateway(request, spec, exc)
        relay = HttpRelay(request, upstream, self.events, captured if body is not None else None, started_ns)
        relays.add(relay)
        try:
            return await relay.run()
        finally:
            relays.discard(relay)
            upstream.release()

    # --- WebSocket ------------------------------------------------------------------------------

    async def _serve_websocket(self, request: web.BaseRequest, spec: ProxySpec,
                               relays: set[LiveConnection]) -> web.StreamResponse:
        refusal = byte_path_refusal(request)
        if refusal is None:
            return await self._relay_websocket_bytes(request, spec, relays)
        log.debug("WebSocket %s: message relay, as %s", request.path, refusal)
        return await self._relay_websocket_messages(request, spec, relays)

    async def _relay_websocket_bytes(self, request: web.BaseRequest, spec: ProxySpec,
                                     relays: set[LiveConnection]) -> web.StreamResponse:
        try:
            upstream = await self.session.request(
                "GET", upstream_url(spec, request), headers=upgrade_headers(forwarded_headers(request, spec)),
                read_until_eof=False, allow_redirects=False)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _bad_gateway(request, spec, exc)
        if problem := handshake_problem(upstream):
            upstream.close()
            return _upgrade_refused(request, spec, upstream.status, problem)
        response = switching_response(upstream)
        try:
            await response.prepare(request)
        except BaseException:
            upstream.close()
            raise
        extensions = upstream.headers.get("Sec-WebSocket-Extensions", "")
        log.debug("WebSocket %s: byte relay%s", request.path, f", extensions {extensions}" if extensions else "")
        connection = connection_from_request(request, "websocket", "proxy",
                                             upstream.headers.get("Sec-WebSocket-Protocol") or None)
        await _run(ByteRelay(request, upstream, connection, self.events, DEFLATE in extension_names(extensions)),
                   relays)
        return response

    async def _relay_websocket_messages(self, request: web.BaseRequest, spec: ProxySpec,
                                        relays: set[LiveConnection]) -> web.StreamResponse:
        offered = [token.strip() for token in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                   if token.strip()]
        try:
            upstream = await self.session.ws_connect(
                upstream_url(spec, request, websocket=True), protocols=offered,
                headers=forwarded_headers(request, spec, websocket=True), autoping=False, autoclose=False,
                max_msg_size=0, compress=15)
        except aiohttp.WSServerHandshakeError as exc:
            return _upgrade_refused(request, spec, exc.status, exc.message)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _bad_gateway(request, spec, exc)
        client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=False,
                                       autoclose=False, max_msg_size=0, compress=True)
        try:
            await client.prepare(request)
        except BaseException:
            await upstream.close(code=CLOSE_GOING_AWAY)
            raise
        await _run(WebSocketRelay(client, upstream, connection_from_request(request, "websocket", "proxy",
                                                                           upstream.protocol), self.events), relays)
        return client


async def _run(relay: ByteRelay | WebSocketRelay, relays: set[LiveConnection]) -> None:
    """Run a WebSocket relay, known to ``relays`` (so shutdown and mock removal reach it) meanwhile."""
    relays.add(relay)
    try:
        await relay.run()
    finally:
        relays.discard(relay)


async def _tee(content: aiohttp.StreamReader, captured: BodyCapture) -> AsyncIterator[bytes]:
    """Stream the request body upstream, keeping its first MiB for the recording."""
    async for chunk in content.iter_any():
        captured.feed(chunk)
        yield chunk


def _content_decoder(encoding: str) -> zlib._Decompress | None:
    """SSE bodies are parsed decompressed (the client still gets the bytes as the upstream sent them)."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=31)
    if encoding == "deflate":
        return zlib.decompressobj(wbits=47)
    return None


class SseTap:
    """Parses an SSE body into events on its way — only while someone follows the connection, so a
    stream nobody records costs no parsing; a recording that starts mid-stream joins at the next block
    (as one that starts after an earlier one stopped does)."""

    def __init__(self, events: StreamEvents, connection: Connection, encoding: str) -> None:
        self.events = events
        self.connection = connection
        self.decoder = _content_decoder(encoding)  # always run: a compressed stream cannot be joined
        self.parser: SseParser | None = None
        self.previous = b""  # the end of what went by before a parser ran

    def __call__(self, chunk: bytes) -> None:
        if self.decoder is not None:
            chunk = self.decoder.decompress(chunk)
        connection, previous = self.connection, self.previous
        self.previous = chunk[-4:] if len(chunk) >= 4 else (previous + chunk)[-4:]
        if not connection.followers:
            self.parser = None  # nobody records the stream (any more): whoever does next joins at a block
            return
        parser = self.parser
        if parser is None:
            parser = self.parser = SseParser.joining(previous)
        blocks = parser.parse(chunk)
        if isinstance(blocks, SseDataRun):
            self.events.sse_data(connection, blocks)
        elif blocks:
            self.events.sse_blocks(connection, blocks)


class HttpRelay:
    """Streams one upstream response to the client chunk by chunk; parses it into events when it is SSE."""

    def __init__(self, request: web.BaseRequest, upstream: aiohttp.ClientResponse, events: StreamEvents,
                 request_body: BodyCapture | None, started_ns: int) -> None:
        self.request = request
        self.upstream = upstream
        self.events = events
        self.request_body = request_body
        self.started_ns = started_ns
        self._stopping = False

    def request_close(self, code: int, reason: str = "") -> None:
        """Shutdown or mock removal: stop reading the upstream and end the client's stream cleanly."""
        self._stopping = True
        self.upstream.close()

    async def run(self) -> web.StreamResponse:
        upstream = self.upstream
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP:
                response.headers.add(name, value)
        is_sse = upstream.content_type == "text/event-stream"
        await response.prepare(self.request)
        if not is_sse:
            if not self.events.listening:
                await self._copy(response, None)
            else:
                await self._copy_recorded(response)
            return response
        with self.events.connection(self._described("sse")) as connection:
            await self._copy(response, SseTap(self.events, connection, upstream.headers.get("Content-Encoding", "")))
        return response

    def _described(self, protocol: Protocol_) -> Connection:
        """The request and the response's head, as a recording describes them."""
        connection = connection_from_request(self.request, protocol, "proxy")
        connection.opened_ns = self.started_ns
        connection.status = self.upstream.status
        connection.response_headers = list(self.upstream.headers.items())
        if self.request_body is not None:
            connection.request_body, connection.request_size = self.request_body.kept(), self.request_body.size
        return connection

    async def _copy_recorded(self, response: web.StreamResponse) -> None:
        """A plain response while a session may be recording: its body is kept (bounded) on the way."""
        exchange = self._described("http")
        body = BodyCapture(_content_decoder(self.upstream.headers.get("Content-Encoding", "")))
        if await self._copy(response, body.feed):
            exchange.response_body, exchange.response_size = body.kept(), body.size
            self.events.http_exchange(exchange)

    async def _copy(self, response: web.StreamResponse, observe: Callable[[bytes], None] | None) -> bool:
        """Relay the body (:mod:`mockd.serving.httpbytes`), showing each piece to ``observe`` after it
        was written; False when either side broke off."""
        forwarder = BodyForwarder(self.upstream, self.request, response, observe)
        try:
            await forwarder.run()
        except ConnectionError:
            return False  # the client went away
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not self._stopping:
                log.info("upstream broke off a response: %s", exc or type(exc).__name__)
                if self.request.transport is not None:
                    self.request.transport.close()  # the client must see a cut stream, not a clean end
                return False
        if forwarder.client_gone:
            return False
        await response.write_eof()
        return True


class WebSocketRelay:
    """Two pumps, client→upstream and upstream→client, each forwarding every frame as it came.

    Close frames travel like any other frame: a pump that reads a close writes it to the other side
    and stops; the answer comes back through the other pump. So codes *and* reasons of both halves of
    the closing handshake reach the other side as they were sent. Once both halves have passed (or
    after ``CLOSE_TIMEOUT``) both connections are released.
    """

    def __init__(self, client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse,
                 connection: Connection, events: StreamEvents) -> None:
        self.client = client
        self.upstream = upstream
        self.connection = connection
        self.events = events
        self.endpoint = WsEndpoint(events, connection)
        self._closing: set[asyncio.Task[None]] = set()  # request_close's writes, held until done

    async def run(self) -> None:
        try:
            with self.events.connection(self.connection):
                await self._relay()
        finally:
            await release(self.client)
            await release(self.upstream)

    async def _relay(self) -> None:
        loop = asyncio.get_running_loop()
        pumps = [loop.create_task(self._pump(self.client, self.upstream, "c2s")),
                 loop.create_task(self._pump(self.upstream, self.client, "s2c"))]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            failed = [task.exception() for task in done if task.exception() is not None]
            if failed:
                log.info("WebSocket relay failed: %s", failed[0])
                self.request_close(CLOSE_INTERNAL_ERROR, "proxy error")
            await asyncio.wait(pumps, timeout=CLOSE_TIMEOUT)  # the other pump ends with the answer
        finally:
            # Also when the handler was cancelled because the client left: the pumps then tell the
            # upstream (1001) and end with its answer.
            await asyncio.wait(pumps, timeout=RELEASE_TIMEOUT)
            for pump in pumps:
                pump.cancel()

    def request_close(self, code: int, reason: str = "") -> None:
        """Close the client with ``code`` (shutdown: 1001, mock removed: 1012) and the upstream with 1001;
        the pumps carry the answers and end."""
        loop = asyncio.get_running_loop()
        for write in (self.endpoint.send_close(self.client, "s2c", code, reason),
                      self.endpoint.send_close(self.upstream, "c2s", CLOSE_GOING_AWAY, reason)):
            task = loop.create_task(write)
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _pump(self, source: AnyWebSocket, target: AnyWebSocket, direction: Direction) -> None:
        endpoint = self.endpoint
        while True:
            message = await source.receive()
            kind = message.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                if endpoint.close_sent_to(target):
                    continue  # nothing may follow a close frame
                at = time.time_ns()
                if kind is WSMsgType.TEXT:
                    await target.send_str(message.data)
                else:
                    await target.send_bytes(message.data)
                endpoint.emit(direction, "text" if kind is WSMsgType.TEXT else "binary", message.data, at)
            elif kind is WSMsgType.PING or kind is WSMsgType.PONG:
                if endpoint.close_sent_to(target):
                    continue
                at = time.time_ns()
                await (target.ping if kind is WSMsgType.PING else target.pong)(message.data)
                endpoint.emit(direction, "ping" if kind is WSMsgType.PING else "pong", message.data, at)
            elif kind is WSMsgType.CLOSE:
                code, reason = message.data or NO_STATUS, message.extra or ""
                if endpoint.close_sent_to(target):  # the answer to a close we forwarded: it ends the handshake
                    endpoint.emit_close(direction, code, reason)
                else:
                    await endpoint.send_close(target, direction, code, reason)
                return
            elif kind is WSMsgType.CLOSING:
                return
            else:  # CLOSED or ERROR: the source vanished without a close frame
                await self._source_lost(target, direction)
                return

    async def _source_lost(self, target: AnyWebSocket, direction: Direction) -> None:
        if direction == "s2c":  # the upstream dropped: tell the client the gateway failed
            self.endpoint.no_close_to(self.upstream)
            await self.endpoint.send_close(target, "s2c", CLOSE_BAD_GATEWAY, "bad gateway")
        else:  # the client dropped without a close frame: the upstream is told it went away
            self.endpoint.closed_by(CLOSE_ABNORMAL, "")
            self.endpoint.no_close_to(self.client)
            await send_close_frame(target, CLOSE_GOING_AWAY, "client went away")


Relay = HttpRelay | WebSocketRelay | ByteRelay
