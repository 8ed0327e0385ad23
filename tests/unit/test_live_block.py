"""What the push channel writes for each step of ``Recorder.follow`` (no sockets): a page as ``/frames``
answers it, the end with the status, a keepalive comment — each one SSE block of one data line."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from handmade import frame, sse_event
from mockd.admin.recordings import live_block
from mockd.recording.index import Page
from mockd.stream.ssewire import SseParser, encode_block


def page_of(entries: list[bytes]) -> Page:
    return Page(entries=entries, total=len(entries) + 5, types={"text": len(entries)},
                positions=list(range(7, 7 + len(entries))))


def test_a_websocket_page_is_an_entries_event_holding_the_frames_page() -> None:
    frames = [frame("c2s", "text", "hi <b>"), frame("s2c", "binary", b"\x00\xff")]
    block = live_block("websocket", (7, page_of([msgspec.json.encode(item) for item in frames])))
    assert block.type == "entries"
    assert block.data is not None
    answer = json.loads(block.data)
    assert (answer["offset"], answer["total"], answer["types"]) == (7, 7, {"text": 2})
    assert answer["frames"] == [msgspec.to_builtins(item) for item in frames]


def test_an_sse_page_carries_events() -> None:
    events = [sse_event(0, type="tick", data="1"), sse_event(5, comment="note")]
    block = live_block("sse", (0, page_of([msgspec.json.encode(item) for item in events])))
    assert block.data is not None
    assert [event.get("data") for event in json.loads(block.data)["events"]] == ["1", None]


def test_the_end_carries_the_status_and_quiet_is_a_comment() -> None:
    end = live_block("websocket", "incomplete")
    assert (end.type, end.data) == ("end", '{"status":"incomplete"}')
    quiet = live_block("websocket", None)
    assert (quiet.type, quiet.data, quiet.comment) == (None, None, "keepalive")


@given(st.lists(st.text(), max_size=5))
def test_any_frame_text_stays_one_block_of_one_data_line(texts: list[str]) -> None:
    """Line breaks in recorded data are escaped in the JSON, so no frame can end the block early."""
    frames = [msgspec.json.encode(frame("s2c", "text", text)) for text in texts]
    wire = encode_block(live_block("websocket", (0, page_of(frames))))
    assert wire.count(b"\n\n") == 1
    blocks = SseParser().feed(wire)
    assert len(blocks) == 1
    assert [item["data"] for item in json.loads(blocks[0].data or "")["frames"]] == texts
