"""``/mocks``: list, add or replace, show and remove mocks at run time."""

from __future__ import annotations

from typing import get_args

from aiohttp import web

from mockd.admin.openapi import operation, path_parameter, ref
from mockd.config import ConfigError, Mock, parse_mock
from mockd.jsonhttp import ApiError, json_response, read_json
from mockd.mocks.registry import MockRegistry


MOCK_ID = path_parameter("id", "The mock's id")
MOCK = {"oneOf": [ref(kind.__name__) for kind in get_args(Mock)],
        "discriminator": {"propertyName": "type", "mapping": {
            kind.__struct_config__.tag: ref(kind.__name__)["$ref"] for kind in get_args(Mock)}}}
MODELS = (Mock,)
PATHS = {
    "/mocks": {
        "get": operation("List mocks in match order", {200: {"type": "object", "required": ["mocks"], "properties": {
            "mocks": {"type": "array", "items": MOCK}}}}),
        "post": operation("Add a mock, or replace the one with the same id (its WebSocket connections are "
                          "closed with 1012)", {200: MOCK, 201: MOCK}, (400, 413), body=MOCK),
    },
    "/mocks/{id}": {
        "get": operation("Show a mock", {200: MOCK}, (404,), parameters=[MOCK_ID]),
        "delete": operation("Remove a mock (its WebSocket connections are closed with 1012)", {204: None}, (404,),
                            parameters=[MOCK_ID]),
    },
}


def add_routes(router: web.UrlDispatcher, key: web.AppKey[MockRegistry]) -> None:
    def existing(request: web.Request) -> Mock:
        mock = request.app[key].get(request.match_info["id"])
        if mock is None:
            raise ApiError(404, "not_found", f"No mock with id {request.match_info['id']!r}.")
        return mock

    async def list_mocks(request: web.Request) -> web.Response:
        return json_response({"mocks": request.app[key].mocks})

    async def create_mock(request: web.Request) -> web.Response:
        try:
            mock = parse_mock(await read_json(request))
        except ConfigError as exc:
            raise ApiError(400, "invalid_mock", str(exc)) from None
        stored, replaced = request.app[key].put(mock)
        return json_response(stored, 200 if replaced else 201)

    async def get_mock(request: web.Request) -> web.Response:
        return json_response(existing(request))

    async def delete_mock(request: web.Request) -> web.Response:
        request.app[key].remove(existing(request).id or "")
        return web.Response(status=204)

    router.add_get("/mocks", list_mocks)
    router.add_post("/mocks", create_mock)
    router.add_get("/mocks/{id}", get_mock)
    router.add_delete("/mocks/{id}", delete_mock)
