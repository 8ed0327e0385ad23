"""Frame boundaries in one direction of a WebSocket byte stream, found without decoding the frames.

The byte relay (:mod:`mockd.serving.wsbytes`) writes each chunk on as it arrives; this scanner follows along
so the relay always knows whether it stands between two frames (only there may it add a close frame
of its own), whether a close frame went by, and where the next message starts (where a decoder that
joins mid-stream must begin). Sans-I/O: it only sees the bytes it is fed.

Payloads are never touched, so its cost is a few integer operations per frame header (RFC 6455 §5.2).
"""

from __future__ import annotations

OPCODE_CLOSE = 0x8
_CONTROL = 0x8  # opcodes from 0x8 up are control frames: never fragmented, may come between fragments


class FrameScanner:
    """Follows the frame headers of a byte stream fed to it in arbitrary chunks."""

    __slots__ = ("_head", "_message_open", "_remaining", "close_seen", "message_start", "want_message_start")

    def __init__(self) -> None:
        self._remaining = 0  # bytes of the current frame not yet seen
        self._head = b""  # the start of a frame header split across chunks
        self._message_open = False  # a fragmented data message has begun and not ended
        self.close_seen = False
        # Set ``want_message_start`` and the next :meth:`feed` puts in ``message_start`` the bytes from
        # the first point in the stream where a new message begins (the header bytes kept from the
        # previous chunk included), or leaves it None when no message begins in that chunk.
        self.want_message_start = False
        self.message_start: bytes | None = None

    @property
    def between_frames(self) -> bool:
        return self._remaining == 0 and not self._head

    def feed(self, data: bytes) -> None:
        size = len(data)
        position = self._remaining
        if position >= size and not self._head:
            self._remaining = position - size
            return
        if self._head:
            data, position, self._head = self._head + data, 0, b""
            size = len(data)
        while position < size:
            if self.want_message_start and not self._message_open:
                self.want_message_start, self.message_start = False, data[position:]
            frame = frame_size(data, position)
            if frame < 0:
                self._head, self._remaining = data[position:], 0
                return
            first = data[position]
            opcode = first & 0x0F
            if opcode >= _CONTROL:
                if opcode == OPCODE_CLOSE:
                    self.close_seen = True
            else:
                self._message_open = not first & 0x80
            position += frame
        self._remaining = position - size

    def end_of_frame(self, data: bytes) -> int | None:
        """How many bytes of ``data`` (the next chunk) finish the frame under way: 0 between frames,
        None when that frame does not end within ``data``."""
        if self.between_frames:
            return 0
        if not self._head:
            return self._remaining if self._remaining <= len(data) else None
        frame = frame_size(self._head + data[:14], 0)
        if frame < 0:
            return None
        end = frame - len(self._head)
        return end if end <= len(data) else None


def frame_size(data: bytes, position: int) -> int:
    """The whole size (header and payload) of the frame whose header starts at ``position``, or -1
    when ``data`` ends inside that header."""
    available = len(data) - position
    if available < 2:
        return -1
    second = data[position + 1]
    length, header = second & 0x7F, 6 if second & 0x80 else 2
    if length >= 126:
        extra = 2 if length == 126 else 8
        if available < header + extra:
            return -1
        length = int.from_bytes(data[position + 2:position + 2 + extra], "big")
        header += extra
    return header + length
