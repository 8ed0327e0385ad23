"""Who may drive the admin API, beyond its token: the developer's own browser is on loopback too.

Three checks, each closing one way a web page could reach a listener on ``127.0.0.1``
(docs/security.md has the threat model):

- **Host allow-list** (DNS rebinding): a request must name the listener by a loopback name or address,
  the address the connection was accepted on, or a host allowed with ``--admin-allowed-host``; a page
  on ``evil.example`` whose name now resolves to 127.0.0.1 sends ``Host: evil.example`` and is refused.
- **Origin** (cross-site requests and WebSocket hijacking): a state-changing request or a WebSocket
  upgrade that carries an ``Origin`` must come from the admin listener's own origin or one allowed
  with ``--admin-allow-origin``. ``curl`` and the CLI send no ``Origin``.
- **JSON only**: a body must be ``application/json``, which a page cannot send cross-site without a
  CORS preflight (that is answered only for allowed origins).

The decision is :func:`refusal`, a plain function of the request's method and headers.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mockd.serving.jsonhttp import Handler, json_error
from mockd.support.runtime import LOOPBACK_NAMES

log = logging.getLogger("mockd.admin")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFLIGHT_MAX_AGE = "600"



class AccessError(ValueError):
    """An ``--admin-allowed-host`` or ``--admin-allow-origin`` that cannot be used."""


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


@dataclass(frozen=True)
class AdminAccess:
    """Hosts (names, no port) and origins (``scheme://host[:port]``) allowed besides loopback and the
    listener's own origin."""

    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    allowed_origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, hosts: Iterable[str], origins: Iterable[str]) -> AdminAccess:
        return cls(frozenset(_checked_host(host) for host in hosts),
                   frozenset(_checked_origin(origin) for origin in origins))


def _checked_host(host: str) -> str:
    name = host_name(host)
    if not name or "/" in name or "*" in name:
        raise AccessError(f"--admin-allowed-host {host!r}: expected a host name or address, as in mockd.internal")
    return name


def _checked_origin(origin: str) -> str:
    scheme, separator, rest = origin.rstrip("/").partition("://")
    if origin == "*" or not separator or scheme not in ("http", "https") or not rest or "/" in rest:
        raise AccessError(f"--admin-allow-origin {origin!r}: expected scheme://host[:port], as in "
                          "http://localhost:5173 (no path, no wildcard)")
    return f"{scheme}://{rest}".lower()


def host_name(host: str) -> str:
    """The name part of a ``Host`` header, lower case: ``[::1]:4290`` → ``::1``, ``Localhost.:80`` → ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") > 1:  # a bare IPv6 address
        return host
    return host.partition(":")[0].rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def refusal(method: str, headers: Mapping[str, str], scheme: str, local_address: str | None,
            access: AdminAccess, has_body: bool, content_type: str) -> Refusal | None:
    """Why this request may not reach the admin API, or None when it may."""
    host = headers.get("Host")
    if host is not None:
        name = host_name(host)
        accepted_on = local_address is not None and _is_ip(name) and \
            ipaddress.ip_address(name) == ipaddress.ip_address(local_address)
        if name not in LOOPBACK_NAMES and name not in access.allowed_hosts and not accepted_on:
            return Refusal(403, "host_not_allowed",
                           f"Host {host!r} is not this admin API's: use localhost or 127.0.0.1, or allow it "
                           "with --admin-allowed-host (a page after DNS rebinding names its own host)")
    origin = headers.get("Origin")
    upgrade = headers.get("Upgrade", "").lower() == "websocket"
    if origin is not None and (method in STATE_CHANGING or upgrade):
        own = f"{scheme}://{host}".lower() if host is not None else None
        if origin.lower() != own and origin.lower() not in access.allowed_origins:
            return Refusal(403, "origin_not_allowed",
                           f"Requests from {origin!r} may not change this admin API (a web page cannot drive it); "
                           "allow an origin with --admin-allow-origin")
    if has_body and content_type != "application/json" and not content_type.endswith("+json"):
        return Refusal(415, "unsupported_media_type",
                       f"A request body must be JSON, sent with Content-Type: application/json (got "
                       f"{content_type or 'none'!r})")
    return None


def _local_address(request: web.BaseRequest) -> str | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return str(sockname[0]) if isinstance(sockname, tuple) and sockname else None


def admin_guard(access: AdminAccess) -> Any:
    """The middleware: refuses what :func:`refusal` refuses (403/415 JSON and a warning line), answers
    CORS preflights of allowed origins, and marks their answers readable by them."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin.lower() in access.allowed_origins
        if allowed and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _cors(web.Response(status=204), origin, preflight=True)
        refused = refusal(request.method, request.headers, request.scheme, _local_address(request), access,
                          request.body_exists, request.content_type if request.body_exists else "")
        if refused is not None:
            log.warning("admin API refused %s %s (Host %r, Origin %r): %s", request.method, request.path,
                        request.headers.get("Host"), origin, refused.code)
            return json_error(refused.status, refused.code, refused.message)
        response = await handler(request)
        return _cors(response, origin, preflight=False) if allowed else response

    return guard


def _cors(response: web.StreamResponse, origin: str | None, preflight: bool) -> web.StreamResponse:
    assert origin is not None
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    if preflight:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, X-API-Key"
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response
