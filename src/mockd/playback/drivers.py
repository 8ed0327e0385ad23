"""The replay's I/O: an aiohttp WebSocket or SSE response for the client a replay session claimed, the
session's ``send`` and ``close`` over it, and the stream events a replay emits (origin ``replay``, so a
recording session captures a replay like any other connection)."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from mockd.playback.plan import FINISHED, Step
from mockd.playback.replay import ReplaySession
from mockd.recording.format import Frame, SseEvent, WebSocketSection
from mockd.serving.mocks.sse import sse_headers
from mockd.stream.endpoint import WsEndpoint
from mockd.stream.events import StreamEvents, connection_from_request
from mockd.stream.ssewire import encode_block
from mockd.stream.wsclose import CLOSE_TIMEOUT, NO_STATUS, release

__all__ = ["serve_sse", "serve_websocket"]


async def serve_websocket(session: ReplaySession, request: web.BaseRequest,
                          events: StreamEvents) -> web.StreamResponse:
    section = session.recording.websocket
    protocols = [section.subprotocol] if isinstance(section, WebSocketSection) and isinstance(
        section.subprotocol, str) else []
    ws = web.WebSocketResponse(protocols=protocols, autoping=False, autoclose=False, max_msg_size=0)
    try:
        await ws.prepare(request)
    except Exception as exc:
        session.handshake_failed(exc)
        raise
    connection = connection_from_request(request, "websocket", "replay", ws.ws_protocol)
    driver = _WebSocketDriver(ws, WsEndpoint(events, connection), session)
    session.connected(connection.remote, driver.close)
    try:
        with events.connection(connection):
            await driver.run()
    finally:
        await release(ws)
    return ws


async def serve_sse(session: ReplaySession, request: web.BaseRequest, events: StreamEvents) -> web.StreamResponse:
    status, headers = session.recorded_response()
    response = web.StreamResponse(status=status, headers=sse_headers(headers))
    try:
        await response.prepare(request)
    except Exception as exc:
        session.handshake_failed(exc)
        raise
    connection = connection_from_request(request, "sse", "replay")
    connection.status = status
    connection.response_headers = list(response.headers.items())

    async def send(step: Step) -> None:
        assert isinstance(step.item, SseEvent)
        block = step.item.block()
        await response.write(encode_block(block))
        if connection.followers:
            events.sse_blocks(connection, [block])

    async def cut(code: int, reason: str) -> None:
        if request.transport is not None:
            request.transport.close()

    session.connected(connection.remote, cut)  # an aborted or failed replay cuts the stream (no normal end)
    with events.connection(connection):
        try:
            await session.run(send)
            if session.status == "complete":
                await response.write_eof()
        except ConnectionError:
            session.finish("aborted", "the client went away")
    return response


class _WebSocketDriver:
    """Plays the session's frames to the client while reading the client's: pings are answered, data
    frames go to the session (synchronized mode waits on them), a close ends both."""

    def __init__(self, ws: web.WebSocketResponse, endpoint: WsEndpoint, session: ReplaySession) -> None:
        self.ws, self.endpoint, self.session = ws, endpoint, session

    async def send(self, step: Step) -> None:
        frame = step.item
        assert isinstance(frame, Frame)
        if frame.type == "close":
            code = frame.close_code if isinstance(frame.close_code, int) else NO_STATUS
            await self.close(code, frame.close_reason if isinstance(frame.close_reason, str) else "")
            return
        payload = frame.payload()
        if frame.type == "text":
            await self.ws.send_str(payload if isinstance(payload, str) else payload.decode())
        else:
            data = payload.encode() if isinstance(payload, str) else payload
            await (self.ws.send_bytes if frame.type == "binary" else self.ws.ping)(data)
        self.endpoint.emit("s2c", frame.type, payload)

    async def close(self, code: int, reason: str) -> None:
        if not self.ws.closed:
            await self.endpoint.send_close(self.ws, "s2c", code, reason)

    async def run(self) -> None:
        player = asyncio.get_running_loop().create_task(self.session.run(self.send))
        try:
            await self._read()
        finally:
            if not player.done():
                if self.session.status not in FINISHED:
                    self.session.finish("aborted", "the client went away")
                player.cancel()

    async def _read(self) -> None:
        ws, endpoint = self.ws, self.endpoint
        while True:
            try:
                message = await ws.receive(timeout=CLOSE_TIMEOUT if endpoint.close_sent_to(ws) else None)
            except TimeoutError:
                return
            kind = message.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                endpoint.emit("c2s", "text" if kind is WSMsgType.TEXT else "binary", message.data)
                self.session.offer(message.data)
            elif kind is WSMsgType.PING:
                await endpoint.answer_ping(ws, message.data)
            elif kind is WSMsgType.PONG:
                endpoint.emit("c2s", "pong", message.data)
            elif kind is WSMsgType.CLOSE:
                code, reason = message.data or NO_STATUS, message.extra or ""
                endpoint.emit_close("c2s", code, reason)
                endpoint.closed_by(code, reason)
                await endpoint.send_close(ws, "s2c", code, reason)  # the answer, unless ours went first
                return
            else:
                return
