"""JSON nested too deep, as the deep-JSON tests send it: a secret beside a value nested far past any parser's limit."""

from __future__ import annotations

REDACTED = "[REDACTED]"
SECRET = "hunter2-deep-secret"
DEEP_LEVELS = (1000, 5000)


def nested(levels: int, inner: str = "1") -> str:
    """``inner`` inside ``levels`` arrays."""
    return "[" * levels + inner + "]" * levels


def deep_document(levels: int) -> str:
    """A JSON object holding a secret and a value nested ``levels`` arrays deep."""
    return '{"password": "%s", "deep": %s}' % (SECRET, nested(levels))
