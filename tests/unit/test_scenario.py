"""WebSocket scenarios keep what a client sends early (the inbox) and run on deadlines (docs/config.md,
"WebSocket mocks").

The pure parts — :class:`Inbox`, :func:`step_delay` and the runner's schedule, driven through a fake
connection object (no network is faked: the runner only calls three methods) — are tested without
sockets; ``tests/e2e/test_scenario_clients.py`` serves hand-written scenarios by a real ``mockd serve`` to
clients that talk first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockd.config.model import ExpectStep, MessageMatch, Scenario, ScenarioStep, SendStep, WaitStep, WsMessage
from mockd.serving.mocks.scenario import Inbox, ScenarioRunner, step_delay
from mockd.serving.mocks.websocket import message_matches
from mockd.stream.clock import now
from upstreams import DEADLINE

EXACT_A = MessageMatch(type="exact", value="a")


# --- the inbox (pure) -------------------------------------------------------------------------------


def test_take_removes_the_oldest_matching_message_and_keeps_the_others_in_order() -> None:
    inbox = Inbox()
    for at, message in enumerate(["b1", "a", "b2", "a"]):
        inbox.keep(float(at), message)
    assert inbox.take(EXACT_A, message_matches) == (1.0, "a")
    assert inbox.take(None, message_matches) == (0.0, "b1")  # an expect without a match takes any
    assert inbox.take(EXACT_A, message_matches) == (3.0, "a")
    assert inbox.take(EXACT_A, message_matches) is None
    assert inbox.take(None, message_matches) == (2.0, "b2")
    assert len(inbox) == 0


@given(st.lists(st.text(max_size=5), max_size=30), st.integers(min_value=1, max_value=10))
def test_a_full_inbox_drops_the_oldest_and_counts_them(messages: list[str], limit: int) -> None:
    inbox = Inbox(limit)
    kept = [inbox.keep(float(at), message) for at, message in enumerate(messages)]
    assert kept.count(False) == inbox.dropped == max(0, len(messages) - limit)
    assert [inbox.take(None, message_matches) for _ in range(len(inbox))] == \
        [(float(at), message) for at, message in enumerate(messages)][-limit:]


def test_step_delay_is_the_wait_before_a_step_acts() -> None:
    assert step_delay(SendStep(message=WsMessage(value="x", delay="250ms"))) == pytest.approx(0.25)
    assert step_delay(WaitStep(duration="2s")) == 2.0
    assert step_delay(ExpectStep(timeout="1s")) == 0.0  # an expect waits for a message, not for time


# --- the runner's schedule, through a fake connection ------------------------------------------------


@dataclass
class SlowConnection:
    """Records when each message went out; each send takes ``send_cost`` seconds, as a slow socket would."""

    send_cost: float = 0.0
    sent: list[tuple[float, str]] = field(default_factory=list)
    closed: list[tuple[int, str]] = field(default_factory=list)

    async def send_message_now(self, message: WsMessage, received: str | bytes | None = None) -> None:
        self.sent.append((now(), str(message.value)))
        await asyncio.sleep(self.send_cost)

    async def ping(self, payload: bytes) -> None:
        self.sent.append((now(), f"ping {payload!r}"))

    def request_close(self, code: int, reason: str = "") -> None:
        self.closed.append((code, reason))


def runner(steps: list[ScenarioStep], connection: SlowConnection) -> ScenarioRunner:
    return ScenarioRunner(Scenario(steps=steps), connection, message_matches, (1008, "expected message not received"))


def sending(value: str, delay_ms: int) -> SendStep:
    return SendStep(message=WsMessage(value=value, delay=f"{delay_ms}ms"))


async def test_a_slow_send_does_not_push_back_the_next_deadline() -> None:
    """Delays count from the anchor, not from the end of the previous step: a send that takes 150 ms
    leaves the next one (due 200 ms after the first) on time. Sleeping relative to the previous step
    would send it at 50 + 150 + 200 = 400 ms."""
    connection = SlowConnection(send_cost=0.150)
    started = now()
    await runner([sending("first", 50), sending("second", 200)], connection).run()
    (first_at, _), (second_at, _) = connection.sent
    assert 0.050 <= first_at - started < 0.200
    assert 0.250 <= second_at - started < 0.390


async def test_after_an_expect_the_anchor_is_the_arrival_of_the_message_it_took() -> None:
    """A message that waited in the inbox anchors the next steps at its own arrival: the answer due
    100 ms after it goes out 100 ms after the message came, not 100 ms after the scenario got there."""
    connection = SlowConnection()
    scenario = runner([sending("welcome", 300), ExpectStep(), sending("answer", 100)], connection)
    started = now()
    task = asyncio.create_task(scenario.run())
    await asyncio.sleep(0)
    arrived = now()
    assert not scenario.offer(arrived, "early")  # no expect is waiting yet ...
    scenario.keep(arrived, "early", "test")  # ... so nothing answered it and it is kept
    await asyncio.wait_for(task, DEADLINE)
    (welcome_at, _), (answer_at, answer) = connection.sent
    assert answer == "answer"
    assert welcome_at - started >= 0.300
    assert answer_at - welcome_at < 0.050, "the answer's deadline (arrival + 100 ms) had long passed"


async def test_a_required_expect_that_times_out_closes_with_1008() -> None:
    connection = SlowConnection()
    await runner([ExpectStep(timeout="50ms"), sending("never", 0)], connection).run()
    assert connection.sent == []
    assert connection.closed == [(1008, "expected message not received")]


async def test_messages_are_not_kept_once_the_scenario_is_over() -> None:
    connection = SlowConnection()
    scenario = runner([ExpectStep(timeout="1s")], connection)
    task = asyncio.create_task(scenario.run())
    await asyncio.sleep(0)
    assert scenario.offer(now(), "taken")
    await asyncio.wait_for(task, DEADLINE)
    scenario.keep(now(), "after the end", "test")
    assert len(scenario.inbox) == 0
