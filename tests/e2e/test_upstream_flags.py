"""``--upstream`` as users type it: http, https, ws and wss URLs, several upstreams by path prefix (longest
wins), errors that say what is wrong — and ``mockd start`` taking every ``serve`` flag."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from polling import poll_until
from processes import MockdFactory, run_mockd
from configs import http_mock, mocks_config, write_config
from upstreams import http_upstream, ws_upstream

from mockd.support.runtime import process_running


def fetch(url: str) -> tuple[int, str]:
    result = subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", url], capture_output=True,
                            text=True, timeout=30)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


async def afetch(url: str) -> tuple[int, str]:
    return await asyncio.to_thread(fetch, url)


async def test_several_upstreams_by_prefix_longest_first_and_ws_urls_serve_plain_http(mockd: MockdFactory) -> None:
    async with http_upstream() as api, http_upstream() as www, ws_upstream() as chat:
        ws_url = chat.url.replace("http://", "ws://")
        server = mockd.start(mocks_config(http_mock("local", "/api/local", "from a mock")),
                             "--upstream", www.url, "--upstream", f"/api={api.url}",
                             "--upstream", f"/api/v2={www.url}/v2", "--upstream", f"/ws={ws_url}")
        assert await afetch(f"{server.mock_url}/api/users?x=1") == (200, "upstream saw GET /api/users?x=1")
        assert api.requests[-1].target == "/api/users?x=1"
        assert await afetch(f"{server.mock_url}/api/v2/users") == (200, "upstream saw GET /v2/api/v2/users")
        assert await afetch(f"{server.mock_url}/apix") == (200, "upstream saw GET /apix")
        assert [request.target for request in www.requests] == ["/v2/api/v2/users", "/apix"]
        assert await afetch(f"{server.mock_url}/api/local") == (200, "from a mock")  # mocks come first

        async with connect(server.ws_url("/ws/chat"), open_timeout=10) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 10) == "hello"
        upgraded = await chat.next_connection()
        assert upgraded.request is not None and upgraded.request.path == "/ws/chat"

        _status, listed = await afetch(f"{server.admin_url}/mocks")
        ids = [mock["id"] for mock in json.loads(listed)["mocks"]]
        assert ids == ["local", "upstream:/api/v2", "upstream:/api", "upstream:/ws", "upstream:/"]


async def test_a_ws_upstream_also_proxies_plain_http(mockd: MockdFactory) -> None:
    async with http_upstream() as upstream:
        server = mockd.start(None, "--upstream", upstream.url.replace("http://", "ws://"))
        assert await afetch(f"{server.mock_url}/status") == (200, "upstream saw GET /status")


@pytest.mark.parametrize(("flags", "message"), [
    (["--upstream", "http://"], "--upstream: 'http://' has no host"),
    (["--upstream", "https://:8443/x"], "--upstream: 'https://:8443/x' has no host"),
    (["--upstream", "ftp://files.example"], "--upstream: 'ftp://files.example': unknown scheme 'ftp' (use http, "
                                            "https, ws or wss)"),
    (["--upstream", "http://api.example:99999"], "--upstream: 'http://api.example:99999': bad port '99999' "
                                                 "(expected a number from 1 to 65535)"),
    (["--upstream", "api.example:8080"], "--upstream: 'api.example:8080' is not a URL: expected http://, "
                                         "https://, ws:// or wss:// and a host"),
    (["--upstream", "http://a.example", "--upstream", "http://b.example"],
     "--upstream: 'http://a.example' and 'http://b.example' both claim the path prefix '/'; give each its own, "
     "as in --upstream /api=http://b.example"),
    (["--upstream", "/api"], "--upstream /api: expected /prefix=URL, as in --upstream /api=https://api.example"),
])
def test_upstream_flags_that_cannot_work_say_why(tmp_path: Path, flags: list[str], message: str) -> None:
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path), *flags)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"mockd: error: {message}"]


def test_a_config_proxy_target_names_its_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, mocks_config({"id": "real", "type": "proxy", "proxy": {"target": "wss://"}}))
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path), "--config",
                       str(config))
    assert result.returncode == 1
    line, = result.stderr.strip().splitlines()
    assert "'real'" in line and "target: 'wss://' has no host" in line


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[Path]:
    """A data directory for ``mockd start``; whatever still runs from it is stopped afterwards."""
    data_dir = tmp_path / "detached"
    yield data_dir
    try:
        pid = int((data_dir / "mockd.pid").read_text())
    except (OSError, ValueError):
        return
    if process_running(pid):
        os.kill(pid, signal.SIGKILL)


async def test_start_takes_every_serve_flag_and_prints_its_stop_command(tmp_path: Path, detached: Path) -> None:
    config = write_config(tmp_path, mocks_config(http_mock("hello", "/hello", "hi")))
    async with http_upstream() as api:
        started = await asyncio.to_thread(
            run_mockd, "start", "--config", config.name, "--port", "0", "--admin-port", "0",
            "--data-dir", str(detached), "--tls-self-signed", "--access-log", "--log-format", "json",
            "--upstream", f"/api={api.url}", "--upstream", f"/other={api.url}",
            cwd=tmp_path)  # a relative --config: resolved before detaching
        assert started.returncode == 0, started.stderr
        ready = json.loads((detached / "mockd.ready").read_text())
        assert ready["mockUrl"].startswith("https://")
        lines = started.stdout.splitlines()
        assert f"  mock server  {ready['mockUrl']}" in lines and f"  TLS CA       {ready['caFile']}" in lines
        stop_line = next(line for line in lines if "stop with" in line)
        stop_command = shlex.split(stop_line.split("stop with", 1)[1])
        assert stop_command == ["mockd", "stop", "--data-dir", str(detached)]

        trusting = ["--cacert", ready["caFile"]]
        hello = await asyncio.to_thread(subprocess.run, ["curl", "-sS", *trusting, f"{ready['mockUrl']}/hello"],
                                        capture_output=True, text=True, timeout=30)
        assert hello.stdout == "hi"
        proxied = await asyncio.to_thread(subprocess.run, ["curl", "-sS", *trusting, f"{ready['mockUrl']}/other/x"],
                                          capture_output=True, text=True, timeout=30)
        assert proxied.stdout == "upstream saw GET /other/x"

        def requests_logged() -> list[str]:
            log = (detached / "mockd.log").read_text()
            access = [json.loads(line) for line in log.splitlines() if '"mockd.access"' in line]
            return [entry["path"] for entry in access if entry["kind"] == "request"]

        # a request's line is written once its handler is done, which may be just after curl has the body
        assert await poll_until(lambda: len(requests_logged()) >= 2), requests_logged()
        assert requests_logged() == ["/hello", "/other/x"]

        stopped = await asyncio.to_thread(run_mockd, *stop_command[1:])
        assert stopped.returncode == 0, stopped.stderr
        assert not (detached / "mockd.ready").exists()
        with pytest.raises(OSError):  # it is gone
            await asyncio.to_thread(fetch_strict, f"{ready['mockUrl']}/hello", ready["caFile"])


def fetch_strict(url: str, ca_file: str) -> None:
    import urllib.request

    urllib.request.urlopen(url, timeout=5, context=ssl.create_default_context(cafile=ca_file))
