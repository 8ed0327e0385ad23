"""Recording → mock config (docs/replay.md, "Convert to a mock config"; docs/cli.md `convert`).

Pure unit tests of :func:`mockd.playback.convert.convert` and :func:`mockd.playback.convert.websocket_steps` on
hand-built :class:`~mockd.recording.format.Recording` models: the whole recording converts, one
mock per connection with something to reproduce (id ``<recording id>-<connection>``), mocks that
match alike in sequence (``times: 1`` but the last); each matches its connection's recorded request
(``matchOn``, ``ignoreQuery``, ``ignoreBody``, redacted values left out) and answers its recorded
response (SSE status and headers, HTTP exchanges). Hypothesis properties: whatever the recording,
the converted document loads through :func:`mockd.config.model.mocks_from_document` (or the converter
says ``nothing_to_convert``), ids are unique, and each mock reproduces its connection.

The round trips over real sockets (record through a proxy, convert, serve the result) are in
``tests/e2e/test_convert_round_trips.py``.

Steps are compared through :func:`step_view`, which turns durations into milliseconds, so a delay
written ``"100ms"`` or ``"0.1s"`` or ``100`` reads the same: the contract is the timing, not its
spelling.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from handmade import RECORDING_ID, frame, opened, sse_event, sse_recording, ws_recording

from mockd.config.durations import seconds
from mockd.config.model import (BodyMatch, CloseStep, ExpectStep, HttpMock, Mock, PingStep, SendStep, WaitStep,
                                WebSocketMock, mocks_from_document, parse_document)
from mockd.playback.convert import (ConvertOptions, NoSuchConnection, NothingToConvert, config_bytes, convert,
                                    websocket_steps)
from mockd.recording.format import (ConnectionRecord, Frame, HttpExchange, HttpRequestRecord, HttpResponseRecord,
                                    HttpSection, Metadata, Recording, SseEvent, SseRequest, SseSection)
from mockd.serving.mocks.http import body_mismatch


# --- reading the converted document ---------------------------------------------------------------


def loaded_all(recording: Recording, **options: Any) -> tuple[dict[str, Any], list[Mock]]:
    """Convert, serialise as the API and CLI do, and load it back as ``mockd serve --config`` does.

    Returns the raw document (to check what is and is not written) and the loaded mocks, whose ids
    are unique."""
    raw = config_bytes(convert(recording, ConvertOptions(**options)))
    document = parse_document(raw, "converted.json")
    mocks = mocks_from_document(document, "converted.json")
    assert document["version"] == "1.0"
    ids = [mock.id for mock in mocks]
    assert len(set(ids)) == len(ids), ids
    return document, mocks


def loaded(recording: Recording, **options: Any) -> tuple[dict[str, Any], Mock]:
    """:func:`loaded_all` of a recording that converts to one mock."""
    document, mocks = loaded_all(recording, **options)
    assert len(mocks) == 1, [mock.id for mock in mocks]
    return document, mocks[0]


def converted_connection(mock: Mock) -> int:
    """The connection a converted mock reproduces: its id is ``<recording id>-<connection>``."""
    assert mock.id is not None
    recording_id, _, number = mock.id.rpartition("-")
    assert recording_id == RECORDING_ID, mock.id
    return int(number)


def ms(duration: Any) -> float:
    return round(seconds(duration) * 1000, 3)


StepView = tuple[Any, ...]


def step_view(step: Any) -> StepView:
    """A step as a comparable tuple, every duration in ms (absent = 0)."""
    if isinstance(step, SendStep):
        message = step.message
        return ("send", message.type, message.value, ms(message.delay), message.template)
    if isinstance(step, ExpectStep):
        match = step.match
        if match is None or (match.type == "any" and match.message_type is None):
            return ("expect", "any")
        return ("expect", match.type, match.value, match.message_type)
    if isinstance(step, WaitStep):
        return ("wait", ms(step.duration))
    if isinstance(step, PingStep):
        return ("ping", step.data)
    if isinstance(step, CloseStep):
        return ("close", step.code, step.reason, ms(step.delay))
    raise AssertionError(f"unexpected step {step!r}")


def scenario(mock: Mock) -> list[StepView]:
    assert isinstance(mock, WebSocketMock) and mock.websocket is not None
    assert mock.websocket.scenario is not None
    return [step_view(step) for step in mock.websocket.scenario.steps]


def send(value: str, delay: float = 0, kind: str = "text") -> StepView:
    return ("send", kind, value, float(delay), False)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- (a) WebSocket: unit tests ----------------------------------------------------------------------

CHAT_FRAMES = [
    frame("s2c", "text", '{"type":"welcome"}', 100),
    frame("c2s", "text", '{"type":"join","room":"general"}', 250),
    frame("s2c", "text", '{"type":"joined"}', 300),
    frame("s2c", "ping", b"hi", 500),
    frame("c2s", "pong", b"hi", 501),
    frame("s2c", "binary", b"\x00\x01\xfe\xff", 650),
    frame("c2s", "ping", b"yo", 700),
    frame("s2c", "pong", b"yo", 701),
    frame("s2c", "close", at=900, code=4000, reason="bye"),
    frame("c2s", "close", at=905, code=4000, reason="bye"),
]


def test_chat_recording_becomes_the_documented_scenario() -> None:
    """Every rule at once: sends with their gaps, an expect that restarts the clock, a ping after a wait,
    a binary send, the server's close; client pings, both pongs and the client's close answer vanish."""
    document, mock = loaded(ws_recording(CHAT_FRAMES, subprotocol="chat.v1"))
    assert scenario(mock) == [
        send('{"type":"welcome"}', 100),
        ("expect", "any"),
        send('{"type":"joined"}', 50),  # 300 - 250: measured from the client's message
        ("wait", 200.0),
        ("ping", b64(b"hi")),
        send(b64(b"\x00\x01\xfe\xff"), 150, "binary"),  # the pongs and the client's ping move no clock
        ("close", 4000, "bye", 250.0),
    ]
    raw_mock = document["mocks"][0]
    assert raw_mock["type"] == "websocket"
    assert raw_mock["websocket"]["path"] == "/ws/chat"
    assert raw_mock["websocket"]["subprotocols"] == ["chat.v1"]


@pytest.mark.parametrize("text", [
    "{{now}} and {{uuid}} stay literal",
    '{"type": "spaced" ,  "n":1.50}',  # not re-serialised
    "  leading and trailing whitespace \n",
    "ünïcødé ✓ 🚀",
    "",
    "line\r\nbreaks\tand\x00nul",
], ids=["template-markers", "json-spacing", "whitespace", "unicode", "empty", "control-chars"])
def test_text_is_sent_byte_for_byte_with_templating_off(text: str) -> None:
    document, mock = loaded(ws_recording([frame("s2c", "text", text, 0)]))
    assert scenario(mock) == [send(text)]
    message = document["mocks"][0]["websocket"]["scenario"]["steps"][0]["message"]
    assert message["template"] is False
    assert message.get("value", "") == text  # "" is the default, which the writer may leave out


@pytest.mark.parametrize("payload", [b"", b"\x00", bytes(range(256)), "héllo".encode()],
                         ids=["empty", "nul", "all-bytes", "utf8"])
def test_binary_is_sent_as_base64_of_the_exact_bytes(payload: bytes) -> None:
    _, mock = loaded(ws_recording([frame("s2c", "binary", payload, 0)]))
    ((kind, message_type, value, delay, template),) = scenario(mock)
    assert (kind, message_type, delay, template) == ("send", "binary", 0, False)
    assert base64.b64decode(value, validate=True) == payload


@pytest.mark.parametrize(("opened_at", "times", "delays"), [
    (0, [0, 150, 450], [0, 150, 300]),
    (20, [50, 60, 1060], [30, 10, 1000]),
    (0, [7, 7, 7], [7, 0, 0]),
], ids=["from-zero", "from-connection-opening", "same-millisecond"])
def test_send_delay_is_the_gap_since_the_previous_step(opened_at: int, times: list[int], delays: list[int]) -> None:
    frames = [frame("s2c", "text", f"m{index}", at) for index, at in enumerate(times)]
    _, mock = loaded(ws_recording(frames, connections=[opened(at=opened_at)]))
    assert scenario(mock) == [send(f"m{index}", delay) for index, delay in enumerate(delays)]


def test_after_an_expect_the_clock_restarts_at_the_client_message() -> None:
    """Server think-time is kept, client think-time is the client's: 400 ms of client silence is not a delay."""
    frames = [frame("s2c", "text", "question", 0), frame("c2s", "text", "answer", 400),
              frame("s2c", "text", "thanks", 450), frame("s2c", "text", "more", 500)]
    _, mock = loaded(ws_recording(frames))
    assert scenario(mock) == [send("question"), ("expect", "any"), send("thanks", 50), send("more", 50)]


def test_websocket_steps_counts_from_the_opening_it_is_given() -> None:
    frames = [frame("s2c", "text", "a", 120), frame("c2s", "text", "b", 200), frame("s2c", "text", "c", 230)]
    steps = websocket_steps(frames, 100, ConvertOptions())
    assert [step_view(step) for step in steps] == [send("a", 20), ("expect", "any"), send("c", 30)]


@pytest.mark.parametrize(("strict", "client", "expected"), [
    (False, frame("c2s", "text", "join me", 10), ("expect", "any")),
    (False, frame("c2s", "binary", b"\x01\x02", 10), ("expect", "any")),
    (True, frame("c2s", "text", "join me", 10), ("expect", "exact", "join me", "text")),
], ids=["loose-text", "loose-binary", "strict-text"])
def test_expect_is_loose_unless_strict_matching(strict: bool, client: Frame, expected: StepView) -> None:
    _, mock = loaded(ws_recording([client, frame("s2c", "text", "ok", 20)]), strict_matching=strict)
    assert scenario(mock) == [expected, send("ok", 10)]


def test_strict_binary_expect_keeps_the_message_type() -> None:
    _, mock = loaded(ws_recording([frame("c2s", "binary", b"bin", 0), frame("s2c", "text", "ok", 5)]),
                     strict_matching=True)
    (expect, _) = scenario(mock)
    assert expect[0] == "expect" and expect[1] != "any"
    assert expect[-1] == "binary"


def test_without_client_messages_server_frames_go_on_timing_alone() -> None:
    frames = [frame("s2c", "text", "a", 0), frame("c2s", "text", "x", 100), frame("s2c", "text", "b", 300),
              frame("c2s", "binary", b"y", 350), frame("s2c", "text", "c", 360)]
    _, mock = loaded(ws_recording(frames), include_client_messages=False)
    assert scenario(mock) == [send("a"), send("b", 300), send("c", 60)]


def test_server_ping_becomes_a_wait_then_a_ping() -> None:
    frames = [frame("s2c", "text", "a", 0), frame("s2c", "ping", b"", 100), frame("s2c", "ping", b"\x01x", 100),
              frame("s2c", "text", "b", 130)]
    _, mock = loaded(ws_recording(frames))
    assert scenario(mock) == [send("a"), ("wait", 100.0), ("ping", ""), ("ping", b64(b"\x01x")), send("b", 30)]


@pytest.mark.parametrize(("code", "reason"), [(1000, "Normal closure"), (4001, "kicked"), (1011, ""),
                                               (1005, "")],
                         ids=["1000", "4001", "no-reason", "no-status"])
def test_server_close_becomes_a_close_step_with_code_and_reason(code: int, reason: str) -> None:
    frames = [frame("s2c", "text", "bye soon", 0), frame("s2c", "close", at=40, code=code, reason=reason),
              frame("c2s", "close", at=41, code=code, reason=reason)]
    _, mock = loaded(ws_recording(frames))
    assert scenario(mock) == [send("bye soon"), ("close", code, reason, 40.0)]


def test_client_close_and_the_servers_answer_produce_no_step() -> None:
    frames = [frame("s2c", "text", "hello", 5), frame("c2s", "close", at=200, code=1000, reason="done"),
              frame("s2c", "close", at=201, code=1000, reason="done")]
    _, mock = loaded(ws_recording(frames))
    assert scenario(mock) == [send("hello", 5)]


def test_pongs_produce_no_step_and_move_no_clock() -> None:
    frames = [frame("s2c", "text", "a", 0), frame("s2c", "pong", b"p", 50), frame("c2s", "pong", b"q", 60),
              frame("c2s", "ping", b"r", 70), frame("s2c", "text", "b", 90)]
    _, mock = loaded(ws_recording(frames))
    assert scenario(mock) == [send("a"), send("b", 90)]


@pytest.mark.parametrize(("options", "delays"), [
    ({}, [5, 30, 3000, 6000]),
    ({"simplify_timing": True}, [0, 30, 3000, 5000]),  # defaults: minDelay 10, maxDelay 5000
    ({"simplify_timing": True, "min_delay": 10, "max_delay": 2000}, [0, 30, 2000, 2000]),
    ({"simplify_timing": True, "min_delay": 50, "max_delay": 2000}, [0, 0, 2000, 2000]),
    ({"simplify_timing": False, "min_delay": 50, "max_delay": 2000}, [5, 30, 3000, 6000]),
    ({"min_delay": 50, "max_delay": 2000}, [0, 0, 2000, 2000]),  # the bounds alone imply simplifyTiming
    ({"min_delay": 50}, [0, 0, 3000, 5000]),
    ({"max_delay": 2000}, [0, 30, 2000, 2000]),
], ids=["off", "defaults", "10-2000", "50-2000", "explicit-false-keeps-the-recorded-delays", "bounds-imply-simplify",
        "min-delay-implies-simplify", "max-delay-implies-simplify"])
def test_simplify_timing_clamps_delays(options: dict[str, Any], delays: list[int]) -> None:
    times = [5, 35, 3035, 9035]
    frames = [frame("s2c", "text", f"m{index}", at) for index, at in enumerate(times)]
    _, mock = loaded(ws_recording(frames), **options)
    assert scenario(mock) == [send(f"m{index}", delay) for index, delay in enumerate(delays)]


@pytest.mark.parametrize(("body", "clamped"), [
    ({}, False), ({"simplifyTiming": True}, True), ({"minDelay": 0}, True), ({"maxDelay": 5000}, True),
    ({"simplifyTiming": False, "maxDelay": 10}, False), ({"simplifyTiming": None, "minDelay": None}, False),
])
def test_the_api_body_implies_simplify_timing_only_when_a_bound_is_given(body: dict[str, Any], clamped: bool) -> None:
    options = msgspec.convert(body, ConvertOptions)
    assert options.simplifies_timing is clamped
    given = {key: value for key, value in body.items() if value is not None}
    assert (options.min_delay_ms, options.max_delay_ms) == (given.get("minDelay", 10), given.get("maxDelay", 5000))


@pytest.mark.parametrize("body", [{"minDelay": 6000}, {"minDelay": 300, "maxDelay": 200}, {"maxDelay": -1}])
def test_bounds_that_contradict_each_other_or_the_defaults_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(body, ConvertOptions)


def test_simplify_timing_clamps_ping_waits_and_close_delays_too() -> None:
    frames = [frame("s2c", "ping", b"", 4), frame("s2c", "ping", b"", 9000),
              frame("s2c", "close", at=9003, code=1000, reason="")]
    _, mock = loaded(ws_recording(frames), simplify_timing=True, min_delay=50, max_delay=2000)
    assert scenario(mock) == [("ping", ""), ("wait", 2000.0), ("ping", ""), ("close", 1000, "", 0.0)]


TWO_CONNECTIONS = [
    frame("s2c", "text", "one", 10, connection=1), frame("s2c", "text", "two", 30, connection=2),
    frame("s2c", "text", "one again", 50, connection=1), frame("s2c", "text", "two again", 90, connection=2),
]
ROOMS = [opened(1, 0, "/ws/room/1"), opened(2, 20, "/ws/room/2")]


ROOM_STEPS = [[send("one", 10), send("one again", 40)], [send("two", 10), send("two again", 60)]]


def test_whole_recording_is_every_connection_on_its_own_path() -> None:
    """A session on a glob (``/ws/*``) records several connections; by default every one converts, in
    order, on its own real path: different paths are no sequence (no ``times``)."""
    document, mocks = loaded_all(ws_recording(TWO_CONNECTIONS, connections=ROOMS, path="/ws/*"))
    raw = document["mocks"]
    assert [item["id"] for item in raw] == [f"{RECORDING_ID}-1", f"{RECORDING_ID}-2"]
    assert [item["name"] for item in raw] == ["chat-session #1", "chat-session #2"]
    assert [item["websocket"]["path"] for item in raw] == ["/ws/room/1", "/ws/room/2"]
    assert ["times" in item for item in raw] == [False, False]
    assert [scenario(mock) for mock in mocks] == ROOM_STEPS


def test_a_path_override_puts_every_connection_on_it_in_sequence() -> None:
    document, mocks = loaded_all(ws_recording(TWO_CONNECTIONS, connections=ROOMS, path="/ws/*"), path="/elsewhere")
    assert [item["websocket"]["path"] for item in document["mocks"]] == ["/elsewhere", "/elsewhere"]
    assert [mock.times for mock in mocks] == [1, None]
    assert [scenario(mock) for mock in mocks] == ROOM_STEPS


@pytest.mark.parametrize(("options", "path", "steps"), [
    ({"connection": 1}, "/ws/room/1", ROOM_STEPS[0]),
    ({"connection": 2}, "/ws/room/2", ROOM_STEPS[1]),
    ({"connection": 2, "path": "/custom"}, "/custom", ROOM_STEPS[1]),
], ids=["first", "second", "second-with-path"])
def test_connection_choice_and_path(options: dict[str, Any], path: str, steps: list[StepView]) -> None:
    """``connection`` converts that one connection alone, on its own real path unless ``path`` says."""
    document, mock = loaded(ws_recording(TWO_CONNECTIONS, connections=ROOMS, path="/ws/*"), **options)
    assert document["mocks"][0]["websocket"]["path"] == path
    assert mock.id == f"{RECORDING_ID}-{options['connection']}"
    assert mock.times is None
    assert scenario(mock) == steps


@pytest.mark.parametrize(("first", "options"), [
    ([frame("s2c", "pong", b"", 1, connection=1)], {}),
    ([frame("c2s", "close", at=1, code=1000, reason="", connection=1),
      frame("s2c", "close", at=2, code=1000, reason="", connection=1)], {}),
    ([frame("c2s", "text", "anyone there?", 1, connection=1)], {"include_client_messages": False}),
], ids=["only-a-pong", "only-a-client-close", "only-client-messages-without-client-messages"])
def test_connections_with_nothing_to_reproduce_are_skipped(first: list[Frame], options: dict[str, Any]) -> None:
    """A connection with nothing a mock could send (a health probe that only closed, a client whose
    messages are left out) gives no mock in a whole-recording convert, and asked for alone it is
    nothing to convert."""
    frames = [*first, frame("s2c", "text", "real", 30, connection=2)]
    recording = ws_recording(frames, connections=ROOMS)
    _, mock = loaded(recording, **options)
    assert mock.id == f"{RECORDING_ID}-2"
    assert scenario(mock) == [send("real", 10)]
    with pytest.raises(NothingToConvert, match=r"^connection 1 has no frames a mock could reproduce$"):
        convert(recording, ConvertOptions(connection=1, **options))


@pytest.mark.parametrize(("frames", "options"), [
    ([], {}),
    ([frame("s2c", "pong", b"", 3)], {}),
    ([frame("c2s", "text", "only the client spoke", 3)], {"include_client_messages": False}),
], ids=["empty", "only-pongs", "only-client-without-client-messages"])
def test_nothing_to_convert(frames: list[Frame], options: dict[str, Any]) -> None:
    with pytest.raises(NothingToConvert, match=r"^the recording has no frames a mock could reproduce$"):
        convert(ws_recording(frames, connections=ROOMS), ConvertOptions(**options))


@pytest.mark.parametrize("number", [0, 3, 99, -1])
def test_a_connection_not_in_the_recording_is_no_such_connection(number: int) -> None:
    with pytest.raises(NoSuchConnection) as raised:
        convert(ws_recording(TWO_CONNECTIONS, connections=ROOMS), ConvertOptions(connection=number))
    assert str(raised.value) == f"the recording has 2 connection(s) (1-2); there is no connection {number}"


def test_no_such_connection_counts_the_connections_only_the_entries_name() -> None:
    """A recording whose frames name connections it has no record of still counts them."""
    frames = [frame("s2c", "text", "x", 1, connection=1), frame("s2c", "text", "y", 2, connection=4)]
    with pytest.raises(NoSuchConnection) as raised:
        convert(ws_recording(frames, connections=[opened(1)]), ConvertOptions(connection=2))
    assert str(raised.value) == "the recording has 2 connection(s) (1, 4); there is no connection 2"


def test_nothing_to_convert_on_an_empty_sse_recording() -> None:
    with pytest.raises(NothingToConvert):
        convert(sse_recording([]), ConvertOptions())


# --- (a) SSE: unit tests ----------------------------------------------------------------------------


def sse_block(document: dict[str, Any]) -> dict[str, Any]:
    return document["mocks"][0]["http"]["sse"]


def test_sse_recording_becomes_an_http_mock_with_exact_events_and_gaps() -> None:
    events = [
        sse_event(120, type="update", data='{"price": 1.50 }', id="1"),
        sse_event(270, type="message", data="line one\nline two\n\nafter a blank line"),
        sse_event(570, comment="keepalive"),
        sse_event(575, retry=3000),
        sse_event(900, type="done", data="", id="3", retry=10),
    ]
    document, _ = loaded(sse_recording(events, connections=[opened(at=20, path="/events")]))
    raw = document["mocks"][0]
    assert raw["type"] == "http"
    assert raw["http"]["matcher"] == {"method": "GET", "path": "/events"}
    assert "response" not in raw["http"]
    sse = sse_block(document)
    assert sse["events"] == [
        {"type": "update", "data": '{"price": 1.50 }', "id": "1"},  # data stays the exact string
        {"data": "line one\nline two\n\nafter a blank line"},  # no `event:` line was recorded: none written
        {"comment": "keepalive"},
        {"retry": 3000},
        {"type": "done", "data": "", "id": "3", "retry": 10},
    ]
    assert sse["timing"]["perEventDelays"] == [100, 150, 300, 5, 325]
    assert sse.get("statusCode", 200) == 200
    assert sse.get("loop", False) is False  # the stream ends after the last event, as recorded


@pytest.mark.parametrize(("request_", "method", "expected"), [
    (SseRequest(method="POST", body='{"stream": true}'), None,
     {"method": "POST", "body": {"type": "jsonEqual", "value": {"stream": True}}}),
    (None, "POST", {"method": "POST"}),
    (None, None, {"method": "GET"}),
], ids=["post-request", "post-metadata", "get"])
def test_sse_mock_uses_the_recorded_method(request_: SseRequest | None, method: str | None,
                                           expected: dict[str, Any]) -> None:
    """A recording made before connections kept their own request: the section's request (method and
    body) is the first connection's, else the metadata's method."""
    recording = sse_recording([sse_event(10, type="message", data="tok")], method=method, request=request_,
                              path="/v1/chat/completions")
    document, _ = loaded(recording)
    assert document["mocks"][0]["http"]["matcher"] == {**expected, "path": "/v1/chat/completions"}


@pytest.mark.parametrize("status", [200, 201, 500])
def test_sse_mock_keeps_the_recorded_status(status: int) -> None:
    document, _ = loaded(sse_recording([sse_event(10, data="x", type="message")], status=status))
    assert sse_block(document).get("statusCode", 200) == status


def test_sse_connection_choice_path_and_simplified_timing() -> None:
    events = [sse_event(at, type="message", data=data, connection=number)
              for at, data, number in ((5, "a", 1), (40, "b", 2), (45, "c", 2), (9040, "d", 2))]
    recording = sse_recording(events, connections=[opened(1, 0, "/events/1"), opened(2, 30, "/events/2")],
                              path="/events/*")
    document, _ = loaded_all(recording)
    assert [mock["http"]["matcher"]["path"] for mock in document["mocks"]] == ["/events/1", "/events/2"]
    assert [[event["data"] for event in mock["http"]["sse"]["events"]] for mock in document["mocks"]] == [
        ["a"], ["b", "c", "d"]]
    assert [mock["http"]["sse"]["timing"]["perEventDelays"] for mock in document["mocks"]] == [[5], [10, 5, 8995]]
    assert ["times" in mock for mock in document["mocks"]] == [False, False]
    document, _ = loaded(recording, connection=2, path="/replayed", simplify_timing=True, min_delay=10,
                         max_delay=2000)
    assert document["mocks"][0]["http"]["matcher"]["path"] == "/replayed"
    sse = sse_block(document)
    assert [event["data"] for event in sse["events"]] == ["b", "c", "d"]
    assert sse["timing"]["perEventDelays"] == [10, 0, 2000]


# --- (a) whole recordings: one mock per connection, sequences --------------------------------------


def record(number: int, at: int = 0, path: str | None = None, **fields: Any) -> ConnectionRecord:
    """A connection's record with any of its optional fields (method, body, query, status, ...)."""
    return msgspec.structs.replace(opened(number, at, path), **fields)


def one_send_each(count: int) -> list[Frame]:
    """Connection ``n`` (1..count) sends ``message n`` 10 ms after it opened at ``20 * (n - 1)`` ms."""
    return [frame("s2c", "text", f"message {number}", 20 * (number - 1) + 10, connection=number)
            for number in range(1, count + 1)]


@pytest.mark.parametrize(("paths", "times"), [
    (["/ws/chat", "/ws/chat", "/ws/chat"], [1, 1, None]),
    (["/ws/a", "/ws/b", "/ws/c"], [None, None, None]),
    (["/ws/a", "/ws/b", "/ws/a"], [1, None, None]),
], ids=["one-path", "different-paths", "interleaved"])
def test_connections_alike_are_served_in_recorded_order(paths: list[str], times: list[int | None]) -> None:
    """Mocks that match the same upgrades serve one client each, in order (``times: 1``); the last of
    them serves every client after. Mocks on other paths are no part of it."""
    connections = [record(number, 20 * (number - 1), path) for number, path in enumerate(paths, 1)]
    document, mocks = loaded_all(ws_recording(one_send_each(3), connections=connections))
    assert [mock.id for mock in mocks] == [f"{RECORDING_ID}-{number}" for number in (1, 2, 3)]
    assert [mock.name for mock in mocks] == [f"chat-session #{number}" for number in (1, 2, 3)]
    assert [mock.times for mock in mocks] == times
    assert [raw.get("times") for raw in document["mocks"]] == times  # absent, not null, for the last
    assert [raw["websocket"]["path"] for raw in document["mocks"]] == paths
    assert [scenario(mock) for mock in mocks] == [[send(f"message {number}", 10)] for number in (1, 2, 3)]


def test_a_recording_converts_in_connection_order_not_frame_order() -> None:
    """Connection 2's first frame may come before connection 1's: the mocks follow the connections."""
    frames = [frame("s2c", "text", "early two", 5, connection=2), frame("s2c", "text", "late one", 50, connection=1)]
    _, mocks = loaded_all(ws_recording(frames, connections=[record(1, 0, "/ws/chat"), record(2, 0, "/ws/chat")]))
    assert [(mock.id, mock.times) for mock in mocks] == [(f"{RECORDING_ID}-1", 1), (f"{RECORDING_ID}-2", None)]
    assert [scenario(mock) for mock in mocks] == [[send("late one", 50)], [send("early two", 5)]]


def websocket_specs(recording: Recording, **options: Any) -> list[dict[str, Any]]:
    document, _ = loaded_all(recording, **options)
    return [raw["websocket"] for raw in document["mocks"]]


QUERY = {"room": "general", "cb": "1700000000", "token": "[REDACTED]"}


@pytest.mark.parametrize(("options", "query", "require"), [
    ({}, None, True),
    ({"match_on": ["path", "subprotocol"]}, None, True),
    ({"match_on": ["path", "query"]}, {"room": "general", "cb": "1700000000"}, None),
    ({"match_on": ["path", "query"], "ignore_query": ["cb"]}, {"room": "general"}, None),
    ({"match_on": ["path", "query", "subprotocol"], "ignore_query": ["cb", "room"]}, None, True),
    ({"match_on": ["path"]}, None, None),
], ids=["default", "path-and-subprotocol", "path-and-query", "ignore-query", "everything-ignored", "path-only"])
def test_websocket_upgrade_matching(options: dict[str, Any], query: dict[str, str] | None,
                                    require: bool | None) -> None:
    """An upgrade matches on path and subprotocol by default (a query holds cache-busters and tokens);
    ``matchOn`` with ``query`` adds the recorded query, less ``ignoreQuery`` and redacted values; the
    recorded subprotocol is always offered, and required only while ``matchOn`` has ``subprotocol``."""
    connection = record(1, 0, "/ws/chat", query=QUERY, subprotocol="chat.v1")
    (spec,) = websocket_specs(ws_recording([frame("s2c", "text", "hi", 5)], connections=[connection]), **options)
    assert spec.get("query") == query
    assert spec["subprotocols"] == ["chat.v1"]
    assert spec.get("requireSubprotocol") == require


def test_each_connection_offers_its_own_subprotocol() -> None:
    """The section's subprotocol is the first connection's (recordings made before connections kept
    their own); a later connection without one offers none."""
    connections = [record(1, 0, "/ws/chat"), record(2, 20, "/ws/chat", subprotocol="mqtt"), record(3, 40, "/ws/chat")]
    specs = websocket_specs(ws_recording(one_send_each(3), connections=connections, subprotocol="chat.v1"))
    assert [(spec.get("subprotocols"), spec.get("requireSubprotocol")) for spec in specs] == [
        (["chat.v1"], True), (["mqtt"], True), (None, None)]


def test_connections_alike_under_match_on_are_a_sequence_whatever_subprotocols_they_offer() -> None:
    """With ``matchOn: ["path"]`` no subprotocol is required, so both mocks take every upgrade on the
    path and the first must serve once; an offered (not required) subprotocol decides nothing."""
    connections = [record(1, 0, "/ws/chat", subprotocol="chat.v1"), record(2, 20, "/ws/chat")]
    _, mocks = loaded_all(ws_recording(one_send_each(2), connections=connections), match_on=["path"])
    assert [mock.times for mock in mocks] == [1, None]


# --- (a) SSE and HTTP: the request matcher ----------------------------------------------------------


def post_stream(number: int, body: str | None = None, path: str = "/v1/chat", **fields: Any) -> ConnectionRecord:
    """An SSE connection opened by ``POST path`` with ``body`` (as the recorder keeps it)."""
    if body is not None:
        fields["body"] = body
    return record(number, 0, path, method="POST", **fields)


def stream_events(count: int) -> list[SseEvent]:
    return [sse_event(10 * number, connection=number, data=f"token {number}") for number in range(1, count + 1)]


def matchers(recording: Recording, **options: Any) -> list[dict[str, Any]]:
    document, _ = loaded_all(recording, **options)
    return [raw["http"]["matcher"] for raw in document["mocks"]]


def test_post_streams_with_different_json_bodies_get_their_own_body_matchers() -> None:
    connections = [post_stream(1, '{"model": "gpt-4", "stream": true}'),
                   post_stream(2, '{"model":"small","stream":true,"n":2}')]
    document, mocks = loaded_all(sse_recording(stream_events(2), connections=connections))
    assert [raw["http"]["matcher"] for raw in document["mocks"]] == [
        {"method": "POST", "path": "/v1/chat", "body": {"type": "jsonEqual", "value": {"model": "gpt-4",
                                                                                        "stream": True}}},
        {"method": "POST", "path": "/v1/chat", "body": {"type": "jsonEqual", "value": {"model": "small",
                                                                                        "stream": True, "n": 2}}},
    ]
    assert [mock.times for mock in mocks] == [None, None]  # different requests: each mock keeps its own


def test_post_streams_with_one_body_are_a_sequence() -> None:
    """The same request twice (whitespace aside): the first recorded stream answers the first client."""
    connections = [post_stream(1, '{"q": "hi"}'), post_stream(2, '{ "q" : "hi" }')]
    _, mocks = loaded_all(sse_recording(stream_events(2), connections=connections))
    assert [mock.times for mock in mocks] == [1, None]


def test_post_streams_with_bodies_equal_as_json_are_a_sequence() -> None:
    """jsonEqual ignores key order, so these two mocks match the same requests: a sequence."""
    connections = [post_stream(1, '{"model": "gpt-4", "stream": true}'),
                   post_stream(2, '{"stream": true, "model": "gpt-4"}')]
    _, mocks = loaded_all(sse_recording(stream_events(2), connections=connections))
    assert [mock.times for mock in mocks] == [1, None]


REDACTED_BODY = ('{"model": "gpt-4", "api-key": "[REDACTED]", "user": "ana", '
                 '"messages": [{"role": "user", "content": "[REDACTED]"}]}')


def body_matcher(recording: Recording, redact_value: str = "[REDACTED]", **options: Any) -> BodyMatch:
    config = convert(recording, ConvertOptions(**options), redact_value=redact_value)
    (mock,) = mocks_from_document(parse_document(config_bytes(config), "converted.json"), "converted.json")
    assert isinstance(mock, HttpMock) and mock.http is not None and mock.http.matcher.body is not None
    return mock.http.matcher.body


def test_redacted_fields_of_a_recorded_body_are_ignored() -> None:
    """A redacted value cannot be compared with the client's: its path is ignored, whatever the client
    sends there; ``ignoreBody`` paths come first."""
    recording = sse_recording(stream_events(1), connections=[post_stream(1, REDACTED_BODY)])
    match = body_matcher(recording)
    assert match.type == "jsonEqual"
    assert match.ignore == ['$["api-key"]', "$.messages[0].content"]
    assert match.value == msgspec.json.decode(REDACTED_BODY)
    client = {"model": "gpt-4", "api-key": "sk-live-123", "user": "ana",
              "messages": [{"role": "user", "content": "hello"}]}
    assert body_mismatch(match, json.dumps(client).encode()) is None
    assert body_mismatch(match, json.dumps({**client, "user": "bob"}).encode()) == "differs at $.user"
    with_user_ignored = body_matcher(recording, ignore_body=["$.user"])
    assert with_user_ignored.ignore == ["$.user", '$["api-key"]', "$.messages[0].content"]
    assert body_mismatch(with_user_ignored, json.dumps({**client, "user": "bob"}).encode()) is None


def test_the_redact_value_given_is_the_one_ignored() -> None:
    body = '{"token": "***", "note": "[REDACTED]"}'
    match = body_matcher(sse_recording(stream_events(1), connections=[post_stream(1, body)]), redact_value="***")
    assert match.ignore == ["$.token"]


def test_a_redacted_member_whose_name_is_outside_the_bmp_is_ignored() -> None:
    """Any key may hold a redacted value; its ignore path must be one the config loader accepts."""
    body = '{"\U00020bb7": "[REDACTED]", "a": 1}'
    match = body_matcher(sse_recording(stream_events(1), connections=[post_stream(1, body)]))
    assert body_mismatch(match, '{"\U00020bb7": "secret", "a": 1}'.encode()) is None


def test_a_body_that_could_not_be_redacted_is_not_compared() -> None:
    """The recorder keeps the redact value instead of a body it could not read (JSON nested too deep):
    that value says nothing about the client's body, so the mock must not require it."""
    recording = sse_recording(stream_events(1), connections=[post_stream(1, "[REDACTED]")])
    (matcher,) = matchers(recording)
    assert matcher == {"method": "POST", "path": "/v1/chat"}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"body": "prompt=hello&n=1"}, {"value": "prompt=hello&n=1"}),
    ({"body": '{"cut": "of', "body_truncated": True}, None),
    ({"body": b64(b"\x89PNG\xff\x00"), "body_encoding": "base64"}, {"value": b64(b"\x89PNG\xff\x00"),
                                                                    "encoding": "base64"}),
    ({"body": b64(b"\xff" * 10), "body_encoding": "base64", "body_truncated": True}, None),
    ({}, None),
], ids=["text", "truncated", "base64", "base64-truncated", "no-body"])
def test_non_json_bodies_match_byte_for_byte_and_cut_bodies_not_at_all(fields: dict[str, Any],
                                                                       expected: dict[str, Any] | None) -> None:
    (matcher,) = matchers(sse_recording(stream_events(1), connections=[post_stream(1, **fields)]))
    assert matcher.get("body") == expected  # `type: exact` is the default, left out
    if expected is not None:
        assert msgspec.convert(matcher["body"], BodyMatch).type == "exact"


QUERIED = record(1, 0, "/v1/search", method="POST", body='{"q": "books"}',
                 query={"page": "2", "cb": "1700000000", "key": "[REDACTED]"})


@pytest.mark.parametrize(("options", "expected"), [
    ({}, {"method": "POST", "path": "/v1/search", "query": {"page": "2", "cb": "1700000000"},
          "body": {"type": "jsonEqual", "value": {"q": "books"}}}),
    ({"ignore_query": ["cb"]}, {"method": "POST", "path": "/v1/search", "query": {"page": "2"},
                                "body": {"type": "jsonEqual", "value": {"q": "books"}}}),
    ({"match_on": ["path"]}, {"path": "/v1/search"}),
    ({"match_on": ["path", "query"], "ignore_query": ["page", "cb"]}, {"path": "/v1/search"}),
    ({"match_on": ["method", "path", "body"]}, {"method": "POST", "path": "/v1/search",
                                                "body": {"type": "jsonEqual", "value": {"q": "books"}}}),
    ({"match_on": ["path"], "path": "/replayed"}, {"path": "/replayed"}),
], ids=["default", "ignore-query", "path-only", "query-all-ignored", "no-query", "path-override"])
def test_stream_matcher_options(options: dict[str, Any], expected: dict[str, Any]) -> None:
    """SSE requests match on method, path, query (less ``ignoreQuery`` and redacted values) and body;
    ``matchOn`` keeps only the fields it names."""
    assert matchers(sse_recording(stream_events(1), connections=[QUERIED]), **options) == [expected]


def test_convert_options_are_validated() -> None:
    with pytest.raises(ValueError, match=r"ignoreBody\[1\]"):
        ConvertOptions(ignore_body=["$.ok", "user"])
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"matchOn": ["path", "headers"]}, ConvertOptions)
    assert msgspec.convert({"matchOn": ["path"], "ignoreQuery": ["cb"], "ignoreBody": ["$.user"]},
                           ConvertOptions) == ConvertOptions(match_on=["path"], ignore_query=["cb"],
                                                             ignore_body=["$.user"])


# --- (a) SSE: the recorded response ----------------------------------------------------------------


def test_recorded_sse_response_headers_are_replayed_without_framing_headers() -> None:
    headers = {"Content-Type": "text/event-stream; charset=utf-8", "X-Request-Id": "req-42",
               "Cache-Control": "no-cache", "Content-Length": "512", "Transfer-Encoding": "chunked",
               "Date": "Mon, 15 Jan 2024 10:30:00 GMT", "Connection": "keep-alive", "Content-Encoding": "gzip"}
    connections = [record(1, 0, "/events", status=201, response_headers=headers), record(2, 0, "/events", status=503)]
    document, _ = loaded_all(sse_recording(stream_events(2), connections=connections, status=200))
    first, second = (raw["http"]["sse"] for raw in document["mocks"])
    assert first["headers"] == {"Content-Type": "text/event-stream; charset=utf-8", "X-Request-Id": "req-42",
                                "Cache-Control": "no-cache"}
    assert first["statusCode"] == 201  # the connection's own status, not the section's
    assert second["statusCode"] == 503
    assert "headers" not in second


def test_the_sections_response_is_the_first_connections_in_older_recordings() -> None:
    recording = sse_recording(stream_events(2), connections=[record(1, 0, "/events"), record(2, 0, "/events")],
                              status=202)
    assert isinstance(recording.sse, SseSection)
    recording.sse.headers = {"Content-Type": "text/event-stream", "X-Old": "yes", "Date": "then"}
    document, _ = loaded_all(recording)
    first, second = (raw["http"]["sse"] for raw in document["mocks"])
    assert (first["statusCode"], first["headers"]) == (202, {"Content-Type": "text/event-stream", "X-Old": "yes"})
    assert (second.get("statusCode", 200), second.get("headers")) == (200, None)


@pytest.mark.parametrize(("fields", "written"), [
    ({"type": "message", "data": "plain"}, {"data": "plain"}),
    ({"type": "message", "data": "said so", "event_line": True}, {"type": "message", "data": "said so"}),
    ({"type": "update", "data": "typed"}, {"type": "update", "data": "typed"}),
    ({"type": "update", "data": "typed", "event_line": True}, {"type": "update", "data": "typed"}),
    ({"data": "no type at all"}, {"data": "no type at all"}),
    ({"comment": "keepalive"}, {"comment": "keepalive"}),
], ids=["data-only-block", "event-message-line", "named", "named-with-flag", "untyped", "comment"])
def test_an_event_line_is_written_back_only_where_it_was(fields: dict[str, Any], written: dict[str, Any]) -> None:
    """A data-only block reads ``type: "message"`` in the recording but had no ``event:`` line: the mock
    writes none; a block that said ``event: message`` (``eventLine: true``) keeps it."""
    document, mock = loaded(sse_recording([sse_event(10, **fields)]))
    assert sse_block(document)["events"] == [written]
    assert isinstance(mock, HttpMock) and mock.http is not None and mock.http.sse is not None
    assert mock.http.sse.events[0].type == written.get("type")


# --- (a) HTTP recordings ----------------------------------------------------------------------------


def exchange(number: int, request: HttpRequestRecord, response: HttpResponseRecord, at: int = 0,
             took: int = 0) -> HttpExchange:
    return HttpExchange(request=request, response=response, timestamp="2024-01-15T10:30:00.000000Z",
                        relative_ms=at, duration_ms=took, connection=number)


def http_recording(exchanges: list[HttpExchange]) -> Recording:
    return Recording(id=RECORDING_ID, name="api", protocol="http", status="complete",
                     start_time="2024-01-15T10:30:00.000000Z", metadata=Metadata(path="/api/*"),
                     http=HttpSection(exchanges=exchanges))


API_EXCHANGES = [
    exchange(1, HttpRequestRecord(method="POST", path="/api/items", query={"dry": "1", "cb": "9"},
                                  headers={"Content-Type": "application/json"}, body='{"name": "lamp", "n": 2}'),
             HttpResponseRecord(status=201, headers={"Content-Type": "application/json", "Location": "/api/items/7",
                                                     "Content-Length": "8", "Date": "then", "Content-Encoding": "gzip",
                                                     "Transfer-Encoding": "chunked"}, body='{"id":7}'), 10, 3),
    exchange(2, HttpRequestRecord(method="GET", path="/api/items/7/photo"),
             HttpResponseRecord(status=200, headers={"Content-Type": "image/png"}, body=b64(b"\x89PNG\xff\x00"),
                                body_encoding="base64"), 40, 7000),
    exchange(3, HttpRequestRecord(method="GET", path="/api/health"), HttpResponseRecord(status=204), 60, 40),
    exchange(4, HttpRequestRecord(method="GET", path="/api/health"), HttpResponseRecord(status=503, body="down"), 90),
]


def test_an_http_recording_converts_to_http_mocks_answering_the_recorded_responses() -> None:
    document, mocks = loaded_all(http_recording(API_EXCHANGES))
    raw = document["mocks"]
    assert [item["type"] for item in raw] == ["http"] * 4
    assert [item["id"] for item in raw] == [f"{RECORDING_ID}-{number}" for number in (1, 2, 3, 4)]
    assert [item["name"] for item in raw] == [f"api #{number}" for number in (1, 2, 3, 4)]
    assert [item["http"]["matcher"] for item in raw] == [
        {"method": "POST", "path": "/api/items", "query": {"dry": "1", "cb": "9"},
         "body": {"type": "jsonEqual", "value": {"name": "lamp", "n": 2}}},
        {"method": "GET", "path": "/api/items/7/photo"},
        {"method": "GET", "path": "/api/health"},
        {"method": "GET", "path": "/api/health"},
    ]
    assert [item["http"]["response"] for item in raw] == [
        {"statusCode": 201, "headers": {"Content-Type": "application/json", "Location": "/api/items/7"},
         "body": '{"id":7}', "delayMs": 3},
        {"headers": {"Content-Type": "image/png"}, "body": b64(b"\x89PNG\xff\x00"), "bodyEncoding": "base64",
         "delayMs": 7000},
        {"statusCode": 204, "delayMs": 40},
        {"statusCode": 503, "body": "down"},
    ]
    assert [mock.times for mock in mocks] == [None, None, 1, None]  # the health check: up, then down


def test_http_delays_follow_simplify_timing_and_options_apply() -> None:
    document, _ = loaded_all(http_recording(API_EXCHANGES), simplify_timing=True, ignore_query=["cb"])
    raw = document["mocks"]
    assert [item["http"]["response"].get("delayMs", 0) for item in raw] == [0, 5000, 40, 0]
    assert raw[0]["http"]["matcher"]["query"] == {"dry": "1"}
    (only,) = matchers(http_recording(API_EXCHANGES), connection=1, match_on=["method", "path"])
    assert only == {"method": "POST", "path": "/api/items"}


def test_a_cut_http_request_body_is_not_compared() -> None:
    cut = exchange(1, HttpRequestRecord(method="PUT", path="/api/blob", body="x" * 64, body_truncated=True),
                   HttpResponseRecord(status=200))
    assert matchers(http_recording([cut])) == [{"method": "PUT", "path": "/api/blob"}]


def test_an_empty_http_recording_is_nothing_to_convert() -> None:
    with pytest.raises(NothingToConvert):
        convert(http_recording([]))
    with pytest.raises(NoSuchConnection, match=r"has 4 connection\(s\) \(1-4\); there is no connection 5"):
        convert(http_recording(API_EXCHANGES), ConvertOptions(connection=5))


# --- (a) property: whatever the recording, the document loads ------------------------------------

CLOSE_CODES = [1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999]
line_free = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=20)
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["{{now}}", "{{message}}", '{"a": 1}', "\r\n", ""])


@st.composite
def ws_frames(draw: st.DrawFn) -> list[Frame]:
    count = draw(st.integers(0, 14))
    frames: list[Frame] = []
    at = draw(st.integers(0, 50))
    for _ in range(count):
        at += draw(st.integers(0, 8000) | st.integers(0, 30))
        direction = draw(st.sampled_from(["c2s", "s2c"]))
        kind = draw(st.sampled_from(["text", "text", "binary", "ping", "pong", "close"]))
        connection = draw(st.integers(1, 3))
        if kind == "text":
            frames.append(frame(direction, kind, draw(any_text), at, connection))
        elif kind == "close":
            code = draw(st.sampled_from(CLOSE_CODES))
            reason = "" if code == 1005 else draw(st.text(max_size=30).filter(lambda r: len(r.encode()) <= 123))
            frames.append(frame(direction, kind, at=at, connection=connection, code=code, reason=reason))
        else:
            frames.append(frame(direction, kind, draw(st.binary(max_size=125 if kind != "binary" else 300)),
                                at, connection))
    return frames


def simplifies(options: dict[str, Any]) -> bool:
    """Whether the options clamp delays: ``simplify_timing`` as given, else implied by either bound."""
    return bool(options.get("simplify_timing", "min_delay" in options or "max_delay" in options))


def conversion_options() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "simplify_timing": st.booleans(),
        "min_delay": st.integers(0, 100),
        "max_delay": st.integers(100, 10_000),
        "include_client_messages": st.booleans(),
        "strict_matching": st.booleans(),
        "connection": st.integers(1, 3),
        "path": st.sampled_from(["/replayed", "/ws/other/path"]),
    })


def server_offsets(steps: list[Any], opened_ms: int) -> list[float]:
    """When each send goes out, counting delays (and waits) from ``opened_ms``."""
    clock, offsets = float(opened_ms), []
    for step in steps:
        if isinstance(step, SendStep):
            clock += ms(step.message.delay)
            offsets.append(clock)
        elif isinstance(step, WaitStep):
            clock += ms(step.duration)
    return offsets


def reference_sends(frames: list[Frame]) -> list[Frame]:
    """The server messages a scenario must send: up to the server's own close (one that answers the
    client's close is no step and ends nothing)."""
    sends, client_closed = [], False
    for item in frames:
        if item.direction == "c2s":
            client_closed = client_closed or item.type == "close"
        elif item.type in ("text", "binary"):
            sends.append(item)
        elif item.type == "close" and not client_closed:
            break
    return sends


def reference_has_steps(frames: list[Frame], include_client_messages: bool) -> bool:
    client_closed = False
    for item in frames:
        if item.direction == "c2s":
            if item.type in ("text", "binary") and include_client_messages:
                return True
            client_closed = client_closed or item.type == "close"
        elif item.type in ("text", "binary", "ping") or (item.type == "close" and not client_closed):
            return True
    return False


def expected_times(keys: list[Any]) -> list[int | None]:
    """``times`` of mocks converted in order whose matchers are ``keys``: 1 for each mock that a later
    one with the same matcher follows, none for the last of each."""
    return [1 if key in keys[index + 1:] else None for index, key in enumerate(keys)]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=ws_frames(), options=conversion_options(), subprotocol=st.none() | st.sampled_from(["chat.v1", "mqtt"]),
       opened_at=st.lists(st.integers(0, 60), min_size=3, max_size=3))
def test_any_websocket_recording_converts_to_a_loadable_config(frames: list[Frame], options: dict[str, Any],
                                                               subprotocol: str | None, opened_at: list[int]) -> None:
    """Whatever the frames and options, the document loads (or there was nothing to convert), with one
    mock, of a unique id, for each connection with something to reproduce (or the one asked for), in
    order; each sends its connection's server messages in order with templating off; simplified delays
    obey their bounds; on timing alone the delays add up to the recorded offsets; and mocks on one path
    with one subprotocol are a sequence."""
    include = options.get("include_client_messages", True)
    by_connection = {number: [f for f in frames if f.connection == number] for number in (1, 2, 3)}
    connections = [opened(number, min([at] + [f.relative_ms for f in by_connection[number]]), f"/ws/{number}")
                   for number, at in zip((1, 2, 3), opened_at)]
    recording = ws_recording(frames, connections=connections, path="/ws/*", subprotocol=subprotocol)
    wanted = options.get("connection")
    reproducible = [number for number in ([wanted] if wanted else [1, 2, 3])
                    if reference_has_steps(by_connection[number], include)]
    try:
        document, mocks = loaded_all(recording, **options)
    except NothingToConvert:
        assert reproducible == [], "nothing_to_convert, but there was something"
        return
    assert [converted_connection(mock) for mock in mocks] == reproducible
    low, high = options.get("min_delay", 10), options.get("max_delay", 5000)
    for raw, mock in zip(document["mocks"], mocks):
        number = converted_connection(mock)
        assert isinstance(mock, WebSocketMock) and mock.websocket is not None
        assert mock.websocket.scenario is not None
        assert raw["websocket"]["path"] == options.get("path", f"/ws/{number}")
        assert mock.websocket.subprotocols == ([subprotocol] if subprotocol and number == 1 else [])
        assert mock.websocket.require_subprotocol == bool(mock.websocket.subprotocols)
        assert mock.websocket.query == {}
        steps = mock.websocket.scenario.steps
        assert steps, "a converted scenario with no steps"
        for step in steps:
            if isinstance(step, SendStep):
                assert step.message.template is False
            delay = ms(step.message.delay if isinstance(step, SendStep) else
                       step.duration if isinstance(step, WaitStep) else
                       step.delay if isinstance(step, CloseStep) else None)
            if simplifies(options):
                assert delay == 0 or low <= delay <= high, (delay, low, high)
        sends = reference_sends(by_connection[number])
        sent = [s for s in steps if isinstance(s, SendStep)]
        assert [(s.message.type, s.message.value) for s in sent] == [(f.type, f.data) for f in sends]
        if not simplifies(options) and not include:
            # On timing alone, the delays add up to the recorded offsets (from the connection's opening).
            opened_ms = connections[number - 1].relative_ms
            assert server_offsets(steps, opened_ms) == pytest.approx([float(f.relative_ms) for f in sends])
    keys = [(raw["websocket"]["path"], mock.websocket.subprotocols)  # type: ignore[union-attr]
            for raw, mock in zip(document["mocks"], mocks)]
    assert [mock.times for mock in mocks] == expected_times(keys)


@st.composite
def sse_events(draw: st.DrawFn) -> list[SseEvent]:
    events: list[SseEvent] = []
    at = draw(st.integers(0, 50))
    for _ in range(draw(st.integers(0, 10))):
        at += draw(st.integers(0, 8000) | st.integers(0, 30))
        fields = draw(st.fixed_dictionaries({}, optional={
            "type": line_free.filter(bool) | st.just("message"),
            "data": st.text(st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), max_size=40),
            "id": line_free, "retry": st.integers(0, 100_000), "comment": line_free, "event_line": st.just(True)}))
        events.append(sse_event(at, connection=draw(st.integers(1, 2)), **fields))
    return events


def written_event(event: SseEvent) -> dict[str, Any]:
    """An SSE event as the converted mock must hold it: the fields it had, and its type only when the
    block had an ``event:`` line (a data block without one reads ``message``, ``eventLine`` unset)."""
    fields = {key: value for key, value in msgspec.to_builtins(event).items()
              if key in ("type", "data", "id", "retry", "comment")}
    if fields.get("type") == "message" and event.event_line is not True:
        del fields["type"]
    return fields


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=sse_events(), options=conversion_options(), method=st.sampled_from(["GET", "POST"]),
       status=st.none() | st.sampled_from([200, 201, 404, 503]),
       match_on=st.none() | st.lists(st.sampled_from(["method", "path", "query", "body", "subprotocol"]), unique=True))
def test_any_sse_recording_converts_to_a_loadable_config(events: list[SseEvent], options: dict[str, Any],
                                                         method: str, status: int | None,
                                                         match_on: list[str] | None) -> None:
    """Two streams on one path, the first as recorded before connections kept their own request (its
    method is the section's), the second with its own: each with events is a mock of a unique id holding
    its events and gaps; the two are a sequence; a third connection is no such connection."""
    second = opened(2, 0, "/events")
    second.method = method
    recording = sse_recording(events, connections=[opened(1, 0, "/events"), second], request=SseRequest(method=method),
                              status=status)
    if match_on is not None:
        options = {**options, "match_on": match_on}
    wanted = options.get("connection")
    if wanted == 3:
        with pytest.raises(NoSuchConnection, match="has 2 connection"):
            convert(recording, ConvertOptions(**options))
        return
    with_events = [number for number in ([wanted] if wanted else [1, 2]) if any(e.connection == number for e in events)]
    try:
        document, mocks = loaded_all(recording, **options)
    except NothingToConvert:
        assert with_events == []
        return
    assert [converted_connection(mock) for mock in mocks] == with_events
    for raw, mock in zip(document["mocks"], mocks):
        chosen = [e for e in events if e.connection == converted_connection(mock)]
        matched_method = {"method": method} if match_on is None or "method" in match_on else {}
        assert raw["http"]["matcher"] == {**matched_method, "path": options.get("path", "/events")}
        sse = raw["http"]["sse"]
        assert sse["events"] == [written_event(event) for event in chosen]
        assert sse.get("statusCode", 200) == (status or 200 if converted_connection(mock) == 1 else 200)
        delays = sse.get("timing", {}).get("perEventDelays", [])
        assert len(delays) == len(chosen)
        if not simplifies(options):
            assert sum(delays) == chosen[-1].relative_ms
    assert [mock.times for mock in mocks] == ([1, None] if len(mocks) == 2 else [None])
