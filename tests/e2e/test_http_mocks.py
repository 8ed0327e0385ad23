"""HTTP mocks, black-box: a real ``mockd serve`` reached over 127.0.0.1 with ``http.client``.

Contract: docs/config.md, "HTTP mocks" (matcher: method, exact ``path`` or full-match ``pathPattern``,
headers with case-insensitive names, query; first match wins; ``enabled: false`` skipped; response
status, headers, string or JSON body, ``delayMs``) and the config file at its top (unmatched → 404 JSON
naming method and path).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from processes import MockdFactory, RunningMockd
from configs import mocks_config
from httpclient import Reply, send
TIMING_FLOOR = 0.020  # a delay may look up to 20 ms short because of clock granularity
TIMING_SLACK = 0.600  # generous: a noisy 2-core machine, plus connect and request parsing


def http_mock(mock_id: str, matcher: dict[str, Any], response: dict[str, Any] | None = None,
              **extra: Any) -> dict[str, Any]:
    """An HTTP mock whose default response body is its own id (so a test can tell which one answered)."""
    return {"id": mock_id, "type": "http", **extra,
            "http": {"matcher": matcher, "response": response if response is not None else {"body": mock_id}}}


JSON_BODIES: list[Any] = [
    {"a": 1, "b": [1, 2, 3], "c": {"d": None, "e": True}},
    [1, "two", 3.5, False, None],
    {"msg": "hi there", "nested": {"list": [], "obj": {}}},
    42,
    True,
]

MOCKS: list[dict[str, Any]] = [
    # method matching
    http_mock("method-get", {"method": "GET", "path": "/method"}),
    http_mock("method-post", {"method": "POST", "path": "/method"}),
    http_mock("method-delete", {"method": "DELETE", "path": "/method"}),
    http_mock("method-any", {"path": "/any-method"}),
    # exact path
    http_mock("exact", {"method": "GET", "path": "/exact/path"}),
    # pathPattern: a regex that must match the whole path
    http_mock("pattern", {"method": "GET", "pathPattern": "/users/[0-9]+"}),
    http_mock("pattern-alt", {"pathPattern": "/(cats|dogs)/[a-z]+"}),
    # headers (names compared case-insensitively)
    http_mock("header", {"method": "GET", "path": "/headers", "headers": {"X-Env": "test"}}),
    http_mock("header-lower", {"method": "GET", "path": "/headers-lower", "headers": {"x-lower-name": "v"}}),
    http_mock("header-two", {"method": "GET", "path": "/headers-two",
                             "headers": {"X-One": "1", "X-Two": "2"}}),
    # query
    http_mock("query", {"method": "GET", "path": "/query", "query": {"q": "1"}}),
    http_mock("query-two", {"method": "GET", "path": "/query-two", "query": {"a": "1", "b": "x y"}}),
    # first match wins
    http_mock("first-a", {"method": "GET", "path": "/first"}),
    http_mock("first-b", {"method": "GET", "path": "/first"}),
    http_mock("overlap-pattern", {"method": "GET", "pathPattern": "/overlap/.*"}),
    http_mock("overlap-exact", {"method": "GET", "path": "/overlap/x"}),
    http_mock("general", {"method": "GET", "path": "/specific"}),
    http_mock("specific-header", {"method": "GET", "path": "/specific", "headers": {"X-Env": "test"}}),
    http_mock("fallback-header", {"method": "GET", "path": "/fallback", "headers": {"X-Env": "test"}}),
    http_mock("fallback-general", {"method": "GET", "path": "/fallback"}),
    # disabled mocks are skipped
    http_mock("disabled", {"method": "GET", "path": "/disabled"}, enabled=False),
    http_mock("enabled", {"method": "GET", "path": "/disabled"}),
    http_mock("disabled-only", {"method": "GET", "path": "/disabled-only"}, enabled=False),
    # responses
    http_mock("custom", {"method": "GET", "path": "/custom"},
              {"statusCode": 201, "headers": {"X-Custom": "yes", "Content-Type": "text/csv"},
               "body": "a,b\n1,2\n"}),
    http_mock("string-json", {"method": "GET", "path": "/string-json"},
              {"statusCode": 200, "headers": {"Content-Type": "application/json"},
               "body": "{\"msg\": \"hi\",  \"spaced\" : true}"}),
    http_mock("teapot", {"method": "GET", "path": "/teapot"}, {"statusCode": 418, "body": "short and stout"}),
    http_mock("server-error", {"method": "GET", "path": "/server-error"},
              {"statusCode": 503, "headers": {"Retry-After": "7"}, "body": {"error": "down"}}),
    http_mock("no-content", {"method": "DELETE", "path": "/no-content"}, {"statusCode": 204}),
    http_mock("json-vendor", {"method": "GET", "path": "/json-vendor"},
              {"headers": {"Content-Type": "application/vnd.api+json"}, "body": {"data": []}}),
    http_mock("unicode", {"method": "GET", "path": "/unicode"},
              {"body": {"greeting": "héllo wörld ✓", "n": [1, 2]}}),
    *(http_mock(f"json-{index}", {"method": "GET", "path": f"/json/{index}"}, {"body": body})
      for index, body in enumerate(JSON_BODIES)),
    # delays
    http_mock("delay", {"method": "GET", "path": "/delay"}, {"body": "late", "delayMs": 400}),
    http_mock("no-delay", {"method": "GET", "path": "/no-delay"}, {"body": "prompt", "delayMs": 0}),
]


@pytest.fixture(scope="module")
def server(mockd_module: MockdFactory) -> Iterator[RunningMockd]:
    yield mockd_module.start(mocks_config(*MOCKS))


def answered_by(reply: Reply) -> str | None:
    """Which mock answered (its id is the default body), or None for the 404 of an unmatched request."""
    if reply.status == 404:
        return None
    assert reply.status == 200, (reply.status, reply.body)
    return reply.text


# --- matching -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "target", "expected"), [
    ("GET", "/method", "method-get"),
    ("POST", "/method", "method-post"),
    ("DELETE", "/method", "method-delete"),
    ("PUT", "/method", None),
    ("PATCH", "/method", None),
    ("GET", "/any-method", "method-any"),
    ("PUT", "/any-method", "method-any"),
    ("OPTIONS", "/any-method", "method-any"),
])
def test_method_matching(server: RunningMockd, method: str, target: str, expected: str | None) -> None:
    assert answered_by(send(server.mock_port, method, target)) == expected


def test_post_with_body_matches_post_mock(server: RunningMockd) -> None:
    reply = send(server.mock_port, "POST", "/method", {"Content-Type": "application/json"}, b'{"hello": "world"}')
    assert answered_by(reply) == "method-post"


@pytest.mark.parametrize(("target", "expected"), [
    ("/exact/path", "exact"),
    ("/exact/path?x=1", "exact"),  # the query string is not part of the path
    ("/exact/path/", None),
    ("/exact", None),
    ("/exact/path/extra", None),
    ("/exact/pat", None),
    ("/EXACT/path", None),
    ("/prefix/exact/path", None),
])
def test_exact_path(server: RunningMockd, target: str, expected: str | None) -> None:
    assert answered_by(send(server.mock_port, "GET", target)) == expected


@pytest.mark.parametrize(("method", "target", "expected"), [
    ("GET", "/users/42", "pattern"),
    ("GET", "/users/0", "pattern"),
    ("GET", "/users/42?expand=1", "pattern"),
    ("GET", "/users/abc", None),
    ("GET", "/users/", None),
    ("GET", "/users/42/posts", None),  # a full match, not a search
    ("GET", "/v1/users/42", None),
    ("POST", "/users/42", None),  # the method still applies
    ("GET", "/cats/tom", "pattern-alt"),
    ("PUT", "/dogs/rex", "pattern-alt"),
    ("GET", "/birds/tweety", None),
    ("GET", "/cats/Tom", None),
])
def test_path_pattern_is_a_full_regex_match(server: RunningMockd, method: str, target: str,
                                             expected: str | None) -> None:
    assert answered_by(send(server.mock_port, method, target)) == expected


@pytest.mark.parametrize(("target", "headers", "expected"), [
    ("/headers", {"X-Env": "test"}, "header"),
    ("/headers", {"x-env": "test"}, "header"),
    ("/headers", {"X-ENV": "test"}, "header"),
    ("/headers", {"X-Env": "test", "X-Other": "whatever"}, "header"),
    ("/headers", {}, None),
    ("/headers", {"X-Env": "prod"}, None),
    ("/headers", {"X-Envy": "test"}, None),
    ("/headers-lower", {"X-Lower-Name": "v"}, "header-lower"),
    ("/headers-lower", {"X-LOWER-NAME": "v"}, "header-lower"),
    ("/headers-lower", {"X-Lower-Name": "w"}, None),
    ("/headers-two", {"x-one": "1", "X-TWO": "2"}, "header-two"),
    ("/headers-two", {"X-One": "1"}, None),
    ("/headers-two", {"X-Two": "2"}, None),
])
def test_header_matching_with_case_insensitive_names(server: RunningMockd, target: str,
                                                     headers: dict[str, str], expected: str | None) -> None:
    assert answered_by(send(server.mock_port, "GET", target, headers)) == expected


@pytest.mark.parametrize(("target", "expected"), [
    ("/query?q=1", "query"),
    ("/query?other=2&q=1", "query"),  # extra parameters do not prevent a match
    ("/query?q=2", None),
    ("/query?q=", None),
    ("/query", None),
    ("/query?Q=1", None),
    ("/query-two?a=1&b=x%20y", "query-two"),
    ("/query-two?b=x+y&a=1", "query-two"),
    ("/query-two?a=1", None),
    ("/query-two?b=x%20y", None),
    ("/query-two?a=1&b=xy", None),
])
def test_query_matching(server: RunningMockd, target: str, expected: str | None) -> None:
    assert answered_by(send(server.mock_port, "GET", target)) == expected


@pytest.mark.parametrize(("target", "headers", "expected"), [
    ("/first", {}, "first-a"),
    ("/overlap/x", {}, "overlap-pattern"),  # the pattern comes first in the file
    ("/overlap/y", {}, "overlap-pattern"),
    ("/specific", {"X-Env": "test"}, "general"),  # the general mock comes first and also matches
    ("/fallback", {"X-Env": "test"}, "fallback-header"),
    ("/fallback", {"X-Env": "prod"}, "fallback-general"),
])
def test_first_match_wins(server: RunningMockd, target: str, headers: dict[str, str],
                          expected: str) -> None:
    assert answered_by(send(server.mock_port, "GET", target, headers)) == expected


@pytest.mark.parametrize(("target", "expected"), [
    ("/disabled", "enabled"),
    ("/disabled-only", None),
])
def test_disabled_mocks_are_skipped(server: RunningMockd, target: str, expected: str | None) -> None:
    assert answered_by(send(server.mock_port, "GET", target)) == expected


# --- responses ------------------------------------------------------------------------------------


def test_status_headers_and_string_body(server: RunningMockd) -> None:
    reply = send(server.mock_port, "GET", "/custom")
    assert reply.status == 201
    assert reply.headers["X-Custom"] == "yes"
    assert reply.headers["Content-Type"] == "text/csv"
    assert reply.body == b"a,b\n1,2\n"


def test_string_body_is_sent_as_is(server: RunningMockd) -> None:
    reply = send(server.mock_port, "GET", "/string-json")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body == b'{"msg": "hi",  "spaced" : true}'  # not re-serialised


@pytest.mark.parametrize(("target", "status", "body"), [
    ("/teapot", 418, b"short and stout"),
    ("/server-error", 503, b'{"error":"down"}'),
])
def test_status_codes(server: RunningMockd, target: str, status: int, body: bytes) -> None:
    reply = send(server.mock_port, "GET", target)
    assert reply.status == status
    assert reply.body == body


def test_configured_header_on_error_status(server: RunningMockd) -> None:
    reply = send(server.mock_port, "GET", "/server-error")
    assert reply.headers["Retry-After"] == "7"
    assert reply.headers["Content-Type"].startswith("application/json")


def test_no_content(server: RunningMockd) -> None:
    reply = send(server.mock_port, "DELETE", "/no-content")
    assert reply.status == 204
    assert reply.body == b""


@pytest.mark.parametrize("index", range(len(JSON_BODIES)))
def test_json_value_body_is_compact_json(server: RunningMockd, index: int) -> None:
    reply = send(server.mock_port, "GET", f"/json/{index}")
    assert reply.status == 200
    assert reply.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert reply.json() == JSON_BODIES[index]
    assert reply.body == json.dumps(JSON_BODIES[index], separators=(",", ":")).encode()


def test_json_body_with_non_ascii_text(server: RunningMockd) -> None:
    reply = send(server.mock_port, "GET", "/unicode")
    assert reply.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert reply.json() == {"greeting": "héllo wörld ✓", "n": [1, 2]}
    assert b"\n" not in reply.body and b", " not in reply.body and b'": ' not in reply.body


def test_configured_content_type_wins_over_json_default(server: RunningMockd) -> None:
    reply = send(server.mock_port, "GET", "/json-vendor")
    assert reply.headers.get_all("Content-Type") == ["application/vnd.api+json"]
    assert reply.body == b'{"data":[]}'


def test_delay_ms_is_a_lower_bound(server: RunningMockd) -> None:
    started = time.monotonic()
    reply = send(server.mock_port, "GET", "/delay")
    elapsed = time.monotonic() - started
    assert reply.body == b"late"
    assert 0.400 - TIMING_FLOOR <= elapsed <= 0.400 + TIMING_SLACK


def test_zero_delay_answers_promptly(server: RunningMockd) -> None:
    started = time.monotonic()
    reply = send(server.mock_port, "GET", "/no-delay")
    elapsed = time.monotonic() - started
    assert reply.body == b"prompt"
    assert elapsed < 0.350  # well below the 400 ms of the delayed mock


# --- unmatched requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "target", "path"), [
    ("GET", "/nothing/here", "/nothing/here"),
    ("POST", "/api/v1/chat", "/api/v1/chat"),
    ("DELETE", "/method/", "/method/"),
    ("PATCH", "/unknown?with=query", "/unknown"),
    ("PUT", "/method", "/method"),
])
def test_unmatched_request_is_404_json_naming_method_and_path(server: RunningMockd, method: str,
                                                              target: str, path: str) -> None:
    reply = send(server.mock_port, method, target)
    assert reply.status == 404
    assert reply.headers["Content-Type"].split(";")[0].strip() == "application/json"
    body = reply.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("message"), str)
    assert method in body["message"]
    assert path in body["message"]
