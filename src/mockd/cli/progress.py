"""Progress of the CLI's long operations on a terminal (docs/cli.md): export or convert of a huge
recording, vacuum over many files.

One line on stderr, redrawn in place and cleared at the end, and only when stderr is a terminal: a pipe,
a file or a script sees nothing of it. A background thread redraws it every ``REDRAW`` seconds, so a
wait with no news (the server still converting, before the first byte) shows the time passing.

Hand-written on purpose: ``click.progressbar`` draws a bar of items, needs the length up front (an
answer's ``Content-Length`` may be unknown, and a wait before the first byte must still show time
passing) and redraws only when told; rich would add a large import to every CLI start for one line.
This is one line of text and a timer thread, in the exact format docs/cli.md shows.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

Amount = Callable[[int], str]  # how to show a quantity: "1.2 MB", "12 files"
REDRAW = 0.1
CLEAR_LINE = "\r\x1b[K"


def progress_line(label: str, done: int, total: int | None, amount: Amount, elapsed: float) -> str:
    """``Exporting 01HX…  1.2 MB / 4.0 MB (30%)  0.8 s``; without the total and percentage when the
    total is unknown."""
    if not total:
        return f"{label}  {amount(done)}  {elapsed:.1f} s"
    return f"{label}  {amount(done)} / {amount(total)} ({min(100, 100 * done // total)}%)  {elapsed:.1f} s"


class Progress:
    """``with Progress("Exporting 01HX…", human_size) as progress: progress.update(done, total)``."""

    def __init__(self, label: str, amount: Amount, stream: TextIO | None = None) -> None:
        self.label, self.amount = label, amount
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self.total: int | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._redrawer = threading.Thread(target=self._redraw_until_finished, daemon=True)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._draw()
            self._redrawer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self.enabled:
            return
        self._finished.set()
        self._redrawer.join()
        with self._lock:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total

    def _redraw_until_finished(self) -> None:
        while not self._finished.wait(REDRAW):
            self._draw()
        self._draw()  # the final figures stay readable in a terminal's scrollback until the line is cleared

    def _draw(self) -> None:
        line = progress_line(self.label, self.done, self.total, self.amount, time.monotonic() - self._started)
        with self._lock:
            self.stream.write(CLEAR_LINE + line)
            self.stream.flush()
