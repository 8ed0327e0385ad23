"""The byte relay's frame scanner (mockd.stream.wsscan), without sockets: frames built by the ``websockets``
library (an independent implementation), fed in arbitrary chunks."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from mockd.stream.wsscan import FrameScanner

SIZES = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000])


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    kind = draw(st.sampled_from([Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG, Opcode.CLOSE]))
    size = draw(SIZES) if kind in (Opcode.TEXT, Opcode.BINARY) else draw(st.sampled_from([0, 2, 125]))
    return Frame(kind, b"x" * size, fin=True)


def wire(frame: Frame, mask: bool) -> bytes:
    return frame.serialize(mask=mask, extensions=[])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in itertools.pairwise(points)]


@settings(max_examples=200, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=8), st.booleans(), st.lists(st.integers(0, 10**6), max_size=12))
def test_boundaries_and_closes_are_found_however_the_stream_is_cut(sent: list[Frame], mask: bool,
                                                                      cuts: list[int]) -> None:
    stream = b"".join(wire(frame, mask) for frame in sent)
    scanner = FrameScanner()
    ends, position = set(), 0
    for frame in sent:
        position += len(wire(frame, mask))
        ends.add(position)
    fed = 0
    for chunk in split(stream, cuts):
        end = scanner.end_of_frame(chunk)
        if scanner.between_frames:
            assert end == 0
        else:
            next_end = min(point for point in ends if point > fed)
            assert end == (next_end - fed if next_end <= fed + len(chunk) else None)
        scanner.feed(chunk)
        fed += len(chunk)
        assert scanner.between_frames == (fed in ends)
    assert scanner.between_frames
    assert scanner.close_seen == any(frame.opcode is Opcode.CLOSE for frame in sent)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.lists(st.integers(0, 10**6), max_size=6))
def test_a_decoder_joining_mid_stream_starts_where_a_message_starts(join_at: int, cuts: list[int]) -> None:
    """A text message in three fragments with a ping among them, then whole messages: wherever the
    scanner is asked, the bytes it hands over begin with a message's first frame."""
    fragments = [Frame(Opcode.TEXT, b"frag", fin=False), Frame(Opcode.PING, b"p"),
                 Frame(Opcode.CONT, b"ment", fin=False), Frame(Opcode.CONT, b"ed", fin=True)]
    stream_frames = fragments + [Frame(Opcode.BINARY, bytes([n]) * 200) for n in range(5)]
    pieces = [wire(frame, True) for frame in stream_frames]
    stream = b"".join(pieces)
    starts, position = {}, 0
    for index, piece in enumerate(pieces):
        if index not in (1, 2, 3):  # inside the fragmented message no new message begins
            starts[position] = index
        position += len(piece)
    scanner, fed, asked_from = FrameScanner(), 0, None
    for chunk in split(stream, [join_at, *cuts]):
        if fed >= join_at and asked_from is None:
            scanner.want_message_start, asked_from = True, fed
        scanner.feed(chunk)
        fed += len(chunk)
        if scanner.message_start is not None:
            assert asked_from is not None
            begins = fed - len(scanner.message_start)
            assert begins in starts and stream[begins:fed] == scanner.message_start
            # the first start from where it was asked (a header split off the chunk before counts)
            assert not any(asked_from <= start < begins for start in starts)
            return
    assert asked_from is None or not any(start >= asked_from for start in starts)
