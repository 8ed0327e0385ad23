"""Unit tests of ``mockd.serving.mocks.sse``: the wire encoding of a block and the pure event schedule. No sockets.

Encoded blocks are checked by parsing them back with a small parser written here from the WHATWG
"event stream interpretation" rules, so a test states what a browser's EventSource would see.

Timing interpretation (docs/config.md, "SSE mocks", "Timing"): the delay of event *i* — its own
``delay``, else ``perEventDelays[i]`` (``i`` being the event's index in ``events``), else ``fixedDelay``
— is waited before event *i*, the first included; ``initialDelay`` comes before the first event.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockd.config.model import SseConfig, SseMockEvent
from mockd.serving.mocks.sse import block_from_event, encode_block, resume_index, schedule
from mockd.stream.events import SseBlock

from sseblocks import field_line

# --- a WHATWG event-stream parser -----------------------------------------------------------------


@dataclass
class Dispatched:
    type: str
    data: str
    last_event_id: str


@dataclass
class Parsed:
    events: list[Dispatched] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # comment text, one leading space removed
    retries: list[int] = field(default_factory=list)
    field_names: list[str] = field(default_factory=list)  # the name of every non-comment, non-blank line
    last_event_id: str = ""
    pending: bool = False  # a block was begun but never ended by a blank line


def parse_stream(raw: bytes) -> Parsed:
    """https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation"""
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    complete, last = lines[:-1], lines[-1]  # the last piece is not terminated by an end of line
    parsed = Parsed()
    event_type, data, last_id = "", "", ""
    in_block = False
    for line in complete:
        if line == "":
            parsed.last_event_id = last_id
            if data:
                parsed.events.append(Dispatched(event_type or "message", data[:-1] if data.endswith("\n") else data,
                                                last_id))
            event_type, data, in_block = "", "", False
            continue
        in_block = True
        if line.startswith(":"):
            parsed.comments.append(line[2:] if line.startswith(": ") else line[1:])
            continue
        name, value = field_line(line)
        parsed.field_names.append(name)
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            parsed.retries.append(int(value))
    parsed.pending = in_block or last != ""
    return parsed


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def fields_of(raw: bytes) -> list[tuple[str, str]]:
    """(name, value) of every line of one encoded block (comments have the name ``""``); must end in a blank line."""
    text = raw.decode()
    assert text.endswith("\n\n"), raw
    return [field_line(line) for line in text[:-2].split("\n")]


def test_parser_self_check() -> None:
    parsed = parse_stream(b": hi\nevent: e\ndata: a\ndata:b\rid: 7\r\nretry: 10\n\ndata\n\n")
    assert parsed.events == [Dispatched("e", "a\nb", "7"), Dispatched("message", "", "7")]
    assert parsed.comments == ["hi"] and parsed.retries == [10] and not parsed.pending


# --- encode_block ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("block", "wire"), [
    (SseBlock(comment="just a comment"), b": just a comment\n\n"),
    (SseBlock(comment="keepalive"), b": keepalive\n\n"),
    (SseBlock(retry=5000), b"retry: 5000\n\n"),
    (SseBlock(data="hello"), b"data: hello\n\n"),
    (SseBlock(type="ping"), b"event: ping\n\n"),
    (SseBlock(id="42"), b"id: 42\n\n"),
    (SseBlock(data="a\nb"), b"data: a\ndata: b\n\n"),
])
def test_encode_single_field_blocks_exactly(block: SseBlock, wire: bytes) -> None:
    assert encode_block(block) == wire


@pytest.mark.parametrize(("block", "fields"), [
    (SseBlock(type="update", id="1", retry=3000, data='{"n":1}'),
     [("event", "update"), ("id", "1"), ("retry", "3000"), ("data", '{"n":1}')]),
    (SseBlock(type="update", data="x"), [("event", "update"), ("data", "x")]),
    (SseBlock(id="9", data="line one\nline two\n\nline four"),
     [("id", "9"), ("data", "line one"), ("data", "line two"), ("data", ""), ("data", "line four")]),
    (SseBlock(data=""), [("data", "")]),
    (SseBlock(data="trailing\n"), [("data", "trailing"), ("data", "")]),
    (SseBlock(data="\n"), [("data", ""), ("data", "")]),
    (SseBlock(retry=0), [("retry", "0")]),
])
def test_encode_writes_only_the_fields_the_block_has(block: SseBlock, fields: list[tuple[str, str]]) -> None:
    assert fields_of(encode_block(block)) == fields


def test_encode_ends_each_block_with_one_blank_line() -> None:
    wire = encode_block(SseBlock(type="a", data="x")) + encode_block(SseBlock(data="y"))
    parsed = parse_stream(wire)
    assert parsed.events == [Dispatched("a", "x", ""), Dispatched("message", "y", "")]
    assert not parsed.pending


def test_comment_and_data_in_one_block() -> None:
    parsed = parse_stream(encode_block(SseBlock(comment="note", data="payload")))
    assert parsed.comments == ["note"]
    assert parsed.events == [Dispatched("message", "payload", "")]


def test_retry_only_block_dispatches_no_event() -> None:
    parsed = parse_stream(encode_block(SseBlock(retry=2500)))
    assert parsed.events == [] and parsed.retries == [2500] and not parsed.pending


NO_CR = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"))
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)))
LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"))


@settings(deadline=None)  # a noisy shared machine: no per-example time limit
@given(NO_CR)
def test_any_data_without_cr_round_trips_exactly(data: str) -> None:
    parsed = parse_stream(encode_block(SseBlock(data=data)))
    assert parsed.events == [Dispatched("message", data, "")]
    assert not parsed.pending and parsed.comments == []


@settings(deadline=None)  # a noisy shared machine: no per-example time limit
@given(ANY_TEXT)
def test_any_data_round_trips_up_to_line_ending_normalisation(data: str) -> None:
    """An SSE line ends at CRLF, LF or CR: data with CRs must come back with those as LFs, nothing lost."""
    parsed = parse_stream(encode_block(SseBlock(data=data)))
    assert parsed.events == [Dispatched("message", normalise_newlines(data), "")]
    assert not parsed.pending and parsed.comments == []


@pytest.mark.parametrize(("data", "expected"), [
    ("a\rb", "a\nb"),
    ("a\r\nb", "a\nb"),
    ("line\r", "line\n"),
    ("x\rdata: injected", "x\ndata: injected"),
])
def test_carriage_returns_in_data_are_line_breaks(data: str, expected: str) -> None:
    parsed = parse_stream(encode_block(SseBlock(data=data)))
    assert parsed.events == [Dispatched("message", expected, "")]


@settings(deadline=None)  # a noisy shared machine: no per-example time limit
@given(NO_CR)
def test_any_comment_without_cr_stays_a_comment(comment: str) -> None:
    parsed = parse_stream(encode_block(SseBlock(comment=comment)))
    assert parsed.events == [] and parsed.field_names == [] and not parsed.pending
    assert parsed.comments == comment.split("\n")


@pytest.mark.parametrize("comment", ["x\rdata: injected", "x\r\ndata: injected", "a\revent: evil", "a\r\rid: 9"])
def test_carriage_return_in_comment_cannot_inject_fields(comment: str) -> None:
    """A comment line must stay comment lines (``: ...``) whatever line ending it contains."""
    parsed = parse_stream(encode_block(SseBlock(comment=comment)) + b"data: real\n\n")
    assert parsed.field_names == ["data"]
    assert parsed.events == [Dispatched("message", "real", "")]
    assert parsed.comments == normalise_newlines(comment).split("\n")


@settings(deadline=None)  # a noisy shared machine: no per-example time limit
@given(
    event_type=st.none() | LINE,
    event_id=st.none() | LINE.filter(lambda s: "\0" not in s),
    retry=st.none() | st.integers(min_value=0, max_value=2**31),
    data=st.none() | NO_CR,
)
def test_any_block_parses_back_to_its_fields(event_type: str | None, event_id: str | None, retry: int | None,
                                             data: str | None) -> None:
    parsed = parse_stream(encode_block(SseBlock(type=event_type, id=event_id, retry=retry, data=data)))
    expected_id = event_id if event_id is not None else ""
    if data is not None:
        assert parsed.events == [Dispatched(event_type or "message", data, expected_id)]
    else:
        assert parsed.events == []
    assert parsed.last_event_id == expected_id
    assert parsed.retries == ([retry] if retry is not None else [])
    assert parsed.comments == []
    assert not parsed.pending


# --- block_from_event -----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "text"), [
    ({"n": 1, "s": "a b"}, '{"n":1,"s":"a b"}'),
    ({"nested": {"list": [1, 2, {"x": None}]}, "ok": True}, '{"nested":{"list":[1,2,{"x":null}]},"ok":true}'),
    ([1, "two", 3.5], '[1,"two",3.5]'),
    ("already a string", "already a string"),
    ('{"kept": "as is"}', '{"kept": "as is"}'),
    ("", ""),
    ("multi\nline", "multi\nline"),
    (None, None),
])
def test_block_from_event_data(data: Any, text: str | None) -> None:
    assert block_from_event(SseMockEvent(data=data)).data == text


def test_block_from_event_copies_the_fields_it_has() -> None:
    block = block_from_event(SseMockEvent(type="update", data={"n": 1}, id="7", retry=3000, comment="c", delay=50))
    assert (block.type, block.data, block.id, block.retry, block.comment) == ("update", '{"n":1}', "7", 3000, "c")


@pytest.mark.parametrize("event", [
    SseMockEvent(comment="only a comment"),
    SseMockEvent(retry=1000),
    SseMockEvent(id="x"),
    SseMockEvent(type="t"),
    SseMockEvent(data="d"),
])
def test_block_from_event_sets_nothing_else(event: SseMockEvent) -> None:
    block = block_from_event(event)
    have = {name for name in ("type", "data", "id", "retry", "comment") if getattr(block, name) is not None}
    want = {name for name in ("type", "data", "id", "retry", "comment") if getattr(event, name) is not None}
    assert have == want


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=12,
)


@settings(deadline=None)  # a noisy shared machine: no per-example time limit
@given(st.lists(JSON_VALUES, max_size=4) | st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=4))
def test_object_data_is_compact_single_line_json(value: Any) -> None:
    text = block_from_event(SseMockEvent(data=value)).data
    assert text is not None
    assert json.loads(text) == value
    assert "\n" not in text and "\r" not in text  # one data: line on the wire
    parsed = parse_stream(encode_block(block_from_event(SseMockEvent(data=value))))
    assert [json.loads(event.data) for event in parsed.events] == [value]


@pytest.mark.parametrize("value", [{"a": 1, "b": [1, 2]}, [{"x": "y z"}, None], {"k": {"n": [True, False]}}])
def test_object_data_has_no_whitespace_between_tokens(value: Any) -> None:
    assert block_from_event(SseMockEvent(data=value)).data == json.dumps(value, separators=(",", ":"))


# --- resume_index ---------------------------------------------------------------------------------


def sse_config(**raw: Any) -> SseConfig:
    """An SseConfig from config-file (camelCase) fields, validated as the loader does."""
    return msgspec.convert(raw, SseConfig)


RESUME_EVENTS = [{"id": "1", "data": "a"}, {"data": "no id"}, {"id": "2", "data": "b"}, {"id": "3", "data": "c"}]


@pytest.mark.parametrize(("enabled", "last_event_id", "index"), [
    (True, None, 0),
    (True, "", 0),
    (True, "1", 1),
    (True, "2", 3),
    (True, "3", 4),  # the last event: nothing left to send
    (True, "unknown", 0),  # interpretation: an id the mock does not have starts from the beginning
    (False, "2", 0),
    (False, None, 0),
])
def test_resume_index(enabled: bool, last_event_id: str | None, index: int) -> None:
    config = sse_config(events=RESUME_EVENTS, resume={"enabled": enabled})
    assert resume_index(config, last_event_id) == index


# --- schedule -------------------------------------------------------------------------------------


def offsets_and_data(config: SseConfig, first: int = 0, limit: int = 100) -> list[tuple[float, Any]]:
    return [(offset, event.data) for offset, event in itertools.islice(schedule(config, first), limit)]


def ms(*values: float) -> list[float]:
    return [pytest.approx(value / 1000) for value in values]


@pytest.mark.parametrize(("timing", "events", "expected_ms"), [
    ({}, [{"data": 0}, {"data": 1}, {"data": 2}], [0, 0, 0]),
    ({"fixedDelay": 100}, [{"data": 0}, {"data": 1}, {"data": 2}], [100, 200, 300]),
    ({"initialDelay": 500}, [{"data": 0}, {"data": 1}], [500, 500]),
    ({"initialDelay": 500, "fixedDelay": 100, "perEventDelays": [0]}, [{"data": 0}, {"data": 1}, {"data": 2}],
     [500, 600, 700]),
    ({"perEventDelays": [10, 20, 30]}, [{"data": 0}, {"data": 1}, {"data": 2}], [10, 30, 60]),
    ({"fixedDelay": 5, "perEventDelays": [10]}, [{"data": 0}, {"data": 1}, {"data": 2}], [10, 15, 20]),
    ({}, [{"data": 0, "delay": 40}, {"data": 1, "delay": 60}], [40, 100]),
    # precedence: event delay > perEventDelays[i] > fixedDelay
    ({"initialDelay": 100, "fixedDelay": 700, "perEventDelays": [50, 250, 0, 900]},
     [{"data": 0, "delay": 300}, {"data": 1}, {"data": 2}, {"data": 3, "delay": 0}, {"data": 4}],
     [400, 650, 650, 650, 1350]),
])
def test_schedule_offsets(timing: dict[str, Any], events: list[dict[str, Any]], expected_ms: list[float]) -> None:
    result = offsets_and_data(sse_config(events=events, timing=timing))
    assert [data for _, data in result] == list(range(len(events)))
    assert [offset for offset, _ in result] == ms(*expected_ms)


def test_schedule_yields_the_configured_events_in_order() -> None:
    config = sse_config(events=[{"type": "a", "data": 1}, {"comment": "c"}, {"retry": 10}])
    assert [event for _, event in schedule(config)] == list(config.events)


def test_schedule_of_no_events_is_empty() -> None:
    assert list(schedule(sse_config())) == []


@pytest.mark.parametrize(("max_events", "loop", "expected"), [
    (0, False, ["a", "b", "c"]),
    (2, False, ["a", "b"]),
    (3, False, ["a", "b", "c"]),
    (10, False, ["a", "b", "c"]),
    (7, True, ["a", "b", "c", "a", "b", "c", "a"]),
    (1, True, ["a"]),
])
def test_schedule_max_events_and_loop(max_events: int, loop: bool, expected: list[str]) -> None:
    config = sse_config(events=[{"data": "a"}, {"data": "b"}, {"data": "c"}], loop=loop,
                        timing={"fixedDelay": 10}, lifecycle={"maxEvents": max_events})
    result = offsets_and_data(config)
    assert [data for _, data in result] == expected
    assert [offset for offset, _ in result] == ms(*(10 * (i + 1) for i in range(len(expected))))


def test_schedule_loops_endlessly_without_max_events() -> None:
    config = sse_config(events=[{"data": "a"}, {"data": "b"}], loop=True, timing={"fixedDelay": 250})
    result = offsets_and_data(config, limit=1000)
    assert len(result) == 1000
    assert [data for _, data in result[:5]] == ["a", "b", "a", "b", "a"]
    assert result[-1][0] == pytest.approx(250.0)


@pytest.mark.parametrize(("first", "expected"), [(0, ["a", "b", "c"]), (1, ["b", "c"]), (2, ["c"]), (3, [])])
def test_schedule_from_a_resume_point(first: int, expected: list[str]) -> None:
    config = sse_config(events=[{"data": "a"}, {"data": "b"}, {"data": "c"}], timing={"initialDelay": 100})
    result = offsets_and_data(config, first)
    assert [data for _, data in result] == expected
    if result:
        assert result[0][0] == pytest.approx(0.1)  # initialDelay still comes before the first event sent


EVENTS = st.lists(st.builds(dict, data=st.integers(0, 99), delay=st.none() | st.integers(0, 5000))
                  .map(lambda e: {k: v for k, v in e.items() if v is not None}), min_size=1, max_size=8)
TIMING = st.fixed_dictionaries({}, optional={
    "initialDelay": st.integers(0, 5000), "fixedDelay": st.integers(0, 5000),
    "perEventDelays": st.lists(st.integers(0, 5000), max_size=10)})


def expected_schedule(events: list[dict[str, Any]], timing: dict[str, Any], max_events: int, loop: bool,
                      first: int, limit: int) -> list[tuple[float, int]]:
    """The rule of docs/config.md, written out independently: (offset in ms, index into events)."""
    per = timing.get("perEventDelays", [])
    offset = timing.get("initialDelay", 0)
    indexes = itertools.cycle(range(len(events))) if loop else iter(range(len(events)))
    order = itertools.islice(indexes, first, None)
    result: list[tuple[float, int]] = []
    for index in order:
        if (max_events and len(result) >= max_events) or len(result) >= limit:
            break
        own = events[index].get("delay")
        offset += own if own is not None else per[index] if index < len(per) else timing.get("fixedDelay", 0)
        result.append((offset, index))
    return result


@settings(max_examples=200, deadline=None)
@given(events=EVENTS, timing=TIMING, max_events=st.integers(0, 12), loop=st.booleans(), data=st.data())
def test_schedule_property(events: list[dict[str, Any]], timing: dict[str, Any], max_events: int, loop: bool,
                           data: st.DataObject) -> None:
    first = data.draw(st.integers(0, len(events)))
    config = sse_config(events=events, timing=timing, loop=loop, lifecycle={"maxEvents": max_events})
    limit = 40
    got = list(itertools.islice(schedule(config, first), limit))
    want = expected_schedule(events, timing, max_events, loop, first, limit)
    offsets = [offset for offset, _ in got]
    assert offsets == sorted(offsets)  # non-decreasing
    if got:
        assert offsets[0] >= timing.get("initialDelay", 0) / 1000 - 1e-9
    if max_events:
        assert len(got) <= max_events
    if not loop:
        assert len(got) == min(len(events) - first, max_events or len(events))
    assert offsets == [pytest.approx(offset / 1000) for offset, _ in want]
    assert [event for _, event in got] == [config.events[index] for _, index in want]
