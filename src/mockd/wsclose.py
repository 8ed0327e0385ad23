"""WebSocket close codes and the closing handshake, shared by mocks, the proxy and replays."""

from __future__ import annotations

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

AnyWebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def close_payload(code: int, reason: str) -> bytes:
    """The payload of a close frame as it goes on the wire: nothing for 1005, else code and reason."""
    return b"" if code == NO_STATUS else code.to_bytes(2, "big") + reason.encode()


async def close_websocket(ws: AnyWebSocket, code: int, reason: str = "") -> None:
    """Close with ``code`` and ``reason``; 1005 sends a close frame with no code at all, and the other
    codes that only describe a close (1006, 1015) are sent as 1000."""
    if code != NO_STATUS:
        await ws.close(code=CLOSE_NORMAL if code in _DESCRIPTIVE_ONLY else code, message=reason.encode())
        return
    # aiohttp always writes a code, so its writer is asked for an empty close frame just this once;
    # everything else about the handshake (state, waiting for the answer) stays aiohttp's.
    writer = ws._writer  # noqa: SLF001
    if writer is None:
        return
    original = writer.close

    async def empty_close(code: int = CLOSE_NORMAL, message: bytes | str = b"") -> None:
        try:
            await writer.send_frame(b"", WSMsgType.CLOSE)
        finally:
            writer._closing = True  # noqa: SLF001

    writer.close = empty_close  # type: ignore[method-assign]
    try:
        await ws.close()
    finally:
        writer.close = original  # type: ignore[method-assign]
