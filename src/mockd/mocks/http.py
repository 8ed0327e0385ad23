"""HTTP mocks: request matching and canned responses."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

import msgspec
from aiohttp import web

from mockd.config import HttpMatcher, HttpResponse


@functools.lru_cache(maxsize=256)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def request_matches(matcher: HttpMatcher, request: web.BaseRequest) -> bool:
    """Method (any when unset), exact ``path`` or full-match ``pathPattern``, then headers and query."""
    if matcher.method is not None and matcher.method.upper() != request.method:
        return False
    if matcher.path is not None:
        if matcher.path != request.path:
            return False
    elif matcher.path_pattern is not None and _pattern(matcher.path_pattern).fullmatch(request.path) is None:
        return False
    headers = request.headers
    if any(headers.get(name) != value for name, value in matcher.headers.items()):
        return False
    query = request.query
    return all(query.get(name) == value for name, value in matcher.query.items())


def body_bytes(body: Any) -> tuple[bytes, str | None]:
    """The body to send and the content type it implies: strings as they are, other values as JSON."""
    if body is None:
        return b"", None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return msgspec.json.encode(body), "application/json"


async def serve_response(response: HttpResponse) -> web.Response:
    if response.delay_ms:
        await asyncio.sleep(response.delay_ms / 1000)
    body, implied_type = body_bytes(response.body)
    headers = dict(response.headers)
    if implied_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = implied_type
    return web.Response(status=response.status_code, body=body, headers=headers)
