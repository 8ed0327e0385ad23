"""``mockd.stream.endpoint.WsEndpoint``, without sockets: what it emits, the first closer's code, and
one close frame per socket — the rules the mock, both relays and the replay driver share."""

from __future__ import annotations

from dataclasses import dataclass, field

from mockd.stream.endpoint import WsEndpoint
from mockd.stream.events import Connection, SseBlock, SseDataRun, StreamEvents, WsFrame


@dataclass
class Frames:
    """A subscriber keeping the frames it is told, in order."""

    seen: list[WsFrame] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)

    def connection_opened(self, connection: Connection) -> None:
        self.opened.append(connection.number)

    def ws_frame(self, connection: Connection, frame: WsFrame) -> None:
        self.seen.append(frame)

    def sse_blocks(self, connection: Connection, blocks: list[SseBlock]) -> None:
        raise AssertionError("a WebSocket endpoint emits no SSE blocks")

    def sse_data(self, connection: Connection, run: SseDataRun) -> None:
        raise AssertionError("a WebSocket endpoint emits no SSE blocks")

    def connection_closed(self, connection: Connection) -> None:
        self.closed.append(connection.number)

    def http_exchange(self, exchange: Connection) -> None:
        raise AssertionError("a WebSocket endpoint emits no exchanges")


def a_connection() -> Connection:
    return Connection(protocol="websocket", origin="mock", method="GET", path="/ws", host="127.0.0.1",
                      headers=[], query=[], remote="127.0.0.1:1")


class Socket:
    """Stands for a socket: the endpoint only tells sockets apart."""


def test_frames_are_emitted_only_while_someone_follows_the_connection() -> None:
    events, frames = StreamEvents(), Frames()
    endpoint = WsEndpoint(events, connection := a_connection())
    endpoint.emit("s2c", "text", "before anyone listened")
    events.subscribe(frames)
    endpoint.emit("s2c", "text", "listened to, not followed")
    connection.followers += 1
    endpoint.emit("c2s", "binary", b"\x00\x01", at_ns=42)
    endpoint.emit("s2c", "text", "now")
    assert [(f.direction, f.type, f.data) for f in frames.seen] == [("c2s", "binary", b"\x00\x01"),
                                                                    ("s2c", "text", "now")]
    assert frames.seen[0].at_ns == 42 and frames.seen[1].at_ns > 42


def test_the_first_close_is_the_connections() -> None:
    connection = a_connection()
    endpoint = WsEndpoint(StreamEvents(), connection)
    assert not endpoint.closing
    endpoint.closed_by(4000, "first")
    endpoint.closed_by(1000, "second")
    assert endpoint.closing and (connection.close_code, connection.close_reason) == (4000, "first")


def test_each_socket_gets_one_close_frame_emitted_with_its_payload() -> None:
    events, frames = StreamEvents(), Frames()
    events.subscribe(frames)
    connection = a_connection()
    connection.followers += 1
    endpoint = WsEndpoint(events, connection)
    client, upstream, gone = Socket(), Socket(), Socket()
    assert endpoint.begin_close(client, "s2c", 1001, "going")
    assert not endpoint.begin_close(client, "s2c", 1000, "again")
    assert endpoint.close_sent_to(client) and not endpoint.close_sent_to(upstream)
    assert endpoint.begin_close(upstream, "c2s", 1000, "answer")
    endpoint.no_close_to(gone)
    assert not endpoint.begin_close(gone, "s2c", 1000, "")
    assert [(f.direction, f.type, f.data, f.close_code, f.close_reason) for f in frames.seen] == [
        ("s2c", "close", (1001).to_bytes(2, "big") + b"going", 1001, "going"),
        ("c2s", "close", (1000).to_bytes(2, "big") + b"answer", 1000, "answer")]
    assert (connection.close_code, connection.close_reason) == (1001, "going")


def test_a_connection_block_opens_and_closes_even_when_left_by_an_error() -> None:
    events, frames = StreamEvents(), Frames()
    events.subscribe(frames)
    connection = a_connection()
    try:
        with events.connection(connection) as opened:
            assert opened is connection and frames.opened == [connection.number] and not frames.closed
            assert connection in events.open_connections
            raise ConnectionResetError
    except ConnectionResetError:
        pass
    assert frames.closed == [connection.number] and connection.closed_ns is not None
    assert connection not in events.open_connections
