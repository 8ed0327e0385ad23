"""``/stream-recordings``: sessions, recordings, storage — the seed's admin API table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from mockd.admin.openapi import operation, path_parameter, ref
from mockd.answers import RecordingList, Started
from mockd.config import ConfigFile
from mockd.convert import ConvertOptions, NoSuchConnection, NothingToConvert, config_bytes, convert
from mockd.jsonhttp import ApiError, json_response, read_model
from mockd.recording.format import Recording, Summary, decode_recording
from mockd.recording.session import PROTOCOLS, Recorder, SessionLimits
from mockd.recording.store import SORT_KEYS, ListQuery, StoreError

STATUSES = ("recording", "complete", "incomplete")
MAX_LIMIT = 10_000


class StartRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    protocol: Any = None
    path: Any = None
    name: str | None = None
    headers: dict[str, str] = {}
    max_duration_ms: int | None = None
    max_frames: int | None = None


def _store_errors(error: StoreError) -> ApiError:
    return ApiError(error.status, error.code, error.message, **error.extra)


async def _parse_start(http_request: web.Request) -> StartRequest:
    request = await read_model(http_request, StartRequest, "invalid_request", "start request")
    if request.protocol not in PROTOCOLS:
        raise ApiError(400, "invalid_protocol", f"protocol must be \"websocket\", \"sse\" or \"http\", got "
                       f"{request.protocol!r}")
    if not isinstance(request.path, str) or not request.path.startswith("/"):
        raise ApiError(400, "invalid_path", f"path must be a string starting with '/', got {request.path!r}")
    for name in ("max_duration_ms", "max_frames"):
        value = getattr(request, name)
        if value is not None and value <= 0:
            raise ApiError(400, "invalid_request", f"{name.replace('_ms', 'Ms').replace('_f', 'F')} must be positive")
    return request


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_filter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _choice(request: web.Request, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    raw = request.query.get(name, default)
    if raw is not None and raw not in choices:
        raise ApiError(400, "invalid_filter", f"{name} must be one of: {', '.join(choices)}")
    return raw


def list_query(request: web.Request) -> ListQuery:
    include = request.query.get("includeDeleted", "false").lower()
    if include not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_filter", "includeDeleted must be true or false")
    return ListQuery(
        protocol=_choice(request, "protocol", PROTOCOLS), status=_choice(request, "status", STATUSES),
        path=request.query.get("path"), name=request.query.get("name"), include_deleted=include in ("true", "1"),
        sort_by=_choice(request, "sortBy", tuple(SORT_KEYS), "startTime") or "startTime",
        sort_order=_choice(request, "sortOrder", ("asc", "desc"), "desc") or "desc",
        limit=_int_param(request, "limit", None, 0, MAX_LIMIT), offset=_int_param(request, "offset", 0, 0, 10**9) or 0)


def recording_response(source: bytes | Path, status: int = 200, filename: str | None = None) -> web.StreamResponse:
    """The recording document: bytes as they are, or a file streamed from disk in chunks (with its
    ``Content-Length``; constant memory whatever its size)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else {}
    if isinstance(source, Path):
        return web.FileResponse(source, status=status, headers={**headers, "Content-Type": "application/json"})
    return web.Response(status=status, body=source, content_type="application/json", headers=headers)


def resolve_id(recorder: Recorder, reference: str) -> str:
    """The recording id for an id or unique prefix, or the API's 400/404/409."""
    try:
        return recorder.resolve(reference)
    except StoreError as exc:
        raise _store_errors(exc) from None


async def recording_file(recorder: Recorder, recording_id: str) -> bytes:
    """The recording's bytes; a running session's recording so far."""
    try:
        return await recorder.recording_bytes(recording_id)
    except StoreError as exc:
        raise _store_errors(exc) from None


def add_routes(router: web.UrlDispatcher, key: web.AppKey[Recorder]) -> None:
    def resolve(request: web.Request) -> str:
        return resolve_id(request.app[key], request.match_info["id"])

    async def finished(request: web.Request, recording_id: str) -> bytes:
        return await recording_file(request.app[key], recording_id)

    async def list_recordings(request: web.Request) -> web.Response:
        query = list_query(request)
        try:
            summaries, total = request.app[key].store.list(query)
        except StoreError as exc:
            raise _store_errors(exc) from None
        return json_response(RecordingList(recordings=summaries, total=total, limit=query.limit, offset=query.offset))

    async def stats(request: web.Request) -> web.Response:
        return json_response(request.app[key].store.stats())

    async def sessions(request: web.Request) -> web.Response:
        return json_response([session.summary() for session in request.app[key].sessions.values()])

    async def start(request: web.Request) -> web.Response:
        body = await _parse_start(request)
        try:
            session, warning = request.app[key].start(
                body.protocol, body.path, body.name, body.headers,
                SessionLimits(max_duration_ms=body.max_duration_ms, max_frames=body.max_frames))
        except StoreError as exc:
            raise _store_errors(exc) from None
        return json_response(Started(session_id=session.id, recording_id=session.id, warning=warning), 201)

    async def vacuum(request: web.Request) -> web.Response:
        removed, freed = request.app[key].store.vacuum()
        return json_response({"removed": removed, "freedBytes": freed})

    async def sent(request: web.Request, recording_id: str) -> bytes | Path:
        try:
            return await request.app[key].recording_source(recording_id)
        except StoreError as exc:
            raise _store_errors(exc) from None

    async def get_recording(request: web.Request) -> web.StreamResponse:
        return recording_response(await sent(request, resolve(request)))

    async def delete_recording(request: web.Request) -> web.Response:
        recording_id = resolve(request)
        recorder = request.app[key]
        if recording_id in recorder.sessions:
            raise ApiError(409, "recording", "This session is still recording; stop it first")
        if request.query.get("permanent", "false").lower() in ("true", "1"):
            recorder.store.delete_permanently(recording_id)
        else:
            recorder.store.soft_delete(recording_id)
        return web.Response(status=204)

    async def stop(request: web.Request) -> web.Response:
        recording_id = resolve(request)
        recorder = request.app[key]
        if recording_id not in recorder.sessions:
            raise ApiError(409, "not_recording", f"Recording {recording_id} is not recording (already stopped)")
        return recording_response(await recorder.stop(recording_id))

    async def export(request: web.Request) -> web.StreamResponse:
        recording_id = resolve(request)
        return recording_response(await sent(request, recording_id), filename=f"{recording_id}.json")

    router.add_get("/stream-recordings", list_recordings)
    router.add_get("/stream-recordings/stats", stats)
    router.add_get("/stream-recordings/sessions", sessions)
    router.add_post("/stream-recordings/start", start)
    router.add_post("/stream-recordings/vacuum", vacuum)
    router.add_get("/stream-recordings/{id}", get_recording)
    router.add_delete("/stream-recordings/{id}", delete_recording)
    router.add_post("/stream-recordings/{id}/stop", stop)
    async def convert_recording(request: web.Request) -> web.Response:
        recording_id = resolve(request)
        options = await read_model(request, ConvertOptions, "invalid_options", "convert options")
        recording = decode_recording(await finished(request, recording_id))
        try:
            config = convert(recording, options, request.app[key].redactor.redact_value)
        except NothingToConvert as exc:
            raise ApiError(400, "nothing_to_convert", str(exc)) from None
        except NoSuchConnection as exc:
            raise ApiError(400, "no_such_connection", str(exc)) from None
        return web.Response(body=config_bytes(config), content_type="application/json")

    router.add_post("/stream-recordings/{id}/export", export)
    router.add_post("/stream-recordings/{id}/convert", convert_recording)


# --- OpenAPI ----------------------------------------------------------------------------------------

RECORDING_ID = path_parameter("id", "A recording id or a unique prefix of one (12 characters, as lists show)")
_QUERY = [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in (
    ("protocol", {"enum": list(PROTOCOLS)}), ("path", {"type": "string"}), ("status", {"enum": list(STATUSES)}),
    ("name", {"type": "string"}), ("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}),
    ("offset", {"type": "integer", "minimum": 0}), ("sortBy", {"enum": list(SORT_KEYS)}),
    ("sortOrder", {"enum": ["asc", "desc"]}), ("includeDeleted", {"type": "boolean"}))]
_SESSION = {"type": "object", "required": ["id", "name", "protocol", "path", "startTime", "durationMs", "frameCount",
                                           "connectionCount"]}
_STATS = {"type": "object", "required": ["usedBytes", "maxBytes", "usedPercent", "warnPercent", "recordingCount",
                                         "websocketCount", "sseCount", "deletedCount", "deletedBytes"]}
_START_BODY = {"type": "object", "required": ["protocol", "path"], "properties": {
    "protocol": {"enum": list(PROTOCOLS)}, "path": {"type": "string"}, "name": {"type": "string"},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "maxDurationMs": {"type": "integer", "minimum": 1}, "maxFrames": {"type": "integer", "minimum": 1}}}
MODELS = (Recording, Summary, ConvertOptions, ConfigFile, Started, RecordingList)
PATHS = {
    "/stream-recordings": {"get": operation(
        "List recordings (soft-deleted ones only with includeDeleted)",
        {200: ref("RecordingList")}, (400,), parameters=_QUERY)},
    "/stream-recordings/stats": {"get": operation("Storage statistics", {200: _STATS})},
    "/stream-recordings/sessions": {"get": operation("Active recording sessions",
                                                     {200: {"type": "array", "items": _SESSION}})},
    "/stream-recordings/start": {"post": operation("Start recording the connections on a path", {201: ref("Started")},
                                                   (400, 413, 507), body=_START_BODY)},
    "/stream-recordings/vacuum": {"post": operation("Remove soft-deleted recordings for good", {200: {
        "type": "object", "required": ["removed", "freedBytes"]}})},
    "/stream-recordings/{id}": {
        "get": operation("A recording (a running session shows what it has so far)", {200: ref("Recording")},
                         (400, 404, 409), parameters=[RECORDING_ID]),
        "delete": operation("Soft-delete a recording (permanent=true removes it)", {204: None}, (400, 404, 409),
                            parameters=[RECORDING_ID, {"name": "permanent", "in": "query", "required": False,
                                                       "schema": {"type": "boolean"}}]),
    },
    "/stream-recordings/{id}/stop": {"post": operation("Stop a session; returns the finished recording",
                                                       {200: ref("Recording")}, (400, 404, 409),
                                                       parameters=[RECORDING_ID])},
    "/stream-recordings/{id}/export": {"post": operation("The recording file's exact bytes",
                                                         {200: ref("Recording")}, (400, 404, 409),
                                                         parameters=[RECORDING_ID])},
    "/stream-recordings/{id}/convert": {"post": operation(
        "Convert to a complete mock config that `mockd serve --config` loads", {200: ref("ConfigFile")},
        (400, 404, 409, 413), body=ref("ConvertOptions"), body_required=False, parameters=[RECORDING_ID])},
}
