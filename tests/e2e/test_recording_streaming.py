"""Issue 16: ``GET /stream-recordings/{id}`` and ``export`` send the recording file from disk in chunks —
byte for byte the file, with its ``Content-Length``, and without the server's memory growing with the
recording's size (its peak RSS, ``VmHWM``, is compared); ``mockd stream-recordings show --json`` and
``export`` stream it on to stdout or a file the same way, from the server or offline. Converting such a recording
does not hold it either, and the CLI's offline convert writes the bytes the API sends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from ulid import ULID

from processes import MockdFactory, RunningMockd, mockd_command
from httpclient import call

from mockd.config.model import ConfigFile
from mockd.recording.format import (ConnectionRecord, Frame, Metadata, Recording, Stats, WebSocketSection,
                                    recording_bytes, rfc3339)

FRAME_BYTES = 100_000
FRAMES = 600  # a 60 MB file
PEAK_GROWTH_LIMIT = 30 * 1024 * 1024


def big_recording(data_dir: Path) -> tuple[str, Path]:
    """A finished WebSocket recording of ``FRAMES`` frames of ``FRAME_BYTES`` each, written as the store
    writes files."""
    start_ns = time.time_ns()
    payload = "x" * FRAME_BYTES
    frames = [Frame(direction="s2c", type="text", data=payload, timestamp=rfc3339(start_ns + i * 1_000_000),
                    relative_ms=i, connection=1, size=FRAME_BYTES) for i in range(FRAMES)]
    opened = rfc3339(start_ns)
    recording = Recording(
        id=str(ULID()), name="long", protocol="websocket", status="complete", start_time=opened,
        end_time=rfc3339(start_ns + FRAMES * 1_000_000), duration=FRAMES,
        metadata=Metadata(path="/ws/feed", method="GET", host="127.0.0.1"), websocket=WebSocketSection(frames=frames),
        connections=[ConnectionRecord(connection=1, opened_at=opened, relative_ms=0, origin="proxy", path="/ws/feed")],
        stop_reason="api", stats=Stats(frame_count=FRAMES, bytes_sent=FRAMES * FRAME_BYTES, text_frames=FRAMES,
                                       connection_count=1))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / f"{recording.id}.json"
    path.write_bytes(recording_bytes(recording))
    path.chmod(0o600)
    return recording.id, path


def peak_rss(server: RunningMockd) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def download(url: str, *args: str) -> tuple[bytes, dict[str, str]]:
    result = subprocess.run(["curl", "-sS", "--fail", "-D", "-", *args, url], capture_output=True, timeout=60,
                            check=True)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return body, headers


def test_get_and_export_send_the_file_from_disk_without_holding_it(mockd: MockdFactory, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    recording_id, path = big_recording(data_dir)
    server = mockd.start(None, data_dir=data_dir)
    before = peak_rss(server)
    on_disk = path.read_bytes()

    body, headers = download(f"{server.admin_url}/stream-recordings/{recording_id}")
    assert body == on_disk
    assert headers["content-length"] == str(len(on_disk)) and headers["content-type"].startswith("application/json")
    exported, export_headers = download(f"{server.admin_url}/stream-recordings/{recording_id}/export", "-X", "POST")
    assert exported == on_disk
    assert export_headers["content-disposition"] == f'attachment; filename="{recording_id}.json"'

    grown = peak_rss(server) - before
    assert grown < PEAK_GROWTH_LIMIT, f"peak RSS grew by {grown / 2**20:.0f} MB serving a " \
                                      f"{len(on_disk) / 2**20:.0f} MB file"


def test_a_file_changed_behind_the_index_is_read_again(mockd: MockdFactory,
                                                       tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    recording_id, path = big_recording(data_dir)
    server = mockd.start(None, data_dir=data_dir)
    first = call("GET", f"{server.admin_url}/stream-recordings/{recording_id}")
    assert first.status == 200 and first.body == path.read_bytes()
    # the file changes behind the index's back (restored from a backup, say): it is not sent unchecked
    path.write_bytes(path.read_bytes().replace(b'"name":"long"', b'"name":"lung"'))
    again = call("GET", f"{server.admin_url}/stream-recordings/{recording_id}")
    assert again.status == 200 and b'"name":"lung"' in again.body


CLI_PEAK_LIMIT = 40 * 1024 * 1024  # the CLI's own peak RSS (Python and its imports are about 30 MB)


def cli_peak(*args: str, stdout: Path) -> int:
    """Run ``mockd ARGS`` with its stdout in a file; the CLI's peak RSS (a fresh parent whose only
    child it is, so nothing else counts)."""
    probe = ("import resource, subprocess, sys\n"
             "with open(sys.argv[1], 'wb') as out:\n"
             "    done = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE)\n"
             "sys.stderr.buffer.write(done.stderr)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)\n")
    result = subprocess.run([sys.executable, "-c", probe, str(stdout), *mockd_command(), *args],
                            capture_output=True, text=True, timeout=120, check=True)
    peak_kb, status = result.stdout.split()
    assert status == "0", result.stderr
    return int(peak_kb) * 1024


@pytest.mark.parametrize("where", ["server", "offline"])
def test_the_cli_streams_show_json_and_export_without_holding_the_recording(mockd: MockdFactory, tmp_path: Path,
                                                                           where: str) -> None:
    data_dir = tmp_path / "data"
    recording_id, path = big_recording(data_dir)
    on_disk = path.read_bytes()
    if where == "server":
        server = mockd.start(None, data_dir=data_dir)
        reach = ["--admin-url", server.admin_url]
    else:  # the first command to open the directory indexes the new file, in pieces, within the bound too
        reach = ["--data-dir", str(data_dir)]
    shown, exported = tmp_path / "shown.json", tmp_path / "exported.json"
    peaks = [cli_peak("stream-recordings", "show", recording_id, "--json", *reach, stdout=shown),
             cli_peak("stream-recordings", "export", recording_id, "-o", str(exported), *reach,
                      stdout=tmp_path / "export.out")]
    assert shown.read_bytes() == on_disk + (b"" if on_disk.endswith(b"\n") else b"\n")
    assert exported.read_bytes() == on_disk
    assert not list(tmp_path.glob(".*.partial"))
    assert max(peaks) < CLI_PEAK_LIMIT, f"the CLI peaked at {[p // 2**20 for p in peaks]} MB for a " \
                                        f"{len(on_disk) // 2**20} MB recording"


def test_an_export_that_fails_leaves_no_partial_file(mockd: MockdFactory, tmp_path: Path) -> None:
    server = mockd.start(None, data_dir=tmp_path / "data")
    target = tmp_path / "out.json"
    result = subprocess.run([*mockd_command(), "stream-recordings", "export", "01ZZZZZZZZZZ", "-o", str(target),
                             "--admin-url", server.admin_url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not target.exists() and not list(tmp_path.glob(".*.partial"))


def test_converting_a_long_recording_does_not_hold_it(mockd: MockdFactory, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    recording_id, _ = big_recording(data_dir)
    server = mockd.start(None, data_dir=data_dir)
    before = peak_rss(server)
    answer = call("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", {}, timeout=120)
    assert answer.status == 200, answer.text[:200]
    grown = peak_rss(server) - before
    assert grown < PEAK_GROWTH_LIMIT, f"peak RSS grew by {grown / 2**20:.0f} MB converting a " \
                                      f"{len(answer.body) / 2**20:.0f} MB config"
    assert answer.headers["Content-Length"] == str(len(answer.body))
    config = msgspec.json.decode(answer.body, type=ConfigFile)
    assert len(config.mocks[0].websocket.scenario.steps) == 600  # type: ignore[union-attr]
    server.stop()
    offline = tmp_path / "offline.json"
    subprocess.run([*mockd_command(), "stream-recordings", "convert", recording_id, "--data-dir", str(data_dir),
                    "-o", str(offline)], check=True, capture_output=True, timeout=120)
    assert offline.read_bytes() == answer.body
    assert not list(data_dir.glob("*.tmp")) and not list(tmp_path.glob(".*.partial"))
