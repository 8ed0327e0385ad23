"""``mockd serve``: the mock listener and the admin API in one event loop, start-up and graceful shutdown."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import os
import signal
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from mockd import __version__
from mockd.admin.app import create_admin_app
from mockd.admin.guard import AccessError, AdminAccess
from mockd.config.model import ConfigError, Mock, ProxyMock, load_config_files, upstream_mocks
from mockd.config.settings import Settings, load_settings, resolve_data_dir
from mockd.recording.session import Recorder
from mockd.recording.store import Store
from mockd.serving.accesslog import AccessLog, access_log_enabled
from mockd.playback.replays import Replays
from mockd.serving.registry import MockRegistry
from mockd.serving.tls import TlsError, UpstreamTls, self_signed_context, server_context
from mockd.stream.events import StreamEvents
from mockd.stream.redact import Redactor
from mockd.support.files import write_atomically
from mockd.support.runtime import READY_FILE, announce_in_data_dir

log = logging.getLogger("mockd")

SHUTDOWN_TIMEOUT = 5.0
# Long request lines and headers reach the handlers (and get a JSON answer) instead of aiohttp's
# plain-text 400 at 8 KiB.
MAX_LINE_SIZE = MAX_FIELD_SIZE = 64 * 1024  # a request line, a header field


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
    upstream_ca: Path | None = None
    upstream_insecure: bool = False
    upstream_cert: Path | None = None
    upstream_key: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    admin_tls_cert: Path | None = None
    admin_tls_key: Path | None = None
    log_format: str = "text"  # json: the start-up banner is one JSON line too
    admin_allowed_hosts: list[str] = field(default_factory=list)
    admin_allow_origins: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything read and checked before any socket is opened."""

    options: ServeOptions
    settings: Settings
    mocks: list[Mock]
    data_dir: Path
    upstreams: list[ProxyMock] = field(default_factory=list)  # after every mock, even those added at run time
    upstream_tls: UpstreamTls = field(default_factory=UpstreamTls)
    upstream_ssl: ssl.SSLContext | None = None
    mock_ssl: ssl.SSLContext | None = None  # --tls-cert; --tls-self-signed makes one at start-up
    admin_ssl: ssl.SSLContext | None = None
    admin_access: AdminAccess = field(default_factory=AdminAccess)
    admin_token: str | None = None  # --admin-token, MOCKD_ADMIN_TOKEN, else the settings' admin.token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(options: ServeOptions) -> Prepared:
    """Read settings and config files and check the options; raises ConfigError or StartupError."""
    settings, settings_path = load_settings(options.settings_path)
    admin_token = options.admin_token or settings.admin.token
    if not is_loopback(options.admin_host) and not admin_token:
        raise StartupError(f"refusing to expose the admin API on {options.admin_host} without a token: "
                           "pass --admin-token or set MOCKD_ADMIN_TOKEN")
    try:
        admin_access = AdminAccess.of([*options.admin_allowed_hosts, *settings.admin.allowed_hosts],
                                      [*options.admin_allow_origins, *settings.admin.allow_origins])
    except AccessError as exc:
        raise StartupError(str(exc)) from None
    mocks = load_config_files(options.config_paths)
    upstreams = upstream_mocks(options.upstreams, {mock.id for mock in mocks if mock.id})
    upstream_tls = _upstream_tls(options, settings, settings_path)
    try:
        upstream_ssl = upstream_tls.context() if upstream_tls != UpstreamTls() else None
        mock_ssl, admin_ssl = _listener_contexts(options)
    except TlsError as exc:
        raise StartupError(str(exc)) from None
    return Prepared(options, settings, mocks, resolve_data_dir(options.data_dir, settings), upstreams, upstream_tls,
                    upstream_ssl, mock_ssl, admin_ssl, admin_access, admin_token)


def _listener_contexts(options: ServeOptions) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """The mock and admin listeners' TLS from ``--tls-cert`` and ``--admin-tls-cert`` (None: plain;
    ``--tls-self-signed`` is made at start-up, in the data directory)."""
    if options.tls_self_signed and options.tls_cert:
        raise StartupError("give --tls-cert (and --tls-key) or --tls-self-signed, not both")
    contexts = []
    for cert, key, flag in ((options.tls_cert, options.tls_key, "--tls-cert"),
                            (options.admin_tls_cert, options.admin_tls_key, "--admin-tls-cert")):
        if key and not cert:
            raise StartupError(f"{flag.replace('-cert', '-key')} needs {flag}")
        contexts.append(server_context(cert, key, flag) if cert else None)
    return contexts[0], contexts[1]


def _upstream_tls(options: ServeOptions, settings: Settings, settings_path: Path | None) -> UpstreamTls:
    """The flags, each falling back on its key in the settings file (relative to that file)."""
    base = settings_path.parent if settings_path is not None else Path(".")
    configured = settings.upstream

    def path(flag: Path | None, key: str | None) -> Path | None:
        return flag if flag is not None else (base / Path(key).expanduser() if key else None)

    return UpstreamTls(ca_file=path(options.upstream_ca, configured.ca),
                       insecure=options.upstream_insecure or configured.insecure,
                       cert_file=path(options.upstream_cert, configured.cert),
                       key_file=path(options.upstream_key, configured.key))


def ensure_data_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data directory {path}: {exc.strerror}") from None


async def _start_site(runner: web.BaseRunner, host: str, port: int, what: str,
                      ssl_context: ssl.SSLContext | None) -> int:
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise StartupError(f"cannot listen on {host}:{port} for the {what}: {reason}") from None
    return int(runner.addresses[0][1])


def _url(host: str, port: int, secure: bool, scheme: str = "http") -> str:
    return f"{scheme}{'s' if secure else ''}://{f'[{host}]' if ':' in host else host}:{port}"


class MockdServer:
    """The running process: both listeners, the registry, and the stream events they share."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.events = StreamEvents()
        self.replays = Replays(self.events)
        self.registry = MockRegistry(self.events, prepared.upstream_ssl, self.replays)
        self.registry.load(prepared.mocks, prepared.upstreams)
        recording = prepared.settings.recording
        self.store = Store(prepared.data_dir, recording.max_bytes, recording.warn_percent)
        redactor = Redactor(recording.filter_headers, recording.filter_body_keys, recording.redact_value)
        self.recorder = Recorder(self.events, self.store, redactor)
        self.access_log = self._access_log(redactor) if access_log_enabled() else None
        handler = self.access_log.wrap(self.registry.handle, "mock") if self.access_log else self.registry.handle
        mock_server = web.Server(handler, handler_cancellation=True, access_log=None, max_line_size=MAX_LINE_SIZE,
                                 max_field_size=MAX_FIELD_SIZE)
        self.mock_runner = web.ServerRunner(mock_server, shutdown_timeout=SHUTDOWN_TIMEOUT)
        middlewares = [self.access_log.middleware("admin")] if self.access_log else []
        admin = create_admin_app(self.registry, self.recorder, self.replays, prepared.admin_token, middlewares,
                                 prepared.admin_access)
        self.admin_runner = web.AppRunner(admin, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
                                          max_line_size=MAX_LINE_SIZE, max_field_size=MAX_FIELD_SIZE)
        self.mock_ssl = prepared.mock_ssl
        self.ca_file: Path | None = None  # --tls-self-signed: the CA certificate clients should trust

    def _access_log(self, redactor: Redactor) -> AccessLog:
        insecure = self.prepared.upstream_tls.insecure

        def describe(answered_by: str) -> str:
            mock = self.registry.get(answered_by)
            if isinstance(mock, ProxyMock) and mock.proxy is not None:
                unverified = insecure and mock.proxy.target.startswith(("https:", "wss:"))
                return f"upstream={mock.proxy.target}{' tls=unverified' if unverified else ''}"
            return answered_by if answered_by.startswith("replay ") else f"mock={answered_by}"

        access_log = AccessLog(redactor, describe, with_headers=log.isEnabledFor(logging.DEBUG))
        self.events.subscribe(access_log)
        return access_log

    async def start(self) -> tuple[int, int]:
        options = self.prepared.options
        try:
            self.store.open()
        except OSError as exc:
            raise StartupError(f"cannot use data directory {self.store.directory}: {exc.strerror}") from None
        self.store.recover_journals()
        if options.tls_self_signed:
            self.mock_ssl, self.ca_file = self_signed_context(self.store.directory, (options.host,))
        try:
            mock_port = await _start_site(self.mock_runner, options.host, options.port, "mock server", self.mock_ssl)
            admin_port = await _start_site(self.admin_runner, options.admin_host, options.admin_port, "admin API",
                                           self.prepared.admin_ssl)
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
    secure = server.mock_ssl is not None
    mock_url, admin_url = _url(options.host, mock_port, secure), _url(options.admin_host, admin_port,
                                                                     prepared.admin_ssl is not None)
    if prepared.upstream_tls.insecure:
        log.warning("--upstream-insecure: upstream TLS certificates are NOT verified")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    facts: dict[str, object] = {
        "mockPort": mock_port, "adminPort": admin_port, "mockUrl": mock_url,
        "mockWsUrl": _url(options.host, mock_port, secure, "ws"), "adminUrl": admin_url, "pid": os.getpid(),
        "dataDir": str(prepared.data_dir.resolve())}
    if server.ca_file is not None:
        facts["caFile"] = str(server.ca_file)
    # the banner first: whoever waits for a ready file finds the banner printed too
    print(_banner(facts, len(server.registry.mocks), options.log_format), flush=True)
    # the ready files (0600, in a 0700 directory) also carry the token, for the CLI and mockd.Client
    ready = json.dumps({**facts, **({"adminToken": prepared.admin_token} if prepared.admin_token else {})}).encode()
    announced = announce_in_data_dir(prepared.data_dir, ready)  # first: --ready-file means both are there
    if options.ready_file is not None:
        write_atomically(options.ready_file, [ready])
    try:
        await stop.wait()
        log.info("shutting down")
        await server.stop()
    finally:
        if announced:
            (prepared.data_dir / READY_FILE).unlink(missing_ok=True)


def _banner(facts: dict[str, object], mocks: int, log_format: str) -> str:
    """What ``serve`` prints once listening: lines for a person, or one JSON object when the log is JSON
    (so stdout and stderr both parse)."""
    if log_format == "json":
        return json.dumps({"event": "started", "version": __version__, "mocks": mocks, **facts})
    lines = [f"mockd {__version__}", f"  mock server  {facts['mockUrl']}  ({mocks} mocks)"]
    if str(facts["mockUrl"]).startswith("https"):
        lines.append(f"  WebSocket    {facts['mockWsUrl']}")
    if "caFile" in facts:
        lines.append(f"  TLS CA       {facts['caFile']}  (self-signed for this run: trust it in clients)")
    lines += [f"  admin API    {facts['adminUrl']}", f"  data dir     {facts['dataDir']}"]
    return "\n".join(lines)


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
