"""WebSocket scenarios served by a real ``mockd serve`` to clients that talk first (docs/config.md,
"WebSocket mocks"), including one whose first message is in the same TCP write as the upgrade request.

The inbox, the step delays and the runner's schedule are tested without sockets in ``tests/unit/test_scenario.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct

import pytest
from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from upstreams import DEADLINE, open_ws, recv


# --- real clients that talk first --------------------------------------------------------------------

WELCOME_AFTER = "200ms"
CHAT = ws_mock("chat", "/chat", scenario={"steps": [
    {"type": "send", "message": {"type": "text", "value": "welcome", "delay": WELCOME_AFTER}},
    {"type": "expect", "match": {"type": "json", "path": "$.type", "value": "join"}, "timeout": "5s"},
    {"type": "send", "message": {"type": "text", "value": "joined {{message.room}}"}},
    {"type": "expect", "match": {"type": "exact", "value": "second"}, "timeout": "5s"},
    {"type": "send", "message": {"type": "text", "value": "got the second"}},
]})


@pytest.fixture(scope="module")
def server(mockd_module: MockdFactory) -> RunningMockd:
    return mockd_module.start(mocks_config(CHAT))


async def test_a_client_that_sends_on_open_is_answered(server: RunningMockd) -> None:
    """A browser's onopen sends before the server's first frame; the message waits for the expect."""
    async with open_ws(server.ws_url("/chat")) as ws:
        await ws.send(json.dumps({"type": "join", "room": "general"}))
        await ws.send("second")
        assert [await recv(ws) for _ in range(3)] == ["welcome", "joined general", "got the second"]


async def test_early_messages_feed_later_expects_in_their_own_order(server: RunningMockd) -> None:
    """"second" came first but only the second expect takes it; the join that came after it is taken
    by the first."""
    async with open_ws(server.ws_url("/chat")) as ws:
        await ws.send("second")
        await ws.send(json.dumps({"type": "join", "room": "r1"}))
        assert [await recv(ws) for _ in range(3)] == ["welcome", "joined r1", "got the second"]


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


async def read_text_frame(reader: asyncio.StreamReader) -> str:
    first, second = await reader.readexactly(2)
    assert first == 0x81, f"expected an unfragmented text frame, got opcode byte {first:#x}"
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    return (await reader.readexactly(length)).decode()


async def test_a_message_in_the_same_write_as_the_upgrade_is_answered(server: RunningMockd) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.mock_port)
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (f"GET /chat HTTP/1.1\r\nHost: 127.0.0.1:{server.mock_port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        writer.write(upgrade.encode() + masked_text_frame(json.dumps({"type": "join", "room": "tcp"}))
                     + masked_text_frame("second"))
        await writer.drain()
        async with asyncio.timeout(DEADLINE):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            assert b"Sec-WebSocket-Accept: " + accept in head
            assert [await read_text_frame(reader) for _ in range(3)] == ["welcome", "joined tcp", "got the second"]
    finally:
        writer.close()
