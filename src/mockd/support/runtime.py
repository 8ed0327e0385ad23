"""The files a running mockd keeps in its data directory, and how other processes find it by them.

``mockd.ready`` (JSON: ``mockPort``, ``adminPort``, ``mockUrl``, ``mockWsUrl``, ``adminUrl``, ``pid``,
``dataDir``, and ``caFile``/``adminToken`` when there are; private, 0600) is written once both listeners
accept connections and removed at a clean exit; ``mockd start`` waits for it
and the CLI's ``--data-dir`` follows it to the server that owns the directory. ``mockd.pid`` and
``mockd.log`` belong to ``mockd start``. Kept free of the server stack so the CLI starts fast.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from mockd.support.files import write_atomically

log = logging.getLogger("mockd")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})  # how this machine names itself on loopback
READY_FILE = "mockd.ready"
PID_FILE = "mockd.pid"
LOG_FILE = "mockd.log"


def announce_in_data_dir(data_dir: Path, ready: bytes) -> bool:
    """Write the ready file into the data directory, where the CLI's ``--data-dir`` finds this server;
    False (and a warning) when another live server has already announced itself there."""
    path = data_dir / READY_FILE
    other = live_server_in(data_dir)
    if other is not None and other.get("pid") != os.getpid():
        log.warning("data directory %s is also used by mockd pid %s (admin API %s); the CLI's --data-dir "
                    "will keep talking to that one", data_dir, other.get("pid"), other.get("adminUrl"))
        return False
    write_atomically(path, [ready])
    return True


def live_server_in(data_dir: Path) -> dict[str, object] | None:
    """The ready file of the mockd serving ``data_dir``, when that process still runs; else None."""
    try:
        ready = json.loads((data_dir / READY_FILE).read_text())
        pid = int(ready["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ready if isinstance(ready, dict) and process_running(pid) else None


def process_running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill()
    return stat.rpartition(")")[2].split()[0] != "Z"
