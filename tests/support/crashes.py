"""kill -9 in the middle of recorded traffic, and what the recording must hold afterwards: shared by the
durability test (clients on a mock; docs/recording.md, "Sessions") and fault R1 (100 proxied connections;
docs/faults.md).

The moment T is when every client has ``warm_up`` echoes; traffic then goes on for ``after_t`` seconds
before the SIGKILL, so "everything confirmed at T" is everything relayed at least ``after_t`` before the
kill — only the last 200 ms may be lost (docs/recording.md promises at most the last 100 ms).
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from typing import Any

from processes import RunningMockd
from polling import SOON, wait_until
from upstreams import open_ws
from websockets.exceptions import ConnectionClosed


async def echo_forever(url: str, prefix: str, confirmed: list[str], opened: list[bool]) -> None:
    """Send numbered messages one at a time, noting each one whose echo came back, until the server dies."""
    try:
        async with open_ws(url) as ws:
            opened.append(True)
            number = 0
            while True:
                message = f"{prefix}-m{number:07d}"
                await ws.send(message)
                reply = await ws.recv()
                assert reply == message, f"echo of {message!r} came back as {reply!r}"
                confirmed.append(message)
                number += 1
    except (ConnectionClosed, OSError):
        return  # the server was killed


@dataclass
class Killed:
    at_t: dict[str, list[str]]  # per client: the messages whose echo had come back at the moment T
    before_kill: dict[str, int]  # per client: how many had come back when the kill was sent


async def echo_until_killed(server: RunningMockd, url: str, clients: int, warm_up: int, after_t: float,
                            timeout: float = 30) -> Killed:
    """``clients`` connections echo through ``url`` until ``server`` is killed with SIGKILL, ``after_t``
    seconds after the moment T."""
    confirmed: dict[str, list[str]] = {f"c{i:03d}": [] for i in range(clients)}
    opened: list[bool] = []
    tasks = [asyncio.create_task(echo_forever(url, prefix, messages, opened)) for prefix, messages in confirmed.items()]
    try:
        await wait_until(lambda: all(len(messages) >= warm_up for messages in confirmed.values()),
                         f"every client to have {warm_up} echoes", timeout)
        at_t = {prefix: list(messages) for prefix, messages in confirmed.items()}  # one synchronous copy
        await asyncio.sleep(after_t)  # traffic goes on: this is time the test itself needs to pass
        before_kill = {prefix: len(messages) for prefix, messages in confirmed.items()}
        server.process.kill()
        assert server.process.wait(SOON) == -signal.SIGKILL
        await asyncio.wait_for(asyncio.gather(*tasks), SOON)
    finally:
        for task in tasks:
            task.cancel()
    assert len(opened) == clients
    return Killed(at_t, before_kill)


def text_frames_by_connection(recording: dict[str, Any]) -> dict[tuple[int, str], list[str]]:
    """The text frames' data by (connection, direction), in recorded order."""
    result: dict[tuple[int, str], list[str]] = {}
    for frame in recording["websocket"]["frames"]:
        if frame["type"] == "text":
            result.setdefault((frame["connection"], frame["direction"]), []).append(frame["data"])
    return result


def assert_everything_confirmed_at_t_is_recorded(recording: dict[str, Any], at_t: dict[str, list[str]]) -> None:
    """Each client's messages are on exactly one connection, which holds in order and each once every
    message confirmed at T, both ways."""
    frames = text_frames_by_connection(recording)
    assert len({connection for connection, _ in frames}) == len(at_t)
    missing: list[str] = []
    for prefix, expected in at_t.items():
        owners = {connection for (connection, direction), data in frames.items()
                  if direction == "c2s" and any(item.startswith(f"{prefix}-") for item in data)}
        assert len(owners) == 1, f"{prefix}: its messages are spread over connections {owners}"
        (connection,) = owners
        for direction in ("c2s", "s2c"):
            recorded = frames.get((connection, direction), [])
            if recorded[:len(expected)] != expected:
                missing.append(f"{prefix} {direction}: {len(expected)} confirmed at T, the recording has "
                               f"{len(recorded)} starting {recorded[:3]}")
    assert not missing, missing[:10]
