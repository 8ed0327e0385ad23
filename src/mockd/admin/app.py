"""The admin application: error shape, token auth, and the routes of every admin module."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from mockd import __version__
from mockd.admin import dashboard
from mockd.admin import mocks as mock_routes
from mockd.admin import recordings as recording_routes
from mockd.admin import replays as replay_routes
from mockd.admin.guard import AdminAccess, admin_guard
from mockd.admin.openapi import openapi_document, operation
from mockd.playback.replays import Replays
from mockd.recording.session import Recorder
from mockd.recording.store import (AmbiguousId, InvalidId, InvalidSort, NotFound, StorageFull, StoreError,
                                   UnreadableRecording)
from mockd.serving.jsonhttp import OPEN_STREAM, Handler, HttpError, json_error, json_response
from mockd.serving.registry import MockRegistry

log = logging.getLogger("mockd.admin")

REGISTRY = web.AppKey("registry", MockRegistry)
RECORDER = web.AppKey("recorder", Recorder)
REPLAYS = web.AppKey("replays", Replays)
MAX_BODY_BYTES = 16 * 1024 * 1024

_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type"}

# the store's failures as the API answers them (mockd.recording.store: the domain knows no HTTP)
STORE_STATUS: dict[type[StoreError], int] = {
    InvalidId: 400, InvalidSort: 400, NotFound: 404, AmbiguousId: 409, UnreadableRecording: 409, StorageFull: 507}



@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"error", "message"}``; an unexpected one is logged and becomes a 500.
    Once a streamed answer's head is out (:func:`start_stream`), any failure cuts the connection instead."""
    try:
        return await handler(request)
    except Exception as exc:  # noqa: BLE001 - each is cut or answered below (an unexpected one logged)
        if (stream := request.get(OPEN_STREAM)) is not None:
            return _cut(request, stream, exc)
        return _error_answer(request, exc)


def _error_answer(request: web.Request, error: Exception) -> web.StreamResponse:
    """The JSON answer to a failure before any of the answer went out: a domain error with its own status,
    aiohttp's own errors by theirs (a redirect is re-raised: it is no error), anything else a 500."""
    if isinstance(error, HttpError):
        return json_error(error.status, error.code, error.message, **error.extra)
    if isinstance(error, StoreError):
        return json_error(STORE_STATUS[type(error)], error.code, error.message, **error.extra)
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error
        code = _ERROR_CODES.get(error.status, "http_error")
        message = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
        return json_error(error.status, code, f"{message} ({request.method} {request.path})")
    log.error("admin request %s %s failed", request.method, request.path, exc_info=error)
    return json_error(500, "internal_error", "The server failed to handle this request; see its log.")


def _cut(request: web.Request, stream: web.StreamResponse, error: Exception) -> web.StreamResponse:
    """A streamed answer failed after its head went out (see :func:`start_stream`): no error answer can
    follow it, so the connection is cut, and the log says why."""
    if isinstance(error, ConnectionError):
        log.debug("admin request %s %s: the client left mid-stream", request.method, request.path)
    else:
        log.error("admin request %s %s failed mid-stream; the stream is cut", request.method, request.path,
                  exc_info=error)
    if request.transport is not None:
        request.transport.close()
    return stream


def token_auth(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/health" and not dashboard.is_open(request.path):
            authorization = request.headers.get("Authorization", "")
            bearer = authorization[:7].lower() == "bearer "
            given = authorization[7:] if bearer else request.headers.get("X-API-Key", "")
            if not hmac.compare_digest(given.encode(), expected):
                return json_error(401, "unauthorized",
                                  "This admin API needs a token: send 'Authorization: Bearer <token>' or 'X-API-Key'.")
        return await handler(request)

    return require_token


async def health(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    return json_response({"status": "ok", "version": __version__, "mocks": len(registry.mocks)})


PATHS = {
    "/health": {"get": operation("Liveness; never needs a token", {200: {
        "type": "object", "required": ["status"],
        "properties": {"status": {"const": "ok"}, "version": {"type": "string"}, "mocks": {"type": "integer"}}}},
        needs_token=False)},
    "/openapi.json": {"get": operation("This document", {200: {"type": "object"}})},
}


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(
        {**PATHS, **dashboard.PATHS, **mock_routes.PATHS, **recording_routes.PATHS, **replay_routes.PATHS},
        (*dashboard.MODELS, *mock_routes.MODELS, *recording_routes.MODELS, *replay_routes.MODELS)))


def create_admin_app(registry: MockRegistry, recorder: Recorder, replays: Replays, token: str | None,
                     outer: Sequence[Any] = (), access: AdminAccess | None = None) -> web.Application:
    """``outer`` middlewares run first (the access log sees every answer, refusals included); then the
    guard against web pages (:mod:`mockd.admin.guard`), the error shape, the token."""
    middlewares = [*outer, admin_guard(access or AdminAccess()), errors_as_json] + \
        ([token_auth(token)] if token else [])
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[REGISTRY] = registry
    app[RECORDER] = recorder
    app[REPLAYS] = replays
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    dashboard.add_routes(app.router)
    mock_routes.add_routes(app.router, REGISTRY)
    recording_routes.add_routes(app.router, RECORDER)
    replay_routes.add_routes(app.router, REPLAYS, RECORDER)
    return app
