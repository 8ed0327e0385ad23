"""The shapes of one SSE event and the ways between them, on their own. No sockets.

``mockd.stream.events.SseBlock`` is the one wire model; the others are derived from it: the recording
entry (``mockd.recording.format.SseEvent.from_block`` / ``.block()``) and a mock's configured event
(``mockd.serving.mocks.sse.block_from_event`` / ``event_from_block``). Contract: whatever way a block
goes — recorded, replayed, converted to a mock and served — the same lines go on the wire again.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockd.config.model import SseMockEvent
from mockd.recording.format import UNSET, SseEvent, encode_entry, or_none, or_unset
from mockd.serving.mocks.sse import block_from_event, event_from_block
from mockd.stream.events import SseBlock
from mockd.stream.ssewire import encode_block

TIMESTAMP = "2024-01-15T10:30:00.000000Z"
LINE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=8)  # type, id
DATA = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=12)


def fields(block: SseBlock) -> tuple[str | None, str | None, str | None, int | None, str | None]:
    return block.type, block.data, block.id, block.retry, block.comment


@st.composite
def sse_blocks(draw: st.DrawFn) -> SseBlock:
    return SseBlock(type=draw(st.none() | st.sampled_from(["message", ""]) | LINE), data=draw(st.none() | DATA),
                    id=draw(st.none() | LINE), retry=draw(st.none() | st.integers(0, 2**40)),
                    comment=draw(st.none() | DATA))


# --- block <-> recording entry --------------------------------------------------------------------


@given(sse_blocks())
def test_a_recorded_block_gives_the_same_block_back_also_through_the_file(block: SseBlock) -> None:
    event = SseEvent.from_block(block, TIMESTAMP, 42, 3)
    assert fields(event.block()) == fields(block)
    read_back = msgspec.json.decode(encode_entry(event), type=SseEvent)
    assert read_back == event
    assert encode_block(read_back.block()) == encode_block(block)


def test_an_entry_holds_only_the_fields_its_block_had_and_where_it_was_seen() -> None:
    event = SseEvent.from_block(SseBlock(type="t", id="1", retry=0, comment="c", at_ns=5), TIMESTAMP, 42, 3)
    assert encode_entry(event) == (b'{"type":"t","id":"1","retry":0,"comment":"c","timestamp":"2024-01-15T10:30:00'
                                   b'.000000Z","relativeMs":42,"connection":3}')


@pytest.mark.parametrize(("block", "kind", "event_line"), [
    pytest.param(SseBlock(data="d"), "message", UNSET, id="data-without-event-line"),
    pytest.param(SseBlock(type="message", data="d"), "message", True, id="said-event-message"),
    pytest.param(SseBlock(type="message"), "message", True, id="event-message-without-data"),
    pytest.param(SseBlock(comment="keepalive"), UNSET, UNSET, id="comment-only"),
    pytest.param(SseBlock(type="delta", data="d"), "delta", UNSET, id="own-type"),
])
def test_a_data_block_reads_message_and_only_a_said_message_is_marked(block: SseBlock, kind: object,
                                                                       event_line: object) -> None:
    event = SseEvent.from_block(block, TIMESTAMP, 0)
    assert (event.type, event.event_line, event.connection) == (kind, event_line, 1)
    assert event.block().type == block.type  # the replay writes an ``event:`` line only where one came


def test_the_absent_translation_goes_both_ways() -> None:
    assert [or_unset(value) for value in (None, 0, "", "x")] == [UNSET, 0, "", "x"]
    assert [or_none(value) for value in (UNSET, 0, "", "x")] == [None, 0, "", "x"]


# --- block <-> a mock's configured event ----------------------------------------------------------


@given(sse_blocks())
def test_a_block_made_a_mock_event_writes_the_same_block(block: SseBlock) -> None:
    event = event_from_block(block)
    assert isinstance(event.data, (str, type(None)))  # data as the exact string
    assert fields(block_from_event(event)) == fields(block)
    assert msgspec.convert(msgspec.to_builtins(event), SseMockEvent) == event  # as the config file holds it


def test_a_configured_event_writes_its_data_as_json_unless_a_string() -> None:
    block = block_from_event(SseMockEvent(type="update", data={"n": [1, "é"]}, id="7", retry=3000, comment="c",
                                          delay=50))
    assert fields(block) == ("update", '{"n":[1,"é"]}', "7", 3000, "c")
    assert fields(block_from_event(SseMockEvent(data="as is"))) == (None, "as is", None, None, None)


@given(sse_blocks())
def test_a_recorded_block_converted_to_a_mock_goes_on_the_wire_as_it_came(block: SseBlock) -> None:
    recorded = SseEvent.from_block(block, TIMESTAMP, 7)
    assert encode_block(block_from_event(event_from_block(recorded.block()))) == encode_block(block)
