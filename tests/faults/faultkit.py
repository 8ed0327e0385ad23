"""Helpers shared by the fault suite (docs/faults.md): recording sessions over the admin API,
recording-file checks, raw WebSocket frames, and checks that other test files still hold the tests the
fault suite relies on for some R-rows."""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import struct
from contextlib import suppress
from pathlib import Path
from typing import Any

from processes import RunningMockd
from httpclient import acall

DEADLINE = 10.0  # anything that should happen "soon" on a noisy two-core machine
HOST = "127.0.0.1"
E2E_DIR = Path(__file__).resolve().parent.parent / "e2e"  # where the tests the fault suite relies on live
Json = dict[str, Any]


async def session_ids(server: RunningMockd) -> set[str]:
    reply = await acall("GET", f"{server.admin_url}/stream-recordings/sessions")
    assert reply.status == 200, reply.text
    body = reply.json()
    items = body["sessions"] if isinstance(body, dict) else body
    return {str(item.get("sessionId") or item.get("id")) for item in items}


def recording_file(data_dir: Path, recording_id: str) -> Path:
    return data_dir / f"{recording_id}.json"


def assert_file_is_consistent(path: Path) -> Json:
    """The file parses as JSON, its ``fileSizeBytes`` is its size and ``frameCount`` its frames."""
    raw = path.read_bytes()
    recording: Json = json.loads(raw)
    assert recording["stats"]["fileSizeBytes"] == len(raw) == path.stat().st_size
    entries = recording["websocket"]["frames"] if recording["protocol"] == "websocket" else recording["sse"]["events"]
    assert recording["stats"]["frameCount"] == len(entries)
    return recording


def frames(recording: Json) -> list[Json]:
    found: list[Json] = recording["websocket"]["frames"]
    return found


def close_frames(recording: Json, direction: str | None = None) -> list[Json]:
    return [frame for frame in frames(recording)
            if frame["type"] == "close" and (direction is None or frame["direction"] == direction)]


def frame_bytes(frame: Json) -> bytes:
    data = frame.get("data", "")
    return base64.b64decode(data) if frame.get("encoding") == "base64" else str(data).encode()


# --- raw WebSocket frames (client side: masked unless told otherwise) ------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    """One WebSocket frame as a client would write it (RFC 6455 §5.2)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    length = len(payload)
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))


class RawWebSocket:
    """A hand-driven WebSocket client over a plain TCP socket: writes raw frames, parses what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, path: str) -> RawWebSocket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), DEADLINE)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self, timeout: float = DEADLINE) -> tuple[int, bool, bytes] | None:
        """The next frame (opcode, fin, payload), or None once the connection ends without one."""
        try:
            async with asyncio.timeout(timeout):
                first, second = await self.reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
                key = await self.reader.readexactly(4) if second & 0x80 else b""
                payload = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        if key:
            payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
        return first & 0x0F, bool(first & 0x80), payload

    async def read_until_close(self, timeout: float = DEADLINE) -> tuple[list[tuple[int, bytes]], int | None]:
        """Data frames read until the close frame (its code, 1005 when empty) or until the connection
        ends without one (None)."""
        seen: list[tuple[int, bytes]] = []
        async with asyncio.timeout(timeout):
            while (frame := await self.read_frame(timeout)) is not None:
                opcode, _, payload = frame
                if opcode == OP_CLOSE:
                    return seen, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                seen.append((opcode, payload))
        return seen, None

    async def message(self, timeout: float = DEADLINE) -> tuple[int, bytes]:
        """The next whole data message (fragments joined), skipping control frames other than close."""
        opcode, parts = -1, b""
        while True:
            frame = await self.read_frame(timeout)
            assert frame is not None, "the connection ended while a message was awaited"
            op, fin, payload = frame
            assert op != OP_CLOSE, f"closed while a message was awaited: {payload!r}"
            if op in (OP_PING, OP_PONG):
                continue
            opcode = op if op != OP_CONT else opcode
            parts += payload
            if fin:
                return opcode, parts

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


# --- tests the fault suite relies on, kept in other files ------------------------------------------


def test_functions_in(file_name: str) -> set[str]:
    """The names of the test functions defined at the top level of ``tests/e2e/FILE_NAME``."""
    tree = ast.parse((E2E_DIR / file_name).read_text())
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}


test_functions_in.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
