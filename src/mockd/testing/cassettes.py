"""Cassettes: a mock config recorded from a real server, and replayed from then on.

:class:`Cassette` serves one test (or any block of code): it records — mockd in front of the upstream,
a session for every WebSocket connection, SSE stream and HTTP exchange, converted whole into the
cassette when it ends — or replays the cassette and, when it ends, reports every request it did not
hold. The pytest plugin (:mod:`mockd.testing.plugin`) is a thin layer over it.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec

from mockd.admin.client import ApiError
from mockd.config.durations import Duration, seconds
from mockd.config.model import (CONFIG_VERSION, CloseStep, ConfigFile, HttpMock, Mock, SendStep, WaitStep,
                                WebSocketMock, load_config_files)
from mockd.config.settings import RecordingSettings, Settings
from mockd.playback.convert import config_bytes
from mockd.support.files import write_atomically
from mockd.testing.embedded import Server

CAPTURED: tuple[tuple[Literal["websocket", "sse", "http"], str], ...] = (
    ("websocket", "/*"), ("sse", "/*"), ("http", "/*"))  # every connection of every kind


class CassetteError(Exception):
    """A cassette could not be used, or the code under test asked it for something it does not hold."""


# --- timing (pure) ----------------------------------------------------------------------------------


def _scaled(duration: Duration | None, factor: float) -> str | None:
    return None if duration is None else f"{seconds(duration) * factor * 1000:g}ms"


def scale_timing(config: ConfigFile, factor: float) -> ConfigFile:
    """Every delay of every mock times ``factor`` (0.5 = twice as fast, 0 = no delays)."""
    return msgspec.structs.replace(config, mocks=[_scale_mock(mock, factor) for mock in config.mocks])


def _scale_mock(mock: Mock, factor: float) -> Mock:
    replace = msgspec.structs.replace
    if isinstance(mock, WebSocketMock) and mock.websocket is not None and mock.websocket.scenario is not None:
        steps = []
        for step in mock.websocket.scenario.steps:
            if isinstance(step, SendStep):
                step = replace(step, message=replace(step.message, delay=_scaled(step.message.delay, factor)))
            elif isinstance(step, WaitStep):
                step = replace(step, duration=_scaled(step.duration, factor) or "0ms")
            elif isinstance(step, CloseStep):
                step = replace(step, delay=_scaled(step.delay, factor))
            steps.append(step)
        scenario = replace(mock.websocket.scenario, steps=steps)
        return replace(mock, websocket=replace(mock.websocket, scenario=scenario))
    if isinstance(mock, HttpMock) and mock.http is not None:
        http = mock.http
        if http.response is not None:
            http = replace(http, response=replace(http.response, delay_ms=round(http.response.delay_ms * factor)))
        if http.sse is not None:
            timing = http.sse.timing
            timing = replace(timing, initial_delay=round(timing.initial_delay * factor),
                             fixed_delay=round(timing.fixed_delay * factor),
                             per_event_delays=[round(delay * factor) for delay in timing.per_event_delays])
            events = [event if event.delay is None else replace(event, delay=round(event.delay * factor))
                      for event in http.sse.events]
            http = replace(http, sse=replace(http.sse, timing=timing, events=events))
        return replace(mock, http=http)
    return mock


# --- the cassette -----------------------------------------------------------------------------------


class Cassette:
    """``what``: ``record`` (from ``options["upstream"]``), ``replay``, or ``new_episodes`` (replay what
    the cassette holds, record what it does not, keep both). ``options``: ``upstream``,
    ``filter_headers``, ``filter_body_keys``, ``match_on``, ``timing_scale``, ``allow_unused``."""

    def __init__(self, path: Path, what: str, options: dict[str, Any]) -> None:
        self.path = path
        self.what = what
        self.options = options
        self.server: Server | None = None
        self.sessions: list[str] = []
        self._scaled: Path | None = None

    @property
    def records(self) -> bool:
        return self.what in ("record", "new_episodes")

    def __enter__(self) -> Cassette:
        upstream = self.options.get("upstream") if self.records else None
        if self.records and not upstream:
            raise CassetteError(f"mockd: recording {self.path} needs an upstream: "
                                "@pytest.mark.mockd(upstream=\"https://...\")")
        redaction = RecordingSettings(filter_headers=list(self.options.get("filter_headers") or ()),
                                      filter_body_keys=list(self.options.get("filter_body_keys") or ()))
        configs = [] if self.what == "record" else [self._served_config()]
        self.server = Server(config=configs, upstream=upstream, settings=Settings(recording=redaction),
                             upstream_ca=self.options.get("upstream_ca"),
                             upstream_insecure=bool(self.options.get("upstream_insecure"))).start()
        if self.records:
            self.sessions = [self.server.client.start_recording(protocol, path, name=f"{self.path.stem} {protocol}")
                             .recording_id for protocol, path in CAPTURED]
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        assert self.server is not None
        try:
            if self.records:
                self._write()
            else:
                self._check()
        finally:
            self.server.stop()
            if self._scaled is not None:
                self._scaled.unlink(missing_ok=True)

    def _served_config(self) -> Path:
        """The cassette, or a copy with its delays scaled by ``timing_scale``."""
        if not self.path.exists():
            raise CassetteError(f"mockd: no cassette at {self.path}")
        factor = float(self.options.get("timing_scale", 1.0))
        if factor == 1.0:
            return self.path
        config = ConfigFile(version=CONFIG_VERSION, mocks=load_config_files([self.path]))
        self._scaled = self.path.with_name(f".{self.path.name}.scaled")
        write_atomically(self._scaled, [config_bytes(scale_timing(config, factor))])
        return self._scaled

    def _write(self) -> None:
        """Every captured connection converted (only the new ones, for new_episodes), then the cassette
        written atomically: the old mocks first, so they keep answering what they answered."""
        assert self.server is not None
        client = self.server.client
        mocks: list[Mock] = load_config_files([self.path]) if self.what == "new_episodes" else []
        options: dict[str, Any] = {"match_on": self.options.get("match_on")}
        if self.what == "new_episodes":
            options["origins"] = ["proxy"]
        for recording_id in self.sessions:
            client.stop_recording(recording_id)
            try:
                raw = client.convert(recording_id, **options)
            except ApiError as exc:
                if exc.code == "nothing_to_convert":
                    continue
                raise
            mocks += msgspec.json.decode(raw, type=ConfigFile).mocks
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, [config_bytes(ConfigFile(version=CONFIG_VERSION, mocks=mocks))])

    def _check(self) -> None:
        """Replay: the requests the cassette did not hold (and, unless allowed, what it held unused)."""
        assert self.server is not None
        problems = [f"  {miss}" for miss in self.server.registry.misses]
        if self.options.get("allow_unused", True) is False:
            problems += [f"  recorded mock {mock_id!r} was never used" for mock_id in self.server.registry.unused()]
        if problems:
            raise CassetteError(f"mockd: the cassette {self.path} does not match what the test did:\n"
                                + "\n".join(problems))
