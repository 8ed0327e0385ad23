"""A web page in the developer's own browser cannot drive the admin API (``mockd.admin.guard``).

The admin API listens on loopback, and so does every page the developer opens: without a guard, any
site could add mocks, start recordings or read them with ``fetch``, a form or a WebSocket. Here a
"hostile page" is served by a separate aiohttp server on another loopback port (another origin), loaded
in Debian chromium, and made to try each of those. After each try the test checks with a plain client
that sends no ``Origin`` (as curl does) that nothing changed, and reads from mockd's JSON access log
(``--log-level debug --log-format json``: every admin request with its headers and status) what the
browser actually sent and what mockd answered — so a request the browser never sent is not mistaken
for one mockd refused.

A DNS-rebinding page is simulated with chromium's ``--host-resolver-rules`` (and its Private Network
Access checks off, as Firefox and Safari have none): a page served as
``http://rebound.test:<admin port>/`` (by playwright, standing in for the attacker's server) whose name
then resolves to 127.0.0.1 talks to the admin API same-origin, naming its own host.

The controls (an origin allowed with ``--admin-allow-origin``, a host with ``--admin-allowed-host``)
show the same pages *can* drive the API then, so the attacks would be noticed if the browser got through.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")

from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from processes import MockdFactory, RunningMockd
from configs import http_mock, mocks_config
from polling import wait_until
from httpclient import Reply, acall
from upstreams import serve_app

require_chromium()

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

REBOUND_HOST = "rebound.test"  # a name that "now resolves" to 127.0.0.1, as after DNS rebinding
# Chromium itself refuses a page from a public address (a route-fulfilled one counts as such) its requests
# to loopback (Private Network Access); Firefox and Safari do not, and there only mockd's Host check stands.
# So the rebinding tests turn that off, to see what mockd does.
REBINDING_ARGS = [f"--host-resolver-rules=MAP {REBOUND_HOST} 127.0.0.1",
                  ("--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
                   "LocalNetworkAccessChecks")]

DEADLINE = 10.0  # s, for anything the page does
LOG_ARGS = ("--log-level", "debug", "--log-format", "json")  # the access log, with request headers, as JSON

CHAT_MOCK = http_mock("chat", "/chat", {"hello": "world"})
INJECTED_PATH = "/injected"
INJECTED_MOCK: dict[str, Any] = http_mock("injected", INJECTED_PATH, "pwned")
START_RECORDING: dict[str, Any] = {"protocol": "http", "path": "/chat", "name": "hostile"}

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>a page on the web</title></head>
<body>
<p>Nothing to see here.</p>
<script>
(function () {
  function bodyOf(kind, text) {
    switch (kind) {
      case "string": return text;                    // Content-Type text/plain;charset=UTF-8 unless set
      case "blob": return new Blob([text]);          // no type: the browser sends no Content-Type at all
      case "params": return new URLSearchParams({json: text});  // application/x-www-form-urlencoded
      case "form": { const data = new FormData(); data.append("json", text); return data; }  // multipart
      default: return undefined;
    }
  }

  // "opaque": sent, the answer hidden from the page (no-cors); "read": the page read the answer;
  // "blocked": the browser refused to send it, or to show the page the answer.
  window.tryFetch = async function (url, init, kind, text) {
    const options = Object.assign({}, init);
    if (kind) { options.body = bodyOf(kind, text); }
    try {
      const response = await fetch(url, options);
      if (response.type === "opaque") { return {outcome: "opaque"}; }
      return {outcome: "read", status: response.status, body: await response.text()};
    } catch (error) {
      return {outcome: "blocked", error: String(error)};
    }
  };

  window.tryWebSocket = function (url) {
    return new Promise(function (resolve) {
      let ws, errorEvent = false;
      try { ws = new WebSocket(url); } catch (error) { resolve({outcome: "blocked", error: String(error)}); return; }
      ws.onopen = function () { ws.close(); resolve({outcome: "opened", protocol: ws.protocol}); };
      ws.onerror = function () { errorEvent = true; };
      ws.onclose = function (event) { resolve({outcome: "closed", code: event.code, errorEvent: errorEvent}); };
    });
  };

  // A classic cross-site form POST, into an iframe so this page keeps running. Resolves once the frame
  // holds the answer: a document this page may no longer look into (the initial about:blank it may).
  let sinks = 0;
  window.submitForm = function (action, enctype, name, value) {
    return new Promise(function (resolve) {
      const frame = document.createElement("iframe");
      frame.name = "sink" + (++sinks);
      document.body.appendChild(frame);
      frame.addEventListener("load", function () {
        try {
          if (frame.contentWindow.location.href === "about:blank") { return; }
          resolve({outcome: "readable", href: frame.contentWindow.location.href});
        } catch (error) {
          resolve({outcome: "submitted"});
        }
      });
      const form = document.createElement("form");
      form.method = "post";
      form.action = action;
      form.enctype = enctype;
      form.target = frame.name;
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.appendChild(input);
      document.body.appendChild(form);
      form.submit();
    });
  };
  window.ready = true;
})();
</script>
</body>
</html>
"""


# --- the hostile page's server, the browser -------------------------------------------------------

@asynccontextmanager
async def page_server() -> AsyncIterator[int]:
    """A web server that is not mockd, on another loopback port, serving :data:`PAGE` at ``/``; yields its port."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    async with serve_app(app) as port:
        yield port


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, url: str, html: str | None = None) -> Page:
    """A new tab on ``url``; with ``html``, that document is served for ``url`` by the browser itself
    (the attacker's server before the rebinding), and the name goes to the network afterwards."""
    page = await browser.new_page()
    if html is not None:
        async def serve(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/html", body=html)

        await page.route(url, serve)
    response = await page.goto(url)
    assert response is not None
    assert response.status == 200, f"{url}: {response.status}"
    if html is not None:
        await page.unroute(url)
    await page.wait_for_function("() => window.ready === true", timeout=DEADLINE * 1000)
    return page


async def in_page(page: Page, function: str, *args: Any) -> dict[str, Any]:
    """``window.FUNCTION(*args)`` in the page, awaited (with a deadline)."""
    result: dict[str, Any] = await asyncio.wait_for(
        page.evaluate(f"(args) => window.{function}(...args)", list(args)), DEADLINE)
    return result


async def fetch(page: Page, url: str, init: dict[str, Any], body: str | None = None,
                kind: str = "string") -> dict[str, Any]:
    return await in_page(page, "tryFetch", url, init, kind if body is not None else None, body)


# --- what mockd saw, what the API holds -----------------------------------------------------------

def header(entry: dict[str, Any], name: str) -> str | None:
    for key, value in entry.get("headers", {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def admin_requests(server: RunningMockd, method: str | None = None, path: str | None = None,
                   origin: str | None = None) -> list[dict[str, Any]]:
    """The admin listener's access-log entries (each with the request's headers and mockd's status)."""
    return [entry for entry in server.log_entries()
            if entry.get("logger") == "mockd.access" and entry.get("listener") == "admin"
            and (method is None or entry.get("method") == method) and (path is None or entry.get("path") == path)
            and (origin is None or header(entry, "Origin") == origin)]


def seen(server: RunningMockd) -> str:
    """The requests that carried an Origin, as mockd saw them: for failure messages."""
    return "\n".join(f"  {entry['method']} {entry['path']} -> {entry['status']}  {entry.get('headers')}"
                     for entry in admin_requests(server) if header(entry, "Origin") is not None) or "  (none)"


def refusals(server: RunningMockd) -> list[str]:
    """mockd's own warnings (not access-log lines)."""
    return [str(entry.get("message")) for entry in server.log_entries()
            if entry.get("level") == "warning" and entry.get("logger") != "mockd.access"]


async def reached_mockd(server: RunningMockd, method: str, path: str, origin: str,
                        count: int = 1) -> list[dict[str, Any]]:
    """Wait until mockd has logged ``count`` such requests from ``origin``; returns them."""
    await wait_until(lambda: len(admin_requests(server, method, path, origin)) >= count,
                     f"{count} x {method} {path} from {origin} in mockd's access log;\nseen:\n{seen(server)}")
    return admin_requests(server, method, path, origin)


def assert_refused(server: RunningMockd, requests: list[dict[str, Any]], status: int = 403) -> None:
    for entry in requests:
        assert entry["status"] == status, f"mockd answered {entry['status']}, not {status}, to " \
                                          f"{entry['method']} {entry['path']} {entry.get('headers')}"


def assert_refusal_logged(server: RunningMockd, method: str, path: str, origin: str) -> None:
    lines = refusals(server)
    assert any("origin" in line.lower() and origin in line and f"{method} {path}" in line for line in lines), lines


async def admin(server: RunningMockd, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> Reply:
    return await acall(method, f"{server.admin_url}{path}", body, headers=headers)


async def mock_ids(server: RunningMockd) -> list[str]:
    reply = await admin(server, "GET", "/mocks")
    assert reply.status == 200, reply.text
    return [str(mock["id"]) for mock in reply.json()["mocks"]]


async def assert_untouched(server: RunningMockd, after: str) -> None:
    """The admin API holds what it started with: only the chat mock, no recording session, no injected mock."""
    context = f"after {after}; requests with an Origin, as mockd saw them:\n{seen(server)}"
    assert await mock_ids(server) == ["chat"], context
    sessions = await admin(server, "GET", "/stream-recordings/sessions")
    assert (sessions.status, sessions.json()) == (200, []), f"{sessions.text}\n{context}"
    injected = await acall("GET", f"{server.mock_url}{INJECTED_PATH}")
    assert injected.status == 404, f"{injected.status} {injected.text}\n{context}"
    chat = await acall("GET", f"{server.mock_url}/chat")
    assert (chat.status, chat.json()) == (200, {"hello": "world"}), context


# --- the attacks ------------------------------------------------------------------------------------

# (page host, admin host): a page on another port of the same loopback name, or of the other name
HOSTS = [pytest.param("127.0.0.1", "127.0.0.1", id="127.0.0.1"), pytest.param("localhost", "localhost", id="localhost")]


@asynccontextmanager
async def attack(mockd: MockdFactory, page_host: str, admin_host: str,
                 *args: str) -> AsyncIterator[tuple[RunningMockd, Page, str, str]]:
    """mockd with the chat mock, and chromium on the hostile page; yields the server, the page, the page's
    origin and the admin API's URL as the page names it."""
    async with page_server() as page_port, chromium() as browser:
        server = mockd.start(mocks_config(CHAT_MOCK), *LOG_ARGS, *args)
        page = await open_page(browser, f"http://{page_host}:{page_port}/")
        yield server, page, f"http://{page_host}:{page_port}", f"http://{admin_host}:{server.admin_port}"


@pytest.mark.parametrize(("page_host", "admin_host"), HOSTS)
async def test_a_page_cannot_add_a_mock_with_fetch(mockd: MockdFactory, page_host: str, admin_host: str) -> None:
    """Every body a page may send without a preflight: text/plain (said and implied), no type at all,
    urlencoded, multipart; no-cors, and cors (sent all the same, only the answer is withheld)."""
    body = json.dumps(INJECTED_MOCK)
    tries: list[tuple[dict[str, Any], str, str]] = [
        ({"method": "POST", "mode": "no-cors", "headers": {"Content-Type": "text/plain"}}, "string", "opaque"),
        ({"method": "POST", "mode": "no-cors"}, "string", "opaque"),
        ({"method": "POST", "mode": "no-cors"}, "blob", "opaque"),
        ({"method": "POST", "mode": "no-cors"}, "params", "opaque"),
        ({"method": "POST", "mode": "no-cors"}, "form", "opaque"),
        ({"method": "POST", "mode": "cors", "headers": {"Content-Type": "text/plain"}}, "string", "blocked"),
    ]
    async with attack(mockd, page_host, admin_host) as (server, page, origin, admin_url):
        for number, (init, kind, outcome) in enumerate(tries, 1):
            result = await fetch(page, f"{admin_url}/mocks", init, body, kind)
            assert result["outcome"] == outcome, (init, kind, result)
            sent = await reached_mockd(server, "POST", "/mocks", origin, number)
            await assert_untouched(server, f"fetch {init} with a {kind} body")
            assert_refused(server, sent)
        assert {header(entry, "Content-Type") for entry in sent} >= {"text/plain", "text/plain;charset=UTF-8", None}
        assert_refusal_logged(server, "POST", "/mocks", origin)


@pytest.mark.parametrize(("page_host", "admin_host"), HOSTS)
async def test_a_page_cannot_start_a_recording(mockd: MockdFactory, page_host: str, admin_host: str) -> None:
    async with attack(mockd, page_host, admin_host) as (server, page, origin, admin_url):
        result = await fetch(page, f"{admin_url}/stream-recordings/start", {"method": "POST", "mode": "no-cors"},
                             json.dumps(START_RECORDING))
        assert result["outcome"] == "opaque", result
        sent = await reached_mockd(server, "POST", "/stream-recordings/start", origin)
        await assert_untouched(server, "a no-cors POST /stream-recordings/start")
        assert_refused(server, sent)
        assert_refusal_logged(server, "POST", "/stream-recordings/start", origin)


@pytest.mark.parametrize(("page_host", "admin_host"), HOSTS)
async def test_a_page_cannot_delete_a_mock(mockd: MockdFactory, page_host: str, admin_host: str) -> None:
    """no-cors allows no DELETE; a cors DELETE needs a preflight, which mockd does not grant a stranger."""
    async with attack(mockd, page_host, admin_host) as (server, page, origin, admin_url):
        for path in ("/mocks/chat", "/mocks"):
            no_cors = await fetch(page, f"{admin_url}{path}", {"method": "DELETE", "mode": "no-cors"})
            assert no_cors["outcome"] == "blocked", no_cors
            cors = await fetch(page, f"{admin_url}{path}", {"method": "DELETE", "mode": "cors"})
            assert cors["outcome"] == "blocked", cors
            preflights = await reached_mockd(server, "OPTIONS", path, origin)
            assert header(preflights[0], "Access-Control-Request-Method") == "DELETE", preflights
            await assert_untouched(server, f"DELETE {path}")
        assert admin_requests(server, "DELETE", origin=origin) == []  # the browser never sent one
        # what the preflight got: no CORS headers at all
        reply = await admin(server, "OPTIONS", "/mocks/chat",
                            headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"})
        assert not [name for name in reply.headers if name.lower().startswith("access-control-")], dict(reply.headers)
        assert await mock_ids(server) == ["chat"]


@pytest.mark.parametrize(("page_host", "admin_host"), HOSTS)
async def test_a_form_post_cannot_add_a_mock_or_start_a_recording(mockd: MockdFactory, page_host: str,
                                                                  admin_host: str) -> None:
    """The text/plain form trick: one field whose name=value is a JSON document (the "=" lands inside the
    document's last string: the injected mock would answer "pwned=", the session be named "hostile=")."""
    async with attack(mockd, page_host, admin_host) as (server, page, origin, admin_url):
        for path, document in (("/mocks", INJECTED_MOCK), ("/stream-recordings/start", START_RECORDING)):
            text = json.dumps(document)
            cut = text.rindex('"')  # the closing quote of the last string value
            name, value = text[:cut], text[cut:]
            assert json.loads(f"{name}={value}\r\n").keys() == document.keys()
            result = await in_page(page, "submitForm", f"{admin_url}{path}", "text/plain", name, value)
            assert result["outcome"] == "submitted", result
            sent = await reached_mockd(server, "POST", path, origin)
            assert header(sent[0], "Content-Type") == "text/plain", sent
            await assert_untouched(server, f"a text/plain form POST {path}")
            assert_refused(server, sent)
            assert_refusal_logged(server, "POST", path, origin)


@pytest.mark.parametrize(("page_host", "admin_host"), HOSTS)
async def test_a_page_cannot_open_a_websocket_to_the_admin_api(mockd: MockdFactory, page_host: str,
                                                               admin_host: str) -> None:
    """Refused before any handler: on a path with no route, and on one whose GET handler would answer 200."""
    async with attack(mockd, page_host, admin_host) as (server, page, origin, admin_url):
        ws_url = admin_url.replace("http://", "ws://", 1)
        for path in ("/anything", "/mocks"):
            result = await in_page(page, "tryWebSocket", f"{ws_url}{path}")
            assert result["outcome"] == "closed" and result["code"] == 1006, result
            upgrades = await reached_mockd(server, "GET", path, origin)
            assert (header(upgrades[0], "Upgrade") or "").lower() == "websocket", upgrades
            assert_refused(server, upgrades)
            assert_refusal_logged(server, "GET", path, origin)
        await assert_untouched(server, "WebSocket upgrades")


@pytest.mark.parametrize(("page_host", "admin_host"), HOSTS)
async def test_a_page_cannot_read_the_recordings_or_the_mocks(mockd: MockdFactory, page_host: str,
                                                              admin_host: str) -> None:
    async with attack(mockd, page_host, admin_host) as (server, page, origin, admin_url):
        started = await admin(server, "POST", "/stream-recordings/start", {"protocol": "http", "path": "/chat"})
        assert started.status == 201, started.text
        recording_id = started.json()["recordingId"]
        assert (await acall("GET", f"{server.mock_url}/chat")).status == 200
        stopped = await admin(server, "POST", f"/stream-recordings/{recording_id}/stop")
        assert stopped.status == 200, stopped.text
        listed = await admin(server, "GET", "/stream-recordings")
        assert listed.json()["total"] == 1, listed.text  # there is something to steal

        for path in ("/stream-recordings", f"/stream-recordings/{recording_id}", "/mocks"):
            cors = await fetch(page, f"{admin_url}{path}", {"method": "GET", "mode": "cors"})
            assert cors["outcome"] == "blocked", cors
            no_cors = await fetch(page, f"{admin_url}{path}", {"method": "GET", "mode": "no-cors"})
            assert no_cors["outcome"] == "opaque", no_cors
            await reached_mockd(server, "GET", path, origin)
            reply = await admin(server, "GET", path, headers={"Origin": origin})
            assert not [name for name in reply.headers if name.lower().startswith("access-control-")], \
                dict(reply.headers)
        await assert_untouched(server, "reading the recordings")


# --- DNS rebinding: a page that names its own host ------------------------------------------------

async def rebound_page(browser: Browser, server: RunningMockd) -> tuple[Page, str]:
    origin = f"http://{REBOUND_HOST}:{server.admin_port}"
    return await open_page(browser, f"{origin}/", html=PAGE), origin


async def test_a_rebound_page_cannot_drive_the_admin_api(mockd: MockdFactory) -> None:
    """Same-origin for the browser (no preflight, answers readable), so only the Host check stands."""
    async with chromium(*REBINDING_ARGS) as browser:
        server = mockd.start(mocks_config(CHAT_MOCK), *LOG_ARGS)
        page, origin = await rebound_page(browser, server)
        added = await fetch(page, "/mocks", {"method": "POST", "headers": {"Content-Type": "application/json"}},
                            json.dumps(INJECTED_MOCK))
        assert added["outcome"] == "read", added
        assert (added["status"], json.loads(added["body"])["error"]) == (403, "host_not_allowed"), added
        sent = await reached_mockd(server, "POST", "/mocks", origin)
        assert header(sent[0], "Host") == f"{REBOUND_HOST}:{server.admin_port}", sent
        await assert_untouched(server, "a same-origin POST /mocks from a rebound name")

        started = await fetch(page, "/stream-recordings/start",
                              {"method": "POST", "headers": {"Content-Type": "application/json"}},
                              json.dumps(START_RECORDING))
        assert (started["outcome"], started.get("status")) == ("read", 403), started
        for path in ("/stream-recordings", "/mocks"):
            read = await fetch(page, path, {"method": "GET"})
            assert read["outcome"] == "read", read
            assert (read["status"], json.loads(read["body"])["error"]) == (403, "host_not_allowed"), read
        await assert_untouched(server, "a rebound page")
        assert any(REBOUND_HOST in line for line in refusals(server)), refusals(server)


# --- the controls: what is allowed does get through -----------------------------------------------

async def test_an_allowed_origin_can_drive_the_admin_api_and_no_other(mockd: MockdFactory) -> None:
    async with page_server() as page_port, chromium() as browser:
        origin = f"http://127.0.0.1:{page_port}"
        server = mockd.start(mocks_config(CHAT_MOCK), *LOG_ARGS, "--admin-allow-origin", origin)
        page = await open_page(browser, f"{origin}/")
        json_post = {"method": "POST", "mode": "cors", "headers": {"Content-Type": "application/json"}}

        # even an allowed origin cannot send a body that is not JSON (and never needed a preflight)
        plain = await fetch(page, f"{server.admin_url}/mocks", {"method": "POST", "mode": "no-cors"},
                            json.dumps(INJECTED_MOCK))
        assert plain["outcome"] == "opaque", plain
        assert_refused(server, await reached_mockd(server, "POST", "/mocks", origin), 415)
        await assert_untouched(server, "a text/plain POST from the allowed origin")

        added = await fetch(page, f"{server.admin_url}/mocks", json_post, json.dumps(INJECTED_MOCK))
        assert (added["outcome"], added.get("status")) == ("read", 201), f"{added}\n{seen(server)}"
        assert json.loads(added["body"])["id"] == "injected"
        assert header((await reached_mockd(server, "OPTIONS", "/mocks", origin))[0],
                      "Access-Control-Request-Headers") == "content-type"
        listed = await fetch(page, f"{server.admin_url}/mocks", {"method": "GET", "mode": "cors"})
        assert listed["outcome"] == "read", listed
        assert [mock["id"] for mock in json.loads(listed["body"])["mocks"]] == ["chat", "injected"]
        assert (await acall("GET", f"{server.mock_url}{INJECTED_PATH}")).text == "pwned"

        deleted = await fetch(page, f"{server.admin_url}/mocks/injected", {"method": "DELETE", "mode": "cors"})
        assert (deleted["outcome"], deleted.get("status")) == ("read", 204), deleted
        await assert_untouched(server, "the allowed origin removed what it added")

        # the same page from another origin (localhost, not 127.0.0.1) is still a stranger
        other = await open_page(browser, f"http://localhost:{page_port}/")
        refused = await fetch(other, f"{server.admin_url}/mocks", json_post, json.dumps(INJECTED_MOCK))
        assert refused["outcome"] == "blocked", refused
        await reached_mockd(server, "OPTIONS", "/mocks", f"http://localhost:{page_port}")
        assert admin_requests(server, "POST", "/mocks", f"http://localhost:{page_port}") == []
        await assert_untouched(server, "a preflighted POST from an origin that is not allowed")


async def test_an_allowed_host_lets_the_rebound_page_through(mockd: MockdFactory) -> None:
    async with chromium(*REBINDING_ARGS) as browser:
        server = mockd.start(mocks_config(CHAT_MOCK), *LOG_ARGS, "--admin-allowed-host", REBOUND_HOST)
        page, _ = await rebound_page(browser, server)
        added = await fetch(page, "/mocks", {"method": "POST", "headers": {"Content-Type": "application/json"}},
                            json.dumps(INJECTED_MOCK))
        assert (added["outcome"], added.get("status")) == ("read", 201), f"{added}\n{seen(server)}"
        listed = await fetch(page, "/mocks", {"method": "GET"})
        assert listed["outcome"] == "read", listed
        assert [mock["id"] for mock in json.loads(listed["body"])["mocks"]] == ["chat", "injected"]
        assert await mock_ids(server) == ["chat", "injected"]
        assert (await acall("GET", f"{server.mock_url}{INJECTED_PATH}")).text == "pwned"
