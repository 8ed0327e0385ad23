"""WebSocket scenarios: the per-connection script of ``send``/``expect``/``wait``/``ping``/``close`` steps.

Two rules make a scenario faithful to a recording, whatever the client does:

- **The inbox.** A client message that the current ``expect`` step does not take, and that no matcher,
  ``defaultResponse`` or echo answers, is kept in arrival order for the next ``expect`` step. A browser
  that sends in ``onopen``, or data in the same write as the upgrade, is never lost because it came
  before the scenario was ready for it.
- **Deadlines, not sleeps.** Each step's delay is added to an offset counted from the step's *anchor*:
  the connection's start, then the arrival of the message the last ``expect`` took. A step waits until
  anchor + offset on the replay drivers' clock (:mod:`mockd.stream.clock`), so a long scenario does not drift.

:class:`Inbox` and :func:`step_delay` are plain; :class:`ScenarioRunner` carries the steps out through
the connection it is given.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from mockd.config.durations import seconds
from mockd.config.model import (CloseStep, ExpectStep, MessageMatch, PingStep, Scenario, ScenarioStep, SendStep,
                                WaitStep, WsMessage)
from mockd.stream.clock import now, sleep_until

log = logging.getLogger("mockd.mocks")

MAX_INBOX = 1000  # client messages kept for later expect steps, per connection
Message = str | bytes
Matches = Callable[[MessageMatch | None, Message], bool]


class Inbox:
    """Client messages kept for a later ``expect`` step, oldest first, with their arrival times."""

    def __init__(self, limit: int = MAX_INBOX) -> None:
        self._kept: deque[tuple[float, Message]] = deque()
        self.limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, arrived: float, message: Message) -> bool:
        """Keep a message; False when the inbox was full and its oldest message had to go."""
        self._kept.append((arrived, message))
        if len(self._kept) <= self.limit:
            return True
        self._kept.popleft()
        self.dropped += 1
        return False

    def take(self, match: MessageMatch | None, matches: Matches) -> tuple[float, Message] | None:
        """The oldest kept message ``match`` accepts, removed from the inbox; the others stay in order."""
        for index, (arrived, message) in enumerate(self._kept):
            if matches(match, message):
                del self._kept[index]
                return arrived, message
        return None

    def clear(self) -> None:
        self._kept.clear()


def step_delay(step: ScenarioStep) -> float:
    """Seconds a step waits (from the previous step's deadline) before it acts."""
    if isinstance(step, SendStep):
        return seconds(step.message.delay)
    if isinstance(step, WaitStep):
        return seconds(step.duration)
    if isinstance(step, CloseStep):
        return seconds(step.delay)
    return 0.0


class ScenarioConnection(Protocol):
    """What a scenario needs of the connection it runs on."""

    async def send_message_now(self, message: WsMessage, received: Message | None = None) -> None: ...
    async def ping(self, payload: bytes) -> None: ...
    def request_close(self, code: int, reason: str = "") -> None: ...


class ScenarioRunner:
    """Runs one scenario on one connection; the connection offers it every unanswered client message."""

    def __init__(self, scenario: Scenario, connection: ScenarioConnection, matches: Matches,
                 expect_timeout_close: tuple[int, str]) -> None:
        self.scenario = scenario
        self.connection = connection
        self.matches = matches
        self.inbox = Inbox()
        self._timeout_close = expect_timeout_close
        self._waiting: tuple[MessageMatch | None, asyncio.Future[tuple[float, Message]]] | None = None
        self._expects = any(isinstance(step, ExpectStep) for step in scenario.steps)
        self._taken: Message | None = None  # the message the last expect took: what templates answer
        self.finished = False

    # --- client messages ------------------------------------------------------------------------

    def offer(self, arrived: float, message: Message) -> bool:
        """The waiting ``expect`` step takes the message if it matches; True when it did."""
        waiting = self._waiting
        if waiting is None or waiting[1].done() or not self.matches(waiting[0], message):
            return False
        self._waiting = None
        waiting[1].set_result((arrived, message))
        return True

    def keep(self, arrived: float, message: Message, label: str) -> None:
        """A message nothing answered: kept for a later ``expect`` step while one may still come."""
        if self.finished or not self._expects:
            return
        if not self.inbox.keep(arrived, message) and self.inbox.dropped == 1:
            log.warning("%s: more than %d client messages are waiting for an expect step; the oldest "
                        "are dropped from now on", label, self.inbox.limit)

    # --- the steps ------------------------------------------------------------------------------

    async def run(self, started: float | None = None) -> None:
        """Carry out the steps; ``started`` (:func:`now`) is when the connection opened, the first anchor."""
        anchor, offset = started if started is not None else now(), 0.0
        try:
            while True:
                for step in self.scenario.steps:
                    if isinstance(step, ExpectStep):
                        arrived = await self._expect(step)
                        if arrived is None:
                            return
                        anchor, offset = arrived, 0.0
                        continue
                    offset += step_delay(step)
                    await sleep_until(anchor + offset)
                    if not await self._act(step):
                        return
                if not self.scenario.loop:
                    return
                await asyncio.sleep(0)  # a loop of instant steps must not starve the event loop
        finally:
            self.finished = True
            self.inbox.clear()

    async def _act(self, step: ScenarioStep) -> bool:
        """Carry out a step that is due; False ends the scenario."""
        if isinstance(step, SendStep):
            await self.connection.send_message_now(step.message, self._taken)
        elif isinstance(step, PingStep):
            await self.connection.ping(base64.b64decode(step.data))
        elif isinstance(step, CloseStep):
            self.connection.request_close(step.code, step.reason)
            return False
        return True

    async def _expect(self, step: ExpectStep) -> float | None:
        """When the awaited message arrived (the next anchor); None ends the scenario."""
        kept = self.inbox.take(step.match, self.matches)
        if kept is None:
            waiter: asyncio.Future[tuple[float, Message]] = asyncio.get_running_loop().create_future()
            self._waiting = (step.match, waiter)
            try:
                kept = await asyncio.wait_for(waiter, seconds(step.timeout))
            except TimeoutError:
                self._waiting = None
                if step.optional:
                    return now()
                self.connection.request_close(*self._timeout_close)
                return None
        arrived, self._taken = kept
        return arrived
