"""Small blocking HTTP clients for the black-box tests, independent of mockd's own stack (aiohttp).

Two flavours, both answering with a :class:`Reply`:

* :func:`call` goes through ``urllib`` (JSON bodies, 4xx/5xx returned rather than raised), for the
  admin API and plain requests;
* :func:`send` goes through ``http.client``, which puts header names on the wire exactly as given
  (``urllib`` capitalises them), for the tests of case-insensitive header matching.

The async wrapper :func:`acall` runs :func:`call` in a thread, for tests inside an event loop.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
TIMEOUT = 15.0


@dataclass
class Reply:
    """A whole response; ``headers`` is the standard library's case-insensitive header message."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def call(method: str, url: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = TIMEOUT,
         context: ssl.SSLContext | None = None) -> Reply:
    """One request with ``urllib``: ``body`` is sent as JSON, ``raw`` as it is (with a JSON content type);
    ``context`` verifies an https server (default: the system's trust store)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    all_headers = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


async def acall(method: str, url: str, body: Any = None, **kwargs: Any) -> Reply:
    """:func:`call` from inside an event loop, without blocking it."""
    return await asyncio.to_thread(call, method, url, body, **kwargs)


def send(port: int, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes | None = None, timeout: float = TIMEOUT) -> Reply:
    """One request on a fresh ``http.client`` connection; header names go on the wire exactly as given."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()
