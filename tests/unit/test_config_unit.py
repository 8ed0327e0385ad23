"""Config models without sockets: validation messages name the field, durations parse, JSON/YAML by content."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockd.config.durations import seconds
from mockd.config.model import ConfigError, WebSocketMock, load_config_files, parse_document, parse_mock
from mockd.config.settings import Settings, load_settings, resolve_data_dir


def ws_mock(**websocket: object) -> dict[str, object]:
    return {"id": "chat", "type": "websocket", "websocket": {"path": "/ws", **websocket}}


@pytest.mark.parametrize(("text", "expected"), [
    ("100ms", 0.1), ("1.5s", 1.5), ("2m", 120.0), ("1h30m", 5400.0), ("250us", 0.00025), (".5s", 0.5),
])
def test_duration_strings(text: str, expected: float) -> None:
    assert seconds(text) == pytest.approx(expected)


def test_bare_numbers_are_milliseconds_and_none_is_zero() -> None:
    assert seconds(250) == pytest.approx(0.25)
    assert seconds(None) == 0.0


@pytest.mark.parametrize("bad", ["", "5", "5 parsecs", "ms", "1s2", "-1s", "1 s"])
def test_bad_duration_strings_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        seconds(bad)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h"])), min_size=1, max_size=4))
def test_concatenated_parts_add_up(parts: list[tuple[int, str]]) -> None:
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    text = "".join(f"{number}{name}" for number, name in parts)
    assert seconds(text) == pytest.approx(sum(number * unit[name] for number, name in parts))


@pytest.mark.parametrize(("raw", "fragment"), [
    ({"id": "a", "type": "http", "http": {"matcher": {"path": "/x"}, "response": {"statusCode": "abc"}}},
     "mock a: http.response.statusCode: expected int, got str"),
    ({"id": "a", "type": "http", "http": {"matcher": {"path": "/x"}, "response": {"bogus": 1}}},
     "http.response: object contains unknown field bogus"),
    ({"id": "a", "type": "http", "http": {"matcher": {"pathPattern": "("}, "response": {}}},
     "http.matcher.pathPattern: invalid regex"),
    ({"id": "a", "type": "http", "http": {"matcher": {"path": "/x"}}}, "exactly one of response or sse"),
    (ws_mock(idleTimeout="5 parsecs"), "websocket.idleTimeout: invalid duration '5 parsecs'"),
    (ws_mock(scenario={"steps": [{"type": "jump"}]}), "websocket.scenario.steps[0].type: invalid value 'jump'"),
    (ws_mock(matchers=[{"match": {"type": "json", "path": "$[["}, "response": {"value": "x"}}]),
     "websocket.matchers[0].match.path: invalid JSONPath"),
    (ws_mock(matchers=[{"match": {"type": "exact"}, "response": {"value": "x"}}]),
     "match type 'exact' needs a string value"),
    (ws_mock(defaultResponse={"type": "binary", "value": "not base64!"}), "must be base64"),
    (ws_mock(scenario={"steps": [{"type": "close", "code": 1006}]}), "close code 1006 may not be sent"),
    ({"id": "a", "type": "grpc"}, "type: unknown mock type 'grpc'"),
])
def test_invalid_mocks_name_the_field(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mock(raw, "mocks.json: mock a")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_echo_is_the_default_only_without_matchers_or_scenario() -> None:
    def echoes(**websocket: object) -> bool:
        mock = parse_mock(ws_mock(**websocket))
        assert isinstance(mock, WebSocketMock) and mock.websocket is not None
        return mock.websocket.echoes

    assert echoes()
    assert not echoes(matchers=[{"match": {"type": "any"}, "noResponse": True}])
    assert not echoes(scenario={"steps": [{"type": "wait", "duration": "1s"}]})
    assert echoes(echoMode=True, matchers=[{"match": {"type": "any"}, "noResponse": True}])


def test_documents_are_parsed_by_content_not_extension(tmp_path: Path) -> None:
    as_yaml = tmp_path / "config.json"
    as_yaml.write_text("version: '1.0'\nmocks:\n  - {id: y, type: http, http: {matcher: {path: /y}, response: {}}}\n")
    as_json = tmp_path / "config.yaml"
    as_json.write_text('{"version": "1.0", "mocks": [{"id": "j", "type": "http", '
                       '"http": {"matcher": {"path": "/j"}, "response": {}}}]}')
    assert [mock.id for mock in load_config_files([as_yaml, as_json])] == ["y", "j"]


def test_broken_json_is_reported_as_json_and_broken_yaml_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^x.json: invalid JSON"):
        parse_document('{"version": ', "x.json")
    with pytest.raises(ConfigError, match=r"^x.yaml: invalid YAML at line 3"):
        parse_document("version: '1.0'\nmocks: [\n", "x.yaml")


def test_duplicate_ids_across_files_name_both(tmp_path: Path) -> None:
    body = ('{"version": "1.0", "mocks": [{"id": "same", "type": "http", '
            '"http": {"matcher": {"path": "/"}, "response": {}}}]}')
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(body)
    second.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_config_files([first, second])
    assert str(caught.value).startswith(f"{second}: mock 'same' (mocks[0]): id: duplicate mock id")
    assert str(first) in str(caught.value)


def test_settings_recording_block_and_unknown_keys(tmp_path: Path) -> None:
    good = tmp_path / "mockd.yaml"
    good.write_text("recording:\n  filterHeaders: [X-Custom-Secret]\n  filterBodyKeys: [password, $.user.ssn]\n"
                    "  redactValue: '***'\n  dataDir: ~/recs\n  maxBytes: 1000\n  warnPercent: 50\n")
    settings, path = load_settings(good)
    assert path == good
    assert settings.recording.filter_body_keys == ["password", "$.user.ssn"]
    assert settings.recording.redact_value == "***"
    assert resolve_data_dir(None, settings) == Path("~/recs").expanduser()
    bad = tmp_path / "bad.yaml"
    bad.write_text("recording:\n  filterHeader: [X]\n")
    with pytest.raises(ConfigError, match="recording: object contains unknown field filterHeader"):
        load_settings(bad)


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mockd.config.settings import RecordingSettings

    settings = Settings(recording=RecordingSettings(data_dir="/from/settings"))
    monkeypatch.setenv("MOCKD_DATA_DIR", "/from/env")
    assert resolve_data_dir("/from/flag", settings) == Path("/from/flag")
    assert resolve_data_dir(None, settings) == Path("/from/env")
    monkeypatch.delenv("MOCKD_DATA_DIR")
    assert resolve_data_dir(None, settings) == Path("/from/settings")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert resolve_data_dir(None, Settings()) == tmp_path / "mockd" / "recordings"
