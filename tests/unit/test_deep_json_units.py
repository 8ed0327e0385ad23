"""JSON nested too deep, without sockets: the Redactor, templating, WebSocket message matching and the config
parser never raise on it and never give a secret back (docs/recording.md, "Redaction").

The same over real sockets and a real ``mockd serve`` (recordings, the admin API, config files, WebSocket
mocks) is ``tests/e2e/test_deep_json.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepjson import REDACTED, SECRET, deep_document, nested
from mockd.config.model import ConfigError, MessageMatch, parse_document
from mockd.serving.mocks.templating import render
from mockd.serving.mocks.websocket import message_matches
from mockd.stream.redact import Redactor


@pytest.mark.parametrize("text", [nested(5000, ""), "a: " + nested(5000, ""), '{"a": %s}' % nested(100_000)])
def test_parse_document_nested_too_deep_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^deep: invalid (JSON|YAML)"):
        parse_document(text, "deep")
    with pytest.raises(ConfigError, match=r"^deep: invalid (JSON|YAML)"):
        parse_document(text.encode(), "deep")


# --- units: the Redactor, templating, matching ----------------------------------------------------------

PLAIN = Redactor(filter_body_keys=["password"])
WITH_PATH = Redactor(filter_body_keys=["password", "$.user.ssn"])


@pytest.mark.parametrize("redactor", [PLAIN, WITH_PATH], ids=["plain", "jsonpath"])
@pytest.mark.parametrize("levels", [1000, 5000, 100_000])
def test_redactor_deep_json_is_the_redact_value_and_failed(redactor: Redactor, levels: int) -> None:
    text = deep_document(levels)
    assert redactor.redact_body(text) == (REDACTED, True)
    assert redactor.redact_body_reason(text) == (REDACTED, "nested too deep")
    assert redactor.body(text) == REDACTED  # the old entry point never gives the original back either


def test_redactor_custom_redact_value_on_failure() -> None:
    assert Redactor(filter_body_keys=["password"], redact_value="<hidden>").redact_body(deep_document(2000)) == \
        ("<hidden>", True)


@pytest.mark.parametrize("text", ["hello", "", "   ", "[1, 2,", '{"password": NaN}', "{'password': 1}",
                                  '{"password": "x"} trailing', "[" * 10, "\ufeff{}"])
def test_redactor_non_json_text_is_unchanged_and_not_failed(text: str) -> None:
    assert WITH_PATH.redact_body(text) == (text, False)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"password": "p", "user": {"ssn": "1"}}', '{"password": "[REDACTED]", "user": {"ssn": "[REDACTED]"}}'),
    ('[{"a": [[[{"password": 1}]]]}]', '[{"a": [[[{"password": "[REDACTED]"}]]]}]'),
    (nested(100, '{"password": true}'), nested(100, '{"password": "[REDACTED]"}')),
    ('{"other": 1}', '{"other": 1}'),
])
def test_redactor_normal_json_is_redacted_and_not_failed(text: str, expected: str) -> None:
    assert WITH_PATH.redact_body(text) == (expected, False)


def test_redactor_deep_json_without_a_filtered_key_is_unchanged() -> None:
    text = '{"harmless": %s}' % nested(3000)
    assert PLAIN.redact_body(text) == (text, False)
    # ...but a JSONPath could match anything, and an escape can spell any key
    assert WITH_PATH.redact_body(text) == (REDACTED, True)
    escaped = '{"pass\\u0077ord": %s}' % nested(3000)
    assert PLAIN.redact_body(escaped) == (REDACTED, True)


def test_redactor_a_jsonpath_stage_failure_never_leaks() -> None:
    """A number ``json`` refuses (more digits than int conversion allows) stops the JSONPath stage."""
    text = '{"user": {"ssn": "%s"}, "n": %s}' % (SECRET, "1" * 5000)
    redacted, failed = WITH_PATH.redact_body(text)
    assert SECRET not in redacted
    assert failed == (redacted == REDACTED)


def test_redactor_without_body_keys_never_touches_bodies() -> None:
    text = deep_document(5000)
    assert Redactor().redact_body(text) == (text, False)
    assert Redactor(filter_headers=["authorization"]).redact_body(text) == (text, False)


JSONISH = st.text(alphabet='[]{}":,. \n\\01aptsword', max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), JSONISH,
                 st.builds(lambda n, inner: "[" * n + inner + "]" * n, st.integers(0, 3000), JSONISH),
                 st.builds(lambda n, tail: '{"a": ' + "[" * n + tail, st.integers(0, 3000), JSONISH)))
def test_redactor_never_raises_and_failure_means_the_redact_value(text: str) -> None:
    for redactor in (PLAIN, WITH_PATH):
        redacted, failed = redactor.redact_body(text)
        assert isinstance(redacted, str)
        if failed:
            assert redacted == REDACTED
        elif redacted != text:
            assert redactor.redact_body(redacted) == (redacted, False)  # what was stored redacts to itself


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 4000), st.sampled_from(["password", "$..password"]))
def test_a_secret_at_any_depth_never_comes_back(levels: int, key: str) -> None:
    text = nested(levels, '{"password": "%s"}' % SECRET)
    redacted, failed = Redactor(filter_body_keys=[key]).redact_body(text)
    assert SECRET not in redacted
    assert failed == (redacted == REDACTED)


@pytest.mark.parametrize("levels", [1000, 5000, 100_000])
def test_template_field_of_a_deep_message_is_missing(levels: int) -> None:
    message = '{"a": {"b": 1}, "d": %s}' % nested(levels)
    assert render("got [{{message.a.b}}] of {{message}}", message) == f"got [] of {message}"


@pytest.mark.parametrize("path", ["$.kind", "$..kind"])
@pytest.mark.parametrize("levels", [800, 1000, 5000, 100_000])
def test_json_match_of_a_deep_message_never_raises(path: str, levels: int) -> None:
    message = '{"kind": "x", "d": %s}' % nested(levels)
    matched = message_matches(MessageMatch(type="json", path=path, value="x"), message)
    if levels >= 1000:
        assert matched is False  # undecodable
    elif path == "$.kind":
        assert matched is True  # decodable, and a direct path does not recurse
    else:
        assert isinstance(matched, bool)  # a recursive search may give up: "no match", never an exception
    assert message_matches(MessageMatch(type="json", path=path, value="x"), '{"kind": "x"}') is True
