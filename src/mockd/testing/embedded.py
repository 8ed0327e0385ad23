"""``mockd.Server``: mockd started from Python — in this process on a background thread (fast: what the
pytest plugin uses), or as a ``mockd serve`` subprocess — on free ports by default.

    with mockd.Server(config=["mocks.json"], upstream="https://api.example.com") as server:
        requests.get(server.url + "/hello")
        server.client.start_recording("sse", "/v1/*")

``start()`` returns once both listeners accept connections; ``stop()`` shuts down as SIGTERM does
(WebSockets closed with 1001, running recording sessions saved).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from subprocess import DEVNULL, PIPE, Popen, TimeoutExpired
from types import TracebackType
from typing import Any

from mockd.admin.client import Client

START_TIMEOUT = 20.0


class ServerError(Exception):
    """The server could not start (the message is the line ``mockd serve`` would print)."""


class Server:
    """A mockd with its mock listener at :attr:`url` and its admin API at :attr:`admin_url`.

    ``settings`` is a :class:`mockd.config.settings.Settings` (redaction, quota) used instead of a settings
    file; ``data_dir`` defaults to a temporary directory removed on :meth:`stop`. ``upstream`` is one
    URL or several as ``--upstream`` takes them; ``upstream_ca``/``upstream_insecure`` are
    ``--upstream-ca``/``--upstream-insecure``."""

    def __init__(self, *, config: Sequence[str | Path] | None = None, upstream: str | Sequence[str] | None = None,
                 data_dir: str | Path | None = None, settings: Any = None, settings_path: str | Path | None = None,
                 host: str = "127.0.0.1", port: int = 0, admin_port: int = 0, admin_token: str | None = None,
                 upstream_ca: str | Path | None = None, upstream_insecure: bool = False,
                 subprocess: bool = False) -> None:
        self.config = [Path(path) for path in config or []]
        self.upstreams = [upstream] if isinstance(upstream, str) else list(upstream or ())
        self.settings = settings
        self.settings_path = Path(settings_path) if settings_path else None
        self.upstream_ca = Path(upstream_ca).resolve() if upstream_ca else None
        self.upstream_insecure = upstream_insecure
        self.host, self.port, self.admin_port, self.admin_token = host, port, admin_port, admin_token
        self.in_subprocess = subprocess
        self._temporary = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="mockd-"))
        self.mock_port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._process: Popen[bytes] | None = None
        self._running: Any = None  # the MockdServer, in process
        self._client: Client | None = None

    # --- where it is ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.mock_port}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{self.host}:{self.mock_port}{path}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.admin_url, self.admin_token)
        return self._client

    @property
    def registry(self) -> Any:
        """The running :class:`mockd.serving.registry.MockRegistry` (in process only)."""
        if self._running is None:
            raise RuntimeError("the registry is only reachable for a server started in this process")
        return self._running.registry

    def import_recording(self, recording: str | Path | bytes) -> str:
        """Put a recording file (its path or bytes, in our layout or the Go mockd's) into this server's
        store, in process; returns its id, ready for :meth:`Client.replay`."""
        from mockd.recording.format import decode_recording

        self.registry  # noqa: B018 - raises unless the server runs in this process
        decoded = decode_recording(recording if isinstance(recording, bytes) else Path(recording).read_bytes())
        self._running.store.save(decoded)
        return decoded.id

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def start(self) -> Server:
        if self.in_subprocess:
            self._start_subprocess()
        else:
            self._start_thread()
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(START_TIMEOUT)
            except TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._thread is not None and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(START_TIMEOUT)
            self._thread = None
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- in this process ------------------------------------------------------------------------

    def _options(self) -> Any:
        from mockd.server import ServeOptions

        return ServeOptions(config_paths=self.config, host=self.host, port=self.port, admin_host=self.host,
                            admin_port=self.admin_port, admin_token=self.admin_token, data_dir=str(self.data_dir),
                            settings_path=self.settings_path, upstreams=self.upstreams,
                            upstream_ca=self.upstream_ca, upstream_insecure=self.upstream_insecure)

    def _start_thread(self) -> None:
        from mockd.config.model import ConfigError
        from mockd.server import StartupError, prepare

        try:
            prepared = prepare(self._options())
        except (ConfigError, StartupError) as exc:
            raise ServerError(str(exc)) from None
        if self.settings is not None:
            prepared = dataclasses.replace(prepared, settings=self.settings)
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(prepared, started, failure),
                                        name="mockd-server", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT):
            raise ServerError(f"mockd did not start within {START_TIMEOUT:g} s")
        if failure:
            self._thread.join(START_TIMEOUT)
            self._thread = None
            raise ServerError(str(failure[0])) from None

    def _serve(self, prepared: Any, started: threading.Event, failure: list[BaseException]) -> None:
        from mockd.server import new_event_loop

        loop = new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run(prepared, started, failure))
        finally:
            loop.close()

    async def _run(self, prepared: Any, started: threading.Event, failure: list[BaseException]) -> None:
        from mockd.server import MockdServer, StartupError

        self._stop = asyncio.Event()
        running = MockdServer(prepared)
        try:
            self.mock_port, self.admin_port = await running.start()
        except (StartupError, OSError) as exc:
            failure.append(exc)
            started.set()
            return
        self._running = running
        started.set()
        await self._stop.wait()
        await running.stop()

    # --- as a subprocess ------------------------------------------------------------------------

    def _start_subprocess(self) -> None:
        ready = self.data_dir / f".ready-{os.getpid()}-{id(self)}.json"
        command = [sys.executable, "-m", "mockd", "serve", "--ready-file", str(ready), "--host", self.host,
                   "--port", str(self.port), "--admin-host", self.host, "--admin-port", str(self.admin_port),
                   "--data-dir", str(self.data_dir)]
        for path in self.config:
            command += ["--config", str(path)]
        for upstream in self.upstreams:
            command += ["--upstream", upstream]
        if self.upstream_insecure:
            command.append("--upstream-insecure")
        for flag, value in (("--settings", self.settings_path), ("--upstream-ca", self.upstream_ca),
                            ("--admin-token", self.admin_token)):
            if value is not None:
                command += [flag, str(value)]
        self._process = Popen(command, stdout=DEVNULL, stderr=PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self._process.poll() is not None:
                error = (self._process.stderr.read() if self._process.stderr else b"").decode().strip()
                self._process = None
                raise ServerError(error.splitlines()[-1] if error else "mockd serve exited at once")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"mockd did not start within {START_TIMEOUT:g} s")
            time.sleep(0.01)
        answer = json.loads(ready.read_text())
        self.mock_port, self.admin_port = int(answer["mockPort"]), int(answer["adminPort"])
