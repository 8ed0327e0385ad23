"""WebSocket mocks (docs/config.md, "WebSocket mocks"), exercised over real sockets with the ``websockets``
client.

Most tests share one module-scoped server whose mocks each live on their own path; tests that change
the server (admin API, shutdown) start their own. Timing assertions check lower bounds tightly (a
response may never come early) and upper bounds generously (the machine is noisy).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from httpclient import acall
from polling import eventually
from upstreams import DEADLINE, Data, exchange, open_ws, recv, server_close

SLACK = 0.03  # tolerance below a configured delay (timer granularity only; a response may not come early)
LATE = 1.5  # tolerance above a configured delay on a noisy machine

SHORT = 0.3  # the short duration used by timing mocks, in seconds ("300ms")
HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT = 0.2, 0.3
MAX_MESSAGE_SIZE = 64


# --- config builders ------------------------------------------------------------------------------


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "value": value, **extra}


def match(kind: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"type": kind, **({} if value is None else {"value": value}), **extra}


def replies(when: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return {"match": when, "response": response}


def scenario(*steps: dict[str, Any], loop: bool = False) -> dict[str, Any]:
    return {"name": "test", "loop": loop, "steps": list(steps)}


def send(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "send", "message": message}


def expect(when: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "expect", **({} if when is None else {"match": when}), **extra}


BINARY_PAYLOAD = b"\x00\x01\xfe\xffbinary\x80"
MATCH_EVERYTHING = [replies(match("any"), text("matcher:{{message}}"))]

# A scenario using every step type of docs/config.md ("Scenario steps"): send, expect, wait, ping, close.
SPEC_EXAMPLE_SCENARIO: dict[str, Any] = json.loads("""
{ "name": "welcome-flow", "loop": false, "steps": [
  { "type": "send",   "message": {"type": "json", "value": {"type": "welcome"}, "delay": "100ms"} },
  { "type": "expect", "match": {"type": "json", "path": "$.type", "value": "join"}, "timeout": "10s" },
  { "type": "send",   "message": {"type": "text", "value": "{\\"type\\":\\"joined\\"}", "template": false} },
  { "type": "wait",   "duration": "2s" },
  { "type": "ping",   "data": "aGk=" },
  { "type": "close",  "code": 4000, "reason": "done" } ] }
""")

MODULE_MOCKS: list[dict[str, Any]] = [
    {**ws_mock("disabled", "/disabled"), "enabled": False},
    ws_mock("echo", "/echo"),
    ws_mock("protocols", "/protocols", subprotocols=["chat.v1", "chat.v2"]),
    ws_mock("protocols-required", "/protocols-required", subprotocols=["chat.v1", "chat.v2"],
            requireSubprotocol=True),
    ws_mock("limited-size", "/limited-size", maxMessageSize=MAX_MESSAGE_SIZE),
    ws_mock("limited-conns", "/limited-conns", maxConnections=2),
    ws_mock("idle", "/idle", idleTimeout="300ms"),
    ws_mock("idle-activity", "/idle-activity", idleTimeout="800ms"),
    ws_mock("heartbeat", "/heartbeat",
            heartbeat={"enabled": True, "interval": "200ms", "timeout": "300ms"}),
    ws_mock("heartbeat-off", "/heartbeat-off",
            heartbeat={"enabled": False, "interval": "100ms", "timeout": "100ms"}),
    ws_mock("echo-off", "/echo-off", echoMode=False, matchers=[replies(match("exact", "sync"), text("synced"))]),
    ws_mock("echo-default-matchers", "/echo-default-matchers",
            matchers=[replies(match("exact", "sync"), text("synced"))]),
    ws_mock("echo-default-scenario", "/echo-default-scenario",
            scenario=scenario(expect(match("exact", "sync")), send(text("synced")))),
    ws_mock("echo-on-matchers", "/echo-on-matchers", echoMode=True,
            matchers=[replies(match("exact", "hello"), text("world"))]),
    ws_mock("echo-on-default", "/echo-on-default", echoMode=True, defaultResponse=text("default wins")),
    ws_mock("match", "/match", defaultResponse=text("default:{{message}}"), matchers=[
        replies(match("exact", "hello"), text("exact")),
        replies(match("prefix", "pre:"), text("prefix")),
        replies(match("suffix", ":suf"), text("suffix")),
        replies(match("regex", r"^num-\d+$"), text("regex")),
        replies(match("contains", "needle"), text("contains")),
        replies(match("json", "join", path="$.type"), text("json-join")),
        replies(match("json", 5, path="$.n"), text("json-number")),
        replies(match("json", "deep", path="$.data.kind"), text("json-nested")),
        replies(match("json", path="$.flag"), text("json-exists")),
        replies(match("contains", "typed", messageType="text"), text("typed-text")),
        replies(match("contains", "typed", messageType="binary"), text("typed-binary")),
        {"match": match("exact", "silent"), "noResponse": True},
        replies(match("exact", "first"), text("first-wins")),
        replies(match("contains", "first"), text("second-loses")),
        replies(match("any", messageType="binary"), text("any-binary")),
    ]),
    ws_mock("any", "/any", defaultResponse=text("default"), matchers=[replies(match("any"), text("any"))]),
    ws_mock("responses", "/responses", matchers=[
        replies(match("exact", "text"), text("plain")),
        replies(match("exact", "json"), {"type": "json", "value": {"a": [1, 2.5, "x"], "b": {"c": None}}}),
        replies(match("exact", "binary"), {"type": "binary", "value": base64.b64encode(BINARY_PAYLOAD).decode()}),
        replies(match("exact", "delayed"), text("late", delay="300ms")),
        replies(match("prefix", "tmpl-msg"), text("got {{message}}")),
        replies(match("json", "field", path="$.kind"), text("{{message.user.name}}|{{ message.user.role }}")),
        replies(match("json", "quote", path="$.kind"), {"type": "json", "value": {"got": "{{message}}"}}),
        replies(match("exact", "tmpl-now"), text("{{now}}")),
        replies(match("exact", "tmpl-timestamp"), text("{{timestamp}}")),
        replies(match("exact", "tmpl-uuid"), text("{{uuid}} {{uuid}}")),
        replies(match("exact", "tmpl-json"), {"type": "json", "value": {"echo": "{{message}}", "id": "{{uuid}}"}}),
        replies(match("exact", "tmpl-off"), text("{{message}} {{now}}", template=False)),
        replies(match("exact", "tmpl-json-off"), {"type": "json", "value": {"v": "{{message}}"}, "template": False}),
    ]),
    ws_mock("sc-expect-json", "/sc/expect-json", matchers=MATCH_EVERYTHING, scenario=scenario(
        expect(match("json", "join", path="$.type"), timeout="10s"), send(text("consumed")))),
    ws_mock("sc-expect-any", "/sc/expect-any", matchers=MATCH_EVERYTHING, scenario=scenario(
        expect(timeout="10s"), send(text("consumed")))),
    ws_mock("sc-expect-timeout", "/sc/expect-timeout", scenario=scenario(
        expect(match("exact", "never"), timeout="300ms"), send(text("must not be sent")))),
    ws_mock("sc-expect-optional", "/sc/expect-optional", echoMode=True, scenario=scenario(
        expect(match("exact", "never"), timeout="300ms", optional=True), send(text("skipped")))),
    ws_mock("sc-send-delay", "/sc/send-delay", scenario=scenario(
        send(text("first")), send(text("second", delay="300ms")))),
    ws_mock("sc-wait", "/sc/wait", scenario=scenario(
        send(text("first")), {"type": "wait", "duration": "300ms"}, send(text("second")))),
    ws_mock("sc-ping", "/sc/ping", scenario=scenario(
        {"type": "ping", "data": base64.b64encode(b"hi").decode()}, {"type": "ping"}, send(text("pinged")))),
    ws_mock("sc-close", "/sc/close", scenario=scenario(
        send(text("closing")), {"type": "close", "code": 4000, "reason": "done"}, send(text("after close")))),
    ws_mock("sc-close-delay", "/sc/close-delay", scenario=scenario(
        {"type": "close", "code": 4001, "reason": "later", "delay": "300ms"})),
    ws_mock("sc-loop", "/sc/loop", scenario=scenario(
        send(text("tick")), expect(match("exact", "tock"), timeout="10s"), loop=True)),
    ws_mock("spec-example", "/spec-example", scenario=SPEC_EXAMPLE_SCENARIO),
]


# --- client helpers -------------------------------------------------------------------------------


class PingRecorder(ClientConnection):
    """A websockets client connection that notes each ping it receives as (monotonic time, payload)."""

    answer_pings: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        if not self.answer_pings:
            send_frame = self.protocol.send_frame

            def send_all_but_pongs(frame: Frame) -> None:
                if frame.opcode is not Opcode.PONG:
                    send_frame(frame)

            self.protocol.send_frame = send_all_but_pongs  # type: ignore[method-assign]

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.put_nowait((time.monotonic(), bytes(event.data)))
        super().process_event(event)

    async def next_ping(self, timeout: float = DEADLINE) -> tuple[float, bytes]:
        return await asyncio.wait_for(self.pings.get(), timeout)


class PonglessPingRecorder(PingRecorder):
    """Like PingRecorder, but never answers a ping with a pong."""

    answer_pings = False


async def refused_upgrade(url: str, **kwargs: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        async with open_ws(url, **kwargs):
            pass
    return refused.value


def assert_json_error(refusal: InvalidStatus, status: int) -> dict[str, Any]:
    response = refusal.response
    assert response.status_code == status
    assert response.headers.get("Content-Type", "").startswith("application/json")
    body = json.loads(response.body or b"")
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("message"), str) and body["message"]
    return body


@pytest.fixture(scope="module")
def server(mockd_module: MockdFactory) -> RunningMockd:
    return mockd_module.start(mocks_config(*MODULE_MOCKS))


# --- routing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/echo/", "/ech", "/echo/more", "/disabled"])
async def test_upgrade_to_a_path_no_enabled_mock_has_exactly_gets_404(server: RunningMockd, path: str) -> None:
    assert_json_error(await refused_upgrade(server.ws_url(path)), 404)


async def test_path_match_ignores_the_query_string(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/echo?room=1")) as ws:
        assert await exchange(ws, "hi") == "hi"


# --- subprotocols -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "offered", "chosen"), [
    ("/protocols", ["unknown", "chat.v2"], "chat.v2"),
    ("/protocols", ["chat.v1"], "chat.v1"),
    ("/protocols", None, None),
    ("/protocols", ["unknown"], None),
    ("/protocols-required", ["unknown", "chat.v1"], "chat.v1"),
])
async def test_subprotocol_negotiation(server: RunningMockd, path: str, offered: list[str] | None,
                                       chosen: str | None) -> None:
    async with open_ws(server.ws_url(path), subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Protocol") == chosen


@pytest.mark.parametrize("offered", [None, ["unknown"], ["CHAT.V1", "chat"]])
async def test_required_subprotocol_missing_refuses_upgrade_with_400(server: RunningMockd,
                                                                     offered: list[str] | None) -> None:
    assert_json_error(await refused_upgrade(server.ws_url("/protocols-required"), subprotocols=offered), 400)


# --- limits -----------------------------------------------------------------------------------------


def sized_payload(kind: str, size: int) -> Data:
    return "x" * size if kind == "text" else b"x" * size


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_message_of_exactly_max_message_size_is_accepted(server: RunningMockd, kind: str,
                                                               compression: str | None) -> None:
    payload = sized_payload(kind, MAX_MESSAGE_SIZE)
    async with open_ws(server.ws_url("/limited-size"), compression=compression) as ws:
        assert await exchange(ws, payload) == payload


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_message_larger_than_max_message_size_closes_with_1009(server: RunningMockd, kind: str,
                                                                     compression: str | None) -> None:
    async with open_ws(server.ws_url("/limited-size"), compression=compression) as ws:
        assert await exchange(ws, "small") == "small"
        await ws.send(sized_payload(kind, MAX_MESSAGE_SIZE + 1))
        messages, close = await server_close(ws)
    assert messages == []
    assert close.code == 1009


async def test_max_connections_refuses_further_upgrades_with_503_until_one_closes(server: RunningMockd) -> None:
    url = server.ws_url("/limited-conns")
    async with open_ws(url) as first, open_ws(url) as second:
        assert_json_error(await refused_upgrade(url), 503)
        assert await exchange(first, "one") == "one"  # the refusal did not disturb the open connections
        assert await exchange(second, "two") == "two"
        await first.close()
        assert first.close_code is not None

        async def third_connects() -> None:
            async with open_ws(url) as third:
                assert await exchange(third, "three") == "three"

        await eventually(third_connects, DEADLINE, retry_on=(AssertionError, InvalidStatus))


async def test_idle_timeout_closes_with_1001(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/idle")) as ws:
        opened = time.monotonic()
        messages, close = await server_close(ws)
        elapsed = time.monotonic() - opened
    assert close.code == 1001
    assert messages == []
    assert SHORT - SLACK <= elapsed <= SHORT + LATE


async def test_idle_timeout_counts_from_the_last_message(server: RunningMockd) -> None:
    idle, spacing, count = 0.8, 0.1, 10  # messages keep coming for longer than the idle timeout
    async with open_ws(server.ws_url("/idle-activity")) as ws:
        started = time.monotonic()
        for index in range(count):
            assert await exchange(ws, f"m{index}") == f"m{index}"
            await asyncio.sleep(spacing)  # the pace of the client's activity, not synchronisation
        last = time.monotonic() - spacing
        assert last - started > idle
        assert ws.state is State.OPEN
        _, close = await server_close(ws)
        idle_for = time.monotonic() - last
    assert close.code == 1001
    assert idle - SLACK <= idle_for <= idle + LATE


# --- heartbeat --------------------------------------------------------------------------------------


async def test_heartbeat_pings_at_the_interval_and_keeps_an_answering_client(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/heartbeat"), create_connection=PingRecorder) as ws:
        assert isinstance(ws, PingRecorder)
        opened = time.monotonic()
        pings = [await ws.next_ping() for _ in range(3)]
        # three intervals have passed and each pong came in time: still open and serving
        assert pings[-1][0] - opened >= 3 * HEARTBEAT_INTERVAL - SLACK
        assert pings[-1][0] - opened > HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT
        assert ws.state is State.OPEN
        assert await exchange(ws, "alive") == "alive"


async def test_heartbeat_without_pong_closes_with_1001(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/heartbeat"), create_connection=PonglessPingRecorder) as ws:
        assert isinstance(ws, PonglessPingRecorder)
        opened = time.monotonic()
        _, close = await server_close(ws)
        elapsed = time.monotonic() - opened
        assert not ws.pings.empty()  # it was pinged before being dropped
    assert close.code == 1001
    assert HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT - SLACK <= elapsed <= HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + LATE


async def test_disabled_heartbeat_sends_no_pings(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/heartbeat-off"), create_connection=PonglessPingRecorder) as ws:
        assert isinstance(ws, PonglessPingRecorder)
        with pytest.raises(TimeoutError):
            await ws.next_ping(timeout=0.6)  # several configured intervals and timeouts
        assert ws.state is State.OPEN
        assert await exchange(ws, "alive") == "alive"


# --- echo -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [
    "hello", "", "héllo ✓ \u0000 {{message}} {{now}}", "y" * 100_000,
    b"", bytes(range(256)), BINARY_PAYLOAD * 1000,
], ids=["text", "empty-text", "unicode-not-templated", "large-text", "empty-binary", "all-bytes", "large-binary"])
async def test_echo_by_default_returns_each_message_byte_for_byte(server: RunningMockd, payload: Data) -> None:
    async with open_ws(server.ws_url("/echo")) as ws:
        echoed = await exchange(ws, payload)
    assert type(echoed) is type(payload)
    assert echoed == payload


@pytest.mark.parametrize("path", ["/echo-off", "/echo-default-matchers", "/echo-default-scenario"])
async def test_no_echo_when_echo_mode_is_false_or_defaults_to_false(server: RunningMockd, path: str) -> None:
    # the next message after unanswered ones must be the answer to "sync", never an echo
    async with open_ws(server.ws_url(path)) as ws:
        await ws.send("unanswered text")
        await ws.send(b"unanswered binary")
        assert await exchange(ws, "sync") == "synced"


async def test_echo_mode_true_with_matchers_echoes_what_no_matcher_answers(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/echo-on-matchers")) as ws:
        assert await exchange(ws, "other") == "other"
        assert await exchange(ws, "hello") == "world"
        assert await exchange(ws, b"\x00raw") == b"\x00raw"


async def test_default_response_comes_before_echo(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/echo-on-default")) as ws:
        assert await exchange(ws, "anything") == "default wins"


# --- matchers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "expected"), [
    pytest.param("hello", "exact", id="exact"),
    pytest.param("hello!", "default:hello!", id="exact-needs-whole-message"),
    pytest.param("HELLO", "default:HELLO", id="exact-is-case-sensitive"),
    pytest.param("pre:fix", "prefix", id="prefix"),
    pytest.param("xpre:", "default:xpre:", id="prefix-only-at-start"),
    pytest.param("the :suf", "suffix", id="suffix"),
    pytest.param(":sufx", "default::sufx", id="suffix-only-at-end"),
    pytest.param("num-42", "regex", id="regex"),
    pytest.param("num-42a", "default:num-42a", id="regex-no-match"),
    pytest.param("a needle here", "contains", id="contains"),
    pytest.param('{"type": "join", "room": 1}', "json-join", id="json-value"),
    pytest.param('{"type": "leave"}', 'default:{"type": "leave"}', id="json-other-value"),
    pytest.param('{"n": 5}', "json-number", id="json-number-value"),
    pytest.param('{"data": {"kind": "deep"}}', "json-nested", id="json-nested-path"),
    pytest.param('{"flag": false}', "json-exists", id="json-path-exists-without-value"),
    pytest.param('{"other": 1}', 'default:{"other": 1}', id="json-path-missing"),
    pytest.param("type join", "default:type join", id="json-on-non-json"),
    pytest.param("typed", "typed-text", id="message-type-text"),
    pytest.param(b"typed", "typed-binary", id="message-type-binary"),
    pytest.param(b"\x00\xff", "any-binary", id="any-binary"),
    pytest.param("first", "first-wins", id="first-match-wins"),
    pytest.param("pre:needle", "prefix", id="first-match-wins-across-types"),
    pytest.param("nothing", "default:nothing", id="default-response-templated"),
])
async def test_matchers(server: RunningMockd, sent: Data, expected: str) -> None:
    async with open_ws(server.ws_url("/match")) as ws:
        assert await exchange(ws, sent) == expected


async def test_no_response_matcher_sends_nothing(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/match")) as ws:
        await ws.send("silent")
        assert await exchange(ws, "hello") == "exact"  # not "default:silent"


@pytest.mark.parametrize("sent", ["text", "", b"\x00binary", b""], ids=["text", "empty-text", "binary", "empty-binary"])
async def test_any_matcher_matches_every_message(server: RunningMockd, sent: Data) -> None:
    async with open_ws(server.ws_url("/any")) as ws:
        assert await exchange(ws, sent) == "any"


# --- responses and templates ------------------------------------------------------------------------


def is_rfc3339_utc_now(value: Data) -> bool:
    assert isinstance(value, str)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", value), value
    return abs(datetime.fromisoformat(value).timestamp() - time.time()) < DEADLINE


def is_timestamp_now(value: Data) -> bool:
    assert isinstance(value, str) and value.isdigit(), value
    return abs(int(value) - time.time() * 1000) < DEADLINE * 1000


def are_two_distinct_uuids(value: Data) -> bool:
    assert isinstance(value, str)
    first, second = value.split(" ")
    return uuid.UUID(first) != uuid.UUID(second) and str(uuid.UUID(first)) == first.lower()


def is_json(expected: Any) -> Callable[[Data], bool]:
    return lambda value: isinstance(value, str) and json.loads(value) == expected


def equals(expected: Data) -> Callable[[Data], bool]:
    return lambda value: type(value) is type(expected) and value == expected


QUOTED = '{"kind": "quote", "q": "a \\"b\\" \\\\ c"}'


def is_templated_json(value: Data) -> bool:
    assert isinstance(value, str)
    document = json.loads(value)
    return document["echo"] == "tmpl-json" and uuid.UUID(document["id"]) is not None


@pytest.mark.parametrize(("sent", "check"), [
    pytest.param("text", equals("plain"), id="text"),
    pytest.param("json", is_json({"a": [1, 2.5, "x"], "b": {"c": None}}), id="json-is-a-text-frame"),
    pytest.param("binary", equals(BINARY_PAYLOAD), id="binary-is-base64-decoded"),
    pytest.param("tmpl-msg:abc", equals("got tmpl-msg:abc"), id="message"),
    pytest.param('{"kind": "field", "user": {"name": "ann", "role": "admin"}}', equals("ann|admin"),
                 id="message-field"),
    pytest.param(QUOTED, is_json({"got": QUOTED}), id="message-in-json-stays-valid-json"),
    pytest.param("tmpl-now", is_rfc3339_utc_now, id="now"),
    pytest.param("tmpl-timestamp", is_timestamp_now, id="timestamp"),
    pytest.param("tmpl-uuid", are_two_distinct_uuids, id="uuid"),
    pytest.param("tmpl-json", is_templated_json, id="json-templated"),
    pytest.param("tmpl-off", equals("{{message}} {{now}}"), id="template-false-text"),
    pytest.param("tmpl-json-off", is_json({"v": "{{message}}"}), id="template-false-json"),
])
async def test_responses(server: RunningMockd, sent: str, check: Callable[[Data], bool]) -> None:
    async with open_ws(server.ws_url("/responses")) as ws:
        received = await exchange(ws, sent)
    assert check(received), received


async def test_response_delay(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/responses")) as ws:
        sent_at = time.monotonic()
        assert await exchange(ws, "delayed") == "late"
        elapsed = time.monotonic() - sent_at
    assert SHORT - SLACK <= elapsed <= SHORT + LATE


# --- scenarios --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "before", "consumed"), [
    pytest.param("/sc/expect-json", ['{"type": "other"}', "join"], '{"type": "join", "user": "ann"}', id="json"),
    pytest.param("/sc/expect-any", [], b"\x00any binary", id="no-match-means-any"),
])
async def test_expect_step_takes_the_message_before_the_matchers(server: RunningMockd, path: str,
                                                                 before: Sequence[str], consumed: Data) -> None:
    async with open_ws(server.ws_url(path)) as ws:
        for message in before:  # not what the step expects: offered on to the matchers
            assert await exchange(ws, message) == f"matcher:{message}"
        assert await exchange(ws, consumed) == "consumed"  # taken by the step, so not also matched
        assert await exchange(ws, "after") == "matcher:after"  # the scenario has ended: matchers only


async def test_required_expect_times_out_with_1008(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/sc/expect-timeout")) as ws:
        opened = time.monotonic()
        await ws.send("not what is expected")
        messages, close = await server_close(ws)
        elapsed = time.monotonic() - opened
    assert messages == []
    assert (close.code, close.reason) == (1008, "expected message not received")
    assert SHORT - SLACK <= elapsed <= SHORT + LATE


async def test_optional_expect_is_skipped_on_timeout(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/sc/expect-optional")) as ws:
        opened = time.monotonic()
        assert await recv(ws) == "skipped"
        elapsed = time.monotonic() - opened
        assert await exchange(ws, "still open") == "still open"
    assert SHORT - SLACK <= elapsed <= SHORT + LATE


@pytest.mark.parametrize("path", ["/sc/send-delay", "/sc/wait"])
async def test_send_delay_and_wait_step_pause_the_scenario(server: RunningMockd, path: str) -> None:
    async with open_ws(server.ws_url(path)) as ws:
        opened = time.monotonic()
        assert await recv(ws) == "first"
        first_at = time.monotonic()
        assert await recv(ws) == "second"
        second_at = time.monotonic()
    assert first_at - opened < SHORT  # the first send is not delayed
    assert second_at - opened >= SHORT - SLACK
    assert second_at - first_at <= SHORT + LATE


async def test_ping_step_sends_ping_frames_with_their_data(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/sc/ping"), create_connection=PingRecorder) as ws:
        assert isinstance(ws, PingRecorder)
        assert await recv(ws) == "pinged"
        payloads = [ws.pings.get_nowait()[1] for _ in range(ws.pings.qsize())]
    assert payloads == [b"hi", b""]


@pytest.mark.parametrize(("path", "messages", "code", "reason", "not_before"), [
    pytest.param("/sc/close", ["closing"], 4000, "done", 0.0, id="immediate"),
    pytest.param("/sc/close-delay", [], 4001, "later", SHORT, id="delayed"),
])
async def test_close_step_closes_with_its_code_and_reason(server: RunningMockd, path: str, messages: list[str],
                                                          code: int, reason: str, not_before: float) -> None:
    async with open_ws(server.ws_url(path)) as ws:
        opened = time.monotonic()
        received, close = await server_close(ws)
        elapsed = time.monotonic() - opened
    assert received == messages  # nothing after the close step
    assert (close.code, close.reason) == (code, reason)
    assert not_before - SLACK <= elapsed <= not_before + LATE


async def test_loop_restarts_the_steps(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/sc/loop")) as ws:
        for _ in range(3):
            assert await recv(ws) == "tick"
            await ws.send("tock")
        assert await recv(ws) == "tick"


async def test_spec_example_scenario_runs_as_written(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/spec-example"), create_connection=PingRecorder) as ws:
        assert isinstance(ws, PingRecorder)
        opened = time.monotonic()
        welcome = await recv(ws)
        assert time.monotonic() - opened >= 0.1 - SLACK
        assert isinstance(welcome, str) and json.loads(welcome) == {"type": "welcome"}
        await ws.send(json.dumps({"type": "join"}))
        assert await recv(ws) == '{"type":"joined"}'
        joined_at = time.monotonic()
        pinged_at, payload = await ws.next_ping(timeout=2 + DEADLINE)
        assert payload == b"hi"
        assert 2 - SLACK <= pinged_at - joined_at <= 2 + LATE
        messages, close = await server_close(ws)
    assert messages == []
    assert (close.code, close.reason) == (4000, "done")


# --- closing from the client and from the server side ---------------------------------------------


async def test_client_close_is_answered_with_a_close_frame(server: RunningMockd) -> None:
    async with open_ws(server.ws_url("/echo")) as ws:
        assert await exchange(ws, "hi") == "hi"
        started = time.monotonic()
        await ws.close(4000, "client done")
        await asyncio.wait_for(ws.wait_closed(), DEADLINE)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.sent is not None and closed.value.sent.code == 4000
    assert closed.value.rcvd is not None, "the server did not answer the close frame"
    assert closed.value.rcvd_then_sent is False
    assert time.monotonic() - started < DEADLINE - 1  # not ended by the client's close timeout


ECHO_MOCK = ws_mock("live", "/live")


@pytest.mark.parametrize("change", ["delete", "replace"])
async def test_removing_or_replacing_a_mock_closes_its_connections_with_1012(mockd: MockdFactory,
                                                                             change: str) -> None:
    server = mockd.start(mocks_config(ECHO_MOCK))
    async with open_ws(server.ws_url("/live")) as ws:
        assert await exchange(ws, "hi") == "hi"
        if change == "delete":
            reply = await acall("DELETE", f"{server.admin_url}/mocks/live", timeout=DEADLINE)
        else:
            reply = await acall("POST", f"{server.admin_url}/mocks", ws_mock("live", "/live", echoMode=False),
                                timeout=DEADLINE)
        assert 200 <= reply.status < 300
        _, close = await server_close(ws)
    assert close.code == 1012


async def test_shutdown_closes_open_websockets_with_1001(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(ECHO_MOCK))
    async with open_ws(server.ws_url("/live")) as ws:
        assert await exchange(ws, "hi") == "hi"
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))
        _, close = await server_close(ws)
        assert close.code == 1001
    assert await asyncio.wait_for(stopping, 20) == 0
