"""Unit tests of ``mockd.playback.plan.plan``: which frames a replay sends, and when. No sockets.

Contract: docs/replay.md, "Replay through the admin API". The plan is built on hand-made
:class:`mockd.recording.format.Recording` models, so every relative time below is exact:

* pure mode: one ``send`` step per server frame (text, binary, ping, and a close the server started),
  at ``offset_ms = (relativeMs - the connection's opening) * timingScale``;
* never a pong, a client frame, or the server's answer to a close the client started;
* synchronized mode: the client's text and binary frames become ``expect`` steps, and every step
  carries ``gap_ms``, the scaled time since the previous step (the first one: since the opening);
* SSE recordings give one ``send`` per event and refuse synchronized mode (``ReplayError``);
* ``connection`` picks a captured connection; by default the first one with frames;
* a pure-mode wait sleeps to just short of its deadline (more than the kernel's timer slack) and
  yields without sleeping for the last millisecond (:func:`mockd.stream.clock.nap_before`).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockd.playback.errors import ReplayError
from mockd.playback.plan import ReplayOptions, Step, plan
from mockd.recording.format import ConnectionRecord, Frame, Metadata, Recording, SseEvent, SseSection, WebSocketSection
from mockd.stream.clock import SLACK_FRACTION, nap_before

Direction = Literal["c2s", "s2c"]
FrameType = Literal["text", "binary", "ping", "pong", "close"]
Mode = Literal["pure", "synchronized", "triggered"]
MODES: list[Mode] = ["pure", "synchronized", "triggered"]

OPENED_MS = 40  # connection 1 opens 40 ms after the session started


# --- building recordings ----------------------------------------------------------------------------


def frame(direction: Direction, kind: FrameType, data: str, at: int, connection: int = 1,
          code: int | None = None) -> Frame:
    """A frame as the recorder writes it: binary, ping and pong payloads in base64, close with its code."""
    if kind in ("binary", "ping", "pong"):
        return Frame(direction=direction, type=kind, data=base64.b64encode(data.encode()).decode(),
                     timestamp="", relative_ms=at, connection=connection, encoding="base64")
    if kind == "close":
        return Frame(direction=direction, type=kind, data=data, timestamp="", relative_ms=at, connection=connection,
                     close_code=code if code is not None else 1000, close_reason=data)
    return Frame(direction=direction, type=kind, data=data, timestamp="", relative_ms=at, connection=connection)


def opened(connection: int, at: int) -> ConnectionRecord:
    return ConnectionRecord(connection=connection, opened_at="", relative_ms=at, origin="mock", path="/ws")


def ws_recording(frames: list[Frame], connections: list[ConnectionRecord] | None = None) -> Recording:
    return Recording(id="01HXYZ123456789ABCDEFGHJKM", name="unit", protocol="websocket", status="complete",
                     start_time="2024-01-15T10:30:00.000000Z", metadata=Metadata(path="/ws"),
                     websocket=WebSocketSection(subprotocol="chat.v1", frames=frames),
                     connections=connections if connections is not None else [opened(1, OPENED_MS)])


def sse_recording(events: list[SseEvent], opened_at: int = OPENED_MS) -> Recording:
    return Recording(id="01HXYZ123456789ABCDEFGHJKN", name="unit", protocol="sse", status="complete",
                     start_time="2024-01-15T10:30:00.000000Z", metadata=Metadata(path="/events", method="GET"),
                     sse=SseSection(events=events, status=200), connections=[opened(1, opened_at)])


def options(**fields: Any) -> ReplayOptions:
    """Options as the API builds them (camelCase keys through msgspec, validation included)."""
    return msgspec.convert(fields, ReplayOptions)


# A chat: the server greets, the client joins, the server answers, pings, gets a pong, and closes
# with 4000 "done"; the client then answers the close. Times are relativeMs from the session's start.
CHAT: list[Frame] = [
    frame("s2c", "text", '{"type":"welcome"}', 100),
    frame("s2c", "binary", "\x00\x01bin", 150),
    frame("c2s", "text", '{"type":"join"}', 250),
    frame("c2s", "ping", "client-ping", 260),
    frame("s2c", "pong", "client-ping", 261),
    frame("s2c", "text", '{"type":"joined"}', 300),
    frame("s2c", "ping", "hi", 320),
    frame("c2s", "pong", "hi", 322),
    frame("c2s", "binary", "\x07", 400),
    frame("s2c", "text", "bye", 450),
    frame("s2c", "close", "done", 500, code=4000),
    frame("c2s", "close", "done", 502, code=4000),
]
SERVER_FRAMES = [CHAT[0], CHAT[1], CHAT[5], CHAT[6], CHAT[9], CHAT[10]]


def summary(steps: list[Step]) -> list[tuple[str, str, str, str]]:
    items: list[tuple[str, str, str, str]] = []
    for step in steps:
        assert isinstance(step.item, Frame)
        items.append((step.kind, step.item.direction, step.item.type, step.item.data))
    return items


# --- pure mode --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0, 0.0])
def test_pure_mode_sends_server_frames_at_their_offset_from_the_opening_times_the_scale(scale: float) -> None:
    steps = plan(ws_recording(CHAT), options(mode="pure", timingScale=scale))
    assert [step.item for step in steps] == SERVER_FRAMES
    assert all(step.kind == "send" for step in steps)
    assert [step.offset_ms for step in steps] == [
        pytest.approx((item.relative_ms - OPENED_MS) * scale) for item in SERVER_FRAMES]


def test_half_scale_halves_and_double_scale_doubles_every_offset() -> None:
    recording = ws_recording(CHAT)
    normal = [step.offset_ms for step in plan(recording, options())]
    assert [step.offset_ms for step in plan(recording, options(timingScale=0.5))] == [
        pytest.approx(offset / 2) for offset in normal]
    assert [step.offset_ms for step in plan(recording, options(timingScale=2.0))] == [
        pytest.approx(offset * 2) for offset in normal]
    assert normal == [60, 110, 260, 280, 410, 460]


def test_timing_scale_zero_puts_every_step_at_zero() -> None:
    steps = plan(ws_recording(CHAT), options(mode="synchronized", timingScale=0))
    assert steps and all(step.offset_ms == 0 and step.gap_ms == 0 for step in steps)


def test_the_default_options_are_pure_at_scale_one() -> None:
    default = ReplayOptions()
    assert (default.mode, default.timing_scale, default.strict_matching, default.timeout,
            default.auto_advance_on_connect, default.path, default.connection) == (
        "pure", 1.0, False, 30_000, False, None, None)
    assert plan(ws_recording(CHAT), default) == plan(ws_recording(CHAT), options(mode="pure", timingScale=1.0))


@pytest.mark.parametrize("mode", ["pure", "triggered"])
def test_pongs_client_frames_and_client_pings_are_never_sent(mode: Mode) -> None:
    steps = plan(ws_recording(CHAT), options(mode=mode))
    kinds = {(step.item.direction, step.item.type) for step in steps if isinstance(step.item, Frame)}
    assert kinds == {("s2c", "text"), ("s2c", "binary"), ("s2c", "ping"), ("s2c", "close")}


def test_a_server_initiated_close_is_sent_with_its_code_and_ends_the_plan() -> None:
    frames = [frame("s2c", "text", "a", 50), frame("s2c", "close", "going", 60, code=4001),
              frame("s2c", "text", "never", 70)]
    steps = plan(ws_recording(frames), options())
    last = steps[-1].item
    assert isinstance(last, Frame)
    assert (last.type, last.close_code, last.close_reason) == ("close", 4001, "going")
    assert [step.item for step in steps] == frames[:2]


def test_the_servers_answer_to_a_client_close_is_not_a_step() -> None:
    frames = [frame("s2c", "text", "hi", 60), frame("c2s", "close", "leaving", 90, code=1000),
              frame("s2c", "close", "leaving", 91, code=1000)]
    for mode in MODES:
        steps = plan(ws_recording(frames), options(mode=mode))
        assert [step.item for step in steps] == frames[:1], mode


# --- synchronized mode ------------------------------------------------------------------------------


def test_synchronized_mode_interleaves_expect_steps_with_the_gap_since_the_previous_step() -> None:
    steps = plan(ws_recording(CHAT), options(mode="synchronized"))
    assert summary(steps) == [
        ("send", "s2c", "text", '{"type":"welcome"}'),
        ("send", "s2c", "binary", CHAT[1].data),
        ("expect", "c2s", "text", '{"type":"join"}'),
        ("send", "s2c", "text", '{"type":"joined"}'),
        ("send", "s2c", "ping", CHAT[6].data),
        ("expect", "c2s", "binary", CHAT[8].data),
        ("send", "s2c", "text", "bye"),
        ("send", "s2c", "close", "done"),
    ]
    # the first gap runs from the opening (40); skipped frames (client ping, pong) do not restart it
    assert [step.gap_ms for step in steps] == [60, 50, 100, 50, 20, 80, 50, 50]


def test_synchronized_gaps_are_scaled() -> None:
    normal = [step.gap_ms for step in plan(ws_recording(CHAT), options(mode="synchronized"))]
    slow = [step.gap_ms for step in plan(ws_recording(CHAT), options(mode="synchronized", timingScale=2.0))]
    assert slow == [pytest.approx(gap * 2) for gap in normal]


@pytest.mark.parametrize("mode", ["pure", "triggered"])
def test_only_synchronized_mode_has_expect_steps(mode: Mode) -> None:
    assert all(step.kind == "send" for step in plan(ws_recording(CHAT), options(mode=mode)))


def test_triggered_mode_sends_the_same_frames_as_pure_mode() -> None:
    pure = plan(ws_recording(CHAT), options(mode="pure"))
    triggered = plan(ws_recording(CHAT), options(mode="triggered"))
    assert [step.item for step in triggered] == [step.item for step in pure]


# --- SSE --------------------------------------------------------------------------------------------

EVENTS = [
    SseEvent(type="greet", data="hello", id="1", relative_ms=50),
    SseEvent(comment="keepalive", relative_ms=70),
    SseEvent(retry=2500, relative_ms=90),
    SseEvent(type="message", data="line1\nline2", relative_ms=200),
]


@pytest.mark.parametrize("mode", ["pure", "triggered"])
@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0, 0.0])
def test_an_sse_recording_gives_one_send_per_event(mode: Mode, scale: float) -> None:
    steps = plan(sse_recording(EVENTS, opened_at=30), options(mode=mode, timingScale=scale))
    assert [step.item for step in steps] == EVENTS
    assert all(step.kind == "send" for step in steps)
    assert [step.offset_ms for step in steps] == [pytest.approx((event.relative_ms - 30) * scale) for event in EVENTS]
    assert [step.gap_ms for step in steps] == [pytest.approx(gap * scale) for gap in (20, 20, 20, 110)]


def test_synchronized_mode_refuses_an_sse_recording() -> None:
    with pytest.raises(ReplayError):
        plan(sse_recording(EVENTS), options(mode="synchronized"))


# --- which connection -------------------------------------------------------------------------------

TWO_CONNECTIONS = [
    frame("s2c", "text", "one-a", 100, connection=1),
    frame("s2c", "text", "two-a", 130, connection=2),
    frame("s2c", "text", "one-b", 150, connection=1),
    frame("c2s", "text", "two-client", 190, connection=2),
    frame("s2c", "text", "two-b", 220, connection=2),
]


def test_the_first_connection_with_frames_is_replayed_by_default() -> None:
    steps = plan(ws_recording(TWO_CONNECTIONS, [opened(1, 20), opened(2, 110)]), options())
    assert [step.item.data for step in steps] == ["one-a", "one-b"]
    assert [step.offset_ms for step in steps] == [80, 130]


def test_a_connection_without_frames_is_not_the_default() -> None:
    # connection 1 opened and closed without a frame; connection 3 is the first one with frames
    frames = [frame("s2c", "text", "three", 300, connection=3)]
    steps = plan(ws_recording(frames, [opened(1, 10), opened(3, 250)]), options())
    assert [(step.item.data, step.offset_ms) for step in steps] == [("three", 50)]


def test_connection_option_picks_that_connection_with_offsets_from_its_own_opening() -> None:
    recording = ws_recording(TWO_CONNECTIONS, [opened(1, 20), opened(2, 110)])
    steps = plan(recording, options(mode="synchronized", connection=2))
    assert [(step.kind, step.item.data) for step in steps] == [
        ("send", "two-a"), ("expect", "two-client"), ("send", "two-b")]
    assert [step.offset_ms for step in steps] == [20, 80, 110]
    assert [step.gap_ms for step in steps] == [20, 60, 30]
    # each step knows where its entry is among all the recording's (what the dashboard highlights)
    assert [recording.entries()[step.position] for step in steps] == [step.item for step in steps]
    assert [step.position for step in steps] == sorted({step.position for step in steps})


def test_an_unknown_connection_is_refused() -> None:
    with pytest.raises(ReplayError):
        plan(ws_recording(TWO_CONNECTIONS, [opened(1, 20), opened(2, 110)]), options(connection=7))


@pytest.mark.parametrize("recording", [ws_recording([]), sse_recording([])], ids=["websocket", "sse"])
def test_a_recording_without_frames_cannot_be_replayed(recording: Recording) -> None:
    with pytest.raises(ReplayError):
        plan(recording, options(mode="pure"))


# --- options validation (what the API turns into 400) -----------------------------------------------


@pytest.mark.parametrize("fields", [
    {"mode": "bogus"},
    {"timingScale": -0.5},
    {"timeout": 0},
    {"timingScale": "fast"},
    {"unknownOption": True},
    {"path": "no-slash"},
], ids=["bad-mode", "negative-scale", "zero-timeout", "scale-not-a-number", "unknown-option", "relative-path"])
def test_invalid_options_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(fields, ReplayOptions)


# --- properties -------------------------------------------------------------------------------------

FRAME_KINDS: list[tuple[Direction, FrameType]] = [
    ("s2c", "text"), ("s2c", "binary"), ("s2c", "ping"), ("s2c", "pong"),
    ("c2s", "text"), ("c2s", "binary"), ("c2s", "ping"), ("c2s", "pong"),
]


@st.composite
def chats(draw: st.DrawFn) -> tuple[Recording, int]:
    """A recording of one connection: random frames at non-decreasing times, maybe ending in a close."""
    opened_at = draw(st.integers(0, 5_000))
    gaps = draw(st.lists(st.integers(0, 3_000), min_size=1, max_size=25))
    frames: list[Frame] = []
    at = opened_at
    for index, gap in enumerate(gaps):
        at += gap
        direction, kind = draw(st.sampled_from(FRAME_KINDS))
        frames.append(frame(direction, kind, f"f{index}", at))
    ending = draw(st.sampled_from(["none", "server-close", "client-close"]))
    if ending == "server-close":
        frames.append(frame("s2c", "close", "bye", at + draw(st.integers(0, 100)), code=4000))
    elif ending == "client-close":
        frames.append(frame("c2s", "close", "bye", at + 1, code=1000))
        frames.append(frame("s2c", "close", "bye", at + 2, code=1000))
    return ws_recording(frames, [opened(1, opened_at)]), opened_at


@settings(max_examples=150, deadline=None)
@given(chat=chats(), scale=st.floats(0, 10, allow_nan=False, allow_infinity=False),
       mode=st.sampled_from(MODES))
def test_offsets_are_non_decreasing_and_equal_the_scaled_time_since_the_opening(
        chat: tuple[Recording, int], scale: float, mode: Mode) -> None:
    recording, opened_at = chat
    steps = plan(recording, options(mode=mode, timingScale=scale))
    offsets = [step.offset_ms for step in steps]
    assert offsets == sorted(offsets)
    for step in steps:
        assert step.offset_ms == pytest.approx((step.item.relative_ms - opened_at) * scale)
        assert step.gap_ms >= 0
    # the gaps add up to the offsets: each gap runs from the previous step
    total = 0.0
    for step in steps:
        total += step.gap_ms
        assert total == pytest.approx(step.offset_ms, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(chat=chats(), mode=st.sampled_from(MODES))
def test_the_plan_holds_exactly_the_server_frames_and_in_synchronized_mode_the_client_messages(
        chat: tuple[Recording, int], mode: Mode) -> None:
    recording, _ = chat
    assert isinstance(recording.websocket, WebSocketSection)
    expected: list[tuple[str, Frame]] = []
    for item in recording.websocket.frames:
        if item.direction == "c2s" and item.type == "close":
            break  # whatever follows a client close is the server's answer
        if item.direction == "s2c" and item.type in ("text", "binary", "ping", "close"):
            expected.append(("send", item))
        elif mode == "synchronized" and item.direction == "c2s" and item.type in ("text", "binary"):
            expected.append(("expect", item))
    assert [(step.kind, step.item) for step in plan(recording, options(mode=mode))] == expected


# --- waiting for a deadline (pure) ------------------------------------------------------------------


@given(st.floats(min_value=0, max_value=3600, allow_nan=False))
def test_a_wait_never_sleeps_past_its_deadline_and_leaves_more_than_the_timer_slack(remaining: float) -> None:
    nap = nap_before(remaining)
    assert 0 <= nap < remaining or nap == remaining == 0
    if nap > 0:
        assert remaining - nap >= remaining * SLACK_FRACTION * 0.999


def test_the_last_millisecond_is_spent_yielding_not_sleeping() -> None:
    assert nap_before(0.0009) == 0
    assert nap_before(0.001) == 0
    assert nap_before(0.003) == pytest.approx(0.002)
    assert nap_before(2.0) == pytest.approx(1.996)  # 0.2 % short of a 2 s gap
