"""``mockd stream-recordings --data-dir D`` finds the server that owns D, and never another (issue 13, B).

Black-box: real ``mockd serve`` processes (``--port 0 --admin-port 0 --data-dir D --ready-file``), each
with a recording of its own made through the admin API by a ``websockets`` client, and the installed
``mockd`` executable run as a subprocess with a clean environment (no ``MOCKD_*`` variable unless a test
sets one). The rules under test:

* with a live server for D (its ``D/mockd.ready`` names a running pid) the CLI talks to that server's
  ``adminUrl``: ``list --data-dir D1`` shows D1's recordings and not D2's, and vice versa;
* with no live server for D (no ready file, or a stale one naming a dead pid) it works offline on D and
  says so in one line on stderr, and the commands that need a server fail with one clear line — in
  neither case does it talk to any server (a listener on the default admin port counts connections);
* an explicit ``--admin-url`` (or ``MOCKD_ADMIN_URL``) wins, and naming a different server than D's
  live one is an error rather than a mix of two servers;
* ``replays`` lists replay sessions, ``cancel`` ends one, ``replay --connection N`` picks a connection.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from processes import MockdFactory, RunningMockd, mockd_command, run_mockd
from configs import mocks_config, ws_mock
from polling import poll
from httpclient import call
from sessions import start_session_sync, stop_session_sync
from upstreams import RecordingClientConnection, open_ws
from websockets.frames import Opcode

SOON = 10.0
CONFIG = mocks_config(ws_mock("one", "/ws/one"), ws_mock("two", "/ws/two"), ws_mock("three", "/ws/three"))
DEFAULT_ADMIN_PORT = 4290
REPLAY_COLUMNS = ["ID", "RECORDING", "MODE", "STATUS", "SENT", "PATH"]
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
CONNECTION_VARIABLES = ("MOCKD_ADMIN_URL", "MOCKD_DATA_DIR", "MOCKD_ADMIN_TOKEN")


# --- running the CLI --------------------------------------------------------------------------------


def sr(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``mockd stream-recordings ARGS`` with no ``MOCKD_*`` connection variable but those in ``env``."""
    environment = {key: value for key, value in os.environ.items() if key not in CONNECTION_VARIABLES}
    return subprocess.run([*mockd_command(), "stream-recordings", *args], capture_output=True, text=True,
                          timeout=30, env={**environment, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL,
                          check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout!r} {result.stderr!r}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit 1, nothing on stdout, one line on stderr (no traceback) naming every ``mention``."""
    assert result.returncode == 1, f"exit {result.returncode}: {result.stdout!r} {result.stderr!r}"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("mockd: error: "), lines[0]
    for mention in mentions:
        assert mention in lines[0], f"{mention!r} not in {lines[0]!r}"
    return lines[0]


def listed(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ids ``list --json`` printed."""
    return [summary["id"] for summary in json.loads(ok(result))]


def table_rows(text: str, columns: list[str]) -> list[list[str]]:
    """Rows cut into cells at the header's column positions (each cell starts under its header)."""
    header, *lines = [line for line in text.splitlines() if line.strip()]
    assert header.split() == columns, header
    starts = [header.index(name) for name in columns]
    rows = []
    for line in lines:
        cells = []
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else len(line)
            assert index == 0 or line[start - 2:start] == "  ", f"column {columns[index]} not aligned: {line!r}"
            cells.append(line[start:end].strip())
        rows.append(cells)
    return rows


@contextmanager
def default_port_watch() -> Iterator[Callable[[], int] | None]:
    """Listen on the default admin port (IPv4 and IPv6 loopback) without ever answering; yields a
    function counting the connections made to it, or None when the port is taken by someone else."""
    sockets: list[socket.socket] = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((host, DEFAULT_ADMIN_PORT))
        except OSError as exc:
            sock.close()
            if family == socket.AF_INET6 and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue  # no IPv6 loopback here: nothing can connect over it either
            for other in sockets:
                other.close()
            yield None
            return
        sock.listen(16)
        sock.setblocking(False)
        sockets.append(sock)

    def connections() -> int:
        count = 0
        for sock in sockets:
            while True:
                try:
                    accepted, _ = sock.accept()
                except BlockingIOError:
                    break
                accepted.close()
                count += 1
        return count

    try:
        yield connections
    finally:
        for sock in sockets:
            sock.close()


# --- servers with recordings of their own ------------------------------------------------------------



async def talk(url: str, message: str) -> None:
    """Three messages, echoed (three server frames to replay), then a normal close."""
    async with open_ws(url) as ws:
        for number in range(3):
            await ws.send(f"{message} {number}")
            assert await asyncio.wait_for(ws.recv(), SOON) == f"{message} {number}"
        await ws.close(1000, "bye")


def record(server: RunningMockd, path: str) -> str:
    """A WebSocket recording of three echoed messages on ``path``, made through the admin API."""
    recording_id = start_session_sync(server, "websocket", path)
    asyncio.run(talk(server.ws_url(path), f"hello {path}"))

    def both_closes() -> bool:
        frames = call("GET", f"{server.admin_url}/stream-recordings/{recording_id}").json()["websocket"]["frames"]
        return sum(frame["type"] == "close" for frame in frames) >= 2

    poll(both_closes, f"the traffic of {recording_id} to be captured")
    assert stop_session_sync(server, recording_id)["id"] == recording_id
    return recording_id


@dataclass
class Servers:
    one: RunningMockd  # serves d1
    two: RunningMockd  # serves d2
    d1: Path
    d2: Path
    d3: Path  # the data directory of a server that has stopped: no live server
    rec1: str
    rec2: str
    rec3: str
    work: Path  # a directory to run the CLI in (no settings file)


@pytest.fixture(scope="module")
def servers(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> Servers:
    base = tmp_path_factory.mktemp("discovery")
    d1, d2, d3 = base / "d1", base / "d2", base / "d3"
    stopped = mockd_module.start(CONFIG, data_dir=d3)
    rec3 = record(stopped, "/ws/three")
    assert stopped.stop() == 0
    assert not (d3 / "mockd.ready").exists(), "a clean exit removes the ready file"
    one = mockd_module.start(CONFIG, data_dir=d1)
    two = mockd_module.start(CONFIG, data_dir=d2)
    rec1, rec2 = record(one, "/ws/one"), record(two, "/ws/two")
    for server, directory in ((one, d1), (two, d2)):
        ready = json.loads((directory / "mockd.ready").read_text())
        assert (ready["adminUrl"], ready["pid"]) == (server.admin_url, server.process.pid), ready
    work = base / "work"
    work.mkdir()
    return Servers(one, two, d1, d2, d3, rec1, rec2, rec3, work)


# --- a live server for D ------------------------------------------------------------------------------


def test_list_with_a_data_dir_shows_that_servers_recordings_and_not_the_others(servers: Servers) -> None:
    for directory, own, other in ((servers.d1, servers.rec1, servers.rec2), (servers.d2, servers.rec2, servers.rec1)):
        result = sr("list", "--json", "--data-dir", str(directory), cwd=servers.work)
        assert listed(result) == [own], (directory, result.stdout)
        assert result.stderr == ""  # no offline notice: a server answered
        table = ok(sr("list", "--data-dir", str(directory), cwd=servers.work))
        assert own[:12] in table and other[:12] not in table, table
        from_env = sr("list", "--json", env={"MOCKD_DATA_DIR": str(directory)}, cwd=servers.work)
        assert listed(from_env) == [own]


def test_the_group_option_and_the_alias_follow_the_data_dir_too(servers: Servers) -> None:
    result = subprocess.run([*mockd_command(), "sr", "--data-dir", str(servers.d2), "ls", "--json"],
                            capture_output=True, text=True, timeout=30, cwd=servers.work, check=False,
                            env={k: v for k, v in os.environ.items() if k not in CONNECTION_VARIABLES})
    assert listed(result) == [servers.rec2]


def test_the_other_servers_recording_is_not_found_through_a_data_dir(servers: Servers) -> None:
    one_line_error(sr("show", servers.rec2[:12], "--data-dir", str(servers.d1), cwd=servers.work))
    shown = ok(sr("show", servers.rec1[:12], "--data-dir", str(servers.d1), cwd=servers.work))
    assert shown.startswith(f"ID:          {servers.rec1}")


def test_sessions_go_to_the_data_dirs_server(servers: Servers) -> None:
    started = call("POST", f"{servers.two.admin_url}/stream-recordings/start",
                   {"protocol": "websocket", "path": "/ws/nothing-here"})
    assert started.status == 201, started.text
    session = started.json()["recordingId"]
    try:
        on_two = json.loads(ok(sr("sessions", "--json", "--data-dir", str(servers.d2), cwd=servers.work)))
        on_one = json.loads(ok(sr("sessions", "--json", "--data-dir", str(servers.d1), cwd=servers.work)))
        assert [item["id"] for item in on_two] == [session]
        assert on_one == []
    finally:  # leave server two with its one recording
        assert call("POST", f"{servers.two.admin_url}/stream-recordings/{session}/stop").status == 200
        assert call("DELETE", f"{servers.two.admin_url}/stream-recordings/{session}?permanent=true").status == 204


# --- no live server for D: offline, and never another server -----------------------------------------


def test_a_data_dir_without_a_server_is_worked_on_offline_without_asking_any_server(servers: Servers) -> None:
    with default_port_watch() as connections:
        result = sr("list", "--json", "--data-dir", str(servers.d3), cwd=servers.work)
        assert listed(result) == [servers.rec3]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(servers.d3) in lines[0] and "no mockd is running" in lines[0], result.stderr
        shown = ok(sr("show", servers.rec3[:12], "--data-dir", str(servers.d3), cwd=servers.work))
        assert shown.startswith(f"ID:          {servers.rec3}")
        if connections is not None:
            assert connections() == 0, "the CLI asked the default admin port"


@pytest.mark.parametrize("args", [
    ["sessions"], ["sessions", "--json"], ["start", "--protocol", "websocket", "--path", "/ws/x"],
    ["stop", "01HXYZ123456"], ["replay", "01HXYZ123456"], ["advance", "01HXYZ123456"], ["replays"],
    ["replays", "--json"], ["cancel", "01HXYZ123456"],
], ids=lambda a: "-".join(a[:2]))
def test_commands_that_need_a_server_fail_in_one_line_for_a_data_dir_without_one(servers: Servers,
                                                                                 args: list[str]) -> None:
    with default_port_watch() as connections:
        line = one_line_error(sr(*args, "--data-dir", str(servers.d3), cwd=servers.work), str(servers.d3))
        assert "needs a running mockd" in line and "none is running" in line, line
        if connections is not None:
            assert connections() == 0, "the CLI asked the default admin port"


def test_a_stale_ready_file_is_not_followed(servers: Servers, tmp_path: Path) -> None:
    """A ready file left by a crash (its pid no longer runs) names a live server's URL: the CLI must not
    go there, since that server does not own the directory."""
    stale = tmp_path / "stale"
    shutil.copytree(servers.d3, stale)
    gone = subprocess.Popen(["true"])
    gone.wait()
    ready = {"mockPort": 1, "adminPort": servers.one.admin_port, "mockUrl": "http://127.0.0.1:1",
             "adminUrl": servers.one.admin_url, "pid": gone.pid, "dataDir": str(stale)}
    (stale / "mockd.ready").write_text(json.dumps(ready))
    result = sr("list", "--json", "--data-dir", str(stale), cwd=servers.work)
    assert listed(result) == [servers.rec3]  # offline on the directory, not server one's rec1
    assert str(stale) in result.stderr and "no mockd is running" in result.stderr, result.stderr
    one_line_error(sr("replays", "--data-dir", str(stale), cwd=servers.work), str(stale))


def test_a_copy_of_a_live_servers_data_dir_is_not_that_servers(servers: Servers, tmp_path: Path) -> None:
    """The copy keeps the ready file (a live pid, another directory): the copy is worked on offline."""
    copy = tmp_path / "copy"
    shutil.copytree(servers.d1, copy)
    assert json.loads((copy / "mockd.ready").read_text())["pid"] == servers.one.process.pid
    recording = next(path for path in copy.glob("*.json") if ULID.fullmatch(path.stem))
    recording.unlink()  # the copy now differs from the live server's directory
    result = sr("list", "--json", "--data-dir", str(copy), cwd=servers.work)
    assert listed(result) == [] and str(copy) in result.stderr and "no mockd is running" in result.stderr, result
    one_line_error(sr("sessions", "--data-dir", str(copy), cwd=servers.work), str(copy))


def test_an_unreadable_ready_file_counts_as_none(servers: Servers, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(servers.d3, broken)
    (broken / "mockd.ready").write_text("{not json")
    assert listed(sr("list", "--json", "--data-dir", str(broken), cwd=servers.work)) == [servers.rec3]


# --- an explicit admin URL ----------------------------------------------------------------------------


def test_an_admin_url_that_is_not_the_data_dirs_server_is_an_error(servers: Servers) -> None:
    flag = sr("list", "--admin-url", servers.two.admin_url, "--data-dir", str(servers.d1), cwd=servers.work)
    one_line_error(flag, servers.two.admin_url, servers.one.admin_url, str(servers.d1))
    env = sr("list", "--data-dir", str(servers.d1), env={"MOCKD_ADMIN_URL": servers.two.admin_url}, cwd=servers.work)
    one_line_error(env, servers.two.admin_url, str(servers.d1))


@pytest.mark.parametrize("spelling", ["as-written", "localhost", "trailing-slash"])
def test_an_admin_url_that_is_the_data_dirs_server_is_used(servers: Servers, spelling: str) -> None:
    url = {"as-written": servers.one.admin_url, "trailing-slash": servers.one.admin_url + "/",
           "localhost": servers.one.admin_url.replace("127.0.0.1", "localhost")}[spelling]
    result = sr("list", "--json", "--admin-url", url, "--data-dir", str(servers.d1), cwd=servers.work)
    assert listed(result) == [servers.rec1]


def test_an_admin_url_wins_over_a_data_dir_no_server_owns(servers: Servers) -> None:
    result = sr("list", "--json", "--admin-url", servers.two.admin_url, "--data-dir", str(servers.d3),
                cwd=servers.work)
    assert listed(result) == [servers.rec2] and result.stderr == ""


# --- replays, cancel, --connection ---------------------------------------------------------------------


def api_replays(server: RunningMockd) -> list[dict[str, Any]]:
    reply = call("GET", f"{server.admin_url}/replay")
    assert reply.status == 200, reply.text
    answer: list[dict[str, Any]] = reply.json()
    return answer


def test_replays_lists_replay_sessions_and_cancel_ends_them(servers: Servers, mockd: MockdFactory,
                                                            tmp_path: Path) -> None:
    data_dir = tmp_path / "d5"
    shutil.copytree(servers.d3, data_dir)
    server = mockd.start(CONFIG, data_dir=data_dir)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return sr(*args, "--data-dir", str(data_dir), cwd=servers.work)

    assert ok(run("replays")).strip() == "No replay sessions"
    assert json.loads(ok(run("replays", "--json"))) == []

    triggered = ok(run("replay", servers.rec3[:12], "--mode", "triggered", "--path", "/ws/a")).strip()
    pending = ok(run("replay", servers.rec3[:12], "--connection", "1", "--expires-after", "60",
                     "--path", "/ws/b")).strip()
    assert ULID.fullmatch(triggered) and ULID.fullmatch(pending), (triggered, pending)
    one_line_error(run("replay", servers.rec3[:12], "--connection", "2"), "connection 2")
    assert {item["id"] for item in api_replays(server)} == {triggered, pending}

    async def drive() -> None:
        async with open_ws(server.ws_url("/ws/a"), create_connection=RecordingClientConnection) as ws:
            assert isinstance(ws, RecordingClientConnection)
            poll_api = asyncio.to_thread(poll, lambda: any(item["id"] == triggered and item["status"] == "playing"
                                                           for item in api_replays(server)), "the client to bind")
            await poll_api
            sent = await asyncio.to_thread(run, "advance", triggered[:12])
            assert ok(sent).startswith("Sent 1 frame(s); 1 of "), sent.stdout
            text = await asyncio.to_thread(lambda: ok(run("replays")))
            rows = {row[0]: row for row in table_rows(text, REPLAY_COLUMNS)}
            total = next(item["totalFrames"] for item in api_replays(server) if item["id"] == triggered)
            assert total == 3
            assert rows[triggered[:12]] == [triggered[:12], servers.rec3[:12], "triggered", "playing",
                                            f"1/{total}", "/ws/a"]
            assert rows[pending[:12]] == [pending[:12], servers.rec3[:12], "pure", "pending", f"0/{total}", "/ws/b"]
            cancelled = await asyncio.to_thread(run, "cancel", triggered[:12])
            line = ok(cancelled).strip()
            assert len(line.splitlines()) == 1 and triggered[:12] in line and "playing" in line, line
            close = (await ws.log.wait_opcode(Opcode.CLOSE, timeout=SOON)).close()
            assert close is not None and close.code == 1001

    asyncio.run(drive())
    line = ok(run("cancel", pending)).strip()
    assert line.startswith(f"Cancelled replay {pending[:12]}") and "pending" in line, line
    assert {item["id"]: item["status"] for item in api_replays(server)} == {triggered: "aborted", pending: "aborted"}
    assert "already finished (aborted)" in ok(run("cancel", pending[:12]))
    one_line_error(run("cancel", "01HXYZ123456"), "01HXYZ123456")
    as_json = json.loads(ok(run("replays", "--json")))
    assert as_json == api_replays(server)
    assert all(len(line) <= 100 for line in ok(run("replays")).splitlines())


def test_the_python_client_lists_and_cancels_replays(servers: Servers, mockd: MockdFactory, tmp_path: Path) -> None:
    from mockd.admin.client import Client

    data_dir = tmp_path / "d6"
    shutil.copytree(servers.d3, data_dir)
    client = Client(mockd.start(CONFIG, data_dir=data_dir).admin_url)
    assert client.replays() == []
    started = client.replay(servers.rec3, mode="triggered", path="/ws/p")
    (listed_status,) = client.replays()
    assert (listed_status.id, listed_status.status, listed_status.path) == (started.session_id, "pending", "/ws/p")
    client.cancel_replay(started.session_id[:12])
    assert client.replay_status(started.session_id).status == "aborted"


def test_advance_refuses_count_and_until_together_as_a_usage_error(servers: Servers) -> None:
    result = sr("advance", "01HXYZ123456", "--count", "2", "--until", "x", "--data-dir", str(servers.d1),
                cwd=servers.work)
    assert result.returncode == 2 and "not both" in result.stderr, result.stderr


# --- mockd start announces itself in its data directory too ------------------------------------------


def test_a_server_from_mockd_start_is_found_by_its_data_dir_until_it_stops(servers: Servers, tmp_path: Path) -> None:
    data_dir = tmp_path / "started"
    shutil.copytree(servers.d3, data_dir)
    started = run_mockd("start", "--port", "0", "--admin-port", "0", "--data-dir", str(data_dir), cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    try:
        ready = json.loads((data_dir / "mockd.ready").read_text())
        result = sr("list", "--json", "--data-dir", str(data_dir), cwd=servers.work)
        assert listed(result) == [servers.rec3] and result.stderr == ""  # from the server, no notice
        assert json.loads(ok(sr("replays", "--json", "--data-dir", str(data_dir), cwd=servers.work))) == []
        assert ready["adminUrl"] in started.stdout
    finally:
        stopped = run_mockd("stop", "--data-dir", str(data_dir), cwd=tmp_path)
        assert stopped.returncode == 0, stopped.stderr
    assert not (data_dir / "mockd.ready").exists()
    offline = sr("list", "--json", "--data-dir", str(data_dir), cwd=servers.work)
    assert listed(offline) == [servers.rec3] and "no mockd is running" in offline.stderr


def test_a_second_server_on_the_same_data_dir_leaves_the_first_ones_ready_file(mockd: MockdFactory,
                                                                                tmp_path: Path) -> None:
    shared = tmp_path / "shared-data"
    first = mockd.start(None, data_dir=shared)
    second = mockd.start(None, data_dir=shared)
    ready = json.loads((shared / "mockd.ready").read_text())
    assert ready["adminUrl"] == first.admin_url and ready["pid"] == first.process.pid
    assert f"also used by mockd pid {first.process.pid}" in second.stderr
    started = call("POST", f"{first.admin_url}/stream-recordings/start", {"protocol": "sse", "path": "/events"})
    assert started.status == 201, started.text
    listed_sessions = json.loads(ok(sr("sessions", "--json", "--data-dir", str(shared))))
    assert [session["id"] for session in listed_sessions] == [started.json()["sessionId"]]  # the first's
    second.stop()
    assert (shared / "mockd.ready").exists()  # the second never owned it, so it leaves it
    first.stop()
    assert not (shared / "mockd.ready").exists()
