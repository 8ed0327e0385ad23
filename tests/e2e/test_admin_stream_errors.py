"""The admin layer's error middleware with answers sent in pieces (``start_stream``): a failure after the
head cuts the connection instead of writing a JSON 500 into the body, and the log says so; a failure
before the head is still the JSON error. Real sockets: the middleware in an aiohttp app on a free
loopback port, read by a raw asyncio client."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from mockd.admin.app import errors_as_json
from mockd.recording.store import NotFound
from mockd.serving.jsonhttp import HttpError, start_stream

FIRST_PIECE = b"first piece of the answer\n"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fails_after_head(error: Exception, length: int | None = None, content_type: str = "text/event-stream") -> Handler:
    """A handler that starts its answer (chunked, or counted when ``length`` is given), writes
    ``FIRST_PIECE`` and then raises ``error``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = length
        await start_stream(request, response)
        await response.write(FIRST_PIECE)
        raise error

    return handler


async def fails_before_head(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("nothing was sent yet")


ROUTES: dict[str, Handler] = {
    "/chunked": fails_after_head(RuntimeError("the source broke mid-answer")),
    "/counted": fails_after_head(RuntimeError("the spooled file broke mid-answer"), 10 * len(FIRST_PIECE),
                                 "application/json"),
    "/left": fails_after_head(ConnectionResetError("the client went away"), content_type="text/plain"),
    "/store": fails_after_head(NotFound("the recording was deleted while it was being followed")),
    "/api": fails_after_head(HttpError(409, "conflict", "a domain answer that comes too late")),
    "/before": fails_before_head}


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = web.Application(middlewares=[errors_as_json])
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def raw_get(port: int, path: str) -> tuple[bytes, bytes]:
    """The head and everything after it, read until the server closes the connection (it does so at
    the end of an answer that was not cut too: the request asks it to)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    received = await asyncio.wait_for(reader.read(-1), timeout=10)  # EOF: the server closed it
    writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


async def test_a_chunked_answer_that_fails_after_its_head_is_cut_not_ended_with_an_error(
        port: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mockd.admin"):
        head, body = await raw_get(port, "/chunked")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    assert FIRST_PIECE in body
    assert not body.endswith(b"0\r\n\r\n")  # no last chunk: the client sees the answer broke off
    assert b"internal_error" not in body and b"HTTP/1.1 500" not in body
    cut = [record for record in caplog.records if "failed mid-stream; the stream is cut" in record.getMessage()]
    assert len(cut) == 1 and cut[0].levelno == logging.ERROR and "/chunked" in cut[0].getMessage()
    assert cut[0].exc_info is not None and "the source broke" in str(cut[0].exc_info[1])


@pytest.mark.parametrize("path", ["/store", "/api"])
async def test_a_domain_error_after_the_head_cuts_the_stream_too(port: int, path: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A store or API error has its own JSON answer before the head; after it, it is cut like any other."""
    with caplog.at_level(logging.DEBUG, logger="mockd.admin"):
        head, body = await raw_get(port, path)
    assert head.startswith(b"HTTP/1.1 200") and FIRST_PIECE in body
    assert not body.endswith(b"0\r\n\r\n")
    assert b'"error"' not in body and b"HTTP/1.1 4" not in body
    assert any("failed mid-stream; the stream is cut" in record.getMessage() and path in record.getMessage()
               for record in caplog.records)


async def test_a_counted_answer_that_fails_after_its_head_ends_short(port: int) -> None:
    head, body = await raw_get(port, "/counted")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"content-length: {10 * len(FIRST_PIECE)}".encode() in head.lower()
    assert body == FIRST_PIECE  # fewer bytes than announced, then the end of the connection


async def test_a_client_that_left_mid_stream_is_no_error_in_the_log(port: int,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mockd.admin"):
        head, body = await raw_get(port, "/left")
    assert head.startswith(b"HTTP/1.1 200") and FIRST_PIECE in body
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert any("the client left mid-stream" in record.getMessage() for record in caplog.records)


async def test_a_failure_before_the_head_is_still_the_json_500(port: int) -> None:
    head, body = await raw_get(port, "/before")
    assert head.startswith(b"HTTP/1.1 500")
    assert json.loads(body)["error"] == "internal_error"
