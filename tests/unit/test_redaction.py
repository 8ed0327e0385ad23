"""Redaction (docs/recording.md, "Redaction"): unit and property tests of ``mockd.stream.redact``.

The oracle is independent of the implementation: the expected document is computed by walking the
Python value (plain keys at any depth; JSONPath matches from python-jsonpath's ``finditer(...).parts``),
and the expected *text* is the original serialisation of that expected document with the same
``json.dumps`` layout, in which each replaced value is allowed to be any JSON string literal that
decodes to the redact value. So: the result is valid JSON, decodes to exactly the original with the
matched values replaced, and every byte outside the replaced values is what was sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonpath
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mockd.stream.redact import DEFAULT_HEADERS, Redactor, value_spans

Json = Any
JsonPath = tuple[str | int, ...]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SENTINEL = "\x00\x01redaction-sentinel\x01\x00"  # control characters: always escaped, in every layout

# --- strategies -----------------------------------------------------------------------------------

LIKELY_KEYS = ["token", "password", "secret", "ssn", "user", "items", "id", "a", "b", "data", "0", ""]
keys = st.one_of(st.sampled_from(LIKELY_KEYS), st.text(max_size=6),
                 st.text(alphabet='"\\/\b\f\n\r\t\u2028\x00é☃😀 .[]*$\'', max_size=4))
scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                    st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10))
values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(keys, children, max_size=4), max_leaves=30)
documents = st.one_of(st.dictionaries(keys, values, max_size=5), st.lists(values, max_size=5))
whitespace = st.text(alphabet=" \t\n\r", max_size=3)


@dataclass(frozen=True)
class Layout:
    """One way of writing a document: ``json.dumps`` options plus whitespace around it."""

    indent: int | str | None
    item_separator: str
    key_separator: str
    ensure_ascii: bool
    lead: str
    trail: str

    def dumps(self, document: Json) -> str:
        body = json.dumps(document, indent=self.indent, separators=(self.item_separator, self.key_separator),
                          ensure_ascii=self.ensure_ascii)
        return self.lead + body + self.trail


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    return Layout(indent=draw(st.one_of(st.none(), st.integers(0, 3), whitespace)),
                  item_separator=draw(whitespace) + "," + draw(whitespace),
                  key_separator=draw(whitespace) + ":" + draw(whitespace),
                  ensure_ascii=draw(st.booleans()), lead=draw(whitespace), trail=draw(whitespace))


# --- the independent oracle -----------------------------------------------------------------------


def walk(document: Json, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Json]]:
    """Every value with its path, the root included."""
    yield path, document
    if isinstance(document, dict):
        for key, value in document.items():
            yield from walk(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from walk(value, (*path, index))


def keys_in(document: Json) -> list[str]:
    """The object keys a document has that can be plain filter keys (an entry starting with ``$`` is a JSONPath)."""
    return sorted({path[-1] for path, _ in walk(document)
                   if path and isinstance(path[-1], str) and not path[-1].startswith("$")})


def plain_key_paths(document: Json, plain: set[str]) -> set[JsonPath]:
    return {path for path, _ in walk(document) if path and isinstance(path[-1], str) and path[-1] in plain}


def jsonpath_paths(document: Json, expressions: list[str]) -> set[JsonPath]:
    return {tuple(match.parts) for expression in expressions for match in jsonpath.finditer(expression, document)}


def replaced(document: Json, targets: set[JsonPath], value: Json, path: JsonPath = ()) -> Json:
    """``document`` with the value at every target path replaced (outermost wins)."""
    if path in targets:
        return value
    if isinstance(document, dict):
        return {key: replaced(item, targets, value, (*path, key)) for key, item in document.items()}
    if isinstance(document, list):
        return [replaced(item, targets, value, (*path, index)) for index, item in enumerate(document)]
    return document


def assert_same_text_outside_replacements(actual: str, template: str, sentinel_literal: str,
                                          redact_value: str) -> None:
    """``actual`` is ``template`` with each ``sentinel_literal`` standing for any JSON string literal
    decoding to ``redact_value``: every other character is identical."""
    pieces = template.split(sentinel_literal)
    position = 0
    for index, piece in enumerate(pieces):
        assert actual.startswith(piece, position), (
            f"text differs at {position}: expected {piece[:60]!r}, got {actual[position:position + 60]!r}")
        position += len(piece)
        if index < len(pieces) - 1:
            assert actual[position:position + 1] == '"', f"no string literal at {position}: {actual[position:][:60]!r}"
            decoded, position = json.decoder.scanstring(actual, position + 1)  # type: ignore[attr-defined]
            assert decoded == redact_value
    assert position == len(actual), f"unexpected trailing text {actual[position:][:60]!r}"


def check_redaction(document: Json, layout: Layout, plain: list[str], expressions: list[str],
                    redact_value: str) -> str:
    """Redact ``layout.dumps(document)`` and compare with the oracle; returns the redacted text."""
    text = layout.dumps(document)
    sentinel_literal = json.dumps(SENTINEL, ensure_ascii=layout.ensure_ascii)
    assume(sentinel_literal not in text)
    targets = plain_key_paths(document, set(plain)) | jsonpath_paths(document, expressions)
    result = Redactor(filter_body_keys=[*plain, *expressions], redact_value=redact_value).body(text)

    expected_document = replaced(document, targets, redact_value)
    assert json.loads(result) == expected_document
    assert_same_text_outside_replacements(result, layout.dumps(replaced(document, targets, SENTINEL)),
                                          sentinel_literal, redact_value)
    if not targets:
        assert result == text
    return result


# --- JSONPath expressions built from the paths a document has ------------------------------------

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@st.composite
def segment(draw: st.DrawFn, step: str | int, length: int) -> str:
    """One JSONPath segment selecting ``step`` (sometimes more: a wildcard or a descent)."""
    if isinstance(step, int):
        return draw(st.sampled_from([f"[{step}]", f"[{step - length}]", "[*]", f"[{step}:{step + 1}]"]))
    forms = [f"[{json.dumps(step)}]", "[*]", f"..[{json.dumps(step)}]"]
    if IDENTIFIER.fullmatch(step) and step not in ("true", "false", "null"):
        forms += [f".{step}", f"..{step}"]
    if "'" not in step and "\\" not in step:
        forms.append(f"['{step}']")
    return draw(st.sampled_from(forms))


@st.composite
def expressions_for(draw: st.DrawFn, document: Json) -> str:
    """A JSONPath expression reaching a value that ``document`` has."""
    paths = [path for path, _ in walk(document) if path]
    if not paths:
        return "$.absent"
    path = draw(st.sampled_from(paths))
    parts, node = [], document
    for step in path:
        parts.append(draw(segment(step, len(node))))
        node = node[step]
    expression = "$" + "".join(parts)
    try:
        jsonpath.compile(expression)
    except jsonpath.JSONPathError:
        assume(False)
    return expression


# --- body: properties -----------------------------------------------------------------------------

redact_values = st.one_of(st.just("[REDACTED]"), st.text(max_size=8))


@SETTINGS
@given(st.data(), documents, layouts(), redact_values)
def test_plain_keys_redacted_at_any_depth_and_nothing_else_changes(data: st.DataObject, document: Json,
                                                                   layout: Layout, redact_value: str) -> None:
    present = keys_in(document)
    chosen = data.draw(st.lists(st.sampled_from(present), max_size=3) if present else st.just([]), "keys")
    absent = data.draw(st.lists(keys.filter(lambda key: not key.startswith("$")), max_size=2), "other keys")
    check_redaction(document, layout, [*chosen, *absent], [], redact_value)


@SETTINGS
@given(st.data(), documents, layouts(), redact_values)
def test_jsonpath_expressions_redact_exactly_their_matches(data: st.DataObject, document: Json,
                                                           layout: Layout, redact_value: str) -> None:
    expressions = data.draw(st.lists(expressions_for(document), min_size=1, max_size=3), "expressions")
    check_redaction(document, layout, [], expressions, redact_value)


@SETTINGS
@given(st.data(), documents, layouts())
def test_plain_keys_and_jsonpaths_together(data: st.DataObject, document: Json, layout: Layout) -> None:
    present = keys_in(document)
    plain = data.draw(st.lists(st.sampled_from(present), max_size=2) if present else st.just([]), "keys")
    expressions = data.draw(st.lists(expressions_for(document), max_size=2), "expressions")
    check_redaction(document, layout, plain, expressions, "[REDACTED]")


@SETTINGS
@given(documents, layouts(), st.lists(keys, min_size=1, max_size=3))
def test_no_match_leaves_text_identical(document: Json, layout: Layout, wanted: list[str]) -> None:
    plain = [key for key in wanted if key not in keys_in(document) and not key.startswith("$")]
    assume(plain)
    text = layout.dumps(document)
    assert Redactor(filter_body_keys=plain).body(text) == text


@SETTINGS
@given(documents, layouts())
def test_without_body_keys_json_is_untouched(document: Json, layout: Layout) -> None:
    text = layout.dumps(document)
    assert Redactor().body(text) == text
    assert Redactor(filter_headers=["authorization"]).body(text) == text


def is_strict_json(text: str) -> bool:
    def reject(constant: str) -> None:
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=reject)
    except ValueError:
        return False
    return True


@st.composite
def almost_json(draw: st.DrawFn) -> str:
    """Text that is usually not JSON but looks like it: truncated, with garbage, or random."""
    text = draw(layouts()).dumps(draw(st.dictionaries(st.sampled_from(LIKELY_KEYS), values, min_size=1)))
    kind = draw(st.sampled_from(["truncated", "suffix", "prefix", "random", "constant", "quotes", "two"]))
    if kind == "truncated":
        return text[:draw(st.integers(0, max(len(text) - 1, 0)))]
    if kind == "suffix":
        return text + draw(st.text(min_size=1, max_size=5))
    if kind == "prefix":
        return draw(st.text(min_size=1, max_size=3)) + text
    if kind == "constant":
        return text.replace("}", ', "token": NaN}', 1)
    if kind == "quotes":
        return text.replace('"', "'")
    if kind == "two":
        return text + "\n" + text
    return draw(st.text())


CATCH_ALL = ["token", "password", "secret", "ssn", "a", "b", "$..*", "$.user.ssn", "$.items[*].token"]


@SETTINGS
@given(almost_json())
def test_non_json_text_is_returned_unchanged(text: str) -> None:
    assume(not is_strict_json(text))
    assert Redactor(filter_body_keys=CATCH_ALL).body(text) == text


@pytest.mark.parametrize("text", [
    "", " ", "hello", "token=abc", '{"token": "x"', '{"token": "x"}}', '{"token": NaN}', "{'token': 'x'}",
    '{"token": "x"} {"token": "y"}', '{"token": "x",}', '[1, 2,]', '{"token" "x"}', "[", "{", "\ufeff{}",
    '{"token": tru}', '{"token": 01}', '{"token": "\x01"}', '{"token": Infinity}',
])
def test_non_json_examples_unchanged(text: str) -> None:
    assert Redactor(filter_body_keys=CATCH_ALL).body(text) == text


# --- body: the documented examples (docs/recording.md, "Redaction") and edge cases ----------------


@pytest.mark.parametrize(("keys_", "text", "expected"), [
    (["password"], '{"b": 1,  "password" :"hunter2", "a":[{"password": {"n": [1, 2]}}]}',
     '{"b": 1,  "password" :"[REDACTED]", "a":[{"password": "[REDACTED]"}]}'),
    (["$.user.ssn"], '{"user":{"ssn":"123-45-6789","name":"Ann"},"ssn":"keep"}',
     '{"user":{"ssn":"[REDACTED]","name":"Ann"},"ssn":"keep"}'),
    (["$.items[*].token"], '[\n]', '[\n]'),
    (["$.items[*].token"], '{"items": [{"token": 1.50}, {"x": 1e5}, {"token": null}], "token": true}',
     '{"items": [{"token": "[REDACTED]"}, {"x": 1e5}, {"token": "[REDACTED]"}], "token": true}'),
    (["token"], '{"a":{"token":{"token":"inner"}},"t":"token"}', '{"a":{"token":"[REDACTED]"},"t":"token"}'),
    (["secret"], '{"x": "caf\\u00e9 \\"q\\"", "secret": "s\\ud83d\\ude00"}',
     '{"x": "caf\\u00e9 \\"q\\"", "secret": "[REDACTED]"}'),
    (["$.ssn"], '{"ssn": "123", "big": 1e400}', '{"ssn": "[REDACTED]", "big": 1e400}'),
    (["$.ssn"], '{"ssn": "123", "n": 12345678901234567890123}', '{"ssn": "[REDACTED]", "n": 12345678901234567890123}'),
], ids=["plain-depth-spacing", "jsonpath-spec", "empty-array", "jsonpath-wildcard", "outermost", "escapes",
        "huge-float", "huge-int"])
def test_body_examples(keys_: list[str], text: str, expected: str) -> None:
    assert Redactor(filter_body_keys=keys_).body(text) == expected


def test_custom_redact_value_is_a_json_string() -> None:
    result = Redactor(filter_body_keys=["k"], redact_value='say "no" \\ ☃').body('{"k": 1}')
    assert json.loads(result) == {"k": 'say "no" \\ ☃'}


# --- value_spans ----------------------------------------------------------------------------------


@SETTINGS
@given(documents, layouts())
def test_value_spans_cover_every_value_exactly(document: Json, layout: Layout) -> None:
    text = layout.dumps(document)
    spans = value_spans(text)
    expected = dict(walk(document))
    assert set(spans) == set(expected)
    for path, (start, end) in spans.items():
        assert json.loads(text[start:end]) == expected[path]
        assert text[start:end] == text[start:end].strip()  # the value itself, no surrounding space
    assert spans[()] == (len(layout.lead), len(text) - len(layout.trail))


# --- headers and query ----------------------------------------------------------------------------

header_tokens = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,12}", fullmatch=True)


def random_case(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(char.upper() if flip else char.lower() for char, flip in zip(name, flips, strict=True))


@SETTINGS
@given(st.data(), st.lists(header_tokens, max_size=3), st.lists(header_tokens, max_size=6))
def test_headers_redacted_case_insensitively_defaults_plus_custom(data: st.DataObject, custom: list[str],
                                                                  others: list[str]) -> None:
    secret_names = {*DEFAULT_HEADERS, *(name.lower() for name in custom)}
    assert {"authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"} <= secret_names
    configured = [random_case(data.draw, name) for name in custom]
    plain = list({name.lower(): name for name in others if name.lower() not in secret_names}.values())
    names = data.draw(st.lists(st.sampled_from([*secret_names, *plain]), min_size=1, max_size=10), "names")
    # Secret names in any case; the others exactly as chosen (repeats of one name are joined).
    names = [random_case(data.draw, name) if name in secret_names else name for name in names]
    headers = [(name, f"value-{index}-{'secret' if name.lower() in secret_names else 'plain'}")
               for index, name in enumerate(names)]
    result = Redactor(filter_headers=configured, redact_value="[REDACTED]").headers(headers)

    assert set(result) == set(names)
    for name, value in result.items():
        if name.lower() in secret_names:
            assert value == "[REDACTED]"
        else:
            sent = [sent_value for sent_name, sent_value in headers if sent_name == name]
            assert value == ", ".join(sent)
    assert not any("secret" in value for value in result.values())


@pytest.mark.parametrize("name", ["Authorization", "AUTHORIZATION", "cookie", "Set-Cookie", "x-api-key",
                                  "X-Api-Key", "X-AUTH-TOKEN", "X-Custom-Secret", "x-custom-secret"])
def test_header_examples(name: str) -> None:
    redactor = Redactor(filter_headers=["X-Custom-Secret"], redact_value="***")
    result = redactor.headers([(name, "s3cr3t"), ("Accept", "text/plain")])
    assert result == {name: "***", "Accept": "text/plain"}


@SETTINGS
@given(st.data(), st.lists(st.sampled_from(LIKELY_KEYS[:6]), max_size=3),
       st.lists(st.text(min_size=1, max_size=6), max_size=5, unique=True))
def test_query_parameters_named_like_plain_body_keys_are_redacted(data: st.DataObject, plain: list[str],
                                                                  others: list[str]) -> None:
    names = data.draw(st.lists(st.sampled_from([*LIKELY_KEYS[:6], *others]), unique=True, max_size=8), "names")
    query = [(name, f"value-of-{name}") for name in names]
    redactor = Redactor(filter_body_keys=[*plain, "$.user.ssn"], redact_value="[X]")
    result = redactor.query(query)
    assert result == {name: "[X]" if name in plain else value for name, value in query}
    assert Redactor(filter_body_keys=["token"]).query([("Token", "a"), ("token", "b")]) == {
        "Token": "a", "token": "[REDACTED]"}
