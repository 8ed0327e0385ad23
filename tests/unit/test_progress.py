"""``mockd.cli.progress``: the CLI's progress line (docs/cli.md, "Progress": long operations show progress on a
terminal).

The line is a pure function of the figures (:func:`progress_line`); :class:`Progress` draws it on a
stream only when that stream is a terminal, redraws it while nothing happens, and clears it at the
end. The CLI's own use of it on a real pseudo-terminal is in ``test_cli_recordings.py``.
"""

from __future__ import annotations

import io

from polling import poll_until_sync

from mockd.cli.output import human_size
from mockd.cli.progress import CLEAR_LINE, Progress, progress_line


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def files(count: int) -> str:
    return f"{count} files"


def test_the_line_shows_done_of_total_with_a_percentage_and_the_time() -> None:
    assert progress_line("Exporting 01HX", 1_258_292, 4_194_304, human_size, 0.84) == \
        "Exporting 01HX  1.2 MB / 4.0 MB (30%)  0.8 s"
    assert progress_line("Vacuuming", 3, 3, files, 2.0) == "Vacuuming  3 files / 3 files (100%)  2.0 s"


def test_without_a_total_the_line_shows_what_is_done_so_far() -> None:
    assert progress_line("Converting 01HX", 0, None, human_size, 0.0) == "Converting 01HX  0 B  0.0 s"
    assert progress_line("Converting 01HX", 2048, 0, human_size, 1.25) == "Converting 01HX  2.0 KB  1.2 s"


def test_nothing_is_drawn_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress("Exporting", human_size, stream) as progress:
        progress.update(10, 100)
    assert stream.getvalue() == ""


def test_on_a_terminal_the_line_is_drawn_kept_moving_and_cleared_at_the_end() -> None:
    terminal = FakeTerminal()
    with Progress("Vacuuming", files, terminal) as progress:
        # redrawn although nothing was reported
        assert poll_until_sync(lambda: terminal.getvalue().count(CLEAR_LINE) >= 3, 10, 0.01), terminal.getvalue()
        progress.update(2, 5)
        progress.update(5)
    shown = terminal.getvalue()
    draws = shown.split(CLEAR_LINE)
    assert draws[0] == "" and draws[-1] == ""  # every draw starts by clearing the line; the last one clears it
    assert draws[1].startswith("Vacuuming  0 files  0.0 s")
    assert draws[-2].startswith("Vacuuming  5 files / 5 files (100%)  ")  # the final figures are drawn last
