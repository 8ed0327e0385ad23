"""R6 (docs/faults.md): hostile ids on every ``{id}`` route of the admin API, huge and undecodable bodies, and
binary garbage on a WebSocket — answered with 400/404/413 (JSON) or a 1002/1009 close (or a dropped
connection), the server still serving, and nothing outside the data directory read or written.

Already covered elsewhere: list filters with bad values (``tests/test_recording_store_api.py::
test_list_bad_filter_value_is_400``); the data directory's permissions
(``::test_data_directory_is_0700_and_files_0600``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from contextlib import suppress
from pathlib import Path

import pytest

from processes import MockdFactory, RunningMockd
from configs import mocks_config, ws_mock
from faultkit import DEADLINE, RawWebSocket
from sessions import start_session, stop_session
from httpclient import acall
from upstreams import echo, open_ws, proxy_mock, request, ws_upstream

pytestmark = pytest.mark.fault

HOSTILE_IDS = {
    "dot-dot-slash": "../../etc/passwd",
    "encoded-dot-dot": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "encoded-dots-only": "%2e%2e",
    "double-encoded": "%252e%252e%252fetc%252fpasswd",
    "to-the-canary": "..%2Foutside%2FCANARY",  # CANARY: replaced by the canary recording's id
    "absolute": "%2Fetc%2Fpasswd",
    "nul-byte": "abc%00def",
    "backslashes": "..%5C..%5Cetc%5Cpasswd",
    "10kB": "A" * 10_240,
}
BODY_LIMIT = 16 * 1024 * 1024  # the admin API's documented body limit
ACCEPTABLE = {400, 404, 414}  # 414/431: a request line or header too long for the HTTP parser itself


def tree(root: Path, skip: set[Path]) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (outside ``skip``) with its size and mtime."""
    found: dict[str, tuple[int, int]] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if Path(directory, name) not in skip]
        for name in files:
            stat = Path(directory, name).stat()
            found[str(Path(directory, name).relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def id_routes(server: RunningMockd) -> list[tuple[str, str]]:
    """(method, path template) of every operation whose path has an ``{id}``, from ``/openapi.json``."""
    from httpclient import call
    document = call("GET", f"{server.admin_url}/openapi.json").json()
    return sorted((method.upper(), path) for path, item in document["paths"].items() if "{id}" in path
                  for method in item if method in ("get", "post", "put", "delete", "patch"))


def body_routes(server: RunningMockd) -> list[str]:
    """Every POST route that documents a request body."""
    from httpclient import call
    document = call("GET", f"{server.admin_url}/openapi.json").json()
    return sorted(path for path, item in document["paths"].items() if "requestBody" in item.get("post", {}))


def on_real_ids(path: str, recording_id: str) -> str:
    """``path`` with ``{id}`` filled: a recording route gets the seeded recording (so the handler goes on to
    read the body); a replay route gets an id that exists nowhere (404 is then an acceptable answer)."""
    return path.replace("{id}",
                        recording_id if path.startswith("/stream-recordings/") else "01ARZ3NDEKTSV4RRFFQ69G5FAV")


@pytest.fixture
async def guarded(mockd: MockdFactory, tmp_path: Path) -> tuple[RunningMockd, str, Path]:
    """A server whose data dir holds one recording; a copy of it (the canary) lies outside the data dir."""
    data_dir = tmp_path / "store" / "data"
    server = mockd.start(mocks_config(ws_mock("echo", "/ws/echo")), data_dir=data_dir)
    recording_id = await start_session(server, "websocket", "/ws/echo")
    await stop_session(server, recording_id)
    outside = tmp_path / "store" / "outside"
    outside.mkdir()
    canary = outside / f"{recording_id[::-1]}.json"
    canary.write_bytes((data_dir / f"{recording_id}.json").read_bytes().replace(recording_id.encode(),
                                                                                 recording_id[::-1].encode()))
    return server, recording_id[::-1], tmp_path


async def test_r6_hostile_ids_on_every_id_route(guarded: tuple[RunningMockd, str, Path]) -> None:
    server, canary_id, root = guarded
    skip = {server.data_dir}
    canary = root / "store" / "outside" / f"{canary_id}.json"
    canary_bytes = canary.read_bytes()
    before = tree(root, skip)
    routes = id_routes(server)
    assert len(routes) >= 10, routes  # the premise: the schema lists the id routes
    bad: list[str] = []
    for method, template in routes:
        for name, hostile in HOSTILE_IDS.items():
            target = template.replace("{id}", hostile.replace("CANARY", canary_id))
            body = b"{}" if method == "POST" else None
            headers = [("Content-Type", "application/json")] if body is not None else []
            reply = await request(server.admin_port, method, target, headers, body)
            if reply.status not in ACCEPTABLE:
                bad.append(f"{method} {template} [{name}]: {reply.status} {reply.body[:200]!r}")
            elif reply.status != 414:
                try:
                    error = reply.json()
                except ValueError:
                    bad.append(f"{method} {template} [{name}]: {reply.status} not JSON: {reply.body[:200]!r}")
                    continue
                if not isinstance(error, dict) or "error" not in error:
                    bad.append(f"{method} {template} [{name}]: {reply.status} {error!r}")
            if canary_id.encode() in reply.body and reply.status < 400:
                bad.append(f"{method} {template} [{name}]: served the canary from outside the data dir")
    assert not bad, "\n".join(bad[:30])
    assert canary.read_bytes() == canary_bytes
    assert tree(root, skip) == before, "files outside the data directory were created or changed"
    assert (await acall("GET", f"{server.admin_url}/health")).status == 200


@pytest.mark.parametrize("kind", ["content-length", "chunked"])
async def test_r6_huge_bodies_are_413_json(guarded: tuple[RunningMockd, str, Path], kind: str) -> None:
    server, canary_id, _ = guarded
    recording_id = canary_id[::-1]
    huge = b'{"x": "' + b"a" * (BODY_LIMIT + 1024) + b'"}'
    body: bytes | list[bytes] = huge if kind == "content-length" else [huge[i:i + (1 << 20)]
                                                                       for i in range(0, len(huge), 1 << 20)]
    bad: list[str] = []
    routes = body_routes(server)
    assert "/mocks" in routes and "/stream-recordings/start" in routes, routes
    for path in routes:
        target = on_real_ids(path, recording_id)
        try:
            reply = await request(server.admin_port, "POST", target, [("Content-Type", "application/json")], body,
                                  timeout=30)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            bad.append(f"POST {path}: connection dropped without an answer ({exc!r})")
            continue
        if path.startswith("/replay/") and reply.status == 404 and reply.json().get("error") == "not_found":
            continue  # no such replay: refused before the body is read
        if reply.status != 413 or reply.json().get("error") != "payload_too_large":
            bad.append(f"POST {path}: {reply.status} {reply.body[:200]!r}")
    assert not bad, "\n".join(bad)
    assert (await acall("GET", f"{server.admin_url}/health")).status == 200


UNDECODABLE = {
    "invalid-utf8-in-string": b'"\xff\xfe\xd1D"',
    "invalid-utf8-in-object": b'{"protocol": "websocket", "path": "/\xc3\x28"}',
    "lone-surrogate-escape": b'{"name": "\\ud800"}',
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("body", UNDECODABLE.values(), ids=UNDECODABLE.keys())
async def test_r6_undecodable_json_bodies_are_4xx_json_on_every_body_route(guarded: tuple[RunningMockd, str, Path],
                                                                           body: bytes) -> None:
    server, canary_id, _ = guarded
    bad: list[str] = []
    routes = body_routes(server)
    assert "/mocks" in routes and "/stream-recordings/start" in routes, routes
    for path in routes:
        target = on_real_ids(path, canary_id[::-1])
        reply = await acall("POST", server.admin_url + target, raw=body)
        if not 400 <= reply.status < 500:
            bad.append(f"POST {path}: {reply.status} {reply.body[:200]!r}")
        elif "error" not in json.loads(reply.body):
            bad.append(f"POST {path}: {reply.status} without a JSON error: {reply.body[:200]!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("via", ["mock", "proxy"])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_r6_binary_garbage_after_the_upgrade_closes_1002_or_1009(mockd: MockdFactory, via: str,
                                                                      seed: int) -> None:
    async with ws_upstream(echo) as upstream:
        config = mocks_config(ws_mock("echo", "/ws/echo"), proxy_mock(upstream.url, "/up"))
        server = mockd.start(config)
        recording_id = await start_session(server, "websocket", "/*")
        path = "/ws/echo" if via == "mock" else "/up/ws"
        raw = await RawWebSocket.open(server.mock_port, path)
        rng = random.Random(seed)
        garbage = bytes([0x8F | 0x70]) + rng.randbytes(64 * 1024)  # reserved opcode + RSV bits, then noise
        with suppress(ConnectionError):  # dropped while we were still writing: allowed
            await raw.send(garbage)
        _, code = await raw.read_until_close()
        await raw.close()
        assert code in (None, 1002, 1009), f"closed with {code}"
        # Still serving: a well-behaved client on the same path gets its echo.
        async with open_ws(server.ws_url(path)) as ws:
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), DEADLINE) == "still here"
        recording = await stop_session(server, recording_id)
        assert recording["stats"]["frameCount"] == len(recording["websocket"]["frames"])
    assert server.process.poll() is None
