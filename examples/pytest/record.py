"""Record this example's cassettes and its recording again, against fake_upstream.py (a real server would
do the same): `python record.py`. The tests themselves never need it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from aiohttp import web
from websockets.sync.client import connect

import mockd
from fake_upstream import app

HERE = Path(__file__).parent


def serve_upstream() -> str:
    """fake_upstream on a free port, on a thread of its own; returns its URL."""
    ready: list[str] = []
    started = threading.Event()

    async def run() -> None:
        runner = web.AppRunner(app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        started.set()
        await asyncio.Event().wait()

    threading.Thread(target=asyncio.run, args=(run(),), daemon=True).start()
    started.wait(10)
    return ready[0]


def record_chat(upstream: str) -> None:
    with mockd.Server(upstream=upstream) as server:
        session = server.client.start_recording("websocket", "/ws/chat", name="example chat")
        with connect(server.ws_url("/ws/chat")) as ws:
            ws.send(json.dumps({"type": "join", "room": "general"}))
            for _ in range(5):
                ws.recv()
        server.client.stop_recording(session.recording_id)
        (HERE / "recordings").mkdir(exist_ok=True)
        (HERE / "recordings" / "chat.json").write_bytes(server.client.export(session.recording_id))


if __name__ == "__main__":
    url = serve_upstream()
    subprocess.run([sys.executable, "-m", "pytest", str(HERE), "--mockd-record-mode=all", "-k", "not triggered"],
                   env={**os.environ, "EXAMPLE_UPSTREAM": url}, check=True)
    record_chat(url)
