"""A recording replayed one frame at a time, under the test's control."""

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

RECORDING = Path(__file__).parent / "recordings" / "chat.json"


@pytest.mark.mockd(cassette=Path(__file__).parent / "cassettes" / "empty.json")
def test_the_test_decides_when_each_frame_goes(mockd):
    replay = mockd.replay(RECORDING, mode="triggered")
    with connect(mockd.ws_url("/ws/chat")) as ws:
        replay.wait_for("playing")
        assert replay.advance().frames_sent == 1
        assert json.loads(ws.recv())["type"] == "welcome"
        assert replay.advance(until='"n": 1').frames_sent == 3  # joined, message 0, message 1
        assert [json.loads(ws.recv())["type"] for _ in range(3)] == ["joined", "message", "message"]
        assert replay.status.frames_sent == 4
