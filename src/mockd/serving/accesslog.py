"""The access log: one line per request on both listeners, and per WebSocket or SSE connection its open
and its close (code, reason, frames each way). On at ``--log-level debug`` or with ``--access-log``.

Lines go to the ``mockd.access`` logger at INFO, as text or — with ``--log-format json`` — as JSON
objects whose fields (``access``) a log pipeline can query. Secrets never appear: query parameters and
headers pass through the recording's :class:`~mockd.stream.redact.Redactor`. Counting frames makes
the log a stream-events subscriber that follows every connection, so while it is on the relay decodes
every frame (as it does for the connections a recording session records).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from mockd.stream.events import Connection, SseBlock, SseDataRun, WsFrame
from mockd.stream.redact import Redactor

log = logging.getLogger("mockd.access")

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer
# Set on a request by whatever answered it: a mock's id, or "replay <id>".
ANSWERED_BY: web.RequestKey[str | None] = web.RequestKey("mockd.answered_by")

RawHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
Describe = Callable[[str], str]  # a mock id -> how the line names it ("mock=chat", "upstream=https://…")


def access_log_enabled() -> bool:
    return log.isEnabledFor(logging.INFO)


class AccessLog:
    """Writes the lines; ``describe`` names what answered, ``with_headers`` adds the request's headers."""

    def __init__(self, redactor: Redactor, describe: Describe, with_headers: bool = False) -> None:
        self.redactor = redactor
        self.describe = describe
        self.with_headers = with_headers
        self._frames: dict[int, list[int]] = {}  # connection number -> [client to server, server to client]

    # --- requests ------------------------------------------------------------------------------

    def wrap(self, handler: RawHandler, listener: str) -> RawHandler:
        """``handler`` logging each request once it has been answered (a stream: once it ended)."""

        async def logged(request: web.BaseRequest) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            except asyncio.CancelledError:
                status = CLIENT_CLOSED_REQUEST
                raise
            finally:
                self.request(listener, request, status, time.perf_counter() - started)

        return logged

    def middleware(self, listener: str) -> Any:
        @web.middleware
        async def logged(request: web.Request, handler: RawHandler) -> web.StreamResponse:
            return await self.wrap(handler, listener)(request)

        return logged

    def request(self, listener: str, request: web.BaseRequest, status: int, seconds: float) -> None:
        answered_by = request.get(ANSWERED_BY)
        fields: dict[str, Any] = {"kind": "request", "listener": listener, "method": request.method,
                                  "path": request.path, "status": status, "durationMs": round(seconds * 1000, 1)}
        by = self.describe(answered_by) if answered_by else ""
        if by:
            fields["answeredBy"] = by
        self._write(f"{listener} {request.method}", request.path, request.query.items(),
                    f"{status} {_duration(seconds)}{' ' + by if by else ''}", fields, request.headers.items())

    # --- streams (a StreamEvents subscriber) ----------------------------------------------------

    def connection_opened(self, connection: Connection) -> None:
        if connection.protocol == "http":
            return
        self._frames[connection.number] = [0, 0]
        connection.followers += 1  # its frames are counted
        fields = self._stream_fields("open", connection)
        if connection.subprotocol:
            fields["subprotocol"] = connection.subprotocol
        subprotocol = f" subprotocol={connection.subprotocol}" if connection.subprotocol else ""
        self._write(f"{_kind(connection)} open", connection.path, connection.query,
                    f"via {connection.origin}{subprotocol}", fields, connection.headers)

    def ws_frame(self, connection: Connection, frame: WsFrame) -> None:
        counts = self._frames.get(connection.number)
        if counts is not None:
            counts[0 if frame.direction == "c2s" else 1] += 1

    def sse_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None:
        self._events_sent(connection, len(blocks))

    def sse_data(self, connection: Connection, run: SseDataRun) -> None:
        self._events_sent(connection, run.count)

    def _events_sent(self, connection: Connection, count: int) -> None:
        counts = self._frames.get(connection.number)
        if counts is not None:
            counts[1] += count

    def connection_closed(self, connection: Connection) -> None:
        counts = self._frames.pop(connection.number, None)
        if counts is None:
            return
        connection.followers -= 1
        seconds = ((connection.closed_ns or time.time_ns()) - connection.opened_ns) / 1e9
        fields = self._stream_fields("close", connection)
        fields.update(durationMs=round(seconds * 1000, 1))
        if connection.protocol == "websocket":
            fields.update(closeCode=connection.close_code, closeReason=connection.close_reason,
                          framesIn=counts[0], framesOut=counts[1])
            code = "no close frame" if connection.close_code is None else str(connection.close_code)
            detail = f"{code}{f' {connection.close_reason!r}' if connection.close_reason else ''} " \
                     f"frames in={counts[0]} out={counts[1]}"
        else:
            fields.update(events=counts[1])
            detail = f"events={counts[1]}"
        self._write(f"{_kind(connection)} close", connection.path, connection.query,
                    f"{detail} {_duration(seconds)}", fields)

    def http_exchange(self, exchange: Connection) -> None:
        """Plain exchanges are already logged as requests."""

    # --- shared ---------------------------------------------------------------------------------

    def _stream_fields(self, kind: str, connection: Connection) -> dict[str, Any]:
        return {"kind": kind, "listener": "mock", "protocol": connection.protocol, "method": connection.method,
                "path": connection.path, "origin": connection.origin, "connection": connection.number,
                "remote": connection.remote}

    def _write(self, before: str, path: str, query: Iterable[tuple[str, str]], after: str, fields: dict[str, Any],
               headers: Iterable[tuple[str, str]] | None = None) -> None:
        """Log ``BEFORE PATH?QUERY AFTER`` with ``fields``; query values and headers (only at debug, only
        where given) redacted."""
        parameters = self.redactor.query(query)
        target = path + ("?" + "&".join(f"{name}={value}" for name, value in parameters.items()) if parameters else "")
        if parameters:
            fields["query"] = parameters
        line = f"{before} {target} {after}"
        if self.with_headers and headers is not None:
            fields["headers"] = self.redactor.headers(headers)
            line += f" headers={fields['headers']}"
        log.info(line, extra={"access": fields})


def _kind(connection: Connection) -> str:
    return "WS" if connection.protocol == "websocket" else "SSE"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms" if seconds < 10 else f"{seconds:.1f}s"
