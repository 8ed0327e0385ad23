"""The replays of one mockd: pending ones wait for their client, running ones are driven from the API,
finished ones stay readable; and the plans replays of one stored recording share."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from mockd.playback import drivers
from mockd.playback.plan import FINISHED, ReplayOptions
from mockd.playback.replay import ReplaySession
from mockd.playback.window import PreparedPlan, ReplaySource, StepWindow, prepare
from mockd.serving.accesslog import ANSWERED_BY
from mockd.stream.events import StreamEvents

KEEP_FINISHED = 1000
SHARED_PLANS = 8  # plans kept for later replays of the same recording (each at most WINDOW steps)


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > SHARED_PLANS:
        cache.popitem(last=False)


class Replays:
    """Pending replays wait here for their client; finished ones stay readable (the newest 1000)."""

    def __init__(self, events: StreamEvents) -> None:
        self.events = events
        self.sessions: OrderedDict[str, ReplaySession] = OrderedDict()
        # what replays of one stored recording share: plans that fit in a window, whole (by recording,
        # connection, mode and timing scale), and the frame counts of longer ones (scale aside)
        self._plans: OrderedDict[tuple[str, int, str, float], PreparedPlan] = OrderedDict()
        self._counts: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    async def prepare(self, source: ReplaySource, options: ReplayOptions, shared: bool) -> PreparedPlan:
        """The plan's first window (read in a worker thread); ``shared``: a stored recording's, which
        other replays of it reuse (the file does not change once finished)."""
        plan_key = (source.head.id, source.connection, options.mode, options.timing_scale)
        count_key = plan_key[:3]
        if shared and plan_key in self._plans:
            self._plans.move_to_end(plan_key)
            return self._plans[plan_key]
        prepared = await asyncio.to_thread(prepare, source, options, self._counts.get(count_key) if shared else None)
        if shared and prepared.rest is None:
            _remember(self._plans, plan_key, prepared)
        elif shared:
            _remember(self._counts, count_key, prepared.total_sends)
        return prepared

    def create(self, source: ReplaySource, options: ReplayOptions, prepared: PreparedPlan) -> ReplaySession:
        """A pending replay of ``source``'s connection (its first window read by :func:`prepare`)."""
        path = options.path or source.head.request_path(source.connection)
        session = ReplaySession(source.head, options, StepWindow(prepared), prepared.total_sends, source.connection,
                                path)
        self.sessions[session.id] = session
        session.arm_expiry()
        self._forget_old()
        return session

    def _forget_old(self) -> None:
        finished = [key for key, session in self.sessions.items() if session.status in FINISHED]
        for key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self.sessions[key]

    def claim(self, protocol: str, path: str, method: str) -> ReplaySession | None:
        """The oldest pending replay for this kind of request, now bound to it."""
        for session in self.sessions.values():
            if (session.status == "pending" and session.client is None
                    and session.path == path and session.protocol == protocol
                    and (protocol == "websocket" or session.recording.request_method(session.connection) == method)):
                session.bind()
                return session
        return None

    def take(self, request: web.BaseRequest, upgrade: bool) -> Awaitable[web.StreamResponse] | None:
        """The mock listener asks first: the oldest pending replay this request is for, served (None:
        there is none, and the request goes on to the mocks)."""
        if not self.sessions:
            return None
        replay = self.claim("websocket" if upgrade else "sse", request.path, request.method)
        if replay is None:
            return None
        request[ANSWERED_BY] = f"replay {replay.id}"
        serve = drivers.serve_websocket if upgrade else drivers.serve_sse
        return serve(replay, request, self.events)

    def shut_down(self) -> None:
        for session in self.sessions.values():
            session.abort()
