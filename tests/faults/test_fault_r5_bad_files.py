"""R5 (docs/faults.md): malformed config, malformed settings, malformed or foreign files in the data directory.

Covered by existing tests, checked here to still exist (``test_referenced_tests_exist``):

* malformed config — ``tests/test_serve.py::test_bad_config_is_one_line_naming_file_mock_and_field``
  (12 cases: bad JSON/YAML, wrong types, unknown fields, duplicates...; one stderr line naming file, mock
  and field, exit 1), ``::test_missing_config_file_is_one_line_naming_it``,
  ``::test_duplicate_id_across_two_config_files_names_the_second_file``;
* malformed settings — ``tests/test_serve.py::test_bad_settings_file_is_one_line_naming_file_and_key``;
* foreign or unparseable files in the data directory — ``tests/test_recording_durability.py::
  test_foreign_files_in_data_dir_are_skipped_logged_and_kept`` (skipped, warned about by name, never
  deleted, even by vacuum, across restarts) and ``tests/test_recording_store_api.py::
  test_unparseable_recording_file_is_skipped_with_a_warning_and_kept``.

Added here: the settings fields whose *values* are wrong (not only unknown keys or wrong types), and a
data directory that cannot be one (a regular file) — each one error line naming the file and field,
non-zero exit, and nothing deleted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from processes import run_mockd
from configs import write_config
from faultkit import test_functions_in

pytestmark = pytest.mark.fault

REFERENCED = [
    ("test_serve.py", "test_bad_config_is_one_line_naming_file_mock_and_field"),
    ("test_serve.py", "test_missing_config_file_is_one_line_naming_it"),
    ("test_serve.py", "test_duplicate_id_across_two_config_files_names_the_second_file"),
    ("test_serve.py", "test_bad_settings_file_is_one_line_naming_file_and_key"),
    ("test_recording_durability.py", "test_foreign_files_in_data_dir_are_skipped_logged_and_kept"),
    ("test_recording_store_api.py", "test_unparseable_recording_file_is_skipped_with_a_warning_and_kept"),
]


@pytest.mark.parametrize(("file_name", "test_name"), REFERENCED, ids=[name for _, name in REFERENCED])
def test_referenced_tests_exist(file_name: str, test_name: str) -> None:
    assert test_name in test_functions_in(file_name)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


BAD_VALUES = {
    "maxBytes-zero": ("recording:\n  maxBytes: 0\n", "maxBytes"),
    "maxBytes-negative": ("recording:\n  maxBytes: -5\n", "maxBytes"),
    "warnPercent-over-100": ("recording:\n  warnPercent: 150\n", "warnPercent"),
    "filterHeaders-not-a-list": ("recording:\n  filterHeaders: Authorization\n", "filterHeaders"),
    "redactValue-a-mapping": ("recording:\n  redactValue: {a: 1}\n", "redactValue"),
}


@pytest.mark.parametrize(("text", "field"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_r5_settings_with_a_bad_value_is_one_line_naming_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    settings = write_config(tmp_path, text, "bad-settings.yaml")
    result = run_mockd("serve", "--settings", str(settings), "--port", "0", "--admin-port", "0",
                       "--data-dir", str(tmp_path / "data"), "--ready-file", str(tmp_path / "ready.json"),
                       timeout=20)
    assert result.returncode != 0
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "bad-settings.yaml" in lines[0] and field in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert settings.read_text() == text


def test_r5_data_dir_that_is_a_file_is_one_line_and_kept(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "recordings"
    not_a_dir.write_bytes(b"someone else's file")
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(not_a_dir),
                       "--ready-file", str(tmp_path / "ready.json"), timeout=20)
    assert result.returncode != 0
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(not_a_dir) in lines[0] or "recordings" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not_a_dir.read_bytes() == b"someone else's file"
