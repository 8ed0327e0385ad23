"""Where mockd's time goes on a relay load: CPU per message with and without a recording session, and
optionally a py-spy profile of the recording run. The measurements behind docs/benchmarks.md's
"Profiling-led fixes".

    .venv/bin/python bench/profile.py ws  [--messages 500] [--rounds 2] [--upstream aiohttp] [--py-spy OUT]
    .venv/bin/python bench/profile.py sse [--messages 300000] [--rounds 2] [--upstream aiohttp] [--py-spy OUT]
    .venv/bin/python bench/profile.py ws --session-path '/elsewhere*'   # a session that records other paths

``ws`` is P1's 100 connections echoing one message at a time; ``sse`` is P3's unpaced stream. The
upstream is bench/peers.py's (``--upstream websockets``, the default, as in P1–P3) or the fast
bench/aiohttp_upstream.py (``--upstream aiohttp``, as in P9). Processes are placed as in bench/run.py.
CPU per message is mockd's user + system time (``/proc/<pid>/stat``) over the run divided by the
messages (or events) relayed; ``busy`` is that time over the wall time.
``--py-spy`` writes py-spy's raw (collapsed-stack) output of the last recording run to OUT.
``--session-path`` is the recording session's path pattern (default ``/*``, every path): one that matches
nothing the load uses shows what a session costs the connections it does not record.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import UPSTREAMS, Mockd, load, mockd, recording, upstream

PROTOCOLS = {"ws": ("ws-echo", "websocket"), "sse": ("sse", "sse")}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def load_for(kind: str, messages: int) -> Callable[[str], dict[str, Any]]:
    if kind == "ws":
        return lambda base: load("ws-load", "--url", f"ws://{base}/bench", "--conns", "100", "--count", str(messages),
                                 "--window", "1", "--seconds", "0")
    return lambda base: load("sse-load", "--url", f"http://{base}/events?n={messages}&gap_us=0")


@contextlib.contextmanager
def py_spy(server: Mockd, out: Path | None) -> Iterator[None]:
    """py-spy attached to mockd while the block runs (nothing when ``out`` is None or py-spy is absent)."""
    executable = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if out is None or executable is None:
        yield
        return
    spy = subprocess.Popen([executable, "record", "-p", str(server.pid), "-r", "500", "-f", "raw", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(PROTOCOLS))
    parser.add_argument("--messages", type=int, help="per connection (ws, default 500) or events (sse, 300000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--upstream", choices=sorted(UPSTREAMS), default="websockets",
                        help="the upstream's flavour: bench/peers.py's (websockets) or bench/aiohttp_upstream.py's")
    parser.add_argument("--py-spy", type=Path, dest="spy", help="raw py-spy output of the last recording run")
    parser.add_argument("--session-path", default="/*", help="the recording session's path pattern (default /*)")
    args = parser.parse_args()
    peer, protocol = PROTOCOLS[args.kind]
    messages = args.messages or (500 if args.kind == "ws" else 300_000)
    run = load_for(args.kind, messages)
    with tempfile.TemporaryDirectory(prefix="mockd-profile-") as workdir:
        work = Path(workdir)
        (work / "data").mkdir()
        with upstream(peer, work, args.upstream) as port, \
                mockd(work, work / "data", f"http://127.0.0.1:{port}") as server:
            direct = run(f"127.0.0.1:{port}")["rate"]
            for round_ in range(args.rounds):
                for recorded in (False, True):
                    last = recorded and round_ == args.rounds - 1
                    with recording(server, protocol, args.session_path) if recorded else contextlib.nullcontext(), \
                            py_spy(server, args.spy if last else None):
                        before = cpu_seconds(server.pid)
                        result = run(f"127.0.0.1:{server.mock_port}")
                        used = cpu_seconds(server.pid) - before
                    count = int(result["echoed"] if args.kind == "ws" else result["events"])
                    print(f"{'recording' if recorded else 'no session':10}  {result['rate'] / direct:.2f}× direct  "
                          f"mockd CPU {used / count * 1e6:5.1f} µs per message  busy {used / result['elapsed']:.0%}",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
