"""``mockd.cli.backend``: the two backends of ``mockd stream-recordings`` turn their domain errors — the
admin API's error answers and the store's :class:`StoreError` kinds — into the same one-line
:class:`CliError`, and the data directory says when a command needs a server.

Without sockets: a store on a temporary data directory for the offline case (the API backend against a
server that answers is in tests/e2e/test_cli_backend_answers.py, the end-to-end behaviour in
test_cli_recordings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockd.cli.backend import CommandTarget, StoreBackend, domain_error
from mockd.cli.output import CliError
from mockd.recording.store import AmbiguousId

CANDIDATES = ["01HXYZ1234560000000000000A", "01HXYZ1234569999999999999B"]


@pytest.fixture
def no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings file on the search path: the defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


def test_domain_error_names_the_candidates_as_list_shows_ids() -> None:
    assert domain_error("'01HXYZ' matches 2", CANDIDATES).message == "'01HXYZ' matches 2: 01HXYZ123456, 01HXYZ123456"
    assert domain_error("No stream recording with id 'x'").message == "No stream recording with id 'x'"


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


def test_a_data_directory_no_mockd_serves_is_offline_without_asking_any_server(tmp_path: Path) -> None:
    connection = CommandTarget(admin_url=None, token=None, data_dir=str(tmp_path))
    assert connection.server_url() == (None, None)
    backend = connection.backend()
    assert isinstance(backend, StoreBackend) and connection.backend() is backend  # chosen once
    assert f"none is running for the data directory {tmp_path}" in backend.no_server
