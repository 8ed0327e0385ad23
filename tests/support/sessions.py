"""Recording sessions over the admin API, for the tests that record: start one, stop it, poll the
recording until it holds what the test waits for (one copy of each, async and sync, shared by the
end-to-end and fault tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from httpclient import Reply, acall, call
from polling import SOON, poll_value, poll_value_sync
from processes import RunningMockd

Json = dict[str, Any]


def start_body(protocol: str, path: str, name: str | None = None, **fields: Any) -> Json:
    """The body of ``POST /stream-recordings/start``."""
    return {"protocol": protocol, "path": path, **({"name": name} if name is not None else {}), **fields}


def started_id(reply: Reply) -> str:
    """The recording's id (which is the session's) from a ``201`` start answer."""
    assert reply.status == 201, reply.text
    document = reply.json()
    assert document["sessionId"] == document["recordingId"]
    return str(document["recordingId"])


def stopped_recording(reply: Reply) -> Json:
    """The finished recording from a ``200`` stop answer."""
    assert reply.status == 200, reply.text
    recording: Json = reply.json()
    assert recording["status"] == "complete"
    return recording


async def start_session(server: RunningMockd, protocol: str, path: str, name: str | None = None,
                        **fields: Any) -> str:
    """``POST /stream-recordings/start``; the recording's id (which is the session's)."""
    body = start_body(protocol, path, name, **fields)
    return started_id(await acall("POST", f"{server.admin_url}/stream-recordings/start", body))


def start_session_sync(server: RunningMockd, protocol: str, path: str, name: str | None = None,
                       **fields: Any) -> str:
    """:func:`start_session` for synchronous tests."""
    body = start_body(protocol, path, name, **fields)
    return started_id(call("POST", f"{server.admin_url}/stream-recordings/start", body))


async def stop_session(server: RunningMockd, recording_id: str) -> Json:
    """``POST /stream-recordings/{id}/stop``; the finished recording."""
    return stopped_recording(await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop",
                                         timeout=60))


def stop_session_sync(server: RunningMockd, recording_id: str) -> Json:
    """:func:`stop_session` for synchronous tests."""
    return stopped_recording(call("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop", timeout=60))


def holds(predicate: Callable[[Json], bool]) -> Callable[[Reply], bool]:
    """Whether a ``GET /stream-recordings/{id}`` answer is the recording and ``predicate`` holds for it
    (a recording still missing what the predicate reads does not hold)."""
    def done(reply: Reply) -> bool:
        try:
            return reply.status == 200 and predicate(reply.json())
        except (KeyError, TypeError, IndexError):
            return False
    return done


def is_settled(recording: Json) -> bool:
    return bool(recording["status"] != "recording")


async def poll_recording(server: RunningMockd, recording_id: str, predicate: Callable[[Json], bool],
                         timeout: float = SOON) -> Json:
    """GET the recording until ``predicate`` holds or ``timeout`` passes; returns the last answer (the
    caller's assertions say what was missing; an error answer is returned as its JSON)."""
    reply = await poll_value(lambda: acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}"),
                             holds(predicate), timeout)
    recording: Json = reply.json()
    return recording


def poll_recording_sync(server: RunningMockd, recording_id: str, predicate: Callable[[Json], bool],
                        timeout: float = SOON) -> Json:
    """:func:`poll_recording` for synchronous tests."""
    reply = poll_value_sync(lambda: call("GET", f"{server.admin_url}/stream-recordings/{recording_id}"),
                            holds(predicate), timeout)
    recording: Json = reply.json()
    return recording


async def settled(server: RunningMockd, recording_id: str, timeout: float = SOON) -> Json:
    """The recording once its session has ended by itself and the file is written. (Right after a
    session stops by itself the id may answer 404 for a moment; this waits that out.)"""
    reply = await poll_value(lambda: acall("GET", f"{server.admin_url}/stream-recordings/{recording_id}"),
                             holds(is_settled), timeout)
    assert holds(is_settled)(reply), f"the recording did not settle: {reply.status} {reply.body[:300]!r}"
    recording: Json = reply.json()
    return recording


def settled_sync(server: RunningMockd, recording_id: str, timeout: float = SOON) -> Json:
    """:func:`settled` for synchronous tests."""
    reply = poll_value_sync(lambda: call("GET", f"{server.admin_url}/stream-recordings/{recording_id}"),
                            holds(is_settled), timeout)
    assert holds(is_settled)(reply), f"the recording did not settle: {reply.status} {reply.body[:300]!r}"
    recording: Json = reply.json()
    return recording
