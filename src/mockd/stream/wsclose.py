"""WebSocket close codes and closing handshakes, shared by mocks, the proxy and replays.

aiohttp's ``close()`` always writes a status code, and reads the peer's answer itself (keeping its
code, dropping its reason). That is not faithful enough for recording and relaying, so close frames
are written through the socket's writer (:func:`send_close_frame`: any code and reason, or none), the
answer is read by the caller's own ``receive()`` loop like any frame, and aiohttp's ``close()`` is then
only asked to settle its state without writing a second frame (:func:`release`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import WSMsgType, web

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
NO_STATUS = 1005  # a close frame without a status code, as recorded; never sent on the wire
CLOSE_ABNORMAL = 1006  # the connection ended without a close frame; never sent on the wire
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_BAD_GATEWAY = 1014
_DESCRIPTIVE_ONLY = frozenset({0, NO_STATUS, CLOSE_ABNORMAL, 1015})
RELEASE_TIMEOUT = 2.0
CLOSE_TIMEOUT = 10.0  # how long the answer to a close frame is awaited

AnyWebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def close_payload(code: int, reason: str) -> bytes:
    """The payload of a close frame as it goes on the wire: nothing for 1005, else code and reason.
    Codes that only describe a close (1006, 1015) go out as 1000."""
    if code == NO_STATUS:
        return b""
    return (CLOSE_NORMAL if code in _DESCRIPTIVE_ONLY else code).to_bytes(2, "big") + reason.encode()


@contextmanager
def _writer_close(ws: AnyWebSocket, replacement: Callable[..., Awaitable[None]]) -> Iterator[None]:
    writer = ws._writer  # noqa: SLF001 - see the module docstring
    assert writer is not None, "the WebSocket is prepared"
    original = writer.close
    writer.close = replacement  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        writer.close = original  # type: ignore[method-assign]


async def send_close_frame(ws: AnyWebSocket, code: int, reason: str = "") -> None:
    """Write a close frame and return at once; the peer's answer arrives through ``receive()``."""
    writer = ws._writer  # noqa: SLF001
    if writer is None:
        return
    with contextlib.suppress(ConnectionError):  # the peer is already gone
        await writer.send_frame(close_payload(code, reason), WSMsgType.CLOSE)


async def release(ws: AnyWebSocket) -> None:
    """Settle aiohttp's state and drop the connection after close frames were exchanged by hand,
    without writing another close frame."""
    if ws.closed:
        return

    async def nothing(code: int = CLOSE_NORMAL, message: bytes | str = b"") -> None:
        return None

    with _writer_close(ws, nothing), contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(ws.close(), RELEASE_TIMEOUT)
