"""A WebSocket chat client (the websockets library) against the recorded chat."""

import json

from websockets.sync.client import connect


def test_join_and_read_the_room(mockd):
    with connect(mockd.ws_url("/ws/chat")) as ws:
        ws.send(json.dumps({"type": "join", "room": "general"}))  # sent at once: mockd keeps it for the scenario
        assert json.loads(ws.recv())["type"] == "welcome"
        assert json.loads(ws.recv()) == {"type": "joined", "room": "general", "members": 3}
        assert [json.loads(ws.recv())["n"] for _ in range(3)] == [0, 1, 2]
