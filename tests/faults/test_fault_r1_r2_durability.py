"""R1 and R2 (docs/faults.md): a ``kill -9`` with 100 proxied connections being recorded, and the storage quota
reached in the middle of a proxied session.

Already covered elsewhere (checked to still exist by ``test_referenced_tests_exist``):

* R1 with 20 clients on a WebSocket *mock*: ``tests/test_recording_durability.py::
  test_kill_9_loses_nothing_relayed_200ms_before_and_recovers_as_incomplete``; the orphaned journal
  alone: ``tests/test_recording_store_api.py::test_orphaned_journal_after_kill_becomes_an_incomplete_recording``.
* R2 on a WebSocket *mock*: ``tests/test_recording_store_api.py::
  test_session_that_crosses_max_bytes_stops_incomplete_and_serving_goes_on``.

Here both run through the upstream proxy (a ``websockets`` echo server in the test's event loop), with
R1's 100 connections.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from processes import MockdFactory
from configs import http_mock, mocks_config, write_config
from faultkit import (
    DEADLINE,
    assert_file_is_consistent,
    close_frames,
    recording_file,
    session_ids,
    test_functions_in,
)
from sessions import settled, start_session
from httpclient import acall
from crashes import assert_everything_confirmed_at_t_is_recorded, echo_until_killed
from upstreams import echo, open_ws, proxy_mock, ws_upstream

pytestmark = pytest.mark.fault

REFERENCED = [
    ("test_recording_durability.py", "test_kill_9_loses_nothing_relayed_200ms_before_and_recovers_as_incomplete"),
    ("test_recording_store_api.py", "test_orphaned_journal_after_kill_becomes_an_incomplete_recording"),
    ("test_recording_store_api.py", "test_session_that_crosses_max_bytes_stops_incomplete_and_serving_goes_on"),
]


@pytest.mark.parametrize(("file_name", "test_name"), REFERENCED, ids=[name for _, name in REFERENCED])
def test_referenced_tests_exist(file_name: str, test_name: str) -> None:
    assert test_name in test_functions_in(file_name)


# --- R1 -------------------------------------------------------------------------------------------

CLIENTS = 100
WARM_UP_MESSAGES = 3  # per client, before the moment T
AFTER_T = 0.4  # seconds of traffic between T and the kill (the test lets the last 200 ms be lost)


async def test_r1_kill_9_with_100_proxied_connections_recording(mockd: MockdFactory) -> None:
    async with ws_upstream(echo) as upstream:
        config = mocks_config(proxy_mock(upstream.url))
        server = mockd.start(config)
        recording_id = await start_session(server, "websocket", "/ws/*")
        killed = await echo_until_killed(server, server.ws_url("/ws/r1"), CLIENTS, WARM_UP_MESSAGES, AFTER_T)
        assert sum(killed.before_kill.values()) > sum(map(len, killed.at_t.values())), \
            "no traffic flowed between T and the kill"

        restarted = mockd.start(config, data_dir=server.data_dir)
        listing = (await acall("GET", f"{restarted.admin_url}/stream-recordings")).json()
        summaries = {summary["id"]: summary for summary in listing["recordings"]}
        assert summaries.get(recording_id, {}).get("status") == "incomplete", listing
        recording = assert_file_is_consistent(recording_file(server.data_dir, recording_id))
        assert (recording["status"], recording.get("stopReason")) == ("incomplete", "crash")

        assert_everything_confirmed_at_t_is_recorded(recording, killed.at_t)

        # The restarted server proxies again.
        async with open_ws(restarted.ws_url("/ws/after")) as ws:
            await ws.send("after restart")
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == "after restart"


# --- R2 -------------------------------------------------------------------------------------------

MAX_BYTES = 20_000


async def test_r2_quota_reached_mid_proxied_session(mockd: MockdFactory, tmp_path: Path) -> None:
    settings = write_config(tmp_path, f"recording:\n  maxBytes: {MAX_BYTES}\n", "quota.yaml")
    async with ws_upstream(echo) as upstream:
        config = mocks_config(http_mock("hello", "/hello", {"hi": 1}), proxy_mock(upstream.url))
        server = mockd.start(config, "--settings", str(settings))
        recording_id = await start_session(server, "websocket", "/ws/quota")
        message = "q" * 1000
        async with open_ws(server.ws_url("/ws/quota")) as ws:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE
            n = 0
            while True:  # until the session stops: it must, long before the deadline
                await ws.send(f"{n:06d}{message}")
                assert await asyncio.wait_for(ws.recv(), DEADLINE) == f"{n:06d}{message}"
                if n % 5 == 4 and recording_id not in await session_ids(server):
                    break
                assert loop.time() < deadline, f"the session did not stop at the quota after {n} messages"
                n += 1
            # The proxied connection is still open and relaying after the session stopped.
            await ws.send("after the quota")
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == "after the quota"
        recording = await settled(server, recording_id)
        assert (recording["status"], recording.get("stopReason")) == ("incomplete", "storage")
        on_disk = assert_file_is_consistent(recording_file(server.data_dir, recording_id))
        assert on_disk["id"] == recording_id
        assert on_disk["stats"]["frameCount"] > 0
        assert not close_frames(on_disk), "frames after the stop were recorded"

        # The server keeps serving (HTTP mock) and proxying (a new WebSocket connection).
        hello = await acall("GET", f"{server.mock_url}/hello")
        assert (hello.status, hello.json()) == (200, {"hi": 1})
        async with open_ws(server.ws_url("/ws/other")) as ws:
            await ws.send("new connection")
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == "new connection"
        # A new session is refused while the directory is over the quota, with a JSON error.
        refused = await acall("POST", f"{server.admin_url}/stream-recordings/start",
                              {"protocol": "websocket", "path": "/ws/quota"})
        assert refused.status == 507, refused.text
        assert refused.json()["error"] == "storage_full"
        assert server.process.poll() is None
