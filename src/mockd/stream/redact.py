"""Redaction: nothing secret reaches the disk, and everything else stays byte for byte as it was sent.

Headers are matched by name, case-insensitively. Body keys are plain keys (redacted at any depth) or
JSONPath expressions starting with ``$``. A JSON payload is redacted by replacing only the byte spans
of the matched values with the redact value (as a JSON string), so the rest of the payload — spacing,
key order, number spelling — is exactly what was sent, and the result is still valid JSON.

A payload that looks like JSON but cannot be read (nested deeper than the recursion limit, a number
``json`` refuses, a JSONPath that fails on it) is never stored as it came when it might hold a secret:
:meth:`Redactor.redact_body` then answers the redact value and says so, so the entry is kept and flagged.
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


# What the span scanner raises for text that simply is not JSON (stored unchanged, not flagged).
_NOT_JSON = (_Invalid, ValueError, IndexError, msgspec.DecodeError)


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
        """``text`` with every matched JSON value replaced; non-JSON text comes back unchanged.

        Unreadable JSON that might hold a secret comes back as the redact value (see :meth:`redact_body`)."""
        return self.redact_body_reason(text)[0]

    def redact_body(self, text: str) -> tuple[str, bool]:
        """``(text redacted, failed)``: ``failed`` when ``text`` looked like JSON but could not be read and
        might hold a secret — the text is then the redact value, never the original."""
        redacted, problem = self.redact_body_reason(text)
        return redacted, problem is not None

    def redact_body_reason(self, text: str) -> tuple[str, str | None]:
        """As :meth:`redact_body`, with why it failed (``None``: it did not) — a few words, never the payload.

        The normal case costs what it always did: one scan, plus one ``json.loads`` when JSONPaths are set."""
        if not self.redacts_bodies:
            return text, None
        stripped = text.lstrip()
        if not stripped.startswith(("{", "[")):
            return text, None
        try:
            spans = value_spans(text)
        except _NOT_JSON:
            return text, None
        except Exception as exc:  # noqa: BLE001 - RecursionError above all: JSON nested too deep
            return self._unreadable(text, exc)
        try:
            targets = [span for path, span in spans.items() if path and path[-1] in self._plain_keys]
            if self._paths:
                targets.extend(self._path_spans(text, spans))
        except Exception as exc:  # noqa: BLE001 - the scanner read it as JSON: any failure here is ours
            return self._unreadable(text, exc)
        return self._replace(text, targets), None

    def _unreadable(self, text: str, exc: Exception) -> tuple[str, str | None]:
        """The answer for JSON that could not be processed: the redact value unless no secret can be in it."""
        if not self._might_hold_secret(text):
            return text, None
        return self.redact_value, "nested too deep" if isinstance(exc, RecursionError) else type(exc).__name__

    def _might_hold_secret(self, text: str) -> bool:
        """Whether an unread document could hold a value to redact. A JSONPath can match anything; a plain
        key can only match if its name is written in the text, verbatim or behind an escape."""
        if self._paths or "\\" in text:
            return True
        return any(key in text for key in self._plain_keys)

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
