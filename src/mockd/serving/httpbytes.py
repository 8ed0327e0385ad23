"""The HTTP body pass-through: what each read from the upstream brings of a response's body goes to the
client as soon as aiohttp's C parser has found it, from the event loop's callbacks — no reader task,
queue or await between.

Once the upstream's head is in, aiohttp's llhttp parser goes on finding the body's pieces (it takes the
chunked framing off and knows where the body ends, so the upstream connection stays reusable) and hands
each to the response's :class:`aiohttp.StreamReader`. :class:`BodyForwarder` turns that reader into a
:class:`_Forwarding` one — a subclass with the same slots, so the instance's class can be switched, the
one hook the C parser leaves — whose ``feed_data`` collects the pieces of one read from the upstream;
right after that read (``call_soon``, before the loop polls again) they are framed together as the
client's response is framed (one chunk, or as they are for a ``Content-Length`` or an HTTP/1.0
client), written to the client's transport in one write, and shown to the observer (the SSE tap, a
recorded body) — so an upstream that writes each event as its own small chunk costs one send per read,
not one per chunk. The body's end or failure writes what is collected first. When the client
reads slower than the upstream writes, reading the upstream pauses until the client's buffer drains
(aiohttp's own flow control, as :mod:`mockd.serving.wsbytes` uses it). Once the body is over the reader
is a plain StreamReader again.

As :mod:`mockd.serving.wsbytes` does for WebSocket frames, this replaces the reader task's loop of
``iter_any()`` and ``write()`` — a wake-up, a buffer and an await per piece — which was most of what an
unrecorded SSE stream cost the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import aiohttp
from aiohttp import StreamReader, web
from aiohttp.helpers import _EXC_SENTINEL  # StreamReader.set_exception's "no cause" default

log = logging.getLogger("mockd.proxy")


class _Forwarding(StreamReader):
    """A response body's reader that hands what the parser feeds it to a forwarder instead of keeping it. Its slots
    are StreamReader's own (that is what lets an instance's class be switched), so where each instance
    forwards to is kept by the class."""

    __slots__ = ()
    forwarders: ClassVar[dict[int, BodyForwarder]] = {}

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        if data:
            self.forwarders[id(self)].parsed(data)
        return False  # nothing waits in the reader: the parser need not hold back

    def begin_http_chunk_receiving(self) -> None:
        pass  # the upstream's chunk boundaries are not kept: the client's framing is the relay's own

    def end_http_chunk_receiving(self) -> None:
        pass

    def feed_eof(self) -> None:
        super().feed_eof()  # its callbacks give the upstream connection back to the pool
        self.forwarders[id(self)].ended(None)

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        super().set_exception(exc, exc_cause)
        self.forwarders[id(self)].ended(exc)


class BodyForwarder:
    """Forwards the rest of ``upstream``'s body to ``response`` (prepared, so its head is sent and its
    framing set), showing each piece to ``observe`` once it is written."""

    def __init__(self, upstream: aiohttp.ClientResponse, request: web.BaseRequest, response: web.StreamResponse,
                 observe: Callable[[bytes], None] | None) -> None:
        self.upstream = upstream
        self.writer: Any = response._payload_writer  # noqa: SLF001 - how aiohttp frames this response, and its byte count
        self.client: Any = request.protocol
        self.transport = request.transport
        self.path = request.path
        self.observe = observe
        self.client_gone = False
        self.holding = False  # reading the upstream is paused until the client's buffer drains
        self._pending: list[bytes] = []  # pieces of the current read from the upstream, not yet written
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        """Forward until the body ends. Raises what ended the upstream's side (the client going away is
        :attr:`client_gone`, not an error)."""
        content = self.upstream.content
        if buffered := content.read_nowait():  # what came with the head; raises a failure already in
            self._collect(buffered)
        if content.is_eof():
            self._write()
            return
        _Forwarding.forwarders[id(content)] = self
        content.__class__ = _Forwarding
        try:
            await self._done
        finally:
            content.__class__ = StreamReader
            del _Forwarding.forwarders[id(content)]

    def parsed(self, data: bytes) -> None:
        """A piece the parser found. If the client is not keeping up, reading the upstream pauses here,
        inside the parser's call, as aiohttp's own reader pauses it: the parser stops after this piece
        and keeps the rest of the read for when reading resumes. (Paused anywhere else, the parser
        would stop after the first piece of the next read, and the rest of it — the body's end, it may
        be — would wait for a read that never comes.)"""
        self._collect(data)
        if self.client.writing_paused and not self.holding:
            self._hold_upstream()

    def _collect(self, data: bytes) -> None:
        """The pieces of one read from the upstream go out together, right after it."""
        pending = self._pending
        if not pending:
            asyncio.get_running_loop().call_soon(self._write)
        pending.append(data)

    def _write(self) -> None:
        """Write the pieces that came in one read as one (one chunk, one send), then show them to the
        observer; an upstream writing many small chunks costs one write per read, not one per chunk."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        transport = self.transport
        if self.client_gone or transport is None or transport.is_closing():
            self.client_gone = True
            self.ended(None)
            return
        writer = self.writer
        framed = b"%x\r\n%b\r\n" % (len(data), data) if writer.chunked else data
        writer.output_size += len(framed)
        transport.write(framed)
        if self.observe is not None:
            self._show(data)

    def _show(self, data: bytes) -> None:
        """Show the piece to the observer; one that fails stops observing (the body still goes through),
        and the log says so."""
        assert self.observe is not None
        try:
            self.observe(data)
        except Exception:
            self.observe = None
            log.exception("%s %s: the rest of this response is relayed but not recorded",
                          self.upstream.method, self.path)

    def ended(self, error: BaseException | None) -> None:
        """The body is over (or broke off with ``error``): what came before still goes out first."""
        if self._done.done():
            return
        self._write()
        if self._done.done():  # the write found the client gone, which ends it too
            return
        if error is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(error)

    def _hold_upstream(self) -> None:
        connection = self.upstream.connection
        if connection is None or connection.protocol is None:
            return
        self.holding = True
        connection.protocol.pause_reading()
        asyncio.get_running_loop().create_task(self._resume_when_drained(connection.protocol))

    async def _resume_when_drained(self, upstream: Any) -> None:
        try:
            await self.client._drain_helper()  # noqa: SLF001 - aiohttp's wait for its transport to drain
        except ConnectionError:
            self.client_gone = True
            self.ended(None)
            return
        finally:
            self.holding = False
        if not self._done.done():  # once the body is over the connection is the pool's
            upstream.resume_reading()
