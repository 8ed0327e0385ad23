"""HTTP mocks: request matching (pure: method, path, query, headers, body), the near miss a 404 names,
and canned responses."""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import time
from typing import Any

import msgspec
from aiohttp import web

from mockd.config.model import BodyMatch, HttpMatcher, HttpResponse, RequestField, jsonpath_find
from mockd.stream.events import MAX_CAPTURED_BODY, StreamEvents, connection_from_request

# The order fields are compared in; a near miss that got further names a later field.
FIELD_ORDER: tuple[RequestField, ...] = ("method", "path", "query", "headers", "body")
_NOT_JSON = object()
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=256)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


# --- JSON comparison (pure) -------------------------------------------------------------------------


def decode_json(raw: bytes | str) -> Any:
    """The JSON document, or ``_NOT_JSON`` (invalid, or nested deeper than the parser goes)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return _NOT_JSON


def is_json(document: Any) -> bool:
    """Whether :func:`decode_json` found a document."""
    return document is not _NOT_JSON


def json_difference(expected: Any, actual: Any, where: str = "$") -> str | None:
    """The JSONPath of the first place two documents differ (None: equal as JSON). Key order does not
    matter; ``true`` is not ``1``; ``1`` equals ``1.0``."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected.keys() | actual.keys():
            if key not in expected or key not in actual:
                return child_path(where, key)
        for key, value in expected.items():
            found = json_difference(value, actual[key], child_path(where, key))
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (left, right) in enumerate(zip(expected, actual)):
            found = json_difference(left, right, f"{where}[{index}]")
            if found is not None:
                return found
        return None if len(expected) == len(actual) else f"{where}[{min(len(expected), len(actual))}]"
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return None if type(expected) is type(actual) and expected == actual else where
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return None if expected == actual else where
    return None if type(expected) is type(actual) and expected == actual else where


def child_path(where: str, key: str) -> str:
    """The JSONPath of member ``key`` of the value at ``where`` (``$.name`` only for ASCII names, which
    every JSONPath reader takes)."""
    return f"{where}.{key}" if _PLAIN_NAME.fullmatch(key) else f"{where}[{msgspec.json.encode(key).decode()}]"


def without_paths(document: Any, paths: list[str]) -> Any:
    """A copy of ``document`` without the values the JSONPaths find (the original is not changed);
    None when one of them is the root itself (nothing is left to compare)."""
    if not paths:
        return document
    copy = msgspec.json.decode(msgspec.json.encode(document))
    found = {parts for path in paths for parts, _ in jsonpath_find(path, copy)}
    if () in found:
        return None
    for parts in sorted(found, key=_removal_order, reverse=True):  # later list items first
        _remove(copy, parts)
    return copy


def _removal_order(parts: tuple[str | int, ...]) -> list[tuple[int, int, str]]:
    return [(0, part, "") if isinstance(part, int) else (1, 0, part) for part in parts]


def _remove(document: Any, parts: tuple[str | int, ...]) -> None:
    node = document
    for part in parts[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node.pop(last)


# --- matching (pure) --------------------------------------------------------------------------------


def body_mismatch(match: BodyMatch, body: bytes) -> str | None:
    """Why ``body`` does not satisfy ``match`` (None: it does)."""
    if match.type in ("exact", "contains"):
        wanted = base64.b64decode(str(match.value)) if match.encoding == "base64" else str(match.value).encode()
        if match.type == "exact":
            return None if body == wanted else "differs from the expected bytes"
        return None if wanted in body else "does not contain the expected text"
    document = decode_json(body)
    if document is _NOT_JSON:
        return "is not JSON"
    if match.type == "jsonPath":
        assert match.path is not None
        try:
            found = [value for _, value in jsonpath_find(match.path, document)]
        except RecursionError:
            return "is nested too deep"
        if not found:
            return f"has nothing at {match.path}"
        if match.value is msgspec.UNSET or any(json_difference(match.value, item) is None for item in found):
            return None
        return f"has another value at {match.path}"
    try:
        where = json_difference(without_paths(match.value, match.ignore), without_paths(document, match.ignore))
    except RecursionError:
        return "is nested too deep"
    return None if where is None else f"differs at {where}"


def mismatch(matcher: HttpMatcher, request: web.BaseRequest, body: bytes | None,
             skip_body: bool = False) -> tuple[RequestField, str] | None:
    """The first field of the request that ``matcher`` rejects, with why (None: it matches).

    ``body`` is the request body (None: there is none) when the matcher compares it (see
    :func:`needs_body`); ``skip_body`` asks about the other fields only."""
    if matcher.compares("method") and matcher.method is not None and matcher.method.upper() != request.method:
        return "method", f"is {request.method}, not {matcher.method.upper()}"
    if not path_matches(matcher, request.path):
        return "path", f"is {request.path}, not {matcher.path or matcher.path_pattern}"
    if matcher.compares("query"):
        query = request.query
        for name, value in matcher.query.items():
            if name not in matcher.ignore_query and query.get(name) != value:
                return "query", f"{name} is {query.get(name)!r}, not {value!r}"
    if matcher.compares("headers"):
        headers = request.headers
        for name, value in matcher.headers.items():
            if headers.get(name) != value:
                return "headers", f"{name} is {headers.get(name)!r}, not {value!r}"
    if matcher.body is not None and matcher.compares("body") and not skip_body:
        why = body_mismatch(matcher.body, body or b"")
        if why is not None:
            return "body", why
    return None


def path_matches(matcher: HttpMatcher, path: str) -> bool:
    """Exact ``path``, or ``pathPattern`` matching the whole path (always, when ``matchOn`` leaves it out)."""
    if not matcher.compares("path"):
        return True
    if matcher.path is not None:
        return matcher.path == path
    return matcher.path_pattern is None or _pattern(matcher.path_pattern).fullmatch(path) is not None


def needs_body(matcher: HttpMatcher) -> bool:
    return matcher.body is not None and matcher.compares("body")


# --- responses --------------------------------------------------------------------------------------


def body_bytes(body: Any, encoding: str | None = None) -> tuple[bytes, str | None]:
    """The body to send and the content type it implies: strings as they are, other values as JSON."""
    if body is None:
        return b"", None
    if encoding == "base64":
        return base64.b64decode(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return msgspec.json.encode(body), "application/json"


async def captured_body(request: web.BaseRequest, body: bytes | None) -> bytes | None:
    """The request body a recording keeps: as already read for matching, else its first MiB (and a
    byte more, to show it was cut)."""
    if body is not None or not request.body_exists:
        return body
    return await request.content.read(MAX_CAPTURED_BODY + 1)


async def serve_response(response: HttpResponse, request: web.BaseRequest, events: StreamEvents,
                         request_body: bytes | None) -> web.Response:
    """The canned response, after its delay; the exchange is emitted for HTTP recording sessions."""
    started_ns = time.time_ns()
    if response.delay_ms:
        await asyncio.sleep(response.delay_ms / 1000)
    body, implied_type = body_bytes(response.body, response.body_encoding)
    headers = dict(response.headers)
    if implied_type and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = implied_type
    answer = web.Response(status=response.status_code, body=body, headers=headers)
    if events.listening:
        exchange = connection_from_request(request, "http", "mock")
        exchange.opened_ns, exchange.status = started_ns, answer.status
        exchange.request_body = await captured_body(request, request_body)
        exchange.request_size = len(exchange.request_body or b"")
        exchange.response_headers = list(answer.headers.items())
        exchange.response_body, exchange.response_size = body[:MAX_CAPTURED_BODY + 1], len(body)
        events.http_exchange(exchange)
    return answer
