"""Redaction: nothing secret reaches the disk, and everything else stays byte for byte as it was sent.

Headers are matched by name, case-insensitively. Body keys are plain keys (redacted at any depth) or
JSONPath expressions starting with ``$``. A JSON payload is redacted by replacing only the byte spans
of the matched values with the redact value (as a JSON string), so the rest of the payload — spacing,
key order, number spelling — is exactly what was sent, and the result is still valid JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import jsonpath
import msgspec

DEFAULT_HEADERS = ("authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token")

Path = tuple[str | int, ...]
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_scan_string = json.decoder.scanstring  # type: ignore[attr-defined]


class _Invalid(Exception):
    pass


def value_spans(text: str) -> dict[Path, tuple[int, int]]:
    """Every value in a JSON document, by its path, with its (start, end) character span."""
    spans: dict[Path, tuple[int, int]] = {}
    end = _value(text, _skip(text, 0), (), spans)
    if _skip(text, end) != len(text):
        raise _Invalid
    return spans


def _skip(text: str, index: int) -> int:
    return _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]


def _value(text: str, index: int, path: Path, spans: dict[Path, tuple[int, int]]) -> int:
    if index >= len(text):
        raise _Invalid
    char = text[index]
    if char == "{":
        end = _object(text, index + 1, path, spans)
    elif char == "[":
        end = _array(text, index + 1, path, spans)
    elif char == '"':
        end = _scan_string(text, index + 1)[1]
    elif text.startswith(("true", "null"), index):
        end = index + 4
    elif text.startswith("false", index):
        end = index + 5
    else:
        match = _NUMBER.match(text, index)
        if match is None:
            raise _Invalid
        end = match.end()
    spans[path] = (index, end)
    return end


def _object(text: str, index: int, path: Path, spans: dict[Path, tuple[int, int]]) -> int:
    index = _skip(text, index)
    if text[index:index + 1] == "}":
        return index + 1
    while True:
        if text[index:index + 1] != '"':
            raise _Invalid
        key, index = _scan_string(text, index + 1)
        index = _skip(text, index)
        if text[index:index + 1] != ":":
            raise _Invalid
        index = _skip(text, _value(text, _skip(text, index + 1), (*path, key), spans))
        if text[index:index + 1] == "}":
            return index + 1
        if text[index:index + 1] != ",":
            raise _Invalid
        index = _skip(text, index + 1)


def _array(text: str, index: int, path: Path, spans: dict[Path, tuple[int, int]]) -> int:
    index = _skip(text, index)
    if text[index:index + 1] == "]":
        return index + 1
    position = 0
    while True:
        index = _skip(text, _value(text, _skip(text, index), (*path, position), spans))
        position += 1
        if text[index:index + 1] == "]":
            return index + 1
        if text[index:index + 1] != ",":
            raise _Invalid
        index = index + 1


@dataclass(frozen=True)
class Redactor:
    filter_headers: Iterable[str] = ()
    filter_body_keys: Iterable[str] = ()
    redact_value: str = "[REDACTED]"
    _headers: frozenset[str] = field(init=False)
    _plain_keys: frozenset[str] = field(init=False)
    _paths: tuple[jsonpath.JSONPath | jsonpath.CompoundJSONPath, ...] = field(init=False)
    _replacement: str = field(init=False)

    def __post_init__(self) -> None:
        keys = list(self.filter_body_keys)
        object.__setattr__(self, "_headers", frozenset({*DEFAULT_HEADERS, *(h.lower() for h in self.filter_headers)}))
        object.__setattr__(self, "_plain_keys", frozenset(k for k in keys if not k.startswith("$")))
        object.__setattr__(self, "_paths", tuple(jsonpath.compile(k) for k in keys if k.startswith("$")))
        object.__setattr__(self, "_replacement", json.dumps(self.redact_value))

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers as a dict (repeated ones joined with ", "), secret ones replaced."""
        result: dict[str, str] = {}
        for name, value in headers:
            if name.lower() in self._headers:
                result[name] = self.redact_value
            else:
                result[name] = f"{result[name]}, {value}" if name in result else value
        return result

    def query(self, query: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Query parameters as a dict; those named like a plain body key are replaced."""
        return {name: self.redact_value if name in self._plain_keys else value for name, value in query}

    @property
    def redacts_bodies(self) -> bool:
        return bool(self._plain_keys or self._paths)

    def body(self, text: str) -> str:
        """``text`` with every matched JSON value replaced; non-JSON text comes back unchanged."""
        if not self.redacts_bodies:
            return text
        stripped = text.lstrip()
        if not stripped.startswith(("{", "[")):
            return text
        try:
            spans = value_spans(text)
            targets = [span for path, span in spans.items() if path and path[-1] in self._plain_keys]
            if self._paths:
                targets.extend(self._path_spans(text, spans))
        except (_Invalid, ValueError, IndexError, msgspec.DecodeError):
            return text
        return self._replace(text, targets)

    def _path_spans(self, text: str, spans: dict[Path, tuple[int, int]]) -> list[tuple[int, int]]:
        document = json.loads(text)  # not msgspec: a number beyond a float (1e400) must not stop redaction
        found: list[tuple[int, int]] = []
        for compiled in self._paths:
            for match in compiled.finditer(document):
                span = spans.get(tuple(match.parts))
                if span is not None:
                    found.append(span)
        return found

    def _replace(self, text: str, targets: list[tuple[int, int]]) -> str:
        """Replace the outermost spans, last first so earlier offsets stay valid."""
        outermost: list[tuple[int, int]] = []
        for start, end in sorted(set(targets)):
            if outermost and start < outermost[-1][1]:
                continue  # inside a value already being replaced
            outermost.append((start, end))
        for start, end in reversed(outermost):
            text = text[:start] + self._replacement + text[end:]
        return text
