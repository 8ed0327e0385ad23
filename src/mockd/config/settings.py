"""Process settings (``mockd.yaml``, docs/config.md): the ``recording:``, ``upstream:`` and ``admin:``
blocks, and where data lives."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from mockd.config.model import ConfigError, describe_validation_error, parse_document

DEFAULT_REDACT_VALUE = "[REDACTED]"
DEFAULT_MAX_BYTES = 500 * 1024 * 1024


class RecordingSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    filter_headers: list[str] = []
    filter_body_keys: list[str] = []
    redact_value: str = DEFAULT_REDACT_VALUE
    data_dir: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    warn_percent: float = 80

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError("maxBytes: must be positive")
        if not 0 < self.warn_percent <= 100:
            raise ValueError("warnPercent: must be between 0 and 100")


class UpstreamSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """TLS towards upstreams, as ``--upstream-ca``/``--upstream-insecure``/``--upstream-cert``/``--upstream-key``
    (a flag wins over its key here). Relative paths are relative to the settings file."""

    ca: str | None = None
    insecure: bool = False
    cert: str | None = None
    key: str | None = None


class AdminSettings(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """The admin API's ``--admin-token``, ``--admin-allowed-host`` and ``--admin-allow-origin`` (flags and
    the environment win; hosts and origins given both ways add up)."""

    token: str | None = None
    allowed_hosts: list[str] = []
    allow_origins: list[str] = []


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    recording: RecordingSettings = RecordingSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    admin: AdminSettings = AdminSettings()


def settings_search_path() -> list[Path]:
    """Where settings are looked for when ``--settings`` is not given, first found wins."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path("mockd.yaml"), config_home / "mockd" / "mockd.yaml"]


def load_settings(path: Path | None) -> tuple[Settings, Path | None]:
    """Read the settings file named, or the first one found on the search path, or defaults."""
    if path is None:
        path = next((candidate for candidate in settings_search_path() if candidate.is_file()), None)
        if path is None:
            return Settings(), None
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings file: {exc.strerror}") from None
    document = parse_document(text, str(path))
    if document is None:
        return Settings(), path
    try:
        return msgspec.convert(document, Settings), path
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deep") from None


def platform_data_dir() -> Path:
    """``recordings`` in the platform's user data directory, as platformdirs knows it: the XDG data home
    on Linux, Application Support on macOS, LOCALAPPDATA on Windows (imported here: only this needs it)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("mockd", appauthor=False)) / "recordings"


def resolve_data_dir(flag: str | None, settings: Settings) -> Path:
    """``--data-dir``, else ``MOCKD_DATA_DIR``, else the settings' ``dataDir``, else the platform default."""
    chosen = flag or os.environ.get("MOCKD_DATA_DIR") or settings.recording.data_dir
    return Path(chosen).expanduser() if chosen else platform_data_dir()
