"""The WebSocket byte relay: after the upgrade, each leg's bytes are written to the other as they arrive.

The client's handshake goes upstream as it came (key, version, subprotocols, extension offer) and
the upstream's ``101`` comes back as it was sent, so both legs agree on everything — permessage-deflate
parameters included — and frames can pass untouched: client frames keep the client's mask,
compressed frames stay compressed, pings, pongs and close frames go by as sent. aiohttp still does
both handshakes; then each connection's protocol is given a :class:`_Leg` as its payload parser (the
hook aiohttp's own WebSocket reader uses), which writes what it is fed to the other socket.

On the side, a :class:`~mockd.stream.wsscan.FrameScanner` follows the frame boundaries, and — only while
someone follows the connection, or always when the legs compress (the decompressor needs every message) — aiohttp's
C-accelerated ``WebSocketReader`` decodes the frames (unmasked, joined, decompressed) for
:class:`~mockd.stream.events.StreamEvents`. The relay adds frames of its own only between two frames: a
close on shutdown or mock removal, 1014 to the client when the upstream drops without a close, 1001 to
the upstream when the client does.

A connection takes this path unless the client offers an extension the decoder does not know
(anything but permessage-deflate) or its handshake is invalid; those keep the message-level relay of
:mod:`mockd.serving.proxy`. The choice is logged at debug.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue  # the reader's queue type (it is typed in C)
from aiohttp.http import WebSocketReader, WebSocketWriter
from multidict import CIMultiDict

from mockd.serving.headers import HOP_BY_HOP
from mockd.stream.endpoint import WsEndpoint
from mockd.stream.events import Connection, Direction, FrameType, StreamEvents
from mockd.stream.wsclose import (CLOSE_ABNORMAL, CLOSE_BAD_GATEWAY, CLOSE_GOING_AWAY, CLOSE_TIMEOUT, NO_STATUS,
                                  RELEASE_TIMEOUT, close_payload)
from mockd.stream.wsscan import FrameScanner

log = logging.getLogger("mockd.proxy")

DEFLATE = "permessage-deflate"
_NOT_DONE = (False, b"")  # what a payload parser answers aiohttp's protocol: no error, no tail
_FRAME_TYPES: dict[WSMsgType, FrameType] = {WSMsgType.TEXT: "text", WSMsgType.BINARY: "binary", WSMsgType.PING: "ping",
                WSMsgType.PONG: "pong"}


def extension_names(header: str) -> set[str]:
    """The extensions a ``Sec-WebSocket-Extensions`` value names (parameters left out)."""
    return {name for offer in header.split(",") if (name := offer.split(";", 1)[0].strip().lower())}


def byte_path_refusal(request: web.BaseRequest) -> str | None:
    """Why this upgrade keeps the message-level relay, or None when its bytes can be relayed."""
    unknown = extension_names(request.headers.get("Sec-WebSocket-Extensions", "")) - {DEFLATE}
    if unknown:
        return f"the client offers extensions the relay cannot decode: {', '.join(sorted(unknown))}"
    if not web.WebSocketResponse().can_prepare(request).ok:
        return "the client's handshake is not valid"
    return None


def upgrade_headers(forwarded: CIMultiDict[str]) -> CIMultiDict[str]:
    """The client's end-to-end headers (its ``Sec-WebSocket-*`` among them) plus the upgrade itself."""
    headers = CIMultiDict(forwarded)
    headers["Upgrade"], headers["Connection"] = "websocket", "Upgrade"
    return headers


def handshake_problem(response: aiohttp.ClientResponse) -> str | None:
    """What makes the upstream's answer something other than a WebSocket upgrade (None: it is one).
    Its ``Sec-WebSocket-Accept`` is the client's to check: it answers the client's own key."""
    if response.status != 101:
        return "Invalid response status"
    if response.headers.get("Upgrade", "").lower() != "websocket":
        return "Invalid upgrade header"
    return None


def switching_response(upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """The upstream's ``101`` for the client, its headers as sent (less the hop-by-hop ones)."""
    response = web.StreamResponse(status=101, reason=upstream.reason)
    for name, value in upstream.headers.items():
        if name.lower() not in HOP_BY_HOP:
            response.headers.add(name, value)
    response.headers["Upgrade"], response.headers["Connection"] = "websocket", "Upgrade"
    return response


class _Sink(WebSocketDataQueue):
    """Where the side decoder puts each decoded message: straight to the relay, stamped with the time
    its last chunk arrived."""

    def __init__(self, leg: _Leg, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(leg.source, 2**16, loop=loop)
        self.leg = leg
        self.at_ns = 0

    def feed_data(self, data: Any, size: int) -> None:
        self.leg.decoded(data, self.at_ns)

    def set_exception(self, exc: BaseException, exc_cause: BaseException | None = None) -> None:
        self.leg.undecodable(exc)


class _Leg:
    """One direction: fed by the source connection's protocol, it writes to the target's transport."""

    def __init__(self, relay: ByteRelay, direction: Direction, source: Any, target: Any, masks: bool) -> None:
        self.relay = relay
        self.connection = relay.connection
        self.direction = direction
        self.source = source  # aiohttp's protocol of the connection the bytes come from
        self.target = target  # ... and of the one they go to
        self.transport: asyncio.Transport = target.transport
        self.writer = WebSocketWriter(target, target.transport, use_mask=masks)
        self.scanner = FrameScanner()
        self.plain = True  # forwarding, with no close of the relay's own waiting: the fast path
        self.forwarding = True  # False once the relay wrote a close of its own to the target, or it went
        self.close_waiting: tuple[int, str] | None = None  # a close to write when the current frame ends
        self.decoder: WebSocketReader | None = None
        self.sink: _Sink | None = None
        self.decodable = True
        self.holding = False  # reading from the source is paused until the target drains
        self.answer_ends = False  # the relay closed the other way: this side's close frame ends it all
        self.lost = False

    # --- fed by aiohttp's protocol --------------------------------------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self.plain:
            self.transport.write(data)
            if self.target.writing_paused and not self.holding:
                self._hold_source()
        elif self.close_waiting is not None:
            self._write_until_frame_end(data)
        scanner = self.scanner
        followed = self.connection.followers
        if self.decoder is not None and (followed or self.relay.compressed):
            scanner.feed(data)
            self._decode(data)
        elif followed and self.decodable:
            scanner.want_message_start = True
            scanner.feed(data)
            if (start := scanner.message_start) is not None:
                scanner.message_start = None
                self.start_decoding(compressed=False)
                self._decode(start)
        else:
            if self.decoder is not None or scanner.want_message_start:
                self._stop_decoding()
            scanner.feed(data)
        if self.answer_ends and scanner.close_seen:
            self.relay.answered(self)
        return _NOT_DONE

    def feed_eof(self) -> None:
        self.lost = True
        self.relay.leg_lost(self)

    # --- decoding on the side -------------------------------------------------------------------

    def start_decoding(self, compressed: bool) -> None:
        self.sink = _Sink(self, asyncio.get_running_loop())
        self.decoder = WebSocketReader(self.sink, 0, compress=compressed, decode_text=True)

    def _stop_decoding(self) -> None:
        """Nobody follows the connection any more (and it is not compressed): decoding starts again at
        the next message start once someone does."""
        self.decoder = self.sink = None
        self.scanner.want_message_start, self.scanner.message_start = False, None

    def _decode(self, data: bytes) -> None:
        assert self.sink is not None and self.decoder is not None
        self.sink.at_ns = time.time_ns()
        self.decoder.feed_data(data)

    def decoded(self, message: Any, at_ns: int) -> None:
        kind, data, extra = message
        if kind is WSMsgType.CLOSE:
            self.relay.close_passed(self.direction, data or NO_STATUS, extra or "", at_ns)
        else:
            self.relay.endpoint.emit(self.direction, _FRAME_TYPES[kind], data, at_ns)

    def undecodable(self, error: BaseException) -> None:
        """The source sent what the decoder rejects: it is still relayed as it came (the other end
        judges it), but this direction is no longer recorded — and the log says so."""
        self.decoder, self.decodable = None, False
        log.warning("WebSocket %s: %s frames cannot be decoded (%s); they are relayed but no longer recorded",
                    self.relay.connection.path, self.direction, error)

    # --- writing --------------------------------------------------------------------------------

    def _hold_source(self) -> None:
        """The target reads slower than the source writes: stop reading the source until it drains."""
        self.holding = True
        self.source.pause_reading()
        asyncio.get_running_loop().create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        try:
            await self.target._drain_helper()  # noqa: SLF001 - aiohttp's wait for its transport to drain
        except ConnectionError:
            return
        finally:
            self.holding = False
        if not self.lost:
            self.source.resume_reading()

    def stop(self) -> None:
        """The target is gone: nothing more is written to it."""
        self.plain = self.forwarding = False
        self.close_waiting = None

    def send_close(self, code: int, reason: str) -> None:
        """Write a close frame of the relay's own as soon as the target stands between frames; from
        then on nothing more goes to the target."""
        if not self.forwarding or self.close_waiting is not None:
            return
        self.plain = False
        if self.scanner.between_frames:
            self._write_close(code, reason)
        elif self.lost:  # the source broke off inside a frame: no close frame can follow it
            self.stop()
            self.transport.abort()
        else:
            self.close_waiting = (code, reason)

    def _write_until_frame_end(self, data: bytes) -> None:
        end = self.scanner.end_of_frame(data)
        if end is None:
            self.transport.write(data)
            return
        self.transport.write(data[:end])
        assert self.close_waiting is not None
        self._write_close(*self.close_waiting)

    def _write_close(self, code: int, reason: str) -> None:
        self.forwarding, self.close_waiting = False, None
        self.relay.close_passed(self.direction, code, reason, time.time_ns())
        self.relay.closes_written.add(asyncio.get_running_loop().create_task(self._send_close_frame(code, reason)))

    async def _send_close_frame(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionError):  # the target is gone too
            await self.writer.send_frame(close_payload(code, reason), WSMsgType.CLOSE)


class ByteRelay:
    """A proxied WebSocket connection whose frames pass as bytes; see the module docstring.

    It ends when both connections are gone. The upstream closes its connection once the closing
    handshake is over and the relay then closes the client's (a server closes first, RFC 6455 §7.1.1);
    when one side goes without a close frame, the other gets one from the relay and ``CLOSE_TIMEOUT``
    to answer."""

    def __init__(self, request: web.BaseRequest, upstream: aiohttp.ClientResponse, connection: Connection,
                 events: StreamEvents, compressed: bool) -> None:
        assert upstream.connection is not None and upstream.connection.protocol is not None
        self.request = request
        self.upstream = upstream
        self.connection = connection
        self.events = events
        self.endpoint = WsEndpoint(events, connection)
        client, server = request.protocol, upstream.connection.protocol
        self.c2s = _Leg(self, "c2s", client, server, masks=True)
        self.s2c = _Leg(self, "s2c", server, client, masks=False)
        self.compressed = compressed
        self._ended = asyncio.get_running_loop().create_future()
        self._deadline: asyncio.TimerHandle | None = None
        self.closes_written: set[asyncio.Task[None]] = set()  # close frames of the relay's own, being written

    async def run(self) -> None:
        try:
            with self.events.connection(self.connection):
                await self._relay()
        finally:
            self._close_transport(self.s2c)
            self._close_transport(self.c2s)
            self.upstream.close()

    async def _relay(self) -> None:
        if self.compressed:
            self.c2s.start_decoding(compressed=True)
            self.s2c.start_decoding(compressed=True)
        server_protocol = self.s2c.source
        server_protocol.read_timeout = None
        try:
            # Each leg is a payload parser as aiohttp's protocols use one (feed_data, feed_eof). What the
            # upstream sent after its 101 goes first, then what the client sent after its request.
            server_protocol.set_parser(self.s2c, None)
            self.request.protocol.set_parser(self.c2s)  # type: ignore[arg-type]
            await self._ended
        finally:
            if self._deadline is not None:
                self._deadline.cancel()
            if self.closes_written:  # even when the handler was cancelled (its client left): write them first
                await asyncio.wait(self.closes_written, timeout=RELEASE_TIMEOUT)

    def request_close(self, code: int, reason: str = "") -> None:
        """Shutdown or mock removal: the client gets ``code``, the upstream 1001; their answers are
        not relayed (each side already has its close)."""
        self.c2s.send_close(CLOSE_GOING_AWAY, reason)
        self._close_to_client(code, reason)

    # --- called by the legs ---------------------------------------------------------------------

    def close_passed(self, direction: Direction, code: int, reason: str, at_ns: int) -> None:
        """A close frame went by (or the relay wrote one): the first sets the connection's close."""
        self.endpoint.closed_by(code, reason)
        self.endpoint.emit_close(direction, code, reason, at_ns)

    def leg_lost(self, leg: _Leg) -> None:
        """``leg``'s source connection is gone."""
        other = self.c2s if leg is self.s2c else self.s2c
        other.stop()  # it wrote to that connection
        if other.lost:
            self._end()
        elif leg is self.s2c:
            if leg.scanner.close_seen:  # the upstream ended the closing handshake: so does the relay
                self._close_transport(leg)
            else:  # it dropped: the client hears so, and gets time to answer
                self._close_to_client(CLOSE_BAD_GATEWAY, "bad gateway")
        else:
            if not leg.scanner.close_seen:
                self.endpoint.closed_by(CLOSE_ABNORMAL, "")
                leg.send_close(CLOSE_GOING_AWAY, "client went away")
            self._end_later()

    def answered(self, leg: _Leg) -> None:
        """The client answered a close the relay wrote to it: its connection is done."""
        leg.answer_ends = False
        self._close_transport(self.s2c)

    def _close_to_client(self, code: int, reason: str) -> None:
        self.c2s.answer_ends = True
        self.s2c.send_close(code, reason)
        self._end_later()

    def _end_later(self) -> None:
        """Give the other side ``CLOSE_TIMEOUT`` to answer a close, then drop both connections."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._end)

    def _end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    @staticmethod
    def _close_transport(leg: _Leg) -> None:
        """Close the connection ``leg`` writes to, once what is buffered for it is written."""
        if not leg.transport.is_closing():
            leg.transport.close()
