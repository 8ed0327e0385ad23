"""The ordered set of mocks, and the mock listener's one request handler: the first mock that matches wins."""

from __future__ import annotations

import asyncio
from typing import Protocol

import msgspec
from aiohttp import web
from ulid import ULID

from mockd.config import HttpMock, Mock, ProxyMock, WebSocketMock
from mockd.events import StreamEvents
from mockd.jsonhttp import json_error
from mockd.mocks.http import request_matches, serve_response
from mockd.mocks.sse import serve_sse
from mockd.mocks.websocket import negotiate, serve_websocket
from mockd.proxy import Upstream, path_matches_prefix
from mockd.replay import Replays
from mockd.wsclose import CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART


class LiveConnection(Protocol):
    """An open stream the registry may have to close: a WebSocket mock session or a proxy relay."""

    def request_close(self, code: int, reason: str = "") -> None: ...


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


class MockRegistry:
    """Mocks in match order, their live connections, and request dispatch."""

    def __init__(self, events: StreamEvents) -> None:
        self.events = events
        self.upstream = Upstream(events)
        self.replays = Replays(events)
        self.stopping = asyncio.Event()
        self._mocks: list[Mock] = []
        self._live: dict[str, set[LiveConnection]] = {}

    # --- contents -------------------------------------------------------------------------------

    @property
    def mocks(self) -> list[Mock]:
        return list(self._mocks)

    def get(self, mock_id: str) -> Mock | None:
        return next((mock for mock in self._mocks if mock.id == mock_id), None)

    def load(self, mocks: list[Mock]) -> None:
        for mock in mocks:
            self.put(mock)

    def put(self, mock: Mock) -> tuple[Mock, bool]:
        """Add a mock (an id is generated when absent) or replace the one with its id, in place.

        Returns the stored mock and whether it replaced another. Replacing a WebSocket mock closes its
        connections with 1012.
        """
        if mock.id is None:
            mock = msgspec.structs.replace(mock, id=str(ULID()))
        assert mock.id is not None
        for index, existing in enumerate(self._mocks):
            if existing.id == mock.id:
                self._mocks[index] = mock
                self._close_sessions(mock.id, CLOSE_SERVICE_RESTART, "mock replaced")
                return mock, True
        self._mocks.append(mock)
        return mock, False

    def remove(self, mock_id: str) -> bool:
        before = len(self._mocks)
        self._mocks = [mock for mock in self._mocks if mock.id != mock_id]
        self._close_sessions(mock_id, CLOSE_SERVICE_RESTART, "mock removed")
        return len(self._mocks) != before

    def _close_sessions(self, mock_id: str, code: int, reason: str) -> None:
        for connection in list(self._live.get(mock_id, ())):
            connection.request_close(code, reason)

    def _live_set(self, mock_id: str | None) -> set[LiveConnection]:
        assert mock_id is not None
        return self._live.setdefault(mock_id, set())

    async def shut_down(self, timeout: float) -> None:
        """Close every open WebSocket with 1001, end every SSE stream, and give their closing
        handshakes up to ``timeout`` seconds before the listeners go."""
        self.stopping.set()
        self.replays.shut_down()
        for mock_id in list(self._live):
            self._close_sessions(mock_id, CLOSE_GOING_AWAY, "server shutting down")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(self._live.values()) and loop.time() < deadline:
            await asyncio.sleep(0.01)

    # --- dispatch -------------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        upgrade = is_websocket_upgrade(request)
        if self.replays.sessions:  # a replay waiting for its client goes ahead of every mock
            replay = self.replays.claim("websocket" if upgrade else "sse", request.path, request.method)
            if replay is not None:
                if upgrade:
                    return await self.replays.serve_websocket(replay, request)
                return await self.replays.serve_sse(replay, request)
        for mock in self._mocks:
            if not mock.enabled:
                continue
            if isinstance(mock, WebSocketMock):
                assert mock.websocket is not None
                if upgrade and mock.websocket.path == request.path:
                    return await self._serve_websocket(mock, request)
            elif isinstance(mock, HttpMock):
                assert mock.http is not None
                if request_matches(mock.http.matcher, request):
                    if mock.http.sse is not None:
                        return await serve_sse(request, mock.http.sse, self.events, self.stopping)
                    assert mock.http.response is not None
                    return await serve_response(mock.http.response)
            elif isinstance(mock, ProxyMock):
                assert mock.proxy is not None
                if path_matches_prefix(mock.proxy.path_prefix, request.path):
                    return await self.upstream.serve(request, mock.proxy, self._live_set(mock.id))
        return json_error(404, "no_mock", f"No mock matches {request.method} {request.path}")

    async def _serve_websocket(self, mock: WebSocketMock, request: web.BaseRequest) -> web.StreamResponse:
        spec = mock.websocket
        assert spec is not None and mock.id is not None
        sessions = self._live_set(mock.id)
        if spec.max_connections is not None and len(sessions) >= spec.max_connections:
            return json_error(503, "too_many_connections",
                              f"WebSocket mock {mock.id!r} already has {spec.max_connections} connection(s)")
        ws, protocol = negotiate(spec, request)
        if protocol is None and spec.require_subprotocol:
            return json_error(400, "subprotocol_required",
                              f"WebSocket mock {mock.id!r} requires one of the subprotocols: "
                              f"{', '.join(spec.subprotocols)}")
        return await serve_websocket(request, ws, spec, self.events, sessions)

