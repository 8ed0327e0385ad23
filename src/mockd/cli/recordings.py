"""``mockd stream-recordings``: a thin client of the admin API, or — when no server answers — of the
data directory itself, through the same store code the server uses. Output formats: docs/cli.md.

Which server (:meth:`Context.server_url`): an explicit admin URL (``--admin-url``, ``MOCKD_ADMIN_URL``)
wins; else ``--data-dir D`` (``MOCKD_DATA_DIR``) follows D's ready file (``mockd.ready``, written by the
server that owns D) to that server, and when no live server owns D the CLI works offline on D and
never asks another server; without either, the default admin URL. An explicit admin URL that is not
the live server of D is an error rather than a mix of two servers.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click
import msgspec

from mockd.admin.answers import EventPage, RecordingList, ReplayStatus, Started, Vacuumed
from mockd.admin.client import ApiError, Client, ServerUnavailable, pieces, write_all
from mockd.cli.progress import Progress
from mockd.playback.plan import DEFAULT_EXPIRES_AFTER, MAX_EXPIRES_AFTER, MAX_TIMING_SCALE
from mockd.recording.format import Recording, SessionSummary, StorageStats, Summary, decode_recording
from mockd.support.runtime import LOOPBACK_NAMES, READY_FILE, live_server_in

T = TypeVar("T")
DEFAULT_ADMIN_URL = "http://localhost:4290"
PROBE_TIMEOUT = 1.0
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


# --- backends -----------------------------------------------------------------------------------------


class ApiBackend(Client):
    """The admin API as the CLI uses it: an error answer is the one line the user sees."""

    def _pieces(self, method: str, path: str, body: Any, query: dict[str, Any] | None, timeout: float | None,
                progress: Any) -> Iterator[bytes]:
        try:
            yield from super()._pieces(method, path, body, query, timeout,
                                       progress.update if isinstance(progress, Progress) else progress)
        except ApiError as error:
            message = error.message + (": " + ", ".join(c[:12] for c in error.candidates) if error.candidates else "")
            raise CliError(message) from None

    def probe(self) -> None:
        self.health(timeout=PROBE_TIMEOUT)



def same_server(first: str, second: str) -> bool:
    """Whether two admin URLs name the same listener (``localhost`` and ``127.0.0.1`` alike)."""
    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urllib.parse.urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
        return parts.scheme, "loopback" if host in LOOPBACK_NAMES else host, port, parts.path.rstrip("/")

    return key(first) == key(second)


def owner_of(directory: Path) -> dict[str, object] | None:
    """The ready file of the live mockd serving ``directory``; None when there is none, or when the
    ready file names another directory (a copy of a live server's data directory keeps its ready file).
    A relative ``dataDir`` (the server's own working directory is unknown here) is trusted."""
    live = live_server_in(directory)
    if live is None:
        return None
    announced = Path(str(live.get("dataDir") or ""))
    if announced.is_absolute():
        try:
            if not os.path.samefile(announced, directory):
                return None
        except OSError:
            return None
    return live


def _token_of(live: dict[str, object] | None) -> str | None:
    """The admin token the server owning the data directory wrote into its (0600) ready file."""
    token = live.get("adminToken") if live is not None else None
    return token if isinstance(token, str) else None


@dataclass
class Context:
    admin_url: str | None  # given with --admin-url or MOCKD_ADMIN_URL; None: found as the module says
    token: str | None
    data_dir: str | None
    color: bool
    _api: ApiBackend | None = None
    _offline: str | None = None  # why the CLI works on the data directory (the notice's first half)
    _store: Any = None
    redact_value: str = "[REDACTED]"  # the settings' value, read with the store

    def server_url(self) -> tuple[str | None, dict[str, object] | None]:
        """The admin URL to talk to, and the ready file of the live server owning ``--data-dir`` (if any).
        The URL is None when ``--data-dir`` names a directory no live mockd serves: offline only."""
        live = owner_of(Path(self.data_dir).expanduser()) if self.data_dir else None
        live_url = str(live["adminUrl"]) if live is not None and live.get("adminUrl") else None
        if self.admin_url:
            if live_url is not None and not same_server(self.admin_url, live_url):
                raise CliError(f"--admin-url {self.admin_url} is not the mockd serving {self.data_dir} (that one, "
                               f"pid {live.get('pid') if live else '?'}, is at {live_url}); give one or the other")
            return self.admin_url, live
        if self.data_dir:
            return live_url, live
        return DEFAULT_ADMIN_URL, None

    def api(self, required_for: str | None = None) -> ApiBackend | None:
        """The admin API when a server answers; ``None`` (offline) otherwise, or an error when
        ``required_for`` names a command that needs a server."""
        if self._api is not None or (self._offline is not None and not required_for):
            return self._api
        url, live = self.server_url()
        if url is None:
            self._offline = f"no mockd is running for {self.data_dir}"
            if required_for:
                raise CliError(f"`{required_for}` needs a running mockd, and none is running for the data directory "
                               f"{self.data_dir} (no live {READY_FILE} there; start one with `mockd serve "
                               f"--data-dir {self.data_dir}`)")
            return None
        api = ApiBackend(url, self.token or _token_of(live))
        try:
            api.probe()
        except ServerUnavailable:
            if live is not None:  # it owns the directory: working on it behind its back would be wrong
                raise CliError(f"the mockd serving {self.data_dir} (pid {live.get('pid')}) does not answer at "
                               f"{url}") from None
            self._offline = f"no server answers at {url}"
            if required_for:
                raise CliError(f"`{required_for}` needs a running mockd, and none answers at {url} "
                               "(start one with `mockd serve`, or pass --admin-url or --data-dir)") from None
            return None
        self._api = api
        return self._api

    def need_api(self, command: str) -> ApiBackend:
        api = self.api(required_for=command)
        assert api is not None
        return api

    def store(self) -> Any:
        if self._store is None:
            from mockd.config.model import ConfigError
            from mockd.recording.store import Store
            from mockd.config.settings import load_settings, resolve_data_dir

            try:
                settings, _ = load_settings(None)
            except ConfigError as exc:
                raise CliError(str(exc)) from None
            directory = resolve_data_dir(self.data_dir, settings)
            click.echo(f"mockd: {self._offline or 'no server'}; using the data directory {directory}", err=True)
            store = Store(directory, settings.recording.max_bytes, settings.recording.warn_percent)
            self.redact_value = settings.recording.redact_value
            try:
                store.open()
            except OSError as exc:
                raise CliError(f"cannot use data directory {directory}: {exc.strerror}") from None
            self._store = store
        return self._store


def _offline(call: Callable[[], Any]) -> Any:
    with _store_errors():
        return call()


@contextmanager
def _store_errors() -> Iterator[None]:
    """The data directory's errors as the one line the user sees."""
    from mockd.recording.store import StoreError

    try:
        yield
    except StoreError as exc:
        message = exc.message
        if exc.extra.get("candidates"):
            message += ": " + ", ".join(str(c)[:12] for c in exc.extra["candidates"])
        raise CliError(message) from None


# --- commands -----------------------------------------------------------------------------------------

pass_context = click.make_pass_decorator(Context)


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Accepted by the group and by every subcommand (a subcommand's value wins)."""
    options = [
        click.option("--admin-url", envvar="MOCKD_ADMIN_URL", default=None,
                     help=f"Admin API of the running mockd (env MOCKD_ADMIN_URL; default: the server of --data-dir, "
                          f"else {DEFAULT_ADMIN_URL})."),
        click.option("--admin-token", envvar="MOCKD_ADMIN_TOKEN", default=None,
                     help="Admin token (env MOCKD_ADMIN_TOKEN)."),
        click.option("--data-dir", envvar="MOCKD_DATA_DIR", default=None,
                     help="Data directory (env MOCKD_DATA_DIR): talk to the mockd serving it, or work on it "
                          "directly when none does."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _merge(ctx: click.Context, admin_url: str | None = None, admin_token: str | None = None,
           data_dir: str | None = None) -> Context:
    """The group's connection settings, overridden by those given to the subcommand."""
    context = ctx.find_object(Context)
    assert context is not None
    if admin_url:
        context.admin_url = admin_url
    if admin_token:
        context.token = admin_token
    if data_dir:
        context.data_dir = data_dir
    return context


@click.group("stream-recordings")
@connection_options
@click.pass_context
def stream_recordings(ctx: click.Context, admin_url: str | None, admin_token: str | None, data_dir: str | None) -> None:
    """Manage stream recordings: list, show, export, convert, delete, stats, vacuum, sessions, replays.

    Talks to the running mockd's admin API: --admin-url, else the mockd serving --data-dir (found by
    its mockd.ready file), else the default URL. When no server answers (or none serves --data-dir),
    the commands that only need stored recordings work on the data directory directly. IDs may be any
    unique prefix (12 characters, as `list` shows them).

    \b
    Example:
      mockd stream-recordings list
      mockd stream-recordings show 01HXYZ123456
    """
    ctx.obj = Context(admin_url=admin_url or None, token=admin_token, data_dir=data_dir or None,
                      color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))


def _echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode(), color=False)


def _echo_rows(rows: list[T], as_json: bool, table: Callable[[list[T]], str], none: str) -> None:
    """A listing: the JSON array, the table, or ``none`` when there is nothing to list."""
    if as_json:
        _echo_json(rows)
    else:
        click.echo(table(rows) if rows else none)


def _head(context: Context, reference: str) -> Recording:
    """The recording without its frames (read through its index: constant time whatever its length)."""
    api = context.api()
    if api is not None:
        return decode_recording(api.request("GET", f"/stream-recordings/{api.ref(reference)}",
                                            query={"entries": "false"}))
    store = context.store()
    return _offline(lambda: store.head(store.resolve(reference)))


def _event_types(context: Context, recording_id: str) -> list[str]:
    """The event types an SSE recording holds (from the page answer's counts)."""
    api = context.api()
    if api is not None:
        page = msgspec.json.decode(api.request("GET", f"/stream-recordings/{recording_id}/frames",
                                               query={"limit": "0"}), type=EventPage)
        return list(page.types)
    from mockd.recording.index import Filter

    store = context.store()
    return list(_offline(lambda: store.page(recording_id, Filter(), 0, 0)).types)


def _confirm(question: str, force: bool, what: str) -> None:
    if force:
        return
    if not sys.stdin.isatty():
        raise CliError(f"not on a terminal, so {what} needs --force to go ahead")
    if not click.confirm(question, default=False):
        raise click.Abort()


@stream_recordings.command("list")
@click.option("--protocol", type=click.Choice(["websocket", "sse", "http"]), help="Only this protocol.")
@click.option("--status", type=click.Choice(["recording", "complete", "incomplete"]), help="Only this status.")
@click.option("--path", help="Only paths starting with this.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of summaries.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--sort", "sort_by", default="startTime", type=click.Choice(["startTime", "name", "size"]))
@click.option("--order", "sort_order", default="desc", type=click.Choice(["asc", "desc"]))
@click.option("--include-deleted", is_flag=True, help="Show soft-deleted recordings too.")
@connection_options
@click.pass_context
def list_recordings(ctx: click.Context, as_json: bool, **options: Any) -> None:
    """List recordings, newest first.

    \b
    Example:
      mockd stream-recordings list --protocol websocket
      mockd stream-recordings list --limit 10 --offset 20
    """
    context = _merge(ctx, options.pop("admin_url"), options.pop("admin_token"), options.pop("data_dir"))
    summaries, total = _list(context, options)
    if as_json:
        _echo_json(summaries)
        return
    if not summaries:
        click.echo("No stream recordings found")
        return
    click.echo(recordings_table(summaries))
    if options["offset"] + len(summaries) < total:
        click.echo(f"\nShowing {len(summaries)} of {total} recordings (use --offset for more)")


def _list(context: Context, options: dict[str, Any]) -> tuple[list[Summary], int]:
    api = context.api()
    if api is not None:
        query = {"protocol": options["protocol"], "status": options["status"], "path": options["path"],
                 "limit": options["limit"], "offset": options["offset"], "sortBy": options["sort_by"],
                 "sortOrder": options["sort_order"], "includeDeleted": "true" if options["include_deleted"] else None}
        answer = msgspec.json.decode(api.request("GET", "/stream-recordings", query=query), type=RecordingList)
        return answer.recordings, answer.total
    from mockd.recording.store import ListQuery

    store = context.store()
    return _offline(lambda: store.summaries(ListQuery(**{key: options[key] for key in (
        "protocol", "status", "path", "limit", "offset", "sort_by", "sort_order", "include_deleted")})))


stream_recordings.add_command(list_recordings, "ls")


@stream_recordings.command("show")
@click.argument("recording_id")
@click.option("--json", "as_json", is_flag=True, help="The full recording as JSON (pipe it into jq).")
@connection_options
@click.pass_context
def show(ctx: click.Context, recording_id: str, as_json: bool, **connection: Any) -> None:
    """Show a recording's details.

    \b
    Example:
      mockd stream-recordings show 01HXYZ123456
      mockd stream-recordings show 01HXYZ123456 --json | jq '.websocket.frames[] | {relativeMs, direction, type}'
    """
    context = _merge(ctx, **connection)
    if as_json:  # the file as it is, streamed: a recording of any size never sits whole in the CLI
        sink = _LastByte(sys.stdout.buffer)
        _stream_recording(context, recording_id, "GET", "", sink, None)
        if sink.last != b"\n":
            sink.write(b"\n")
        sys.stdout.buffer.flush()
        return
    recording = _head(context, recording_id)
    click.echo(show_block(recording, _event_types(context, recording.id) if recording.protocol == "sse" else []))


stream_recordings.add_command(show, "get")


@stream_recordings.command("export")
@click.argument("recording_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@connection_options
@click.pass_context
def export(ctx: click.Context, recording_id: str, output: Path | None, **connection: Any) -> None:
    """Export a recording's JSON, exactly as stored.

    \b
    Example:
      mockd stream-recordings export 01HXYZ123456 -o recording.json
    """
    context = _merge(ctx, **connection)
    _write_streamed(output, "recording", f"Exporting {recording_id}", lambda sink, progress: _stream_recording(
        context, recording_id, "POST", "/export", sink, progress.update))


def _write_streamed(output: Path | None, what: str, label: str, write: Callable[[BinaryIO, Progress], int]) -> None:
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


def _stream_recording(context: Context, reference: str, method: str, suffix: str, sink: Any,
                      progress: Callable[[int, int | None], None] | None) -> int:
    """A recording's file to ``sink`` in pieces — from the server (``method`` on the recording's
    path + ``suffix``) or, offline, from the data directory; its size."""
    api = context.api()
    if api is not None:
        return api.download(method, f"/stream-recordings/{api.ref(reference)}{suffix}", sink, progress=progress)
    store = context.store()
    recording_id = _offline(lambda: store.resolve(reference))
    path = _offline(lambda: store.file_to_send(recording_id))
    if path is None:  # another layout (an imported file): converted, so read whole
        raw = _offline(lambda: store.read_bytes(recording_id))
        sink.write(raw)
        return len(raw)
    with open(path, "rb") as source:
        return write_all(pieces(source, os.fstat(source.fileno()).st_size, progress), sink)


@stream_recordings.command("convert")
@click.argument("recording_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.option("--simplify-timing", is_flag=True, help="Clamp delays: below --min-delay → 0, above --max-delay → max.")
@click.option("--min-delay", type=click.IntRange(0), default=None, help="ms (default 10; implies --simplify-timing).")
@click.option("--max-delay", type=click.IntRange(0), default=None,
              help="ms (default 5000; implies --simplify-timing).")
@click.option("--no-client-messages", is_flag=True, help="Send the server frames on timing alone.")
@click.option("--strict", is_flag=True, help="Expect exactly the recorded client messages.")
@click.option("--connection", type=click.IntRange(1), help="Only this captured connection (default: all of them).")
@click.option("--path", help="The mocks' path (default: the recorded one).")
@click.option("--match-on", help="Comma-separated request fields the mocks match on: method, path, query, body, "
              "subprotocol (default: path,subprotocol for WebSocket; method,path,query,body for SSE and HTTP).")
@click.option("--ignore-query", multiple=True, help="A query parameter never matched on (repeatable).")
@click.option("--ignore-body", multiple=True, help="A JSONPath of a body field never matched on (repeatable).")
@connection_options
@click.pass_context
def convert_command(ctx: click.Context, recording_id: str, output: Path | None, simplify_timing: bool,
                    min_delay: int | None, max_delay: int | None, no_client_messages: bool, strict: bool,
                    connection: int | None, path: str | None, match_on: str | None, ignore_query: tuple[str, ...],
                    ignore_body: tuple[str, ...], **connection_settings: Any) -> None:
    """Convert a recording into a mock config that `mockd serve --config` loads.

    \b
    Example:
      mockd stream-recordings convert 01HXYZ123456 -o chat-scenario.json
      mockd stream-recordings convert 01HXYZ123456 --simplify-timing --min-delay 50 --max-delay 2000
      mockd stream-recordings convert 01HXYZ123456 --max-delay 1000    # implies --simplify-timing
      mockd serve --config chat-scenario.json
    """
    context = _merge(ctx, **connection_settings)
    body: dict[str, Any] = {"includeClientMessages": not no_client_messages, "strictMatching": strict}
    if simplify_timing:  # else left out: --min-delay / --max-delay alone imply it
        body["simplifyTiming"] = True
    for key, value in (("minDelay", min_delay), ("maxDelay", max_delay), ("connection", connection), ("path", path)):
        if value is not None:
            body[key] = value
    if match_on is not None:
        body["matchOn"] = [field.strip() for field in match_on.split(",") if field.strip()]
    if ignore_query:
        body["ignoreQuery"] = list(ignore_query)
    if ignore_body:
        body["ignoreBody"] = list(ignore_body)
    api = context.api()
    label = f"Converting {recording_id}"
    if api is not None:
        path = f"/stream-recordings/{api.ref(recording_id)}/convert"
        _write_streamed(output, "mock config", label,
                        lambda sink, progress: api.download("POST", path, sink, body=body,
                                                                progress=progress.update))
    else:
        _write_streamed(output, "mock config", label,
                        lambda sink, _: write_all(_convert_offline(context, recording_id, body), sink))


def _convert_offline(context: Context, recording_id: str, body: dict[str, Any]) -> Iterator[bytes]:
    """The config from the data directory, written as the frames are read (bounded memory)."""
    from mockd.playback.convert import (
        ConvertOptions,
        NoSuchConnection,
        NothingToConvert,
        convert_pieces,
    )

    try:
        options = msgspec.convert(body, ConvertOptions)
    except msgspec.ValidationError as exc:
        raise CliError(f"invalid convert options: {exc}") from None
    store = context.store()
    with _store_errors(), store.reader(store.resolve(recording_id)) as reader:
        try:
            pieces = convert_pieces(reader, options, context.redact_value)
        except (NothingToConvert, NoSuchConnection) as exc:
            raise CliError(str(exc)) from None
        yield from pieces


@stream_recordings.command("delete")
@click.argument("recording_id")
@click.option("--force", is_flag=True, help="Do not ask.")
@click.option("--permanent", is_flag=True, help="Remove the file now instead of soft-deleting.")
@connection_options
@click.pass_context
def delete(ctx: click.Context, recording_id: str, force: bool, permanent: bool, **connection: Any) -> None:
    """Delete a recording (soft by default: `vacuum` removes it for good).

    \b
    Example:
      mockd stream-recordings delete 01HXYZ123456 --force
      mockd stream-recordings delete 01HXYZ123456 --permanent
    """
    context = _merge(ctx, **connection)
    recording = _head(context, recording_id)
    _confirm(f"Delete recording {recording.id[:12]}… ({recording.protocol} {recording.path})?", force,
             "deleting a recording")
    api = context.api()
    if api is not None:
        api.request("DELETE", f"/stream-recordings/{recording.id}", query={"permanent": "true" if permanent else None})
    else:
        store = context.store()
        _offline(lambda: store.delete_permanently(recording.id) if permanent else store.soft_delete(recording.id))
    kind = "Permanently deleted" if permanent else "Deleted"
    click.echo(f"{kind} recording {recording.id[:12]} ({recording.protocol} {recording.path})"
               + ("" if permanent else "; `mockd stream-recordings vacuum` removes it for good"))


stream_recordings.add_command(delete, "rm")


@stream_recordings.command("stats")
@click.option("--json", "as_json", is_flag=True)
@connection_options
@click.pass_context
def stats(ctx: click.Context, as_json: bool, **connection: Any) -> None:
    """Storage use against the quota, counts, oldest and newest.

    \b
    Example:
      mockd stream-recordings stats
    """
    context = _merge(ctx, **connection)
    api = context.api()
    figures = msgspec.json.decode(api.request("GET", "/stream-recordings/stats"), type=StorageStats) if api \
        else context.store().stats()
    if as_json:
        _echo_json(figures)
    else:
        click.echo(stats_block(figures))


@stream_recordings.command("vacuum")
@click.option("--force", is_flag=True, help="Do not ask.")
@connection_options
@click.pass_context
def vacuum(ctx: click.Context, force: bool, **connection: Any) -> None:
    """Permanently remove soft-deleted recordings.

    \b
    Example:
      mockd stream-recordings vacuum --force
    """
    context = _merge(ctx, **connection)
    _confirm("Permanently remove every soft-deleted recording?", force, "vacuum")
    api = context.api()
    with Progress("Vacuuming", lambda count: f"{count} files") as progress:
        if api is not None:
            answer = msgspec.json.decode(api.request("POST", "/stream-recordings/vacuum"), type=Vacuumed)
            removed, freed = answer.removed, answer.freed_bytes
        else:
            removed, freed = context.store().vacuum(progress.update)
    click.echo(f"Removed {removed} recordings, freed {human_size(freed)}")


@stream_recordings.command("sessions")
@click.option("--json", "as_json", is_flag=True)
@connection_options
@click.pass_context
def sessions(ctx: click.Context, as_json: bool, **connection: Any) -> None:
    """Recording sessions in progress (needs a running server).

    \b
    Example:
      mockd stream-recordings sessions
    """
    api = _merge(ctx, **connection).need_api("sessions")
    active = msgspec.json.decode(api.request("GET", "/stream-recordings/sessions"), type=list[SessionSummary])
    _echo_rows(active, as_json, sessions_table, "No active recording sessions")


@stream_recordings.command("start")
@click.option("--protocol", required=True, type=click.Choice(["websocket", "sse", "http"]))
@click.option("--path", required=True, help="Exact path or a glob with * (/ws/*).")
@click.option("--name", help="A name for the recording.")
@click.option("--max-duration", type=click.IntRange(1), help="Stop after this many ms.")
@click.option("--max-frames", type=click.IntRange(1), help="Stop after this many frames.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the id (for scripts).")
@connection_options
@click.pass_context
def start(ctx: click.Context, protocol: str, path: str, name: str | None, max_duration: int | None,
          max_frames: int | None, quiet: bool, **connection: Any) -> None:
    """Start a recording session (needs a running server).

    \b
    Example:
      ID=$(mockd stream-recordings start --protocol websocket --path /ws/chat --quiet)
    """
    api = _merge(ctx, **connection).need_api("start")
    body: dict[str, Any] = {"protocol": protocol, "path": path}
    for key, value in (("name", name), ("maxDurationMs", max_duration), ("maxFrames", max_frames)):
        if value is not None:
            body[key] = value
    answer = msgspec.json.decode(api.request("POST", "/stream-recordings/start", body=body), type=Started)
    if quiet:
        click.echo(answer.session_id)
        return
    click.echo(f"Recording {answer.session_id} started ({protocol} {path})")
    if answer.warning:
        click.echo(f"Warning: {answer.warning}", err=True)


@stream_recordings.command("stop")
@click.argument("recording_id")
@connection_options
@click.pass_context
def stop(ctx: click.Context, recording_id: str, **connection: Any) -> None:
    """Stop a recording session and print the finished recording's summary (needs a running server).

    \b
    Example:
      mockd stream-recordings stop 01HXYZ123456
    """
    api = _merge(ctx, **connection).need_api("stop")
    recording = decode_recording(api.request("POST", f"/stream-recordings/{api.ref(recording_id)}/stop"))
    click.echo(summary_line(recording))


@stream_recordings.command("replay")
@click.argument("recording_id")
@click.option("--mode", default="pure", show_default=True, type=click.Choice(["pure", "synchronized", "triggered"]))
@click.option("--timing-scale", type=click.FloatRange(0, MAX_TIMING_SCALE),
              help=f"Multiply every delay (0.5 = twice as fast, 0 = no waiting; at most {MAX_TIMING_SCALE:g}).")
@click.option("--strict", is_flag=True, help="Synchronized: client messages must equal the recorded ones.")
@click.option("--timeout", type=click.IntRange(1), help="Synchronized: ms to wait for each client message.")
@click.option("--auto-advance", is_flag=True, help="Triggered: send the first frame at once on connect.")
@click.option("--path", help="Where the replay waits for its client (default: the recorded path).")
@click.option("--connection", type=click.IntRange(1), help="Replay this captured connection (default: the first "
              "with frames).")
@click.option("--expires-after", type=click.FloatRange(0, MAX_EXPIRES_AFTER, min_open=True),
              help=f"Seconds to wait for a client before the replay expires (default {DEFAULT_EXPIRES_AFTER:g}).")
@connection_options
@click.pass_context
def replay(ctx: click.Context, recording_id: str, mode: str, timing_scale: float | None, strict: bool,
           timeout: int | None, auto_advance: bool, path: str | None, connection: int | None,
           expires_after: float | None, **connection_settings: Any) -> None:
    """Replay a recording to the next client on its path; prints the replay session id (needs a server).

    \b
    Example:
      R=$(mockd stream-recordings replay 01HXYZ123456 --mode triggered)
      mockd stream-recordings advance $R --count 3
      mockd stream-recordings replay 01HXYZ123456 --connection 2 --expires-after 60
    """
    api = _merge(ctx, **connection_settings).need_api("replay")
    body: dict[str, Any] = {"mode": mode}
    for key, value in (("timingScale", timing_scale), ("timeout", timeout), ("path", path),
                       ("connection", connection), ("expiresAfter", expires_after)):
        if value is not None:
            body[key] = value
    if strict:
        body["strictMatching"] = True
    if auto_advance:
        body["autoAdvanceOnConnect"] = True
    answer = json.loads(api.request("POST", f"/stream-recordings/{api.ref(recording_id)}/replay", body=body))
    click.echo(answer["sessionId"])


@stream_recordings.command("advance")
@click.argument("session_id")
@click.option("--count", type=click.IntRange(1), help="Send the next N server frames (default 1).")
@click.option("--until", help="Send up to and including the first frame whose data contains this.")
@connection_options
@click.pass_context
def advance(ctx: click.Context, session_id: str, count: int | None, until: str | None, **connection: Any) -> None:
    """Triggered replay: send the next server frame(s); returns once they are on the wire (needs a server).

    \b
    Example:
      mockd stream-recordings advance 01J0ABCDEF12 --until goodbye
    """
    if count is not None and until is not None:
        raise click.UsageError("give --count or --until, not both")
    api = _merge(ctx, **connection).need_api("advance")
    body: dict[str, Any] = {}
    if count is not None:
        body["count"] = count
    if until is not None:
        body["until"] = until
    answer = json.loads(api.request("POST", f"/replay/{api.ref(session_id)}/advance", body=body))
    state = "complete" if answer["complete"] else answer["status"]
    click.echo(f"Sent {answer['framesSent']} frame(s); {answer['currentFrame']} of {answer['totalFrames']} sent; "
               f"{state}")


@stream_recordings.command("replays")
@click.option("--json", "as_json", is_flag=True, help="The API's array of replay statuses.")
@connection_options
@click.pass_context
def replays(ctx: click.Context, as_json: bool, **connection: Any) -> None:
    """Replay sessions, pending, running and finished (needs a running server).

    \b
    Example:
      mockd stream-recordings replays
      mockd stream-recordings replays --json | jq '.[] | select(.status == "error")'
    """
    api = _merge(ctx, **connection).need_api("replays")
    sessions = api.replays()
    _echo_rows(sessions, as_json, replays_table, "No replay sessions")


@stream_recordings.command("cancel")
@click.argument("replay_id")
@connection_options
@click.pass_context
def cancel(ctx: click.Context, replay_id: str, **connection: Any) -> None:
    """End a replay session: a pending one takes no client, a running one's client is closed with 1001
    (needs a running server).

    \b
    Example:
      mockd stream-recordings cancel 01J0ABCDEF12
    """
    api = _merge(ctx, **connection).need_api("cancel")
    before = api.replay_status(replay_id)
    if before.finished:
        click.echo(f"Replay {before.id[:12]} had already finished ({before.status}); nothing to cancel")
        return
    api.cancel_replay(before.id)
    after = api.replay_status(before.id)
    click.echo(f"Cancelled replay {after.id[:12]} of {after.recording_id[:12]} on {after.path or '-'} "
               f"(was {before.status}; {after.frames_sent} of {after.total_frames} frames sent)")
