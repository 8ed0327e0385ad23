"""``mockd.Client``: a typed client of the admin API (sessions, recordings, convert, replays, mocks).

Standard library HTTP only, so that the CLI, which is this client's other user, starts fast. Every
answer is decoded into the models the server itself uses; every error answer raises :class:`ApiError`
with the API's ``error`` code and message.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import msgspec

from mockd.admin.answers import Advanced, LoadedMocks, RecordingList, ReplayStarted, ReplayStatus, Started
from mockd.recording.format import Recording

Progress = Callable[[int, int | None], None]
PIECE = 256 * 1024  # how much of an answer is read at a time
Answer = TypeVar("Answer")


class ApiError(Exception):
    """The admin API answered with an error: ``status``, ``code`` (its ``error`` field) and ``message``."""

    def __init__(self, status: int, code: str, message: str, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.candidates = status, code, message, candidates or []


class ServerUnavailable(Exception):
    """Nothing answers at the admin URL."""


def _camel(options: dict[str, Any]) -> dict[str, Any]:
    """``timing_scale=0.5`` → ``{"timingScale": 0.5}``; None values are left out."""
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {camel(name): value for name, value in options.items() if value is not None}


class Client:
    """The admin API at ``admin_url`` (``http://127.0.0.1:4290``), with the token when one is set."""

    def __init__(self, admin_url: str, token: str | None = None, timeout: float = 60) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # --- transport ------------------------------------------------------------------------------

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, timeout: float = 60) -> Client:
        """A client of the mockd serving ``data_dir``, found by the ready file it keeps there (its admin
        URL, and its token when it has one); :class:`ServerUnavailable` when no live mockd serves it."""
        from mockd.support.runtime import live_server_in

        live = live_server_in(Path(data_dir).expanduser())
        if live is None or not isinstance(live.get("adminUrl"), str):
            raise ServerUnavailable(f"no mockd is running for the data directory {data_dir}")
        token = live.get("adminToken")
        return cls(str(live["adminUrl"]), token if isinstance(token, str) else None, timeout)

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                timeout: float | None = None, progress: Progress | None = None) -> bytes:
        """The answer's body; an error answer raises :class:`ApiError`, no answer :class:`ServerUnavailable`."""
        return b"".join(self._pieces(method, path, body, query, timeout, progress))

    def download(self, method: str, path: str, sink: BinaryIO, body: Any = None,
                 progress: Progress | None = None) -> int:
        """The answer's body written to ``sink`` as it arrives, never held whole (a recording of any
        size); returns how many bytes were written. Errors as :meth:`request`."""
        return write_all(self._pieces(method, path, body, None, None, progress), sink)

    def _pieces(self, method: str, path: str, body: Any, query: dict[str, Any] | None, timeout: float | None,
                progress: Progress | None) -> Iterator[bytes]:
        """The answer's body in 256 KiB pieces, telling ``progress`` how much of ``Content-Length`` came."""
        url = self.admin_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                length = response.headers.get("Content-Length")
                yield from pieces(response, int(length) if length and length.isdigit() else None, progress)
        except urllib.error.HTTPError as error:
            raise _api_error(error) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise ServerUnavailable(str(getattr(error, "reason", error))) from None

    def _decode(self, type_: type[Answer], method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return msgspec.json.decode(self.request(method, path, body, **kwargs), type=type_)

    @staticmethod
    def ref(reference: str) -> str:
        """An id (or prefix) as a path segment."""
        return urllib.parse.quote(reference, safe="")

    # --- the server -----------------------------------------------------------------------------

    def health(self, timeout: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.request("GET", "/health", timeout=timeout))
        return result

    def mocks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = json.loads(self.request("GET", "/mocks"))["mocks"]
        return result

    def add_mock(self, mock: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.request("POST", "/mocks", mock))
        return result

    def load_mocks(self, document: dict[str, Any] | bytes) -> LoadedMocks:
        """Load a whole config document (as ``convert`` writes it): all its mocks or, on a 400, none."""
        body = msgspec.json.decode(document) if isinstance(document, bytes) else document
        return self._decode(LoadedMocks, "POST", "/mocks", body)

    def remove_mock(self, mock_id: str) -> None:
        self.request("DELETE", f"/mocks/{self.ref(mock_id)}")

    def reset_mocks(self) -> list[dict[str, Any]]:
        """Back to the start-up config: runtime mocks gone, ``times`` counts at zero."""
        result: list[dict[str, Any]] = json.loads(self.request("DELETE", "/mocks"))["mocks"]
        return result

    # --- recording ------------------------------------------------------------------------------

    def start_recording(self, protocol: Literal["websocket", "sse", "http"], path: str, name: str | None = None,
                        **limits: int | None) -> Started:
        body = {"protocol": protocol, "path": path, **({"name": name} if name else {}), **_camel(limits)}
        return self._decode(Started, "POST", "/stream-recordings/start", body)

    def stop_recording(self, recording_id: str) -> Recording:
        return self._decode(Recording, "POST", f"/stream-recordings/{self.ref(recording_id)}/stop")

    def recording(self, recording_id: str) -> Recording:
        return self._decode(Recording, "GET", f"/stream-recordings/{self.ref(recording_id)}")

    def recordings(self, **query: Any) -> RecordingList:
        return self._decode(RecordingList, "GET", "/stream-recordings", query=_camel(query))

    def export(self, recording_id: str, progress: Progress | None = None) -> bytes:
        return self.request("POST", f"/stream-recordings/{self.ref(recording_id)}/export", progress=progress)

    def convert(self, recording_id: str, progress: Progress | None = None, **options: Any) -> bytes:
        """The mock config document, exactly as the API gives it (``simplify_timing=True``, ``match_on=[...]``)."""
        return self.request("POST", f"/stream-recordings/{self.ref(recording_id)}/convert", _camel(options),
                            progress=progress)

    # --- replays --------------------------------------------------------------------------------

    def replay(self, recording_id: str, **options: Any) -> ReplayStarted:
        """Start a replay (``mode="triggered"``, ``timing_scale=0``, ``connection=2``, ``expires_after=60``...)
        for the next client on its path."""
        return self._decode(ReplayStarted, "POST", f"/stream-recordings/{self.ref(recording_id)}/replay",
                            _camel(options))

    def replays(self) -> list[ReplayStatus]:
        """Every replay session, pending, running and finished (the newest 1000 finished ones)."""
        return self._decode(list[ReplayStatus], "GET", "/replay")

    def replay_status(self, replay_id: str) -> ReplayStatus:
        return self._decode(ReplayStatus, "GET", f"/replay/{self.ref(replay_id)}")

    def advance(self, replay_id: str, count: int | None = None, until: str | None = None) -> Advanced:
        return self._decode(Advanced, "POST", f"/replay/{self.ref(replay_id)}/advance",
                            _camel({"count": count, "until": until}))

    def pause(self, replay_id: str) -> ReplayStatus:
        return self._decode(ReplayStatus, "POST", f"/replay/{self.ref(replay_id)}/pause")

    def resume(self, replay_id: str) -> ReplayStatus:
        return self._decode(ReplayStatus, "POST", f"/replay/{self.ref(replay_id)}/resume")

    def cancel_replay(self, replay_id: str) -> None:
        """End a replay: a pending one takes no client, a running one's client is closed with 1001."""
        self.request("DELETE", f"/replay/{self.ref(replay_id)}")

    def abort(self, replay_id: str) -> None:
        """:meth:`cancel_replay` (the name :class:`Replay` uses)."""
        self.cancel_replay(replay_id)


def pieces(stream: Any, total: int | None, progress: Progress | None) -> Iterator[bytes]:
    """``stream``'s bytes in ``PIECE``-sized reads, telling ``progress`` how much of ``total`` came."""
    done = 0
    while piece := stream.read(PIECE):
        done += len(piece)
        if progress is not None:
            progress(done, total)
        yield piece


def write_all(source: Iterator[bytes], sink: BinaryIO) -> int:
    """Write every piece to ``sink``; how many bytes that was."""
    written = 0
    for piece in source:
        sink.write(piece)
        written += len(piece)
    return written


def _api_error(error: urllib.error.HTTPError) -> ApiError:
    try:
        answer = json.loads(error.read())
        return ApiError(error.code, str(answer.get("error")), str(answer.get("message") or answer.get("error")),
                        [str(candidate) for candidate in answer.get("candidates") or []])
    except (ValueError, AttributeError):
        return ApiError(error.code, "http_error", f"the admin API answered {error.code} {error.reason}")


# --- a replay, driven from a test -------------------------------------------------------------------


class Replay:
    """A replay started through :meth:`Client.replay`, driven step by step: ``advance(count=1)`` or
    ``advance(until="text")`` (triggered), ``pause()``/``resume()`` (pure), ``status``, ``wait_for``."""

    def __init__(self, client: Client, replay_id: str) -> None:
        self.client = client
        self.id = replay_id

    @property
    def status(self) -> ReplayStatus:
        return self.client.replay_status(self.id)

    def advance(self, count: int | None = None, until: str | None = None) -> Advanced:
        return self.client.advance(self.id, count, until)

    def pause(self) -> ReplayStatus:
        return self.client.pause(self.id)

    def resume(self) -> ReplayStatus:
        return self.client.resume(self.id)

    def abort(self) -> None:
        self.client.abort(self.id)

    def wait_for(self, status: str, timeout: float = 10.0, interval: float = 0.01) -> ReplayStatus:
        """The status once the replay reaches ``status`` (``playing``, ``complete``...); TimeoutError
        naming the last status seen when it does not within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.status
            if current.status == status:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay {self.id} is {current.status!r}, not {status!r}, after {timeout:g} s")
            time.sleep(interval)


class AsyncReplay:
    """:class:`Replay` for ``async`` tests: every call is awaited and never blocks the event loop."""

    def __init__(self, replay: Replay) -> None:
        self.sync = replay
        self.id = replay.id

    async def status(self) -> ReplayStatus:
        return await asyncio.to_thread(self.sync.client.replay_status, self.id)

    async def advance(self, count: int | None = None, until: str | None = None) -> Advanced:
        return await asyncio.to_thread(self.sync.advance, count, until)

    async def pause(self) -> ReplayStatus:
        return await asyncio.to_thread(self.sync.pause)

    async def resume(self) -> ReplayStatus:
        return await asyncio.to_thread(self.sync.resume)

    async def abort(self) -> None:
        await asyncio.to_thread(self.sync.abort)

    async def wait_for(self, status: str, timeout: float = 10.0, interval: float = 0.01) -> ReplayStatus:
        return await asyncio.to_thread(self.sync.wait_for, status, timeout, interval)
