"""Writing files safely: private (0600) and atomic (a reader or a crash sees the old file or the new
one, never half of one). Used for recordings, the index, the ready file and the pid file."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, pieces: Iterable[bytes]) -> Path:
    """Write to a private temporary file beside ``path``, flush it to disk, then rename it into place:
    a reader or a crash sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def spool(directory: Path, pieces: Callable[[], Iterable[bytes]]) -> BinaryIO:
    """What ``pieces()`` yields, written to an unnamed temporary file in ``directory`` (it goes when
    closed) and rewound: an answer of any size in bounded memory, its length known before it is sent.
    The caller closes it; on an error the file is closed here and the error raised."""
    spooled = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - handed to the caller
    try:
        for piece in pieces():
            spooled.write(piece)
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return spooled
