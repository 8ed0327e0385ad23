"""A real ``mockd serve`` process on free ports, reached over real sockets; ``mockd`` CLI runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from configs import write_config
from polling import poll_until_sync

START_TIMEOUT = 20.0

T = TypeVar("T")


def mockd_command() -> list[str]:
    """The installed ``mockd`` script beside this interpreter, else ``python -m mockd``."""
    script = Path(sys.executable).with_name("mockd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mockd"]


def run_mockd(*args: str, timeout: float = 30, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a mockd command to completion and capture its output."""
    return subprocess.run([*mockd_command(), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


class ReadyField(Generic[T]):
    """A read-only attribute of :class:`RunningMockd` taken from its ready file's ``key``, as ``kind``."""

    def __init__(self, key: str, kind: Callable[[Any], T]) -> None:
        self.key = key
        self.kind = kind

    def __get__(self, running: RunningMockd, owner: type | None = None) -> T:
        return self.kind(running.ready[self.key])


@dataclass
class RunningMockd:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    exit_code: int | None = field(default=None)

    # not annotated, so not dataclass fields
    mock_port = ReadyField("mockPort", int)
    admin_port = ReadyField("adminPort", int)
    mock_url = ReadyField("mockUrl", str)
    admin_url = ReadyField("adminUrl", str)

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.mock_port}{path}"

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.exit_code = self.process.returncode
        return self.exit_code

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON log lines on stderr so far (``--log-format json``), as objects; other lines skipped."""
        entries = []
        for line in self.stderr.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries


def launch_serve(work: Path, ready: Path, *args: str,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start ``mockd serve --ready-file READY ARGS`` in ``work``; returns it and its stdout and stderr files."""
    work.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = work / "stdout.txt", work / "stderr.txt"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen([*mockd_command(), "serve", "--ready-file", str(ready), *args],
                                   stdout=out, stderr=err, cwd=work, env={**os.environ, **(env or {})})
    return process, stdout_path, stderr_path


def serve_until_ready(work: Path, *args: str, env: dict[str, str] | None = None,
                      data_dir: Path | None = None) -> RunningMockd:
    """``mockd serve ARGS`` in ``work``, waited for until its ready file exists (both listeners accept).

    ``data_dir`` is only what the returned :class:`RunningMockd` reports (default ``WORK/data``).
    """
    ready = work / "ready.json"
    process, stdout_path, stderr_path = launch_serve(work, ready, *args, env=env)
    if not poll_until_sync(lambda: ready.exists() or process.poll() is not None, START_TIMEOUT, interval=0.01):
        process.kill()
        process.wait()
        pytest.fail(f"mockd serve did not become ready: {stderr_path.read_text()}")
    if not ready.exists():
        pytest.fail(f"mockd serve exited with {process.returncode}: {stderr_path.read_text()}")
    return RunningMockd(process, json.loads(ready.read_text()), data_dir or work / "data", stdout_path, stderr_path)


class MockdFactory:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[RunningMockd] = []

    def start(self, config: dict[str, Any] | str | None = None, *args: str,
              env: dict[str, str] | None = None, data_dir: Path | None = None) -> RunningMockd:
        """Start ``mockd serve`` on free ports with ``config`` and wait until both listeners accept."""
        work = self.next_work_dir()
        data_dir = data_dir or work / "data"
        options = ["--port", "0", "--admin-port", "0", "--data-dir", str(data_dir)]
        if config is not None:
            options += ["--config", str(write_config(work, config))]
        return self.start_bare(*options, *args, env=env, work=work, data_dir=data_dir)

    def start_bare(self, *args: str, env: dict[str, str] | None = None, work: Path | None = None,
                   data_dir: Path | None = None) -> RunningMockd:
        """``mockd serve ARGS`` with nothing added (no ports, no ``--data-dir``), until it is ready."""
        running = serve_until_ready(work or self.next_work_dir(), *args, env=env, data_dir=data_dir)
        self.started.append(running)
        return running

    def next_work_dir(self) -> Path:
        work = self.base / f"mockd{len(self.started)}"
        work.mkdir(parents=True, exist_ok=True)
        return work

    def stop_all(self) -> None:
        for running in self.started:
            running.stop()
