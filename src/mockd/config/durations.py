"""Durations as written in config files: ``"100ms"``, ``"1.5s"``, ``"2m"``, ``"1h30m"``, or a number of ms."""

from __future__ import annotations

import functools
import re

Duration = str | int | float

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)")


@functools.lru_cache(maxsize=1024)
def _parse_text(text: str) -> float:
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration")
    position, total = 0, 0.0
    for part in _PART.finditer(stripped):
        if part.start() != position:
            break
        total += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if position != len(stripped):
        raise ValueError(f"invalid duration {text!r} (use e.g. \"250ms\", \"30s\", \"5m\", \"1h30m\")")
    return total


def seconds(value: Duration | None) -> float:
    """A config duration in seconds; a bare number is milliseconds, ``None`` is zero."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise ValueError("a duration must be a string like \"100ms\" or a number of milliseconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"negative duration {value}")
        return value / 1000.0
    return _parse_text(value)
