"""R3 (docs/faults.md): the upstream fails — unreachable, drops the TCP connection, closes with 4001 — and a
recording session is open on the path each time, so the recording must show the failure as it happened.

The client-side behaviour alone is covered in ``tests/test_proxy_websocket.py``
(``test_unreachable_upstream_refuses_the_upgrade_with_502``,
``test_upstream_dropping_tcp_closes_the_client_with_bad_gateway``,
``test_upstream_close_code_and_reason_reach_the_client``) and for HTTP in ``tests/test_proxy_http.py``;
these tests add the recording side, and the SSE (plain HTTP) 502.
"""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from processes import MockdFactory, RunningMockd
from configs import mocks_config
from faultkit import (
    assert_file_is_consistent,
    close_frames,
    recording_file,
    test_functions_in,
)
from sessions import start_session, stop_session
from httpclient import acall
from upstreams import (
    RecordingServerConnection,
    dropping_ws_upstream,
    open_ws,
    proxy_mock,
    recv,
    server_close,
    unreachable_url,
    ws_upstream,
)

pytestmark = pytest.mark.fault

BAD_GATEWAY_CODES = (1011, 1014)
REFERENCED = ["test_unreachable_upstream_refuses_the_upgrade_with_502",
              "test_upstream_dropping_tcp_closes_the_client_with_bad_gateway",
              "test_upstream_close_code_and_reason_reach_the_client"]


@pytest.mark.parametrize("test_name", REFERENCED)
def test_referenced_tests_exist(test_name: str) -> None:
    assert test_name in test_functions_in("test_proxy_websocket.py")


async def live_recording(server: RunningMockd, recording_id: str) -> dict:  # type: ignore[type-arg]
    reply = await acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}")
    assert reply.status == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def assert_json_502(status: int, body: bytes, target: str) -> None:
    assert status == 502
    error = json.loads(body or b"{}")
    assert set(error) >= {"error", "message"}, error
    assert target in error["message"]


@pytest.mark.parametrize("protocol", ["websocket", "sse"])
async def test_r3_unreachable_upstream_is_502_json_and_records_no_relayed_traffic(mockd: MockdFactory,
                                                                                protocol: str) -> None:
    with unreachable_url() as url:
        server = mockd.start(mocks_config(proxy_mock(url)))
        recording_id = await start_session(server, protocol, "/stream/*")
        if protocol == "websocket":
            with pytest.raises(InvalidStatus) as info:
                await open_ws(server.ws_url("/stream/ws"))
            response = info.value.response
            assert_json_502(response.status_code, response.body or b"", url)
        else:
            reply = await acall("GET", f"{server.mock_url}/stream/sse", headers={"Accept": "text/event-stream"})
            assert_json_502(reply.status, reply.body, url)
    recording = await stop_session(server, recording_id)
    on_disk = assert_file_is_consistent(recording_file(server.data_dir, recording_id))
    assert on_disk == recording
    # Nothing was relayed (the upgrade or stream never began), so the recording holds no frame, event or
    # connection that would replay as if the upstream had answered.
    entries = recording["websocket"]["frames"] if protocol == "websocket" else recording["sse"]["events"]
    assert entries == []
    assert recording.get("connections", []) == []
    # And the server still serves the next request.
    assert (await acall("GET", f"{server.admin_url}/health")).status == 200


@pytest.mark.parametrize("abort", [True, False], ids=["reset", "fin"])
async def test_r3_upstream_dropping_tcp_is_recorded_with_the_close_the_client_got(mockd: MockdFactory,
                                                                                 abort: bool) -> None:
    async with dropping_ws_upstream(abort=abort) as raw:
        server = mockd.start(mocks_config(proxy_mock(raw.url)))
        recording_id = await start_session(server, "websocket", "/ws/*")
        client = await open_ws(server.ws_url("/ws/drop"))
        assert await recv(client) == "ready"
        raw.drop.set()
        _, close = await server_close(client)
        assert close.code in BAD_GATEWAY_CODES
        recording = await stop_session(server, recording_id)
    texts = [(frame["direction"], frame["data"]) for frame in recording["websocket"]["frames"]
             if frame["type"] == "text"]
    assert texts == [("s2c", "ready")]
    sent_to_client = close_frames(recording, "s2c")
    assert [frame.get("closeCode") for frame in sent_to_client] == [close.code], recording["websocket"]["frames"]
    assert recording["websocket"].get("closeCode") == close.code
    [connection] = recording["connections"]
    assert connection["closeCode"] == close.code
    assert connection["origin"] == "proxy"
    assert_file_is_consistent(recording_file(server.data_dir, recording_id))


async def test_r3_upstream_close_4001_reaches_the_client_and_is_recorded(mockd: MockdFactory) -> None:
    reason = "token expired"

    async def close_4001(ws: RecordingServerConnection) -> None:
        await ws.send("ready")
        await ws.recv()
        await ws.close(4001, reason)

    async with ws_upstream(close_4001) as upstream:
        server = mockd.start(mocks_config(proxy_mock(upstream.url)))
        recording_id = await start_session(server, "websocket", "/ws/*")
        async with open_ws(server.ws_url("/ws/auth")) as client:
            assert await recv(client) == "ready"
            await client.send("go")
            _, close = await server_close(client)
        assert (close.code, close.reason) == (4001, reason)
        recording = await stop_session(server, recording_id)
    kinds = [(frame["direction"], frame["type"]) for frame in recording["websocket"]["frames"]]
    assert kinds[:3] == [("s2c", "text"), ("c2s", "text"), ("s2c", "close")], kinds
    [upstream_close] = close_frames(recording, "s2c")
    assert (upstream_close.get("closeCode"), upstream_close.get("closeReason")) == (4001, reason)
    # The client's answer echoes the code back (RFC 6455 §5.5.1), also recorded.
    assert [frame.get("closeCode") for frame in close_frames(recording, "c2s")] == [4001]
    assert (recording["websocket"].get("closeCode"), recording["websocket"].get("closeReason")) == (4001, reason)
    [connection] = recording["connections"]
    assert (connection["closeCode"], connection["closeReason"]) == (4001, reason)
    assert_file_is_consistent(recording_file(server.data_dir, recording_id))
