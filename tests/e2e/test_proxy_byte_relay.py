"""The WebSocket byte relay of the upstream proxy (``mockd.serving.wsbytes``, ``mockd.stream.wsscan``),
black-box over real sockets.

After both handshakes mockd writes each leg's bytes to the other as they arrive, and decodes frames on
the side only for a recording (or always, when permessage-deflate is negotiated). These tests stand a
real ``mockd serve`` between peers that see and send exact bytes: a raw asyncio client and a raw
asyncio upstream doing the opening handshake by hand (frames built here with ``struct``, compressed
with ``zlib``), or the ``websockets`` library where a test needs a whole independent implementation.
Each test first checks, from mockd's debug log, that its connection really took the byte path.

Covered: permessage-deflate passing compressed and recorded decompressed; client masks, and frames
sent in the same write as the upgrade request or the 101, passing intact; fragmented messages passing
fragment by fragment and recorded once; chunks cut inside headers, extended lengths and mask keys; a
recording joining a connection in mid-traffic; the fallback to the message relay for an unknown
extension; the closing handshake and connections dropped by either side (between frames and inside
one); back-pressure from a client that does not read.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import random
import struct
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.frames import Opcode

from processes import MockdFactory, RunningMockd
from configs import mocks_config
from test_proxy_websocket import BAD_GATEWAY_CODES, open_client
from sessions import poll_recording, start_session, stop_session
from test_recording_api import frames, ns, payload, summary
from polling import poll_until
from upstreams import (
    assert_held_back,
    DEADLINE,
    HOST,
    Data,
    Headers,
    RecordingServerConnection,
    dropping_ws_upstream,
    echo,
    exchange,
    header_value,
    parse_header_lines,
    proxy_mock,
    raw_server,
    recv,
    server_close,
    websocket_accept,
    ws_upstream,
)

LOG_ARGS = ("--log-level", "debug", "--log-format", "json")  # the relay's choice is logged at debug
RECORD_ALL = "/*"
DEFLATE_TAIL = b"\x00\x00\xff\xff"  # what every Z_SYNC_FLUSH ends with; permessage-deflate leaves it off
MiB = 1024 * 1024


def start_proxy(mockd: MockdFactory, target: str) -> RunningMockd:
    """mockd with one catch-all proxy mock to ``target``, logging at debug as JSON."""
    return mockd.start(mocks_config(proxy_mock(target)), *LOG_ARGS)


# --- frames on the wire, by hand (RFC 6455 §5.2) ---------------------------------------------------


def masked(data: bytes, key: bytes) -> bytes:
    """``data`` XORed with the 4-byte masking ``key`` (masking and unmasking are the same)."""
    if not data:
        return b""
    size = len(data)
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def wire_frame(opcode: Opcode, data: bytes, *, fin: bool = True, rsv1: bool = False,
               mask: bytes | None = None) -> bytes:
    """One frame as it goes on the wire; ``mask`` is a client's masking key (None: a server's unmasked frame)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode.value
    mask_bit = 0x80 if mask is not None else 0
    size = len(data)
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is None:
        return head + data
    assert len(mask) == 4
    return head + mask + masked(data, mask)


def close_data(code: int, reason: str) -> bytes:
    return struct.pack("!H", code) + reason.encode()


@dataclass(frozen=True)
class WireFrame:
    """A frame read off the wire: its flags, opcode and (unmasked) payload."""

    fin: bool
    rsv1: bool
    opcode: Opcode
    data: bytes
    was_masked: bool


async def read_frame(reader: asyncio.StreamReader, timeout: float = DEADLINE) -> WireFrame:
    async def read() -> WireFrame:
        first, second = await reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", await reader.readexactly(8))[0]
        key = await reader.readexactly(4) if second & 0x80 else None
        data = await reader.readexactly(size)
        return WireFrame(bool(first & 0x80), bool(first & 0x40), Opcode(first & 0x0F),
                         masked(data, key) if key else data, key is not None)

    return await asyncio.wait_for(read(), timeout)


class Deflater:
    """permessage-deflate (RFC 7692 §7.2.1) by zlib: raw deflate, each message ended with a sync flush
    whose ``00 00 ff ff`` tail is cut off. ``takeover=False`` compresses every message afresh."""

    def __init__(self, window_bits: int = 15, takeover: bool = True) -> None:
        self.window_bits = window_bits
        self.takeover = takeover
        self._compressor: Any = None

    def compress(self, data: bytes) -> bytes:
        if self._compressor is None or not self.takeover:
            self._compressor = zlib.compressobj(wbits=-self.window_bits)
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(DEFLATE_TAIL)
        return out[:-len(DEFLATE_TAIL)]


# --- raw WebSocket ends ------------------------------------------------------------------------------


@dataclass
class RawEnd:
    """One end of a WebSocket connection after a hand-made opening handshake: the bytes are the test's."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    head: bytes  # the head this end received: the request (upstream) or the 101 (client)
    headers: Headers

    def value(self, name: str) -> str | None:
        return header_value(self.headers, name)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive_exactly(self, size: int, timeout: float = DEADLINE) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(size), timeout)

    async def rest(self, timeout: float = DEADLINE) -> bytes:
        """Every byte until the connection ends (EOF or reset), which must happen within ``timeout``."""
        chunks: list[bytes] = []

        async def drain() -> None:
            try:
                while chunk := await self.reader.read(65536):
                    chunks.append(chunk)
            except ConnectionError:
                pass

        await asyncio.wait_for(drain(), timeout)
        return b"".join(chunks)

    def abort(self) -> None:
        self.writer.transport.abort()


@asynccontextmanager
async def raw_client(server: RunningMockd, path: str, extensions: str | None = None,
                     early: bytes = b"") -> AsyncIterator[RawEnd]:
    """A hand-made WebSocket client through mockd; ``early`` goes in the same write as the upgrade
    request (the client talks first). The 101 must accept this client's own key."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, server.mock_port), DEADLINE)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [("Host", f"{HOST}:{server.mock_port}"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                 ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
        if extensions is not None:
            lines.append(("Sec-WebSocket-Extensions", extensions))
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in lines) + "\r\n"
        writer.write(request.encode("latin-1") + early)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        assert status_line.startswith("HTTP/1.1 101 "), head
        headers = parse_header_lines(header_lines)
        assert header_value(headers, "Sec-WebSocket-Accept") == websocket_accept(key)
        yield RawEnd(reader, writer, head, headers)
    finally:
        writer.transport.abort()


@dataclass
class RawWsUpstream:
    """A hand-made WebSocket upstream: answers every upgrade with a 101 (``extensions`` as its
    Sec-WebSocket-Extensions, ``after_101`` in the same write), then leaves the connection to the test."""

    extensions: str | None = None
    after_101: bytes = b""
    url: str = ""
    accepted: asyncio.Queue[RawEnd] = field(default_factory=asyncio.Queue)
    ends: list[RawEnd] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_connection(self, timeout: float = DEADLINE) -> RawEnd:
        return await asyncio.wait_for(self.accepted.get(), timeout)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.transport.abort()
            return
        headers = parse_header_lines(head.decode("latin-1").split("\r\n")[1:])
        key = header_value(headers, "Sec-WebSocket-Key")
        assert key is not None, head
        response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {websocket_accept(key)}\r\n")
        if self.extensions is not None:
            response += f"Sec-WebSocket-Extensions: {self.extensions}\r\n"
        writer.write((response + "\r\n").encode("latin-1") + self.after_101)
        end = RawEnd(reader, writer, head, headers)
        self.ends.append(end)
        self.accepted.put_nowait(end)
        await self.finished.wait()


@asynccontextmanager
async def raw_ws_upstream(extensions: str | None = None, after_101: bytes = b"") -> AsyncIterator[RawWsUpstream]:
    upstream = RawWsUpstream(extensions, after_101)
    async with raw_server(upstream.handle) as upstream.url:
        try:
            yield upstream
        finally:
            upstream.finished.set()
            for end in upstream.ends:
                end.abort()


# --- mockd's log and recordings ----------------------------------------------------------------------


def relay_choices(server: RunningMockd, path: str) -> list[str]:
    """The relay choices mockd logged for connections on ``path``."""
    prefix = f"WebSocket {path}: "
    return [entry["message"] for entry in server.log_entries()
            if entry.get("logger") == "mockd.proxy" and isinstance(entry.get("message"), str)
            and entry["message"].startswith((prefix + "byte relay", prefix + "message relay"))]


async def relay_choice(server: RunningMockd, path: str) -> str:
    """The one relay choice logged for ``path`` (it is logged just after the 101, so it is awaited)."""
    assert await poll_until(lambda: bool(relay_choices(server, path))), \
        f"no relay choice logged for {path}; stderr: {server.stderr[-3000:]}"
    choices = relay_choices(server, path)
    assert len(choices) == 1, choices
    return choices[0]


async def expect_byte_relay(server: RunningMockd, path: str, extensions: str | None = None) -> None:
    expected = f"WebSocket {path}: byte relay" + (f", extensions {extensions}" if extensions else "")
    assert await relay_choice(server, path) == expected


def problems(server: RunningMockd) -> list[dict[str, Any]]:
    """Warnings and errors mockd logged (an undecodable direction, a relay failure...)."""
    return [entry for entry in server.log_entries() if entry.get("level") in ("warning", "error", "critical")]


def recorded(recording: dict[str, Any], direction: str) -> list[tuple[str, Any]]:
    """The (type, payload) of every frame recorded in ``direction``, in order."""
    return [(kind, data) for where, kind, data in summary(recording) if where == direction]


def typed(messages: list[Data]) -> list[tuple[str, Any]]:
    return [("text" if isinstance(message, str) else "binary", message) for message in messages]


# --- 1. permessage-deflate -----------------------------------------------------------------------------

CLIENT_OFFER = "permessage-deflate; client_max_window_bits"
DEFLATE_ANSWERS = {
    "server-no-context-takeover": "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
    "context-takeover": "permessage-deflate",
}
PROSE = ("Frames pass as they came: compressed ones stay compressed, ünïcödé and all ✓ — the recording "
         "holds what they say, decompressed on the side. ")


@pytest.mark.parametrize("answer", list(DEFLATE_ANSWERS.values()), ids=list(DEFLATE_ANSWERS))
async def test_deflate_frames_pass_compressed_and_are_recorded_decompressed(mockd: MockdFactory, answer: str) -> None:
    server_takeover = "server_no_context_takeover" not in answer
    client_window = 12 if "client_max_window_bits=12" in answer else 15
    path = "/deflate/" + ("takeover" if server_takeover else "no-takeover")
    to_upstream = [PROSE * 3, PROSE * 3 + "(the client, again)"]
    to_client = [PROSE * 4, PROSE * 4 + "(the upstream, again)", "short ✓"]

    client_deflate = Deflater(client_window)  # no client_no_context_takeover: the client's context carries on
    client_frames = [wire_frame(Opcode.TEXT, client_deflate.compress(text.encode()), rsv1=True, mask=key)
                     for text, key in zip(to_upstream, (b"\x11\x22\x33\x44", b"\xfe\x01\x80\x7f"))]
    server_deflate = Deflater(15, takeover=server_takeover)
    compressed = [server_deflate.compress(text.encode()) for text in to_client]
    if server_takeover:  # the premise: the second frame refers back into the first, it cannot stand alone
        assert len(compressed[1]) < len(compressed[0]) // 4
    burst = b"".join(wire_frame(Opcode.TEXT, data, rsv1=True) for data in compressed)

    async with raw_ws_upstream(extensions=answer) as upstream:
        server = start_proxy(mockd, upstream.url)
        recording_id = await start_session(server, "websocket", RECORD_ALL)
        async with raw_client(server, path, extensions=CLIENT_OFFER) as client:
            up = await upstream.next_connection()
            assert up.value("Sec-WebSocket-Extensions") == CLIENT_OFFER  # the offer went upstream as it came
            assert client.value("Sec-WebSocket-Extensions") == answer  # and the answer came back verbatim
            await expect_byte_relay(server, path, answer)

            for frame in client_frames:  # mask key and compressed payload intact
                await client.send(frame)
                assert await up.receive_exactly(len(frame)) == frame
            await up.send(burst)
            assert await client.receive_exactly(len(burst)) == burst
            recording = await stop_session(server, recording_id)

    assert recorded(recording, "c2s") == [("text", text) for text in to_upstream]
    assert recorded(recording, "s2c") == [("text", text) for text in to_client]
    assert not problems(server), problems(server)


# --- 2. masks and frames that come with the handshakes -----------------------------------------------


@pytest.mark.parametrize("recording", [True, False], ids=["recording", "not-recording"])
async def test_handshake_tails_and_a_chosen_mask_pass_intact(mockd: MockdFactory, recording: bool) -> None:
    greeting = wire_frame(Opcode.TEXT, "sent in the 101's write ✓".encode())
    early = wire_frame(Opcode.TEXT, "sent in the upgrade request's write ✓".encode(), mask=b"\x01\x02\x03\x04")
    key = b"\x37\xfa\x21\x3d"
    blob = bytes(range(256)) * 3
    chosen = wire_frame(Opcode.BINARY, blob, mask=key)
    assert chosen[4:8] == key and chosen[8:] != blob  # the premise: the payload is masked with our key
    reply = wire_frame(Opcode.BINARY, b"\x00\xff" * 200)

    async with raw_ws_upstream(after_101=greeting) as upstream:
        server = start_proxy(mockd, upstream.url)
        recording_id = await start_session(server, "websocket", RECORD_ALL) if recording else None
        async with raw_client(server, "/tails", early=early) as client:
            up = await upstream.next_connection()
            assert up.head.startswith(b"GET /tails HTTP/1.1\r\n")
            assert await client.receive_exactly(len(greeting)) == greeting
            assert await up.receive_exactly(len(early)) == early
            await client.send(chosen)
            assert await up.receive_exactly(len(chosen)) == chosen
            await up.send(reply)
            assert await client.receive_exactly(len(reply)) == reply
            await expect_byte_relay(server, "/tails")
            if recording_id is not None:
                saved = await stop_session(server, recording_id)
                assert recorded(saved, "c2s") == [("text", "sent in the upgrade request's write ✓"), ("binary", blob)]
                assert recorded(saved, "s2c") == [("text", "sent in the 101's write ✓"),
                                                  ("binary", b"\x00\xff" * 200)]
    assert not problems(server), problems(server)


# --- 3. fragments --------------------------------------------------------------------------------------


async def test_a_fragmented_message_passes_fragment_by_fragment_and_is_recorded_once(mockd: MockdFactory) -> None:
    parts = [
        wire_frame(Opcode.TEXT, b"frag", fin=False, mask=b"\x0a\x0b\x0c\x0d"),
        wire_frame(Opcode.PING, b"in between", mask=b"\x99\x88\x77\x66"),
        wire_frame(Opcode.CONT, b"ment", fin=False, mask=b"\x10\x20\x30\x40"),
        wire_frame(Opcode.CONT, "ed ✓".encode(), mask=b"\xde\xad\xbe\xef"),
    ]
    async with raw_ws_upstream() as upstream:
        server = start_proxy(mockd, upstream.url)
        recording_id = await start_session(server, "websocket", RECORD_ALL)
        async with raw_client(server, "/fragments") as client:
            up = await upstream.next_connection()
            await expect_byte_relay(server, "/fragments")
            last_sent_ns = 0
            for part in parts:  # one at a time: each arrives before the next is written, so never joined
                last_sent_ns = time.time_ns()
                await client.send(part)
                assert await up.receive_exactly(len(part)) == part
            recording = await stop_session(server, recording_id)

    entries = [frame for frame in frames(recording) if frame["direction"] == "c2s"]
    assert [(frame["type"], payload(frame)) for frame in entries] == [("ping", b"in between"), ("text", "fragmented ✓")]
    ping, text = entries
    assert text["relativeMs"] >= ping["relativeMs"]
    assert ns(text["timestamp"]) >= ns(ping["timestamp"])
    # the message is stamped when its last fragment passed, not its first
    assert ns(text["timestamp"]) >= last_sent_ns - 1_000_000, (text["timestamp"], last_sent_ns)
    assert not recorded(recording, "s2c")
    assert not problems(server), problems(server)


# --- 4. chunks cut anywhere ------------------------------------------------------------------------------

SPLIT_MESSAGES: list[tuple[Opcode, bytes]] = [
    (Opcode.TEXT, "hi ✓".encode()),  # 7-bit length
    (Opcode.BINARY, random.Random(4).randbytes(300)),  # 16-bit extended length
    (Opcode.TEXT, ("split ✓ " * 9000).encode()),  # 64-bit extended length (90 000 bytes)
    (Opcode.BINARY, bytes(126)),  # the smallest 16-bit length
    (Opcode.TEXT, b""),
]


def split_stream(masks: bool) -> tuple[list[bytes], list[tuple[str, Any]]]:
    """The frames of SPLIT_MESSAGES cut into chunks at awkward places, and the messages they make."""
    rng = random.Random(11)
    pieces = [wire_frame(opcode, data, mask=rng.randbytes(4) if masks else None) for opcode, data in SPLIT_MESSAGES]
    key = 4 if masks else 0  # the mask key's length
    inside = [  # offsets into each frame
        [1, 4] if masks else [1],  # inside the 2-byte header; inside the mask key (bytes 2-5)
        [1, 3] + ([6] if masks else []),  # inside the 16-bit length; inside the key
        [1, 2, 5, 9] + ([12] if masks else []) + [10 + key + 40_000, len(pieces[2]) - 1],  # inside the 64-bit length...
        [2],  # right after the first two header bytes; the frame's end and the next frame's header share a chunk
        [1],
    ]
    cuts: set[int] = set()
    start = 0
    for piece, offsets in zip(pieces, inside):
        cuts.update(start + offset for offset in offsets if 0 < offset < len(piece))
        start += len(piece)
    stream = b"".join(pieces)
    points = [0, *sorted(cuts), len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    messages = [("text" if opcode is Opcode.TEXT else "binary", data.decode() if opcode is Opcode.TEXT else data)
                for opcode, data in SPLIT_MESSAGES]
    return chunks, messages


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
async def test_frames_cut_inside_headers_lengths_and_masks_pass_intact_and_are_recorded_once(
        mockd: MockdFactory, direction: str) -> None:
    chunks, messages = split_stream(masks=direction == "c2s")
    assert len(chunks) >= 12 and any(len(chunk) == 1 for chunk in chunks)
    async with raw_ws_upstream() as upstream:
        server = start_proxy(mockd, upstream.url)
        recording_id = await start_session(server, "websocket", RECORD_ALL)
        async with raw_client(server, f"/split/{direction}") as client:
            up = await upstream.next_connection()
            await expect_byte_relay(server, f"/split/{direction}")
            sender, receiver = (client, up) if direction == "c2s" else (up, client)
            for chunk in chunks:  # each chunk is through before the next is written: mockd reads it alone
                await sender.send(chunk)
                assert await receiver.receive_exactly(len(chunk)) == chunk
            recording = await stop_session(server, recording_id)

    assert recorded(recording, direction) == messages
    assert not recorded(recording, "s2c" if direction == "c2s" else "c2s")
    assert not problems(server), problems(server)


# --- 5. a recording that joins in mid-traffic --------------------------------------------------------------


def numbered(index: int) -> Data:
    """Message ``index`` of a steady stream: every fourth a large binary one (so frames are mid-way when
    a session starts), the others text of varied length."""
    if index % 4 == 0:
        return index.to_bytes(4, "big") + random.Random(index).randbytes(60_000 + index * 37 % 50_000)
    return f"{index}:" + "mid-traffic ✓ " * (index % 30 * 15)


def index_of(message: Data) -> int:
    return int.from_bytes(message[:4], "big") if isinstance(message, bytes) else int(message.split(":", 1)[0])


def in_fragments(message: Data) -> list[Data]:
    third = len(message) // 3
    return [message[:third], message[third:2 * third], message[2 * third:]]


async def test_a_recording_started_mid_traffic_has_each_later_message_once_and_no_earlier_one(
        mockd: MockdFactory) -> None:
    sent = 0
    echoed: list[Data] = []
    stop = asyncio.Event()

    async with ws_upstream(echo, compression=None) as upstream:
        server = start_proxy(mockd, upstream.url)
        async with open_client(server, "/mid-traffic", compression=None) as client:
            up = await upstream.next_connection()
            await expect_byte_relay(server, "/mid-traffic")

            def upstream_got() -> int:  # whole messages the upstream received (a final frame each)
                return sum(1 for frame in up.log.frames
                           if frame.fin and frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT))

            async def send_all() -> None:
                nonlocal sent
                for index in itertools.count():
                    if stop.is_set():
                        return
                    message = numbered(index)
                    await client.send(in_fragments(message) if index % 7 == 3 else message)
                    sent = index + 1

            async def read_all() -> None:
                while True:
                    echoed.append(await client.recv())

            sender, reader = asyncio.create_task(send_all()), asyncio.create_task(read_all())
            try:
                assert await poll_until(lambda: len(echoed) >= 20, 10), f"only {len(echoed)} echoes"
                # messages before these went through mockd, that way, before the session existed
                before = {"c2s": upstream_got(), "s2c": len(echoed)}
                recording_id = await start_session(server, "websocket", RECORD_ALL)
                after = sent + 1  # message `sent` may be under way; the next one is sent after the start returned
                assert await poll_until(lambda: sent >= after + 20, 10), f"stalled at {sent}"
                stop.set()
                await asyncio.wait_for(sender, DEADLINE)
                assert await poll_until(lambda: len(echoed) >= sent, 10), f"{len(echoed)} of {sent} echoed"
            finally:
                stop.set()
                sender.cancel()
                reader.cancel()
            recording = await stop_session(server, recording_id)

    assert typed(echoed) == typed([numbered(index) for index in range(sent)])  # the premise: the relay relayed
    for direction in ("c2s", "s2c"):
        entries = recorded(recording, direction)
        indices = [index_of(data) for _, data in entries]
        assert indices, f"nothing recorded {direction}"
        first = indices[0]
        assert before[direction] <= first <= after, \
            f"{direction}: recording starts at {first}, before={before[direction]} after={after}"
        assert indices == list(range(first, sent)), f"{direction}: missing or repeated messages: {indices}"
        assert entries == typed([numbered(index) for index in indices]), f"{direction}: a message was garbled"
    assert not problems(server), problems(server)


# --- 5b. decoding only what someone records ----------------------------------------------------------
# (mockd at the info level here: at debug the access log is on, and it follows every connection)

NOT_UTF8 = b"\xff\xfe is not UTF-8"  # a text frame the side decoder rejects (and warns about) if it sees it
MARKER = "/marker"


def undecodable_warnings(server: RunningMockd, path: str) -> list[str]:
    return [str(entry["message"]) for entry in problems(server)
            if str(entry.get("message")).startswith(f"WebSocket {path}: c2s frames cannot be decoded")]


async def send_through(client: RawEnd, up: RawEnd, text: bytes) -> None:
    frame = wire_frame(Opcode.TEXT, text, mask=b"\x0a\x0b\x0c\x0d")
    await client.send(frame)
    assert await up.receive_exactly(len(frame)) == frame  # relayed as it came, decodable or not


async def logged_up_to_now(server: RunningMockd, upstream: RawWsUpstream) -> None:
    """Make a recorded connection on ``MARKER`` warn, and wait for that warning: whatever mockd logged
    before it is in its log too."""
    async with raw_client(server, MARKER) as client:
        await send_through(client, await upstream.next_connection(), NOT_UTF8)
        assert await poll_until(lambda: bool(undecodable_warnings(server, MARKER))), problems(server)


@pytest.mark.parametrize(("session_path", "decoded"), [(RECORD_ALL, True), (MARKER + "*", False)],
                         ids=["recorded", "another-path-recorded"])
async def test_a_connection_is_decoded_only_while_a_session_records_it(mockd: MockdFactory, session_path: str,
                                                                       decoded: bool) -> None:
    async with raw_ws_upstream() as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)), "--log-format", "json")
        recording_id = await start_session(server, "websocket", session_path)
        async with raw_client(server, "/watched") as client:
            await send_through(client, await upstream.next_connection(), NOT_UTF8)
            await logged_up_to_now(server, upstream)
        await stop_session(server, recording_id)
    assert len(undecodable_warnings(server, "/watched")) == (1 if decoded else 0), problems(server)


async def test_a_connection_nobody_records_any_more_is_no_longer_decoded_until_a_session_takes_it_again(
        mockd: MockdFactory) -> None:
    async with raw_ws_upstream() as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)), "--log-format", "json")
        first = await start_session(server, "websocket", RECORD_ALL)
        async with raw_client(server, "/watched") as client:
            up = await upstream.next_connection()
            await send_through(client, up, "recorded ✓".encode())
            saved = await stop_session(server, first)
            await send_through(client, up, NOT_UTF8)  # nobody follows the connection now
            marking = await start_session(server, "websocket", MARKER + "*")
            await logged_up_to_now(server, upstream)
            await stop_session(server, marking)
            assert undecodable_warnings(server, "/watched") == [], problems(server)
            second = await start_session(server, "websocket", RECORD_ALL)
            await send_through(client, up, b"recorded again")
            again = await stop_session(server, second)
    assert recorded(saved, "c2s") == [("text", "recorded ✓")]
    assert recorded(again, "c2s") == [("text", "recorded again")]


# --- 6. which path -------------------------------------------------------------------------------------------


async def greet_then_echo(ws: RecordingServerConnection) -> None:
    await ws.send("hello ✓")
    await echo(ws)


async def test_an_unknown_extension_offer_takes_the_message_relay_which_still_relays(mockd: MockdFactory) -> None:
    async with ws_upstream(greet_then_echo) as upstream:
        server = start_proxy(mockd, upstream.url)
        async with raw_client(server, "/fallback", extensions="x-mockd-test-ext; level=3") as client:
            up = await upstream.next_connection()
            choice = await relay_choice(server, "/fallback")
            assert choice.startswith("WebSocket /fallback: message relay, as ") and "x-mockd-test-ext" in choice
            assert "x-mockd-test-ext" not in (client.value("Sec-WebSocket-Extensions") or "")

            greeting = await read_frame(client.reader)
            assert (greeting.opcode, greeting.data, greeting.fin, greeting.was_masked) == \
                (Opcode.TEXT, "hello ✓".encode(), True, False)
            for opcode, data in [(Opcode.TEXT, "from the raw client ✓".encode()), (Opcode.BINARY, bytes(range(256)))]:
                await client.send(wire_frame(opcode, data, mask=os.urandom(4)))
                answer = await read_frame(client.reader)
                assert (answer.opcode, answer.data) == (opcode, data)
            assert [(frame.opcode, frame.data) for frame in up.log.of(Opcode.TEXT, Opcode.BINARY)] == \
                [(Opcode.TEXT, "from the raw client ✓".encode()), (Opcode.BINARY, bytes(range(256)))]


async def test_a_default_websockets_client_takes_the_byte_relay_with_deflate(mockd: MockdFactory) -> None:
    async with ws_upstream(echo) as upstream:  # both ends as the library comes: permessage-deflate offered
        server = start_proxy(mockd, upstream.url)
        async with open_client(server, "/default") as client:
            up = await upstream.next_connection()
            messages: list[Data] = ["squeeze me ✓ " * 100, bytes(5000), "tiny"]
            for message in messages:
                assert await exchange(client, message) == message
            assert client.response is not None and client.request is not None and up.request is not None
            negotiated = client.response.headers["Sec-WebSocket-Extensions"]
            assert negotiated.startswith("permessage-deflate")
            assert up.request.headers["Sec-WebSocket-Extensions"] == client.request.headers["Sec-WebSocket-Extensions"]
            assert [extension.name for extension in up.protocol.extensions] == ["permessage-deflate"]
            await expect_byte_relay(server, "/default", negotiated)
    assert not problems(server), problems(server)


# --- 7. closes and drops ---------------------------------------------------------------------------------------


async def test_close_codes_and_reasons_pass_both_ways_as_sent_and_are_recorded(mockd: MockdFactory) -> None:
    hello = wire_frame(Opcode.TEXT, b"last words", mask=b"\x5a\x5a\xa5\xa5")
    closing = wire_frame(Opcode.CLOSE, close_data(4001, "bye ✓"), mask=b"\xa1\xb2\xc3\xd4")
    answer = wire_frame(Opcode.CLOSE, close_data(4002, "see you ✓"))  # the upstream's own code and reason
    async with raw_ws_upstream() as upstream:
        server = start_proxy(mockd, upstream.url)
        recording_id = await start_session(server, "websocket", RECORD_ALL)
        async with raw_client(server, "/close") as client:
            up = await upstream.next_connection()
            await expect_byte_relay(server, "/close")
            await client.send(hello)
            assert await up.receive_exactly(len(hello)) == hello
            await client.send(closing)
            assert await up.receive_exactly(len(closing)) == closing
            up.writer.write(answer)
            up.writer.close()  # the server ends the TCP connection after the closing handshake (RFC 6455 §7.1.1)
            assert await client.rest() == answer  # the answer, then the end: the relay added nothing
        final = await poll_recording(server, recording_id, lambda r: "closedAt" in r["connections"][0])
        assert "closedAt" in final["connections"][0], final
        recording = await stop_session(server, recording_id)

    closes = [(frame["direction"], payload(frame)) for frame in frames(recording) if frame["type"] == "close"]
    assert closes == [("c2s", (4001, "bye ✓")), ("s2c", (4002, "see you ✓"))]
    assert recorded(recording, "c2s")[0] == ("text", "last words")
    [connection] = recording["connections"]
    assert (connection["closeCode"], connection["closeReason"]) == (4001, "bye ✓")
    assert not problems(server), problems(server)


@pytest.mark.parametrize("abort", [True, False], ids=["reset", "fin"])
async def test_an_upstream_dropping_between_frames_gets_the_client_a_bad_gateway_close(
        mockd: MockdFactory, abort: bool) -> None:
    async with dropping_ws_upstream(abort=abort) as raw:
        server = start_proxy(mockd, raw.url)
        async with open_client(server, "/dropped") as client:
            assert await recv(client) == "ready"
            await expect_byte_relay(server, "/dropped")
            raw.drop.set()
            _, close = await server_close(client)  # a close frame: mockd did not just drop the client
            assert close.code in BAD_GATEWAY_CODES
            await asyncio.wait_for(client.wait_closed(), DEADLINE)


@pytest.mark.parametrize("abort", [True, False], ids=["reset", "fin"])
async def test_an_upstream_dropping_inside_a_frame_ends_the_client_without_a_close_frame(
        mockd: MockdFactory, abort: bool) -> None:
    whole = wire_frame(Opcode.TEXT, b"a whole frame first")
    partial = struct.pack("!BBH", 0x82, 126, 1000) + b"0123456789"  # announces 1000 bytes, brings 10
    async with raw_ws_upstream() as upstream:
        server = start_proxy(mockd, upstream.url)
        async with raw_client(server, "/cut") as client:
            up = await upstream.next_connection()
            await expect_byte_relay(server, "/cut")
            await up.send(whole + partial)
            assert await client.receive_exactly(len(whole + partial)) == whole + partial
            if abort:
                up.abort()
            else:
                up.writer.close()
            rest = await client.rest()
            assert rest == b"", \
                f"after a cut frame nothing may follow (a close frame would be read as payload): {rest!r}"

        # mockd is unharmed: the next connection relays both ways
        assert server.process.poll() is None
        async with raw_client(server, "/after-cut") as again:
            up = await upstream.next_connection()
            ask, tell = (wire_frame(Opcode.TEXT, b"still there?", mask=b"\x01\x01\x01\x01"),
                         wire_frame(Opcode.TEXT, b"yes"))
            await again.send(ask)
            assert await up.receive_exactly(len(ask)) == ask
            await up.send(tell)
            assert await again.receive_exactly(len(tell)) == tell
            await expect_byte_relay(server, "/after-cut")
    assert not [entry for entry in problems(server) if entry.get("level") != "warning"], problems(server)


# mockd cancels a request's handler when its client's connection is lost (handler_cancellation), before
# aiohttp feeds the relay that end: the close frame for the upstream must still be written first.
@pytest.mark.parametrize("extensions", [None, "x-mockd-test-ext"], ids=["byte-relay", "message-relay"])
@pytest.mark.parametrize("abort", [True, False], ids=["reset", "fin"])
async def test_a_client_dropping_tcp_gets_the_upstream_a_1001(mockd: MockdFactory, abort: bool,
                                                              extensions: str | None) -> None:
    async with ws_upstream(echo, compression=None) as upstream:
        server = start_proxy(mockd, upstream.url)
        async with raw_client(server, "/gone", extensions=extensions) as client:
            up = await upstream.next_connection()
            if extensions is None:
                await expect_byte_relay(server, "/gone")
            await client.send(wire_frame(Opcode.TEXT, b"hello", mask=b"\x42\x42\x42\x42"))
            echoed = await read_frame(client.reader)
            assert (echoed.opcode, echoed.data) == (Opcode.TEXT, b"hello")
            if abort:
                client.abort()
            else:
                client.writer.close()
            await asyncio.wait_for(up.wait_closed(), DEADLINE)  # with or without a closing handshake
            closes = [frame.close() for frame in up.log.of(Opcode.CLOSE)]
            assert [close.code if close else None for close in closes] == [1001], \
                f"the upstream's connection ended with close frames {closes} (close_rcvd={up.protocol.close_rcvd})"


# --- 8. back-pressure -------------------------------------------------------------------------------------------

FLOOD_COUNT = 200
FLOOD_SIZE = 256 * 1024  # 50 MiB in all
RSS_ALLOWANCE = 64 * MiB


async def test_a_client_that_does_not_read_holds_the_upstream_back_in_bounded_memory(mockd: MockdFactory) -> None:
    block = random.Random(8).randbytes(FLOOD_SIZE)
    sent = 0

    def message(index: int) -> bytes:
        return index.to_bytes(4, "big") + block[4:]

    async def flood(ws: RecordingServerConnection) -> None:
        nonlocal sent
        for index in range(FLOOD_COUNT):
            await ws.send(message(index))  # returns once the write buffer drains below its limit
            sent = index + 1
        await ws.wait_closed()

    async with ws_upstream(flood, compression=None) as upstream:
        server = start_proxy(mockd, upstream.url)
        async with raw_client(server, "/flood") as client:  # offers no extension: frames go uncompressed
            await expect_byte_relay(server, "/flood")
            await assert_held_back(server.process.pid, lambda: sent, FLOOD_COUNT, RSS_ALLOWANCE)

            received = [await read_frame(client.reader, 10) for _ in range(FLOOD_COUNT)]
            assert [frame.data[:4] for frame in received] == [message(index)[:4] for index in range(FLOOD_COUNT)]
            assert all(frame.opcode is Opcode.BINARY and frame.fin and not frame.rsv1 and not frame.was_masked
                       for frame in received)
            assert all(frame.data == message(index) for index, frame in enumerate(received))
    assert not upstream.errors
