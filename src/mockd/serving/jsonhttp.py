"""JSON over HTTP for both listeners: responses, the one error shape, and reading request bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]  # what a middleware wraps


class HttpError(Exception):
    """A failure that leaves the admin API as ``{"error": code, "message": sentence}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


OPEN_STREAM = web.RequestKey("mockd.open_stream", web.StreamResponse)  # see start_stream


async def start_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Send ``response``'s head; its body follows in pieces. From here on a failure cannot be answered
    with an error (it would land inside the body, chunked or counted): the admin layer's error
    middleware cuts the connection instead, so the client sees the answer broke, and logs why."""
    request[OPEN_STREAM] = response
    await response.prepare(request)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(value), content_type="application/json")


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return json_response({"error": code, "message": message, **extra}, status)


async def read_json(request: web.BaseRequest) -> Any:
    """The request's JSON body; an empty body is ``{}``, anything unparseable a 400 ``invalid_json``."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise HttpError(400, "invalid_json", f"The request body is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's answer to JSON deeper than the recursion limit, not a DecodeError
        raise _too_deep() from None


def _too_deep() -> HttpError:
    """msgspec raises RecursionError (not a DecodeError) for JSON nested past the recursion limit."""
    return HttpError(400, "invalid_json", "The request body is not valid JSON: nested too deep")


Model = TypeVar("Model")


async def read_model(request: web.BaseRequest, model: type[Model], code: str, what: str) -> Model:
    """The JSON body as a typed model (empty = all defaults); a 400 ``code`` naming the problem otherwise."""
    document = await read_json(request)
    try:
        return msgspec.convert(document, model)
    except msgspec.ValidationError as exc:
        raise HttpError(400, code, f"Invalid {what}: {exc}") from None
    except RecursionError:  # decoded just under the limit, converted a few frames deeper
        raise _too_deep() from None
