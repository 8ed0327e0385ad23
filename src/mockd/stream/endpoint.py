"""One WebSocket connection as its stream events tell it, for every producer: mocks, the proxy's two
relays and replays.

:class:`WsEndpoint` emits the connection's frames (nothing while nobody follows it), keeps the close as
RFC 6455 has it — the connection ends with the code and reason of whoever closed first — and writes each
socket's close frame at most once, emitting it as it goes. The producers keep only what is theirs: what
to answer, what to relay, when to give up on a peer.
"""

from __future__ import annotations

import time

from mockd.stream.events import Connection, Direction, FrameType, StreamEvents, WsFrame
from mockd.stream.wsclose import AnyWebSocket, close_payload, send_close_frame


class WsEndpoint:
    __slots__ = ("_closes_sent", "connection", "events")

    def __init__(self, events: StreamEvents, connection: Connection) -> None:
        self.events = events
        self.connection = connection
        self._closes_sent: set[int] = set()  # id() of each socket no (further) close frame may go to

    def emit(self, direction: Direction, kind: FrameType, data: str | bytes, at_ns: int = 0) -> None:
        """A frame went by (``at_ns``: when; default now). ``data`` is ``str`` for text, else ``bytes``."""
        if self.connection.followers:
            self.events.ws_frame(self.connection, WsFrame(direction, kind, data, at_ns=at_ns or time.time_ns()))

    def emit_close(self, direction: Direction, code: int, reason: str, at_ns: int = 0) -> None:
        if self.connection.followers:
            self.events.ws_frame(self.connection, WsFrame(direction, "close", close_payload(code, reason), code,
                                                          reason, at_ns=at_ns or time.time_ns()))

    @property
    def closing(self) -> bool:
        """Whether either side has closed (or the connection was ended for them)."""
        return self.connection.close_code is not None

    def closed_by(self, code: int, reason: str) -> None:
        """A close was sent or received: the first one is the connection's."""
        connection = self.connection
        if connection.close_code is None:
            connection.close_code, connection.close_reason = code, reason

    def close_sent_to(self, ws: AnyWebSocket) -> bool:
        return id(ws) in self._closes_sent

    def no_close_to(self, ws: AnyWebSocket) -> None:
        """``ws`` is gone (or has its close another way): no close frame is written to it."""
        self._closes_sent.add(id(ws))

    def begin_close(self, ws: AnyWebSocket, direction: Direction, code: int, reason: str) -> bool:
        """Claim ``ws``'s close frame: the connection takes the code if it is the first close, and the frame
        is emitted. False when one went to ``ws`` already; else the caller writes it
        (:func:`~mockd.stream.wsclose.send_close_frame`), or calls :meth:`send_close`, which does both."""
        if id(ws) in self._closes_sent:
            return False
        self._closes_sent.add(id(ws))
        self.closed_by(code, reason)
        self.emit_close(direction, code, reason)
        return True

    async def send_close(self, ws: AnyWebSocket, direction: Direction, code: int, reason: str) -> None:
        if self.begin_close(ws, direction, code, reason):
            await send_close_frame(ws, code, reason)

    async def answer_ping(self, ws: AnyWebSocket, data: bytes) -> None:
        """A ping from the client: emitted, answered with the same payload, the pong emitted."""
        self.emit("c2s", "ping", data)
        await ws.pong(data)
        self.emit("s2c", "pong", data)
