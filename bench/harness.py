"""Processes and plumbing for the benchmark: mockd, the upstream peers, mitmdump, load generators.

CPU placement (when ``os.sched_setaffinity`` exists and there are at least 2 cores): the upstreams,
mockd and mitmdump run on core 0, every load generator on core 1 (set with ``os.sched_setaffinity``
right after each process is started), so the client never competes with
the relay it measures. On one core everything shares it (the figures are still same-run ratios).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers.py"
PYTHON = sys.executable
SERVER_CORE, CLIENT_CORE = 0, 1
READY_TIMEOUT = 30.0
QUOTA_BYTES = 32 * 1024**3


def _cores(core: int) -> set[int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    available = os.sched_getaffinity(0)
    return {sorted(available)[core % len(available)]} if len(available) > 1 else None


def spawn(command: list[str], core: int, **options: Any) -> subprocess.Popen[bytes]:
    """Start ``command`` pinned to ``core`` (set right after the fork, before it starts any thread;
    threads and exec inherit it)."""
    process = subprocess.Popen(command, **options)
    cores = _cores(core)
    if cores:
        try:
            os.sched_setaffinity(process.pid, cores)
        except ProcessLookupError:
            pass
    return process


def placement() -> str:
    if _cores(0) is None:
        return "not pinned (single core or no sched_setaffinity)"
    return f"upstreams + mockd + mitmdump on CPU {min(_cores(SERVER_CORE) or {0})}, " \
           f"load generators on CPU {min(_cores(CLIENT_CORE) or {1})}"


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} not ready after {timeout} s")
        time.sleep(0.001)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- peers ----------------------------------------------------------------------------------------


@contextmanager
def upstream(kind: str, workdir: Path) -> Iterator[int]:
    """An upstream peer (``ws-echo`` or ``sse``) on core 0; yields its port."""
    ready = workdir / f"{kind}.port"
    ready.unlink(missing_ok=True)
    process = spawn([PYTHON, str(PEERS), kind, "--ready", str(ready)], SERVER_CORE)
    try:
        wait_for_file(ready, process)
        yield int(ready.read_text())
    finally:
        stop(process)


def load(*args: str, timeout: float = 600) -> dict[str, Any]:
    """Run one load generator to completion on core 1 and return its JSON report."""
    process = spawn([PYTHON, str(PEERS), *args], CLIENT_CORE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"load generator {args!r} failed: {err.decode()[-2000:]}")
    return json.loads(out)


# --- mockd ----------------------------------------------------------------------------------------


@dataclass
class Mockd:
    process: subprocess.Popen[bytes]
    mock_port: int
    admin_url: str
    pid: int
    started_in: float  # seconds from launch to the ready file

    def ws(self, path: str = "/bench") -> str:
        return f"ws://127.0.0.1:{self.mock_port}{path}"

    def http(self, path: str) -> str:
        return f"http://127.0.0.1:{self.mock_port}{path}"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return admin_call(self.admin_url, method, path, body)[1]

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@contextmanager
def mockd(workdir: Path, data_dir: Path, upstream_url: str | None = None,
          configs: tuple[Path, ...] = ()) -> Iterator[Mockd]:
    """``mockd serve`` on free ports, pinned to core 0, started in ``workdir`` (no stray mockd.yaml)."""
    ready, settings = workdir / "mockd.ready", workdir / "bench-settings.yaml"
    ready.unlink(missing_ok=True)
    settings.write_text(f"recording:\n  maxBytes: {QUOTA_BYTES}\n")  # P5 writes more than the default 500 MiB
    command = [PYTHON, "-m", "mockd", "serve", "--port", "0", "--admin-port", "0", "--ready-file", str(ready),
               "--data-dir", str(data_dir), "--settings", str(settings), "--log-level", "warning"]
    command += ["--upstream", upstream_url] if upstream_url else []
    for config in configs:
        command += ["--config", str(config)]
    log = (workdir / "mockd.log").open("ab")
    launched = time.perf_counter()
    process = spawn(command, SERVER_CORE, cwd=workdir, stdout=log, stderr=log)
    try:
        wait_for_file(ready, process)
        started_in = time.perf_counter() - launched
        info = json.loads(ready.read_text())
        yield Mockd(process, info["mockPort"], info["adminUrl"], info["pid"], started_in)
    finally:
        stop(process)
        log.close()


def admin_call(base: str, method: str, path: str, body: Any = None, timeout: float = 120) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from error
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


@contextmanager
def recording(server: Mockd, protocol: str, path: str = "/*") -> Iterator[dict[str, Any]]:
    """A recording session on ``path``; on exit it is stopped and the finished recording is put in the
    yielded dict under ``"recording"`` (fetched instead when the session already stopped itself)."""
    started = server.admin("POST", "/stream-recordings/start", {"protocol": protocol, "path": path})
    holder: dict[str, Any] = {"id": started["recordingId"]}
    try:
        yield holder
    finally:
        try:
            holder["recording"] = server.admin("POST", f"/stream-recordings/{holder['id']}/stop")
        except RuntimeError:
            holder["recording"] = server.admin("GET", f"/stream-recordings/{holder['id']}")


# --- mitmproxy ------------------------------------------------------------------------------------


def mitmdump_available() -> bool:
    return shutil.which("mitmdump") is not None


@contextmanager
def mitmdump(workdir: Path, upstream_port: int) -> Iterator[int | None]:
    """mitmdump in reverse mode in front of the upstream, recording the flows to a file; yields its
    port, or None when mitmproxy is not installed."""
    if not mitmdump_available():
        yield None
        return
    port = _free_port()
    command = ["mitmdump", "--mode", f"reverse:http://127.0.0.1:{upstream_port}", "--listen-host", "127.0.0.1",
               "--listen-port", str(port), "-q", "-w", str(workdir / "mitm.flows")]
    process = spawn(command, SERVER_CORE, cwd=workdir)
    try:
        _wait_for_port(port, process)
        yield port
    finally:
        stop(process)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mitmdump did not start listening")
