"""What ``mockd stream-recordings`` prints (docs/cli.md): tables, sizes, durations, blocks, JSON, the
one-line error, and answers streamed to stdout or to a file behind a progress line (:mod:`.progress`).
Pure formatting, apart from the few ``echo_*``/``write_*`` helpers that print; nothing here knows
where an answer came from (the admin API or the data directory)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import click
import msgspec

from mockd.admin.answers import ReplayStatus
from mockd.cli.progress import Progress
from mockd.recording.format import Recording, SessionSummary, StorageStats, Summary

T = TypeVar("T")
TABLE_WIDTH = 100


class CliError(click.ClickException):
    """One clear line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"mockd: error: {self.message}", err=True)


# --- formatting (pure) ------------------------------------------------------------------------------


def human_duration(ms: int) -> str:
    """``850ms``, ``12.3s``, ``2m05s``, ``1h02m``."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def human_size(size: int) -> str:
    """``512 B``, ``8.2 KB``, ``1.2 MB`` (powers of 1024: 8432 bytes is 8.2 KB)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def shorten(text: str, width: int) -> str:
    """Long paths lose their middle: ``/api/v1/…/stream``."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[:(keep + 1) // 2] + "…" + text[len(text) - keep // 2:]


def seconds_precision(timestamp: str) -> str:
    """``2024-01-15T10:30:00.123456Z`` → ``2024-01-15T10:30:00Z``, as ``show`` and ``stats`` print times."""
    return timestamp.split(".")[0].rstrip("Z") + "Z" if timestamp else ""


def table(headers: list[str], rows: list[list[str]], minimum: dict[str, int] | None = None,
          shrink: str | None = None) -> str:
    """Left-aligned columns, two spaces apart; the ``shrink`` column is shortened to fit the width."""
    widths = [max([len(header), (minimum or {}).get(header, 0), *(len(row[i]) for row in rows)])
              for i, header in enumerate(headers)]
    if shrink is not None:
        index = headers.index(shrink)
        over = sum(widths) + 2 * (len(widths) - 1) - TABLE_WIDTH
        if over > 0:
            widths[index] = max(len(shrink), widths[index] - over)
            rows = [[*row[:index], shorten(row[index], widths[index]), *row[index + 1:]] for row in rows]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in [headers, *rows]]
    return "\n".join(lines)


def recordings_table(summaries: list[Summary]) -> str:
    rows = [[summary.id[:12], summary.protocol, summary.path, summary.status, str(summary.frame_count),
             human_duration(summary.duration), human_size(summary.file_size)] for summary in summaries]
    return table(["ID", "PROTOCOL", "PATH", "STATUS", "FRAMES", "DURATION", "SIZE"], rows,
                 minimum={"ID": 12, "PATH": 13}, shrink="PATH")


def sessions_table(sessions: list[SessionSummary]) -> str:
    rows = [[s.id[:12], s.protocol, s.path, human_duration(s.duration_ms), str(s.frame_count),
             str(s.connection_count)] for s in sessions]
    return table(["ID", "PROTOCOL", "PATH", "DURATION", "FRAMES", "CONNECTIONS"], rows, minimum={"ID": 12},
                 shrink="PATH")


def replays_table(replays: list[ReplayStatus]) -> str:
    rows = [[replay.id[:12], replay.recording_id[:12], replay.mode, replay.status,
             f"{replay.frames_sent}/{replay.total_frames}", replay.path or "-"] for replay in replays]
    return table(["ID", "RECORDING", "MODE", "STATUS", "SENT", "PATH"], rows, minimum={"ID": 12, "RECORDING": 12},
                 shrink="PATH")


def show_block(recording: Recording, event_types: list[str]) -> str:
    """The ``show`` block (docs/cli.md), then the protocol's details (``event_types``: an SSE recording's)."""
    stats = recording.stats
    end_time = recording.end_time if isinstance(recording.end_time, str) else ""
    lines = [("ID", recording.id), ("Name", recording.name), ("Protocol", recording.protocol),
             ("Path", recording.path), ("Status", recording.status),
             ("Started", seconds_precision(recording.start_time)), ("Ended", seconds_precision(end_time)),
             ("Duration", human_duration(recording.duration)), ("Frames", str(stats.frame_count)),
             ("File Size", human_size(stats.file_size_bytes))]
    text = [f"{label + ':':<13}{value}".rstrip() for label, value in lines]
    if recording.websocket is not None and not isinstance(recording.websocket, type(msgspec.UNSET)):
        section = recording.websocket
        details = [("Text Frames", str(stats.text_frames)), ("Binary Frames", str(stats.binary_frames)),
                   ("Ping/Pong", str(stats.ping_pong)),
                   ("Close Code", str(section.close_code) if isinstance(section.close_code, int) else "-"),
                   ("Connections", str(stats.connection_count)),
                   ("Subprotocol", section.subprotocol if isinstance(section.subprotocol, str) else "-")]
        text += ["", "WebSocket Details:", *(f"  {label + ':':<15}{value}" for label, value in details)]
    elif recording.protocol == "http":
        details = [("Exchanges", str(stats.exchange_count))]
        text += ["", "HTTP Details:", *(f"  {label + ':':<15}{value}" for label, value in details)]
    else:
        details = [("Events", str(stats.event_count)), ("Event Types", ", ".join(event_types) or "-"),
                   ("Connections", str(stats.connection_count))]
        text += ["", "SSE Details:", *(f"  {label + ':':<15}{value}" for label, value in details)]
    return "\n".join(text)


def stats_block(stats: StorageStats) -> str:
    lines = [f"Used:        {human_size(stats.used_bytes)} / {human_size(stats.max_bytes)} "
             f"({stats.used_percent:.1f}%)",
             f"Recordings:  {stats.recording_count} ({stats.websocket_count} websocket, {stats.sse_count} sse, "
             f"{stats.http_count} http)",
             f"Deleted:     {stats.deleted_count} ({human_size(stats.deleted_bytes)}; "
             "`mockd stream-recordings vacuum` removes them)"]
    if stats.oldest_recording is not None and stats.newest_recording is not None:
        lines.append(f"Oldest:      {stats.oldest_recording[:12]}  {seconds_precision(stats.oldest_date or '')}")
        lines.append(f"Newest:      {stats.newest_recording[:12]}  {seconds_precision(stats.newest_date or '')}")
    if stats.warning:
        lines.append(f"Warning:     {stats.warning}")
    return "\n".join(lines)


def summary_line(recording: Recording) -> str:
    return (f"{recording.id[:12]}  {recording.protocol} {recording.path}  {recording.status}  "
            f"{recording.stats.frame_count} frames  {human_duration(recording.duration)}  "
            f"{human_size(recording.stats.file_size_bytes)}")


# --- printing ---------------------------------------------------------------------------------------


def echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode(), color=False)


def echo_rows(rows: list[T], as_json: bool, table: Callable[[list[T]], str], none: str) -> None:
    """A listing: the JSON array, the table, or ``none`` when there is nothing to list."""
    if as_json:
        echo_json(rows)
    else:
        click.echo(table(rows) if rows else none)


def confirm(question: str, force: bool, what: str) -> None:
    """Ask ``question`` on a terminal (``--force``: do not ask); without a terminal, refuse."""
    if force:
        return
    if not sys.stdin.isatty():
        raise CliError(f"not on a terminal, so {what} needs --force to go ahead")
    if not click.confirm(question, default=False):
        raise click.Abort()


def echo_file(write: Callable[[BinaryIO], int]) -> None:
    """``write`` a document (a recording's file, as it is) to stdout as it comes, never held whole,
    ending it with a newline when it does not end with one."""
    sink = _LastByte(sys.stdout.buffer)
    write(cast(BinaryIO, sink))  # it has the one method the writers call
    if sink.last != b"\n":
        sink.write(b"\n")
    sys.stdout.buffer.flush()


def write_streamed(output: Path | None, what: str, label: str, write: Callable[[BinaryIO, Progress], int]) -> None:
    """``write`` the answer to stdout, or to ``output``: a file that appears only when complete; the
    progress (on a terminal) is labelled ``label``."""
    with Progress(label, human_size) as progress:
        if output is None:
            write(sys.stdout.buffer, progress)
            sys.stdout.buffer.flush()
            return
        size = _write_file(output, lambda sink: write(sink, progress))
    click.echo(f"Wrote the {what} to {output} ({human_size(size)})", err=True)


def _write_file(output: Path, write: Callable[[BinaryIO], int]) -> int:
    partial = output.with_name(f".{output.name}.partial")
    try:
        with open(partial, "wb") as sink:
            size = write(sink)
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {output}: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


class _LastByte:
    """A binary sink that remembers the last byte written through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.last = sink, b""

    def write(self, data: bytes) -> int:
        if data:
            self.last = data[-1:]
        return self.sink.write(data)
