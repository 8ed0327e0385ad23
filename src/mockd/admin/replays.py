"""``/replay``: watch and drive the replays started with ``POST /stream-recordings/{id}/replay``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from aiohttp import web

from mockd.admin.answers import Advanced, ReplayStarted, ReplayStatus
from mockd.admin.openapi import operation, path_parameter, ref
from mockd.admin.recordings import RECORDING_ID
from mockd.playback.errors import ReplayBadRequest, ReplayConflict, ReplayError
from mockd.playback.plan import ReplayOptions, check_replayable
from mockd.playback.replay import ReplaySession
from mockd.playback.replays import Replays
from mockd.playback.window import ReplaySource
from mockd.recording.format import decode_recording
from mockd.recording.session import Recorder
from mockd.serving.jsonhttp import HttpError, json_response, read_model


class AdvanceRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``{}`` sends one frame; ``count`` N frames; ``until`` up to the first containing the text. Not both."""

    count: Annotated[int, msgspec.Meta(ge=1)] | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.count is not None and self.until is not None:
            raise ValueError("give count or until, not both")


def status_of(replay: ReplaySession) -> ReplayStatus:
    return ReplayStatus(id=replay.id, recording_id=replay.recording.id, mode=replay.options.mode, status=replay.status,
                        current_frame=replay.frames_sent, total_frames=replay.total_frames,
                        frames_sent=replay.frames_sent, elapsed_ms=replay.elapsed_ms, mismatches=replay.mismatches,
                        error=replay.error, client=replay.client, path=replay.path, next_entry=replay.next_entry)


def find(replays: Replays, reference: str) -> ReplaySession:
    """A replay by id or unique id prefix."""
    matches = [session for key, session in replays.sessions.items() if key.startswith(reference.upper())]
    if not reference or not matches:
        raise HttpError(404, "not_found", f"No replay with id {reference[:40]!r}")
    if len(matches) > 1:
        raise HttpError(409, "ambiguous_id", f"{reference!r} matches {len(matches)} replays",
                       candidates=[session.id for session in matches])
    return matches[0]


async def _source(recorder: Recorder, recording_id: str, options: ReplayOptions) -> ReplaySource:
    """What the replay reads: a running session's recording so far (whole), else the file through
    its frame index."""
    if recording_id in recorder.sessions:
        recording = decode_recording(await recorder.recording_bytes(recording_id))
        check_replayable(recording, options)
        return ReplaySource.of(recording, options)
    head = await recorder.head(recording_id)
    check_replayable(head, options)
    return await asyncio.to_thread(ReplaySource.stored, recorder.store, recording_id, head, options)


def add_routes(router: web.UrlDispatcher, key: web.AppKey[Any], recorder_key: web.AppKey[Any]) -> None:
    def session(request: web.Request) -> ReplaySession:
        return find(request.app[key], request.match_info["id"])

    async def start_replay(request: web.Request) -> web.Response:
        recorder = request.app[recorder_key]
        recording_id = recorder.resolve(request.match_info["id"])
        options = await read_model(request, ReplayOptions, "invalid_options", "replay options")
        replays: Replays = request.app[key]
        try:
            source = await _source(recorder, recording_id, options)
            prepared = await replays.prepare(source, options, shared=recording_id not in recorder.sessions)
        except ReplayError as exc:
            raise HttpError(400, "invalid_replay", str(exc)) from None
        replay = replays.create(source, options, prepared)
        return json_response(ReplayStarted(session_id=replay.id, status=replay.status), 201)

    async def list_replays(request: web.Request) -> web.Response:
        return json_response([status_of(replay) for replay in request.app[key].sessions.values()])

    async def get_replay(request: web.Request) -> web.Response:
        return json_response(status_of(session(request)))

    async def delete_replay(request: web.Request) -> web.Response:
        session(request).abort()
        return web.Response(status=204)

    async def advance(request: web.Request) -> web.Response:
        replay = session(request)
        body = await read_model(request, AdvanceRequest, "invalid_request", "advance request")
        before = replay.frames_sent
        try:
            await replay.advance(body.count, body.until)
        except ReplayBadRequest as exc:
            raise HttpError(400, exc.code, str(exc)) from None
        except ReplayConflict as exc:
            raise HttpError(409, exc.code, str(exc)) from None
        status = status_of(replay)
        return json_response(Advanced(
            frames_sent=replay.frames_sent - before, current_frame=status.current_frame,
            total_frames=status.total_frames, status=status.status,
            complete=status.finished or replay.frames_sent >= status.total_frames))

    def control(action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            replay = session(request)
            try:
                getattr(replay, action)()
            except ReplayConflict as exc:
                raise HttpError(409, exc.code, str(exc)) from None
            return json_response(status_of(replay))

        return handler

    router.add_post("/stream-recordings/{id}/replay", start_replay)
    router.add_get("/replay", list_replays)
    router.add_get("/replay/{id}", get_replay)
    router.add_delete("/replay/{id}", delete_replay)
    router.add_post("/replay/{id}/advance", advance)
    router.add_post("/replay/{id}/pause", control("pause"))
    router.add_post("/replay/{id}/resume", control("resume"))


REPLAY_ID = path_parameter("id", "A replay session id (or a unique prefix)")
MODELS = (ReplayStatus, AdvanceRequest, ReplayOptions, ReplayStarted, Advanced)
PATHS = {
    "/stream-recordings/{id}/replay": {"post": operation(
        "Replay a recording to the next client that connects to its path (within expiresAfter seconds)",
        {201: ref("ReplayStarted")}, (400, 404, 409, 413),
        body=ref("ReplayOptions"), body_required=False, parameters=[RECORDING_ID])},
    "/replay": {"get": operation("Replay sessions, running and finished", {200: {"type": "array",
                                                                              "items": ref("ReplayStatus")}})},
    "/replay/{id}": {
        "get": operation("A replay's status", {200: ref("ReplayStatus")}, (404, 409), parameters=[REPLAY_ID]),
        "delete": operation("Abort a replay (its client is closed with 1001)", {204: None}, (404, 409),
                            parameters=[REPLAY_ID]),
    },
    "/replay/{id}/advance": {"post": operation(
        "Triggered mode: send the next frames; answers once they are on the wire (409 no_client before a "
        "client binds, 409 no_match when no remaining frame contains until)", {200: ref("Advanced")},
        (400, 404, 409, 413), body=ref("AdvanceRequest"), body_required=False, parameters=[REPLAY_ID])},
    "/replay/{id}/pause": {"post": operation("Pure mode: stop the clock of a playing replay (409 otherwise)",
                                             {200: ref("ReplayStatus")}, (404, 409),
                                             parameters=[REPLAY_ID])},
    "/replay/{id}/resume": {"post": operation("Pure mode: restart the clock", {200: ref("ReplayStatus")},
                                              (404, 409), parameters=[REPLAY_ID])},
}
