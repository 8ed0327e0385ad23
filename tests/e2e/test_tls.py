"""TLS both ways, on loopback with certificates made here by ``trustme``: recording ``wss://`` and
``https://`` upstreams signed by a private CA (``--upstream-ca``), the clear 502 and log line without it
(unknown CA, name mismatch, expired), ``--upstream-insecure``, a client certificate for an mTLS upstream,
and mockd itself listening on TLS (``--tls-cert``, ``--tls-self-signed``, ``--admin-tls-cert``) for
``websockets`` and curl clients that trust only the CA they were given."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from processes import MockdFactory, RunningMockd, run_mockd
from configs import http_mock, mocks_config
from polling import poll_value, wait_until

HOST = "127.0.0.1"
STREAM = [b"data: one\n\n", b"event: tick\ndata: two\n\n", b"data: three\n\n"]


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


def write_ca(ca: trustme.CA, directory: Path) -> Path:
    path = directory / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(cert: trustme.LeafCert, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if client_ca is not None:  # mTLS: the client must show a certificate this CA signed
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@asynccontextmanager
async def wss_upstream(context: ssl.SSLContext) -> AsyncIterator[str]:
    """A ``websockets`` echo server over TLS; yields its ``wss://`` URL (by name, for SNI)."""

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"echo {message}")

    async with serve(echo, HOST, 0, ssl=context, ping_interval=None) as server:
        yield f"wss://localhost:{next(iter(server.sockets)).getsockname()[1]}"


@asynccontextmanager
async def https_upstream(context: ssl.SSLContext) -> AsyncIterator[str]:
    """An aiohttp server over TLS: ``/events`` is an SSE stream, anything else says what it saw."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.path.endswith("/events"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for chunk in STREAM:
                await response.write(chunk)
            await response.write_eof()
            return response
        return web.json_response({"path": request.path, "host": request.host})

    runner = web.ServerRunner(web.Server(handle, access_log=None), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://localhost:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def curl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-N", "--max-time", "20", *args, url], capture_output=True, text=True,
                          timeout=30)


async def acurl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(curl, url, *args)


async def admin(server: RunningMockd, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    result = await acurl(f"{server.admin_url}{path}", "-X", method, "-w", "\n%{http_code}",
                         *(["-H", "Content-Type: application/json", "-d", json.dumps(body)]
                           if body is not None else []))
    text, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(text) if text else None


async def echo_once(url: str, message: str, **options: Any) -> str:
    async with connect(url, open_timeout=10, **options) as ws:
        await ws.send(message)
        return str(await asyncio.wait_for(ws.recv(), 10))


# --- upstream TLS ---------------------------------------------------------------------------------


async def test_records_wss_and_https_upstreams_signed_by_a_private_ca(
        mockd: MockdFactory, authority: trustme.CA, tmp_path: Path) -> None:
    context = server_context(authority.issue_cert("localhost"))
    async with wss_upstream(context) as wss, https_upstream(context) as https:
        server = mockd.start(None, "--upstream", f"/ws={wss}", "--upstream", f"/={https}",
                             "--upstream-ca", str(write_ca(authority, tmp_path)))
        status, started = await admin(server, "POST", "/stream-recordings/start", {"protocol": "websocket",
                                                                                  "path": "/ws/chat"})
        assert status == 201, started
        status, sse_started = await admin(server, "POST", "/stream-recordings/start", {"protocol": "sse",
                                                                                      "path": "/events"})
        assert status == 201, sse_started

        assert await echo_once(server.ws_url("/ws/chat"), "hello") == "echo hello"
        streamed = await acurl(f"{server.mock_url}/events")
        assert streamed.returncode == 0, streamed.stderr
        assert streamed.stdout == b"".join(STREAM).decode()
        plain = json.loads((await acurl(f"{server.mock_url}/api/who")).stdout)
        assert plain == {"path": "/api/who", "host": https.removeprefix("https://")}  # Host is the upstream's

        async def stopped(recording_id: str, done: Any) -> dict[str, Any]:
            async def live() -> Any:
                _, recording = await admin(server, "GET", f"/stream-recordings/{recording_id}")
                return recording
            assert done(await poll_value(live, done, 10, interval=0.05)), f"{recording_id} never captured its traffic"
            status, recording = await admin(server, "POST", f"/stream-recordings/{recording_id}/stop")
            assert status == 200, recording
            return dict(recording)

        ws_recording = await stopped(started["recordingId"], lambda live: sum(
            frame["type"] == "close" for frame in live["websocket"]["frames"]) >= 2)
        texts = [(frame["direction"], frame["data"]) for frame in ws_recording["websocket"]["frames"]
                 if frame["type"] == "text"]
        assert texts == [("c2s", "hello"), ("s2c", "echo hello")]
        sse_recording = await stopped(sse_started["recordingId"], lambda live: len(live["sse"]["events"]) >= 3)
        assert [event["data"] for event in sse_recording["sse"]["events"]] == ["one", "two", "three"]


@pytest.mark.parametrize(("issue", "reason"), [
    ("unknown CA", "unknown CA"),
    ("name mismatch", "name mismatch"),
    ("expired", "certificate expired"),
])
async def test_a_tls_failure_is_a_502_naming_why_and_a_warning_in_the_log(
        mockd: MockdFactory, authority: trustme.CA, tmp_path: Path, issue: str, reason: str) -> None:
    if issue == "name mismatch":
        cert = authority.issue_cert("other.example")
    elif issue == "expired":
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        cert = authority.issue_cert("localhost", not_before=past, not_after=past + datetime.timedelta(days=1))
    else:
        cert = authority.issue_cert("localhost")
    trusted = [] if issue == "unknown CA" else ["--upstream-ca", str(write_ca(authority, tmp_path))]
    context = server_context(cert)
    async with https_upstream(context) as https, wss_upstream(context) as wss:
        server = mockd.start(None, "--upstream", f"/ws={wss}", "--upstream", f"/={https}", *trusted)
        answer = await acurl(f"{server.mock_url}/api/x", "-w", "\n%{http_code}")
        body, _, status = answer.stdout.rpartition("\n")
        assert status == "502", answer.stdout
        error = json.loads(body)
        assert error["error"] == "bad_gateway"
        assert reason in error["message"] and https in error["message"], error
        with pytest.raises(InvalidStatus) as refused:
            await echo_once(server.ws_url("/ws/chat"), "hello")
        assert refused.value.response.status_code == 502
        assert reason in refused.value.response.body.decode()
        await wait_until(lambda: server.stderr.count("WARNING") >= 2 and reason in server.stderr,
                         "a warning line for each failed connection")
        warnings = [line for line in server.stderr.splitlines() if "WARNING" in line]
        assert any("GET /api/x" in line and reason in line for line in warnings), warnings
        assert any("GET /ws/chat" in line and reason in line for line in warnings), warnings


async def test_upstream_insecure_works_and_warns(mockd: MockdFactory, authority: trustme.CA) -> None:
    async with https_upstream(server_context(authority.issue_cert("localhost"))) as https:
        server = mockd.start(None, "--upstream", https, "--upstream-insecure", "--access-log")
        answer = await acurl(f"{server.mock_url}/api/x")
        assert json.loads(answer.stdout)["path"] == "/api/x"
        assert "upstream TLS certificates are NOT verified" in server.stderr
        await wait_until(lambda: "GET /api/x 200" in server.stderr, "the access log line")
        line = next(line for line in server.stderr.splitlines() if "GET /api/x 200" in line)
        assert f"upstream={https} tls=unverified" in line


async def test_a_client_certificate_opens_an_mtls_upstream(
        mockd: MockdFactory, authority: trustme.CA, tmp_path: Path) -> None:
    clients = trustme.CA()
    client_pem = tmp_path / "client.pem"
    clients.issue_cert("mockd-client@example").private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    ca = write_ca(authority, tmp_path)
    async with https_upstream(server_context(authority.issue_cert("localhost"), client_ca=clients)) as https:
        with_cert = mockd.start(None, "--upstream", https, "--upstream-ca", str(ca), "--upstream-cert", str(client_pem))
        answer = await acurl(f"{with_cert.mock_url}/api/x", "-w", "\n%{http_code}")
        assert answer.stdout.endswith("\n200"), answer.stdout
        assert json.loads(answer.stdout.rpartition("\n")[0])["path"] == "/api/x"

        without = mockd.start(None, "--upstream", https, "--upstream-ca", str(ca))
        refused = await acurl(f"{without.mock_url}/api/x", "-w", "\n%{http_code}")
        assert refused.stdout.endswith("\n502"), refused.stdout
        assert json.loads(refused.stdout.rpartition("\n")[0])["error"] == "bad_gateway"


def test_upstream_tls_settings_come_from_the_settings_file_too(tmp_path: Path) -> None:
    settings = tmp_path / "mockd.yaml"
    settings.write_text("upstream:\n  ca: missing-ca.pem\n")
    result = run_mockd("serve", "--settings", str(settings), "--port", "0", "--admin-port", "0",
                       "--data-dir", str(tmp_path / "data"), "--upstream", "https://localhost:1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"mockd: error: cannot use --upstream-ca {tmp_path / 'missing-ca.pem'}: No such file or directory"]


# --- mockd listening on TLS -----------------------------------------------------------------------


async def test_a_websockets_client_trusting_the_printed_ca_talks_to_self_signed_mockd(
        mockd: MockdFactory) -> None:
    server = mockd.start(mocks_config(http_mock("hello", "/hello", {"hi": True}),
                                      {"id": "chat", "type": "websocket", "websocket": {"path": "/ws/chat"}}),
                         "--tls-self-signed")
    ca_file = Path(server.ready["caFile"])
    assert ca_file.is_file() and ca_file.stat().st_mode & 0o077 == 0
    assert server.mock_url.startswith("https://") and server.ready["mockWsUrl"].startswith("wss://")
    assert f"TLS CA       {ca_file}" in server.stdout
    assert f"mock server  {server.mock_url}" in server.stdout

    trusting = ssl.create_default_context(cafile=str(ca_file))
    ws_url = f"{server.ready['mockWsUrl']}/ws/chat"
    assert await echo_once(ws_url, "ping", ssl=trusting) == "ping"  # an echo mock
    for host in ("localhost", "127.0.0.1"):
        answer = await acurl(f"https://{host}:{server.mock_port}/hello", "--cacert", str(ca_file))
        assert json.loads(answer.stdout) == {"hi": True}, answer.stderr
    with pytest.raises(ssl.SSLCertVerificationError):  # nothing else trusts it
        await echo_once(ws_url, "ping", ssl=ssl.create_default_context())


async def test_tls_cert_and_admin_tls_cert_serve_https(mockd: MockdFactory, authority: trustme.CA,
                                                       tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf = authority.issue_cert("localhost", "127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca = write_ca(authority, tmp_path)
    server = mockd.start(mocks_config(http_mock("hello", "/hello", "hi")), "--tls-cert", str(cert), "--tls-key",
                         str(key), "--admin-tls-cert", str(cert), "--admin-tls-key", str(key))
    assert server.mock_url.startswith("https://") and server.admin_url.startswith("https://")
    assert (await acurl(f"{server.mock_url}/hello", "--cacert", str(ca))).stdout == "hi"
    health = await acurl(f"{server.admin_url}/health", "--cacert", str(ca))
    assert json.loads(health.stdout)["status"] == "ok"
    plain = await acurl(f"{server.mock_url.replace('https', 'http')}/hello")
    assert plain.stdout != "hi"  # plain HTTP is not served on a TLS listener


@pytest.mark.parametrize(("flags", "message"), [
    (["--tls-cert", "missing.pem"], "cannot use --tls-cert missing.pem: No such file or directory"),
    (["--tls-key", "key.pem"], "--tls-key needs --tls-cert"),
    (["--tls-self-signed", "--tls-cert", "cert.pem"], "give --tls-cert (and --tls-key) or --tls-self-signed, not both"),
    (["--upstream-key", "key.pem"], "--upstream-key needs --upstream-cert"),
])
def test_tls_flags_that_cannot_work_are_one_line_on_stderr(tmp_path: Path, flags: list[str], message: str) -> None:
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path / "data"), *flags,
                       cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"mockd: error: {message}"]


def test_a_certificate_that_is_not_pem_is_named(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    result = run_mockd("serve", "--port", "0", "--admin-port", "0", "--data-dir", str(tmp_path / "data"),
                       "--tls-cert", "cert.pem", cwd=tmp_path)
    assert result.returncode == 1
    line, = result.stderr.strip().splitlines()
    assert line.startswith("mockd: error: cannot use --tls-cert cert.pem: "), line


# --- from Python and pytest -----------------------------------------------------------------------


@pytest.mark.parametrize("subprocess_mode", [False, True], ids=["in-process", "subprocess"])
async def test_an_embedded_server_and_a_cassette_record_from_a_private_ca_upstream(
        authority: trustme.CA, tmp_path: Path, subprocess_mode: bool) -> None:
    from mockd import Server
    from mockd.testing.cassettes import Cassette

    ca = write_ca(authority, tmp_path)
    async with https_upstream(server_context(authority.issue_cert("localhost"))) as https:
        with Server(upstream=https, upstream_ca=ca, subprocess=subprocess_mode) as server:
            assert json.loads((await acurl(f"{server.url}/api/x")).stdout)["path"] == "/api/x"
        with Server(upstream=https, subprocess=subprocess_mode) as untrusting:
            assert "unknown CA" in (await acurl(f"{untrusting.url}/api/x")).stdout

        cassette_file = tmp_path / "cassettes" / f"tls-{subprocess_mode}.json"

        def record() -> None:
            with Cassette(cassette_file, "record", {"upstream": https, "upstream_ca": str(ca)}) as cassette:
                assert cassette.server is not None
                assert json.loads(curl(f"{cassette.server.url}/api/recorded").stdout)["path"] == "/api/recorded"

        await asyncio.to_thread(record)
    with Cassette(cassette_file, "replay", {}) as replayed:  # the upstream is gone: the cassette answers
        assert replayed.server is not None
        assert json.loads((await acurl(f"{replayed.server.url}/api/recorded")).stdout)["path"] == "/api/recorded"


async def test_the_byte_relay_carries_wss_clients_through_a_tls_listener_to_a_wss_upstream(
        mockd: MockdFactory, authority: trustme.CA, tmp_path: Path) -> None:
    """Both legs on TLS: frames pass as bytes between two SSL transports (deflate negotiated end to
    end), and the recording holds them decoded."""
    from test_proxy_byte_relay import relay_choice
    from sessions import start_session, stop_session
    from test_recording_api import summary

    context = server_context(authority.issue_cert("localhost"))
    async with wss_upstream(context) as wss:
        server = mockd.start(None, "--upstream", wss, "--upstream-ca", str(write_ca(authority, tmp_path)),
                             "--tls-self-signed", "--log-level", "debug", "--log-format", "json")
        recording_id = await start_session(server, "websocket", "/*")
        trusting = ssl.create_default_context(cafile=server.ready["caFile"])
        assert await echo_once(f"{server.ready['mockWsUrl']}/tls/chat", "hello ✓", ssl=trusting) == "echo hello ✓"
        assert (await relay_choice(server, "/tls/chat")).startswith("WebSocket /tls/chat: byte relay, extensions "
                                                                   "permessage-deflate")
        recording = await stop_session(server, recording_id)
    texts = [(direction, data) for direction, kind, data in summary(recording) if kind == "text"]
    assert texts == [("c2s", "hello ✓"), ("s2c", "echo hello ✓")]
