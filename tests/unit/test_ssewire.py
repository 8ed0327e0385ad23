"""``mockd.stream.ssewire``: the incremental ``text/event-stream`` parser and ``encode_block``. No sockets.

The parser must accept every framing the WHATWG "event stream interpretation" allows (LF, CRLF and CR
line endings, mixed, split anywhere; a leading UTF-8 BOM; multi-byte characters split across chunks),
and, unlike a browser, hand back every block exactly as it came: a comment-only or retry-only block is
a block, ``id`` is never carried over, ``type`` stays ``None`` without ``event:``, and a block that has
not been ended by a blank line yet is not emitted.

Blocks are compared by ``(type, data, id, retry, comment)``; ``at_ns`` is when the parser saw them.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockd.stream.events import SseBlock, SseDataRun
from mockd.stream.ssewire import SseParser, encode_block

from sseblocks import Fields, block, fields

BOM = "\ufeff".encode()


def parse(*chunks: bytes) -> list[Fields]:
    """Feed ``chunks`` to one parser in order; the fields of every block it emitted."""
    parser = SseParser()
    blocks: list[SseBlock] = []
    for chunk in chunks:
        blocks.extend(parser.feed(chunk))
    return [fields(block) for block in blocks]


def every_split(raw: bytes) -> list[tuple[bytes, bytes]]:
    return [(raw[:cut], raw[cut:]) for cut in range(len(raw) + 1)]


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[index:index + 1] for index in range(len(raw))]


@dataclass
class SseBlockLike:
    """Compares equal to an SseBlock with the same fields, whatever its ``at_ns``."""

    type: str | None = None
    data: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SseBlock) and fields(other) == (self.type, self.data, self.id, self.retry,
                                                               self.comment)


# --- line endings -----------------------------------------------------------------------------------

STREAM_LINES = [": hello", "event: greet", "id: 7", "data: one", "data: two", "", "retry: 1500", "",
                "data: plain", ""]
STREAM_BLOCKS = [block(comment="hello", type="greet", id="7", data="one\ntwo"), block(retry=1500),
                 block(data="plain")]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_each_line_ending_gives_the_same_blocks(ending: str) -> None:
    raw = "".join(line + ending for line in STREAM_LINES).encode()
    assert parse(raw) == STREAM_BLOCKS
    assert parse(*bytewise(raw)) == STREAM_BLOCKS


@pytest.mark.parametrize("endings", [
    ["\n", "\r\n", "\r", "\n", "\r\n", "\r", "\n", "\r\n", "\r", "\r\n"],
    ["\r", "\r", "\r\n", "\r\n", "\n", "\r", "\r\n", "\n", "\r", "\r\n"],
    ["\r\n", "\n", "\n", "\r", "\r", "\r\n", "\r", "\r", "\r\n", "\r"],
], ids=["mixed1", "mixed2", "mixed3"])
def test_mixed_line_endings(endings: list[str]) -> None:
    raw = "".join(line + ending for line, ending in zip(STREAM_LINES, endings, strict=True)).encode()
    assert parse(raw) == STREAM_BLOCKS
    for first, second in every_split(raw):
        assert parse(first, second) == STREAM_BLOCKS, (first, second)


@pytest.mark.parametrize("chunks", [
    [b"data: a\r", b"\n\r\n"],
    [b"data: a\r\n\r", b"\n"],
    [b"data: a\r", b"\n\r", b"\n"],
    [b"data: a\r", b"\n", b"\r", b"\n"],
], ids=["after-field", "after-blank", "both", "every-byte"])
def test_crlf_split_across_chunks_is_one_line_ending(chunks: list[bytes]) -> None:
    """The LF of a CRLF arriving in the next chunk must not count as a second (blank) line."""
    assert parse(*chunks) == [block(data="a")]


def test_crlf_split_before_the_next_block_does_not_end_it_early() -> None:
    assert parse(b"data: a\r\n\r", b"\ndata: b\r", b"\ndata: c\r\n\r\n") == [block(data="a"), block(data="b\nc")]


def test_lone_cr_at_chunk_end_followed_by_a_field_is_a_line_ending() -> None:
    assert parse(b"data: a\r", b"data: b\r", b"\r") == [block(data="a\nb")]


def test_cr_then_lf_in_the_same_chunk_is_one_ending_but_lf_then_cr_is_two() -> None:
    assert parse(b"data: a\r\ndata: b\r\n\r\n") == [block(data="a\nb")]
    assert parse(b"data: a\n\rdata: b\n\n") == [block(data="a"), block(data="b")]


def test_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    """Feeding ``b""`` is a no-op: a pending CR must still swallow the LF that follows it."""
    assert parse(b"data: a\r", b"", b"\ndata: b\r\n\r\n") == [block(data="a\nb")]


# --- BOM and UTF-8 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(len(BOM) + 1))
def test_bom_at_stream_start_is_dropped_even_when_split(cut: int) -> None:
    raw = BOM + b"data: x\n\n"
    assert parse(raw[:cut], raw[cut:]) == [block(data="x")]
    assert parse(*bytewise(raw)) == [block(data="x")]


def test_bom_in_the_first_chunk_with_nothing_else() -> None:
    assert parse(BOM, b"data: x\n\n") == [block(data="x")]


def test_only_one_bom_is_dropped() -> None:
    """A second BOM belongs to the field name, which is then unknown: the line is ignored."""
    assert parse(BOM + BOM + b"data: x\ndata: y\n\n") == [block(data="y")]


def test_bom_later_in_the_stream_is_content() -> None:
    assert parse(b"data: x\n\n", BOM + b"data: y\n\n") == [block(data="x")]
    assert parse("data: \ufeffz\n\n".encode()) == [block(data="\ufeffz")]


MULTIBYTE = "data: é€😀 ü\n\n".encode()


@pytest.mark.parametrize("cut", range(len(MULTIBYTE) + 1))
def test_multibyte_characters_split_across_two_chunks(cut: int) -> None:
    assert parse(MULTIBYTE[:cut], MULTIBYTE[cut:]) == [block(data="é€😀 ü")]


def test_multibyte_characters_fed_byte_by_byte() -> None:
    raw = "event: Ω\r\nid: 日本\r\n: 🎉\r\ndata: ≈\r\n\r\n".encode()
    assert parse(*bytewise(raw)) == [block(type="Ω", id="日本", comment="🎉", data="≈")]


# --- fields -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("wire", "expected"), [
    (b"data: x\n\n", block(data="x")),
    (b"data:x\n\n", block(data="x")),
    (b"data:  x\n\n", block(data=" x")),
    (b"data: x \n\n", block(data="x ")),
    (b"data:\n\n", block(data="")),
    (b"data: \n\n", block(data="")),
    (b"data\n\n", block(data="")),
    (b"data: a\ndata: b\ndata: c\n\n", block(data="a\nb\nc")),
    (b"data: a\ndata:\ndata: c\n\n", block(data="a\n\nc")),
    (b"data\ndata\n\n", block(data="\n")),
    (b"data: a:b: c\n\n", block(data="a:b: c")),
    (b"event: update\ndata: x\n\n", block(type="update", data="x")),
    (b"event:update\n\n", block(type="update")),
    (b"event\ndata: x\n\n", block(type="", data="x")),
    (b"event: a\nevent: b\ndata: x\n\n", block(type="b", data="x")),
    (b"id: 42\ndata: x\n\n", block(id="42", data="x")),
    (b"id:\ndata: x\n\n", block(id="", data="x")),
    (b"id\ndata: x\n\n", block(id="", data="x")),
    (b"id: a\x00b\ndata: x\n\n", block(data="x")),
    (b"id: 1\nid: 2\x00\ndata: x\n\n", block(id="1", data="x")),
    (b"retry: 3000\n\n", block(retry=3000)),
    (b"retry:0\n\n", block(retry=0)),
    (b"retry: 0042\n\n", block(retry=42)),
    (b"retry: 12345678901234567890\n\n", block(retry=12345678901234567890)),
    (b"retry: 1.5\ndata: x\n\n", block(data="x")),
    (b"retry: -1\ndata: x\n\n", block(data="x")),
    (b"retry: 3s\ndata: x\n\n", block(data="x")),
    (b"retry:  5\ndata: x\n\n", block(data="x")),
    (b"retry:\ndata: x\n\n", block(data="x")),
    (b"retry\ndata: x\n\n", block(data="x")),
    ("retry: ١٢\ndata: x\n\n".encode(), block(data="x")),  # Arabic-Indic digits are not ASCII digits
    ("retry: ²\ndata: x\n\n".encode(), block(data="x")),
    (b": text\n\n", block(comment="text")),
    (b":text\n\n", block(comment="text")),
    (b":  text\n\n", block(comment=" text")),
    (b":\n\n", block(comment="")),
    (b": a\n: b\n\n", block(comment="a\nb")),
    (b": data: x\n\n", block(comment="data: x")),
    (b"foo: bar\ndata: x\n\n", block(data="x")),
    (b"Data: x\nEVENT: y\ndata: z\n\n", block(data="z")),
    (b"data : x\ndata: z\n\n", block(data="z")),
    (b"foo\ndata: x\n\n", block(data="x")),
], ids=lambda value: repr(value) if isinstance(value, bytes) else None)
def test_field_lines(wire: bytes, expected: Fields) -> None:
    assert parse(wire) == [expected]
    assert parse(*bytewise(wire)) == [expected]


@pytest.mark.parametrize("wire", [
    b"foo: bar\n\n", b"id: a\x00\n\n", b"retry: x\n\n", b"retry\n\n", b"\n\n\n\n", b"\r\n\r\n", b"\r\r",
    b"unknown\n\n",
], ids=repr)
def test_blocks_with_nothing_kept_are_not_emitted(wire: bytes) -> None:
    assert parse(wire) == []
    assert parse(wire + b"data: after\n\n") == [block(data="after")]


def test_every_block_is_kept_as_it_came() -> None:
    raw = (b": only a comment\n\n"
           b"retry: 2000\n\n"
           b"id: 1\nevent: tick\ndata: a\n\n"
           b"data: b\n\n"  # no id carried over from the block before, no type
           b"id: 2\n\n"
           b"event: bare\n\n")
    assert parse(raw) == [block(comment="only a comment"), block(retry=2000), block(id="1", type="tick", data="a"),
                          block(data="b"), block(id="2"), block(type="bare")]


def test_incomplete_block_waits_for_its_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\n\ndata: b\n") == [SseBlockLike(data="a")]
    assert parser.feed(b"data: c") == []
    assert parser.feed(b"\n") == []
    assert [fields(b) for b in parser.feed(b"\n")] == [block(data="b\nc")]
    assert parser.feed(b"data: d\r") == []


@pytest.mark.parametrize("second", [b"\n", b"\ndata: c\n\n", b"\n\n", b"\nda"])
def test_a_blank_line_opening_the_next_chunk_ends_the_block_the_last_one_left_open(second: bytes) -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\n\ndata: b\n") == [SseBlockLike(data="a")]
    assert [fields(b) for b in parser.feed(second)][:1] == [block(data="b")]


def test_a_one_line_data_block_after_an_open_block_joins_it() -> None:
    parser = SseParser()
    assert parser.feed(b"event: tick\n") == []
    assert [fields(b) for b in parser.feed(b"data: 1\n\ndata: 2\n\n")] == [block(type="tick", data="1"),
                                                                            block(data="2")]


def test_several_blocks_in_one_chunk_come_back_in_order() -> None:
    raw = b"".join(f"data: {n}\n\n".encode() for n in range(50))
    assert parse(raw) == [block(data=str(n)) for n in range(50)]


def test_blocks_carry_a_wall_clock_timestamp() -> None:
    before = time.time_ns()
    (emitted,) = SseParser().feed(b"data: x\n\n")
    assert before <= emitted.at_ns <= time.time_ns()


# --- encode_block -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("given_block", "wire"), [
    (SseBlock(type="t", data="a\nb", id="1", retry=5, comment="c"),
     b": c\nevent: t\nid: 1\nretry: 5\ndata: a\ndata: b\n\n"),
    (SseBlock(comment="keepalive"), b": keepalive\n\n"),
    (SseBlock(retry=0), b"retry: 0\n\n"),
    (SseBlock(data=""), b"data: \n\n"),
    (SseBlock(data="x\n"), b"data: x\ndata: \n\n"),
    (SseBlock(type=""), b"event: \n\n"),
])
def test_encode_block_exact_bytes(given_block: SseBlock, wire: bytes) -> None:
    assert encode_block(given_block) == wire
    assert parse(wire) == [fields(given_block)]


# --- properties -------------------------------------------------------------------------------------

# Characters for field values: everything UTF-8 can carry except CR/LF, weighted towards the awkward ones.
TRICKY = st.sampled_from(["a", " ", ":", "\x00", "\ufeff", "é", "€", "😀", "\t", "\x85", "\u2028", "data"])
CHAR = st.characters(codec="utf-8", exclude_characters="\r\n")
LINE_TEXT = st.lists(st.one_of(TRICKY, CHAR), max_size=8).map("".join)
DATA_TEXT = st.lists(st.one_of(TRICKY, CHAR, st.just("\n")), max_size=10).map("".join)
ID_TEXT = LINE_TEXT.map(lambda text: text.replace("\x00", ""))
RETRY = st.integers(min_value=0, max_value=2**40)


@st.composite
def sse_blocks(draw: st.DrawFn, allow_empty: bool = False) -> SseBlock:
    drawn = SseBlock(type=draw(st.none() | LINE_TEXT), data=draw(st.none() | DATA_TEXT), id=draw(st.none() | ID_TEXT),
                     retry=draw(st.none() | RETRY), comment=draw(st.none() | LINE_TEXT))
    if not allow_empty and fields(drawn) == (None,) * 5:
        drawn.data = draw(DATA_TEXT)
    return drawn


@settings(deadline=None, max_examples=300)
@given(sse_blocks())
def test_property_encode_then_parse_gives_the_block_back(original: SseBlock) -> None:
    wire = encode_block(original)
    assert parse(wire) == [fields(original)]
    assert parse(*bytewise(wire)) == [fields(original)]


# Lines a block may also carry that must change nothing: unknown fields, invalid retries, ids with NUL.
NOISE = st.sampled_from(["foo: bar", "foo", "Data: x", "data : x", "retry: 1.5", "retry: -3", "retry: x1",
                         "retry", "retry:", "retry: ١", "id: a\x00b", "id:\x00", "\ufeffdata: x"])


def _field_line(name: str, value: str, draw: st.DrawFn) -> str:
    """One way of writing ``name: value`` that the standard reads back as exactly ``value``."""
    forms = [f"{name}: {value}"]
    if not value.startswith(" "):
        forms.append(f"{name}:{value}")
    if value == "":
        forms.append(name)
    return draw(st.sampled_from(forms))


def _comment_line(text: str, draw: st.DrawFn) -> str:
    forms = [f": {text}"] + ([f":{text}"] if not text.startswith(" ") else [])
    return draw(st.sampled_from(forms))


@st.composite
def wire_blocks(draw: st.DrawFn) -> tuple[list[str], Fields | None]:
    """The lines of one block in some order and spelling (without its blank line), and what it parses to."""
    drawn = draw(sse_blocks(allow_empty=True))
    comments = None if drawn.comment is None else draw(st.lists(LINE_TEXT, min_size=1, max_size=3))
    sequences: list[list[str]] = []
    if comments is not None:
        drawn.comment = "\n".join(comments)
        sequences.append([_comment_line(text, draw) for text in comments])
    if drawn.data is not None:
        sequences.append([_field_line("data", line, draw) for line in drawn.data.split("\n")])
    if drawn.type is not None:
        sequences.append([_field_line("event", drawn.type, draw)])
    if drawn.id is not None:
        sequences.append([_field_line("id", drawn.id, draw)])
    if drawn.retry is not None:
        sequences.append([_field_line("retry", str(drawn.retry), draw)])
    sequences.extend([line] for line in draw(st.lists(NOISE, max_size=2)))
    order = draw(st.permutations([index for index, sequence in enumerate(sequences) for _ in sequence]))
    positions = [0] * len(sequences)
    lines: list[str] = []
    for index in order:
        lines.append(sequences[index][positions[index]])
        positions[index] += 1
    expected = fields(drawn)
    return lines, (None if expected == (None,) * 5 else expected)


ENDING = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Fields]]:
    """A whole event stream with random line endings, and the blocks it carries."""
    lines: list[str] = []
    expected: list[Fields] = []
    for block_lines, block_fields in draw(st.lists(wire_blocks(), max_size=6)):
        lines.extend(block_lines)
        lines.append("")
        lines.extend([""] * draw(st.integers(0, 1)))  # extra blank lines between blocks are nothing
        if block_fields is not None:
            expected.append(block_fields)
    tail, _ = draw(wire_blocks())  # an unfinished block: never emitted
    text = "\ufeff" if draw(st.booleans()) or (lines + tail)[:1] == ["\ufeffdata: x"] else ""
    previous = ""
    for line in lines + tail:
        ending = draw(ENDING)
        if previous == "\r" and line == "" and ending == "\n":
            ending = "\r\n"  # CR then LF would be one CRLF, not two line endings
        text += line + ending
        previous = ending
    if tail and draw(st.booleans()):
        text = text.rstrip("\r\n")  # the unfinished block's last line may lack its ending too
    return text.encode(), expected


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), stream=streams())
def test_property_any_split_parses_like_the_whole_stream(data: st.DataObject,
                                                         stream: tuple[bytes, list[Fields]]) -> None:
    raw, expected = stream
    # cut positions may repeat or sit at either end: empty chunks are legal input too
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=30), label="cuts"))
    bounds = [0, *cuts, len(raw)]
    chunks = [raw[start:end] for start, end in itertools.pairwise(bounds)]
    whole = parse(raw)
    assert whole == expected
    assert parse(*chunks) == whole


# --- joining a stream under way (the proxy parses only while someone records) ----------------------


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@settings(max_examples=150, deadline=None)
@given(join=st.integers(0, 200), cut=st.integers(0, 200))
def test_a_parser_joining_mid_stream_gives_exactly_the_blocks_that_begin_after_it_joined(
        ending: str, join: int, cut: int) -> None:
    """Whatever byte the parser joins at, it gives every block that begins at or after that byte, in
    full, and nothing of the block under way (the proxy keeps the last 4 bytes that went by)."""
    lines = STREAM_LINES * 3
    raw = ending.join(lines).encode() + ending.encode()
    starts, offset = [0], 0
    for line in lines:
        offset += len(line.encode()) + len(ending)
        if line == "":
            starts.append(offset)
    join %= len(raw) + 1
    parser = SseParser.joining(raw[max(0, join - 4):join])
    rest = raw[join:]
    cut %= len(rest) + 1
    got = [fields(b) for chunk in (rest[:cut], rest[cut:]) for b in parser.feed(chunk)]
    whole = parse(raw)
    first = next((index for index, start in enumerate(starts[:-1]) if start >= join), len(whole))
    assert got == whole[first:]


def test_a_parser_joining_at_the_very_start_keeps_the_bom_rule() -> None:
    parser = SseParser.joining(b"")
    assert [fields(b) for b in parser.feed(BOM + b"data: x\n\n")] == [block(data="x")]


# --- runs of one-line data blocks (what most streams send: parsed without an object per block) ------


def test_a_chunk_of_one_line_data_blocks_comes_as_one_run_and_the_block_under_way_waits() -> None:
    parser = SseParser()
    run = parser.parse(b"data: a\n\ndata: \n\ndata:  b: c\\\n\ndata: d")
    assert isinstance(run, SseDataRun)
    assert (run.count, run.data()) == (3, ["a", "", " b: c\\"])
    assert [fields(b) for b in run.blocks()] == [block(data="a"), block(data=""), block(data=" b: c\\")]
    assert {b.at_ns for b in run.blocks()} == {run.at_ns}
    assert parser.parse(b"ata: x") == []  # the block under way is "data: data: x" (no blank line yet)
    rest = parser.parse(b"\n\n")
    assert isinstance(rest, SseDataRun) and rest.data() == ["data: x"]


@pytest.mark.parametrize("wire", [
    b"data: a\n\nevent: x\ndata: b\n\n", b"data:a\n\n", b"data: a\ndata: b\n\n", b"data: a\n\n\ndata: b\n\n",
    b": hi\n\n", b"data: a\r\n\r\n", b"id: 1\ndata: a\n\n", b"data: a\n\nretry: 5\n\n", b"data: a\n\n\n",
], ids=["event", "no-space", "two-lines", "extra-blank", "comment", "crlf", "id", "retry", "trailing-blank"])
def test_a_chunk_with_any_other_block_goes_line_by_line_and_gives_the_same_blocks(wire: bytes) -> None:
    parsed = SseParser().parse(wire)
    assert isinstance(parsed, list)
    assert [fields(b) for b in parsed] == parse(*(wire[i:i + 1] for i in range(len(wire))))


def test_a_block_left_open_by_the_last_chunk_is_ended_line_by_line_then_runs_resume() -> None:
    parser = SseParser()
    assert parser.parse(b"data: a\n") == []
    assert [fields(b) for b in parser.parse(b"\ndata: b\n\n")] == [block(data="a"), block(data="b")]
    again = parser.parse(b"data: c\n\n")
    assert isinstance(again, SseDataRun) and again.data() == ["c"]


DATA_LINE = st.lists(st.one_of(TRICKY, CHAR, st.sampled_from(["\\", '"', "data: ", "\\n"])), max_size=8).map("".join)


@st.composite
def mostly_data_streams(draw: st.DrawFn) -> tuple[bytes, list[Fields]]:
    """LF-only streams whose blocks are mostly one ``data:`` line (as real streams are), sometimes
    another block between them."""
    blocks = draw(st.lists(st.one_of(DATA_LINE.map(lambda text: SseBlock(data=text)), sse_blocks()), max_size=25))
    raw = b"".join(encode_block(b) for b in blocks)
    return raw, [fields(b) for b in blocks]


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), stream=mostly_data_streams())
def test_property_runs_and_blocks_together_give_every_block_in_order_however_the_stream_is_split(
        data: st.DataObject, stream: tuple[bytes, list[Fields]]) -> None:
    raw, expected = stream
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="cuts"))
    parser = SseParser()
    got: list[Fields] = []
    for start, end in itertools.pairwise([0, *cuts, len(raw)]):
        parsed = parser.parse(raw[start:end])
        if isinstance(parsed, SseDataRun):
            assert parsed.count == len(parsed.data()) >= 1
            parsed = parsed.blocks()
        got.extend(fields(b) for b in parsed)
    assert got == expected
