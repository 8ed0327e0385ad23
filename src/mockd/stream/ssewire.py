"""The SSE wire format (WHATWG "server-sent events"), both ways: writing a block, and an incremental
parser that turns a ``text/event-stream`` body, split anywhere, into the blocks it carried.

Unlike a browser, the parser keeps every block exactly as it came: a block holding only a comment or
only ``retry`` is still a block, ``id`` is never carried over from an earlier block, and a data block
without ``event:`` keeps ``type=None``. That is what a recording needs to reproduce the stream.
"""

from __future__ import annotations

import re
import time

from mockd.stream.events import SSE_DATA_SEPARATOR, SseBlock, SseDataRun

_BOM = "\ufeff"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode_block(block: SseBlock) -> bytes:
    """Only the fields the block has, one ``data:`` line per line of data (a line ends at CRLF, CR or LF,
    as readers split it), then the blank line."""
    lines: list[str] = []
    if block.comment is not None:
        lines.extend(": " + line for line in _LINE_BREAK.split(block.comment))
    if block.type is not None:
        lines.append("event: " + block.type)
    if block.id is not None:
        lines.append("id: " + block.id)
    if block.retry is not None:
        lines.append("retry: " + str(block.retry))
    if block.data is not None:
        lines.extend("data: " + line for line in _LINE_BREAK.split(block.data))
    return ("\n".join(lines) + "\n\n").encode()


def ends_block(text: bytes) -> bool:
    """Whether a stream that went by up to ``text`` stands between two blocks: it ends in a blank
    line, i.e. in two line breaks (CRLF, CR or LF)."""
    for line_break in (b"\r\n", b"\n", b"\r"):
        if text.endswith(line_break):
            return text[:-len(line_break)].endswith((b"\n", b"\r"))
    return False


class SseParser:
    """Feed bytes as they arrive; get back the blocks completed by them."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False  # the last chunk ended in CR: a following LF belongs to it
        self._at_start = True
        self._decoder_tail = b""
        self._block = _BlockBuilder()

    @classmethod
    def joining(cls, previous: bytes) -> SseParser:
        """A parser for a stream already under way (it is only parsed while someone records it);
        ``previous`` is the end of what went by unparsed (its last 4 bytes are enough). Unless that
        ended a block, what comes up to the next blank line is the rest of a block begun before, and
        is left out."""
        parser = cls()
        if previous:
            parser._at_start = False
            parser._pending_cr = previous.endswith(b"\r")
            if not ends_block(previous):
                parser._block.discard_one()
                if not previous.endswith((b"\n", b"\r")):
                    parser._buffer = ":"  # the rest of the line under way reads as a comment of that block
        return parser

    def feed(self, chunk: bytes) -> list[SseBlock]:
        """The blocks this chunk completes, stamped with its arrival time."""
        blocks = self.parse(chunk)
        return blocks.blocks() if isinstance(blocks, SseDataRun) else blocks

    def parse(self, chunk: bytes) -> list[SseBlock] | SseDataRun:
        """As :meth:`feed`, but when every block the chunk completes is one ``data: `` line and nothing
        else, they come as an :class:`SseDataRun` (no object per block)."""
        self._block.at_ns = time.time_ns()
        text = self._decode(chunk)
        if self._at_start and text:
            text = text.removeprefix(_BOM)
            self._at_start = False
        if not text:
            return []
        if self._pending_cr and text[0] == "\n":
            text = text[1:]
        self._pending_cr = False
        data = self._buffer + text if self._buffer else text
        if "\r" not in data:  # the usual case, LF only
            return self._feed_lf(data)
        blocks: list[SseBlock] = []
        start, length = 0, len(data)
        cr = data.find("\r")
        lf = data.find("\n")
        while cr != -1 or lf != -1:
            if cr == -1 or (lf != -1 and lf < cr):
                end, start_next = lf, lf + 1
            elif cr + 1 == length:
                end, start_next = cr, cr + 1
                self._pending_cr = True
            else:
                end, start_next = cr, cr + (2 if data[cr + 1] == "\n" else 1)
            block = self._block.line(data[start:end])
            if block is not None:
                blocks.append(block)
            start = start_next
            if cr != -1 and cr < start:
                cr = data.find("\r", start)
            if lf != -1 and lf < start:
                lf = data.find("\n", start)
        self._buffer = data[start:]
        return blocks

    def _feed_lf(self, data: str) -> list[SseBlock] | SseDataRun:
        """Blocks from LF-only text, split at blank lines first: a block that is one ``data: `` line
        (most streams send nothing else) is made at once, anything else goes line by line."""
        builder = self._block
        if not builder.seen:
            run = self._data_run(data)
            if run is not None:
                return run
        blocks: list[SseBlock] = []
        *complete, tail = data.split("\n\n")
        for part in complete:
            if not builder.seen and part.startswith("data: ") and "\n" not in part:
                blocks.append(SseBlock(None, part[6:], None, None, None, builder.at_ns))
            else:
                self._feed_lines([*part.split("\n"), ""], blocks)
        *lines, self._buffer = tail.split("\n")
        self._feed_lines(lines, blocks)
        return blocks

    def _data_run(self, data: str) -> SseDataRun | None:
        """The complete blocks of LF-only ``data`` as a run, if each is one ``data: `` line: then every
        line break up to the last blank line is one of an ``SSE_DATA_SEPARATOR`` between two blocks
        (counted in C, not looked at block by block). None otherwise, or when no block is complete."""
        end = data.rfind("\n\n")
        if end == -1 or not data.startswith("data: "):
            return None
        separators = data.count(SSE_DATA_SEPARATOR, 0, end)
        if data.count("\n", 0, end) != 2 * separators:
            return None
        *lines, self._buffer = data[end + 2:].split("\n")
        self._feed_lines(lines, [])  # the block under way: no blank line in it, so it cannot end here
        return SseDataRun(data[6:end], separators + 1, self._block.at_ns)

    def _feed_lines(self, lines: list[str], blocks: list[SseBlock]) -> None:
        line_of = self._block.line
        for line in lines:
            block = line_of(line)
            if block is not None:
                blocks.append(block)

    def _decode(self, chunk: bytes) -> str:
        """UTF-8, keeping an incomplete trailing sequence for the next chunk."""
        raw = self._decoder_tail + chunk
        cut = len(raw)
        for back in range(1, min(4, len(raw)) + 1):
            byte = raw[-back]
            if byte & 0xC0 != 0x80:  # a lead byte or ASCII: is its sequence complete?
                needed = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
                if needed > back:
                    cut = len(raw) - back
                break
        self._decoder_tail = raw[cut:]
        return raw[:cut].decode("utf-8", "replace")


class _BlockBuilder:
    """Collects the fields of one block, line by line."""

    def __init__(self) -> None:
        self.at_ns = 0
        self._reset()

    def _reset(self) -> None:
        self.type: str | None = None
        self.data: list[str] | None = None
        self.id: str | None = None
        self.retry: int | None = None
        self.comment: list[str] | None = None
        self.seen = False
        self.discarding = False

    def discard_one(self) -> None:
        """Drop the block under way, whatever lines it has (seen, so no line takes the fast path)."""
        self.seen = self.discarding = True

    def line(self, line: str) -> SseBlock | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            if self.comment is None:
                self.comment = []
            self.comment.append(line[2:] if line[1:2] == " " else line[1:])
            self.seen = True
            return None
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            if self.data is None:
                self.data = [value]
            else:
                self.data.append(value)
        elif field == "event":
            self.type = value
        elif field == "id" and "\0" not in value:
            self.id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        else:
            return None  # unknown fields are ignored, as browsers do
        self.seen = True
        return None

    def _dispatch(self) -> SseBlock | None:
        if not self.seen:
            return None
        if self.discarding:
            self._reset()
            return None
        data, comment = self.data, self.comment
        block = SseBlock(self.type, data[0] if data is not None and len(data) == 1 else
                         "\n".join(data) if data is not None else None, self.id, self.retry,
                         "\n".join(comment) if comment is not None else None, self.at_ns)
        self._reset()
        return block
