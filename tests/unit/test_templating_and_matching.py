"""Templates and WebSocket message matching, as pure functions."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockd.config.model import MessageMatch, WsMessage
from mockd.serving.mocks.templating import render, render_value
from mockd.serving.mocks.websocket import message_matches, message_payload


def test_message_and_fields() -> None:
    message = '{"user": {"name": "ana", "tags": ["a", "b"]}, "n": 3}'
    assert render("got {{message}}", message) == f"got {message}"
    assert render("{{message.user.name}}/{{ message.n }}/{{message.user.tags.1}}", message) == "ana/3/b"
    assert render("[{{message.user.missing}}]", message) == "[]"
    assert render("{{message.user}}", message) == '{"name":"ana","tags":["a","b"]}'
    assert render("[{{message.x}}]", "not json") == "[]"


def test_now_timestamp_and_uuid() -> None:
    before = time.time_ns() // 1_000_000
    now, stamp, made = render("{{now}}|{{timestamp}}|{{uuid}}", None).split("|")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
    assert before <= int(stamp) <= time.time_ns() // 1_000_000
    assert uuid.UUID(made).version == 4


def test_unknown_expressions_are_left_as_written() -> None:
    assert render("{{__import__('os')}} {{ message.__class__ }}x", "m") == "{{__import__('os')}} x"
    assert render("{{config}}", "m") == "{{config}}"


@given(st.text())
def test_text_without_braces_is_untouched(text: str) -> None:
    if "{{" not in text:
        assert render(text, "msg") == text


@given(st.text())
def test_json_values_stay_valid_json_whatever_the_message(message: str) -> None:
    rendered = render_value({"echo": "{{message}}", "list": ["{{message}}", 1]}, message)
    assert json.loads(json.dumps(rendered)) == {"echo": message, "list": [message, 1]}


def test_payloads_by_type() -> None:
    assert message_payload(WsMessage(type="text", value="hi {{message}}"), "x") == "hi x"
    assert message_payload(WsMessage(type="text", value="hi {{message}}", template=False), "x") == "hi {{message}}"
    assert message_payload(WsMessage(type="json", value={"a": "{{message}}"}), "x") == '{"a":"x"}'
    assert message_payload(WsMessage(type="binary", value=base64.b64encode(b"\x00\xff").decode()), None) == b"\x00\xff"


@pytest.mark.parametrize(("match", "data", "expected"), [
    (MessageMatch(type="exact", value="hello"), "hello", True),
    (MessageMatch(type="exact", value="hello"), "hello!", False),
    (MessageMatch(type="contains", value="ell"), "hello", True),
    (MessageMatch(type="prefix", value="he"), "hello", True),
    (MessageMatch(type="prefix", value="lo"), "hello", False),
    (MessageMatch(type="suffix", value="lo"), "hello", True),
    (MessageMatch(type="regex", value=r"^h.l+o$"), "hello", True),
    (MessageMatch(type="regex", value=r"^\d+$"), "hello", False),
    (MessageMatch(type="json", path="$.type", value="join"), '{"type": "join"}', True),
    (MessageMatch(type="json", path="$.type", value="join"), '{"type": "leave"}', False),
    (MessageMatch(type="json", path="$.n", value=1), '{"n": true}', False),
    (MessageMatch(type="json", path="$.type"), '{"type": null}', True),
    (MessageMatch(type="json", path="$.type"), '{"kind": 1}', False),
    (MessageMatch(type="json", path="$.type", value="join"), "not json", False),
    (MessageMatch(type="any"), b"\x00", True),
    (MessageMatch(type="any", message_type="text"), b"\x00", False),
    (MessageMatch(type="any", message_type="binary"), b"\x00", True),
    (MessageMatch(type="exact", value="hi", message_type="binary"), b"hi", True),
    (None, "anything", True),
])
def test_message_matches(match: MessageMatch | None, data: str | bytes, expected: bool) -> None:
    assert message_matches(match, data) is expected


@given(st.text(), st.text())
def test_exact_and_contains_agree_with_python(value: str, text: str) -> None:
    assert message_matches(MessageMatch(type="exact", value=value), text) is (text == value)
    assert message_matches(MessageMatch(type="contains", value=value), text) is (value in text)


def test_json_match_value_unset_differs_from_null() -> None:
    unset = msgspec.convert({"type": "json", "path": "$.a"}, MessageMatch)
    null = msgspec.convert({"type": "json", "path": "$.a", "value": None}, MessageMatch)
    assert message_matches(unset, '{"a": 5}')
    assert not message_matches(null, '{"a": 5}')
    assert message_matches(null, '{"a": null}')
