"""The ordered set of mocks, and the mock listener's one request handler: the first mock that matches wins.

Match order: the mocks of the config files (in order), then those added at run time, then the
``--upstream`` proxies (longest prefix first), which stay behind every other mock however it was added.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from ssl import SSLContext
from typing import Protocol

import msgspec
from aiohttp import web
from ulid import ULID

from mockd.config.model import HttpMock, Mock, ProxyMock, WebSocketMock, WebSocketSpec
from mockd.serving.accesslog import ANSWERED_BY
from mockd.serving.jsonhttp import json_error
from mockd.serving.mocks.http import FIELD_ORDER, mismatch, needs_body, path_matches, serve_response
from mockd.serving.mocks.sse import serve_sse
from mockd.serving.mocks.websocket import negotiate, serve_websocket
from mockd.serving.proxy import Upstream, path_matches_prefix
from mockd.stream.events import LiveConnection, StreamEvents
from mockd.stream.wsclose import CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART

MISSES_KEPT = 100


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


class ReplayDesk(Protocol):
    """The replays waiting for their client, asked before any mock (:class:`mockd.playback.replays.Replays`)."""

    def take(self, request: web.BaseRequest, upgrade: bool) -> Awaitable[web.StreamResponse] | None:
        """The answer of the replay that claims this request (None: none does)."""

    def shut_down(self) -> None: ...


class MockRegistry:
    """Mocks in match order, their live connections, and request dispatch.

    :meth:`handle` marks each request it answers with ``request[ANSWERED_BY]`` (the access log's key):
    the answering mock's id, ``"replay <id>"`` for a replay; nothing for a 404.
    """

    def __init__(self, events: StreamEvents, upstream_ssl: SSLContext | None = None,
                 replays: ReplayDesk | None = None) -> None:
        self.events = events
        self.upstream = Upstream(events, upstream_ssl)
        self.replays = replays
        self.stopping = asyncio.Event()
        self._mocks: list[Mock] = []  # config-file mocks, then those added at run time
        self._upstreams: list[Mock] = []  # the --upstream catch-alls: after every other mock
        self._order: tuple[Mock, ...] = ()  # both, in match order (what dispatch walks)
        self._startup: tuple[tuple[Mock, ...], tuple[Mock, ...]] = ((), ())  # what reset() restores
        self._live: dict[str, set[LiveConnection]] = {}
        self._served: dict[str, int] = {}  # requests or connections each mock has served
        self.misses: deque[str] = deque(maxlen=MISSES_KEPT)  # the 404s' messages, newest last

    # --- contents -------------------------------------------------------------------------------

    @property
    def mocks(self) -> list[Mock]:
        """Every mock in match order: the upstream proxies last."""
        return list(self._order)

    def get(self, mock_id: str) -> Mock | None:
        return next((mock for mock in self._order if mock.id == mock_id), None)

    def load(self, mocks: Sequence[Mock], upstreams: Sequence[ProxyMock] = ()) -> None:
        """The start-up mocks: ``mocks`` in order, and the ``upstreams`` kept behind every mock, even those
        added later. This is also what :meth:`reset` restores."""
        for mock in mocks:
            self.put(mock)
        for upstream in upstreams:
            self.put(upstream, upstream=True)
        self._startup = (tuple(self._mocks), tuple(self._upstreams))

    def put(self, mock: Mock, upstream: bool = False) -> tuple[Mock, bool]:
        """Add a mock (an id is generated when absent) or replace the one with its id, in place.

        New mocks go after every other mock but the upstream proxies (``upstream=True``: after those).
        Returns the stored mock and whether it replaced another. Replacing a WebSocket or proxy mock
        closes its connections with 1012.
        """
        if mock.id is None:
            mock = msgspec.structs.replace(mock, id=str(ULID()))
        assert mock.id is not None
        for mocks in (self._mocks, self._upstreams):
            for index, existing in enumerate(mocks):
                if existing.id == mock.id:
                    mocks[index] = mock
                    self._reorder()
                    self._served.pop(mock.id, None)
                    self._close_sessions(mock.id, CLOSE_SERVICE_RESTART, "mock replaced")
                    return mock, True
        (self._upstreams if upstream else self._mocks).append(mock)
        self._reorder()
        return mock, False

    def put_all(self, mocks: Sequence[Mock]) -> tuple[list[Mock], int]:
        """:meth:`put` each mock, in order (the caller has checked that their ids differ); returns the stored
        mocks and how many replaced one. Nothing is awaited, so no request sees half of them."""
        stored: list[Mock] = []
        replaced = 0
        for mock in mocks:
            kept, was_replaced = self.put(mock)
            stored.append(kept)
            replaced += was_replaced
        return stored, replaced

    def remove(self, mock_id: str) -> bool:
        """Remove a mock (an upstream proxy too); its connections are closed with 1012."""
        before = len(self._order)
        self._mocks = [mock for mock in self._mocks if mock.id != mock_id]
        self._upstreams = [mock for mock in self._upstreams if mock.id != mock_id]
        self._reorder()
        self._served.pop(mock_id, None)
        self._close_sessions(mock_id, CLOSE_SERVICE_RESTART, "mock removed")
        return len(self._order) != before

    def reset(self) -> list[Mock]:
        """Back to the start-up mocks and upstreams, in their order, every ``times`` count at zero. The
        connections of mocks added or replaced since are closed with 1012; the start-up mocks' stay open."""
        mocks, upstreams = self._startup
        startup = {id(mock) for mock in (*mocks, *upstreams)}
        startup_ids = {mock.id for mock in (*mocks, *upstreams)}
        gone = [mock.id for mock in self._order if id(mock) not in startup and mock.id is not None]
        self._mocks, self._upstreams = list(mocks), list(upstreams)
        self._reorder()
        self._served.clear()
        for mock_id in gone:
            self._close_sessions(mock_id, CLOSE_SERVICE_RESTART,
                                 "mock replaced" if mock_id in startup_ids else "mock removed")
        return self.mocks

    def _reorder(self) -> None:
        self._order = (*self._mocks, *self._upstreams)

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
        if self.replays is not None:
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
        if self.replays is not None and (replayed := self.replays.take(request, upgrade)) is not None:
            return await replayed  # a replay waiting for its client goes ahead of every mock
        body = None if upgrade else await self._body_if_matched_on(request)
        if isinstance(body, web.Response):
            return body
        refused: WebSocketMock | None = None  # a WebSocket mock on the path that wants a subprotocol
        for mock in self._order:
            if not mock.enabled or self._used_up(mock):
                continue
            if isinstance(mock, WebSocketMock):
                assert mock.websocket is not None
                if upgrade and ws_upgrade_matches(mock.websocket, request):
                    answer = await self._serve_websocket(mock, request)
                    if answer is not None:
                        return answer
                    refused = refused or mock
            elif isinstance(mock, HttpMock):
                assert mock.http is not None
                if mismatch(mock.http.matcher, request, body) is None:
                    self._count(mock, request)
                    if mock.http.sse is not None:
                        return await serve_sse(request, mock.http.sse, self.events, self.stopping, body)
                    assert mock.http.response is not None
                    return await serve_response(mock.http.response, request, self.events, body)
            elif isinstance(mock, ProxyMock):
                assert mock.proxy is not None
                if path_matches_prefix(mock.proxy.path_prefix, request.path):
                    self._count(mock, request)
                    return await self.upstream.serve(request, mock.proxy, self._live_set(mock.id), body)
        if refused is not None:
            request[ANSWERED_BY] = refused.id
            return _subprotocol_refusal(refused)
        return self._no_mock(request, body, upgrade)

    def _used_up(self, mock: Mock) -> bool:
        return mock.times is not None and self._served.get(mock.id or "", 0) >= mock.times

    def _count(self, mock: Mock, request: web.BaseRequest) -> None:
        """The mock answers this request: count it (for ``times``) and mark the request with it."""
        request[ANSWERED_BY] = mock.id
        if mock.id is not None:
            self._served[mock.id] = self._served.get(mock.id, 0) + 1

    def unused(self) -> list[str]:
        """Ids of the enabled mocks that have served nothing yet (proxies aside)."""
        return [mock.id for mock in self._order if mock.enabled and mock.id is not None
                and not isinstance(mock, ProxyMock) and not self._served.get(mock.id)]

    async def _body_if_matched_on(self, request: web.BaseRequest) -> bytes | web.Response | None:
        """The request body when an HTTP mock that compares bodies matches everything else (read once,
        then shared with whatever serves the request); None otherwise, so proxied bodies keep streaming."""
        if not request.body_exists or not any(
                isinstance(mock, HttpMock) and mock.http is not None and needs_body(mock.http.matcher)
                and mismatch(mock.http.matcher, request, None, skip_body=True) is None for mock in self._order):
            return None
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, "payload_too_large", f"A request body compared by a mock may be at most "
                              f"{request.client_max_size} bytes; this one is larger")

    def _no_mock(self, request: web.BaseRequest, body: bytes | None, upgrade: bool) -> web.Response:
        """404 naming the method and path and, when a mock on this path came close, that mock and the
        first field that differed."""
        message = f"No mock matches {request.method} {request.path}"
        closest = None if upgrade else self._closest(request, body)
        if closest is None:
            self.misses.append(message)
            return json_error(404, "no_mock", message)
        mock, field, why = closest
        assert isinstance(mock, HttpMock) and mock.http is not None
        matcher = mock.http.matcher
        recorded = f"{matcher.method or 'any method'} {matcher.path or matcher.path_pattern}"
        subject = "it" if field == "times" else f"the request's {field}"
        message = f"{message}; the closest is mock {mock.id!r} ({recorded}): {subject} {why}"
        self.misses.append(message)
        return json_error(404, "no_mock", message,
                          closest={"mock": mock.id, "method": matcher.method, "path": matcher.path,
                                   "field": field, "reason": why})

    def _closest(self, request: web.BaseRequest, body: bytes | None) -> tuple[Mock, str, str] | None:
        """The enabled HTTP mock on this path whose first differing field comes latest."""
        best: tuple[int, Mock, str, str] | None = None
        for mock in self._order:
            if not isinstance(mock, HttpMock) or mock.http is None or not mock.enabled \
                    or not path_matches(mock.http.matcher, request.path):
                continue
            missed = mismatch(mock.http.matcher, request, body)
            field, why = missed if missed is not None else (  # it matched, but has served all it may
                "times", f"has already served the {mock.times} request(s) it may")
            rank = FIELD_ORDER.index(field) if field in FIELD_ORDER else len(FIELD_ORDER)
            if best is None or rank > best[0]:
                best = (rank, mock, field, why)
        return None if best is None else best[1:]

    async def _serve_websocket(self, mock: WebSocketMock, request: web.BaseRequest) -> web.StreamResponse | None:
        """Serve the upgrade; None when the mock requires a subprotocol the client did not offer (a later
        mock on the path may take it)."""
        spec = mock.websocket
        assert spec is not None and mock.id is not None
        sessions = self._live_set(mock.id)
        if spec.max_connections is not None and len(sessions) >= spec.max_connections:
            request[ANSWERED_BY] = mock.id
            return json_error(503, "too_many_connections",
                              f"WebSocket mock {mock.id!r} already has {spec.max_connections} connection(s)")
        ws, protocol = negotiate(spec, request)
        if protocol is None and spec.require_subprotocol:
            return None
        self._count(mock, request)
        return await serve_websocket(request, ws, spec, self.events, sessions)


def ws_upgrade_matches(spec: WebSocketSpec, request: web.BaseRequest) -> bool:
    """An upgrade matches on its path and the mock's ``query`` (only the parameters it lists)."""
    if spec.path != request.path:
        return False
    query = request.query
    return all(query.get(name) == value for name, value in spec.query.items())


def _subprotocol_refusal(mock: WebSocketMock) -> web.Response:
    assert mock.websocket is not None
    return json_error(400, "subprotocol_required", f"WebSocket mock {mock.id!r} requires one of the subprotocols: "
                      f"{', '.join(mock.websocket.subprotocols)}")
