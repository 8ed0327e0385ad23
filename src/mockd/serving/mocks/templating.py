"""Response templates. Only these expressions exist, so a payload can never run code:

``{{message}}`` the received text, ``{{message.a.b}}`` a field of a JSON message, ``{{now}}`` the time
(RFC 3339, UTC), ``{{timestamp}}`` Unix time in ms, ``{{uuid}}`` a random UUID. Anything else is left as
written.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

_EXPRESSION = re.compile(r"\{\{\s*(message(?:\.[^\s{}]+)?|now|timestamp|uuid)\s*\}\}")
_MISSING = object()


def rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _message_field(message: str | None, dotted: str) -> Any:
    try:
        value: Any = msgspec.json.decode(message or "")
    except (msgspec.DecodeError, RecursionError):  # msgspec raises RecursionError past ~1000 levels
        return _MISSING
    for key in dotted.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def _as_text(value: Any) -> str:
    if value is _MISSING or value is None:
        return ""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def render(template: str, message: str | None) -> str:
    """Fill the documented expressions in ``template``; ``message`` is the client message being answered."""
    if "{{" not in template:
        return template

    def substitute(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "message":
            return message or ""
        if expression.startswith("message."):
            return _as_text(_message_field(message, expression[len("message."):]))
        if expression == "now":
            return rfc3339_now()
        if expression == "timestamp":
            return str(time.time_ns() // 1_000_000)
        return str(uuid.uuid4())

    return _EXPRESSION.sub(substitute, template)


def render_value(value: Any, message: str | None) -> Any:
    """Render every string inside a JSON value, keys included, so the result stays valid JSON."""
    if isinstance(value, str):
        return render(value, message)
    if isinstance(value, list):
        return [render_value(item, message) for item in value]
    if isinstance(value, dict):
        return {render(key, message): render_value(item, message) for key, item in value.items()}
    return value
