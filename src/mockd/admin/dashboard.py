"""The dashboard's files on the admin listener: ``/ui/`` serves the static page shipped in
``mockd/admin/ui/`` (HTML, ES modules, CSS: no build step, nothing fetched from elsewhere), ``/`` sends
a browser there and tells a program where things are.

The files hold code and no data, so they are served without the token (a browser cannot send one on
navigation); every call the page makes for data carries it, as any client's does. The host check of
:mod:`mockd.admin.guard` applies to them as to every path (a page after DNS rebinding cannot load
them). Recorded frames are hostile input, so the page writes them as text only, and every answer here
carries a Content-Security-Policy that allows no inline script, no eval and no other origin.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
from aiohttp import web

from mockd import __version__
from mockd.admin.openapi import operation, ref
from mockd.serving.jsonhttp import json_response

UI_DIRECTORY = Path(__file__).with_name("ui")
UI_PREFIX = "/ui/"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_SERVED_NAME = re.compile(r"[a-z0-9_-]+\.(?:html|js|css|svg)")

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
UI_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
              "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


class AdminIndex(msgspec.Struct):
    """``GET /`` for a program: where the dashboard and the API's description are."""

    name: str
    version: str
    dashboard: str
    openapi: str
    health: str


def is_open(path: str) -> bool:
    """Paths served without the token: the index and the dashboard's files (neither holds data)."""
    return path in ("/", "/ui") or path.startswith(UI_PREFIX)


def ui_file(name: str) -> Path | None:
    """The dashboard file ``name`` names, or None: only plain names of the shipped directory."""
    if not _SERVED_NAME.fullmatch(name):
        return None
    path = UI_DIRECTORY / name
    return path if path.is_file() else None


async def index(request: web.Request) -> web.Response:
    if "text/html" in request.headers.get("Accept", ""):
        raise web.HTTPFound(UI_PREFIX, headers=UI_HEADERS)
    return json_response(AdminIndex(name="mockd", version=__version__, dashboard=UI_PREFIX,
                                    openapi="/openapi.json", health="/health"))


async def to_ui(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(UI_PREFIX, headers=UI_HEADERS)


async def ui(request: web.Request) -> web.Response:
    name = request.match_info["name"] or "index.html"
    path = ui_file(name)
    if path is None:
        raise web.HTTPNotFound(text=f"The dashboard has no file {name[:60]!r}")
    return web.Response(body=path.read_bytes(), content_type=CONTENT_TYPES[path.suffix], charset="utf-8",
                        headers=UI_HEADERS)


PATHS = {
    "/": {"get": operation("Where the dashboard and this document are; a browser (Accept: text/html) is sent "
                           "to /ui/", {200: ref("AdminIndex"), 302: None}, needs_token=False)},
    "/ui/": {"get": operation("The dashboard's page (static files under /ui/, served without the token: every "
                              "call the page makes carries one)", {200: {"type": "string"}}, needs_token=False,
                             media_type="text/html")},
}
MODELS = (AdminIndex,)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", index)
    router.add_get("/ui", to_ui)
    router.add_get(UI_PREFIX + "{name:[^/]*}", ui)
