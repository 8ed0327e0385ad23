"""The admin API against web pages in the developer's own browser (docs/security.md): a foreign ``Host``
(DNS rebinding) is refused on every route, a foreign ``Origin`` on every state-changing route, a body
that is not JSON everywhere — and nothing changes; ``curl`` as docs/recording.md shows it, the CLI and the
Python client keep working, the latter two with the token read from the data directory's ready file."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from processes import MockdFactory, RunningMockd, run_mockd
from configs import http_mock, mocks_config, write_config
from httpclient import Reply, call, send

from mockd.admin.guard import AdminAccess, refusal

EVIL = "http://evil.example"
CONFIG = mocks_config(http_mock("chat", "/chat", "hi"))
PLACEHOLDER_ID = "01HXYZ123456789ABCDEFGHJKM"


@pytest.fixture(scope="module")
def shared(mockd_module: MockdFactory) -> RunningMockd:
    return mockd_module.start(CONFIG)


@pytest.fixture(scope="module")
def routes(shared: RunningMockd) -> list[tuple[str, str, bool]]:
    """Every documented operation as (method, concrete path, takes a body)."""
    document = call("GET", f"{shared.admin_url}/openapi.json").json()
    return [(method.upper(), re.sub(r"\{[^}]+\}", PLACEHOLDER_ID, path), "requestBody" in operation)
            for path, operations in document["paths"].items() for method, operation in operations.items()]


def state(server: RunningMockd) -> tuple[Any, ...]:
    """What a refused request must not have changed: mocks, sessions, recordings, replays."""
    return (call("GET", f"{server.admin_url}/mocks").json(),
            call("GET", f"{server.admin_url}/stream-recordings/sessions").json(),
            call("GET", f"{server.admin_url}/stream-recordings").json()["recordings"],
            call("GET", f"{server.admin_url}/replay").json())


def injected_mock() -> bytes:
    return json.dumps(http_mock("injected", "/injected", "pwned")).encode()


def refused(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, (reply.status, reply.text)
    assert reply.json()["error"] == code
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_a_foreign_host_is_refused_on_every_admin_route(shared: RunningMockd,
                                                         routes: list[tuple[str, str, bool]]) -> None:
    before = state(shared)
    for method, path, takes_body in routes:
        headers = {"Host": f"evil.example:{shared.admin_port}"}
        body = None
        if takes_body:
            headers["Content-Type"], body = "application/json", injected_mock()
        refused(send(shared.admin_port, method, path, headers, body), 403, "host_not_allowed")
    for path in ("/health", "/openapi.json", "/no-such-route"):
        refused(send(shared.admin_port, "GET", path, {"Host": "rebound.attacker.test"}), 403, "host_not_allowed")
    assert state(shared) == before
    assert "host_not_allowed" in shared.stderr and "evil.example" in shared.stderr  # each refusal is logged


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST.", "127.0.0.1:1"])
def test_loopback_names_are_this_admin_apis(shared: RunningMockd, host: str) -> None:
    assert send(shared.admin_port, "GET", "/health", {"Host": host}).status == 200


def test_a_body_that_is_not_json_is_415_on_every_route_that_takes_one(shared: RunningMockd,
                                                                      routes: list[tuple[str, str, bool]]) -> None:
    before = state(shared)
    with_bodies = [(method, path) for method, path, takes_body in routes if takes_body]
    assert ("POST", "/mocks") in with_bodies and ("POST", "/stream-recordings/start") in with_bodies
    for method, path in with_bodies:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                             None):
            headers = {"Content-Type": content_type} if content_type else {}
            reply = send(shared.admin_port, method, path, headers, injected_mock())
            refused(reply, 415, "unsupported_media_type")
    assert state(shared) == before
    assert call("GET", f"{shared.mock_url}/injected").status == 404


def test_a_foreign_origin_may_not_change_anything(shared: RunningMockd, routes: list[tuple[str, str, bool]]) -> None:
    before = state(shared)
    changing = [(method, path, takes_body) for method, path, takes_body in routes if method != "GET"]
    assert ("DELETE", f"/mocks/{PLACEHOLDER_ID}") in [(m, p) for m, p, _ in changing]
    for origin in (EVIL, "null", f"http://localhost:{shared.admin_port + 1}", f"https://127.0.0.1:{shared.admin_port}"):
        for method, path, takes_body in changing:
            headers = {"Origin": origin, **({"Content-Type": "application/json"} if takes_body else {})}
            reply = send(shared.admin_port, method, path, headers, injected_mock() if takes_body else None)
            refused(reply, 403, "origin_not_allowed")
        refused(send(shared.admin_port, "DELETE", "/mocks/chat", {"Origin": origin}), 403, "origin_not_allowed")
    assert state(shared) == before
    assert call("GET", f"{shared.mock_url}/chat").text == "hi"


def test_a_cross_site_websocket_upgrade_is_refused(shared: RunningMockd) -> None:
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": EVIL}
    refused(send(shared.admin_port, "GET", "/stream-recordings", upgrade), 403, "origin_not_allowed")


def test_reads_carry_no_cors_headers_so_a_page_cannot_read_them(shared: RunningMockd) -> None:
    reply = send(shared.admin_port, "GET", "/stream-recordings", {"Origin": EVIL})
    assert reply.status == 200  # a browser gets it, and keeps it from the page: no CORS headers
    assert not [name for name in reply.headers if name.lower().startswith("access-control-")]
    preflight = send(shared.admin_port, "OPTIONS", "/mocks", {"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert preflight.status != 204 and "Access-Control-Allow-Origin" not in preflight.headers


def test_its_own_origin_and_curl_without_one_work(shared: RunningMockd) -> None:
    own = send(shared.admin_port, "POST", "/stream-recordings/start",
               {"Origin": f"http://127.0.0.1:{shared.admin_port}", "Content-Type": "application/json"},
               json.dumps({"protocol": "sse", "path": "/own-origin"}).encode())
    assert own.status == 201, own.text
    stopped = call("POST", f"{shared.admin_url}/stream-recordings/{own.json()['recordingId']}/stop")
    assert stopped.status == 200


def test_the_seeds_curl_quick_start_works_as_shown(shared: RunningMockd) -> None:
    def curl(*args: str) -> Any:
        result = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True,
                                timeout=30, check=True)
        return json.loads(result.stdout) if result.stdout.strip() else None

    base = f"http://localhost:{shared.admin_port}"
    started = curl("-X", "POST", f"{base}/stream-recordings/start", "-H", "Content-Type: application/json",
                   "-d", '{"protocol": "websocket", "path": "/ws/chat", "name": "chat-session"}')
    recording_id = started["recordingId"]
    assert curl("-X", "POST", f"{base}/stream-recordings/{recording_id}/stop")["id"] == recording_id
    assert any(item["id"] == recording_id for item in curl(f"{base}/stream-recordings")["recordings"])
    assert curl(f"{base}/stream-recordings?protocol=websocket")
    assert curl(f"{base}/stream-recordings/{recording_id}")["id"] == recording_id


def test_allowed_hosts_and_origins_pass_with_cors_for_the_origin(mockd: MockdFactory, tmp_path: Path) -> None:
    settings = tmp_path / "mockd.yaml"
    settings.write_text("admin:\n  allowedHosts: [mockd.internal]\n")
    page = "http://localhost:5173"
    server = mockd.start(CONFIG, "--settings", str(settings), "--admin-allowed-host", "mockd.test",
                         "--admin-allow-origin", page)
    for host in ("mockd.internal", "mockd.test:4290", "MOCKD.TEST"):
        assert send(server.admin_port, "GET", "/mocks", {"Host": host}).status == 200
    refused(send(server.admin_port, "GET", "/mocks", {"Host": "other.test"}), 403, "host_not_allowed")

    preflight = send(server.admin_port, "OPTIONS", "/mocks",
                     {"Origin": page, "Access-Control-Request-Method": "POST",
                      "Access-Control-Request-Headers": "content-type"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == page
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    added = send(server.admin_port, "POST", "/mocks", {"Origin": page, "Content-Type": "application/json"},
                 injected_mock())
    assert added.status == 201 and added.headers["Access-Control-Allow-Origin"] == page
    assert call("GET", f"{server.mock_url}/injected").text == "pwned"
    refused(send(server.admin_port, "DELETE", "/mocks/injected", {"Origin": EVIL}), 403, "origin_not_allowed")


@pytest.mark.parametrize(("flags", "message"), [
    (["--admin-allow-origin", "*"], "--admin-allow-origin '*': expected scheme://host[:port], as in "
                                    "http://localhost:5173 (no path, no wildcard)"),
    (["--admin-allow-origin", "http://localhost:5173/app"], "--admin-allow-origin 'http://localhost:5173/app': "
                                                            "expected scheme://host[:port], as in "
                                                            "http://localhost:5173 (no path, no wildcard)"),
    (["--admin-allowed-host", "*.example"], "--admin-allowed-host '*.example': expected a host name or address, "
                                            "as in mockd.internal"),
])
def test_access_options_that_cannot_work_are_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path), *flags)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"mockd: error: {message}"]


def test_the_cli_and_the_client_read_the_token_from_the_data_dirs_ready_file(mockd: MockdFactory,
                                                                              tmp_path: Path) -> None:
    from mockd import Client

    data_dir = tmp_path / "data"
    server = mockd.start(CONFIG, "--admin-token", "t0ken-from-flag", data_dir=data_dir)
    ready = data_dir / "mockd.ready"
    assert stat.S_IMODE(ready.stat().st_mode) == 0o600
    assert json.loads(ready.read_text())["adminToken"] == "t0ken-from-flag"
    assert "t0ken-from-flag" not in server.stdout  # the banner never shows it
    assert call("GET", f"{server.admin_url}/mocks").status == 401

    listed = run_mockd("sr", "sessions", "--data-dir", str(data_dir), env={"MOCKD_ADMIN_TOKEN": ""})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "No active recording sessions"
    client = Client.for_data_dir(data_dir)
    assert [mock["id"] for mock in client.mocks()] == ["chat"]


def test_the_settings_files_token_protects_the_admin_api(mockd: MockdFactory, tmp_path: Path) -> None:
    settings = write_config(tmp_path, "admin:\n  token: from-settings\n", "mockd.yaml")
    server = mockd.start(CONFIG, "--settings", str(settings), env={"MOCKD_ADMIN_TOKEN": ""})
    assert call("GET", f"{server.admin_url}/mocks").status == 401
    assert call("GET", f"{server.admin_url}/mocks", headers={"Authorization": "Bearer from-settings"}).status == 200


# --- the decision, without sockets ----------------------------------------------------------------


ACCESS = AdminAccess.of(["mockd.internal"], ["http://localhost:5173"])


@pytest.mark.parametrize(("method", "headers", "local", "expected"), [
    ("GET", {"Host": "127.0.0.1:4290"}, "127.0.0.1", None),
    ("GET", {"Host": "evil.example:4290"}, "127.0.0.1", "host_not_allowed"),
    ("GET", {"Host": "192.168.1.5:4290"}, "192.168.1.5", None),  # a non-loopback bind: the address it accepted on
    ("GET", {"Host": "192.168.1.6:4290"}, "192.168.1.5", "host_not_allowed"),
    ("GET", {"Host": "[::ffff:7f00:1]:4290"}, "127.0.0.1", "host_not_allowed"),
    ("GET", {"Host": "mockd.internal"}, "127.0.0.1", None),
    ("GET", {}, "127.0.0.1", None),  # HTTP/1.0 without Host: no name a rebinding page could have put there
    ("POST", {"Host": "127.0.0.1:4290", "Origin": EVIL}, "127.0.0.1", "origin_not_allowed"),
    ("PATCH", {"Host": "127.0.0.1:4290", "Origin": EVIL}, "127.0.0.1", "origin_not_allowed"),
    ("POST", {"Host": "127.0.0.1:4290", "Origin": "http://127.0.0.1:4290"}, "127.0.0.1", None),
    ("POST", {"Host": "localhost:4290", "Origin": "http://localhost:5173"}, "127.0.0.1", None),
    ("GET", {"Host": "127.0.0.1:4290", "Origin": EVIL}, "127.0.0.1", None),
    ("GET", {"Host": "127.0.0.1:4290", "Origin": EVIL, "Upgrade": "websocket"}, "127.0.0.1", "origin_not_allowed"),
])
def test_refusal(method: str, headers: dict[str, str], local: str, expected: str | None) -> None:
    decided = refusal(method, headers, "http", local, ACCESS, False, "")
    assert (decided.code if decided else None) == expected


def test_refusal_of_bodies() -> None:
    assert refusal("POST", {}, "http", None, ACCESS, True, "application/json") is None
    assert refusal("POST", {}, "http", None, ACCESS, True, "application/merge-patch+json") is None
    decided = refusal("POST", {}, "http", None, ACCESS, True, "text/plain")
    assert decided is not None and (decided.status, decided.code) == (415, "unsupported_media_type")
