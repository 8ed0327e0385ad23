"""The ``mockd serve`` process and its detached twin ``mockd start`` / ``mockd stop``, black-box.

Covers docs/cli.md (``mockd serve``, ``mockd start`` / ``mockd stop``, the exit statuses), the config file
of docs/config.md, and the start-up rule of docs/security.md (no admin API off loopback without a token):
banner, ready file, ports, start-up errors (one stderr line, no traceback, non-zero exit), JSON/YAML
chosen by content, the settings file, signals, start/stop, version and help.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mockd.support.runtime import process_running
from websockets.asyncio.client import connect

from processes import MockdFactory, RunningMockd, launch_serve, run_mockd
from configs import http_mock, mocks_config, write_config, ws_mock
from httpclient import call
from polling import poll_until_sync, poll_value_sync
from upstreams import exchange, open_request, server_close, unreachable_url

DEADLINE = 20.0

HELLO = http_mock("hello", "/api/hello", {"msg": "hi"})
ECHO = ws_mock("echo", "/ws/echo")
TICKER: dict[str, Any] = {"id": "ticker", "type": "http", "http": {
    "matcher": {"method": "GET", "path": "/events"},
    "sse": {"events": [{"type": "tick", "data": {"n": 1}}], "loop": True, "timing": {"fixedDelay": 100}}}}

YAML_CONFIG = """\
version: "1.0"
mocks:
  - id: yaml-hello
    type: http
    http:
      matcher:
        method: GET
        path: /api/yaml
      response:
        statusCode: 200
        body:
          from: yaml
  - id: yaml-echo
    type: websocket
    websocket:
      path: /ws/yaml
"""

# A `recording:` block with redaction and storage settings, as docs/config.md shows ("Settings file").
SEED_SETTINGS = """\
recording:
  filterHeaders:
    - Authorization
    - X-Custom-Secret
  filterBodyKeys:
    - password
    - secret
    - $.user.ssn
  redactValue: "[REDACTED]"
  dataDir: {data_dir}
  maxBytes: 524288000  # 500MB
  warnPercent: 80      # Warn at 80% capacity
"""


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token, data dir or user settings leak in from the environment running the tests."""
    for name in ("MOCKD_ADMIN_TOKEN", "MOCKD_DATA_DIR", "MOCKD_ADMIN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@dataclass
class Exited:
    returncode: int
    stdout: str
    stderr: str


def serve_expecting_failure(work: Path, *args: str, env: dict[str, str] | None = None) -> Exited:
    """Run ``mockd serve ARGS`` that should refuse to start; fail fast if it becomes ready instead."""
    ready = work / "should-not-exist.json"
    process, out_path, err_path = launch_serve(work, ready, *args, env=env)
    try:
        ended = poll_until_sync(lambda: process.poll() is not None or ready.exists(), DEADLINE, interval=0.01)
        assert not ready.exists(), f"mockd serve started although it should have refused: {args}"
        assert ended, f"mockd serve neither exited nor became ready within {DEADLINE}s: {args}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return Exited(process.returncode, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


def assert_one_error_line(result: Exited | subprocess.CompletedProcess[str], *fragments: str,
                          status: int | None = None) -> str:
    """Non-zero exit (or exactly ``status``), exactly one non-blank stderr line holding every fragment."""
    if status is None:
        assert result.returncode != 0, f"expected a failure, got exit 0; stderr: {result.stderr!r}"
    else:
        assert result.returncode == status, f"exit {result.returncode}, expected {status}; stderr: {result.stderr!r}"
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}: {result.stderr!r}"
    line = lines[0]
    for fragment in fragments:
        assert fragment.lower() in line.lower(), f"{fragment!r} not in the error line {line!r}"
    return line


def wait_for_text(read: Any, needle: str, timeout: float = 10) -> str:
    """Poll ``read()`` until it contains ``needle`` (output may still be in flight after the ready file);
    returns the last text read."""
    text: str = poll_value_sync(read, lambda text: needle in text, timeout, interval=0.01)
    return text


def without_urls(line: str) -> str:
    return re.sub(r"https?://\S+", " ", line)


def banner_mentions_count(stdout: str, count: int) -> bool:
    """Some banner line names ``count`` beside the word mock(s), port numbers in URLs not counting."""
    for line in stdout.splitlines():
        plain = without_urls(line)
        if re.search(r"\bmocks?\b", plain, re.I) and re.search(rf"(?<![\d.]){count}(?![\d.])", plain):
            return True
    return False


# --- banner, ready file, ports ---------------------------------------------------------------------


def test_banner_names_mock_url_admin_url_mock_count_and_data_dir(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(HELLO, ECHO, TICKER))
    stdout = wait_for_text(lambda: server.stdout, str(server.data_dir))
    assert server.mock_url in stdout
    assert server.admin_url in stdout
    assert str(server.data_dir) in stdout
    assert banner_mentions_count(stdout, 3), f"the banner does not say 3 mocks were loaded: {stdout!r}"
    assert "Traceback" not in server.stderr


def test_banner_counts_zero_mocks_without_config(mockd: MockdFactory) -> None:
    server = mockd.start(None)
    stdout = wait_for_text(lambda: server.stdout, str(server.data_dir))
    assert banner_mentions_count(stdout, 0), stdout
    reply = call("GET", f"{server.mock_url}/anything")
    assert reply.status == 404


def test_ready_file_describes_both_listeners_and_the_pid(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(HELLO))
    ready = server.ready
    assert set(ready) >= {"mockPort", "adminPort", "mockUrl", "adminUrl", "pid"}
    assert isinstance(ready["mockPort"], int) and isinstance(ready["adminPort"], int)
    assert 0 < ready["mockPort"] < 65536 and 0 < ready["adminPort"] < 65536
    assert ready["mockPort"] != ready["adminPort"]
    assert ready["mockUrl"] == f"http://127.0.0.1:{ready['mockPort']}"
    assert ready["adminUrl"] == f"http://127.0.0.1:{ready['adminPort']}"
    assert ready["pid"] == server.process.pid
    # both listeners accept as soon as the file exists
    assert call("GET", f"{ready['mockUrl']}/api/hello").json() == {"msg": "hi"}
    assert call("GET", f"{ready['adminUrl']}/health").status == 200


def test_serve_creates_the_data_dir_private(mockd: MockdFactory, tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "recordings"
    server = mockd.start(mocks_config(HELLO), data_dir=data_dir)
    assert data_dir.is_dir()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert str(data_dir) in wait_for_text(lambda: server.stdout, str(data_dir))


def test_port_zero_picks_distinct_free_ports_for_each_server(mockd: MockdFactory) -> None:
    first = mockd.start(mocks_config(HELLO))
    second = mockd.start(mocks_config(HELLO))
    ports = {first.mock_port, first.admin_port, second.mock_port, second.admin_port}
    assert len(ports) == 4
    for server in (first, second):
        assert call("GET", f"{server.mock_url}/api/hello").status == 200


def test_unmatched_request_gets_404_json_naming_method_and_path(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(HELLO))
    reply = call("DELETE", f"{server.mock_url}/no/such/thing")
    assert reply.status == 404
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    text = json.dumps(reply.json())
    assert "DELETE" in text and "/no/such/thing" in text


def test_serve_becomes_ready_well_within_five_seconds(mockd: MockdFactory) -> None:
    """A generous sanity bound only; the real P7 figure (≤ 1 s) belongs to the benchmark suite."""
    started = time.monotonic()
    server = mockd.start(mocks_config(HELLO, ECHO, TICKER))
    assert call("GET", f"{server.mock_url}/api/hello").status == 200
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("listener", ["mock", "admin"])
def test_port_in_use_is_one_line_naming_the_address(tmp_path: Path, listener: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = ["--port", str(port), "--admin-port", "0"] if listener == "mock" else \
            ["--port", "0", "--admin-port", str(port)]
        result = serve_expecting_failure(tmp_path / "work", *ports, "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, f"127.0.0.1:{port}", "in use")


# --- config files ----------------------------------------------------------------------------------


def mock_with(**overrides: Any) -> dict[str, Any]:
    return {**HELLO, **overrides}


BAD_CONFIGS: list[Any] = [
    pytest.param("mocks.json", '{"version": "1.0", "mocks": [', ["json"], id="malformed-json"),
    pytest.param("mocks.yaml", 'version: "1.0"\nmocks: [\n  {id: a, type: http\n', ["yaml"], id="malformed-yaml"),
    pytest.param("mocks.json", mocks_config({"id": "greeting", "type": "http", "http": {
        "matcher": {"method": "GET", "path": "/g"}, "response": {"statusCode": "abc"}}}),
        ["greeting", "statusCode"], id="wrong-type-statusCode"),
    pytest.param("mocks.json", mocks_config({"id": "bird", "type": "carrier-pigeon",
                                             "carrier-pigeon": {"path": "/coo"}}),
        ["bird", "carrier-pigeon"], id="unknown-mock-type"),
    pytest.param("mocks.json", mocks_config(HELLO, {**ECHO, "id": "twin"}, {**HELLO, "id": "twin"}),
        ["twin", "duplicate"], id="duplicate-id"),
    pytest.param("mocks.json", mocks_config({"id": "slow", "type": "websocket", "websocket": {
        "path": "/ws/slow", "idleTimeout": "5 parsecs"}}),
        ["slow", "idleTimeout"], id="bad-duration"),
    pytest.param("mocks.json", mocks_config({"id": "rx", "type": "http", "http": {
        "matcher": {"method": "GET", "pathPattern": "("}, "response": {"statusCode": 200}}}),
        ["rx", "pathPattern"], id="invalid-regex"),
    pytest.param("mocks.json", {"version": "2.0", "mocks": [HELLO]}, ["version"], id="wrong-version"),
    pytest.param("mocks.json", {"mocks": [HELLO]}, ["version"], id="missing-version"),
    pytest.param("mocks.json", mocks_config(mock_with(id="extra", colour="blue")),
        ["extra", "colour"], id="unknown-mock-field"),
    pytest.param("mocks.json", mocks_config({"id": "nested", "type": "http", "http": {
        "matcher": {"method": "GET", "path": "/n"}, "response": {"statusCode": 200, "bodyy": "x"}}}),
        ["nested", "bodyy"], id="unknown-nested-field"),
    pytest.param("mocks.json", {**mocks_config(HELLO), "mocksy": []}, ["mocksy"], id="unknown-top-level-field"),
]


@pytest.mark.parametrize(("name", "content", "fragments"), BAD_CONFIGS)
def test_bad_config_is_one_line_naming_file_mock_and_field(tmp_path: Path, name: str,
                                                           content: dict[str, Any] | str,
                                                           fragments: list[str]) -> None:
    path = write_config(tmp_path, content, name)
    result = serve_expecting_failure(tmp_path / "work", "--config", str(path), "--port", "0",
                                     "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, path.name, *fragments, status=1)


def test_missing_config_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "absent-mocks.json"
    result = serve_expecting_failure(tmp_path / "work", "--config", str(missing), "--port", "0",
                                     "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, "absent-mocks.json")


def test_duplicate_id_across_two_config_files_names_the_second_file(tmp_path: Path) -> None:
    first = write_config(tmp_path, mocks_config({**HELLO, "id": "shared"}), "first-file.json")
    second = write_config(tmp_path, mocks_config({**ECHO, "id": "shared"}), "second-file.json")
    result = serve_expecting_failure(tmp_path / "work", "--config", str(first), "--config", str(second),
                                     "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, "second-file.json", "shared", status=1)


def test_mocks_from_several_config_files_match_in_file_order(mockd: MockdFactory, tmp_path: Path) -> None:
    first = write_config(tmp_path, mocks_config(http_mock("a", "/x", "first")), "a.json")
    second = write_config(tmp_path, mocks_config(http_mock("b", "/x", "second"), http_mock("c", "/y", "why")), "b.json")
    server = mockd.start(None, "--config", str(first), "--config", str(second))
    assert call("GET", f"{server.mock_url}/x").body == b"first"
    assert call("GET", f"{server.mock_url}/y").body == b"why"
    assert banner_mentions_count(wait_for_text(lambda: server.stdout, str(server.data_dir)), 3)


def test_yaml_config_with_the_same_shape_is_accepted(mockd: MockdFactory, tmp_path: Path) -> None:
    path = write_config(tmp_path, YAML_CONFIG, "mocks.yaml")
    server = mockd.start(None, "--config", str(path))
    assert call("GET", f"{server.mock_url}/api/yaml").json() == {"from": "yaml"}
    assert banner_mentions_count(wait_for_text(lambda: server.stdout, str(server.data_dir)), 2)


def test_json_content_in_a_yaml_named_file_is_read_as_json(mockd: MockdFactory, tmp_path: Path) -> None:
    path = write_config(tmp_path, json.dumps(mocks_config(HELLO), indent=2), "looks-like.yaml")
    server = mockd.start(None, "--config", str(path))
    assert call("GET", f"{server.mock_url}/api/hello").json() == {"msg": "hi"}


def test_yaml_content_in_a_json_named_file_is_read_as_yaml(mockd: MockdFactory) -> None:
    server = mockd.start(YAML_CONFIG)  # the fixture writes it as mocks.json
    assert call("GET", f"{server.mock_url}/api/yaml").json() == {"from": "yaml"}


def test_every_documented_mock_type_loads(mockd: MockdFactory) -> None:
    """docs/config.md: `type` is `http`, `websocket` or `proxy`; a config with all three starts."""
    proxy = {"id": "upstream", "type": "proxy", "proxy": {"pathPrefix": "/proxied", "target": "http://127.0.0.1:9"}}
    server = mockd.start(mocks_config(HELLO, ECHO, proxy))
    assert call("GET", f"{server.mock_url}/api/hello").status == 200
    assert banner_mentions_count(wait_for_text(lambda: server.stdout, str(server.data_dir)), 3)


def admin_mocks(server: RunningMockd) -> list[dict[str, Any]]:
    reply = call("GET", f"{server.admin_url}/mocks")
    assert reply.status == 200
    mocks: list[dict[str, Any]] = reply.json()["mocks"]
    return mocks


@pytest.fixture
def dead_upstream() -> Iterator[str]:
    """An http:// URL on a port that is bound but not listening: connections are refused."""
    with unreachable_url() as url:
        yield url


def test_upstream_flag_appends_a_catch_all_proxy_after_every_mock(mockd: MockdFactory, dead_upstream: str) -> None:
    server = mockd.start(mocks_config(HELLO, ECHO), "--upstream", dead_upstream)
    mocks = admin_mocks(server)
    assert [mock.get("id") for mock in mocks[:2]] == ["hello", "echo"]
    assert len(mocks) == 3
    assert mocks[-1]["type"] == "proxy"
    assert mocks[-1]["proxy"]["target"].rstrip("/") == dead_upstream
    assert mocks[-1]["proxy"].get("pathPrefix", "/") == "/"
    assert call("GET", f"{server.mock_url}/api/hello").json() == {"msg": "hi"}
    unmatched = call("GET", f"{server.mock_url}/not/mocked")
    assert unmatched.status == 502
    assert dead_upstream.removeprefix("http://") in json.dumps(unmatched.json())


def test_upstream_flag_does_not_displace_a_config_mock_named_upstream(mockd: MockdFactory,
                                                                      dead_upstream: str) -> None:
    """The catch-all goes after all config mocks, whatever ids they use."""
    first = {**HELLO, "id": "upstream"}
    later = http_mock("later", "/later", "later")
    server = mockd.start(mocks_config(first, later), "--upstream", dead_upstream)
    assert call("GET", f"{server.mock_url}/api/hello").json() == {"msg": "hi"}
    assert call("GET", f"{server.mock_url}/later").body == b"later"
    mocks = admin_mocks(server)
    assert len(mocks) == 3 and mocks[-1]["type"] == "proxy", mocks


def test_bad_upstream_url_is_one_line(tmp_path: Path) -> None:
    result = serve_expecting_failure(tmp_path / "work", "--upstream", "ftp://example.invalid", "--port", "0",
                                     "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, "upstream", "ftp://example.invalid", status=1)


# --- settings file ---------------------------------------------------------------------------------


def test_settings_file_with_the_seeds_recording_block_is_accepted(mockd: MockdFactory, tmp_path: Path) -> None:
    settings = write_config(tmp_path, SEED_SETTINGS.format(data_dir=tmp_path / "settings-data"), "mockd.yaml")
    server = mockd.start(mocks_config(HELLO), "--settings", str(settings))
    assert call("GET", f"{server.mock_url}/api/hello").status == 200
    assert "Traceback" not in server.stderr


def test_settings_data_dir_is_used_without_the_flag(mockd: MockdFactory, tmp_path: Path) -> None:
    data_dir = tmp_path / "settings-data"
    settings = write_config(tmp_path, SEED_SETTINGS.format(data_dir=data_dir), "mockd.yaml")
    server = mockd.start_bare("--settings", str(settings), "--port", "0", "--admin-port", "0")
    assert str(data_dir) in wait_for_text(lambda: server.stdout, str(data_dir))
    assert data_dir.is_dir()


BAD_SETTINGS: list[Any] = [
    pytest.param("recordings:\n  maxBytes: 1000\n", ["recordings"], id="unknown-top-level-key"),
    pytest.param("recording:\n  filterHeader:\n    - Authorization\n", ["filterHeader"], id="unknown-recording-key"),
    pytest.param("recording:\n  maxBytes: lots\n", ["maxBytes"], id="wrong-type"),
    pytest.param("recording: [\n  filterHeaders\n", ["yaml"], id="malformed-yaml"),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_SETTINGS)
def test_bad_settings_file_is_one_line_naming_file_and_key(tmp_path: Path, text: str, fragments: list[str]) -> None:
    settings = write_config(tmp_path, text, "my-settings.yaml")
    result = serve_expecting_failure(tmp_path / "work", "--settings", str(settings), "--port", "0",
                                     "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, "my-settings.yaml", *fragments, status=1)


def test_mockd_yaml_in_the_working_directory_is_read_by_default(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "mockd.yaml").write_text("recording:\n  notASetting: true\n")
    result = serve_expecting_failure(work, "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, "mockd.yaml", "notASetting", status=1)


# --- admin API exposure ----------------------------------------------------------------------------


def test_admin_api_on_all_interfaces_without_a_token_is_refused(tmp_path: Path) -> None:
    result = serve_expecting_failure(tmp_path / "work", "--admin-host", "0.0.0.0", "--port", "0",
                                     "--admin-port", "0", "--data-dir", str(tmp_path / "data"))
    assert_one_error_line(result, "0.0.0.0", "token")


def test_admin_api_on_all_interfaces_with_a_token_starts_and_demands_it(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(HELLO), "--admin-host", "0.0.0.0", "--admin-token", "s3cret")
    admin = f"http://127.0.0.1:{server.admin_port}"
    assert call("GET", f"{admin}/health").status == 200
    assert call("GET", f"{admin}/mocks").status == 401
    assert call("GET", f"{admin}/mocks", headers={"Authorization": "Bearer s3cret"}).status == 200


def test_admin_api_on_all_interfaces_with_a_token_from_the_environment_starts(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(HELLO), "--admin-host", "0.0.0.0", env={"MOCKD_ADMIN_TOKEN": "from-env"})
    admin = f"http://127.0.0.1:{server.admin_port}"
    assert call("GET", f"{admin}/mocks").status == 401
    assert call("GET", f"{admin}/mocks", headers={"X-API-Key": "from-env"}).status == 200


# --- signals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_closes_websockets_with_1001_and_exits_zero(mockd: MockdFactory, signum: int) -> None:
    server = mockd.start(mocks_config(ECHO, HELLO))
    async with connect(server.ws_url("/ws/echo"), open_timeout=10) as ws:
        assert await exchange(ws, "still there?", 10) == "still there?"
        server.process.send_signal(signum)
        messages, close = await server_close(ws, 10)
    assert messages == []
    assert close.code == 1001
    status = await asyncio.to_thread(server.process.wait, 15)
    assert status == 0
    assert "Traceback" not in server.stderr


async def test_sigterm_ends_open_sse_streams_and_exits_zero(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(TICKER))
    response = await open_request(server.mock_port, "GET", "/events", timeout=10)
    try:
        await response.read_until(b"data:", 10)  # the first event
        server.process.send_signal(signal.SIGTERM)
        await response.read_body(10)
    finally:
        await response.close()
    assert await asyncio.to_thread(server.process.wait, 15) == 0
    assert "Traceback" not in server.stderr


# --- mockd start / mockd stop ----------------------------------------------------------------------


def pid_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("*.pid"))


def alive(pid: int) -> bool:
    """Running, not a zombie: an orphan that exited may stay unreaped where PID 1 does not reap."""
    return process_running(pid)


@pytest.fixture
def detached_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir for ``mockd start``; whatever is still running from it is stopped afterwards."""
    data_dir = tmp_path / "detached-data"
    yield data_dir
    for pid_file in pid_files(data_dir):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if alive(pid):
            run_mockd("stop", "--data-dir", str(data_dir))
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def start_args(data_dir: Path, config: Path) -> list[str]:
    return ["start", "--config", str(config), "--port", "0", "--admin-port", "0", "--data-dir", str(data_dir)]


def printed_urls(stdout: str) -> tuple[str, str]:
    """The mock and admin URLs from ``mockd start``'s output."""
    mock_url = admin_url = None
    for line in stdout.splitlines():
        match = re.search(r"https?://[^\s)]+", line)
        if not match:
            continue
        label = without_urls(line).lower()
        if "admin" in label:
            admin_url = match.group(0)
        elif "mock" in label:
            mock_url = match.group(0)
    assert mock_url and admin_url, f"mockd start did not print both URLs: {stdout!r}"
    return mock_url.rstrip("/"), admin_url.rstrip("/")


def test_start_returns_once_both_listeners_accept_then_stop_ends_it(tmp_path: Path, detached_data_dir: Path) -> None:
    config = write_config(tmp_path, mocks_config(HELLO))
    started = run_mockd(*start_args(detached_data_dir, config))
    assert started.returncode == 0, started.stderr
    mock_url, admin_url = printed_urls(started.stdout)
    # no waiting: start has only returned because both listeners accept
    assert call("GET", f"{mock_url}/api/hello").json() == {"msg": "hi"}
    assert call("GET", f"{admin_url}/health").status == 200

    files = pid_files(detached_data_dir)
    assert len(files) == 1, f"expected one pid file in {detached_data_dir}: {list(detached_data_dir.iterdir())}"
    pid = int(files[0].read_text().strip())
    assert alive(pid)
    assert list(detached_data_dir.glob("*.log")), f"no log file in {list(detached_data_dir.iterdir())}"

    stopped = run_mockd("stop", "--data-dir", str(detached_data_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not alive(pid)
    assert pid_files(detached_data_dir) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{mock_url}/api/hello", timeout=5)


def test_start_keeps_its_files_private(tmp_path: Path, detached_data_dir: Path) -> None:
    """docs/security.md: data directory 0700, files 0600 — the pid and log files live there too."""
    config = write_config(tmp_path, mocks_config(HELLO))
    started = run_mockd(*start_args(detached_data_dir, config))
    assert started.returncode == 0, started.stderr
    assert stat.S_IMODE(detached_data_dir.stat().st_mode) == 0o700
    for path in [*pid_files(detached_data_dir), *detached_data_dir.glob("*.log")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is {oct(path.stat().st_mode)}"


def test_second_start_while_running_fails_clearly(tmp_path: Path, detached_data_dir: Path) -> None:
    config = write_config(tmp_path, mocks_config(HELLO))
    first = run_mockd(*start_args(detached_data_dir, config))
    assert first.returncode == 0, first.stderr
    mock_url, _ = printed_urls(first.stdout)
    second = run_mockd(*start_args(detached_data_dir, config))
    assert_one_error_line(second, "running", status=1)
    assert call("GET", f"{mock_url}/api/hello").status == 200  # the first one is untouched
    assert len(pid_files(detached_data_dir)) == 1


def test_stop_when_not_running_fails_with_one_line(tmp_path: Path) -> None:
    result = run_mockd("stop", "--data-dir", str(tmp_path / "never-started"))
    assert_one_error_line(result, "not running", status=1)


def test_start_with_a_bad_config_reports_the_config_error(tmp_path: Path, detached_data_dir: Path) -> None:
    config = write_config(tmp_path, mocks_config({"id": "greeting", "type": "http", "http": {
        "matcher": {"method": "GET", "path": "/g"}, "response": {"statusCode": "abc"}}}), "broken-config.json")
    result = run_mockd(*start_args(detached_data_dir, config))
    assert_one_error_line(result, "broken-config.json", "greeting", "statusCode", status=1)
    assert pid_files(detached_data_dir) == []


# --- version and help ------------------------------------------------------------------------------


def test_version_command_prints_the_package_version() -> None:
    result = run_mockd("version")
    assert result.returncode == 0, result.stderr
    assert importlib.metadata.version("mockd") in result.stdout


def test_top_level_help_lists_the_commands() -> None:
    result = run_mockd("--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "start", "stop", "version"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.M), f"{command} missing from --help: {result.stdout}"


@pytest.mark.parametrize("command", ["serve", "start", "stop", "version"])
def test_command_help_has_an_example(command: str) -> None:
    result = run_mockd(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "example" in result.stdout.lower(), result.stdout


@pytest.mark.parametrize("flag", ["--config", "--port", "--host", "--admin-port", "--admin-host", "--admin-token",
                                  "--data-dir", "--settings", "--upstream", "--log-level", "--log-format",
                                  "--ready-file"])
def test_serve_help_documents_every_flag(flag: str) -> None:
    result = run_mockd("serve", "--help")
    assert result.returncode == 0, result.stderr
    assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", result.stdout), f"{flag} missing: {result.stdout}"


@pytest.mark.parametrize("args", [["no-such-command"], ["serve", "--port", "not-a-number"]],
                         ids=["unknown-command", "bad-option-value"])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_mockd(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
