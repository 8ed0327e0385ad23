"""``/mocks``: list, add or replace (one mock or a whole config document), show, remove and reset mocks at
run time. Mocks added here match after the config files' and before the ``--upstream`` proxies."""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web

from mockd.admin.answers import LoadedMocks
from mockd.admin.openapi import operation, path_parameter, ref
from mockd.config.model import CONFIG_VERSION, ConfigError, Mock, mocks_from_document, parse_mock
from mockd.serving.jsonhttp import HttpError, json_response, read_json
from mockd.serving.registry import MockRegistry

DOCUMENT = "document"  # how errors in a posted config document name it: "document: mock 'x' (mocks[1]): ..."


def is_document(body: Any) -> bool:
    """A config document (``{"version": "1.0", "mocks": [...]}``) rather than one mock: it has ``mocks``."""
    return isinstance(body, dict) and "mocks" in body


def document_mocks(body: Any) -> list[Mock]:
    """Every mock of a posted config document, validated as a config file's are; ids must differ."""
    try:
        mocks = mocks_from_document(body, DOCUMENT)
    except ConfigError as exc:
        raise HttpError(400, "invalid_config", str(exc)) from None
    first_seen: dict[str, int] = {}
    for index, mock in enumerate(mocks):
        if mock.id is None:
            continue
        if mock.id in first_seen:
            raise HttpError(400, "duplicate_id", f"{DOCUMENT}: mock {mock.id!r} (mocks[{index}]): id: duplicate mock "
                           f"id (first at mocks[{first_seen[mock.id]}])", id=mock.id,
                           indexes=[first_seen[mock.id], index])
        first_seen[mock.id] = index
    return mocks


# --- OpenAPI ----------------------------------------------------------------------------------------

MOCK_ID = path_parameter("id", "The mock's id")
MOCK = {"oneOf": [ref(kind.__name__) for kind in get_args(Mock)],
        "discriminator": {"propertyName": "type", "mapping": {
            kind.__struct_config__.tag: ref(kind.__name__)["$ref"] for kind in get_args(Mock)}}}
MOCK_LIST = {"type": "object", "required": ["mocks"], "properties": {"mocks": {"type": "array", "items": MOCK}}}
CONFIG_DOCUMENT = {"type": "object", "required": ["version", "mocks"], "additionalProperties": False,
                   "description": "A whole config document, as in a config file or as convert writes it",
                   "properties": {"version": {"const": CONFIG_VERSION}, "mocks": {"type": "array", "items": MOCK}}}
MODELS = (Mock, LoadedMocks)
PATHS = {
    "/mocks": {
        "get": operation("List mocks in match order: config files, then those added at run time, then the "
                         "--upstream proxies", {200: MOCK_LIST}),
        "post": operation(
            "Add a mock, or replace the one with the same id in place (its connections are closed with 1012). "
            "A config document (an object with `mocks`) loads all its mocks or none: 201 when it added any, "
            "200 when it only replaced", {200: {"oneOf": [MOCK, ref("LoadedMocks")]},
                                          201: {"oneOf": [MOCK, ref("LoadedMocks")]}},
            (400, 413), body={"oneOf": [MOCK, CONFIG_DOCUMENT]}),
        "delete": operation("Reset to the start-up mocks and upstreams: runtime changes undone, `times` counts at "
                            "zero, connections of removed or replaced mocks closed with 1012", {200: MOCK_LIST}),
    },
    "/mocks/{id}": {
        "get": operation("Show a mock", {200: MOCK}, (404,), parameters=[MOCK_ID]),
        "delete": operation("Remove a mock, an --upstream proxy too (its connections are closed with 1012)",
                            {204: None}, (404,), parameters=[MOCK_ID]),
    },
}


def add_routes(router: web.UrlDispatcher, key: web.AppKey[MockRegistry]) -> None:
    def existing(request: web.Request) -> Mock:
        mock = request.app[key].get(request.match_info["id"])
        if mock is None:
            raise HttpError(404, "not_found", f"No mock with id {request.match_info['id']!r}.")
        return mock

    async def list_mocks(request: web.Request) -> web.Response:
        return json_response({"mocks": request.app[key].mocks})

    async def create_mock(request: web.Request) -> web.Response:
        body = await read_json(request)
        if is_document(body):
            stored, replaced = request.app[key].put_all(document_mocks(body))
            added = len(stored) - replaced
            return json_response(LoadedMocks(mocks=stored, added=added, replaced=replaced), 201 if added else 200)
        try:
            mock = parse_mock(body)
        except ConfigError as exc:
            raise HttpError(400, "invalid_mock", str(exc)) from None
        stored_mock, was_replaced = request.app[key].put(mock)
        return json_response(stored_mock, 200 if was_replaced else 201)

    async def reset_mocks(request: web.Request) -> web.Response:
        return json_response({"mocks": request.app[key].reset()})

    async def get_mock(request: web.Request) -> web.Response:
        return json_response(existing(request))

    async def delete_mock(request: web.Request) -> web.Response:
        request.app[key].remove(existing(request).id or "")
        return web.Response(status=204)

    router.add_get("/mocks", list_mocks)
    router.add_post("/mocks", create_mock)
    router.add_delete("/mocks", reset_mocks)
    router.add_get("/mocks/{id}", get_mock)
    router.add_delete("/mocks/{id}", delete_mock)
