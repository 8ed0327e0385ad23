"""The README's tour against the bundled example config: what a newcomer sees first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from upstreams import exchange, recv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def server(mockd_module):
    return mockd_module.start((EXAMPLES / "mocks.json").read_text(), "--config", str(EXAMPLES / "ticker.yaml"))


async def test_chat_welcome_join_ping_and_echo(server) -> None:
    async with connect(server.ws_url("/ws/chat"), subprotocols=["chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v1"
        assert json.loads(await recv(ws)) == {"type": "welcome", "room": "general"}
        assert json.loads(await exchange(ws, json.dumps({"type": "join", "room": "general"})))["type"] == "joined"
        pong = json.loads(await exchange(ws, json.dumps({"type": "ping"})))
        assert pong["type"] == "pong" and pong["at"].endswith("Z")
        assert json.loads(await exchange(ws, json.dumps({"type": "message", "text": "hi"}))) == {
            "type": "message", "from": "bot", "text": "You said: hi"}
        assert json.loads(await exchange(ws, "anything")) == {"type": "echo", "message": "anything"}


def curl(*args: str, timeout: float = 10) -> str:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run(["curl", "-sN", "--max-time", str(timeout), *args], capture_output=True, text=True,
                          timeout=timeout + 5).stdout


def test_ticker_streams_with_curl(server) -> None:
    body = curl("--max-time", "2.5", f"{server.mock_url}/events", timeout=4)
    blocks = [block for block in body.split("\n\n") if block.strip()]
    assert blocks[0] == 'event: price\nid: 1\ndata: {"symbol":"ACME","price":101.25}'
    assert 2 <= len(blocks) <= 4  # one event a second, the first at once


def test_ticker_resumes_after_last_event_id(server) -> None:
    body = curl("--max-time", "1.6", "-H", "Last-Event-ID: 3", f"{server.mock_url}/events", timeout=3)
    assert body.startswith("event: news\nid: 4\ndata: ACME announces\ndata: a new product\n\n")


def test_openai_style_stream_over_post(server) -> None:
    body = curl("-X", "POST", "-H", "Content-Type: application/json", "-d", '{"stream": true}',
                f"{server.mock_url}/v1/chat/completions")
    data = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    text = "".join(json.loads(chunk)["choices"][0]["delta"].get("content", "") for chunk in data[:-1])
    assert text == "Hello from mockd!"


def test_yaml_countdown_ends_with_final_event(server) -> None:
    body = curl(f"{server.mock_url}/countdown")
    assert body.endswith("event: done\ndata: liftoff\n\n")
    assert body.count("event: tick") == 3


def test_hello_and_admin_mocks(server) -> None:
    assert json.loads(curl(f"{server.mock_url}/api/hello")) == {"message": "hello from mockd"}
    listed = json.loads(curl(f"{server.admin_url}/mocks"))["mocks"]
    assert [mock["id"] for mock in listed] == ["chat", "ticker", "openai-chat", "hello", "countdown"]


def test_the_pytest_example_passes_offline_from_its_committed_cassettes(tmp_path: Path) -> None:
    """examples/pytest, copied as a user would copy it, passes with no upstream running."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "pytest", project, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
                            capture_output=True, text=True, timeout=120, cwd=project,
                            env={**os.environ, "EXAMPLE_UPSTREAM": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
