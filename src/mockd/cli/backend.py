"""Where ``mockd stream-recordings`` gets its answers: one seam (:class:`Backend`), two implementations —
the admin API of a running mockd (:class:`ApiBackend`, over :class:`~mockd.admin.client.Client`) and,
when no server answers, the data directory itself (:class:`StoreBackend`, through the store code the
server uses). Both return the same typed answers, and both turn their domain errors (the API's error
answers, the store's :class:`~mockd.recording.store.StoreError` kinds) into the one-line
:class:`~mockd.cli.output.CliError` with :func:`domain_error`.

Which one (:meth:`CommandTarget.server_url`): an explicit admin URL (``--admin-url``, ``MOCKD_ADMIN_URL``)
wins; else ``--data-dir D`` (``MOCKD_DATA_DIR``) follows D's ready file (``mockd.ready``, written by the
server that owns D) to that server, and when no live server owns D the CLI works offline on D and
never asks another server; without either, the default admin URL. An explicit admin URL that is not
the live server of D is an error rather than a mix of two servers.

Light on purpose: the store, the settings and the converter are imported only when working offline,
so that ``mockd --help`` and the commands that talk to a server start fast.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

import click
import msgspec

from mockd.admin.answers import Advanced, EventPage, ReplayStarted, ReplayStatus, Started, Vacuumed
from mockd.admin.client import Answer, ApiError, Client, ServerUnavailable, pieces, write_all
from mockd.admin.client import Progress as OnProgress  # not the CLI's progress line: what reports to it
from mockd.cli.output import CliError
from mockd.recording.format import Recording, SessionSummary, StorageStats, Summary, decode_recording
from mockd.support.runtime import LOOPBACK_NAMES, READY_FILE, live_server_in

if TYPE_CHECKING:
    from mockd.recording.store import Store

Cancelled = tuple[ReplayStatus, ReplayStatus | None]
DEFAULT_ADMIN_URL = "http://localhost:4290"
PROBE_TIMEOUT = 1.0


class Backend(Protocol):
    """Every operation of the ``stream-recordings`` commands. A recording is named by a ``reference``
    (its id or a unique prefix) or, where the command already holds its head, by its ``recording_id``."""

    def recordings(self, *, protocol: str | None, status: str | None, path: str | None, limit: int, offset: int,
                   sort_by: str, sort_order: str, include_deleted: bool) -> tuple[list[Summary], int]:
        """One page of summaries, and how many match in all."""
        ...

    def head(self, reference: str) -> Recording:
        """The recording without its frames (read through its index: constant time whatever its length)."""
        ...

    def event_types(self, recording_id: str) -> list[str]:
        """The event types an SSE recording holds."""
        ...

    def write_recording(self, reference: str, sink: BinaryIO, progress: OnProgress | None) -> int:
        """The recording's file to ``sink`` in pieces, as it is (a recording of any size is never held
        whole); its size."""
        ...

    def export(self, reference: str, sink: BinaryIO, progress: OnProgress | None) -> int:
        """:meth:`write_recording`, as an export (the API names the file)."""
        ...

    def convert(self, reference: str, options: dict[str, Any], sink: BinaryIO, progress: OnProgress | None) -> int:
        """The mock config converted from the recording to ``sink`` in pieces; its size. ``options`` is
        the API's convert body, validated offline exactly as the server validates it."""
        ...

    def delete(self, recording_id: str, permanent: bool) -> None: ...

    def stats(self) -> StorageStats: ...

    def vacuum(self, progress: OnProgress) -> Vacuumed:
        """Remove the soft-deleted recordings; ``progress(done, total)`` after each file (offline only:
        the server answers once it is done)."""
        ...

    # Only a running server can do these: sessions and replays live in its memory.

    def sessions(self) -> list[SessionSummary]: ...

    def start_recording(self, protocol: Literal["websocket", "sse", "http"], path: str, name: str | None,
                        max_duration_ms: int | None, max_frames: int | None) -> Started: ...

    def stop_recording(self, reference: str) -> Recording: ...

    def replay(self, reference: str, **options: Any) -> ReplayStarted:
        """Start a replay; ``options`` as :meth:`Client.replay` takes them (``timing_scale=0``...)."""
        ...

    def advance(self, replay_id: str, count: int | None, until: str | None) -> Advanced: ...

    def replays(self) -> list[ReplayStatus]: ...

    def cancel_replay(self, replay_id: str) -> Cancelled:
        """End a replay unless it has finished: its status before, and after (None: it had finished)."""
        ...


def domain_error(message: str, candidates: Iterable[object] = ()) -> CliError:
    """An error of the admin API or of the store as the one line the user sees: its message, and the
    candidates of an ambiguous prefix as ``list`` shows ids (12 characters)."""
    names = [str(candidate)[:12] for candidate in candidates]
    return CliError(message + (": " + ", ".join(names) if names else ""))


# --- a running server -----------------------------------------------------------------------------


class _Client(Client):
    """:class:`Client` with its error answers turned into the CLI's error, in the one place every
    request and download passes through."""

    def _pieces(self, method: str, path: str, body: Any, query: dict[str, Any] | None, timeout: float | None,
                progress: OnProgress | None) -> Iterator[bytes]:
        try:
            yield from super()._pieces(method, path, body, query, timeout, progress)
        except ApiError as error:
            raise domain_error(error.message, error.candidates) from None


class ApiBackend:
    """The admin API of the running mockd at ``url``."""

    def __init__(self, url: str, token: str | None) -> None:
        self.client = _Client(url, token)

    def probe(self) -> None:
        """:class:`ServerUnavailable` unless a server answers, soon."""
        self.client.health(timeout=PROBE_TIMEOUT)

    def _path(self, reference: str) -> str:
        return f"/stream-recordings/{self.client.ref(reference)}"

    def _answer(self, type_: type[Answer], method: str, path: str, **kwargs: Any) -> Answer:
        return msgspec.json.decode(self.client.request(method, path, **kwargs), type=type_)

    def recordings(self, *, protocol: str | None, status: str | None, path: str | None, limit: int, offset: int,
                   sort_by: str, sort_order: str, include_deleted: bool) -> tuple[list[Summary], int]:
        answer = self.client.recordings(protocol=protocol, status=status, path=path, limit=limit, offset=offset,
                                        sort_by=sort_by, sort_order=sort_order,
                                        include_deleted="true" if include_deleted else None)
        return answer.recordings, answer.total

    def head(self, reference: str) -> Recording:
        return decode_recording(self.client.request("GET", self._path(reference), query={"entries": "false"}))

    def event_types(self, recording_id: str) -> list[str]:
        """From the counts of an empty page of its events."""
        page = self._answer(EventPage, "GET", f"{self._path(recording_id)}/frames", query={"limit": "0"})
        return list(page.types)

    def write_recording(self, reference: str, sink: BinaryIO, progress: OnProgress | None) -> int:
        return self.client.download("GET", self._path(reference), sink, progress=progress)

    def export(self, reference: str, sink: BinaryIO, progress: OnProgress | None) -> int:
        return self.client.download("POST", f"{self._path(reference)}/export", sink, progress=progress)

    def convert(self, reference: str, options: dict[str, Any], sink: BinaryIO, progress: OnProgress | None) -> int:
        return self.client.download("POST", f"{self._path(reference)}/convert", sink, body=options,
                                    progress=progress)

    def delete(self, recording_id: str, permanent: bool) -> None:
        self.client.request("DELETE", self._path(recording_id), query={"permanent": "true" if permanent else None})

    def stats(self) -> StorageStats:
        return self._answer(StorageStats, "GET", "/stream-recordings/stats")

    def vacuum(self, progress: OnProgress) -> Vacuumed:
        return self._answer(Vacuumed, "POST", "/stream-recordings/vacuum")

    def sessions(self) -> list[SessionSummary]:
        return self._answer(list[SessionSummary], "GET", "/stream-recordings/sessions")

    def start_recording(self, protocol: Literal["websocket", "sse", "http"], path: str, name: str | None,
                        max_duration_ms: int | None, max_frames: int | None) -> Started:
        return self.client.start_recording(protocol, path, name, max_duration_ms=max_duration_ms,
                                           max_frames=max_frames)

    def stop_recording(self, reference: str) -> Recording:
        return decode_recording(self.client.request("POST", f"{self._path(reference)}/stop"))

    def replay(self, reference: str, **options: Any) -> ReplayStarted:
        return self.client.replay(reference, **options)

    def advance(self, replay_id: str, count: int | None, until: str | None) -> Advanced:
        return self.client.advance(replay_id, count, until)

    def replays(self) -> list[ReplayStatus]:
        return self.client.replays()

    def cancel_replay(self, replay_id: str) -> Cancelled:
        before = self.client.replay_status(replay_id)
        if before.finished:
            return before, None
        self.client.cancel_replay(before.id)
        return before, self.client.replay_status(before.id)


# --- the data directory ---------------------------------------------------------------------------


class StoreBackend:
    """The data directory ``data_dir`` (None: the settings' one) when no server answers. The store is
    opened on first use, saying so in one line on stderr that starts with ``offline_because``: a command
    that stops before it needs the store (a confirmation refused) says nothing of it. ``no_server``
    says why the commands that need a server cannot run."""

    def __init__(self, data_dir: str | None, offline_because: str, no_server: str) -> None:
        self.data_dir, self.offline_because, self.no_server = data_dir, offline_because, no_server
        self._opened: Store | None = None
        self._redact_value = ""  # the settings' value, read when the store is opened

    @contextmanager
    def _store(self) -> Iterator[Store]:
        """The store; its errors as the one line the user sees."""
        from mockd.recording.store import StoreError

        store = self._opened if self._opened is not None else self._open()
        try:
            yield store
        except StoreError as exc:
            raise domain_error(exc.message, exc.extra.get("candidates") or ()) from None

    def _open(self) -> Store:
        from mockd.config.model import ConfigError
        from mockd.config.settings import load_settings, resolve_data_dir
        from mockd.recording.store import Store

        try:
            settings, _ = load_settings(None)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        directory = resolve_data_dir(self.data_dir, settings)
        click.echo(f"mockd: {self.offline_because}; using the data directory {directory}", err=True)
        store = Store(directory, settings.recording.max_bytes, settings.recording.warn_percent)
        self._redact_value = settings.recording.redact_value
        try:
            store.open()
        except OSError as exc:
            raise CliError(f"cannot use data directory {directory}: {exc.strerror}") from None
        self._opened = store
        return store

    def _needs_server(self, command: str) -> CliError:
        return CliError(f"`{command}` needs a running mockd, and {self.no_server}")

    def recordings(self, *, protocol: str | None, status: str | None, path: str | None, limit: int, offset: int,
                   sort_by: str, sort_order: str, include_deleted: bool) -> tuple[list[Summary], int]:
        from mockd.recording.store import ListQuery

        with self._store() as store:
            return store.summaries(ListQuery(protocol=protocol, status=status, path=path, limit=limit, offset=offset,
                                             sort_by=sort_by, sort_order=sort_order, include_deleted=include_deleted))

    def head(self, reference: str) -> Recording:
        with self._store() as store:
            return store.head(store.resolve(reference))

    def event_types(self, recording_id: str) -> list[str]:
        from mockd.recording.index import Filter

        with self._store() as store:
            return list(store.page(recording_id, Filter(), 0, 0).types)

    def write_recording(self, reference: str, sink: BinaryIO, progress: OnProgress | None) -> int:
        with self._store() as store:
            recording_id = store.resolve(reference)
            path = store.file_to_send(recording_id)
            if path is None:  # another layout (an imported file): converted, so read whole
                raw = store.read_bytes(recording_id)
                sink.write(raw)
                return len(raw)
        with open(path, "rb") as source:
            return write_all(pieces(source, os.fstat(source.fileno()).st_size, progress), sink)

    export = write_recording  # no server, so no file name to give

    def convert(self, reference: str, options: dict[str, Any], sink: BinaryIO, progress: OnProgress | None) -> int:
        """Written as the frames are read (bounded memory); no progress figures (the line shows the time passing)."""
        from mockd.playback.convert import ConvertOptions, NoSuchConnection, NothingToConvert, convert_pieces

        try:
            parsed = msgspec.convert(options, ConvertOptions)
        except msgspec.ValidationError as exc:
            raise CliError(f"invalid convert options: {exc}") from None
        with self._store() as store, store.reader(store.resolve(reference)) as reader:
            try:
                config = convert_pieces(reader, parsed, self._redact_value)
            except (NothingToConvert, NoSuchConnection) as exc:
                raise CliError(str(exc)) from None
            return write_all(config, sink)

    def delete(self, recording_id: str, permanent: bool) -> None:
        with self._store() as store:
            if permanent:
                store.delete_permanently(recording_id)
            else:
                store.soft_delete(recording_id)

    def stats(self) -> StorageStats:
        with self._store() as store:
            return store.stats()

    def vacuum(self, progress: OnProgress) -> Vacuumed:
        with self._store() as store:
            removed, freed = store.vacuum(progress)
        return Vacuumed(removed=removed, freed_bytes=freed)

    def sessions(self) -> list[SessionSummary]:
        raise self._needs_server("sessions")

    def start_recording(self, protocol: Literal["websocket", "sse", "http"], path: str, name: str | None,
                        max_duration_ms: int | None, max_frames: int | None) -> Started:
        raise self._needs_server("start")

    def stop_recording(self, reference: str) -> Recording:
        raise self._needs_server("stop")

    def replay(self, reference: str, **options: Any) -> ReplayStarted:
        raise self._needs_server("replay")

    def advance(self, replay_id: str, count: int | None, until: str | None) -> Advanced:
        raise self._needs_server("advance")

    def replays(self) -> list[ReplayStatus]:
        raise self._needs_server("replays")

    def cancel_replay(self, replay_id: str) -> Cancelled:
        raise self._needs_server("cancel")


# --- choosing one ---------------------------------------------------------------------------------


def same_server(first: str, second: str) -> bool:
    """Whether two admin URLs name the same listener (``localhost`` and ``127.0.0.1`` alike)."""
    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urllib.parse.urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
        return parts.scheme, "loopback" if host in LOOPBACK_NAMES else host, port, parts.path.rstrip("/")

    return key(first) == key(second)


def owner_of(directory: Path) -> dict[str, object] | None:
    """The ready file of the live mockd serving ``directory``; None when there is none, or when the
    ready file names another directory (a copy of a live server's data directory keeps its ready file).
    A relative ``dataDir`` (the server's own working directory is unknown here) is trusted."""
    live = live_server_in(directory)
    if live is None:
        return None
    announced = Path(str(live.get("dataDir") or ""))
    if announced.is_absolute():
        try:
            if not os.path.samefile(announced, directory):
                return None
        except OSError:
            return None
    return live


def _token_of(live: dict[str, object] | None) -> str | None:
    """The admin token the server owning the data directory wrote into its (0600) ready file."""
    token = live.get("adminToken") if live is not None else None
    return token if isinstance(token, str) else None


@dataclass
class CommandTarget:
    """The connection settings of a command, and the backend they lead to."""

    admin_url: str | None  # given with --admin-url or MOCKD_ADMIN_URL; None: found as the module says
    token: str | None
    data_dir: str | None
    _backend: Backend | None = field(default=None, repr=False)

    def server_url(self) -> tuple[str | None, dict[str, object] | None]:
        """The admin URL to talk to, and the ready file of the live server owning ``--data-dir`` (if any).
        The URL is None when ``--data-dir`` names a directory no live mockd serves: offline only."""
        live = owner_of(Path(self.data_dir).expanduser()) if self.data_dir else None
        live_url = str(live["adminUrl"]) if live is not None and live.get("adminUrl") else None
        if self.admin_url:
            if live_url is not None and not same_server(self.admin_url, live_url):
                raise CliError(f"--admin-url {self.admin_url} is not the mockd serving {self.data_dir} (that one, "
                               f"pid {live.get('pid') if live else '?'}, is at {live_url}); give one or the other")
            return self.admin_url, live
        if self.data_dir:
            return live_url, live
        return DEFAULT_ADMIN_URL, None

    def backend(self) -> Backend:
        """The admin API when a server answers, else the data directory (chosen once)."""
        if self._backend is None:
            self._backend = self._choose()
        return self._backend

    def _choose(self) -> Backend:
        url, live = self.server_url()
        if url is None:
            return StoreBackend(self.data_dir, f"no mockd is running for {self.data_dir}",
                                f"none is running for the data directory {self.data_dir} (no live {READY_FILE} "
                                f"there; start one with `mockd serve --data-dir {self.data_dir}`)")
        api = ApiBackend(url, self.token or _token_of(live))
        try:
            api.probe()
        except ServerUnavailable:
            if live is not None:  # it owns the directory: working on it behind its back would be wrong
                raise CliError(f"the mockd serving {self.data_dir} (pid {live.get('pid')}) does not answer at "
                               f"{url}") from None
            return StoreBackend(self.data_dir, f"no server answers at {url}",
                                f"none answers at {url} (start one with `mockd serve`, or pass --admin-url or "
                                "--data-dir)")
        return api
