"""Processes and plumbing for the benchmark: mockd, the upstreams (bench/peers.py, or the fast
bench/aiohttp_upstream.py), the peer relays put beside mockd, and the load generators.

The peer relays are mitmdump in reverse mode (when installed), and for P9 nginx and the minimal aiohttp
relay ``relay.py``, both started from the peer relays' directory, ``$MOCKD_BENCH_PEERS``, by default
``../shared/bench`` beside the project (:data:`PEER_RELAYS`), never copied into the project. A peer that
cannot run here is skipped with a note (:func:`relay_missing`).

CPU placement (when ``os.sched_setaffinity`` exists and there are at least 2 cores): the upstreams,
mockd and the peer relays run on core 0, every load generator on core 1 (set with
``os.sched_setaffinity`` right after each process is started; processes it forks later, such as nginx's
worker, inherit it), so the client never competes with the relay it measures. On one core everything
shares it (the figures are still same-run ratios).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers.py"
UPSTREAMS = {"websockets": PEERS, "aiohttp": BENCH / "aiohttp_upstream.py"}  # flavour → script
PEER_RELAYS = Path(os.environ.get("MOCKD_BENCH_PEERS") or Path(__file__).resolve().parents[2] / "shared" / "bench")
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
        with suppress(ProcessLookupError):
            os.sched_setaffinity(process.pid, cores)
    return process


def placement() -> str:
    if _cores(0) is None:
        return "not pinned (single core or no sched_setaffinity)"
    return f"upstreams + mockd + peer relays on CPU {min(_cores(SERVER_CORE) or {0})}, " \
           f"load generators on CPU {min(_cores(CLIENT_CORE) or {1})}"


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str,
               timeout: float = READY_TIMEOUT, interval: float = 0.001, log: Path | None = None) -> None:
    """Poll ``ready`` every ``interval`` s until it holds; fail when ``process`` exits first or after
    ``timeout`` s. ``what`` names the awaited state in the error, which ends with the tail of ``log``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            problem = f"exited with {process.returncode} before {what}"
        elif time.monotonic() > deadline:
            problem = f"not {what} after {timeout} s"
        else:
            time.sleep(interval)
            continue
        output = f"; its output ends: {log.read_text(errors='replace')[-1500:]}" if log and log.exists() else ""
        raise RuntimeError(f"{process.args!r} {problem}{output}")


def wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT,
                  log: Path | None = None) -> None:
    wait_until(path.exists, process, f"ready ({path.name} written)", timeout, log=log)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT,
                  log: Path | None = None) -> None:
    wait_until(lambda: _listening(port), process, f"listening on port {port}", timeout, 0.01, log)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


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
def upstream(kind: str, workdir: Path, flavour: str = "websockets") -> Iterator[int]:
    """An upstream (``ws-echo`` or ``sse``) on core 0; yields its port. ``flavour`` "websockets" is
    bench/peers.py's, "aiohttp" bench/aiohttp_upstream.py's (the fast one, for P9)."""
    ready = workdir / f"{kind}-{flavour}.port"
    ready.unlink(missing_ok=True)
    process = spawn([PYTHON, str(UPSTREAMS[flavour]), kind, "--ready", str(ready)], SERVER_CORE)
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
        return self._status_kb("VmRSS:")

    def peak_rss_kb(self) -> int:
        """The most RSS it ever had (VmHWM), e.g. while it started."""
        return self._status_kb("VmHWM:")

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
        return 0


@contextmanager
def mockd(workdir: Path, data_dir: Path, upstream_url: str | None = None,
          configs: tuple[Path, ...] = (), ready_timeout: float = READY_TIMEOUT) -> Iterator[Mockd]:
    """``mockd serve`` on free ports, pinned to core 0, started in ``workdir`` (no stray mockd.yaml);
    ``ready_timeout``: how long it may take to open ``data_dir`` and listen."""
    ready, settings, output = workdir / "mockd.ready", workdir / "bench-settings.yaml", workdir / "mockd.log"
    ready.unlink(missing_ok=True)
    settings.write_text(f"recording:\n  maxBytes: {QUOTA_BYTES}\n")  # P5 writes more than the default 500 MiB
    command = [PYTHON, "-m", "mockd", "serve", "--port", "0", "--admin-port", "0", "--ready-file", str(ready),
               "--data-dir", str(data_dir), "--settings", str(settings), "--log-level", "warning"]
    command += ["--upstream", upstream_url] if upstream_url else []
    for config in configs:
        command += ["--config", str(config)]
    log = output.open("ab")
    launched = time.perf_counter()
    process = spawn(command, SERVER_CORE, cwd=workdir, stdout=log, stderr=log)
    try:
        wait_for_file(ready, process, ready_timeout, log=output)
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


def download(base: str, method: str, path: str, body: Any = None, chunk: int = 1 << 20,
             timeout: float = 600) -> tuple[int, float]:
    """Read an answer's body in ``chunk``-byte pieces and drop them (a body of any size in flat memory):
    its length and the seconds from sending the request to its last byte."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    buffer = memoryview(bytearray(chunk))
    received = 0
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while piece := response.readinto(buffer):
                received += piece
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from error
    return received, time.perf_counter() - started


@contextmanager
def on_client_core() -> Iterator[None]:
    """Run the calling thread on the load generators' core meanwhile (threads it starts inherit it), so
    a client measured in this process — P6's downloads and pages — does not compete with mockd."""
    cores = _cores(CLIENT_CORE)
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)  # pid 0: the calling thread only
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


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


# --- peer relays: mitmdump, nginx, relay.py -------------------------------------------------------


@dataclass(frozen=True)
class PeerRelay:
    """A reverse proxy put in front of the upstream beside mockd."""

    command: Callable[[Path, int, int], list[str]]  # (its own directory, listen port, upstream port) → argv
    missing: Callable[[], str | None]  # why it cannot run here; None when it can


def _mitmdump_command(directory: Path, port: int, upstream_port: int) -> list[str]:
    """mitmdump in reverse mode, recording the flows to a file."""
    return ["mitmdump", "--mode", f"reverse:http://127.0.0.1:{upstream_port}", "--listen-host", "127.0.0.1",
            "--listen-port", str(port), "-q", "-w", str(directory / "mitm.flows")]


def _nginx_command(directory: Path, port: int, upstream_port: int) -> list[str]:
    """``nginx_conf.sh`` from the peer relays' directory: writes ``directory``/nginx.conf, then runs nginx
    (one worker) in the foreground."""
    return ["bash", str(PEER_RELAYS / "nginx_conf.sh"), str(directory), str(port), str(upstream_port)]


def _relay_py_command(directory: Path, port: int, upstream_port: int) -> list[str]:
    """``relay.py`` from the peer relays' directory, a minimal aiohttp relay that records every frame in
    memory, on this Python (aiohttp, uvloop)."""
    return [PYTHON, str(PEER_RELAYS / "relay.py"), str(port), str(upstream_port)]


def _shared_missing(name: str) -> str | None:
    path = PEER_RELAYS / name
    return None if path.is_file() else f"{name} not found in {PEER_RELAYS} (set MOCKD_BENCH_PEERS)"


def _mitmdump_missing() -> str | None:
    return None if shutil.which("mitmdump") else "mitmproxy not installed"


def _nginx_missing() -> str | None:
    return "nginx not installed" if shutil.which("nginx") is None else _shared_missing("nginx_conf.sh")


def _relay_py_missing() -> str | None:
    uvloop = importlib.util.find_spec("uvloop") is not None
    return _shared_missing("relay.py") or (None if uvloop else "uvloop not installed (relay.py needs it)")


RELAYS: dict[str, PeerRelay] = {
    "mitmproxy": PeerRelay(_mitmdump_command, _mitmdump_missing),
    "nginx": PeerRelay(_nginx_command, _nginx_missing),
    "relay.py": PeerRelay(_relay_py_command, _relay_py_missing),
}


def relay_missing(name: str) -> str | None:
    """Why the peer relay ``name`` (a key of :data:`RELAYS`) cannot run here, a note that names it
    ("nginx not installed"), or None."""
    return RELAYS[name].missing()


@contextmanager
def relay(name: str, workdir: Path, upstream_port: int) -> Iterator[int | None]:
    """The peer relay ``name`` on a free port in front of the upstream, on core 0, in its own directory
    under ``workdir`` (its output goes to ``output.log`` there); yields its port once it accepts
    connections, or None when it cannot run here."""
    if relay_missing(name) is not None:
        yield None
        return
    port = _free_port()
    directory = workdir / f"relay-{name.replace('.', '-')}-{port}"
    directory.mkdir(parents=True)
    output = directory / "output.log"
    with output.open("ab") as log:
        process = spawn(RELAYS[name].command(directory, port, upstream_port), SERVER_CORE, cwd=directory,
                        stdout=log, stderr=log)
        try:
            wait_for_port(port, process, log=output)
            yield port
        finally:
            stop(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
