"""The OpenAPI 3.1 document served at ``/openapi.json``. Schemas come from the typed models themselves."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from mockd import __version__

ERROR_SCHEMA = {"type": "object", "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
_DESCRIPTIONS = {200: "OK", 201: "Created", 204: "No content", 302: "Found (see Location)", 400: "Invalid request",
                 401: "Token missing or wrong",
                 403: "Host or Origin not allowed (docs/security.md)", 404: "Not found", 409: "Conflict",
                 413: "Body too large", 415: "The body is not application/json", 507: "Storage full"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def operation(summary: str, ok: dict[int, dict[str, Any] | None], errors: tuple[int, ...] = (),
              body: dict[str, Any] | None = None, parameters: list[dict[str, Any]] | None = None,
              body_required: bool = True, needs_token: bool = True,
              media_type: str = "application/json") -> dict[str, Any]:
    """One operation: success responses with their schema (``None`` = no body) as ``media_type``, then
    JSON errors: 401 for every route that needs the token when one is configured, 403 for every route
    (the guard's Host and Origin checks), 415 for every route that takes a body."""
    responses: dict[str, Any] = {}
    for status, schema in ok.items():
        responses[str(status)] = {"description": _DESCRIPTIONS.get(status, "OK")}
        if schema is not None:
            responses[str(status)]["content"] = json_content(schema, media_type)
    guarded = (403, 415) if body is not None else (403,)
    for status in sorted({*errors, *guarded, *((401,) if needs_token else ())}):
        responses[str(status)] = {"description": _DESCRIPTIONS[status], "content": json_content(ref("Error"))}
    result: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        result["requestBody"] = {"required": body_required, "content": json_content(body)}
    if parameters:
        result["parameters"] = parameters
    return result


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


@functools.cache
def model_schemas(models: tuple[Any, ...]) -> dict[str, Any]:
    _, components = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")
    return components


def openapi_document(paths: dict[str, Any], models: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mockd admin API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {**model_schemas(models), "Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{}, {"bearer": []}, {"apiKey": []}],
    }
