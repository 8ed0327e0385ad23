"""Building mockd config files: a mocks document, HTTP and WebSocket mocks, written to disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_config(directory: Path, config: dict[str, Any] | str, name: str = "mocks.json") -> Path:
    """Write a config (a dict as JSON, a string as it is) and return its path."""
    path = directory / name
    path.write_text(json.dumps(config) if isinstance(config, dict) else config)
    return path


def mocks_config(*mocks: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.0", "mocks": list(mocks)}


def http_mock(mock_id: str, path: str, body: Any, status: int = 200) -> dict[str, Any]:
    """A ``GET path`` HTTP mock answering ``status`` with ``body``."""
    return {"id": mock_id, "type": "http", "http": {"matcher": {"method": "GET", "path": path},
                                                    "response": {"statusCode": status, "body": body}}}


def ws_mock(mock_id: str, path: str, **fields: Any) -> dict[str, Any]:
    """A WebSocket mock on ``path``; ``fields`` go into its ``websocket`` object."""
    return {"id": mock_id, "type": "websocket", "websocket": {"path": path, **fields}}
