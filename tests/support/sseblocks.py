"""SSE helpers shared by the parser, encoder and recorder tests and the black-box SSE clients.

Blocks as plain tuples, so tests compare what a block holds and not when it was seen (``at_ns``); and
the WHATWG split of one event-stream line into its field name and value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: the black-box tests need nothing of mockd's at run time
    from mockd.stream.events import SseBlock

Fields = tuple[str | None, str | None, str | None, int | None, str | None]  # type, data, id, retry, comment


def fields(block: SseBlock) -> Fields:
    """The fields of ``block``, without its timestamp."""
    return (block.type, block.data, block.id, block.retry, block.comment)


def block(type: str | None = None, data: str | None = None, id: str | None = None, retry: int | None = None,
          comment: str | None = None) -> Fields:
    """The fields an expected block has (the ones not given are None, as on a block without them)."""
    return (type, data, id, retry, comment)


def field_line(line: str) -> tuple[str, str]:
    """(name, value) of one line: the name is what precedes the first colon (``""`` for a comment), and
    one space after the colon is not part of the value (WHATWG event-stream interpretation)."""
    name, colon, value = line.partition(":")
    if colon and value.startswith(" "):
        value = value[1:]
    return name, value
