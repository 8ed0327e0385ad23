"""``mockd.cli.backend`` against something that answers (or does not) over a real socket: the API backend turns
the admin API's error answers into the one-line :class:`CliError`, and with no server answering the data
directory is used.

In process: a stdlib HTTP server answering with the admin API's error bodies stands for a server (the
end-to-end behaviour is in test_cli_recordings.py; the store backend and the error mapping without sockets
are in tests/unit/test_cli_backend.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from upstreams import unreachable_url

from mockd.cli.backend import ApiBackend, CommandTarget, StoreBackend
from mockd.cli.output import CliError

CANDIDATES = ["01HXYZ1234560000000000000A", "01HXYZ1234569999999999999B"]


class ErrorAnswers(BaseHTTPRequestHandler):
    """Every request: a 400 with an ambiguous-prefix error body, as the admin API writes one."""

    def do_GET(self) -> None:
        body = json.dumps({"error": "ambiguous_id", "message": "'01HXYZ' matches 2 recordings; give more characters",
                           "candidates": CANDIDATES}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def erring_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ErrorAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_api_error_answer_is_the_cli_error(erring_server: str) -> None:
    with pytest.raises(CliError) as raised:
        ApiBackend(erring_server, None).head("01HXYZ")
    assert raised.value.message == "'01HXYZ' matches 2 recordings; give more characters: 01HXYZ123456, 01HXYZ123456"


def test_an_api_error_during_a_download_is_the_cli_error(erring_server: str, tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as sink, pytest.raises(CliError, match="matches 2 recordings"):
        ApiBackend(erring_server, None).write_recording("01HXYZ", sink, None)


def test_the_data_directory_when_nothing_answers(tmp_path: Path) -> None:
    with unreachable_url() as url:
        backend = CommandTarget(admin_url=url, token=None, data_dir=str(tmp_path)).backend()
    assert isinstance(backend, StoreBackend)
    assert backend.offline_because == f"no server answers at {url}"
