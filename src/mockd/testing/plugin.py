"""The ``mockd`` pytest plugin: record a real server's streams and HTTP calls once into a cassette, then
replay them in every test run after — pytest-recording's conventions under mockd's own names.

    @pytest.mark.mockd(upstream="https://api.example.com")
    def test_chat(mockd):
        client = OpenAI(base_url=mockd.url + "/v1")
        ...

A cassette is a mockd config file (``mockd serve --config`` loads it as it is) at
``<test dir>/cassettes/<module>/<test>.json``. ``--mockd-record-mode``: ``none`` (the default: replay;
a missing cassette fails the test), ``once`` (record when missing), ``new_episodes`` (replay what the
cassette holds, record what it does not, and keep both), ``all`` (always record). See docs/pytest.md.

This module is loaded by every pytest run of a project that has mockd installed (entry point
``pytest11``), so it imports nothing heavy until a test asks for the fixture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

RECORD_MODES = ("none", "once", "new_episodes", "all")
_UNSAFE = re.compile(r"[^\w.\[\]=,+-]")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockd", "mockd cassettes (record streams once, replay them after)")
    group.addoption("--mockd-record-mode", choices=RECORD_MODES, default=None,
                    help="none (default: replay only), once (record missing cassettes), new_episodes "
                         "(record what the cassette lacks), all (record every cassette again)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mockd(upstream=None, cassette=None, record_mode=None, filter_headers=(), filter_body_keys=(), "
                   "match_on=None, timing_scale=1.0, allow_unused=True, upstream_ca=None, upstream_insecure=False): "
                   "serve this test from a mockd cassette "
                   "(the `mockd` fixture), recorded from `upstream`")


# --- what a test asks for (pure) --------------------------------------------------------------------


def cassette_path(test_file: Path, test_name: str, class_name: str | None = None) -> Path:
    """``<test dir>/cassettes/<module>/<Class.>test[params].json``, with unsafe characters replaced."""
    name = f"{class_name}.{test_name}" if class_name else test_name
    return test_file.parent / "cassettes" / test_file.stem / f"{_UNSAFE.sub('_', name)}.json"


def decide(mode: str, cassette_exists: bool) -> str:
    """``record``, ``replay`` or ``new_episodes`` for a record mode and whether the cassette exists;
    ``missing`` when mode ``none`` finds no cassette."""
    if mode == "all" or (mode == "once" and not cassette_exists):
        return "record"
    if not cassette_exists:
        return "missing" if mode == "none" else "record"
    return "new_episodes" if mode == "new_episodes" else "replay"


def options_of(item: pytest.Item, defaults: dict[str, Any]) -> dict[str, Any]:
    """``mockd_config`` refined by the ``mockd`` markers, the closest (the test's own) last."""
    options = dict(defaults)
    for marker in reversed(list(item.iter_markers("mockd"))):
        options.update(marker.kwargs)
    return options


# --- the fixture ------------------------------------------------------------------------------------


class WebSocketUrl(str):
    """The WebSocket base URL, which may also be called with a path: ``mockd.ws_url("/ws/chat")``."""

    def __call__(self, path: str = "/") -> str:
        return f"{self}{path}"


@dataclass
class MockdFixture:
    """What the ``mockd`` fixture gives a test: where mockd listens, the cassette, and the mode."""

    server: Any  # mockd.Server
    cassette: Path
    mode: str  # "record" or "replay" ("record" also for new_episodes)

    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def ws_url(self) -> WebSocketUrl:
        """``ws://127.0.0.1:<port>``; ``mockd.ws_url("/ws/chat")`` adds a path."""
        return WebSocketUrl(self.server.ws_url(""))

    @property
    def admin_url(self) -> str:
        return str(self.server.admin_url)

    @property
    def client(self) -> Any:
        """A :class:`mockd.Client` of this mockd's admin API."""
        return self.server.client

    def replay(self, recording: str | Path, mode: str = "triggered", **options: Any) -> Any:
        """Replay a recording (a recording file's path, or the id of one this mockd holds) to the next
        client on its path; returns a :class:`mockd.admin.client.Replay` to drive it step by step."""
        from mockd.admin.client import Replay

        recording_id = self.server.import_recording(recording) if Path(str(recording)).is_file() else str(recording)
        started = self.client.replay(recording_id, mode=mode, **options)
        return Replay(self.client, started.session_id)

    def replay_async(self, recording: str | Path, mode: str = "triggered", **options: Any) -> Any:
        """:meth:`replay` for ``async`` tests: the handle's calls are awaited."""
        from mockd.admin.client import AsyncReplay

        return AsyncReplay(self.replay(recording, mode, **options))


@pytest.fixture
def mockd_config() -> dict[str, Any]:
    """Defaults for every ``mockd`` fixture of its scope; override it in a conftest or module (as
    ``vcr_config``): ``upstream``, ``filter_headers``, ``filter_body_keys``, ``match_on``, ``timing_scale``..."""
    return {}


@pytest.fixture
def mockd(request: pytest.FixtureRequest, mockd_config: dict[str, Any]) -> Iterator[MockdFixture]:
    options = options_of(request.node, mockd_config)
    node = request.node
    cassette = Path(options["cassette"]) if options.get("cassette") else cassette_path(
        Path(str(node.path)), node.name, node.cls.__name__ if getattr(node, "cls", None) else None)
    mode = request.config.getoption("--mockd-record-mode") or options.get("record_mode") or "none"
    if mode not in RECORD_MODES:
        pytest.fail(f"mockd: record_mode must be one of {', '.join(RECORD_MODES)}, not {mode!r}", pytrace=False)
    what = decide(mode, cassette.exists())
    if what == "missing":
        pytest.fail(f"mockd: no cassette at {cassette}; record it with: pytest --mockd-record-mode=once "
                    f"{node.nodeid}", pytrace=False)
    from mockd.testing.cassettes import Cassette, CassetteError

    problem: str | None = None
    try:
        with Cassette(cassette, what, options) as served:
            yield MockdFixture(served.server, cassette, "replay" if what == "replay" else "record")
    except CassetteError as exc:
        problem = str(exc)
    if problem is not None:  # failed outside the except block: one message, no chained traceback
        pytest.fail(problem, pytrace=False)
