"""Recording sessions over the admin API, for the tests that record: start one, stop it (one copy of
each, shared by the end-to-end and fault tests)."""

from __future__ import annotations

from typing import Any

from conftest import RunningMockd
from httpclient import acall


async def start_session(server: RunningMockd, protocol: str, path: str, name: str | None = None,
                        **fields: Any) -> str:
    """``POST /stream-recordings/start``; the recording's id (which is the session's)."""
    body = {"protocol": protocol, "path": path, **({"name": name} if name is not None else {}), **fields}
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/start", body)
    assert reply.status == 201, reply.text
    document = reply.json()
    assert document["sessionId"] == document["recordingId"]
    return str(document["recordingId"])


async def stop_session(server: RunningMockd, recording_id: str) -> dict[str, Any]:
    """``POST /stream-recordings/{id}/stop``; the finished recording."""
    reply = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/stop", timeout=60)
    assert reply.status == 200, reply.text
    recording: dict[str, Any] = reply.json()
    assert recording["status"] == "complete"
    return recording
