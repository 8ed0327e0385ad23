"""``/stream-recordings``: sessions, recordings, storage — the routes of docs/recording.md, "Admin API"."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from aiohttp import web

from mockd.admin.answers import EventPage, ExchangePage, FramePage, LiveEnd, RecordingList, Started, Vacuumed
from mockd.admin.openapi import operation, path_parameter, ref
from mockd.config.model import ConfigFile
from mockd.playback.convert import ConvertOptions, NoSuchConnection, NothingToConvert, convert_pieces
from mockd.recording.format import (Frame, HttpExchange, Recording, RecordingProtocol, SessionSummary, SseEvent,
                                    Status, StorageStats, Summary, decode_recording, head_bytes)
from mockd.recording.index import Filter, Page
from mockd.recording.reader import RecordingReader
from mockd.recording.session import FOLLOW_PAGE, PROTOCOLS, Recorder, SessionLimits
from mockd.recording.store import SORT_KEYS, ListQuery
from mockd.serving.jsonhttp import HttpError, json_response, read_model, start_stream
from mockd.stream.events import SseBlock
from mockd.stream.ssewire import encode_block
from mockd.support.files import spool

STATUSES = ("recording", "complete", "incomplete")
MAX_LIMIT = 10_000
MAX_OFFSET = 10**12
DEFAULT_PAGE = 100
DIRECTIONS = ("c2s", "s2c")
FRAME_TYPES = ("text", "binary", "ping", "pong", "close")
PAGE_PARAMETERS = ("offset", "limit", "connection", "direction", "type")
MAX_EVENT_TYPE = 1000  # characters
SEND_PIECE = 256 * 1024
KEEPALIVE_SECONDS = 15.0  # a comment on a quiet push channel, so proxies and browsers keep it open
LIVE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StartRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    protocol: Any = None
    path: Any = None
    name: str | None = None
    headers: dict[str, str] = {}
    max_duration_ms: int | None = None
    max_frames: int | None = None


async def _parse_start(http_request: web.Request) -> StartRequest:
    request = await read_model(http_request, StartRequest, "invalid_request", "start request")
    if request.protocol not in PROTOCOLS:
        raise HttpError(400, "invalid_protocol", f"protocol must be \"websocket\", \"sse\" or \"http\", got "
                       f"{request.protocol!r}")
    if not isinstance(request.path, str) or not request.path.startswith("/"):
        raise HttpError(400, "invalid_path", f"path must be a string starting with '/', got {request.path!r}")
    for name in ("max_duration_ms", "max_frames"):
        value = getattr(request, name)
        if value is not None and value <= 0:
            raise HttpError(400, "invalid_request", f"{name.replace('_ms', 'Ms').replace('_f', 'F')} must be positive")
    return request


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:  # "²".isdigit() is true
        raise HttpError(400, "invalid_filter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _choice(request: web.Request, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    raw = request.query.get(name, default)
    if raw is not None and raw not in choices:
        raise HttpError(400, "invalid_filter", f"{name} must be one of: {', '.join(choices)}")
    return raw


def list_query(request: web.Request) -> ListQuery:
    include = request.query.get("includeDeleted", "false").lower()
    if include not in ("true", "false", "1", "0"):
        raise HttpError(400, "invalid_filter", "includeDeleted must be true or false")
    return ListQuery(
        protocol=_choice(request, "protocol", PROTOCOLS), status=_choice(request, "status", STATUSES),
        path=request.query.get("path"), name=request.query.get("name"), include_deleted=include in ("true", "1"),
        sort_by=_choice(request, "sortBy", tuple(SORT_KEYS), "startTime") or "startTime",
        sort_order=_choice(request, "sortOrder", ("asc", "desc"), "desc") or "desc",
        limit=_int_param(request, "limit", None, 0, MAX_LIMIT), offset=_int_param(request, "offset", 0, 0, 10**9) or 0)


def _only_known(request: web.Request, known: tuple[str, ...]) -> None:
    """400 ``invalid_filter`` for a query parameter not in ``known``, or one given more than once."""
    for name in request.query:
        if name not in known:
            raise HttpError(400, "invalid_filter", f"unknown query parameter {name[:40]!r}; the parameters are "
                           f"{', '.join(known)}")
        if len(request.query.getall(name)) > 1:
            raise HttpError(400, "invalid_filter", f"{name} is given more than once")


def page_query(request: web.Request, protocol: RecordingProtocol) -> tuple[Filter, int, int]:
    """The filter, offset and limit of ``GET /stream-recordings/{id}/frames``; 400 on anything else."""
    _only_known(request, PAGE_PARAMETERS)
    direction, kind = request.query.get("direction"), request.query.get("type")
    if protocol == "websocket":
        direction, kind = _choice(request, "direction", DIRECTIONS), _choice(request, "type", FRAME_TYPES)
    elif direction is not None:
        raise HttpError(400, "invalid_filter", "direction filters the frames of WebSocket recordings only")
    elif kind is not None and (protocol == "http" or not kind or len(kind) > MAX_EVENT_TYPE):
        raise HttpError(400, "invalid_filter", "type filters WebSocket frames and SSE events (a non-empty event "
                       f"type of at most {MAX_EVENT_TYPE} characters)")
    where = Filter(connection=_int_param(request, "connection", None, 1, 2**31 - 1), direction=direction, type=kind)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET) or 0
    limit = _int_param(request, "limit", DEFAULT_PAGE, 0, MAX_LIMIT)
    return where, offset, DEFAULT_PAGE if limit is None else limit


def live_offset(request: web.Request) -> int:
    """The one parameter of ``GET /stream-recordings/{id}/live``: the entry to start from."""
    _only_known(request, ("offset",))
    return _int_param(request, "offset", 0, 0, MAX_OFFSET) or 0


def live_block(protocol: RecordingProtocol, item: tuple[int, Page] | Status | None) -> SseBlock:
    """What the push channel sends for one step of :meth:`Recorder.follow`: a page of entries (the same
    object as ``/frames`` answers), the end with the recording's status, or a keepalive comment."""
    if item is None:
        return SseBlock(comment="keepalive")
    if isinstance(item, str):
        return SseBlock(type="end", data=msgspec.json.encode(LiveEnd(status=item)).decode())
    offset, found = item
    return SseBlock(type="entries", data=msgspec.json.encode(page_answer(protocol, found, offset,
                                                                         FOLLOW_PAGE)).decode())


def page_answer(protocol: RecordingProtocol, found: Page, offset: int,
                limit: int) -> FramePage | EventPage | ExchangePage:
    """The page as typed entries (decoded from the file's bytes in one call)."""
    raw = b"[" + b",".join(found.entries) + b"]"
    if protocol == "websocket":
        return FramePage(frames=msgspec.json.decode(raw, type=list[Frame]), total=found.total, offset=offset,
                         limit=limit, types=found.types)
    if protocol == "sse":
        return EventPage(events=msgspec.json.decode(raw, type=list[SseEvent]), total=found.total, offset=offset,
                         limit=limit, types=found.types)
    return ExchangePage(exchanges=msgspec.json.decode(raw, type=list[HttpExchange]), total=found.total,
                        offset=offset, limit=limit)


async def send_recording(request: web.Request, source: bytes | Path | BinaryIO,
                         filename: str | None = None) -> web.StreamResponse:
    """The recording document: bytes as they are, or a file (the recording's, or a spooled one) sent
    in pieces with its ``Content-Length`` — constant memory whatever its size."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else {}
    if isinstance(source, Path):
        return web.FileResponse(source, headers={**headers, "Content-Type": "application/json"})
    if isinstance(source, bytes):
        return web.Response(body=source, content_type="application/json", headers=headers)
    return await send_spooled(request, source, headers)


def spool_config(source: AbstractContextManager[RecordingReader], options: ConvertOptions, redact_value: str,
                 directory: Path) -> BinaryIO:
    """Convert into an unnamed temporary file in the data directory, so a recording of any length
    converts in bounded memory and the answer has its ``Content-Length``."""
    def converted() -> Iterator[bytes]:
        with source as reader:
            yield from convert_pieces(reader, options, redact_value)

    return spool(directory, converted)


async def send_spooled(request: web.Request, spooled: BinaryIO,
                       headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Send a spooled answer in pieces, then close (and so remove) its file."""
    try:
        response = web.StreamResponse(headers={**(headers or {}), "Content-Type": "application/json"})
        response.content_length = os.fstat(spooled.fileno()).st_size
        await start_stream(request, response)
        while piece := spooled.read(SEND_PIECE):
            await response.write(piece)
        await response.write_eof()
        return response
    finally:
        spooled.close()


def add_routes(router: web.UrlDispatcher, key: web.AppKey[Recorder]) -> None:
    def resolve(request: web.Request) -> str:
        return request.app[key].resolve(request.match_info["id"])

    async def list_recordings(request: web.Request) -> web.Response:
        query = list_query(request)
        summaries, total = request.app[key].store.summaries(query)
        return json_response(RecordingList(recordings=summaries, total=total, limit=query.limit, offset=query.offset))

    async def stats(request: web.Request) -> web.Response:
        return json_response(request.app[key].store.stats())

    async def sessions(request: web.Request) -> web.Response:
        return json_response([session.summary() for session in request.app[key].sessions.values()])

    async def start(request: web.Request) -> web.Response:
        body = await _parse_start(request)
        session, warning = request.app[key].start(
            body.protocol, body.path, body.name, body.headers,
            SessionLimits(max_duration_ms=body.max_duration_ms, max_frames=body.max_frames))
        return json_response(Started(session_id=session.id, recording_id=session.id, warning=warning), 201)

    async def vacuum(request: web.Request) -> web.Response:
        removed, freed = request.app[key].store.vacuum()
        return json_response(Vacuumed(removed=removed, freed_bytes=freed))

    async def send(request: web.Request, recording_id: str, filename: str | None = None) -> web.StreamResponse:
        source = await request.app[key].recording_source(recording_id)
        return await send_recording(request, source, filename)

    async def get_recording(request: web.Request) -> web.StreamResponse:
        recording_id = resolve(request)
        entries = request.query.get("entries", "true").lower()
        if entries not in ("true", "false", "1", "0"):
            raise HttpError(400, "invalid_filter", "entries must be true or false")
        if entries in ("false", "0"):
            return await send_recording(request, head_bytes(await request.app[key].head(recording_id)))
        return await send(request, recording_id)

    async def frames(request: web.Request) -> web.Response:
        recording_id = resolve(request)
        recorder = request.app[key]
        protocol = await recorder.protocol_of(recording_id)
        where, offset, limit = page_query(request, protocol)
        found = await recorder.page(recording_id, where, offset, limit)
        return json_response(page_answer(protocol, found, offset, limit))

    async def live(request: web.Request) -> web.StreamResponse:
        recording_id = resolve(request)
        recorder = request.app[key]
        protocol = await recorder.protocol_of(recording_id)
        offset = live_offset(request)
        response = web.StreamResponse(headers=LIVE_HEADERS)
        await start_stream(request, response)  # should it break, the page opens it again from its last entry
        async for item in recorder.follow(recording_id, offset, KEEPALIVE_SECONDS):
            await response.write(encode_block(live_block(protocol, item)))
        return response

    async def delete_recording(request: web.Request) -> web.Response:
        recording_id = resolve(request)
        recorder = request.app[key]
        if recording_id in recorder.sessions:
            raise HttpError(409, "recording", "This session is still recording; stop it first")
        if request.query.get("permanent", "false").lower() in ("true", "1"):
            recorder.store.delete_permanently(recording_id)
        else:
            recorder.store.soft_delete(recording_id)
        return web.Response(status=204)

    async def stop(request: web.Request) -> web.StreamResponse:
        recording_id = resolve(request)
        recorder = request.app[key]
        if recording_id not in recorder.sessions:
            raise HttpError(409, "not_recording", f"Recording {recording_id} is not recording (already stopped)")
        await recorder.stop(recording_id)
        return await send(request, recording_id)

    async def export(request: web.Request) -> web.StreamResponse:
        recording_id = resolve(request)
        return await send(request, recording_id, f"{recording_id}.json")

    router.add_get("/stream-recordings", list_recordings)
    router.add_get("/stream-recordings/stats", stats)
    router.add_get("/stream-recordings/sessions", sessions)
    router.add_post("/stream-recordings/start", start)
    router.add_post("/stream-recordings/vacuum", vacuum)
    router.add_get("/stream-recordings/{id}", get_recording)
    router.add_get("/stream-recordings/{id}/frames", frames)
    router.add_get("/stream-recordings/{id}/live", live)
    router.add_delete("/stream-recordings/{id}", delete_recording)
    router.add_post("/stream-recordings/{id}/stop", stop)
    async def convert_recording(request: web.Request) -> web.StreamResponse:
        recording_id = resolve(request)
        options = await read_model(request, ConvertOptions, "invalid_options", "convert options")
        recorder = request.app[key]
        redact_value = recorder.redactor.redact_value
        try:
            if recording_id in recorder.sessions:  # a running session: what it has so far, read whole
                recording = decode_recording(await recorder.recording_bytes(recording_id))
                spooled = await asyncio.to_thread(spool_config, nullcontext(RecordingReader.of(recording)), options,
                                                  redact_value, recorder.store.directory)
            else:
                await recorder.protocol_of(recording_id)  # waits for a stopping session's file
                spooled = await asyncio.to_thread(spool_config, recorder.store.reader(recording_id), options,
                                                  redact_value, recorder.store.directory)
        except NothingToConvert as exc:
            raise HttpError(400, "nothing_to_convert", str(exc)) from None
        except NoSuchConnection as exc:
            raise HttpError(400, "no_such_connection", str(exc)) from None
        return await send_spooled(request, spooled)

    router.add_post("/stream-recordings/{id}/export", export)
    router.add_post("/stream-recordings/{id}/convert", convert_recording)


# --- OpenAPI ----------------------------------------------------------------------------------------

RECORDING_ID = path_parameter("id", "A recording id or a unique prefix of one (12 characters, as lists show)")
_QUERY = [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in (
    ("protocol", {"enum": list(PROTOCOLS)}), ("path", {"type": "string"}), ("status", {"enum": list(STATUSES)}),
    ("name", {"type": "string"}), ("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT}),
    ("offset", {"type": "integer", "minimum": 0}), ("sortBy", {"enum": list(SORT_KEYS)}),
    ("sortOrder", {"enum": ["asc", "desc"]}), ("includeDeleted", {"type": "boolean"}))]
_START_BODY = {"type": "object", "required": ["protocol", "path"], "properties": {
    "protocol": {"enum": list(PROTOCOLS)}, "path": {"type": "string"}, "name": {"type": "string"},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "maxDurationMs": {"type": "integer", "minimum": 1}, "maxFrames": {"type": "integer", "minimum": 1}}}
_PAGE_QUERY = [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in (
    ("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
    ("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_PAGE}),
    ("connection", {"type": "integer", "minimum": 1}), ("direction", {"enum": list(DIRECTIONS)}),
    ("type", {"type": "string", "description": "WebSocket: text, binary, ping, pong or close; SSE: an event type"}))]
MODELS = (Recording, Summary, ConvertOptions, ConfigFile, Started, RecordingList, FramePage, EventPage, ExchangePage,
          StorageStats, SessionSummary, Vacuumed, LiveEnd)
# One event of the push channel as an SSE parser sees it (OpenAPI 3.2's itemSchema, given as the
# media type's schema on 3.1): its type and its data, a JSON text (a page, or LiveEnd for `end`).
_LIVE_EVENT: dict[str, Any] = {
    "type": "object", "required": ["event", "data"],
    "properties": {"event": {"type": "string", "enum": ["entries", "end"]},
                   "data": {"type": "string", "contentMediaType": "application/json"}},
}

PATHS = {
    "/stream-recordings": {"get": operation(
        "List recordings (soft-deleted ones only with includeDeleted)",
        {200: ref("RecordingList")}, (400,), parameters=_QUERY)},
    "/stream-recordings/stats": {"get": operation("Storage statistics", {200: ref("StorageStats")})},
    "/stream-recordings/sessions": {"get": operation("Active recording sessions",
                                                     {200: {"type": "array", "items": ref("SessionSummary")}})},
    "/stream-recordings/start": {"post": operation("Start recording the connections on a path", {201: ref("Started")},
                                                   (400, 413, 507), body=_START_BODY)},
    "/stream-recordings/vacuum": {"post": operation("Remove soft-deleted recordings for good",
                                                    {200: ref("Vacuumed")})},
    "/stream-recordings/{id}": {
        "get": operation("A recording (a running session shows what it has so far); entries=false: without its "
                         "frames, events or exchanges", {200: ref("Recording")}, (400, 404, 409),
                         parameters=[RECORDING_ID, {"name": "entries", "in": "query", "required": False,
                                                    "schema": {"type": "boolean", "default": True}}]),
        "delete": operation("Soft-delete a recording (permanent=true removes it)", {204: None}, (400, 404, 409),
                            parameters=[RECORDING_ID, {"name": "permanent", "in": "query", "required": False,
                                                       "schema": {"type": "boolean"}}]),
    },
    "/stream-recordings/{id}/frames": {"get": operation(
        "A page of the recording's frames (events for SSE, exchanges for HTTP), read through its frame index",
        {200: {"oneOf": [ref("FramePage"), ref("EventPage"), ref("ExchangePage")]}}, (400, 404, 409),
        parameters=[RECORDING_ID, *_PAGE_QUERY])},
    "/stream-recordings/{id}/live": {"get": operation(
        "A push channel (text/event-stream): `entries` events, each a page as /frames answers, from offset on and "
        "then after each flush while the session records; `end` with the recording's status; a comment every "
        f"{KEEPALIVE_SECONDS:.0f} s of quiet", {200: _LIVE_EVENT}, (400, 404, 409),
        media_type="text/event-stream",
        parameters=[RECORDING_ID, {"name": "offset", "in": "query", "required": False,
                                   "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}}])},
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
