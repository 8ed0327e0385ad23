"""Shared fixtures: a real ``mockd serve`` process on free ports, reached over real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT = 20.0


def mockd_command() -> list[str]:
    """The installed ``mockd`` script beside this interpreter, else ``python -m mockd``."""
    script = Path(sys.executable).with_name("mockd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mockd"]


def run_mockd(*args: str, timeout: float = 30, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a mockd command to completion and capture its output."""
    return subprocess.run([*mockd_command(), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@dataclass
class RunningMockd:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    exit_code: int | None = field(default=None)

    @property
    def mock_port(self) -> int:
        return int(self.ready["mockPort"])

    @property
    def admin_port(self) -> int:
        return int(self.ready["adminPort"])

    @property
    def mock_url(self) -> str:
        return str(self.ready["mockUrl"])

    @property
    def admin_url(self) -> str:
        return str(self.ready["adminUrl"])

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


def write_config(directory: Path, config: dict[str, Any] | str, name: str = "mocks.json") -> Path:
    """Write a config (a dict as JSON, a string as it is) and return its path."""
    path = directory / name
    path.write_text(json.dumps(config) if isinstance(config, dict) else config)
    return path


def mocks_config(*mocks: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.0", "mocks": list(mocks)}


class MockdFactory:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[RunningMockd] = []

    def start(self, config: dict[str, Any] | str | None = None, *args: str,
              env: dict[str, str] | None = None, data_dir: Path | None = None) -> RunningMockd:
        """Start ``mockd serve`` on free ports with ``config`` and wait until both listeners accept."""
        index = len(self.started)
        work = self.base / f"mockd{index}"
        work.mkdir(parents=True, exist_ok=True)
        command = [*mockd_command(), "serve", "--port", "0", "--admin-port", "0",
                   "--ready-file", str(work / "ready.json"), "--data-dir", str(data_dir or work / "data")]
        if config is not None:
            command += ["--config", str(write_config(work, config))]
        command += list(args)
        stdout_path, stderr_path = work / "stdout.txt", work / "stderr.txt"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(command, stdout=out, stderr=err, cwd=work,
                                       env={**os.environ, **(env or {})})
        ready_path = work / "ready.json"
        deadline = time.monotonic() + START_TIMEOUT
        while not ready_path.exists():
            if process.poll() is not None:
                raise RuntimeError(f"mockd exited with {process.returncode}: {stderr_path.read_text()}")
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"mockd did not become ready: {stderr_path.read_text()}")
            time.sleep(0.01)
        running = RunningMockd(process, json.loads(ready_path.read_text()), data_dir or work / "data",
                               stdout_path, stderr_path)
        self.started.append(running)
        return running

    def stop_all(self) -> None:
        for running in self.started:
            running.stop()


@pytest.fixture
def mockd(tmp_path: Path) -> Iterator[MockdFactory]:
    """Start mockd servers with ``mockd.start(config, *extra_args)``; all are stopped after the test."""
    factory = MockdFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def mockd_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockdFactory]:
    """As ``mockd``, but servers live for the whole test module (for tests that share one config)."""
    factory = MockdFactory(tmp_path_factory.mktemp("mockd"))
    yield factory
    factory.stop_all()
