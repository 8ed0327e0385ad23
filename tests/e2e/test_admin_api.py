"""The admin API over real HTTP, with clients independent of the server's stack (urllib, raw asyncio).

Covers docs/admin-api.md (``/health``, ``/mocks``, ``/openapi.json``, token auth, 1012 on replaced or
removed WebSocket mocks) and the fault rows R4/R6 of docs/faults.md (every error is ``{"error", "message"}``
JSON and documented, huge bodies get 413, hostile ids never escape as 5xx).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from processes import MockdFactory, RunningMockd
from configs import http_mock, mocks_config, ws_mock
from httpclient import Reply, acall, call
from upstreams import exchange, server_close

MAX_BODY = 16 * 1024 * 1024
TOKEN = "t0ken-for-tests"


# Deliberately not in alphabetical or any other natural order, and exercising most of the model.
CONFIG_MOCKS: list[dict[str, Any]] = [
    http_mock("zulu", "/zulu", {"who": "zulu"}),
    {"id": "alpha", "name": "Pattern and headers", "type": "http", "http": {
        "matcher": {"method": "POST", "pathPattern": "^/alpha/[0-9]+$", "headers": {"X-Env": "test"},
                    "query": {"q": "1"}},
        "response": {"statusCode": 201, "headers": {"X-Mock": "alpha"}, "body": "plain", "delayMs": 0}}},
    {"id": "mike", "type": "http", "enabled": False, "http": {
        "matcher": {"method": "GET", "path": "/events"},
        "sse": {"events": [{"type": "update", "data": {"n": 1}, "id": "1", "retry": 3000}, {"comment": "hi"}],
                "timing": {"initialDelay": 0, "fixedDelay": 10, "perEventDelays": [0, 5]},
                "lifecycle": {"keepaliveInterval": 15, "maxEvents": 0, "connectionTimeout": 0,
                              "termination": {"finalEvent": {"type": "close", "data": "bye"}}},
                "resume": {"enabled": True}}}},
    ws_mock("echo", "/ws/echo"),
    {"id": "bravo", "type": "websocket", "websocket": {
        "path": "/ws/chat", "subprotocols": ["chat.v1"], "maxMessageSize": 65536, "maxConnections": 10,
        "idleTimeout": "5m", "echoMode": False, "heartbeat": {"enabled": True, "interval": "30s", "timeout": "10s"},
        "matchers": [{"match": {"type": "json", "path": "$.type", "value": "ping"},
                      "response": {"type": "json", "value": {"type": "pong"}}},
                     {"match": {"type": "regex", "value": "^x+$"}, "noResponse": True}],
        "defaultResponse": {"type": "text", "value": "?{{message}}", "template": True},
        "scenario": {"name": "welcome", "loop": False, "steps": [
            {"type": "send", "message": {"type": "json", "value": {"type": "welcome"}, "delay": "10ms"}},
            {"type": "expect", "match": {"type": "contains", "value": "join"}, "timeout": "10s", "optional": True},
            {"type": "wait", "duration": "1ms"},
            {"type": "ping", "data": "aGk="},
            {"type": "close", "code": 4000, "reason": "done"}]}}},
    {"id": "yankee", "type": "proxy", "proxy": {"pathPrefix": "/proxied", "target": "http://127.0.0.1:9",
                                                "headers": {"X-Forwarded-By": "mockd"}, "stripPrefix": False}},
]
CONFIG_IDS = [mock["id"] for mock in CONFIG_MOCKS]


# --- a raw client for bodies the server may refuse before reading them whole -----------------------


async def raw_post(port: int, path: str, body: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` over a raw socket, reading the answer while still sending (the server may answer early)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())

    async def send() -> None:
        try:
            writer.write(body)
            await writer.drain()
        except ConnectionError:
            pass  # the server answered and closed before taking everything: fine

    sender = asyncio.create_task(send())
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), timeout)) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
        else:
            payload = await asyncio.wait_for(reader.read(), timeout)
        return status, headers, payload
    finally:
        sender.cancel()
        writer.close()


# --- a small JSON Schema checker (jsonschema is not installed in the venv) ---------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def schema_errors(value: Any, schema: dict[str, Any], document: dict[str, Any], where: str = "$") -> list[str]:
    """Errors of ``value`` against ``schema`` for the keywords the admin API's document uses."""
    errors: list[str] = []
    if "$ref" in schema:
        reference = schema["$ref"]
        assert reference.startswith("#/"), f"non-local $ref {reference}"
        target: Any = document
        for part in reference[2:].split("/"):
            assert part in target, f"dangling $ref {reference}"
            target = target[part]
        errors += schema_errors(value, target, document, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[name](value) for name in types):
            return [*errors, f"{where}: {value!r:.60} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r:.60} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r:.60} != {schema['const']!r}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: required key {key!r} missing")
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], document, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected key {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], document, f"{where}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], document, f"{where}[{index}]")
    for sub in schema.get("allOf", []):
        errors += schema_errors(value, sub, document, where)
    if "anyOf" in schema and all(schema_errors(value, sub, document, where) for sub in schema["anyOf"]):
        errors.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema:
        matching = sum(not schema_errors(value, sub, document, where) for sub in schema["oneOf"])
        if matching != 1:
            errors.append(f"{where}: matches {matching} of oneOf (needs exactly 1)")
    return errors


def test_schema_checker_rejects_what_it_should() -> None:
    """The checker itself can fail: a wrong type, a missing key and an extra key are all caught."""
    document = {"components": {"schemas": {"M": {"type": "object", "required": ["id"], "additionalProperties": False,
                                                 "properties": {"id": {"type": "string"}}}}}}
    schema = {"$ref": "#/components/schemas/M"}
    assert schema_errors({"id": "x"}, schema, document) == []
    assert schema_errors({"id": 1}, schema, document)
    assert schema_errors({}, schema, document)
    assert schema_errors({"id": "x", "other": 1}, schema, document)


def documented_schema(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}: {sorted(responses)}"
    return responses[str(status)]["content"]["application/json"]["schema"]


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def no_token_from_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module-wide, so that the module-scoped servers do not pick up a token or user settings either."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MOCKD_ADMIN_TOKEN", raising=False)
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
        yield


@pytest.fixture(scope="module")
def shared(mockd_module: MockdFactory) -> RunningMockd:
    """One server for the tests that do not change its mocks."""
    return mockd_module.start(mocks_config(*CONFIG_MOCKS))


@pytest.fixture(scope="module")
def secured(mockd_module: MockdFactory) -> RunningMockd:
    return mockd_module.start(mocks_config(*CONFIG_MOCKS), "--admin-token", TOKEN)


@pytest.fixture(scope="module")
def openapi(shared: RunningMockd) -> dict[str, Any]:
    reply = call("GET", f"{shared.admin_url}/openapi.json")
    assert reply.status == 200
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    document: dict[str, Any] = reply.json()
    return document


@pytest.fixture
def server(mockd: MockdFactory) -> Iterator[RunningMockd]:
    """A fresh server for tests that add, replace or remove mocks."""
    yield mockd.start(mocks_config(*CONFIG_MOCKS))


def assert_error_body(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body[:300]!r}"
    assert reply.headers.get("Content-Type", "").startswith("application/json"), reply.headers
    body = json.loads(reply.body)
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


# --- /health and GET /mocks ----------------------------------------------------------------------------


def test_health_is_ok_json(shared: RunningMockd) -> None:
    reply = call("GET", f"{shared.admin_url}/health")
    assert reply.status == 200
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    assert reply.json().get("status") == "ok"


def test_list_mocks_in_file_order(shared: RunningMockd) -> None:
    reply = call("GET", f"{shared.admin_url}/mocks")
    assert reply.status == 200
    body = reply.json()
    assert set(body) == {"mocks"}
    assert [mock["id"] for mock in body["mocks"]] == CONFIG_IDS
    assert body["mocks"][0]["type"] == "http" and body["mocks"][3]["type"] == "websocket"
    assert body["mocks"][0]["http"]["matcher"]["path"] == "/zulu"
    assert body["mocks"][2].get("enabled") is False


def test_get_one_mock(shared: RunningMockd) -> None:
    reply = call("GET", f"{shared.admin_url}/mocks/bravo")
    assert reply.status == 200
    mock = reply.json()
    assert mock["id"] == "bravo" and mock["type"] == "websocket"
    assert mock["websocket"]["path"] == "/ws/chat"
    assert mock["websocket"]["subprotocols"] == ["chat.v1"]


@pytest.mark.parametrize("mock_id", ["no-such-mock", "../../etc/passwd", "%2e%2e", "..", "x" * 2000],
                         ids=["unknown", "traversal", "encoded-dots", "dot-dot", "2k-id"])
def test_unknown_or_hostile_id_is_404_json(shared: RunningMockd, mock_id: str) -> None:
    url = f"{shared.admin_url}/mocks/{urllib.parse.quote(mock_id, safe='')}"
    assert_error_body(call("GET", url), 404)
    assert_error_body(call("DELETE", url), 404)


def test_ten_kilobyte_id_is_a_json_4xx(shared: RunningMockd) -> None:
    """R6: a 10 kB id gets 400/404/413 (or 414), as JSON, never a 5xx or a bare text page."""
    reply = call("GET", f"{shared.admin_url}/mocks/{'y' * 10_000}")
    assert reply.status in (400, 404, 413, 414), reply.status
    assert_error_body(reply, reply.status)


# --- POST /mocks --------------------------------------------------------------------------------------


def test_post_without_id_creates_one_that_serves_immediately(server: RunningMockd) -> None:
    new = {"type": "http", "http": {"matcher": {"method": "GET", "path": "/fresh"},
                                    "response": {"statusCode": 202, "body": {"fresh": True}}}}
    reply = call("POST", f"{server.admin_url}/mocks", new)
    assert reply.status == 201
    created = reply.json()
    assert isinstance(created.get("id"), str) and created["id"]
    assert created["http"]["matcher"]["path"] == "/fresh"

    served = call("GET", f"{server.mock_url}/fresh")
    assert served.status == 202 and served.json() == {"fresh": True}

    assert call("GET", f"{server.admin_url}/mocks/{created['id']}").json()["id"] == created["id"]
    listed = [mock["id"] for mock in call("GET", f"{server.admin_url}/mocks").json()["mocks"]]
    assert listed == [*CONFIG_IDS, created["id"]]


def test_two_posts_without_id_get_distinct_ids(server: RunningMockd) -> None:
    new = {"type": "websocket", "websocket": {"path": "/ws/anon"}}
    first = call("POST", f"{server.admin_url}/mocks", new).json()["id"]
    second = call("POST", f"{server.admin_url}/mocks", new).json()["id"]
    assert first != second


def test_post_with_new_id_is_201_and_keeps_the_id(server: RunningMockd) -> None:
    reply = call("POST", f"{server.admin_url}/mocks", http_mock("added", "/added", "yes"))
    assert reply.status == 201
    assert reply.json()["id"] == "added"
    assert call("GET", f"{server.mock_url}/added").body == b"yes"


def test_post_with_existing_id_replaces_it(server: RunningMockd) -> None:
    assert call("GET", f"{server.mock_url}/zulu").json() == {"who": "zulu"}
    reply = call("POST", f"{server.admin_url}/mocks", http_mock("zulu", "/zulu", {"who": "replaced"}))
    assert reply.status == 200
    assert reply.json()["id"] == "zulu"
    assert call("GET", f"{server.mock_url}/zulu").json() == {"who": "replaced"}
    listed = [mock["id"] for mock in call("GET", f"{server.admin_url}/mocks").json()["mocks"]]
    assert sorted(listed) == sorted(CONFIG_IDS)  # replaced, not added


async def open_echo(server: RunningMockd, path: str) -> ClientConnection:
    ws = await connect(server.ws_url(path), open_timeout=10)
    assert await exchange(ws, "hello?", 10) == "hello?"
    return ws


async def close_code_of(ws: ClientConnection) -> int:
    """The code of the close frame that ends ``ws``, with no message before it."""
    messages, close = await server_close(ws, 10)
    assert messages == []
    return close.code


async def test_replacing_a_websocket_mock_closes_its_connections_with_1012(server: RunningMockd) -> None:
    ws = await open_echo(server, "/ws/echo")
    try:
        reply = await acall("POST", f"{server.admin_url}/mocks", ws_mock("echo", "/ws/echo"))
        assert reply.status == 200
        assert await close_code_of(ws) == 1012
    finally:
        await ws.close()
    # the replacement serves new connections
    again = await open_echo(server, "/ws/echo")
    await again.close()


async def test_deleting_a_websocket_mock_closes_its_connections_with_1012(server: RunningMockd) -> None:
    ws = await open_echo(server, "/ws/echo")
    try:
        reply = await acall("DELETE", f"{server.admin_url}/mocks/echo")
        assert reply.status == 204
        assert reply.body == b""
        assert await close_code_of(ws) == 1012
    finally:
        await ws.close()
    assert_error_body(await acall("GET", f"{server.admin_url}/mocks/echo"), 404)
    # the path no longer upgrades: the handshake is refused with 404
    with pytest.raises(Exception) as refused:
        await connect(server.ws_url("/ws/echo"), open_timeout=10)
    assert "404" in str(refused.value)


async def test_other_websocket_mocks_keep_their_connections(server: RunningMockd) -> None:
    await acall("POST", f"{server.admin_url}/mocks", ws_mock("other", "/ws/other"))
    other = await open_echo(server, "/ws/other")
    doomed = await open_echo(server, "/ws/echo")
    try:
        assert (await acall("DELETE", f"{server.admin_url}/mocks/echo")).status == 204
        assert await close_code_of(doomed) == 1012
        assert await exchange(other, "still here", 10) == "still here"
    finally:
        await other.close()
        await doomed.close()


def test_delete_http_mock_then_its_path_is_404(server: RunningMockd) -> None:
    assert call("GET", f"{server.mock_url}/zulu").status == 200
    reply = call("DELETE", f"{server.admin_url}/mocks/zulu")
    assert reply.status == 204
    assert call("GET", f"{server.mock_url}/zulu").status == 404
    assert_error_body(call("GET", f"{server.admin_url}/mocks/zulu"), 404)
    assert_error_body(call("DELETE", f"{server.admin_url}/mocks/zulu"), 404)
    listed = [mock["id"] for mock in call("GET", f"{server.admin_url}/mocks").json()["mocks"]]
    assert listed == [mock_id for mock_id in CONFIG_IDS if mock_id != "zulu"]


# --- errors ---------------------------------------------------------------------------------------------


def test_invalid_json_body_is_400_invalid_json(shared: RunningMockd) -> None:
    body = assert_error_body(call("POST", f"{shared.admin_url}/mocks", raw=b'{"type": "http", '), 400)
    assert body["error"] == "invalid_json"


INVALID_MOCKS: list[Any] = [
    pytest.param({"id": "bad", "type": "http", "http": {"matcher": {"method": "GET", "path": "/b"},
                                                        "response": {"statusCode": "abc"}}},
                 "statusCode", id="wrong-type"),
    pytest.param({"id": "bad", "type": "http", "http": {"matcher": {"method": "GET", "pathPattern": "("},
                                                        "response": {"statusCode": 200}}},
                 "pathPattern", id="invalid-regex"),
    pytest.param({"id": "bad", "type": "websocket", "websocket": {"path": "/w", "idleTimeout": "5 parsecs"}},
                 "idleTimeout", id="bad-duration"),
    pytest.param({"id": "bad", "type": "http", "colour": "blue",
                  "http": {"matcher": {"path": "/b"}, "response": {}}}, "colour", id="unknown-field"),
    pytest.param({"id": "bad", "type": "teleport"}, "type", id="unknown-type"),
    pytest.param([1, 2, 3], "", id="not-an-object"),
]


@pytest.mark.parametrize(("mock", "field"), INVALID_MOCKS)
def test_invalid_mock_is_400_naming_the_field(shared: RunningMockd, mock: Any, field: str) -> None:
    body = assert_error_body(call("POST", f"{shared.admin_url}/mocks", mock), 400)
    assert field in body["message"], body
    assert call("GET", f"{shared.admin_url}/mocks/bad").status == 404  # nothing was stored


async def test_body_over_16_mib_is_413_json(shared: RunningMockd) -> None:
    head = b'{"type": "http", "id": "huge", "name": "'
    tail = b'", "http": {"matcher": {"path": "/huge"}, "response": {"statusCode": 200}}}'
    body = head + b"x" * (MAX_BODY + 1 - len(head) - len(tail)) + tail
    assert len(body) == MAX_BODY + 1
    status, headers, payload = await raw_post(shared.admin_port, "/mocks", body)
    assert status == 413, payload[:300]
    assert headers.get("content-type", "").startswith("application/json")
    error = json.loads(payload)
    assert isinstance(error.get("error"), str) and isinstance(error.get("message"), str)
    assert (await acall("GET", f"{shared.admin_url}/mocks/huge")).status == 404


def test_body_of_one_mib_is_accepted(server: RunningMockd) -> None:
    big = "b" * (1024 * 1024)
    reply = call("POST", f"{server.admin_url}/mocks", http_mock("big", "/big", big))
    assert reply.status == 201
    assert call("GET", f"{server.mock_url}/big").body == big.encode()


ERROR_CASES: list[Any] = [
    pytest.param("GET", "/mocks/nope", None, 404, id="unknown-id"),
    pytest.param("DELETE", "/mocks/nope", None, 404, id="delete-unknown-id"),
    pytest.param("POST", "/mocks", b"not json at all", 400, id="invalid-json"),
    pytest.param("POST", "/mocks", b'{"type": "http"}', 400, id="invalid-mock"),
    pytest.param("GET", "/no-such-route", None, 404, id="unknown-route"),
    pytest.param("PUT", "/mocks", b"{}", 405, id="wrong-method"),
]


@pytest.mark.parametrize(("method", "path", "raw", "status"), ERROR_CASES)
def test_every_error_is_error_and_message_json(shared: RunningMockd, method: str, path: str,
                                               raw: bytes | None, status: int) -> None:
    assert_error_body(call(method, f"{shared.admin_url}{path}", raw=raw), status)


# --- token auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "status"), [
    pytest.param({}, 401, id="no-token"),
    pytest.param({"Authorization": f"Bearer {TOKEN}"}, 200, id="bearer"),
    pytest.param({"X-API-Key": TOKEN}, 200, id="api-key"),
    pytest.param({"Authorization": "Bearer wrong"}, 401, id="wrong-bearer"),
    pytest.param({"X-API-Key": "wrong"}, 401, id="wrong-api-key"),
    pytest.param({"Authorization": TOKEN}, 401, id="token-without-bearer"),
    pytest.param({"Authorization": f"Bearer {TOKEN}x"}, 401, id="token-prefix-only"),
])
def test_token_guards_get_mocks(secured: RunningMockd, headers: dict[str, str], status: int) -> None:
    reply = call("GET", f"{secured.admin_url}/mocks", headers=headers)
    if status == 401:
        assert_error_body(reply, 401)
    else:
        assert reply.status == 200
        assert [mock["id"] for mock in reply.json()["mocks"]] == CONFIG_IDS


def test_health_needs_no_token(secured: RunningMockd) -> None:
    reply = call("GET", f"{secured.admin_url}/health")
    assert reply.status == 200 and reply.json()["status"] == "ok"


@pytest.mark.parametrize(("method", "path", "body"), [
    pytest.param("GET", "/openapi.json", None, id="openapi"),
    pytest.param("GET", "/mocks/zulu", None, id="get-one"),
    pytest.param("POST", "/mocks", http_mock("intruder", "/intruder", "x"), id="post"),
    pytest.param("DELETE", "/mocks/zulu", None, id="delete"),
])
def test_token_guards_every_other_route(secured: RunningMockd, method: str, path: str, body: Any) -> None:
    assert_error_body(call(method, f"{secured.admin_url}{path}", body), 401)
    # nothing changed behind the refused requests
    listed = call("GET", f"{secured.admin_url}/mocks", headers={"X-API-Key": TOKEN}).json()["mocks"]
    assert [mock["id"] for mock in listed] == CONFIG_IDS


def test_token_allows_writes(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(*CONFIG_MOCKS), "--admin-token", TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert call("POST", f"{server.admin_url}/mocks", http_mock("new", "/new", "n"), headers=auth).status == 201
    assert call("DELETE", f"{server.admin_url}/mocks/new", headers={"X-API-Key": TOKEN}).status == 204


def test_token_from_environment(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(*CONFIG_MOCKS), env={"MOCKD_ADMIN_TOKEN": "env-token"})
    assert_error_body(call("GET", f"{server.admin_url}/mocks"), 401)
    assert call("GET", f"{server.admin_url}/mocks", headers={"Authorization": "Bearer env-token"}).status == 200


# --- /openapi.json -------------------------------------------------------------------------------------


def test_openapi_is_version_3(openapi: dict[str, Any]) -> None:
    assert str(openapi.get("openapi", "")).startswith("3.")
    assert isinstance(openapi.get("info", {}).get("title"), str)
    assert isinstance(openapi.get("paths"), dict)


@pytest.mark.parametrize(("path", "method"), [("/health", "get"), ("/openapi.json", "get"), ("/mocks", "get"),
                                              ("/mocks", "post"), ("/mocks/{id}", "get"), ("/mocks/{id}", "delete")])
def test_openapi_documents_route(openapi: dict[str, Any], path: str, method: str) -> None:
    operation = openapi["paths"].get(path, {}).get(method)
    assert isinstance(operation, dict), f"{method.upper()} {path} is not documented"
    assert operation.get("responses"), f"{method.upper()} {path} documents no responses"


@pytest.mark.parametrize(("path", "method", "statuses"), [
    ("/mocks", "get", {200}),
    ("/mocks", "post", {200, 201, 400, 413}),
    ("/mocks/{id}", "get", {200, 404}),
    ("/mocks/{id}", "delete", {204, 404}),
])
def test_openapi_documents_every_status_a_route_returns(openapi: dict[str, Any], path: str, method: str,
                                                        statuses: set[int]) -> None:
    documented = {int(status) for status in openapi["paths"][path][method]["responses"] if status.isdigit()}
    assert statuses <= documented, f"{method.upper()} {path}: undocumented {sorted(statuses - documented)}"


def test_openapi_path_parameter_is_documented(openapi: dict[str, Any]) -> None:
    for method in ("get", "delete"):
        operation = openapi["paths"]["/mocks/{id}"][method]
        parameters = operation.get("parameters", []) + openapi["paths"]["/mocks/{id}"].get("parameters", [])
        assert any(p.get("name") == "id" and p.get("in") == "path" and p.get("required") for p in parameters)


def test_openapi_documents_the_token(openapi: dict[str, Any]) -> None:
    schemes = openapi.get("components", {}).get("securitySchemes", {}).values()
    assert any(s.get("type") == "http" and s.get("scheme", "").lower() == "bearer" for s in schemes)
    assert any(s.get("type") == "apiKey" and s.get("in") == "header" and s.get("name", "").lower() == "x-api-key"
               for s in schemes)


def test_documented_schemas_validate_the_real_mock_list(shared: RunningMockd, openapi: dict[str, Any]) -> None:
    listing = call("GET", f"{shared.admin_url}/mocks").json()
    schema = documented_schema(openapi, "/mocks", "get", 200)
    assert schema_errors(listing, schema, openapi) == []
    items = listing["mocks"]
    assert {mock["type"] for mock in items} == {"http", "websocket", "proxy"}
    item_schema = schema.get("properties", {}).get("mocks", {}).get("items")
    assert isinstance(item_schema, dict), f"GET /mocks does not document its items: {schema}"
    for mock in items:
        assert schema_errors(mock, item_schema, openapi) == [], f"{mock['type']} mock {mock['id']!r}"
    # the schema is not vacuous: a broken item is rejected
    broken = {"mocks": [{**items[0], "http": {"matcher": {"path": 42}}}]}
    assert schema_errors(broken, schema, openapi)


@pytest.mark.parametrize("mock_id", CONFIG_IDS)
def test_documented_schema_validates_get_one_mock(shared: RunningMockd, openapi: dict[str, Any],
                                                  mock_id: str) -> None:
    one = call("GET", f"{shared.admin_url}/mocks/{mock_id}")
    assert one.status == 200
    assert schema_errors(one.json(), documented_schema(openapi, "/mocks/{id}", "get", 200), openapi) == []


def test_documented_schemas_validate_post_answers(server: RunningMockd, openapi: dict[str, Any]) -> None:
    created = call("POST", f"{server.admin_url}/mocks", http_mock("schema-new", "/s", [1, 2]))
    assert created.status == 201
    assert schema_errors(created.json(), documented_schema(openapi, "/mocks", "post", 201), openapi) == []
    replaced = call("POST", f"{server.admin_url}/mocks", http_mock("schema-new", "/s", None))
    assert replaced.status == 200
    assert schema_errors(replaced.json(), documented_schema(openapi, "/mocks", "post", 200), openapi) == []


@pytest.mark.parametrize(("method", "path", "doc_path", "raw", "status"), [
    pytest.param("GET", "/mocks/nope", "/mocks/{id}", None, 404, id="get-404"),
    pytest.param("DELETE", "/mocks/nope", "/mocks/{id}", None, 404, id="delete-404"),
    pytest.param("POST", "/mocks", "/mocks", b"{", 400, id="post-400-json"),
    pytest.param("POST", "/mocks", "/mocks", b'{"type": "http"}', 400, id="post-400-mock"),
])
def test_error_answers_match_their_documented_schema(shared: RunningMockd, openapi: dict[str, Any], method: str,
                                                     path: str, doc_path: str, raw: bytes | None,
                                                     status: int) -> None:
    reply = call(method, f"{shared.admin_url}{path}", raw=raw)
    assert reply.status == status
    schema = documented_schema(openapi, doc_path, method.lower(), status)
    assert schema_errors(reply.json(), schema, openapi) == []
    resolved = schema
    if "$ref" in schema:
        resolved = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert {"error", "message"} <= set(resolved.get("required", [])), resolved


def test_documented_401_matches_the_real_401(secured: RunningMockd, openapi: dict[str, Any]) -> None:
    reply = call("GET", f"{secured.admin_url}/mocks")
    assert reply.status == 401
    assert schema_errors(reply.json(), documented_schema(openapi, "/mocks", "get", 401), openapi) == []
