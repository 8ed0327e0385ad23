"""HTTP request matching over real sockets (docs/config.md, "HTTP mocks": matcher ``body``, ``matchOn``,
``ignoreQuery``; ``times``; the 404 that names the closest mock).

A hand-written config served by ``mockd serve``, reached over HTTP: body matchers pick between mocks on one
path, ``times`` hands over to a later mock, and a near miss is a 404 naming the closest mock and the field
that differed; a bad body matcher fails ``mockd serve`` with one line. The matcher itself is tested without
sockets in ``tests/unit/test_request_matching.py``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from processes import MockdFactory, RunningMockd, run_mockd
from configs import mocks_config, write_config
from httpclient import Reply, acall


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post_mock(mock_id: str, path: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A ``POST path`` mock with a body matcher, answering its own id."""
    return {"id": mock_id, "type": "http", **extra,
            "http": {"matcher": {"method": "POST", "path": path, "body": body}, "response": {"body": mock_id}}}


def get_mock(mock_id: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"id": mock_id, "type": "http", **extra,
            "http": {"matcher": {"method": "GET", "path": path}, "response": {"body": mock_id}}}


MATCHING_MOCKS = [
    post_mock("chat-gpt4", "/v1/chat", {"type": "jsonEqual", "value": {"model": "gpt-4", "stream": True},
                                        "ignore": ["$.user"]}),
    post_mock("chat-small", "/v1/chat", {"type": "jsonEqual", "value": {"model": "small", "stream": True}}),
    post_mock("search-contains", "/search", {"type": "contains", "value": "needle"}),
    post_mock("search-kind", "/search", {"type": "jsonPath", "path": "$.filter.kind", "value": "book"}),
    post_mock("upload", "/upload", {"type": "exact", "value": b64(b"\x89PNG\xff"), "encoding": "base64"}),
    get_mock("twice", "/times", times=2),
    get_mock("afterwards", "/times"),
    get_mock("once", "/once", times=1),
]


@pytest.fixture(scope="module")
def server(mockd_module: MockdFactory) -> RunningMockd:
    return mockd_module.start(mocks_config(*MATCHING_MOCKS))


async def post(server: RunningMockd, path: str, body: bytes) -> Reply:
    return await acall("POST", f"{server.mock_url}{path}", raw=body)


def answered_by(reply: Reply) -> str:
    assert reply.status == 200, (reply.status, reply.body)
    return reply.text


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/v1/chat", b'{"model": "gpt-4", "stream": true}', "chat-gpt4"),
    ("/v1/chat", b'{"stream":true,"model":"small"}', "chat-small"),
    ("/v1/chat", b'{"model": "gpt-4", "stream": true, "user": "ana"}', "chat-gpt4"),  # ignored member
    ("/search", b"find the needle please", "search-contains"),
    ("/search", b'{"filter": {"kind": "book", "page": 2}}', "search-kind"),
    ("/search", b'{"filter": {"kind": "book"}, "q": "needle"}', "search-contains"),  # first match wins
    ("/upload", b"\x89PNG\xff", "upload"),
], ids=["gpt4", "small-compact", "gpt4-ignored-user", "contains", "jsonPath", "first-match-wins", "base64"])
async def test_body_matchers_pick_the_mock(server: RunningMockd, path: str, body: bytes, expected: str) -> None:
    assert answered_by(await post(server, path, body)) == expected


async def test_times_hands_over_to_the_next_mock(server: RunningMockd) -> None:
    answers = [answered_by(await acall("GET", f"{server.mock_url}/times")) for _ in range(4)]
    assert answers == ["twice", "twice", "afterwards", "afterwards"]


def assert_near_miss(reply: Reply, mock_id: str, field: str, reason: str, method: str, path: str) -> None:
    assert reply.status == 404, (reply.status, reply.body)
    document = reply.json()
    assert document["error"] == "no_mock"
    assert document["closest"] == {"mock": mock_id, "method": method, "path": path, "field": field,
                                   "reason": reason}
    assert f"the closest is mock {mock_id!r}" in document["message"]
    subject = "it" if field == "times" else f"the request's {field}"
    assert document["message"].endswith(f"{subject} {reason}"), document["message"]


async def test_a_near_miss_names_the_closest_mock_and_the_body_difference(server: RunningMockd) -> None:
    reply = await post(server, "/v1/chat", b'{"model": "gpt-5", "stream": true}')
    # both chat mocks differ at the body; the first of them is named
    assert_near_miss(reply, "chat-gpt4", "body", "differs at $.model", "POST", "/v1/chat")
    assert reply.json()["message"].startswith("No mock matches POST /v1/chat")


async def test_a_near_miss_prefers_the_mock_that_got_furthest(server: RunningMockd) -> None:
    """On /search a GET differs from both POST mocks at the method, a POST at the body: the body wins."""
    assert_near_miss(await post(server, "/search", b"hay"), "search-contains", "body",
                     "does not contain the expected text", "POST", "/search")
    assert_near_miss(await acall("GET", f"{server.mock_url}/search"), "search-contains", "method",
                     "is GET, not POST", "POST", "/search")


async def test_a_used_up_mock_is_the_near_miss(server: RunningMockd) -> None:
    assert answered_by(await acall("GET", f"{server.mock_url}/once")) == "once"
    assert_near_miss(await acall("GET", f"{server.mock_url}/once"), "once", "times",
                     "has already served the 1 request(s) it may", "GET", "/once")


async def test_a_path_no_mock_serves_names_no_closest_mock(server: RunningMockd) -> None:
    """The 404 names a mock "on this path" only: mocks on other paths are no near miss, whichever of
    their fields the request differs in first (here the method of every POST mock)."""
    reply = await acall("GET", f"{server.mock_url}/nothing/here")
    assert reply.status == 404
    document = reply.json()
    assert document["error"] == "no_mock"
    assert "closest" not in document, document
    assert document["message"] == "No mock matches GET /nothing/here"


@pytest.mark.parametrize(("body", "fragment"), [
    ({"type": "jsonPath"}, "a jsonPath body match needs path"),
    ({"type": "jsonEqual"}, "a jsonEqual body match needs a value"),
    ({"type": "exact", "value": "%%%", "encoding": "base64"}, "not valid base64"),
    ({"type": "jsonEqual", "value": {}, "ignore": ["user"]}, "a JSONPath starts with '$'"),
], ids=["jsonPath-without-path", "jsonEqual-without-value", "bad-base64", "bad-ignore"])
def test_a_bad_body_matcher_fails_serve_with_one_line(tmp_path: Path, body: dict[str, Any], fragment: str) -> None:
    config = write_config(tmp_path, mocks_config(get_mock("fine", "/fine"), post_mock("bad", "/bad", body)))
    result = run_mockd("serve", "--config", str(config), "--port", "0", "--admin-port", "0",
                       "--data-dir", str(tmp_path / "data"), timeout=20)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0] and "mock 'bad' (mocks[1])" in lines[0] and "http.matcher.body" in lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


async def test_a_json_string_body_is_no_match_and_the_server_answers(server: RunningMockd) -> None:
    """A JSON body that is a string starting like a document is a string: no jsonPath or jsonEqual mock
    takes it, and the answer is the near-miss 404, not an error."""
    for body in (b'"{oops"', b'"[oops"', json.dumps('{"filter": {"kind": "book"}}').encode()):
        reply = await post(server, "/search", body)
        assert_near_miss(reply, "search-contains", "body", "does not contain the expected text", "POST", "/search")
    assert answered_by(await post(server, "/search", b'{"filter": {"kind": "book"}}')) == "search-kind"


async def test_a_body_too_large_to_compare_is_413_json(server: RunningMockd) -> None:
    """A mock on the path compares bodies, so the body is read for it — up to 1 MiB; a larger one is a
    clear 413, not a crash and not a silent mismatch."""
    reply = await post(server, "/v1/chat", b'{"model": "' + b"x" * (1024 * 1024) + b'"}')
    assert reply.status == 413, (reply.status, reply.body[:200])
    assert reply.json()["error"] == "payload_too_large"
    assert "1048576 bytes" in reply.json()["message"]
