"""The mock config file: typed models, loading from JSON or YAML, and errors that name file, mock and field.

One set of models serves the config loader, the admin API (``/mocks``) and the OpenAPI document.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from mockd.config.durations import Duration, seconds

CONFIG_VERSION = "1.0"


class ConfigError(Exception):
    """A config or settings problem, already phrased as the one line the user sees."""


class _Model(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    pass


def _check_duration(value: Duration | None, field: str) -> None:
    try:
        seconds(value)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


if TYPE_CHECKING:
    import jsonpath

# python-jsonpath and PyYAML are imported where they are first needed: the CLI's client commands read
# these models (mockd.admin.answers) and start faster without them.


@functools.lru_cache(maxsize=256)
def compiled_jsonpath(path: str) -> jsonpath.JSONPath | jsonpath.CompoundJSONPath:
    import jsonpath

    return jsonpath.compile(path)


def jsonpath_find(path: str, document: Any) -> list[tuple[tuple[str | int, ...], Any]]:
    """``(parts, value)`` of every place a JSONPath finds in a decoded JSON document. (python-jsonpath
    reads a ``str`` document as JSON text; a string or other scalar has nothing below its root.)"""
    if not isinstance(document, (dict, list)):
        return [((), document)] if path.strip() == "$" else []
    return [(tuple(match.parts), match.obj) for match in compiled_jsonpath(path).finditer(document)]


def _check_regex(pattern: str, field: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{field}: invalid regex {pattern!r}: {exc}") from None


# --- HTTP mocks -----------------------------------------------------------------------------------


def check_jsonpath(path: str, field: str) -> None:
    if not path.startswith("$"):
        raise ValueError(f"{field}: a JSONPath starts with '$', got {path!r}")
    import jsonpath

    try:
        compiled_jsonpath(path)
    except jsonpath.JSONPathError as exc:
        raise ValueError(f"{field}: invalid JSONPath {path!r}: {str(exc).splitlines()[0]}") from None


BodyMatchType = Literal["exact", "jsonEqual", "contains", "jsonPath"]


class BodyMatch(_Model, frozen=True):
    """How a request body is matched: ``exact`` (byte for byte), ``jsonEqual`` (as JSON: key order and
    whitespace do not matter; ``ignore`` lists JSONPaths left out on both sides), ``contains`` (a
    substring), ``jsonPath`` (``path`` finds a value, equal to ``value`` when given)."""

    type: BodyMatchType = "exact"
    value: Any | msgspec.UnsetType = msgspec.UNSET
    path: str | None = None
    ignore: list[str] = []
    encoding: Literal["base64"] | None = None  # exact/contains: ``value`` is base64 of the raw bytes

    def __post_init__(self) -> None:
        if self.type in ("exact", "contains") and not isinstance(self.value, str):
            raise ValueError(f"{'an' if self.type == 'exact' else 'a'} {self.type} body match needs a string `value`")
        if self.type == "jsonEqual" and self.value is msgspec.UNSET:
            raise ValueError("a jsonEqual body match needs a `value` (any JSON)")
        if self.type == "jsonPath":
            if self.path is None:
                raise ValueError("a jsonPath body match needs `path`")
            check_jsonpath(self.path, "path")
        for index, ignored in enumerate(self.ignore):
            check_jsonpath(ignored, f"ignore[{index}]")
        if self.encoding is not None:
            if self.type not in ("exact", "contains"):
                raise ValueError("encoding: base64 values work with exact and contains body matches")
            try:
                base64.b64decode(self.value if isinstance(self.value, str) else "", validate=True)
            except binascii.Error:
                raise ValueError("value: not valid base64") from None


RequestField = Literal["method", "path", "query", "headers", "body"]


class HttpMatcher(_Model, frozen=True):
    method: str | None = None
    path: str | None = None
    path_pattern: str | None = None
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    body: BodyMatch | None = None
    match_on: list[RequestField] | None = None  # only these fields are compared (default: every one given)
    ignore_query: list[str] = []  # query parameters never compared (cache-busters, tokens)

    def __post_init__(self) -> None:
        if self.path is None and self.path_pattern is None:
            raise ValueError("matcher needs `path` or `pathPattern`")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must start with '/'")
        if self.path_pattern is not None:
            _check_regex(self.path_pattern, "pathPattern")

    def compares(self, field: RequestField) -> bool:
        return self.match_on is None or field in self.match_on


class HttpResponse(_Model, frozen=True):
    status_code: int = 200
    headers: dict[str, str] = {}
    body: Any = None
    body_encoding: Literal["base64"] | None = None  # ``body`` is base64 of the raw bytes
    delay_ms: int = 0

    def __post_init__(self) -> None:
        if self.body_encoding is not None:
            try:
                base64.b64decode(self.body if isinstance(self.body, str) else "", validate=True)
            except binascii.Error:
                raise ValueError("body: not valid base64") from None
        if not 100 <= self.status_code <= 599:
            raise ValueError(f"statusCode {self.status_code} is not an HTTP status (100-599)")
        if self.delay_ms < 0:
            raise ValueError("delayMs must not be negative")


class SseMockEvent(_Model, frozen=True):
    """One SSE block. Only the fields it has are written, so a block may be just a comment or a retry."""

    type: str | None = None
    data: Any = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None
    delay: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("type", self.type), ("id", self.id)):
            if value is not None and ("\n" in value or "\r" in value or "\0" in value):
                raise ValueError(f"{name}: an SSE {name} cannot contain line breaks or NUL")
        if self.retry is not None and self.retry < 0:
            raise ValueError("retry: must not be negative")
        if self.delay is not None and self.delay < 0:
            raise ValueError("delay: must not be negative")


class SseTiming(_Model, frozen=True):
    initial_delay: int = 0
    fixed_delay: int = 0
    per_event_delays: list[int] = []

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.fixed_delay < 0 or any(d < 0 for d in self.per_event_delays):
            raise ValueError("SSE delays must not be negative")


class SseTermination(_Model, frozen=True):
    final_event: SseMockEvent | None = None


class SseLifecycle(_Model, frozen=True):
    keepalive_interval: float = 0
    max_events: int = 0
    connection_timeout: float = 0
    termination: SseTermination = SseTermination()

    def __post_init__(self) -> None:
        if self.keepalive_interval < 0 or self.max_events < 0 or self.connection_timeout < 0:
            raise ValueError("keepaliveInterval, maxEvents and connectionTimeout must not be negative")


class SseResume(_Model, frozen=True):
    enabled: bool = False


class SseConfig(_Model, frozen=True):
    events: list[SseMockEvent] = []
    timing: SseTiming = SseTiming()
    lifecycle: SseLifecycle = SseLifecycle()
    resume: SseResume = SseResume()
    loop: bool = False
    status_code: int = 200
    headers: dict[str, str] = {}

    def __post_init__(self) -> None:
        if self.loop and not self.events:
            raise ValueError("loop needs at least one event")


class HttpSpec(_Model, frozen=True):
    matcher: HttpMatcher
    response: HttpResponse | None = None
    sse: SseConfig | None = None

    def __post_init__(self) -> None:
        if (self.response is None) == (self.sse is None):
            raise ValueError("an http mock needs exactly one of `response` or `sse`")


# --- WebSocket mocks ------------------------------------------------------------------------------

MatchType = Literal["exact", "contains", "prefix", "suffix", "regex", "json", "any"]


class MessageMatch(_Model, frozen=True):
    """How a client message is matched. A ``json`` match without ``value`` only asks that ``path`` exists."""

    type: MatchType = "any"
    value: Any | msgspec.UnsetType = msgspec.UNSET
    path: str | None = None
    message_type: Literal["text", "binary"] | None = None
    encoding: Literal["base64"] | None = None  # ``value`` is base64 and compared with the raw bytes

    def __post_init__(self) -> None:
        if self.encoding is not None:
            if self.type not in ("exact", "contains", "prefix", "suffix"):
                raise ValueError("encoding: base64 values work with exact, contains, prefix and suffix matches")
            try:
                base64.b64decode(self.value if isinstance(self.value, str) else "", validate=True)
            except binascii.Error:
                raise ValueError("value: not valid base64") from None
        if self.type == "json":
            if not self.path or not self.path.startswith("$"):
                raise ValueError("a json match needs a JSONPath `path` starting with '$'")
            check_jsonpath(self.path, "path")
        elif self.type != "any" and not isinstance(self.value, str):
            raise ValueError(f"match type {self.type!r} needs a string `value`")
        if self.type == "regex" and isinstance(self.value, str):
            _check_regex(self.value, "value")


class WsMessage(_Model, frozen=True):
    """A message the mock sends: text, JSON (serialised compactly) or binary (base64 in the config)."""

    type: Literal["text", "json", "binary"] = "text"
    value: Any = ""
    delay: Duration | None = None
    template: bool = True

    def __post_init__(self) -> None:
        _check_duration(self.delay, "delay")
        if self.type in ("text", "binary") and not isinstance(self.value, str):
            raise ValueError(f"a {self.type} message needs a string `value`")
        if self.type == "binary":
            try:
                base64.b64decode(self.value if isinstance(self.value, str) else "", validate=True)
            except binascii.Error:
                raise ValueError("a binary message `value` must be base64") from None


class WsMatcher(_Model, frozen=True):
    match: MessageMatch = MessageMatch()
    response: WsMessage | None = None
    no_response: bool = False

    def __post_init__(self) -> None:
        if self.response is None and not self.no_response:
            raise ValueError("a matcher needs a `response` or `noResponse: true`")


class SendStep(_Model, tag="send", tag_field="type", frozen=True):
    message: WsMessage


class ExpectStep(_Model, tag="expect", tag_field="type", frozen=True):
    match: MessageMatch | None = None
    timeout: Duration = "30s"
    optional: bool = False

    def __post_init__(self) -> None:
        _check_duration(self.timeout, "timeout")


class WaitStep(_Model, tag="wait", tag_field="type", frozen=True):
    duration: Duration

    def __post_init__(self) -> None:
        _check_duration(self.duration, "duration")


class PingStep(_Model, tag="ping", tag_field="type", frozen=True):
    data: str = ""


class CloseStep(_Model, tag="close", tag_field="type", frozen=True):
    code: int = 1000
    reason: str = ""
    delay: Duration | None = None

    def __post_init__(self) -> None:
        _check_duration(self.delay, "delay")
        if not (self.code in (1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014)
                or 3000 <= self.code <= 4999):
            raise ValueError(f"close code {self.code} may not be sent (use 1000-1014, 3000-4999, "
                             "or 1005 for a close frame without a code)")
        if self.code == 1005 and self.reason:
            raise ValueError("a close without a code (1005) cannot have a reason")
        if len(self.reason.encode()) > 123:
            raise ValueError("close reason longer than 123 bytes")


ScenarioStep = SendStep | ExpectStep | WaitStep | PingStep | CloseStep


class Scenario(_Model, frozen=True):
    steps: list[ScenarioStep]
    name: str | None = None
    loop: bool = False


class Heartbeat(_Model, frozen=True):
    enabled: bool = True
    interval: Duration = "30s"
    timeout: Duration = "10s"

    def __post_init__(self) -> None:
        _check_duration(self.interval, "interval")
        _check_duration(self.timeout, "timeout")
        if self.enabled and seconds(self.interval) <= 0:
            raise ValueError("interval must be positive")


class WebSocketSpec(_Model, frozen=True):
    path: str
    query: dict[str, str] = {}  # every listed query parameter must be present with this value
    subprotocols: list[str] = []
    require_subprotocol: bool = False
    max_message_size: int | None = None
    max_connections: int | None = None
    idle_timeout: Duration | None = None
    echo_mode: bool | None = None
    heartbeat: Heartbeat | None = None
    matchers: list[WsMatcher] = []
    default_response: WsMessage | None = None
    scenario: Scenario | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must start with '/'")
        _check_duration(self.idle_timeout, "idleTimeout")
        if self.max_message_size is not None and self.max_message_size <= 0:
            raise ValueError("maxMessageSize must be positive")
        if self.max_connections is not None and self.max_connections <= 0:
            raise ValueError("maxConnections must be positive")
        if self.require_subprotocol and not self.subprotocols:
            raise ValueError("requireSubprotocol needs `subprotocols`")

    @property
    def echoes(self) -> bool:
        """Echo unanswered messages: as configured, else when nothing else could answer."""
        if self.echo_mode is not None:
            return self.echo_mode
        return not self.matchers and self.scenario is None


# --- Upstream proxy -------------------------------------------------------------------------------


UPSTREAM_SCHEMES = ("http", "https", "ws", "wss")


def check_upstream_url(url: str) -> None:
    """Raise ValueError naming what is wrong with an upstream URL: its scheme, host or port."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise ValueError(f"{url!r} is not a URL: expected http://, https://, ws:// or wss:// and a host")
    if scheme.lower() not in UPSTREAM_SCHEMES:
        raise ValueError(f"{url!r}: unknown scheme {scheme!r} (use http, https, ws or wss)")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if authority.startswith("["):  # an IPv6 literal: [::1]:9000
        host, _, after = authority.partition("]")
        host, port = host[1:], after.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    if not host:
        raise ValueError(f"{url!r} has no host")
    if port and (not port.isdigit() or not 0 < int(port) <= 65535):
        raise ValueError(f"{url!r}: bad port {port!r} (expected a number from 1 to 65535)")
    if "#" in rest:
        raise ValueError(f"{url!r}: an upstream URL cannot have a fragment")


class ProxySpec(_Model, frozen=True):
    """Where a proxy mock forwards: ``target`` may be http(s) or ws(s); each serves both plain HTTP and
    WebSocket upgrades of the same host (``ws://`` stands for ``http://``, ``wss://`` for ``https://``)."""

    target: str
    path_prefix: str = "/"
    headers: dict[str, str] = {}
    strip_prefix: bool = False

    def __post_init__(self) -> None:
        try:
            check_upstream_url(self.target)
        except ValueError as exc:
            raise ValueError(f"target: {exc}") from None
        if not self.path_prefix.startswith("/"):
            raise ValueError(f"pathPrefix: {self.path_prefix!r} must start with '/'")


# --- Mocks and the config file --------------------------------------------------------------------


class _MockBase(_Model, tag_field="type", frozen=True):
    id: str | None = None
    name: str | None = None
    enabled: bool = True
    times: int | None = None  # serve this many requests or connections, then let later mocks match

    def _check_times(self) -> None:
        if self.times is not None and self.times <= 0:
            raise ValueError("times: must be positive")


class HttpMock(_MockBase, tag="http", frozen=True):
    http: HttpSpec | None = None

    def __post_init__(self) -> None:
        self._check_times()
        if self.http is None:
            raise ValueError("an http mock needs an `http` block")


class WebSocketMock(_MockBase, tag="websocket", frozen=True):
    websocket: WebSocketSpec | None = None

    def __post_init__(self) -> None:
        self._check_times()
        if self.websocket is None:
            raise ValueError("a websocket mock needs a `websocket` block")


class ProxyMock(_MockBase, tag="proxy", frozen=True):
    proxy: ProxySpec | None = None

    def __post_init__(self) -> None:
        self._check_times()
        if self.proxy is None:
            raise ValueError("a proxy mock needs a `proxy` block")


def upstream_mocks(flags: list[str], taken_ids: set[str]) -> list[ProxyMock]:
    """What the ``--upstream`` flags append after every configured mock: one proxy per flag.

    A flag is ``URL`` (everything, path prefix ``/``) or ``/prefix=URL``; prefixes must differ, so two
    plain ``URL`` flags are an error rather than one silently winning. The longest prefix matches first.
    A lone upstream has the id ``upstream`` (unless a configured mock has it); several have
    ``upstream:/prefix``.
    """
    proxies: dict[str, tuple[str, ProxyMock]] = {}
    for flag in flags:
        prefix, url = _split_upstream_flag(flag)
        if prefix in proxies:
            raise ConfigError(f"--upstream: {proxies[prefix][0]!r} and {url!r} both claim the path prefix "
                              f"{prefix!r}; give each its own, as in --upstream /api={url}")
        try:
            check_upstream_url(url)
            spec = ProxySpec(target=url, path_prefix=prefix)
        except ValueError as exc:
            raise ConfigError(f"--upstream: {exc}") from None
        proxies[prefix] = (url, ProxyMock(id=_upstream_id(prefix, len(flags), taken_ids), proxy=spec))
    return [mock for prefix, (_, mock) in sorted(proxies.items(), key=lambda item: -len(item[0].rstrip("/")))]


def _split_upstream_flag(flag: str) -> tuple[str, str]:
    if flag.startswith("/"):
        prefix, separator, url = flag.partition("=")
        if not separator:
            raise ConfigError(f"--upstream {flag}: expected /prefix=URL, as in --upstream /api=https://api.example")
        return prefix, url
    return "/", flag


def _upstream_id(prefix: str, count: int, taken_ids: set[str]) -> str | None:
    wanted = "upstream" if count == 1 else f"upstream:{prefix}"
    return None if wanted in taken_ids else wanted


Mock = HttpMock | WebSocketMock | ProxyMock
MOCK_TYPES = ("http", "websocket", "proxy")


class ConfigFile(_Model, frozen=True):
    version: str
    mocks: list[Mock] = []


# --- Loading --------------------------------------------------------------------------------------


def parse_document(text: str | bytes, source: str) -> Any:
    """JSON or YAML, chosen by content: JSON is tried first (it is also YAML, but faster to parse)."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as json_error:
        stripped = text.lstrip()[:1]
        if stripped in ("{", "[", b"{", b"["):
            raise ConfigError(f"{source}: invalid JSON: {json_error}") from None
    except RecursionError:  # msgspec raises this, not a DecodeError, past ~1000 levels
        raise ConfigError(f"{source}: invalid JSON: nested too deep") from None
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except RecursionError:  # the pure-Python loader (no libyaml) has no nesting limit of its own
        raise ConfigError(f"{source}: invalid YAML: nested too deep") from None
    except yaml.YAMLError as yaml_error:
        mark = getattr(yaml_error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(yaml_error, "problem", None) or str(yaml_error).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


def describe_validation_error(exc: msgspec.ValidationError) -> str:
    """Turn msgspec's "Expected `int`, got `str` - at `$.a.b`" into "a.b: expected int, got str"."""
    message = str(exc)
    where = ""
    if " - at `$" in message:
        message, _, path = message.rpartition(" - at `$")
        where = path.rstrip("`").lstrip(".")
    message = message.replace("`", "")
    message = message[:1].lower() + message[1:]
    if where and re.match(r"[A-Za-z]+: ", message):  # our own "field: problem" from __post_init__
        return f"{where}.{message}"
    return f"{where}: {message}" if where else message


def parse_mock(raw: Any, label: str = "mock") -> Mock:
    """Validate one mock (as received by ``POST /mocks`` or read from a file)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: must be an object")
    mock_type = raw.get("type")
    if mock_type not in MOCK_TYPES:
        raise ConfigError(f"{label}: type: unknown mock type {mock_type!r} (expected one of: "
                          f"{', '.join(MOCK_TYPES)})")
    try:
        return msgspec.convert(raw, Mock)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{label}: {describe_validation_error(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{label}: nested too deep") from None


def mocks_from_document(document: Any, source: str) -> list[Mock]:
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: a config file must be an object with `version` and `mocks`")
    unknown = set(document) - {"version", "mocks"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    if document.get("version") != CONFIG_VERSION:
        raise ConfigError(f"{source}: version: must be \"{CONFIG_VERSION}\", got {document.get('version')!r}")
    raw_mocks = document.get("mocks", [])
    if not isinstance(raw_mocks, list):
        raise ConfigError(f"{source}: mocks: must be a list")
    return [parse_mock(raw, _mock_label(source, index, raw)) for index, raw in enumerate(raw_mocks)]


def _mock_label(source: str, index: int, raw: Any) -> str:
    mock_id = raw.get("id") if isinstance(raw, dict) else None
    return f"{source}: mock {mock_id!r} (mocks[{index}])" if mock_id else f"{source}: mocks[{index}]"


def load_config_files(paths: list[Path]) -> list[Mock]:
    """Read every config file in order; mock ids must be unique across all of them."""
    mocks: list[Mock] = []
    first_seen: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
        for index, mock in enumerate(mocks_from_document(parse_document(text, str(path)), str(path))):
            if mock.id is not None:
                if mock.id in first_seen:
                    raise ConfigError(f"{path}: mock {mock.id!r} (mocks[{index}]): id: duplicate mock id "
                                      f"(first defined in {first_seen[mock.id]})")
                first_seen[mock.id] = str(path)
            mocks.append(mock)
    return mocks
