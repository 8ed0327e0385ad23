"""``mockd stream-recordings`` (alias ``mockd sr``), black-box (docs/cli.md).

The installed ``mockd`` executable runs as a subprocess (a pseudo-terminal where a terminal matters),
(a) against a live server (``--admin-url``, ``MOCKD_ADMIN_URL``) and (b) with no server answering,
on the data directory of a stopped server (``--data-dir``, ``MOCKD_DATA_DIR``).

The recordings are real: one module-wide ``mockd serve`` with an echo WebSocket mock and an SSE mock is
recorded through the admin API while ``websockets`` / ``urllib`` clients drive traffic, then stopped.
Its data directory stays untouched (the "stopped server" of offline mode; tests that change
recordings work on copies), and a second server serves a copy of it for the live tests, so live and
offline output can be compared byte for byte.

The formatting helpers of :mod:`mockd.cli.output` are also tested directly against the literal
examples of docs/cli.md and the README (``12.3s``, ``850ms``, ``2m05s``, ``8.2 KB``).
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from processes import MockdFactory, RunningMockd, mockd_command, run_mockd
from configs import mocks_config, ws_mock
from polling import poll
from httpclient import call
from sessions import start_session_sync, stop_session_sync
from upstreams import unreachable_url
from websockets.asyncio.client import connect

from mockd.cli.output import TABLE_WIDTH, human_duration, human_size, shorten, table
from mockd.cli.progress import CLEAR_LINE

DEADLINE = 10.0  # seconds: for anything that should happen "soon" on a noisy 2-core machine
SEED_HEADER = "ID            PROTOCOL   PATH           STATUS    FRAMES  DURATION  SIZE"
LIST_COLUMNS = ["ID", "PROTOCOL", "PATH", "STATUS", "FRAMES", "DURATION", "SIZE"]
SESSION_COLUMNS = ["ID", "PROTOCOL", "PATH", "DURATION", "FRAMES", "CONNECTIONS"]
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
DURATION_FORMAT = re.compile(r"\d+ms|\d+\.\ds|\d+m\d\ds|\d+h\d\dm")
SIZE_FORMAT = re.compile(r"\d+ B|\d+\.\d [KMG]B")
ANSI = "\x1b"
LONG_PATH = "/ws/" + "tenant-0123456789/" * 5 + "stream"  # 100 characters: must be shortened in a table
SSE_EVENTS = [{"type": "update", "data": '{"n": 1}', "id": "1"}, {"data": "line one\nline two"},
              {"type": "done", "data": "bye", "id": "3"}]
CONFIG = mocks_config(
    ws_mock("chat", "/ws/chat"),
    ws_mock("long", LONG_PATH),
    {"id": "events", "type": "http", "http": {"matcher": {"method": "GET", "path": "/events"},
                                              "sse": {"events": SSE_EVENTS, "timing": {"fixedDelay": 10}}}},
)
CHAT_BINARY = b"\x00\x01\x02"


# --- making real recordings -----------------------------------------------------------------------


def live_recording(server: RunningMockd, recording_id: str) -> dict[str, Any]:
    reply = call("GET", f"{server.admin_url}/stream-recordings/{recording_id}")
    assert reply.status == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def stop_recording(server: RunningMockd, recording_id: str, captured: Callable[[dict[str, Any]], bool]) -> None:
    """Stop once ``captured(recording so far)`` holds: every frame of the traffic is in."""
    poll(lambda: captured(live_recording(server, recording_id)), f"the traffic of {recording_id} to be captured")
    stop_session_sync(server, recording_id)


def both_closes(recording: dict[str, Any]) -> bool:
    return sum(frame["type"] == "close" for frame in recording["websocket"]["frames"]) >= 2


async def chat(url: str, ping: bool = False) -> None:
    """Two text messages and a binary one, echoed; with ``ping``, a ping answered by a pong; then a
    normal close."""
    async with connect(url, open_timeout=DEADLINE, ping_interval=None) as ws:
        for message in ("hello", '{"type":"join"}', CHAT_BINARY):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == message
        if ping:
            pong = await ws.ping(b"hi")
            await asyncio.wait_for(pong, DEADLINE)
        await ws.close(1000, "bye")


async def one_message(url: str) -> None:
    async with connect(url, open_timeout=DEADLINE, ping_interval=None) as ws:
        await ws.send("just one")
        assert await asyncio.wait_for(ws.recv(), DEADLINE) == "just one"


def read_events(server: RunningMockd) -> None:
    reply = call("GET", f"{server.mock_url}/events", timeout=DEADLINE)
    assert reply.status == 200
    assert "data: bye" in reply.text


@dataclass
class Recorded:
    """The module's recordings: ``ids`` newest first (as ``list`` shows them)."""

    stopped_dir: Path  # the data directory of a stopped server; never changed by a test
    live: RunningMockd  # a server on a copy of it
    long: str
    chat: str
    sse: str
    ticker: str

    @property
    def ids(self) -> list[str]:
        return [self.ticker, self.sse, self.chat, self.long]

    def copy(self, destination: Path) -> Path:
        """A copy of the stopped server's data directory, for a test that changes recordings."""
        shutil.copytree(self.stopped_dir, destination)
        return destination


@pytest.fixture(scope="module")
def recorded(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    recorder = mockd_module.start(CONFIG)
    long = start_session_sync(recorder, "websocket", LONG_PATH, "long-path")
    asyncio.run(one_message(recorder.ws_url(LONG_PATH)))
    stop_recording(recorder, long, both_closes)
    chat_id = start_session_sync(recorder, "websocket", "/ws/chat", "chat-session")
    asyncio.run(chat(recorder.ws_url("/ws/chat")))
    stop_recording(recorder, chat_id, both_closes)
    sse = start_session_sync(recorder, "sse", "/events")
    read_events(recorder)
    stop_recording(recorder, sse, lambda r: len(r["sse"]["events"]) == 3)
    ticker = start_session_sync(recorder, "sse", "/events", "ticker-2")
    read_events(recorder)
    stop_recording(recorder, ticker, lambda r: len(r["sse"]["events"]) == 3)
    assert recorder.stop() == 0
    live_dir = tmp_path_factory.mktemp("live") / "data"
    shutil.copytree(recorder.data_dir, live_dir)
    live = mockd_module.start(CONFIG, data_dir=live_dir)
    return Recorded(recorder.data_dir, live, long, chat_id, sse, ticker)


@pytest.fixture(scope="module")
def nobody() -> Iterator[str]:
    """An admin URL where nothing answers (a bound, non-listening port: connections are refused)."""
    with unreachable_url() as url:
        yield url


# --- running the CLI ------------------------------------------------------------------------------


def sr(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``mockd stream-recordings ARGS --admin-url URL``."""
    return run_mockd("stream-recordings", *args, "--admin-url", url, env=env)


def offline(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mockd("stream-recordings", *args, "--admin-url", url, "--data-dir", str(data_dir))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def assert_one_line_error(result: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit 1, one line on stderr (no traceback), nothing on stdout; returns the line."""
    assert result.returncode == 1, f"exit {result.returncode}: {result.stdout!r} {result.stderr!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.stderr!r}"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for mention in mentions:
        assert mention in lines[0], f"{mention!r} not in {lines[0]!r}"
    return lines[0]


def assert_offline_notice(result: subprocess.CompletedProcess[str], data_dir: Path, extra_lines: int = 0) -> None:
    """Offline mode says so in exactly one line on stderr (naming the data directory)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 + extra_lines, f"expected one notice line on stderr, got {result.stderr!r}"
    assert str(data_dir) in lines[0], lines[0]


def recording_files(data_dir: Path) -> dict[str, bytes]:
    """The recording files (``<ULID>.json``) of a data directory, by name (index or journal files aside)."""
    return {p.name: p.read_bytes() for p in data_dir.iterdir() if ULID.fullmatch(p.stem) and p.suffix == ".json"}


def api_summaries(server: RunningMockd, query: str = "") -> list[dict[str, Any]]:
    reply = call("GET", f"{server.admin_url}/stream-recordings{query}")
    assert reply.status == 200, reply.text
    summaries: list[dict[str, Any]] = reply.json()["recordings"]
    return summaries


def run_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    """As :func:`run_mockd`, but stdout as bytes (export must be byte-exact)."""
    return subprocess.run([*mockd_command(), *args], capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                          check=False)


# --- reading tables -------------------------------------------------------------------------------


def table_rows(text: str, columns: list[str]) -> tuple[str, list[list[str]]]:
    """The header line and each row cut into cells at the header's column positions, checking that
    every cell starts exactly under its header, two spaces after the previous column's width."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    starts = [header.index(name) for name in columns]
    assert starts == sorted(starts) and starts[0] == 0, header
    rows = []
    for line in lines[1:]:
        if line.startswith("Showing "):
            continue
        cells = []
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else len(line)
            if index:
                assert line[start - 2:start] == "  ", f"column {columns[index]} not aligned in {line!r}"
            assert not line[start:start + 1].isspace(), f"column {columns[index]} not aligned in {line!r}"
            cells.append(line[start:end].strip())
        rows.append(cells)
    return header, rows


def expected_row(summary: dict[str, Any]) -> list[str]:
    return [summary["id"][:12], summary["protocol"], summary["path"], summary["status"], str(summary["frameCount"]),
            human_duration(summary["duration"]), human_size(summary["fileSize"])]


def listed_ids(text: str) -> list[str]:
    if text.strip() == "No stream recordings found":
        return []
    return [row[0] for row in table_rows(text, LIST_COLUMNS)[1]]


# --- a pseudo-terminal ----------------------------------------------------------------------------


@dataclass
class PtyRun:
    output: str  # stdout and stderr as the terminal showed them (CRLF turned into LF)
    returncode: int


def run_in_pty(args: list[str], answers: list[tuple[str, str]] | None = None,
               env: dict[str, str] | None = None) -> PtyRun:
    """Run ``mockd ARGS`` with stdin, stdout and stderr on a pseudo-terminal. ``answers``: for each
    (regex, text) in turn, type ``text`` once the output (since the last answer) matches ``regex``."""
    pending = list(answers or [])
    master, slave = pty.openpty()
    process = subprocess.Popen([*mockd_command(), *args], stdin=slave, stdout=slave, stderr=slave,
                               env={**os.environ, "TERM": "xterm-256color", **(env or {})}, start_new_session=True)
    os.close(slave)
    output, seen_from = b"", 0
    deadline = time.monotonic() + DEADLINE
    try:
        while True:
            if pending and re.search(pending[0][0], output[seen_from:].decode(errors="replace")):
                os.write(master, pending.pop(0)[1].encode())
                seen_from = len(output)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"mockd {' '.join(args)} still running on the terminal; it showed {output!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child has closed the terminal
                data = b""
            if not data:
                break
            output += data
        returncode = process.wait(DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert not pending, f"never saw {pending[0][0]!r}; the terminal showed {output!r}"
    return PtyRun(output.decode().replace("\r\n", "\n"), returncode)


# --- (pure) the formatting helpers ------------------------------------------------------------------


@pytest.mark.parametrize(("ms", "text"), [
    (0, "0ms"), (850, "850ms"), (999, "999ms"), (1000, "1.0s"), (5100, "5.1s"), (12_300, "12.3s"),
    (12_345, "12.3s"), (59_900, "59.9s"), (60_000, "1m00s"), (125_000, "2m05s"), (125_999, "2m05s"),
    (3_599_000, "59m59s"),
])
def test_human_duration(ms: int, text: str) -> None:
    assert human_duration(ms) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KB"), (2150, "2.1 KB"), (8432, "8.2 KB"),
    (1_258_291, "1.2 MB"), (8_598_323, "8.2 MB"), (524_288_000, "500.0 MB"),
])
def test_human_size(size: int, text: str) -> None:
    """Powers of 1024: a recording of ``fileSizeBytes: 8432`` is listed as ``8.2 KB``."""
    assert human_size(size) == text


@pytest.mark.parametrize("width", [13, 20, 39, 60])
def test_shorten_keeps_both_ends_around_an_ellipsis(width: int) -> None:
    shortened = shorten(LONG_PATH, width)
    assert len(shortened) == width
    assert shortened.count("…") == 1
    head, tail = shortened.split("…")
    assert LONG_PATH.startswith(head) and LONG_PATH.endswith(tail)
    assert abs(len(head) - len(tail)) <= 1


@pytest.mark.parametrize("text", ["", "/ws/chat", "x" * 13])
def test_shorten_leaves_what_fits(text: str) -> None:
    assert shorten(text, 13) == text


def test_table_aligns_columns_and_shrinks_one_to_fit() -> None:
    rows = [["01HXYZ123456", "websocket", "/ws/chat", "complete"], ["01HXYZ789012", "sse", "/x" * 100, "incomplete"]]
    text = table(["ID", "PROTOCOL", "PATH", "STATUS"], rows, minimum={"ID": 12, "PATH": 13}, shrink="PATH")
    lines = text.splitlines()
    assert all(len(line) <= TABLE_WIDTH for line in lines), [len(line) for line in lines]
    header, cells = table_rows(text, ["ID", "PROTOCOL", "PATH", "STATUS"])
    assert header.startswith("ID            PROTOCOL   PATH")
    assert cells[0] == rows[0]
    assert cells[1][3] == "incomplete" and "…" in cells[1][2]
    assert text == table(["ID", "PROTOCOL", "PATH", "STATUS"], rows, minimum={"ID": 12, "PATH": 13}, shrink="PATH")


def test_seed_table_is_reproduced_exactly() -> None:
    rows = [["01HXYZ123456", "websocket", "/ws/chat", "complete", "42", human_duration(12_345), human_size(8432)],
            ["01HXYZ789012", "sse", "/events", "complete", "15", human_duration(5100), human_size(2150)]]
    assert table(LIST_COLUMNS, rows, minimum={"ID": 12, "PATH": 13}, shrink="PATH").splitlines() == [
        SEED_HEADER,
        "01HXYZ123456  websocket  /ws/chat       complete  42      12.3s     8.2 KB",
        "01HXYZ789012  sse        /events        complete  15      5.1s      2.1 KB",
    ]


# --- list -------------------------------------------------------------------------------------------


def test_list_is_the_seeds_table_and_says_when_it_is_cut(recorded: Recorded) -> None:
    """The newest three have both protocols and short paths: the header of docs/cli.md exactly, aligned rows."""
    output = ok(sr(recorded.live.admin_url, "list", "--limit", "3"))
    header, rows = table_rows(output, LIST_COLUMNS)
    assert header == SEED_HEADER
    summaries = api_summaries(recorded.live)
    assert rows == [expected_row(summary) for summary in summaries[:3]]
    for row in rows:
        assert DURATION_FORMAT.fullmatch(row[5]) and SIZE_FORMAT.fullmatch(row[6]), row
    assert output.rstrip().splitlines()[-1] == "Showing 3 of 4 recordings (use --offset for more)"


def test_list_fits_in_100_columns_shortening_long_paths(recorded: Recorded) -> None:
    output = ok(sr(recorded.live.admin_url, "list"))
    assert all(len(line) <= 100 for line in output.splitlines()), output
    _, rows = table_rows(output, LIST_COLUMNS)
    assert [row[0] for row in rows] == [i[:12] for i in recorded.ids]
    long_path = rows[-1][2]
    assert "…" in long_path and len(long_path) < len(LONG_PATH)
    head, tail = long_path.split("…")
    assert LONG_PATH.startswith(head) and LONG_PATH.endswith(tail) and len(head) >= 4 and len(tail) >= 4
    assert "Showing" not in output  # nothing cut


@pytest.mark.parametrize(("flags", "which"), [
    (["--protocol", "websocket"], ["chat", "long"]),
    (["--protocol", "sse"], ["ticker", "sse"]),
    (["--status", "complete"], ["ticker", "sse", "chat", "long"]),
    (["--status", "incomplete"], []),
    (["--path", "/ws/chat"], ["chat"]),
    (["--protocol", "sse", "--limit", "1"], ["ticker"]),
], ids=["websocket", "sse", "complete", "incomplete", "path", "sse-limit-1"])
def test_list_filters(recorded: Recorded, flags: list[str], which: list[str]) -> None:
    expected = [getattr(recorded, name) for name in which]
    output = ok(sr(recorded.live.admin_url, "list", *flags))
    assert listed_ids(output) == [i[:12] for i in expected]
    if not expected:
        assert output.strip() == "No stream recordings found"
    as_json = json.loads(ok(sr(recorded.live.admin_url, "list", *flags, "--json")))
    assert [summary["id"] for summary in as_json] == expected


def test_list_json_is_an_array_of_the_api_summaries(recorded: Recorded) -> None:
    output = ok(sr(recorded.live.admin_url, "list", "--json"))
    summaries = json.loads(output)
    assert isinstance(summaries, list)
    assert summaries == api_summaries(recorded.live)
    for summary in summaries:
        assert {"id", "name", "protocol", "path", "status", "startTime", "duration", "frameCount",
                "fileSize"} <= set(summary)
    assert ANSI not in output


@pytest.mark.parametrize(("limit", "offset", "showing"), [
    (2, 0, "Showing 2 of 4 recordings (use --offset for more)"),
    (2, 1, "Showing 2 of 4 recordings (use --offset for more)"),
    (2, 2, None),
    (20, 0, None),
    (3, 3, None),
])
def test_list_limit_and_offset(recorded: Recorded, limit: int, offset: int, showing: str | None) -> None:
    args = ["list", "--limit", str(limit), "--offset", str(offset)]
    output = ok(sr(recorded.live.admin_url, *args))
    assert listed_ids(output) == [i[:12] for i in recorded.ids[offset:offset + limit]]
    last = output.rstrip().splitlines()[-1]
    if showing is None:
        assert not last.startswith("Showing"), output
    else:
        assert last == showing
    page = json.loads(ok(sr(recorded.live.admin_url, *args, "--json")))
    assert [summary["id"] for summary in page] == recorded.ids[offset:offset + limit]


def test_list_of_an_empty_store(tmp_path: Path, nobody: str) -> None:
    empty = tmp_path / "empty"
    result = offline(nobody, empty, "list")
    assert ok(result) == "No stream recordings found\n"
    assert_offline_notice(result, empty)
    assert json.loads(ok(offline(nobody, empty, "list", "--json"))) == []


def test_admin_url_from_the_environment_or_the_group(recorded: Recorded) -> None:
    expected = ok(sr(recorded.live.admin_url, "list"))
    from_env = run_mockd("stream-recordings", "list", env={"MOCKD_ADMIN_URL": recorded.live.admin_url})
    assert ok(from_env) == expected
    assert from_env.stderr == ""  # no offline notice: the server answered
    from_group = run_mockd("sr", "--admin-url", recorded.live.admin_url, "ls")
    assert ok(from_group) == expected and from_group.stderr == ""


def test_list_answers_quickly(recorded: Recorded) -> None:
    """P7 sanity check only (the target, 0.5 s, belongs to the benchmark): a generous 2 s bound."""
    started = time.monotonic()
    ok(sr(recorded.live.admin_url, "list"))
    assert time.monotonic() - started < 2.0


# --- show -------------------------------------------------------------------------------------------


def seconds_of(timestamp: str) -> str:
    return timestamp[:19] + "Z"


def test_show_websocket_is_the_seeds_block(recorded: Recorded) -> None:
    recording = live_recording(recorded.live, recorded.chat)
    output = ok(sr(recorded.live.admin_url, "show", recorded.chat[:12]))
    lines = output.rstrip("\n").splitlines()
    stats = recording["stats"]
    assert lines[:10] == [
        f"ID:          {recorded.chat}",
        "Name:        chat-session",
        "Protocol:    websocket",
        "Path:        /ws/chat",
        "Status:      complete",
        f"Started:     {seconds_of(recording['startTime'])}",
        f"Ended:       {seconds_of(recording['endTime'])}",
        f"Duration:    {human_duration(recording['duration'])}",
        f"Frames:      {stats['frameCount']}",
        f"File Size:   {human_size(stats['fileSizeBytes'])}",
    ]
    assert lines[10:16] == [
        "",
        "WebSocket Details:",
        "  Text Frames:   4",
        "  Binary Frames: 2",
        "  Ping/Pong:     0",
        "  Close Code:    1000",
    ]
    assert any(re.fullmatch(r"  Connections:\s+1", line) for line in lines[16:]), lines
    assert any(line.startswith("  Subprotocol:") for line in lines[16:]), lines
    assert stats["frameCount"] == len(recording["websocket"]["frames"]) == 8
    assert all(len(line) <= 100 for line in lines)


def test_show_counts_pings_and_pongs(mockd: MockdFactory) -> None:
    """A client ping on the echo mock, answered by its pong: both are recorded and counted."""
    server = mockd.start(CONFIG)
    recording_id = start_session_sync(server, "websocket", "/ws/chat")
    asyncio.run(chat(server.ws_url("/ws/chat"), ping=True))
    stop_recording(server, recording_id, both_closes)
    output = ok(sr(server.admin_url, "show", recording_id[:12]))
    assert "\n  Text Frames:   4\n  Binary Frames: 2\n  Ping/Pong:     2\n  Close Code:    1000\n" in output, output
    assert "\nFrames:      10\n" in output, output


def test_show_sse_has_sse_details(recorded: Recorded) -> None:
    output = ok(sr(recorded.live.admin_url, "get", recorded.sse[:12]))
    lines = output.rstrip("\n").splitlines()
    assert [line.split(":")[0] for line in lines[:10]] == ["ID", "Name", "Protocol", "Path", "Status", "Started",
                                                           "Ended", "Duration", "Frames", "File Size"]
    assert lines[2] == "Protocol:    sse" and lines[3] == "Path:        /events" and lines[8] == "Frames:      3"
    assert lines[10:12] == ["", "SSE Details:"]
    details = dict(re.fullmatch(r"  ([A-Za-z ]+):\s+(.*)", line).groups() for line in lines[12:])  # type: ignore[union-attr]
    assert details["Events"] == "3"
    assert set(details["Event Types"].replace(",", " ").split()) == {"update", "message", "done"}
    assert details["Connections"] == "1"


def test_show_json_is_the_full_recording_and_feeds_jq(recorded: Recorded) -> None:
    output = ok(sr(recorded.live.admin_url, "show", recorded.chat[:12], "--json"))
    assert ANSI not in output
    recording = json.loads(output)
    assert recording == live_recording(recorded.live, recorded.chat)
    expected = [{"relativeMs": f["relativeMs"], "direction": f["direction"], "type": f["type"]}
                for f in recording["websocket"]["frames"]]
    assert [item["type"] for item in expected].count("text") == 4
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed: the JSON was checked in Python, the pipeline of docs/cli.md was not run")
    show = f"{' '.join(mockd_command())} stream-recordings show {recorded.chat[:12]} --json"
    seed_filter = "'.websocket.frames[] | {relativeMs, direction, type}'"
    command = f"{show} --admin-url {recorded.live.admin_url} | {jq} -c {seed_filter}"
    piped = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=30,
                           check=False)
    assert piped.returncode == 0, piped.stderr
    assert [json.loads(line) for line in piped.stdout.splitlines()] == expected


def test_full_id_and_prefix_give_the_same_answer(recorded: Recorded) -> None:
    by_prefix = ok(sr(recorded.live.admin_url, "show", recorded.sse[:12]))
    assert ok(sr(recorded.live.admin_url, "show", recorded.sse)) == by_prefix
    assert ok(sr(recorded.live.admin_url, "show", recorded.sse[:12].lower())) == by_prefix


@pytest.mark.parametrize(("alias", "command"), [(["sr", "ls"], ["stream-recordings", "list"]),
                                                (["sr", "get", "{id}"], ["stream-recordings", "show", "{id}"]),
                                                (["sr", "list", "--json"], ["stream-recordings", "ls", "--json"])],
                         ids=["ls", "get", "sr"])
def test_aliases(recorded: Recorded, alias: list[str], command: list[str]) -> None:
    def run(args: list[str]) -> str:
        return ok(run_mockd(*(a.replace("{id}", recorded.chat[:12]) for a in args),
                            "--admin-url", recorded.live.admin_url))

    assert run(alias) == run(command)


# --- export -----------------------------------------------------------------------------------------


def test_export_to_stdout_is_the_files_bytes(recorded: Recorded) -> None:
    result = run_bytes("stream-recordings", "export", recorded.chat[:12], "--admin-url", recorded.live.admin_url)
    assert result.returncode == 0, result.stderr
    stored = (recorded.live.data_dir / f"{recorded.chat}.json").read_bytes()
    assert result.stdout == stored
    assert result.stderr == b""
    api = call("POST", f"{recorded.live.admin_url}/stream-recordings/{recorded.chat}/export")
    assert api.body == stored


def test_export_to_a_file_confirms_in_one_line(recorded: Recorded, tmp_path: Path) -> None:
    target = tmp_path / "recording.json"
    result = sr(recorded.live.admin_url, "export", recorded.sse[:12], "-o", str(target))
    assert ok(result) == ""
    assert target.read_bytes() == (recorded.live.data_dir / f"{recorded.sse}.json").read_bytes()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0], result.stderr


# --- convert ----------------------------------------------------------------------------------------


async def replay_chat(url: str) -> list[str | bytes]:
    """Against the converted echo conversation: any message gets the next recorded server message."""
    received: list[str | bytes] = []
    async with connect(url, open_timeout=DEADLINE, ping_interval=None) as ws:
        for nudge in ("a", "b", "c"):
            await ws.send(nudge)
            received.append(await asyncio.wait_for(ws.recv(), DEADLINE))
    return received


@pytest.mark.parametrize("flags", [[], ["--simplify-timing", "--min-delay", "50", "--max-delay", "2000"]],
                         ids=["as-recorded", "simplified"])
@pytest.mark.parametrize("which", ["chat", "sse"])
def test_convert_gives_a_config_that_serve_loads(recorded: Recorded, mockd: MockdFactory, tmp_path: Path,
                                                 which: str, flags: list[str]) -> None:
    recording_id = getattr(recorded, which)
    target = tmp_path / "scenario.json"
    to_stdout = ok(sr(recorded.live.admin_url, "convert", recording_id[:12], *flags))
    to_file = sr(recorded.live.admin_url, "convert", recording_id[:12], *flags, "-o", str(target))
    assert ok(to_file) == ""
    assert len(to_file.stderr.strip().splitlines()) == 1 and str(target) in to_file.stderr
    assert target.read_text() == to_stdout
    body = {"simplifyTiming": True, "minDelay": 50, "maxDelay": 2000} if flags else {}
    api = call("POST", f"{recorded.live.admin_url}/stream-recordings/{recording_id}/convert", body)
    assert api.status == 200 and api.body == target.read_bytes()
    document = json.loads(to_stdout)
    assert document["version"] == "1.0" and len(document["mocks"]) == 1
    if flags:
        delays = re.findall(r'"(?:delay|duration)": "(\d+)ms"', to_stdout)
        delays += [str(d) for d in document["mocks"][0].get("http", {}).get("sse", {}).get("timing", {})
                   .get("perEventDelays", [])]
        assert all(int(d) == 0 or 50 <= int(d) <= 2000 for d in delays), delays

    server = mockd.start(None, "--config", str(target))
    if which == "chat":
        assert asyncio.run(replay_chat(server.ws_url("/ws/chat"))) == ["hello", '{"type":"join"}', CHAT_BINARY]
    else:
        reply = call("GET", f"{server.mock_url}/events", timeout=DEADLINE)
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        blocks = [block for block in reply.text.replace("\r\n", "\n").split("\n\n") if block.strip()]
        assert [re.findall(r"^data: ?(.*)$", block, re.MULTILINE) for block in blocks] == [
            ['{"n": 1}'], ["line one", "line two"], ["bye"]]


# --- delete and vacuum ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["live", "offline"])
def test_delete_soft_permanent_and_vacuum(recorded: Recorded, mockd: MockdFactory, tmp_path: Path, nobody: str,
                                          mode: str) -> None:
    data_dir = recorded.copy(tmp_path / "data")
    url = mockd.start(CONFIG, data_dir=data_dir).admin_url if mode == "live" else nobody

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = offline(url, data_dir, *args) if mode == "offline" else sr(url, *args)
        if mode == "offline":
            assert_offline_notice(result, data_dir)
        return result

    for victim, verb in ((recorded.chat, "delete"), (recorded.sse, "rm")):
        output = ok(run(verb, victim[:12], "--force"))
        assert victim[:12] in output
    assert listed_ids(ok(run("list"))) == [recorded.ticker[:12], recorded.long[:12]]
    everything = json.loads(ok(run("list", "--include-deleted", "--json")))
    assert {s["id"]: s.get("deleted", False) for s in everything} == {
        recorded.ticker: False, recorded.sse: True, recorded.chat: True, recorded.long: False}
    assert recorded.chat[:12] in listed_ids(ok(run("list", "--include-deleted")))
    assert ok(run("show", recorded.chat[:12])).startswith(f"ID:          {recorded.chat}")  # still readable

    ok(run("delete", recorded.long[:12], "--permanent", "--force"))
    assert not (data_dir / f"{recorded.long}.json").exists()
    assert recorded.long not in [s["id"] for s in json.loads(ok(run("list", "--include-deleted", "--json")))]

    files = recording_files(data_dir)  # as soft-deleted (marking them rewrote them)
    freed = len(files[f"{recorded.chat}.json"]) + len(files[f"{recorded.sse}.json"])
    vacuumed = ok(run("vacuum", "--force"))
    assert vacuumed.strip() == f"Removed 2 recordings, freed {human_size(freed)}"
    assert [s["id"] for s in json.loads(ok(run("list", "--include-deleted", "--json")))] == [recorded.ticker]
    assert list(recording_files(data_dir)) == [f"{recorded.ticker}.json"]
    assert ok(run("vacuum", "--force")).strip() == "Removed 0 recordings, freed 0 B"


@pytest.mark.parametrize("args", [["delete", "{id}"], ["rm", "{id}", "--permanent"], ["vacuum"]],
                         ids=["delete", "rm-permanent", "vacuum"])
@pytest.mark.parametrize("mode", ["live", "offline"])
def test_without_a_terminal_and_without_force_it_refuses(recorded: Recorded, tmp_path: Path, nobody: str,
                                                         mode: str, args: list[str]) -> None:
    """stdin is not a terminal (``/dev/null``): no question can be asked, so nothing happens."""
    if mode == "live":
        url, data_dir = recorded.live.admin_url, recorded.live.data_dir
    else:
        url, data_dir = nobody, recorded.copy(tmp_path / "data")
    before = recording_files(data_dir)
    full = [a.replace("{id}", recorded.chat[:12]) for a in args]
    if mode == "live":
        subject = ["stream-recordings", *full, "--admin-url", url]
    else:
        subject = ["stream-recordings", *full, "--admin-url", url, "--data-dir", str(data_dir)]
    result = subprocess.run([*mockd_command(), *subject], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    # One clear line; offline, the notice may come first if the data directory was opened.
    assert len(lines) == 1 or (mode == "offline" and len(lines) == 2 and str(data_dir) in lines[0]), result.stderr
    assert "--force" in lines[-1] and "Traceback" not in result.stderr
    assert recording_files(data_dir) == before


@pytest.mark.parametrize("mode", ["live", "offline"])
@pytest.mark.parametrize("permanent", [False, True], ids=["soft", "permanent"])
def test_delete_asks_on_a_terminal(recorded: Recorded, mockd: MockdFactory, tmp_path: Path, nobody: str,
                                   mode: str, permanent: bool) -> None:
    data_dir = recorded.copy(tmp_path / "data")
    url = mockd.start(CONFIG, data_dir=data_dir).admin_url if mode == "live" else nobody
    connection = ["--admin-url", url] + (["--data-dir", str(data_dir)] if mode == "offline" else [])
    args = ["stream-recordings", "delete", recorded.chat[:12], *(["--permanent"] if permanent else []), *connection]
    prompt = r"Delete recording (\w+)… \(websocket /ws/chat\)\? \[y/N\]"

    def deleted_state() -> dict[str, bool]:
        listing = json.loads(ok(run_mockd("stream-recordings", "list", "--include-deleted", "--json", *connection)))
        return {s["id"]: s.get("deleted", False) for s in listing}

    declined = run_in_pty(args, [(prompt, "n\n")])
    shown = re.search(prompt, declined.output)
    assert shown is not None, declined.output
    assert recorded.chat.startswith(shown.group(1)) and len(shown.group(1)) >= 4
    assert deleted_state()[recorded.chat] is False, "answering n deleted the recording"
    assert (data_dir / f"{recorded.chat}.json").exists()

    accepted = run_in_pty(args, [(prompt, "y\n")])
    assert accepted.returncode == 0, accepted.output
    state = deleted_state()
    if permanent:
        assert recorded.chat not in state and not (data_dir / f"{recorded.chat}.json").exists()
    else:
        assert state[recorded.chat] is True
    assert len(state) == (3 if permanent else 4)


# --- progress on a terminal (docs/cli.md, "Progress") ------------------------------------------------


@pytest.mark.parametrize(("command", "label", "what"), [("export", "Exporting", "recording"),
                                                         ("convert", "Converting", "mock config")])
def test_export_and_convert_show_their_progress_on_a_terminal_then_clear_it(recorded: Recorded, tmp_path: Path,
                                                                           command: str, label: str,
                                                                           what: str) -> None:
    target = tmp_path / f"{command}.json"
    run = run_in_pty(["stream-recordings", command, recorded.chat[:12], "-o", str(target),
                      "--admin-url", recorded.live.admin_url])
    assert run.returncode == 0, run.output
    size = human_size(target.stat().st_size)
    assert f"{label} {recorded.chat[:12]}  {size} / {size} (100%)" in run.output
    after_the_line = run.output.split(CLEAR_LINE)[-1]  # cleared before the confirmation is printed
    assert after_the_line == f"Wrote the {what} to {target} ({size})\n"


def test_vacuum_over_the_files_shows_how_many_are_done_on_a_terminal(recorded: Recorded, tmp_path: Path,
                                                                     nobody: str) -> None:
    data_dir = recorded.copy(tmp_path / "data")
    for victim in (recorded.chat, recorded.sse):
        ok(offline(nobody, data_dir, "delete", victim[:12], "--force"))
    run = run_in_pty(["stream-recordings", "vacuum", "--force", "--admin-url", nobody, "--data-dir", str(data_dir)])
    assert run.returncode == 0, run.output
    assert "Vacuuming  2 files / 2 files (100%)" in run.output
    assert run.output.split(CLEAR_LINE)[-1].startswith("Removed 2 recordings, freed ")


# --- stats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["live", "offline"])
def test_stats(recorded: Recorded, nobody: str, mode: str) -> None:
    data_dir = recorded.live.data_dir if mode == "live" else recorded.stopped_dir
    connection = ["--admin-url", recorded.live.admin_url if mode == "live" else nobody]
    if mode == "offline":
        connection += ["--data-dir", str(data_dir)]
    result = run_mockd("stream-recordings", "stats", *connection)
    output = ok(result)
    if mode == "offline":
        assert_offline_notice(result, data_dir)
    api = call("GET", f"{recorded.live.admin_url}/stream-recordings/stats").json()
    used = sum(map(len, recording_files(data_dir).values()))
    assert api["usedBytes"] == used
    match = re.search(r"^Used:\s+(.+) / (.+) \((\d+\.\d)%\)$", output, re.MULTILINE)
    assert match is not None, output
    assert match.groups() == (human_size(used), human_size(api["maxBytes"]), f"{100 * used / api['maxBytes']:.1f}")
    assert recorded.ids[-1][:12] in output and recorded.ids[0][:12] in output  # oldest and newest
    assert all(len(line) <= 100 for line in output.splitlines())
    as_json = json.loads(ok(run_mockd("stream-recordings", "stats", "--json", *connection)))
    assert as_json == api
    assert (as_json["recordingCount"], as_json["websocketCount"], as_json["sseCount"]) == (4, 2, 2)


# --- sessions, start, stop ---------------------------------------------------------------------------


def test_sessions_start_and_stop(mockd: MockdFactory) -> None:
    server = mockd.start(CONFIG)
    url = server.admin_url
    env = {"MOCKD_ADMIN_URL": url}
    assert ok(run_mockd("sr", "sessions", env=env)).strip() == "No active recording sessions"
    assert json.loads(ok(run_mockd("sr", "sessions", "--json", env=env))) == []

    started = run_mockd("stream-recordings", "start", "--protocol", "websocket", "--path", "/ws/chat", "--quiet",
                        env=env)
    assert started.returncode == 0 and started.stderr == "", started.stderr
    assert ULID.fullmatch(started.stdout.rstrip("\n")) and started.stdout.count("\n") == 1, repr(started.stdout)
    session_id = started.stdout.strip()
    chatty = ok(sr(url, "start", "--protocol", "websocket", "--path", "/ws/*", "--name", "everything"))
    other_id = ULID.search(chatty)
    assert other_id is not None, chatty
    long_glob = ok(sr(url, "start", "--protocol", "sse", "--path", LONG_PATH + "/*", "--quiet")).strip()

    asyncio.run(one_message(server.ws_url("/ws/chat")))

    def counts() -> dict[str, tuple[int, int]]:
        listing = json.loads(ok(sr(url, "sessions", "--json")))
        return {s["id"]: (s["frameCount"], s["connectionCount"]) for s in listing}

    poll(lambda: counts().get(session_id) == (4, 1), "the session to count 4 frames on 1 connection")
    assert set(counts()) == {session_id, other_id.group(0), long_glob}

    text = ok(sr(url, "sessions"))
    assert all(len(line) <= 100 for line in text.splitlines()), text
    header, rows = table_rows(text, SESSION_COLUMNS)
    assert header.split() == SESSION_COLUMNS
    by_id = {row[0]: row for row in rows}
    assert set(by_id) == {session_id[:12], other_id.group(0)[:12], long_glob[:12]}
    row = by_id[session_id[:12]]
    assert row[1:3] == ["websocket", "/ws/chat"]
    assert DURATION_FORMAT.fullmatch(row[3]) and row[4:] == ["4", "1"], row
    assert "…" in by_id[long_glob[:12]][2]

    stopped = ok(sr(url, "stop", session_id[:12]))
    assert len(stopped.strip().splitlines()) == 1, stopped
    for part in (session_id[:12], "websocket", "/ws/chat", "complete", "4"):
        assert part in stopped, (part, stopped)
    for other in (other_id.group(0), long_glob):
        ok(sr(url, "stop", other[:12]))
    assert ok(sr(url, "sessions")).strip() == "No active recording sessions"
    assert_one_line_error(sr(url, "stop", session_id[:12]))  # already stopped
    listing = json.loads(ok(sr(url, "list", "--json")))
    assert session_id in [s["id"] for s in listing]


# --- ids: prefixes, ambiguity, unknown and malformed ----------------------------------------------

ID_COMMANDS = [["show", "{id}"], ["export", "{id}"], ["convert", "{id}"], ["delete", "{id}", "--force"]]


@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("mode", ["live", "offline"])
def test_ambiguous_prefix_names_the_candidates(recorded: Recorded, tmp_path: Path, nobody: str, mode: str,
                                               command: list[str]) -> None:
    prefix = os.path.commonprefix(recorded.ids)  # noqa: RUF071 - the ids' common characters, not a path
    assert prefix, recorded.ids
    args = [a.replace("{id}", prefix) for a in command]
    if mode == "live":
        result = sr(recorded.live.admin_url, *args)
        assert_one_line_error(result, *(i[:12] for i in recorded.ids))
    else:
        data_dir = recorded.copy(tmp_path / "data")
        result = offline(nobody, data_dir, *args)
        assert result.returncode == 1 and result.stdout == "", result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr  # the notice, the error
        assert all(i[:12] in lines[1] for i in recorded.ids), lines[1]
        assert len(recording_files(data_dir)) == 4


@pytest.mark.parametrize("reference", ["01ZZZZZZZZZZ", "../../etc/passwd", "%2e%2e", "X" * 300],
                         ids=["unknown", "traversal", "encoded", "huge"])
@pytest.mark.parametrize("command", [*ID_COMMANDS, ["stop", "{id}"]], ids=lambda c: c[0])
def test_unknown_or_malformed_id_is_one_line_exit_1(recorded: Recorded, command: list[str], reference: str) -> None:
    result = sr(recorded.live.admin_url, *(a.replace("{id}", reference) for a in command))
    assert_one_line_error(result)


@pytest.mark.parametrize("reference", ["01ZZZZZZZZZZ", "../../etc/passwd"], ids=["unknown", "traversal"])
@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: c[0])
def test_unknown_or_malformed_id_offline(recorded: Recorded, tmp_path: Path, nobody: str, command: list[str],
                                         reference: str) -> None:
    data_dir = recorded.copy(tmp_path / "data")
    result = offline(nobody, data_dir, *(a.replace("{id}", reference) for a in command))
    assert result.returncode == 1 and result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr  # the notice, the error


# --- offline mode -------------------------------------------------------------------------------------

OFFLINE_READS = [["list"], ["list", "--json"], ["ls", "--protocol", "sse"], ["show", "{chat}"],
                 ["show", "{sse}", "--json"], ["export", "{chat}"], ["convert", "{chat}"],
                 ["convert", "{sse}", "--simplify-timing"], ["convert", "{sse}", "--min-delay", "1000"], ["stats"],
                 ["stats", "--json"]]


@pytest.mark.parametrize("args", OFFLINE_READS, ids=lambda a: "-".join(a).replace("{", "").replace("}", ""))
def test_offline_reads_match_the_live_server(recorded: Recorded, nobody: str, args: list[str]) -> None:
    """No server answers: one notice line on stderr, and the same output as the live server gives
    for the same recordings."""
    full = [a.replace("{chat}", recorded.chat[:12]).replace("{sse}", recorded.sse[:12]) for a in args]
    result = offline(nobody, recorded.stopped_dir, *full)
    assert_offline_notice(result, recorded.stopped_dir)
    assert ok(result) == ok(sr(recorded.live.admin_url, *full))


def test_offline_min_or_max_delay_alone_imply_simplify_timing(recorded: Recorded, nobody: str) -> None:
    def delays(*flags: str) -> tuple[str, list[list[int]]]:
        output = ok(offline(nobody, recorded.stopped_dir, "convert", recorded.sse[:12], *flags))
        return output, [mock["http"]["sse"]["timing"]["perEventDelays"] for mock in json.loads(output)["mocks"]]

    plain, recorded_delays = delays()
    assert any(delay >= 5 for gaps in recorded_delays for delay in gaps), recorded_delays  # the mock's 10 ms
    implied, clamped = delays("--min-delay", "1000")
    assert implied == delays("--simplify-timing", "--min-delay", "1000")[0] != plain
    assert all(delay == 0 for gaps in clamped for delay in gaps), clamped


def test_offline_data_dir_from_the_environment(recorded: Recorded, nobody: str) -> None:
    result = run_mockd("stream-recordings", "list", env={"MOCKD_ADMIN_URL": nobody,
                                                         "MOCKD_DATA_DIR": str(recorded.stopped_dir)})
    assert listed_ids(ok(result)) == [i[:12] for i in recorded.ids]
    assert_offline_notice(result, recorded.stopped_dir)


@pytest.mark.parametrize("args", [["sessions"], ["sessions", "--json"],
                                  ["start", "--protocol", "websocket", "--path", "/ws/chat"],
                                  ["start", "--protocol", "sse", "--path", "/events", "--quiet"],
                                  ["stop", "01HXYZ123456"]], ids=lambda a: "-".join(a[:2]))
def test_commands_that_need_a_server_say_so(recorded: Recorded, nobody: str, args: list[str]) -> None:
    line = assert_one_line_error(offline(nobody, recorded.stopped_dir, *args), nobody)
    assert re.search(r"\b(needs?|requires?)\b", line) and re.search(r"\b(server|mockd)\b", line), line


# --- usage errors, help, colour -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["list", "--limit", "many"], ["list", "--protocol", "ftp"], ["list", "--status", "done"], ["list", "--bogus"],
    ["show"], ["export"], ["convert", "01HXYZ123456", "--min-delay", "-1"],
    ["convert", "01HXYZ123456", "--max-delay", "x"],
    ["delete"], ["start", "--path", "/ws/chat"], ["start", "--protocol", "ftp", "--path", "/x"], ["frobnicate"],
], ids=lambda a: "-".join(a))
def test_usage_errors_exit_2(nobody: str, args: list[str]) -> None:
    result = run_mockd("stream-recordings", *args, "--admin-url", nobody)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Usage:" in result.stderr and "Traceback" not in result.stderr


SUBCOMMANDS = ["list", "ls", "show", "get", "export", "convert", "delete", "rm", "stats", "vacuum", "sessions",
               "start", "stop", "replay", "advance", "replays", "cancel"]


def has_example(text: str, *invocations: str) -> bool:
    return "Example" in text and any(invocation in text for invocation in invocations)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_has_an_example(command: str) -> None:
    text = ok(run_mockd("stream-recordings", command, "--help"))
    canonical = {"ls": "list", "get": "show", "rm": "delete"}.get(command, command)
    assert has_example(text, f"mockd stream-recordings {canonical}", f"mockd sr {canonical}"), text


@pytest.mark.parametrize("command", [[], ["stream-recordings"], ["sr"], ["serve"], ["start"], ["stop"], ["version"]],
                         ids=lambda c: "-".join(c) or "mockd")
def test_every_command_help_has_an_example(command: list[str]) -> None:
    text = ok(run_mockd(*command, "--help"))
    assert has_example(text, "mockd "), text


def test_help_lists_only_commands_with_examples() -> None:
    """Whatever subcommands exist (replay, advance... as they arrive), each one's help has an example."""
    text = ok(run_mockd("stream-recordings", "--help"))
    listed = re.findall(r"^  ([a-z][a-z-]*)\s", text.split("Commands:", 1)[1], re.MULTILINE)
    assert set(SUBCOMMANDS) <= set(listed), listed
    for command in listed:
        assert "Example" in ok(run_mockd("stream-recordings", command, "--help")), command


@pytest.mark.parametrize(("args", "env"), [
    (["list"], {"NO_COLOR": "1"}), (["show", "{chat}"], {"NO_COLOR": "1"}), (["stats"], {"NO_COLOR": "1"}),
    (["list", "--json"], {}), (["show", "{chat}", "--json"], {}), (["stats", "--json"], {}),
], ids=["list-no-color", "show-no-color", "stats-no-color", "list-json", "show-json", "stats-json"])
def test_no_ansi_escapes_with_no_color_or_json_even_on_a_terminal(recorded: Recorded, args: list[str],
                                                                  env: dict[str, str]) -> None:
    full = [a.replace("{chat}", recorded.chat[:12]) for a in args]
    environment = dict(env)
    if "NO_COLOR" not in environment:
        environment["FORCE_COLOR"] = "1"  # give colour every chance: --json alone must still be plain
    run = run_in_pty(["stream-recordings", *full, "--admin-url", recorded.live.admin_url], env=environment)
    assert run.returncode == 0, run.output
    assert ANSI not in run.output, repr(run.output[:300])
    if "--json" in args:
        json.loads(run.output)
    else:
        assert ok(sr(recorded.live.admin_url, *full)) == run.output
