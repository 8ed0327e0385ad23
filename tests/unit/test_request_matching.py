"""HTTP request matching (docs/config.md, "HTTP mocks": matcher ``body``, ``matchOn``, ``ignoreQuery``;
``times``; the 404 that names the closest mock).

Pure unit tests of :mod:`mockd.serving.mocks.http`: JSON comparison (:func:`json_difference`,
:func:`without_paths`), each :class:`~mockd.config.model.BodyMatch` type (:func:`body_mismatch`) and
:func:`mismatch`, which names the first differing field in the order method → path → query →
headers → body. Requests are aiohttp request objects built by ``make_mocked_request`` (no network:
the matcher only reads method, path, query and headers); bodies are passed as bytes, as the
registry passes them after reading.

The same over real sockets (a config served by ``mockd serve``) is
``tests/e2e/test_request_matching_served.py``.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mockd.config.model import BodyMatch, ConfigError, HttpMatcher, parse_mock
from mockd.serving.mocks.http import (body_mismatch, child_path, decode_json, is_json, json_difference, mismatch,
                                      without_paths)

Json = Any
DEEP_LEVELS = 5000  # far past msgspec's nesting limit (and Python's recursion limit)


def request(method: str = "GET", target: str = "/", headers: dict[str, str] | None = None) -> web.Request:
    """An aiohttp request object (not a network request): what the matcher reads."""
    return make_mocked_request(method, target, headers=headers or {})


def body_match(**fields: Any) -> BodyMatch:
    """A body matcher as a config file spells it (camelCase keys), validated as the loader does."""
    return msgspec.convert(fields, BodyMatch)


def encoded(document: Json) -> bytes:
    return json.dumps(document).encode()


def deep_array(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_object(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# --- json_difference --------------------------------------------------------------------------------


@pytest.mark.parametrize(("expected", "actual"), [
    ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}),
    ({"outer": {"x": 1, "y": 2}}, {"outer": {"y": 2, "x": 1}}),
    (1, 1.0),
    ({"n": 2.0}, {"n": 2}),
    (0, -0.0),
    (None, None),
    ([], []),
    ({}, {}),
    ("text", "text"),
    (True, True),
], ids=["key-order", "nested-key-order", "int-float", "float-int-member", "zero", "null", "empty-list",
        "empty-object", "string", "true"])
def test_json_difference_finds_equal_documents_equal(expected: Json, actual: Json) -> None:
    assert json_difference(expected, actual) is None
    assert json_difference(actual, expected) is None


@pytest.mark.parametrize(("expected", "actual", "where"), [
    (True, 1, "$"),
    (1, True, "$"),
    (False, 0, "$"),
    (None, 0, "$"),
    (None, False, "$"),
    ("1", 1, "$"),
    ([1], {"0": 1}, "$"),
    (1, 2, "$"),
    ({"a": 1}, {"a": 1, "b": 2}, "$.b"),
    ({"a": 1, "b": 2}, {"a": 1}, "$.b"),
    ({"a": {"b": [1, {"c": True}]}}, {"a": {"b": [1, {"c": 1}]}}, "$.a.b[1].c"),
    ([1, 2], [1, 2, 3], "$[2]"),
    ([1, 2, 3], [1], "$[1]"),
    ({"a b": 1}, {"a b": 2}, '$["a b"]'),
    ({"x": {"y": 1}}, {"x": {}}, "$.x.y"),
], ids=["true-vs-1", "1-vs-true", "false-vs-0", "null-vs-0", "null-vs-false", "string-vs-number",
        "list-vs-object", "numbers", "extra-key", "missing-key", "nested", "longer-list", "shorter-list",
        "bracketed-key", "nested-missing-key"])
def test_json_difference_names_the_first_difference(expected: Json, actual: Json, where: str) -> None:
    assert json_difference(expected, actual) == where


def test_whitespace_does_not_matter_once_decoded() -> None:
    spaced = decode_json(b' {\n  "a" : [ 1 ,\t2 ],\r\n "b" : { } }\n')
    compact = decode_json('{"b":{},"a":[1,2]}')
    assert is_json(spaced) and is_json(compact)
    assert json_difference(spaced, compact) is None


@pytest.mark.parametrize("raw", [b"", b"{", b"{'a': 1}", b"\xff\xfe", b"[1,]", deep_array(DEEP_LEVELS),
                                 deep_object(DEEP_LEVELS)],
                         ids=["empty", "truncated", "single-quotes", "not-utf8", "trailing-comma", "deep-array",
                              "deep-object"])
def test_decode_json_says_not_json_instead_of_raising(raw: bytes) -> None:
    assert not is_json(decode_json(raw))


json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10))
json_documents = st.recursive(json_scalars, lambda children: st.lists(children, max_size=4)
                              | st.dictionaries(st.text(max_size=6), children, max_size=4), max_leaves=25)


def shuffled(document: Json, rng: random.Random) -> Json:
    """The same document with every object's keys in another order."""
    if isinstance(document, dict):
        keys = list(document)
        rng.shuffle(keys)
        return {key: shuffled(document[key], rng) for key in keys}
    if isinstance(document, list):
        return [shuffled(item, rng) for item in document]
    return document


@settings(max_examples=300, deadline=None)
@given(document=json_documents, rng=st.randoms(use_true_random=False), indent=st.none() | st.integers(0, 3))
def test_any_document_equals_itself_and_its_reencoding_in_another_key_order(document: Json, rng: random.Random,
                                                                            indent: int | None) -> None:
    assert json_difference(document, document) is None
    reencoded = decode_json(json.dumps(shuffled(document, rng), indent=indent))
    assert is_json(reencoded)
    assert json_difference(document, reencoded) is None
    assert json_difference(reencoded, document) is None


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(st.text(max_size=6), json_documents, min_size=1, max_size=4), data=st.data())
def test_a_changed_member_is_found_at_its_path(document: dict[str, Json], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(document)))
    changed = {**document, key: 0 if isinstance(document[key], str) else "changed"}  # another type
    assert json_difference(document, changed) == child_path("$", key)


# --- without_paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("document", "paths", "expected"), [
    ({"a": 1, "b": 2}, ["$.a"], {"b": 2}),
    ({"a": {"b": 1, "c": 2}, "d": 3}, ["$.a.b", "$.d"], {"a": {"c": 2}}),
    ({"a": [1, {"x": 1, "y": 2}]}, ["$..x"], {"a": [1, {"y": 2}]}),
    ({"a": [1, 2, 3]}, ["$.a[1]"], {"a": [1, 3]}),
    ({"a": [1, 2, 3]}, ["$.a[0]", "$.a[2]"], {"a": [2]}),
    ({"items": [{"id": 1, "at": "t1"}, {"id": 2, "at": "t2"}]}, ["$.items[*].at"], {"items": [{"id": 1}, {"id": 2}]}),
    ({"a": 1}, ["$.missing"], {"a": 1}),
    ({"api-key": "s", "ok": True}, ['$["api-key"]'], {"ok": True}),
    ({"a": 1}, [], {"a": 1}),
], ids=["member", "nested-and-top", "recursive", "index", "two-indices", "wildcard", "nothing-found",
        "bracketed", "no-paths"])
def test_without_paths_removes_what_the_paths_find(document: Json, paths: list[str], expected: Json) -> None:
    before = json.dumps(document)
    assert without_paths(document, paths) == expected
    assert json.dumps(document) == before, "without_paths changed its argument"


def test_without_paths_removes_every_element_of_a_long_list() -> None:
    """Indices removed from the end first, compared as numbers: index 10 comes after index 9."""
    assert without_paths(list(range(12)), ["$[*]"]) == []


def test_without_paths_removes_the_indices_named_past_nine() -> None:
    expected = [n for n in range(12) if n not in (2, 10)]
    assert without_paths(list(range(12)), ["$[2]", "$[10]"]) == expected


def test_json_equal_ignores_a_list_element_past_index_nine() -> None:
    """An ``ignore`` path at index 10 must ignore that element, not its neighbour."""
    match = body_match(type="jsonEqual", value=list(range(12)), ignore=["$[2]", "$[10]"])
    actual = list(range(12))
    actual[10] = 99
    assert body_mismatch(match, encoded(actual)) is None


@settings(max_examples=300, deadline=None)
@example(key="\U00020bb7")  # 𠮷, a CJK letter outside the BMP: an identifier to Python, not to the JSONPath lexer
@given(key=st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
def test_child_path_names_any_member(key: str) -> None:
    """The path a difference or a redacted field is reported at is a JSONPath the config accepts and
    that finds exactly that member (a converted recording puts such paths in ``ignore``)."""
    path = child_path("$", key)
    document = {key: 42, "zz other": 1}
    assert without_paths(document, [path]) == {"zz other": 1}
    body_match(type="jsonEqual", value=document, ignore=[path])  # the loader accepts it


# --- body_mismatch: each BodyMatch type -------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(("fields", "body", "why"), [
    ({"type": "exact", "value": '{"a": 1}'}, b'{"a": 1}', None),
    ({"type": "exact", "value": '{"a": 1}'}, b'{"a":1}', "differs from the expected bytes"),
    ({"type": "exact", "value": "héllo"}, "héllo".encode(), None),
    ({"type": "exact", "value": "x"}, b"", "differs from the expected bytes"),
    ({"type": "exact", "value": ""}, b"", None),
    ({"value": "default is exact"}, b"default is exact", None),
    ({"type": "exact", "value": b64(b"\xff\x00\x01"), "encoding": "base64"}, b"\xff\x00\x01", None),
    ({"type": "exact", "value": b64(b"\xff\x00\x01"), "encoding": "base64"}, b"\xfe\x00\x01",
     "differs from the expected bytes"),
    ({"type": "exact", "value": b64(b"\xff\x00\x01"), "encoding": "base64"}, b64(b"\xff\x00\x01").encode(),
     "differs from the expected bytes"),
    ({"type": "contains", "value": "needle"}, b"hay needle stack", None),
    ({"type": "contains", "value": "needle"}, b"hay stack", "does not contain the expected text"),
    ({"type": "contains", "value": b64(b"\x00\xff"), "encoding": "base64"}, b"ab\x00\xffcd", None),
    ({"type": "contains", "value": b64(b"\x00\xff"), "encoding": "base64"}, b"ab\x00cd",
     "does not contain the expected text"),
], ids=["exact", "exact-whitespace-matters", "exact-unicode", "exact-vs-empty", "exact-empty", "exact-default-type",
        "base64", "base64-other-bytes", "base64-is-decoded", "contains", "contains-missing", "contains-base64",
        "contains-base64-missing"])
def test_byte_matches(fields: dict[str, Any], body: bytes, why: str | None) -> None:
    assert body_mismatch(body_match(**fields), body) == why


@pytest.mark.parametrize(("fields", "body", "why"), [
    ({"value": {"model": "gpt-4", "stream": True}}, b' { "stream" : true, "model" : "gpt-4" } ', None),
    ({"value": {"model": "gpt-4", "stream": True}}, b'{"model": "gpt-4", "stream": 1}', "differs at $.stream"),
    ({"value": {"model": "gpt-4"}}, b'{"model": "gpt-4", "user": "u1"}', "differs at $.user"),
    ({"value": {"model": "gpt-4"}, "ignore": ["$.user"]}, b'{"model": "gpt-4", "user": "u1"}', None),
    ({"value": {"model": "gpt-4", "user": "[REDACTED]"}, "ignore": ["$.user"]}, b'{"model": "gpt-4", "user": "u2"}',
     None),
    ({"value": {"model": "gpt-4", "user": "x"}, "ignore": ["$.user"]}, b'{"model": "gpt-4"}', None),
    ({"value": {"m": [{"at": 1, "v": "a"}, {"at": 2, "v": "b"}]}, "ignore": ["$.m[*].at"]},
     b'{"m": [{"at": 9, "v": "a"}, {"at": 8, "v": "b"}]}', None),
    ({"value": {"m": [{"at": 1, "v": "a"}]}, "ignore": ["$.m[*].at"]}, b'{"m": [{"at": 9, "v": "z"}]}',
     "differs at $.m[0].v"),
    ({"value": {"n": 1}}, b'{"n": 1.0}', None),
    ({"value": [1, 2]}, b"[1, 2, 3]", "differs at $[2]"),
    ({"value": None}, b"null", None),
    ({"value": {"a": 1}}, b"", "is not JSON"),
    ({"value": {"a": 1}}, b"a=1", "is not JSON"),
], ids=["order-and-whitespace", "true-vs-1", "extra-member", "ignored-member", "ignored-redacted-member",
        "ignored-member-missing", "ignored-wildcard", "wildcard-leaves-the-rest", "int-float", "list-length",
        "null", "empty-body", "form-body"])
def test_json_equal(fields: dict[str, Any], body: bytes, why: str | None) -> None:
    assert body_mismatch(body_match(type="jsonEqual", **fields), body) == why


@pytest.mark.parametrize(("fields", "body", "why"), [
    ({"path": "$.filter.kind"}, b'{"filter": {"kind": "book"}}', None),
    ({"path": "$.filter.kind"}, b'{"filter": {"kind": null}}', None),  # present, whatever its value
    ({"path": "$.filter.kind"}, b'{"filter": {}}', "has nothing at $.filter.kind"),
    ({"path": "$.filter.kind", "value": "book"}, b'{"filter": {"kind": "book"}}', None),
    ({"path": "$.filter.kind", "value": "book"}, b'{"filter": {"kind": "film"}}', "has another value at $.filter.kind"),
    ({"path": "$.filter.kind", "value": "book"}, b'{"other": 1}', "has nothing at $.filter.kind"),
    ({"path": "$.n", "value": 1}, b'{"n": 1.0}', None),
    ({"path": "$.n", "value": 1}, b'{"n": true}', "has another value at $.n"),
    ({"path": "$.n", "value": None}, b'{"n": null}', None),
    ({"path": "$.n", "value": None}, b'{"n": 0}', "has another value at $.n"),
    ({"path": "$.tags[*]", "value": "b"}, b'{"tags": ["a", "b"]}', None),
    ({"path": "$.o", "value": {"x": 1, "y": 2}}, b'{"o": {"y": 2, "x": 1}}', None),
    ({"path": "$.a"}, b"not json", "is not JSON"),
], ids=["exists", "exists-null", "missing", "value", "other-value", "missing-with-value", "int-float", "true-vs-1",
        "null-value", "null-vs-0", "any-of-several", "object-value", "not-json"])
def test_json_path(fields: dict[str, Any], body: bytes, why: str | None) -> None:
    assert body_mismatch(body_match(type="jsonPath", **fields), body) == why


@pytest.mark.parametrize(("fields", "body", "why"), [
    ({"type": "jsonPath", "path": "$.a"}, json.dumps('{"a": 1}').encode(), "has nothing at $.a"),
    ({"type": "jsonPath", "path": "$[0]", "value": 1}, b'"[1, 2]"', "has nothing at $[0]"),
    ({"type": "jsonPath", "path": "$.a"}, b'"{oops"', "has nothing at $.a"),
    ({"type": "jsonPath", "path": "$"}, b'"{oops"', None),
    ({"type": "jsonEqual", "value": {"a": 1}, "ignore": ["$.b"]}, b'"[oops"', "differs at $"),
    ({"type": "jsonEqual", "value": "[x", "ignore": ["$.b"]}, b'"[x"', None),
    ({"type": "jsonEqual", "value": "[x"}, b'"[x"', None),
], ids=["string-holding-an-object", "string-holding-a-list", "string-like-broken-json", "root-of-a-string",
        "ignore-with-a-string-body", "ignore-with-a-string-value", "string-equal"])
def test_a_json_string_is_a_string_not_a_document(fields: dict[str, Any], body: bytes, why: str | None) -> None:
    """The JSONPath library reads a Python ``str`` as JSON text; a decoded JSON string must still be
    searched as the string it is (and never raise)."""
    assert body_mismatch(body_match(**fields), body) == why


def test_ignoring_the_whole_document_accepts_any_json_body() -> None:
    match = body_match(type="jsonEqual", value={"a": 1}, ignore=["$"])
    assert body_mismatch(match, b'{"b": 2}') is None
    assert body_mismatch(match, b"not json") == "is not JSON"


@pytest.mark.parametrize("body", [deep_array(DEEP_LEVELS), deep_object(DEEP_LEVELS)], ids=["array", "object"])
@pytest.mark.parametrize("fields", [
    {"type": "jsonEqual", "value": {"a": 1}},
    {"type": "jsonEqual", "value": {"a": 1}, "ignore": ["$..a"]},
    {"type": "jsonPath", "path": "$.a"},
    {"type": "jsonPath", "path": "$..a", "value": 1},
], ids=["jsonEqual", "jsonEqual-ignore", "jsonPath", "jsonPath-recursive"])
def test_json_nested_too_deep_is_not_json_and_never_raises(fields: dict[str, Any], body: bytes) -> None:
    assert body_mismatch(body_match(**fields), body) == "is not JSON"
    matcher = HttpMatcher(method="POST", path="/deep", body=body_match(**fields))
    assert mismatch(matcher, request("POST", "/deep"), body) == ("body", "is not JSON")


def test_byte_matches_do_not_parse_a_deep_body() -> None:
    body = deep_array(DEEP_LEVELS)
    assert body_mismatch(body_match(type="contains", value="[[[]]]"), body) is None
    assert body_mismatch(body_match(type="exact", value=body.decode()), body) is None


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"type": "jsonPath"}, "a jsonPath body match needs path"),
    ({"type": "jsonPath", "path": "filter.kind"}, "starts with '$'"),
    ({"type": "jsonEqual"}, "a jsonEqual body match needs a value"),
    ({"type": "exact", "value": {"a": 1}}, "exact body match needs a string value"),
    ({"type": "contains"}, "contains body match needs a string value"),
    ({"type": "exact", "value": "not base64!", "encoding": "base64"}, "not valid base64"),
    ({"type": "jsonEqual", "value": "eA==", "encoding": "base64"}, "exact and contains"),
    ({"type": "jsonEqual", "value": {}, "ignore": ["$.[["]}, "ignore[0]"),
    ({"type": "regex", "value": "x"}, "type"),
], ids=["jsonPath-without-path", "jsonPath-not-a-path", "jsonEqual-without-value", "exact-not-a-string",
        "contains-without-value", "bad-base64", "base64-jsonEqual", "bad-ignore-path", "unknown-type"])
def test_invalid_body_matchers_are_config_errors(fields: dict[str, Any], fragment: str) -> None:
    raw = {"id": "bad", "type": "http", "http": {"matcher": {"path": "/x", "body": fields}, "response": {}}}
    with pytest.raises(ConfigError, match=r"http\.matcher\.body") as error:
        parse_mock(raw, "mock 'bad'")
    assert fragment in str(error.value)


# --- mismatch: the first field that differs ---------------------------------------------------------

FULL = HttpMatcher(method="post", path="/v1/chat", query={"model": "gpt-4"}, headers={"X-Env": "test"},
                   body=BodyMatch(type="jsonEqual", value={"stream": True}))
MATCHING_TARGET = "/v1/chat?model=gpt-4"
MATCHING_HEADERS = {"x-env": "test"}  # header names are compared case-insensitively
MATCHING_BODY = b'{"stream": true}'


@pytest.mark.parametrize(("method", "target", "headers", "body", "expected"), [
    ("GET", "/other?model=x", {}, b"{}", ("method", "is GET, not POST")),
    ("POST", "/other?model=x", {}, b"{}", ("path", "is /other, not /v1/chat")),
    ("POST", "/v1/chat?model=x", {}, b"{}", ("query", "model is 'x', not 'gpt-4'")),
    ("POST", "/v1/chat", {}, b"{}", ("query", "model is None, not 'gpt-4'")),
    ("POST", MATCHING_TARGET, {"X-Env": "prod"}, b"{}", ("headers", "X-Env is 'prod', not 'test'")),
    ("POST", MATCHING_TARGET, {}, b"{}", ("headers", "X-Env is None, not 'test'")),
    ("POST", MATCHING_TARGET, MATCHING_HEADERS, b'{"stream": false}', ("body", "differs at $.stream")),
    ("POST", MATCHING_TARGET, MATCHING_HEADERS, None, ("body", "is not JSON")),
    ("POST", MATCHING_TARGET, MATCHING_HEADERS, MATCHING_BODY, None),
    ("POST", MATCHING_TARGET + "&extra=1", MATCHING_HEADERS, MATCHING_BODY, None),  # unlisted parameters pass
], ids=["method", "path", "query-value", "query-missing", "header-value", "header-missing", "body", "no-body",
        "match", "extra-query"])
def test_mismatch_names_the_first_differing_field_in_order(method: str, target: str, headers: dict[str, str],
                                                           body: bytes | None,
                                                           expected: tuple[str, str] | None) -> None:
    assert mismatch(FULL, request(method, target, headers), body) == expected


def test_skip_body_asks_about_the_other_fields_only() -> None:
    ready = request("POST", MATCHING_TARGET, MATCHING_HEADERS)
    assert mismatch(FULL, ready, b"not json", skip_body=True) is None
    assert mismatch(FULL, request("PUT", MATCHING_TARGET, MATCHING_HEADERS), None, skip_body=True) == (
        "method", "is PUT, not POST")


def test_a_matcher_without_body_ignores_the_body() -> None:
    matcher = HttpMatcher(method="POST", path="/v1/chat")
    assert mismatch(matcher, request("POST", "/v1/chat"), b"\xff anything") is None


@pytest.mark.parametrize(("match_on", "method", "target", "headers", "body", "expected"), [
    (["path"], "GET", "/v1/chat", {}, b"nope", None),
    (["path"], "GET", "/v1/other", {}, b"nope", ("path", "is /v1/other, not /v1/chat")),
    (["path", "body"], "GET", "/v1/chat", {}, b"nope", ("body", "is not JSON")),
    (["path", "body"], "GET", "/v1/chat", {}, MATCHING_BODY, None),
    (["method", "path"], "POST", "/v1/chat", {}, None, None),
    (["query"], "DELETE", "/anywhere?model=gpt-4", {}, None, None),
    (["query"], "DELETE", "/anywhere?model=small", {}, None, ("query", "model is 'small', not 'gpt-4'")),
    (["headers"], "GET", "/", {"X-Env": "test"}, None, None),
    ([], "GET", "/", {}, None, None),
], ids=["path-only", "path-only-other-path", "path-and-body", "path-and-body-match", "method-and-path", "query-only",
        "query-only-other-value", "headers-only", "nothing"])
def test_match_on_limits_the_fields_compared(match_on: list[str], method: str, target: str,
                                             headers: dict[str, str], body: bytes | None,
                                             expected: tuple[str, str] | None) -> None:
    matcher = msgspec.structs.replace(FULL, match_on=match_on)
    assert mismatch(matcher, request(method, target, headers), body) == expected


@pytest.mark.parametrize(("target", "expected"), [
    ("/search?q=books", None),
    ("/search?q=books&cb=1700000000", None),
    ("/search?q=books&cb=other&token=abc", None),
    ("/search?cb=1", ("query", "q is None, not 'books'")),
    ("/search?q=films&cb=1", ("query", "q is 'films', not 'books'")),
], ids=["without-ignored", "with-ignored", "ignored-other-values", "missing", "other-value"])
def test_ignore_query_leaves_those_parameters_out(target: str, expected: tuple[str, str] | None) -> None:
    matcher = HttpMatcher(path="/search", query={"q": "books", "cb": "123", "token": "[REDACTED]"},
                          ignore_query=["cb", "token"])
    assert mismatch(matcher, request("GET", target), None) == expected


def test_path_pattern_mismatch_is_a_path_difference() -> None:
    matcher = HttpMatcher(path_pattern="/users/[0-9]+")
    assert mismatch(matcher, request("GET", "/users/42"), None) is None
    assert mismatch(matcher, request("GET", "/users/ana"), None) == ("path", "is /users/ana, not /users/[0-9]+")
