"""``mockd serve``: the mock listener and the admin API in one event loop, start-up and graceful shutdown."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from mockd import __version__
from mockd.admin.app import create_admin_app
from mockd.config import ConfigError, Mock, ProxyMock, load_config_files, upstream_mocks
from mockd.events import StreamEvents
from mockd.files import write_atomically
from mockd.mocks.registry import MockRegistry
from mockd.recording.redact import Redactor
from mockd.recording.session import Recorder
from mockd.recording.store import Store
from mockd.runtime import READY_FILE, announce_in_data_dir
from mockd.settings import Settings, load_settings, resolve_data_dir

log = logging.getLogger("mockd")

SHUTDOWN_TIMEOUT = 5.0
# Long request lines and headers reach the handlers (and get a JSON answer) instead of aiohttp's
# plain-text 400 at 8 KiB.
HTTP_LIMITS = {"max_line_size": 64 * 1024, "max_field_size": 64 * 1024}


class StartupError(Exception):
    """Why the server could not start, as the one line printed on stderr."""


@dataclass
class ServeOptions:
    config_paths: list[Path] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 4280
    admin_host: str = "127.0.0.1"
    admin_port: int = 4290
    admin_token: str | None = None
    data_dir: str | None = None
    settings_path: Path | None = None
    ready_file: Path | None = None
    upstreams: list[str] = field(default_factory=list)  # --upstream flags: URL or /prefix=URL


@dataclass
class Prepared:
    """Everything read and checked before any socket is opened."""

    options: ServeOptions
    settings: Settings
    mocks: list[Mock]
    data_dir: Path
    upstreams: list[ProxyMock] = field(default_factory=list)  # after every mock, even those added at run time


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(options: ServeOptions) -> Prepared:
    """Read settings and config files and check the options; raises ConfigError or StartupError."""
    if not is_loopback(options.admin_host) and not options.admin_token:
        raise StartupError(f"refusing to expose the admin API on {options.admin_host} without a token: "
                           "pass --admin-token or set MOCKD_ADMIN_TOKEN")
    settings, _ = load_settings(options.settings_path)
    mocks = load_config_files(options.config_paths)
    upstreams = upstream_mocks(options.upstreams, {mock.id for mock in mocks if mock.id})
    return Prepared(options, settings, mocks, resolve_data_dir(options.data_dir, settings), upstreams)


def ensure_data_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data directory {path}: {exc.strerror}") from None


async def _start_site(runner: web.BaseRunner, host: str, port: int, what: str) -> int:
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise StartupError(f"cannot listen on {host}:{port} for the {what}: {reason}") from None
    return int(runner.addresses[0][1])


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class MockdServer:
    """The running process: both listeners, the registry, and the stream events they share."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.events = StreamEvents()
        self.registry = MockRegistry(self.events)
        self.registry.load(prepared.mocks, prepared.upstreams)
        recording = prepared.settings.recording
        self.store = Store(prepared.data_dir, recording.max_bytes, recording.warn_percent)
        self.recorder = Recorder(self.events, self.store, Redactor(recording.filter_headers, recording.filter_body_keys,
                                                                   recording.redact_value))
        mock_server = web.Server(self.registry.handle, handler_cancellation=True, access_log=None, **HTTP_LIMITS)
        self.mock_runner = web.ServerRunner(mock_server, shutdown_timeout=SHUTDOWN_TIMEOUT)
        self.admin_runner = web.AppRunner(create_admin_app(self.registry, self.recorder, prepared.options.admin_token),
                                          access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT, **HTTP_LIMITS)

    async def start(self) -> tuple[int, int]:
        options = self.prepared.options
        try:
            self.store.open()
        except OSError as exc:
            raise StartupError(f"cannot use data directory {self.store.directory}: {exc.strerror}") from None
        self.store.recover_journals()
        try:
            mock_port = await _start_site(self.mock_runner, options.host, options.port, "mock server")
            admin_port = await _start_site(self.admin_runner, options.admin_host, options.admin_port, "admin API")
        except StartupError:
            await self.stop()
            raise
        return mock_port, admin_port

    async def stop(self) -> None:
        """Close WebSockets with 1001, end SSE streams, then the listeners."""
        await self.registry.shut_down(SHUTDOWN_TIMEOUT)
        await self.recorder.stop_all("incomplete", "shutdown")
        await self.mock_runner.cleanup()
        await self.admin_runner.cleanup()
        await self.registry.upstream.close()


async def run(prepared: Prepared) -> None:
    options = prepared.options
    server = MockdServer(prepared)
    mock_port, admin_port = await server.start()
    mock_url, admin_url = _url(options.host, mock_port), _url(options.admin_host, admin_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ready = json.dumps({"mockPort": mock_port, "adminPort": admin_port, "mockUrl": mock_url, "adminUrl": admin_url,
                        "pid": os.getpid(), "dataDir": str(prepared.data_dir)}).encode()
    if options.ready_file is not None:
        write_atomically(options.ready_file, [ready])
    announced = announce_in_data_dir(prepared.data_dir, ready)
    print(f"mockd {__version__}\n"
          f"  mock server  {mock_url}  ({len(server.registry.mocks)} mocks)\n"
          f"  admin API    {admin_url}\n"
          f"  data dir     {prepared.data_dir}", flush=True)
    try:
        await stop.wait()
        log.info("shutting down")
        await server.stop()
    finally:
        if announced:
            (prepared.data_dir / READY_FILE).unlink(missing_ok=True)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the project stack: faster socket I/O), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(options: ServeOptions) -> int:
    """Run until SIGINT/SIGTERM. Start-up problems are one line on stderr and exit status 1."""
    try:
        prepared = prepare(options)
        ensure_data_dir(prepared.data_dir)
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(run(prepared))
    except (ConfigError, StartupError) as exc:
        print(f"mockd: error: {exc}", file=sys.stderr)
        return 1
    return 0
