"""``mockd.cli.backend``: the two backends of ``mockd stream-recordings`` turn their domain errors — the
admin API's error answers and the store's :class:`StoreError` kinds — into the same one-line
:class:`CliError`, and the data directory says when a command needs a server.

In process: a stdlib HTTP server answering with the admin API's error bodies stands for a server, and
a store on a temporary data directory for the offline case (the end-to-end behaviour is in
test_cli_recordings.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from upstreams import unreachable_url

from mockd.cli.backend import ApiBackend, Connection, StoreBackend, domain_error
from mockd.cli.output import CliError
from mockd.recording.store import AmbiguousId

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


@pytest.fixture
def no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings file on the search path: the defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


def test_domain_error_names_the_candidates_as_list_shows_ids() -> None:
    assert domain_error("'01HXYZ' matches 2", CANDIDATES).message == "'01HXYZ' matches 2: 01HXYZ123456, 01HXYZ123456"
    assert domain_error("No stream recording with id 'x'").message == "No stream recording with id 'x'"


def test_an_api_error_answer_is_the_cli_error(erring_server: str) -> None:
    with pytest.raises(CliError) as raised:
        ApiBackend(erring_server, None).head("01HXYZ")
    assert raised.value.message == "'01HXYZ' matches 2 recordings; give more characters: 01HXYZ123456, 01HXYZ123456"


def test_an_api_error_during_a_download_is_the_cli_error(erring_server: str, tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as sink, pytest.raises(CliError, match="matches 2 recordings"):
        ApiBackend(erring_server, None).write_recording("01HXYZ", sink, None)


def test_a_store_error_is_the_cli_error(no_settings: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = StoreBackend(str(tmp_path / "data"), "no server answers at http://x", "none answers at http://x")
    with pytest.raises(CliError) as raised:
        backend.head("01HXYZ")
    assert raised.value.message == "No stream recording with id '01HXYZ'"
    with pytest.raises(CliError, match="is not a recording id"):
        backend.head("not/an/id")
    notice = capsys.readouterr().err.splitlines()
    assert notice == [f"mockd: no server answers at http://x; using the data directory {tmp_path / 'data'}"]


def test_a_store_error_keeps_its_candidates(no_settings: None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    backend = StoreBackend(str(tmp_path / "data"), "offline", "none answers")
    backend.stats()  # opens the store

    def ambiguous(reference: str) -> str:
        raise AmbiguousId(f"{reference!r} matches 2 recordings; give more characters", candidates=CANDIDATES)

    assert backend._opened is not None
    monkeypatch.setattr(backend._opened, "resolve", ambiguous)
    with pytest.raises(CliError) as raised:
        backend.head("01HXYZ")
    assert raised.value.message == "'01HXYZ' matches 2 recordings; give more characters: 01HXYZ123456, 01HXYZ123456"


def test_offline_the_commands_that_need_a_server_say_so_without_opening_the_store(
        capsys: pytest.CaptureFixture[str]) -> None:
    backend = StoreBackend(None, "offline", "none answers at http://x (start one)")
    with pytest.raises(CliError) as raised:
        backend.sessions()
    assert raised.value.message == "`sessions` needs a running mockd, and none answers at http://x (start one)"
    with pytest.raises(CliError, match=r"^`cancel` needs a running mockd"):
        backend.cancel_replay("01J0ABCDEF12")
    assert capsys.readouterr().err == ""  # no offline notice: the store was never opened


def test_the_data_directory_when_nothing_answers(tmp_path: Path) -> None:
    with unreachable_url() as url:
        backend = Connection(admin_url=url, token=None, data_dir=str(tmp_path)).backend()
    assert isinstance(backend, StoreBackend)
    assert backend.offline_because == f"no server answers at {url}"


def test_a_data_directory_no_mockd_serves_is_offline_without_asking_any_server(tmp_path: Path) -> None:
    connection = Connection(admin_url=None, token=None, data_dir=str(tmp_path))
    assert connection.server_url() == (None, None)
    backend = connection.backend()
    assert isinstance(backend, StoreBackend) and connection.backend() is backend  # chosen once
    assert f"none is running for the data directory {tmp_path}" in backend.no_server
