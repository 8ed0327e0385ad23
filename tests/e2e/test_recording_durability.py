"""Durability of stream recording (docs/recording.md, "Sessions" and "Storage"; R1 and R5 of docs/faults.md,
P5 of docs/benchmarks.md).

Real ``mockd serve`` processes on 127.0.0.1, driven by ``websockets`` clients:

* a ``kill -9`` in the middle of heavy traffic loses nothing relayed more than 200 ms before it, and the
  orphaned journal becomes an ``incomplete`` recording (``stopReason: "crash"``) on the next start-up;
* a graceful shutdown closes clients with 1001 and saves open sessions (``stopReason: "shutdown"``);
* frames reach the disk while the session runs, and the server's memory does not grow with them;
* foreign or unparseable files in the data directory are skipped with a warning and never deleted.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from processes import MockdFactory
from configs import mocks_config, ws_mock
from polling import wait_until
from crashes import assert_everything_confirmed_at_t_is_recorded, echo_until_killed, text_frames_by_connection
from httpclient import acall
from sessions import start_session
from test_recording_pages import frames_by_page

DEADLINE = 10.0  # for anything that should happen "soon" on a noisy two-core machine
ECHO_CONFIG = mocks_config(ws_mock("echo", "/ws/echo"))


# --- helpers --------------------------------------------------------------------------------------


def recording_file(data_dir: Path, recording_id: str) -> Path:
    return data_dir / f"{recording_id}.json"


def journals(data_dir: Path) -> list[str]:
    return sorted(path.name for path in data_dir.glob("*.journal"))


def rss_bytes(pid: int) -> int:
    """The process's resident set size, from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def assert_file_is_consistent(path: Path) -> dict[str, Any]:
    """The file parses as JSON, its ``fileSizeBytes`` is its size and ``frameCount`` its frames."""
    raw = path.read_bytes()
    recording = json.loads(raw)
    assert recording["stats"]["fileSizeBytes"] == len(raw) == path.stat().st_size
    assert recording["stats"]["frameCount"] == len(recording["websocket"]["frames"])
    return recording


# --- (a) kill -9 ----------------------------------------------------------------------------------

CLIENTS = 20
WARM_UP_MESSAGES = 5  # per client, before the moment T
AFTER_T = 0.4  # seconds of traffic between T and the kill (the test lets the last 200 ms be lost)


async def test_kill_9_loses_nothing_relayed_200ms_before_and_recovers_as_incomplete(mockd: MockdFactory) -> None:
    server = mockd.start(ECHO_CONFIG)
    recording_id = await start_session(server, "websocket", "/ws/*")
    killed = await echo_until_killed(server, server.ws_url("/ws/echo"), CLIENTS, WARM_UP_MESSAGES, AFTER_T)
    # The premise: traffic really was flowing on every connection between T and the kill.
    assert all(killed.before_kill[prefix] > len(killed.at_t[prefix]) for prefix in killed.at_t), killed
    assert journals(server.data_dir) == [f"{recording_id}.journal"]
    assert not recording_file(server.data_dir, recording_id).exists()

    restarted = mockd.start(ECHO_CONFIG, data_dir=server.data_dir)
    listing = (await acall("GET", f"{restarted.admin_url}/stream-recordings")).json()
    summaries = {summary["id"]: summary for summary in listing["recordings"]}
    assert set(summaries) == {recording_id}
    assert summaries[recording_id]["status"] == "incomplete"
    assert journals(server.data_dir) == []

    path = recording_file(server.data_dir, recording_id)
    recording = assert_file_is_consistent(path)
    assert summaries[recording_id]["fileSize"] == path.stat().st_size
    assert recording["id"] == recording_id
    assert recording["status"] == "incomplete"
    assert recording["stopReason"] == "crash"
    fetched = await acall("GET", f"{restarted.admin_url}/stream-recordings/{recording_id}")
    assert fetched.status == 200
    assert fetched.json() == recording
    paged, total = await frames_by_page(restarted, recording_id, size=97)  # a recovered recording pages too
    assert paged == recording["websocket"]["frames"] and total == len(paged)

    assert_everything_confirmed_at_t_is_recorded(recording, killed.at_t)


# --- (b) graceful shutdown ------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_graceful_shutdown_saves_open_session_as_incomplete(mockd: MockdFactory, signum: int) -> None:
    server = mockd.start(ECHO_CONFIG)
    recording_id = await start_session(server, "websocket", "/ws/*")
    sent = [f"before shutdown {n}" for n in range(5)]
    async with connect(server.ws_url("/ws/echo"), open_timeout=DEADLINE) as ws:
        for message in sent:
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == message
        # The server closes the connection while it shuts down: keep this loop free to answer it.
        exit_code = await asyncio.to_thread(server.stop, signum)
        await asyncio.wait_for(ws.wait_closed(), DEADLINE)
        assert ws.close_code == 1001
    assert exit_code == 0

    assert journals(server.data_dir) == []
    recording = assert_file_is_consistent(recording_file(server.data_dir, recording_id))
    assert recording["status"] == "incomplete"
    assert recording["stopReason"] == "shutdown"
    frames = text_frames_by_connection(recording)
    assert frames[(1, "c2s")] == sent
    assert frames[(1, "s2c")] == sent
    closes = [frame for frame in recording["websocket"]["frames"] if frame["type"] == "close"]
    assert any(frame["direction"] == "s2c" and frame.get("closeCode") == 1001 for frame in closes), closes


# --- (c) flat memory, frames on disk while recording ----------------------------------------------

PIPELINED_CLIENTS = 4
MESSAGES_PER_CLIENT = 25_000  # 100,000 messages echoed: 200,000 frames recorded
WARM_UP_PER_CLIENT = 2_500
WINDOW = 200  # messages in flight per client
PAYLOAD = 200  # bytes per message
RSS_GROWTH_LIMIT = 30 * 1024 * 1024  # P5 (docs/benchmarks.md) allows 30 MB over a million frames
LINE_OVERHEAD = 60  # a journal line holds the frame's data plus at least this many bytes of JSON


def payload(prefix: str, number: int) -> str:
    head = f"{prefix}-{number:07d}-"
    return head + "x" * (PAYLOAD - len(head))


async def pipeline(ws: ClientConnection, prefix: str, start: int, count: int, echoed: list[int]) -> None:
    """Send ``count`` numbered messages with up to ``WINDOW`` unanswered, checking every echo in order."""
    window = asyncio.Semaphore(WINDOW)

    async def read() -> None:
        for number in range(start, start + count):
            reply = await ws.recv()
            assert reply == payload(prefix, number)
            echoed[0] += 1
            window.release()

    reader = asyncio.create_task(read())
    try:
        for number in range(start, start + count):
            await window.acquire()
            await ws.send(payload(prefix, number))
        await asyncio.wait_for(reader, DEADLINE * 3)
    finally:
        reader.cancel()


async def test_recording_keeps_memory_flat_and_writes_frames_while_running(mockd: MockdFactory) -> None:
    server = mockd.start(ECHO_CONFIG)
    pid = int(server.ready["pid"])
    recording_id = await start_session(server, "websocket", "/ws/*")
    journal = server.data_dir / f"{recording_id}.journal"
    clients = [await connect(server.ws_url("/ws/echo"), open_timeout=DEADLINE, max_queue=None)
               for _ in range(PIPELINED_CLIENTS)]
    echoed = [0]

    async def run(start: int, count: int) -> None:
        await asyncio.gather(*(pipeline(ws, f"p{index}", start, count, echoed)
                               for index, ws in enumerate(clients)))

    def journal_size() -> int:
        return journal.stat().st_size if journal.exists() else 0

    def on_disk_for(messages: int) -> int:
        return 2 * messages * (PAYLOAD + LINE_OVERHEAD)  # both directions

    try:
        await run(0, WARM_UP_PER_CLIENT)  # connections, buffers and allocator pools settle
        warm = PIPELINED_CLIENTS * WARM_UP_PER_CLIENT
        await wait_until(lambda: journal_size() >= on_disk_for(warm), "the warm-up frames to reach the journal")
        baseline = rss_bytes(pid)
        peak = baseline
        sizes = [journal_size()]

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_bytes(pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            half = MESSAGES_PER_CLIENT // 2
            await run(WARM_UP_PER_CLIENT, half)
            # Frames reach the disk while the session runs: the first half is in the journal before the rest.
            await wait_until(lambda: journal_size() >= on_disk_for(warm + PIPELINED_CLIENTS * half),
                             "the first half of the frames to reach the journal")
            sizes.append(journal_size())
            await run(WARM_UP_PER_CLIENT + half, MESSAGES_PER_CLIENT - half)
            total = warm + PIPELINED_CLIENTS * MESSAGES_PER_CLIENT
            await wait_until(lambda: journal_size() >= on_disk_for(total), "every frame to reach the journal")
            sizes.append(journal_size())
            peak = max(peak, rss_bytes(pid))
        finally:
            sampler.cancel()
        assert echoed[0] == total
        assert sizes[0] < sizes[1] < sizes[2]
        growth = peak - baseline
        print(f"RSS {baseline / 2**20:.1f} MiB -> peak {peak / 2**20:.1f} MiB; journal {sizes}")
        # The premise: holding what was recorded since the baseline would take far more than the limit.
        assert sizes[2] - sizes[0] > 1.5 * RSS_GROWTH_LIMIT
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB while recording " \
                                          f"{2 * PIPELINED_CLIENTS * MESSAGES_PER_CLIENT} frames"

        stopped = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop", timeout=60)
        assert stopped.status == 200
    finally:
        for ws in clients:
            await ws.close()
    assert not journal.exists()
    recording = assert_file_is_consistent(recording_file(server.data_dir, recording_id))
    assert recording["status"] == "complete"
    assert recording["stats"]["frameCount"] == 2 * total
    assert recording["stats"]["textFrames"] == 2 * total


# --- (d) foreign files in the data directory ------------------------------------------------------

FOREIGN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
FOREIGN_CONTENTS = {
    "not-json": b"this is not JSON {{{",
    "empty": b"",
    "json-array": b"[1, 2, 3]",
    "other-tool-json": b'{"hello": "world", "recordings": []}',
    "truncated-recording": b'{"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "version": "1.0", "name": "x", "protocol": "webs',
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("content", FOREIGN_CONTENTS.values(), ids=FOREIGN_CONTENTS.keys())
async def test_foreign_files_in_data_dir_are_skipped_logged_and_kept(mockd: MockdFactory, tmp_path: Path,
                                                                    content: bytes) -> None:
    data_dir = tmp_path / "recordings"
    data_dir.mkdir(mode=0o700)
    foreign = data_dir / f"{FOREIGN_ID}.json"
    foreign.write_bytes(content)
    notes = data_dir / "notes.json"
    notes_content = b"my own notes, not a recording"
    notes.write_bytes(notes_content)

    server = mockd.start(ECHO_CONFIG, data_dir=data_dir)
    listing = await acall("GET", f"{server.admin_url}/stream-recordings?includeDeleted=true")
    assert listing.status == 200
    assert listing.json()["recordings"] == []
    assert listing.json()["total"] == 0
    stats = (await acall("GET", f"{server.admin_url}/stream-recordings/stats")).json()
    assert stats["recordingCount"] == 0
    assert stats["usedBytes"] == 0  # every recording file "and nothing else"
    fetched = await acall("GET", f"{server.admin_url}/stream-recordings/{FOREIGN_ID}")
    assert fetched.status == 404
    assert fetched.json()["error"] == "not_found"

    # A real recording beside them still works, and vacuum leaves the foreign files alone.
    recording_id = await start_session(server, "websocket", "/ws/*")
    stopped = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop")
    assert stopped.status == 200
    assert (await acall("POST", f"{server.admin_url}/stream-recordings/vacuum")).status == 200
    listing = (await acall("GET", f"{server.admin_url}/stream-recordings")).json()
    assert [summary["id"] for summary in listing["recordings"]] == [recording_id]

    assert server.stop() == 0
    assert FOREIGN_ID in server.stderr, "the skipped file was not logged"
    assert "notes.json" not in server.stderr  # not a recording's name: ignored, not warned about
    assert foreign.read_bytes() == content
    assert notes.read_bytes() == notes_content

    # And again on a second start-up (whatever index the first one kept).
    again = mockd.start(ECHO_CONFIG, data_dir=data_dir)
    listing = (await acall("GET", f"{again.admin_url}/stream-recordings")).json()
    assert [summary["id"] for summary in listing["recordings"]] == [recording_id]
    assert again.stop() == 0
    assert foreign.read_bytes() == content
    assert notes.read_bytes() == notes_content
