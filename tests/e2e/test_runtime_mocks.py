"""Mocks changed at run time next to ``--upstream`` (issue 13, item 5), over real sockets.

A real local upstream (aiohttp's server, answering HTTP and WebSocket upgrades with a per-connection
counter, so an answer that came from it can be told from a mock's) stands behind ``mockd serve
--upstream``. Covered: mocks added through ``POST /mocks`` — HTTP, WebSocket and proxy — answer before
the ``--upstream`` catch-all while unmatched paths still reach it; a whole config document (one that
``convert`` wrote from a recording made through the proxy) loads at run time, all or nothing, and a
client then gets the converted answers instead of the upstream's; ``DELETE /mocks`` goes back to the
start-up mocks and upstreams (WebSockets of removed runtime mocks get 1012); replacing keeps a mock's
place and the upstream proxies stay last. Clients are urllib (:mod:`httpclient`) and the ``websockets``
library. The registry's ``ANSWERED_BY`` mark is checked on an in-process registry behind a real listener.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from processes import MockdFactory, RunningMockd
from configs import http_mock, mocks_config, ws_mock
from httpclient import acall
from test_admin_api import documented_schema, schema_errors
from upstreams import DEADLINE, HOST, exchange, open_ws, recv, server_close
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from mockd.config.model import HttpMatcher, HttpMock, HttpResponse, HttpSpec, ProxyMock, ProxySpec
from mockd.serving.registry import ANSWERED_BY, MockRegistry
from mockd.stream.events import StreamEvents

# --- a real upstream that numbers what it serves ----------------------------------------------------


@dataclass
class CountingUpstream:
    """HTTP answers ``{"from": name, "path", "n"}``; a WebSocket gets ``"<name> greeting <n>"`` and then
    ``"<name> got <message>"`` for each message, until the client sends ``bye`` (closed with 4000)."""

    name: str
    url: str = ""
    count: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    http_requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        number = next(self.count)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            self.websockets.append(request.path)
            ws = web.WebSocketResponse()
            await ws.prepare(request)  # type: ignore[arg-type]
            await ws.send_str(f"{self.name} greeting {number}")
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    break
                await ws.send_str(f"{self.name} got {message.data}")
                if message.data == "bye":
                    await ws.close(code=4000, message=b"done")
            return ws
        self.http_requests.append(request.path)
        return web.json_response({"from": self.name, "path": request.path, "n": number})


@asynccontextmanager
async def counting_upstream(name: str = "upstream") -> AsyncIterator[CountingUpstream]:
    upstream = CountingUpstream(name)
    runner = web.ServerRunner(web.Server(upstream.handle, access_log=None), shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    upstream.url = f"http://{HOST}:{runner.addresses[0][1]}"
    try:
        yield upstream
    finally:
        await runner.cleanup()


# --- helpers ------------------------------------------------------------------------------------------


async def listed_ids(server: RunningMockd) -> list[str]:
    reply = await acall("GET", f"{server.admin_url}/mocks")
    assert reply.status == 200, reply.text
    return [mock["id"] for mock in reply.json()["mocks"]]


async def listing(server: RunningMockd) -> list[dict[str, Any]]:
    reply = await acall("GET", f"{server.admin_url}/mocks")
    assert reply.status == 200, reply.text
    mocks: list[dict[str, Any]] = reply.json()["mocks"]
    return mocks


async def post_mock(server: RunningMockd, body: Any, status: int) -> dict[str, Any]:
    reply = await acall("POST", f"{server.admin_url}/mocks", body)
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.text[:500]}"
    answer: dict[str, Any] = reply.json()
    return answer


async def get_json(server: RunningMockd, path: str, status: int = 200) -> Any:
    reply = await acall("GET", f"{server.mock_url}{path}")
    assert reply.status == status, f"GET {path}: expected {status}, got {reply.status}: {reply.text[:300]}"
    return reply.json()


def document(*mocks: dict[str, Any]) -> dict[str, Any]:
    return mocks_config(*mocks)


def greeting_mock(mock_id: str, path: str, greeting: str) -> dict[str, Any]:
    """A WebSocket mock that greets, then echoes."""
    return ws_mock(mock_id, path, echoMode=True, scenario={"steps": [
        {"type": "send", "message": {"type": "text", "value": greeting}}]})


def proxy(mock_id: str, target: str, prefix: str = "/") -> dict[str, Any]:
    return {"id": mock_id, "type": "proxy", "proxy": {"pathPrefix": prefix, "target": target}}


@pytest.fixture(autouse=True)
def no_token_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("MOCKD_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


CONFIGURED = http_mock("configured", "/configured", {"from": "config"})


# --- precedence -----------------------------------------------------------------------------------------


async def test_runtime_http_and_websocket_mocks_beat_the_upstream_catch_all(mockd: MockdFactory) -> None:
    async with counting_upstream() as upstream:
        server = mockd.start(mocks_config(CONFIGURED), "--upstream", upstream.url)
        # the premise: before the mocks exist, the upstream answers both
        assert (await get_json(server, "/runtime"))["from"] == "upstream"
        async with open_ws(server.ws_url("/ws/runtime")) as ws:
            assert str(await recv(ws)).startswith("upstream greeting")

        await post_mock(server, http_mock("rt-http", "/runtime", {"from": "runtime mock"}), 201)
        await post_mock(server, greeting_mock("rt-ws", "/ws/runtime", "mock says hi"), 201)
        seen_http, seen_ws = len(upstream.http_requests), len(upstream.websockets)

        assert await get_json(server, "/runtime") == {"from": "runtime mock"}
        async with open_ws(server.ws_url("/ws/runtime")) as ws:
            assert await recv(ws) == "mock says hi"
            assert await exchange(ws, "echo me") == "echo me"
        assert (len(upstream.http_requests), len(upstream.websockets)) == (seen_http, seen_ws), \
            "the upstream saw requests the runtime mocks should have answered"

        # whatever no mock matches still goes to the upstream, HTTP and WebSocket alike
        other = await get_json(server, "/elsewhere?x=1")
        assert other["from"] == "upstream" and other["path"] == "/elsewhere"
        async with open_ws(server.ws_url("/ws/elsewhere")) as ws:
            assert str(await recv(ws)).startswith("upstream greeting")
        assert upstream.http_requests[-1] == "/elsewhere" and upstream.websockets[-1] == "/ws/elsewhere"
        assert await get_json(server, "/configured") == {"from": "config"}
        assert await listed_ids(server) == ["configured", "rt-http", "rt-ws", "upstream"]


async def test_a_runtime_proxy_mock_goes_before_every_upstream(mockd: MockdFactory) -> None:
    async with counting_upstream("api") as api, counting_upstream("rest") as rest, \
            counting_upstream("side") as side:
        server = mockd.start(mocks_config(CONFIGURED), "--upstream", rest.url, "--upstream", f"/api={api.url}")
        assert await listed_ids(server) == ["configured", "upstream:/api", "upstream:/"]
        assert (await get_json(server, "/api/v1/thing"))["from"] == "api"

        # a runtime proxy under /api takes /api/v1 from the /api upstream; a mock under /api beats both
        await post_mock(server, proxy("side-proxy", side.url, "/api/v1"), 201)
        await post_mock(server, http_mock("api-mock", "/api/mocked", {"from": "mock"}), 201)
        assert (await get_json(server, "/api/v1/thing"))["from"] == "side"
        assert await get_json(server, "/api/mocked") == {"from": "mock"}
        assert (await get_json(server, "/api/v2"))["from"] == "api"
        assert (await get_json(server, "/anything"))["from"] == "rest"
        assert await listed_ids(server) == ["configured", "side-proxy", "api-mock", "upstream:/api", "upstream:/"]
        assert api.http_requests == ["/api/v1/thing", "/api/v2"] and side.http_requests == ["/api/v1/thing"]


async def test_replacing_keeps_the_place_and_upstreams_stay_last(mockd: MockdFactory) -> None:
    async with counting_upstream() as upstream, counting_upstream("other") as other:
        server = mockd.start(mocks_config(CONFIGURED, http_mock("second", "/second", 2)),
                             "--upstream", upstream.url)
        await post_mock(server, http_mock("rt-1", "/rt-1", "one"), 201)
        await post_mock(server, http_mock("rt-2", "/rt-2", "two"), 201)
        assert await listed_ids(server) == ["configured", "second", "rt-1", "rt-2", "upstream"]

        # replacing a configured mock and a runtime mock: same places, new answers
        await post_mock(server, http_mock("configured", "/configured", {"from": "replaced"}), 200)
        await post_mock(server, http_mock("rt-1", "/rt-1", {"one": "replaced"}), 200)
        assert await listed_ids(server) == ["configured", "second", "rt-1", "rt-2", "upstream"]
        assert await get_json(server, "/configured") == {"from": "replaced"}
        assert await get_json(server, "/rt-1") == {"one": "replaced"}

        # the upstream replaced in place stays last, and what is added later still goes before it
        await post_mock(server, proxy("upstream", other.url), 200)
        await post_mock(server, http_mock("rt-3", "/rt-3", "three"), 201)
        assert await listed_ids(server) == ["configured", "second", "rt-1", "rt-2", "rt-3", "upstream"]
        assert (await get_json(server, "/nowhere"))["from"] == "other"

        # an upstream can be removed: nothing catches what no mock matches any more
        assert (await acall("DELETE", f"{server.admin_url}/mocks/upstream")).status == 204
        missing = await get_json(server, "/nowhere", 404)
        assert missing["error"] == "no_mock"
        assert await listed_ids(server) == ["configured", "second", "rt-1", "rt-2", "rt-3"]
        assert upstream.http_requests == [] and other.http_requests == ["/nowhere"]


# --- whole config documents -----------------------------------------------------------------------------


async def test_a_converted_recording_loads_at_run_time_and_answers_instead_of_the_upstream(
        mockd: MockdFactory) -> None:
    async with counting_upstream() as upstream:
        server = mockd.start(mocks_config(CONFIGURED), "--upstream", upstream.url)

        async def conversation() -> None:
            """What the upstream answers the first time it is asked (and the converted mocks ever after)."""
            async with open_ws(server.ws_url("/ws/chat")) as ws:
                assert await recv(ws) == "upstream greeting 1"
                assert await exchange(ws, "hello") == "upstream got hello"
                await ws.send("bye")
                messages, close = await server_close(ws)
                assert messages == ["upstream got bye"] and (close.code, close.reason) == (4000, "done")

        # record one WebSocket conversation and one HTTP exchange through the --upstream proxy
        started = await acall("POST", f"{server.admin_url}/stream-recordings/start",
                              {"protocol": "websocket", "path": "/ws/chat"})
        assert started.status == 201, started.text
        ws_recording = started.json()["recordingId"]
        await conversation()
        stopped = await acall("POST", f"{server.admin_url}/stream-recordings/{ws_recording}/stop")
        assert stopped.status == 200, stopped.text

        started = await acall("POST", f"{server.admin_url}/stream-recordings/start",
                              {"protocol": "http", "path": "/api/*"})
        assert started.status == 201, started.text
        http_recording = started.json()["recordingId"]
        assert await get_json(server, "/api/count") == {"from": "upstream", "path": "/api/count", "n": 2}
        stopped = await acall("POST", f"{server.admin_url}/stream-recordings/{http_recording}/stop")
        assert stopped.status == 200, stopped.text

        documents = []
        for recording_id in (ws_recording, http_recording):
            converted = await acall("POST", f"{server.admin_url}/stream-recordings/{recording_id}/convert", {})
            assert converted.status == 200, converted.text
            documents.append(converted.json())
        before = await listed_ids(server)

        loaded = [await post_mock(server, doc, 201) for doc in documents]
        for doc, answer in zip(documents, loaded, strict=True):
            assert answer["added"] == len(doc["mocks"]) and answer["replaced"] == 0
            assert [mock["id"] for mock in answer["mocks"]] == [mock["id"] for mock in doc["mocks"]]
        added = [mock["id"] for answer in loaded for mock in answer["mocks"]]
        assert await listed_ids(server) == [*before[:-1], *added, "upstream"]

        # a real client now gets the recorded answers (the upstream would count on: greeting 3, n 4)
        seen_http, seen_ws = len(upstream.http_requests), len(upstream.websockets)
        await conversation()
        assert await get_json(server, "/api/count") == {"from": "upstream", "path": "/api/count", "n": 2}
        assert (len(upstream.http_requests), len(upstream.websockets)) == (seen_http, seen_ws)
        # ...and anything the recording did not cover still reaches the upstream
        assert (await get_json(server, "/api/other"))["n"] == 3


async def test_a_document_replaces_existing_ids_in_place(mockd: MockdFactory) -> None:
    async with counting_upstream() as upstream:
        server = mockd.start(mocks_config(CONFIGURED, http_mock("second", "/second", 2)), "--upstream", upstream.url)
        await post_mock(server, http_mock("rt", "/rt", "runtime"), 201)
        answer = await post_mock(server, document(
            http_mock("new-1", "/new-1", "n1"),
            http_mock("second", "/second", {"second": "replaced"}),
            {"type": "http", "http": {"matcher": {"method": "GET", "path": "/anonymous"},
                                      "response": {"body": "anon"}}}), 201)
        assert (answer["added"], answer["replaced"]) == (2, 1)
        anonymous = answer["mocks"][2]["id"]
        assert isinstance(anonymous, str) and anonymous
        assert [mock["id"] for mock in answer["mocks"]] == ["new-1", "second", anonymous]
        assert await listed_ids(server) == ["configured", "second", "rt", "new-1", anonymous, "upstream"]
        assert await get_json(server, "/second") == {"second": "replaced"}
        assert (await acall("GET", f"{server.mock_url}/anonymous")).body == b"anon"

        # only replacements: 200
        again = await post_mock(server, document(http_mock("new-1", "/new-1", "n1 again")), 200)
        assert (again["added"], again["replaced"]) == (0, 1)
        assert (await acall("GET", f"{server.mock_url}/new-1")).body == b"n1 again"
        assert await listed_ids(server) == ["configured", "second", "rt", "new-1", anonymous, "upstream"]
        assert upstream.http_requests == []


INVALID_DOCUMENTS: list[Any] = [
    pytest.param([http_mock("good-1", "/good-1", 1), http_mock("good-2", "/good-2", 2),
                  {"id": "bad", "type": "http", "http": {"matcher": {"path": "/bad"},
                                                         "response": {"statusCode": "abc"}}}],
                 "invalid_config", ["mock 'bad' (mocks[2])", "statusCode"], id="wrong-type"),
    pytest.param([http_mock("good-1", "/good-1", 1),
                  {"type": "websocket", "websocket": {"path": "/ws/bad", "idleTimeout": "5 parsecs"}}],
                 "invalid_config", ["mocks[1]", "idleTimeout"], id="bad-duration-no-id"),
    pytest.param([http_mock("good-1", "/good-1", 1), {"id": "odd", "type": "teleport"}],
                 "invalid_config", ["mock 'odd' (mocks[1])", "type"], id="unknown-type"),
    pytest.param([http_mock("good-1", "/good-1", 1), http_mock("twice", "/good-2", 2),
                  http_mock("twice", "/good-3", 3)],
                 "duplicate_id", ["'twice'", "mocks[1]", "mocks[2]"], id="duplicate-ids"),
]


@pytest.mark.parametrize(("mocks", "code", "named"), INVALID_DOCUMENTS)
async def test_a_document_with_one_bad_mock_loads_nothing(mockd: MockdFactory, mocks: list[dict[str, Any]],
                                                          code: str, named: list[str]) -> None:
    async with counting_upstream() as upstream:
        server = mockd.start(mocks_config(CONFIGURED), "--upstream", upstream.url)
        before = await listing(server)
        error = await post_mock(server, document(*mocks), 400)
        assert error["error"] == code, error
        for words in named:
            assert words in error["message"], error
        assert await listing(server) == before
        # the good mocks of the refused document do not answer: the upstream does
        assert (await get_json(server, "/good-1"))["from"] == "upstream"


@pytest.mark.parametrize(("body", "named"), [
    pytest.param({"version": "2.0", "mocks": [http_mock("v", "/v", 1)]}, "version", id="wrong-version"),
    pytest.param({"mocks": [http_mock("v", "/v", 1)]}, "version", id="no-version"),
    pytest.param({"version": "1.0", "mocks": {"v": 1}}, "mocks", id="mocks-not-a-list"),
    pytest.param({"version": "1.0", "mocks": [], "extra": True}, "extra", id="unknown-key"),
])
async def test_a_malformed_document_is_400_naming_the_problem(mockd: MockdFactory, body: dict[str, Any],
                                                              named: str) -> None:
    server = mockd.start(mocks_config(CONFIGURED))
    error = await post_mock(server, body, 400)
    assert error["error"] == "invalid_config" and named in error["message"], error
    assert await listed_ids(server) == ["configured"]


async def test_an_empty_document_changes_nothing(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(CONFIGURED))
    assert await post_mock(server, document(), 200) == {"mocks": [], "added": 0, "replaced": 0}
    assert await listed_ids(server) == ["configured"]


# --- DELETE /mocks ---------------------------------------------------------------------------------------


async def test_delete_mocks_restores_the_start_up_config(mockd: MockdFactory) -> None:
    async with counting_upstream("api") as api, counting_upstream("rest") as rest:
        once = {**http_mock("once", "/once", "first"), "times": 1}
        server = mockd.start(mocks_config(CONFIGURED, once, ws_mock("echo", "/ws/echo")),
                             "--upstream", rest.url, "--upstream", f"/api={api.url}")
        start_up = await listing(server)
        assert [mock["id"] for mock in start_up] == ["configured", "once", "echo", "upstream:/api", "upstream:/"]

        assert (await acall("GET", f"{server.mock_url}/once")).body == b"first"  # its one time used up
        assert (await get_json(server, "/once"))["from"] == "rest"
        kept = await open_ws(server.ws_url("/ws/echo"))
        doomed = await open_ws(server.ws_url("/ws/runtime"))
        try:
            assert str(await recv(doomed)).startswith("rest greeting")  # the premise: the upstream had it
            await doomed.close()
            await post_mock(server, greeting_mock("rt-ws", "/ws/runtime", "runtime hi"), 201)
            doomed = await open_ws(server.ws_url("/ws/runtime"))
            assert await recv(doomed) == "runtime hi"
            await post_mock(server, http_mock("configured", "/configured", "changed"), 200)
            await post_mock(server, document(http_mock("doc-1", "/doc-1", 1)), 201)
            assert (await acall("DELETE", f"{server.admin_url}/mocks/upstream:%2Fapi")).status == 204
            assert (await get_json(server, "/api/x"))["from"] == "rest"

            reset = await acall("DELETE", f"{server.admin_url}/mocks")
            assert reset.status == 200, reset.text
            assert reset.json() == {"mocks": start_up}
            assert await listing(server) == start_up

            # the removed runtime mock's WebSocket is closed with 1012; the unchanged config mock's stays
            messages, close = await server_close(doomed)
            assert messages == [] and close.code == 1012
            assert await exchange(kept, "still open") == "still open"
        finally:
            await kept.close()
            await doomed.close()

        assert await get_json(server, "/configured") == {"from": "config"}
        assert (await acall("GET", f"{server.mock_url}/once")).body == b"first"  # times counted from zero again
        assert (await get_json(server, "/api/x"))["from"] == "api"  # the /api upstream is back, before /
        assert (await get_json(server, "/doc-1"))["from"] == "rest"
        async with open_ws(server.ws_url("/ws/runtime")) as ws:
            assert str(await recv(ws)).startswith("rest greeting")


async def test_delete_mocks_closes_a_replaced_websocket_mock_and_restores_the_original(
        mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(greeting_mock("chat", "/ws/chat", "original")))
    await post_mock(server, greeting_mock("chat", "/ws/chat", "replacement"), 200)
    async with open_ws(server.ws_url("/ws/chat")) as ws:
        assert await recv(ws) == "replacement"
        assert (await acall("DELETE", f"{server.admin_url}/mocks")).status == 200
        messages, close = await server_close(ws)
        assert messages == [] and (close.code, close.reason) == (1012, "mock replaced")
    async with open_ws(server.ws_url("/ws/chat")) as ws:
        assert await recv(ws) == "original"


async def test_delete_mocks_without_runtime_changes_keeps_everything(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(CONFIGURED, ws_mock("echo", "/ws/echo")))
    start_up = await listing(server)
    async with open_ws(server.ws_url("/ws/echo")) as ws:
        assert (await acall("DELETE", f"{server.admin_url}/mocks")).json() == {"mocks": start_up}
        assert await exchange(ws, "after reset") == "after reset"
    # a removed runtime WebSocket path is a 404 again after the reset
    await post_mock(server, ws_mock("rt", "/ws/rt"), 201)
    assert (await acall("DELETE", f"{server.admin_url}/mocks")).status == 200
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.ws_url("/ws/rt"), open_timeout=DEADLINE)
    assert refused.value.response.status_code == 404


# --- the OpenAPI document describes the new answers --------------------------------------------------------


async def test_documented_schemas_validate_document_and_reset_answers(mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(CONFIGURED))
    openapi = (await acall("GET", f"{server.admin_url}/openapi.json")).json()
    assert "delete" in openapi["paths"]["/mocks"]
    request_schema = openapi["paths"]["/mocks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = document(http_mock("doc", "/doc", [1]), ws_mock("doc-ws", "/ws/doc"))
    assert schema_errors(body, request_schema, openapi) == []
    assert schema_errors(http_mock("one", "/one", 1), request_schema, openapi) == []
    assert schema_errors({"version": "1.0", "mocks": [{"type": "nope"}]}, request_schema, openapi)

    created = await post_mock(server, body, 201)
    assert schema_errors(created, documented_schema(openapi, "/mocks", "post", 201), openapi) == []
    replaced = await post_mock(server, body, 200)
    assert schema_errors(replaced, documented_schema(openapi, "/mocks", "post", 200), openapi) == []
    duplicate = await post_mock(server, document(http_mock("d", "/d", 1), http_mock("d", "/d", 2)), 400)
    assert schema_errors(duplicate, documented_schema(openapi, "/mocks", "post", 400), openapi) == []
    reset = await acall("DELETE", f"{server.admin_url}/mocks")
    assert reset.status == 200
    assert schema_errors(reset.json(), documented_schema(openapi, "/mocks", "delete", 200), openapi) == []
    broken = {"mocks": [{"type": "http", "http": {"matcher": {"path": 42}}}]}
    assert schema_errors(broken, documented_schema(openapi, "/mocks", "delete", 200), openapi)


# --- which mock answered (for the access log) --------------------------------------------------------------


async def test_each_request_is_marked_with_the_mock_that_answered_it() -> None:
    async with counting_upstream() as upstream:
        registry = MockRegistry(StreamEvents())
        registry.load([HttpMock(id="hello", http=HttpSpec(matcher=HttpMatcher(method="GET", path="/hello"),
                                                          response=HttpResponse(body="hi")))],
                      [ProxyMock(id="upstream:/api", proxy=ProxySpec(target=upstream.url, path_prefix="/api"))])
        marks: dict[str, str | None] = {}

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await registry.handle(request)
            finally:
                marks[request.path] = request.get(ANSWERED_BY)

        runner = web.ServerRunner(web.Server(handle, access_log=None), shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, HOST, 0).start()
        base = f"http://{HOST}:{runner.addresses[0][1]}"
        try:
            assert (await acall("GET", f"{base}/hello")).body == b"hi"
            assert json.loads((await acall("GET", f"{base}/api/x")).body)["from"] == "upstream"
            assert (await acall("GET", f"{base}/nothing")).status == 404
            registry.put(HttpMock(id="later", http=HttpSpec(matcher=HttpMatcher(path="/api/later"),
                                                            response=HttpResponse(body="later"))))
            assert (await acall("GET", f"{base}/api/later")).body == b"later"
        finally:
            await runner.cleanup()
            await registry.upstream.close()
        assert marks == {"/hello": "hello", "/api/x": "upstream:/api", "/nothing": None, "/api/later": "later"}
        assert [mock.id for mock in registry.mocks] == ["hello", "later", "upstream:/api"]


def test_the_python_client_loads_removes_and_resets_mocks(mockd: MockdFactory) -> None:
    """``mockd.Client``: a converted document in, an upstream proxy out (its id has a slash), back to start."""
    from mockd import Client

    server = mockd.start(mocks_config(http_mock("start", "/start", "s")), "--upstream", "/api=http://127.0.0.1:9",
                         "--upstream", "http://127.0.0.1:9")
    client = Client(server.admin_url)
    loaded = client.load_mocks(json.dumps(document(greeting_mock("hi", "/hi", "hello"))).encode())
    assert (loaded.added, loaded.replaced, [mock.id for mock in loaded.mocks]) == (1, 0, ["hi"])
    assert [mock["id"] for mock in client.mocks()] == ["start", "hi", "upstream:/api", "upstream:/"]
    client.remove_mock("upstream:/api")
    assert [mock["id"] for mock in client.mocks()] == ["start", "hi", "upstream:/"]
    assert [mock["id"] for mock in client.reset_mocks()] == ["start", "upstream:/api", "upstream:/"]
