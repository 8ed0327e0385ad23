"""``mockd stream-recordings``: the click commands. Each one picks the backend (:mod:`.backend`: the
running mockd's admin API, or — when no server answers — the data directory itself), asks it one thing,
and prints the answer (:mod:`.output`; formats: docs/cli.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from mockd.cli.backend import DEFAULT_ADMIN_URL, Backend, CommandTarget
from mockd.cli.output import (confirm, echo_file, echo_json, echo_rows, human_size, recordings_table, replays_table,
                              sessions_table, show_block, stats_block, summary_line, write_streamed)
from mockd.cli.progress import Progress
from mockd.playback.plan import DEFAULT_EXPIRES_AFTER, MAX_EXPIRES_AFTER, MAX_TIMING_SCALE


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


def _backend(ctx: click.Context, admin_url: str | None = None, admin_token: str | None = None,
             data_dir: str | None = None) -> Backend:
    """The backend of the group's connection settings, overridden by those given to the subcommand."""
    connection = ctx.find_object(CommandTarget)
    assert connection is not None
    if admin_url:
        connection.admin_url = admin_url
    if admin_token:
        connection.token = admin_token
    if data_dir:
        connection.data_dir = data_dir
    return connection.backend()


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
    ctx.obj = CommandTarget(admin_url=admin_url or None, token=admin_token, data_dir=data_dir or None)


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
def list_recordings(ctx: click.Context, protocol: str | None, status: str | None, path: str | None, as_json: bool,
                    limit: int, offset: int, sort_by: str, sort_order: str, include_deleted: bool,
                    **connection: Any) -> None:
    """List recordings, newest first.

    \b
    Example:
      mockd stream-recordings list --protocol websocket
      mockd stream-recordings list --limit 10 --offset 20
    """
    summaries, total = _backend(ctx, **connection).recordings(
        protocol=protocol, status=status, path=path, limit=limit, offset=offset, sort_by=sort_by,
        sort_order=sort_order, include_deleted=include_deleted)
    if as_json:
        echo_json(summaries)
        return
    if not summaries:
        click.echo("No stream recordings found")
        return
    click.echo(recordings_table(summaries))
    if offset + len(summaries) < total:
        click.echo(f"\nShowing {len(summaries)} of {total} recordings (use --offset for more)")


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
    backend = _backend(ctx, **connection)
    if as_json:  # the file as it is, streamed: a recording of any size never sits whole in the CLI
        echo_file(lambda sink: backend.write_recording(recording_id, sink, None))
        return
    recording = backend.head(recording_id)
    click.echo(show_block(recording, backend.event_types(recording.id) if recording.protocol == "sse" else []))


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
    backend = _backend(ctx, **connection)
    write_streamed(output, "recording", f"Exporting {recording_id}",
                   lambda sink, progress: backend.export(recording_id, sink, progress.update))


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
    backend = _backend(ctx, **connection_settings)
    write_streamed(output, "mock config", f"Converting {recording_id}",
                   lambda sink, progress: backend.convert(recording_id, body, sink, progress.update))


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
    backend = _backend(ctx, **connection)
    recording = backend.head(recording_id)
    confirm(f"Delete recording {recording.id[:12]}… ({recording.protocol} {recording.path})?", force,
            "deleting a recording")
    backend.delete(recording.id, permanent)
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
    figures = _backend(ctx, **connection).stats()
    if as_json:
        echo_json(figures)
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
    confirm("Permanently remove every soft-deleted recording?", force, "vacuum")
    backend = _backend(ctx, **connection)
    with Progress("Vacuuming", lambda count: f"{count} files") as progress:
        answer = backend.vacuum(progress.update)
    click.echo(f"Removed {answer.removed} recordings, freed {human_size(answer.freed_bytes)}")


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
    echo_rows(_backend(ctx, **connection).sessions(), as_json, sessions_table, "No active recording sessions")


@stream_recordings.command("start")
@click.option("--protocol", required=True, type=click.Choice(["websocket", "sse", "http"]))
@click.option("--path", required=True, help="Exact path or a glob with * (/ws/*).")
@click.option("--name", help="A name for the recording.")
@click.option("--max-duration", type=click.IntRange(1), help="Stop after this many ms.")
@click.option("--max-frames", type=click.IntRange(1), help="Stop after this many frames.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the id (for scripts).")
@connection_options
@click.pass_context
def start(ctx: click.Context, protocol: Literal["websocket", "sse", "http"], path: str, name: str | None,
          max_duration: int | None, max_frames: int | None, quiet: bool, **connection: Any) -> None:
    """Start a recording session (needs a running server).

    \b
    Example:
      ID=$(mockd stream-recordings start --protocol websocket --path /ws/chat --quiet)
    """
    answer = _backend(ctx, **connection).start_recording(protocol, path, name, max_duration, max_frames)
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
    click.echo(summary_line(_backend(ctx, **connection).stop_recording(recording_id)))


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
    answer = _backend(ctx, **connection_settings).replay(
        recording_id, mode=mode, timing_scale=timing_scale, timeout=timeout, path=path, connection=connection,
        expires_after=expires_after, strict_matching=strict or None, auto_advance_on_connect=auto_advance or None)
    click.echo(answer.session_id)


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
    answer = _backend(ctx, **connection).advance(session_id, count, until)
    state = "complete" if answer.complete else answer.status
    click.echo(f"Sent {answer.frames_sent} frame(s); {answer.current_frame} of {answer.total_frames} sent; {state}")


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
    echo_rows(_backend(ctx, **connection).replays(), as_json, replays_table, "No replay sessions")


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
    before, after = _backend(ctx, **connection).cancel_replay(replay_id)
    if after is None:
        click.echo(f"Replay {before.id[:12]} had already finished ({before.status}); nothing to cancel")
        return
    click.echo(f"Cancelled replay {after.id[:12]} of {after.recording_id[:12]} on {after.path or '-'} "
               f"(was {before.status}; {after.frames_sent} of {after.total_frames} frames sent)")
