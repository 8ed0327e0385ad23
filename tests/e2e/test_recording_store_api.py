"""The recordings store through the admin API (docs/recording.md, "Storage" and "Admin API"):
listing and its filters, soft and permanent delete, vacuum, stats, the quota, file modes, recordings in
the Go mockd's key layout, and files that are not recordings.

Black-box: a real ``mockd serve`` process; recordings are made with real traffic (the ``websockets``
sync client, ``urllib``) and the data directory is inspected on disk. Servers are restarted on the same
data directory where a test needs files dropped in while no server runs. No sleep stands in for
synchronisation: tests poll the admin API with a deadline.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect as sync_connect

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from httpclient import call
from sessions import poll_recording_sync, settled_sync, start_session_sync, stop_session_sync
from test_recording_api import (
    DEADLINE,
    ULID_RE,
    Json,
    admin,
    assert_error,
    assert_time,
    closed,
    fetch,
    frames,
    sse_mock,
    write_settings,
)

DEFAULT_MAX_BYTES = 500 * 1024 * 1024
SUMMARY_KEYS = {"id", "name", "protocol", "path", "status", "startTime", "duration", "frameCount", "fileSize",
                "connectionCount"}
MOCKS = mocks_config(
    ws_mock("echo", "/ws/echo"), ws_mock("alpha", "/ws/alpha"), ws_mock("room", "/ws/alpha/room"),
    ws_mock("gone", "/ws/gone"), ws_mock("other", "/other"),
    sse_mock("feed", "/events/feed", [{"type": "tick", "data": "1", "id": "a"}, {"data": "two"}]),
)


# --- helpers ------------------------------------------------------------------------------------------


def session_ids(server: RunningMockd) -> set[str]:
    reply = admin(server, "GET", "/stream-recordings/sessions")
    assert reply.status == 200, reply.text
    return {session["id"] for session in reply.json()}


def echo_traffic(server: RunningMockd, path: str, messages: list[str]) -> None:
    with sync_connect(server.ws_url(path), open_timeout=DEADLINE, close_timeout=DEADLINE) as ws:
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=DEADLINE) == message


def record_ws(server: RunningMockd, path: str, name: str, messages: list[str]) -> str:
    """A finished WebSocket recording of ``messages`` echoed on ``path``."""
    recording_id = start_session_sync(server, "websocket", path, name)
    if messages:
        echo_traffic(server, path, messages)
        assert closed(poll_recording_sync(server, recording_id, closed)), "the connection was not captured and closed"
    stop_session_sync(server, recording_id)
    return recording_id


def record_sse(server: RunningMockd, path: str, name: str) -> str:
    recording_id = start_session_sync(server, "sse", path, name)
    reply = call("GET", server.mock_url + path)
    assert reply.status == 200, reply.text
    assert closed(poll_recording_sync(server, recording_id, closed)), "the connection was not captured and closed"
    stop_session_sync(server, recording_id)
    return recording_id


def file_of(server: RunningMockd, recording_id: str) -> Path:
    return server.data_dir / f"{recording_id}.json"


def recording_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if ULID_RE.fullmatch(p.stem))


def listing(server: RunningMockd, query: str = "") -> Json:
    reply = admin(server, "GET", f"/stream-recordings{query}")
    assert reply.status == 200, reply.text
    return reply.json()


def stats(server: RunningMockd) -> Json:
    reply = admin(server, "GET", "/stream-recordings/stats")
    assert reply.status == 200, reply.text
    return reply.json()


def restart(mockd: MockdFactory, server: RunningMockd, *args: str) -> RunningMockd:
    """Stop ``server`` gracefully and start another on the same data directory."""
    assert server.stop() == 0, server.stderr
    return mockd.start(MOCKS, *args, data_dir=server.data_dir)


# ==== listing =========================================================================================


@dataclass
class Catalog:
    server: RunningMockd
    ids: dict[str, str]  # name -> id

    def names(self, summaries: list[Json]) -> list[str]:
        by_id = {recording_id: name for name, recording_id in self.ids.items()}
        return [by_id[item["id"]] for item in summaries]


LIVE = ["delta chat", "alpha-two", "gamma feed", "zeta stopped"]  # by start time, the deleted one left out


@pytest.fixture(scope="module")
def catalog(mockd_module: MockdFactory, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Five recordings made in this order: three complete ones, one soft-deleted, and one whose session
    was still running at a graceful shutdown (``incomplete``); then the server is restarted."""
    data = tmp_path_factory.mktemp("catalog") / "data"
    first = mockd_module.start(MOCKS, data_dir=data)
    ids = {"delta chat": record_ws(first, "/ws/alpha", "delta chat", ["x" * 200, "y" * 300, "z"]),
           "alpha-two": record_ws(first, "/ws/alpha/room", "alpha-two", []),
           "gamma feed": record_sse(first, "/events/feed", "gamma feed"),
           "beta gone": record_ws(first, "/ws/gone", "beta gone", ["bye"])}
    assert admin(first, "DELETE", f"/stream-recordings/{ids['beta gone']}").status == 204
    ids["zeta stopped"] = start_session_sync(first, "websocket", "/other", "zeta stopped")
    echo_traffic(first, "/other", ["last words"])
    return Catalog(restart(mockd_module, first), ids)


FILTERS: list[tuple[str, set[str]]] = [
    ("", set(LIVE)),
    ("?protocol=websocket", {"delta chat", "alpha-two", "zeta stopped"}),
    ("?protocol=sse", {"gamma feed"}),
    ("?path=/ws/alpha", {"delta chat", "alpha-two"}),
    ("?path=/ws/alpha/", {"alpha-two"}),
    ("?path=/events", {"gamma feed"}),
    ("?path=/nowhere", set()),
    ("?status=complete", {"delta chat", "alpha-two", "gamma feed"}),
    ("?status=incomplete", {"zeta stopped"}),
    ("?status=recording", set()),
    ("?name=alpha", {"alpha-two"}),
    ("?name=ta", {"delta chat", "zeta stopped"}),
    ("?name=nomatch", set()),
    ("?protocol=websocket&status=complete", {"delta chat", "alpha-two"}),
    ("?includeDeleted=true", {*LIVE, "beta gone"}),
    ("?includeDeleted=true&name=gone", {"beta gone"}),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[q or "none" for q, _ in FILTERS])
def test_list_filters(catalog: Catalog, query: str, expected: set[str]) -> None:
    reply = admin(catalog.server, "GET", f"/stream-recordings{query}")
    assert reply.status == 200, reply.text
    result = reply.json()
    assert isinstance(result["recordings"], list)  # never null
    assert set(catalog.names(result["recordings"])) == expected
    assert result["total"] == len(expected)
    if not expected:
        assert b'"recordings":[]' in reply.body.replace(b" ", b"")


ORDERS: list[tuple[str, list[str]]] = [
    ("?sortBy=startTime&sortOrder=asc", LIVE),
    ("?sortBy=startTime&sortOrder=desc", LIVE[::-1]),
    ("", LIVE[::-1]),  # startTime, newest first
    ("?sortOrder=asc", LIVE),
    ("?sortBy=name&sortOrder=asc", sorted(LIVE)),
    ("?sortBy=name&sortOrder=desc", sorted(LIVE, reverse=True)),
    ("?sortBy=name", sorted(LIVE, reverse=True)),
]


@pytest.mark.parametrize(("query", "expected"), ORDERS, ids=[q or "default" for q, _ in ORDERS])
def test_list_sort_order(catalog: Catalog, query: str, expected: list[str]) -> None:
    assert catalog.names(listing(catalog.server, query)["recordings"]) == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_list_sort_by_size(catalog: Catalog, order: str) -> None:
    items = listing(catalog.server, f"?sortBy=size&sortOrder={order}")["recordings"]
    sizes = [file_of(catalog.server, item["id"]).stat().st_size for item in items]
    assert sizes == sorted(sizes, reverse=order == "desc")
    assert set(catalog.names(items)) == set(LIVE)


@pytest.mark.parametrize(("query", "expected"), [
    ("?sortOrder=asc&limit=2&offset=1", LIVE[1:3]),
    ("?sortOrder=asc&limit=2", LIVE[:2]),
    ("?sortOrder=asc&offset=3", LIVE[3:]),
    ("?sortOrder=asc&offset=10", []),
    ("?sortOrder=desc&limit=1", LIVE[-1:]),
])
def test_list_limit_and_offset(catalog: Catalog, query: str, expected: list[str]) -> None:
    result = listing(catalog.server, query)
    assert catalog.names(result["recordings"]) == expected
    assert result["total"] == len(LIVE)  # the count before paging


BAD_FILTERS = ["protocol=mqtt", "status=done", "sortBy=color", "sortOrder=sideways", "limit=-1", "limit=ten",
               "offset=-5", "offset=x", "includeDeleted=maybe"]


@pytest.mark.parametrize("query", BAD_FILTERS)
def test_list_bad_filter_value_is_400(catalog: Catalog, query: str) -> None:
    assert_error(admin(catalog.server, "GET", f"/stream-recordings?{query}"), 400)


def test_list_summaries_agree_with_the_recordings(catalog: Catalog) -> None:
    items = listing(catalog.server, "?includeDeleted=true")["recordings"]
    assert len(items) == len(catalog.ids)
    for item in items:
        assert set(item) >= SUMMARY_KEYS, item
        recording = fetch(catalog.server, item["id"])
        assert item["fileSize"] == file_of(catalog.server, item["id"]).stat().st_size
        assert (item["name"], item["protocol"], item["path"], item["status"], item["startTime"], item["duration"]) \
            == (recording["name"], recording["protocol"], recording["metadata"]["path"], recording["status"],
                recording["startTime"], recording["duration"])
        assert item["frameCount"] == recording["stats"]["frameCount"]
        assert item["connectionCount"] == recording["stats"]["connectionCount"]
        assert bool(item.get("deleted")) == (item["id"] == catalog.ids["beta gone"])


def test_graceful_shutdown_saved_the_open_session_as_incomplete(catalog: Catalog) -> None:
    recording = fetch(catalog.server, catalog.ids["zeta stopped"])
    assert (recording["status"], recording.get("stopReason")) == ("incomplete", "shutdown")
    assert [(f["direction"], f["data"]) for f in frames(recording) if f["type"] == "text"] == \
        [("c2s", "last words"), ("s2c", "last words")]
    assert recording["stats"]["frameCount"] == len(frames(recording))
    assert_time(recording["endTime"])


def test_soft_deleted_state_survives_a_restart(catalog: Catalog) -> None:
    recording = fetch(catalog.server, catalog.ids["beta gone"])
    assert recording["deleted"] is True
    assert_time(recording["deletedAt"])


# ==== delete, vacuum, stats ===========================================================================


def test_empty_store_lists_nothing_and_counts_zero(mockd: MockdFactory) -> None:
    server = mockd.start(MOCKS)
    reply = admin(server, "GET", "/stream-recordings")
    assert reply.status == 200
    assert reply.json()["recordings"] == [] and reply.json()["total"] == 0
    assert b'"recordings":[]' in reply.body.replace(b" ", b"")
    result = stats(server)
    assert {key: result[key] for key in ("usedBytes", "recordingCount", "websocketCount", "sseCount", "deletedCount",
                                         "deletedBytes")} == dict.fromkeys(
        ("usedBytes", "recordingCount", "websocketCount", "sseCount", "deletedCount", "deletedBytes"), 0)
    assert (result["maxBytes"], result["warnPercent"], result["usedPercent"]) == (DEFAULT_MAX_BYTES, 80, 0)
    assert "warning" not in result
    assert admin(server, "POST", "/stream-recordings/vacuum").json() == {"removed": 0, "freedBytes": 0}


def test_soft_delete_permanent_delete_and_vacuum(mockd: MockdFactory) -> None:
    server = mockd.start(MOCKS)
    soft = record_ws(server, "/ws/echo", "soft", ["one", "two"])
    permanent = record_sse(server, "/events/feed", "permanent")
    kept = record_ws(server, "/ws/echo", "kept", [])

    reply = admin(server, "DELETE", f"/stream-recordings/{soft[:12]}")
    assert (reply.status, reply.body) == (204, b"")
    assert {item["id"] for item in listing(server)["recordings"]} == {permanent, kept}
    recording = fetch(server, soft)
    assert recording["deleted"] is True
    assert_time(recording["deletedAt"])
    assert recording["status"] == "complete"
    assert frames(recording), "a soft-deleted recording keeps its frames"
    assert [item.get("deleted") for item in listing(server, "?includeDeleted=true")["recordings"]
            if item["id"] == soft] == [True]

    reply = admin(server, "DELETE", f"/stream-recordings/{permanent}?permanent=true")
    assert (reply.status, reply.body) == (204, b"")
    assert not file_of(server, permanent).exists()
    assert_error(admin(server, "GET", f"/stream-recordings/{permanent}"), 404, "not_found")
    assert permanent not in {item["id"] for item in listing(server, "?includeDeleted=true")["recordings"]}

    soft_size = file_of(server, soft).stat().st_size
    assert (stats(server)["deletedCount"], stats(server)["deletedBytes"]) == (1, soft_size)
    assert admin(server, "POST", "/stream-recordings/vacuum").json() == {"removed": 1, "freedBytes": soft_size}
    assert not file_of(server, soft).exists()
    assert_error(admin(server, "GET", f"/stream-recordings/{soft}"), 404, "not_found")
    assert admin(server, "POST", "/stream-recordings/vacuum").json() == {"removed": 0, "freedBytes": 0}
    assert [item["id"] for item in listing(server, "?includeDeleted=true")["recordings"]] == [kept]
    assert fetch(server, kept)["name"] == "kept"
    assert_error(admin(server, "DELETE", f"/stream-recordings/{soft}"), 404, "not_found")


def test_stats_counts_bytes_and_extremes(mockd: MockdFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "notes.txt").write_bytes(b"n" * 5000)  # not a recording: never counted
    server = mockd.start(MOCKS, data_dir=data)
    oldest = record_ws(server, "/ws/echo", "oldest", ["a" * 100])
    middle = record_sse(server, "/events/feed", "middle")
    newest = record_ws(server, "/ws/echo", "newest", ["b"])
    assert admin(server, "DELETE", f"/stream-recordings/{middle}").status == 204

    result = stats(server)
    sizes = {recording_id: file_of(server, recording_id).stat().st_size for recording_id in (oldest, middle, newest)}
    assert result["usedBytes"] == sum(sizes.values()) == sum(p.stat().st_size for p in recording_files(data))
    assert (result["recordingCount"], result["websocketCount"], result["sseCount"]) == (2, 2, 0)
    assert (result["deletedCount"], result["deletedBytes"]) == (1, sizes[middle])
    assert (result["maxBytes"], result["warnPercent"]) == (DEFAULT_MAX_BYTES, 80)
    assert result["usedPercent"] == pytest.approx(100 * result["usedBytes"] / DEFAULT_MAX_BYTES, abs=0.01)
    assert "warning" not in result
    assert (result["oldestRecording"], result["oldestDate"]) == (oldest, fetch(server, oldest)["startTime"])
    assert (result["newestRecording"], result["newestDate"]) == (newest, fetch(server, newest)["startTime"])
    assert (data / "notes.txt").exists()


def test_data_directory_is_0700_and_files_0600(mockd: MockdFactory) -> None:
    server = mockd.start(MOCKS)
    assert server.data_dir.stat().st_mode & 0o777 == 0o700
    recording_id = start_session_sync(server, "websocket", "/ws/echo", "modes")
    echo_traffic(server, "/ws/echo", ["m"])
    assert closed(poll_recording_sync(server, recording_id, closed)), "the connection was not captured and closed"
    running = [p for p in server.data_dir.iterdir() if p.is_file()]
    assert running, "a running session writes to the data directory"
    stop_session_sync(server, recording_id)
    for path in [*running, *server.data_dir.iterdir()]:
        if path.exists() and path.is_file():
            assert path.stat().st_mode & 0o777 == 0o600, path
    assert file_of(server, recording_id).stat().st_mode & 0o777 == 0o600


# ==== quota ===========================================================================================


@pytest.fixture
def seeded(mockd: MockdFactory) -> RunningMockd:
    """A stopped server whose data directory holds one recording."""
    server = mockd.start(MOCKS)
    record_ws(server, "/ws/echo", "seed", ["s" * 500, "t" * 500])
    assert server.stop() == 0
    return server


def used_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in recording_files(directory))


@pytest.mark.parametrize(("headroom", "refused"), [(0, True), (-1, True), (1, False)],
                         ids=["usage-equals-max", "usage-over-max", "one-byte-left"])
def test_start_is_refused_with_507_when_usage_reaches_max_bytes(mockd: MockdFactory, seeded: RunningMockd,
                                                                tmp_path: Path, headroom: int, refused: bool) -> None:
    used = used_bytes(seeded.data_dir)
    settings = write_settings(tmp_path / "quota", maxBytes=used + headroom)
    server = mockd.start(MOCKS, "--settings", str(settings), data_dir=seeded.data_dir)
    reply = admin(server, "POST", "/stream-recordings/start", {"protocol": "websocket", "path": "/ws/echo"})
    if not refused:
        assert reply.status == 201, reply.text
        return
    assert_error(reply, 507, "storage_full")
    assert session_ids(server) == set()
    echo_traffic(server, "/ws/echo", ["still serving"])
    assert stats(server)["usedBytes"] == used
    [only] = listing(server)["recordings"]
    assert admin(server, "DELETE", f"/stream-recordings/{only['id']}?permanent=true").status == 204
    assert admin(server, "POST", "/stream-recordings/start",
                 {"protocol": "websocket", "path": "/ws/echo"}).status == 201


def test_session_that_crosses_max_bytes_stops_incomplete_and_serving_goes_on(mockd: MockdFactory,
                                                                             tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "quota", maxBytes=20_000)
    server = mockd.start(MOCKS, "--settings", str(settings))
    recording_id = start_session_sync(server, "websocket", "/ws/echo", "overflow")
    message = "q" * 1000
    deadline = time.monotonic() + DEADLINE
    with sync_connect(server.ws_url("/ws/echo"), open_timeout=DEADLINE, close_timeout=DEADLINE) as ws:
        for n in itertools.count():  # until the session stops: it must, long before the deadline
            ws.send(f"{n:06d}{message}")
            assert ws.recv(timeout=DEADLINE) == f"{n:06d}{message}"
            if n % 5 == 4 and recording_id not in session_ids(server):
                break
            assert time.monotonic() < deadline, "the session did not stop at the quota"
        ws.send("after the quota")  # the client connection was not closed
        assert ws.recv(timeout=DEADLINE) == "after the quota"
    echo_traffic(server, "/ws/echo", ["a new connection"])
    recording = settled_sync(server, recording_id)
    assert (recording["status"], recording.get("stopReason")) == ("incomplete", "storage")
    assert recording["stats"]["frameCount"] == len(frames(recording)) > 0
    raw = file_of(server, recording_id).read_bytes()
    assert json.loads(raw)["id"] == recording_id
    assert recording["stats"]["fileSizeBytes"] == len(raw)
    assert stats(server)["usedBytes"] == len(raw)


@pytest.mark.parametrize(("warn_percent", "warned"), [(5, True), (50, False)])
def test_crossing_warn_percent_adds_a_warning(mockd: MockdFactory, seeded: RunningMockd, tmp_path: Path,
                                              warn_percent: int, warned: bool) -> None:
    used = used_bytes(seeded.data_dir)
    settings = write_settings(tmp_path / "warn", maxBytes=used * 10, warnPercent=warn_percent)  # 10 % used
    server = mockd.start(MOCKS, "--settings", str(settings), data_dir=seeded.data_dir)
    result = stats(server)
    assert result["usedPercent"] == pytest.approx(10, abs=0.01)
    assert result["warnPercent"] == warn_percent
    assert ("warning" in result) == warned
    reply = admin(server, "POST", "/stream-recordings/start", {"protocol": "websocket", "path": "/ws/echo"})
    assert reply.status == 201, reply.text
    started = reply.json()
    assert ("warning" in started) == warned
    if warned:
        assert isinstance(started["warning"], str) and started["warning"]
        assert isinstance(result["warning"], str) and result["warning"]


# ==== foreign files: the Go layout, garbage, the index, journals =======================================

GO_WS_ID = "01HQ0GQ2X4A5B6C7D8E9F0G1H2"
GO_SSE_ID = "01HR3K7M9P2Q4S6T8V0W2X4Y6Z"
GARBAGE_ID = "01HS5N8Q1R3T5V7W9X1Y3Z5A7B"
GO_WS: Json = {
    "id": GO_WS_ID, "version": "1.0", "protocol": "websocket", "name": "go chat", "updatedAt": "2024-01-15T10:30:12Z",
    "syncStatus": "local", "status": "complete", "startTime": "2024-01-15T10:30:00.123456789Z",
    "endTime": "2024-01-15T10:30:12.5Z", "duration": 12376,
    "metadata": {"method": "GET", "path": "/ws/go", "host": "localhost:4280",
                 "headers": {"Authorization": "[REDACTED]"}, "queryParams": {"room": "general"}, "source": "proxy",
                 "subprotocol": "chat.v1"},
    "websocket": {"connectedAt": "2024-01-15T10:30:00.123456789Z", "closeCode": 1000, "closeReason": "Normal closure",
                  "frames": [
                      {"seq": 1, "ts": "2024-01-15T10:30:00.223456789Z", "rel": 100, "dir": "s2c", "type": "text",
                       "data": "{\"type\":\"welcome\"}", "encoding": "utf8", "size": 18},
                      {"seq": 2, "ts": "2024-01-15T10:30:00.373456789Z", "rel": 250, "dir": "c2s", "type": "binary",
                       "data": "AAE=", "encoding": "base64", "size": 2}]},
    "stats": {"frameCount": 2, "bytesSent": 18, "bytesReceived": 2, "fileSizeBytes": 0, "textFrames": 1,
              "binaryFrames": 1},
}
GO_SSE: Json = {
    "id": GO_SSE_ID, "version": "1.0", "protocol": "sse", "name": "go events", "updatedAt": "2024-01-16T08:00:05Z",
    "syncStatus": "local", "status": "complete", "startTime": "2024-01-16T08:00:00Z",
    "endTime": "2024-01-16T08:00:05Z", "duration": 5000,
    "metadata": {"method": "GET", "path": "/events/go", "source": "proxy"},
    "sse": {"responseStatus": 200, "streamStartedAt": "2024-01-16T08:00:00.1Z", "events": [
        {"seq": 1, "ts": "2024-01-16T08:00:00.1Z", "rel": 0, "event": "update", "data": "{\"n\":1}", "id": "1",
         "size": 7},
        {"seq": 2, "ts": "2024-01-16T08:00:00.6Z", "rel": 500, "data": "plain", "size": 5}]},
    "stats": {"frameCount": 2, "bytesSent": 12, "bytesReceived": 0, "fileSizeBytes": 0, "eventCount": 2},
}
GARBAGE = b'{"id": "01HS5N8Q1R3T5V7W9X1Y3Z5A7B", "protocol": "websocket", "frames": [ {{{ not json'


@dataclass
class Imported:
    server: RunningMockd
    garbage: Path


@pytest.fixture
def imported(mockd: MockdFactory) -> Imported:
    """A server restarted on a data directory into which, while it was stopped, were dropped two Go mockd
    recordings, an unparseable ``<ULID>.json`` and a ``notes.json`` that is not named like a recording."""
    first = mockd.start(MOCKS)
    assert first.stop() == 0
    directory = first.data_dir
    (directory / f"{GO_WS_ID}.json").write_text(json.dumps(GO_WS, indent=2))
    (directory / f"{GO_SSE_ID}.json").write_text(json.dumps(GO_SSE))
    garbage = directory / f"{GARBAGE_ID}.json"
    garbage.write_bytes(GARBAGE)
    (directory / "notes.json").write_text(json.dumps({"id": "notes", "protocol": "websocket"}))
    return Imported(mockd.start(MOCKS, data_dir=directory), garbage)


def test_go_layout_recordings_are_listed(imported: Imported) -> None:
    items = {item["id"]: item for item in listing(imported.server)["recordings"]}
    assert set(items) == {GO_WS_ID, GO_SSE_ID}
    assert (items[GO_WS_ID]["name"], items[GO_WS_ID]["protocol"], items[GO_WS_ID]["path"]) == \
        ("go chat", "websocket", "/ws/go")
    assert (items[GO_SSE_ID]["name"], items[GO_SSE_ID]["protocol"], items[GO_SSE_ID]["path"]) == \
        ("go events", "sse", "/events/go")
    assert items[GO_WS_ID]["frameCount"] == 2 and items[GO_WS_ID]["status"] == "complete"


def test_go_layout_websocket_recording_is_fetched_in_this_layout(imported: Imported) -> None:
    reply = admin(imported.server, "GET", f"/stream-recordings/{GO_WS_ID[:12]}")
    assert reply.status == 200, reply.text
    recording = reply.json()
    assert (recording["id"], recording["name"], recording["metadata"]["path"]) == (GO_WS_ID, "go chat", "/ws/go")
    found = [{key: frame.get(key) for key in ("direction", "type", "data", "timestamp", "relativeMs")}
             for frame in frames(recording)]
    assert found == [
        {"direction": "s2c", "type": "text", "data": "{\"type\":\"welcome\"}",
         "timestamp": "2024-01-15T10:30:00.223456789Z", "relativeMs": 100},
        {"direction": "c2s", "type": "binary", "data": "AAE=", "timestamp": "2024-01-15T10:30:00.373456789Z",
         "relativeMs": 250}]
    assert frames(recording)[1]["encoding"] == "base64"
    assert not any({"dir", "ts", "rel"} & set(frame) for frame in frames(recording))


def test_go_layout_sse_recording_is_fetched_in_this_layout(imported: Imported) -> None:
    reply = admin(imported.server, "GET", f"/stream-recordings/{GO_SSE_ID}")
    assert reply.status == 200, reply.text
    found = reply.json()["sse"]["events"]
    assert [(e.get("type", "message"), e.get("data"), e.get("id"), e.get("relativeMs"), e.get("timestamp"))
            for e in found] == [("update", "{\"n\":1}", "1", 0, "2024-01-16T08:00:00.1Z"),
                                ("message", "plain", None, 500, "2024-01-16T08:00:00.6Z")]
    assert not any({"event", "ts", "rel"} & set(event) for event in found)


@pytest.mark.parametrize("recording_id", [GO_WS_ID, GO_SSE_ID], ids=["websocket", "sse"])
def test_go_layout_recording_is_written_back_in_this_layout(imported: Imported, recording_id: str) -> None:
    """A soft delete rewrites the file: it is then in this layout, and still the same recording."""
    reply = admin(imported.server, "DELETE", f"/stream-recordings/{recording_id}")
    assert reply.status == 204, reply.text
    path = imported.server.data_dir / f"{recording_id}.json"
    on_disk = json.loads(path.read_bytes())
    assert on_disk["deleted"] is True
    assert on_disk["stats"]["fileSizeBytes"] == path.stat().st_size
    if recording_id == GO_WS_ID:
        entries = on_disk["websocket"]["frames"]
        assert [(f["direction"], f["type"], f["relativeMs"]) for f in entries] == \
            [("s2c", "text", 100), ("c2s", "binary", 250)]
    else:
        entries = on_disk["sse"]["events"]
        assert [(e.get("type"), e["data"], e["relativeMs"]) for e in entries] == \
            [("update", "{\"n\":1}", 0), ("message", "plain", 500)]
    assert not any({"dir", "ts", "rel", "event"} & set(entry) for entry in entries)
    assert fetch(imported.server, recording_id)["deleted"] is True


def test_unparseable_recording_file_is_skipped_with_a_warning_and_kept(imported: Imported) -> None:
    server = imported.server
    assert GARBAGE_ID not in {item["id"] for item in listing(server, "?includeDeleted=true")["recordings"]}
    assert_error(admin(server, "GET", f"/stream-recordings/{GARBAGE_ID}"), (404, 400))
    assert admin(server, "POST", "/stream-recordings/vacuum").status == 200
    warnings = [line for line in server.stderr.splitlines() if GARBAGE_ID in line]
    assert warnings, f"no warning names {GARBAGE_ID}.json: {server.stderr}"
    assert imported.garbage.read_bytes() == GARBAGE  # never deleted nor rewritten
    assert (server.data_dir / "notes.json").exists()
    assert stats(server)["recordingCount"] == 2
    assert admin(server, "GET", "/health").status == 200


def test_only_recordings_are_listed_never_the_index_or_journals(imported: Imported) -> None:
    server = imported.server
    recording_id = start_session_sync(server, "websocket", "/ws/echo", "running")
    echo_traffic(server, "/ws/echo", ["j"])
    assert closed(poll_recording_sync(server, recording_id, closed)), "the connection was not captured and closed"
    extra_files = [p.name for p in server.data_dir.iterdir() if p.name not in
                   {f"{GO_WS_ID}.json", f"{GO_SSE_ID}.json", f"{GARBAGE_ID}.json", "notes.json"}]
    items = listing(server, "?includeDeleted=true")["recordings"]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    for item in items:
        assert ULID_RE.fullmatch(item["id"]), (item, extra_files)
        assert item["id"] == recording_id or (server.data_dir / f"{item['id']}.json").exists(), extra_files
    assert {GO_WS_ID, GO_SSE_ID} <= set(ids)
    assert set(ids) <= {GO_WS_ID, GO_SSE_ID, recording_id}
    stop_session_sync(server, recording_id)
    assert {item["id"] for item in listing(server)["recordings"]} == {GO_WS_ID, GO_SSE_ID, recording_id}


def test_orphaned_journal_after_kill_becomes_an_incomplete_recording(mockd: MockdFactory) -> None:
    server = mockd.start(MOCKS)
    recording_id = start_session_sync(server, "websocket", "/ws/echo", "crashed")
    with sync_connect(server.ws_url("/ws/echo"), open_timeout=DEADLINE, close_timeout=DEADLINE) as ws:
        for message in ("one", "two"):
            ws.send(message)
            assert ws.recv(timeout=DEADLINE) == message
        live = poll_recording_sync(server, recording_id, lambda r: len(frames(r)) >= 4)
        assert len(frames(live)) >= 4, live  # on disk by now
        server.stop(signal.SIGKILL)
    restarted = mockd.start(MOCKS, data_dir=server.data_dir)
    items = listing(restarted)["recordings"]
    assert [(item["id"], item["status"]) for item in items] == [(recording_id, "incomplete")]
    recording = fetch(restarted, recording_id)
    assert recording.get("stopReason") == "crash"
    assert [(f["direction"], f["data"]) for f in frames(recording) if f["type"] == "text"][:4] == \
        [("c2s", "one"), ("s2c", "one"), ("c2s", "two"), ("s2c", "two")]
    raw = file_of(restarted, recording_id).read_bytes()
    assert json.loads(raw)["stats"]["fileSizeBytes"] == len(raw)
