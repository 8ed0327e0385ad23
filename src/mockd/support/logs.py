"""Logging set-up: plain text lines or one JSON object per line, on stderr."""

from __future__ import annotations

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        access = getattr(record, "access", None)  # the access log's fields (mockd.serving.accesslog)
        if access:
            entry.update(access)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, style: str, access_log: bool = False) -> None:
    """Handlers for ``level`` in ``style`` (text or json); the access log (``mockd.access``) is on at
    ``debug`` or with ``access_log``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if style == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("mockd.access").setLevel(logging.INFO if access_log or level.lower() == "debug"
                                               else logging.WARNING)
