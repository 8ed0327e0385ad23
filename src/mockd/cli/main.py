"""The ``mockd`` command line. The server stack is imported inside the commands that need it, so that
commands which only talk to a running server start fast."""

from __future__ import annotations

import functools
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mockd import __version__
from mockd.support.runtime import LOG_FILE, PID_FILE, READY_FILE, process_running

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


def fail(message: str) -> None:
    """One clear line on stderr, exit status 1."""
    click.echo(f"mockd: error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mockd")
def main() -> None:
    """mockd: mock HTTP, WebSocket and SSE endpoints; record real streams and replay them.

    \b
    Example:
      mockd serve --config mocks.json
    """


def _file_option(flag: str, help: str) -> Callable[[Any], Any]:
    return click.option(flag, type=click.Path(path_type=Path), metavar="FILE", help=help)


def server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags shared by ``serve`` and ``start``."""
    options = [
        click.option("--config", "config_paths", multiple=True, type=click.Path(path_type=Path),
                     help="Mock config file, JSON or YAML (repeatable; mocks match in file order)."),
        click.option("--host", default="127.0.0.1", show_default=True, help="Mock server address."),
        click.option("--port", default=4280, show_default=True, type=click.IntRange(0, 65535),
                     help="Mock server port (0 picks a free one)."),
        click.option("--admin-host", default="127.0.0.1", show_default=True, help="Admin API address."),
        click.option("--admin-port", default=4290, show_default=True, type=click.IntRange(0, 65535),
                     help="Admin API port (0 picks a free one)."),
        click.option("--admin-token", envvar="MOCKD_ADMIN_TOKEN",
                     help="Require this token on the admin API (env MOCKD_ADMIN_TOKEN)."),
        click.option("--admin-allowed-host", "admin_allowed_hosts", multiple=True, metavar="NAME",
                     help="Also accept this Host on the admin API (besides localhost, 127.0.0.1, ::1; repeatable)."),
        click.option("--admin-allow-origin", "admin_allow_origins", multiple=True, metavar="ORIGIN",
                     help="Let web pages from this origin (scheme://host[:port]) drive the admin API, with CORS "
                          "(repeatable)."),
        click.option("--data-dir", envvar="MOCKD_DATA_DIR", help="Recordings directory (env MOCKD_DATA_DIR)."),
        click.option("--settings", "settings_path", type=click.Path(path_type=Path),
                     help="Settings file (default ./mockd.yaml, then ~/.config/mockd/mockd.yaml)."),
        click.option("--upstream", "upstreams", multiple=True, metavar="[/PREFIX=]URL",
                     help="Proxy what no mock matches to this http, https, ws or wss server; repeat with "
                          "/prefix=URL for several (longest prefix wins)."),
        _file_option("--upstream-ca", "PEM bundle of CAs trusted for https/wss upstreams, besides the system's."),
        click.option("--upstream-insecure", is_flag=True,
                     help="Do not verify upstream TLS certificates (a warning at start-up and on each log line)."),
        _file_option("--upstream-cert", "Client certificate (PEM) for upstreams that require one (mTLS)."),
        _file_option("--upstream-key", "Key of --upstream-cert, when not in the same file."),
        _file_option("--tls-cert", "Serve the mock listener as https/wss with this certificate (PEM chain)."),
        _file_option("--tls-key", "Key of --tls-cert, when not in the same file."),
        click.option("--tls-self-signed", is_flag=True,
                     help="Serve https/wss with a throwaway certificate for localhost; prints the CA file to trust."),
        _file_option("--admin-tls-cert", "Serve the admin API as https with this certificate (PEM chain)."),
        _file_option("--admin-tls-key", "Key of --admin-tls-cert, when not in the same file."),
        click.option("--access-log", is_flag=True,
                     help="Log each request and each stream's open and close (on by default at --log-level debug)."),
        click.option("--log-level", default="info", show_default=True,
                     type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)),
        click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"])),
    ]
    return functools.reduce(lambda wrapped, option: option(wrapped), reversed(options), command)


def _serve_options(kwargs: dict[str, Any]) -> Any:
    from mockd.server import ServeOptions

    return ServeOptions(
        config_paths=list(kwargs["config_paths"]), host=kwargs["host"], port=kwargs["port"],
        admin_host=kwargs["admin_host"], admin_port=kwargs["admin_port"], admin_token=kwargs["admin_token"],
        data_dir=kwargs["data_dir"], settings_path=kwargs["settings_path"], ready_file=kwargs.get("ready_file"),
        upstreams=list(kwargs["upstreams"]), log_format=kwargs["log_format"],
        admin_allowed_hosts=list(kwargs["admin_allowed_hosts"]),
        admin_allow_origins=list(kwargs["admin_allow_origins"]),
        **{name: kwargs[name] for name in TLS_OPTIONS})


TLS_OPTIONS = ("upstream_ca", "upstream_insecure", "upstream_cert", "upstream_key", "tls_cert", "tls_key",
               "tls_self_signed", "admin_tls_cert", "admin_tls_key")


@main.command()
@server_options
@click.option("--ready-file", type=click.Path(path_type=Path),
              help="Once both listeners accept connections, write their ports and URLs here as JSON.")
def serve(**kwargs: Any) -> None:
    """Run the mock server and the admin API in the foreground until Ctrl-C.

    \b
    Example:
      mockd serve --config mocks.json
      curl -N http://localhost:4280/events
    """
    from mockd.support.logs import configure_logging
    from mockd.server import serve as run_server

    configure_logging(kwargs["log_level"], kwargs["log_format"], kwargs["access_log"])
    sys.exit(run_server(_serve_options(kwargs)))


def _runtime_dir(data_dir: str | None, settings_path: Path | None) -> Path:
    """Where ``start`` keeps its pid and log files: the data directory, as ``serve`` resolves it."""
    from mockd.config.model import ConfigError
    from mockd.server import StartupError, ensure_data_dir
    from mockd.config.settings import load_settings, resolve_data_dir

    try:
        settings, _ = load_settings(settings_path)
        directory = resolve_data_dir(data_dir, settings)
        ensure_data_dir(directory)
    except (ConfigError, StartupError) as exc:
        fail(str(exc))
    return directory


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


@main.command()
@server_options
def start(**kwargs: Any) -> None:
    """Run mockd in the background; return once it accepts connections.

    The pid file (mockd.pid) and log (mockd.log) are kept in the data directory.

    \b
    Example:
      mockd start --config fixtures/chat.json
      npm test
      mockd stop
    """
    import json

    from mockd.support.files import write_atomically

    directory = _runtime_dir(kwargs["data_dir"], kwargs["settings_path"])
    pid_file, log_file, ready_file = directory / PID_FILE, directory / LOG_FILE, directory / READY_FILE
    running = _read_pid(pid_file)
    if running is not None and process_running(running):
        fail(f"mockd is already running (pid {running}); stop it with: mockd stop")
    ready_file.unlink(missing_ok=True)
    arguments = [sys.executable, "-m", "mockd", "serve", "--ready-file", str(ready_file),
                 *_serve_arguments(kwargs, directory)]
    environment = dict(os.environ)
    if kwargs["admin_token"]:
        environment["MOCKD_ADMIN_TOKEN"] = kwargs["admin_token"]
    with os.fdopen(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        child = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=environment)
    write_atomically(pid_file, [f"{child.pid}\n".encode()])
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready_file.exists():
        if child.poll() is not None:
            pid_file.unlink(missing_ok=True)
            fail(_last_error(log_file) or f"mockd exited with status {child.returncode}; see {log_file}")
        if time.monotonic() > deadline:
            fail(f"mockd did not start within {READY_TIMEOUT:.0f}s; see {log_file}")
        time.sleep(0.02)
    ready = json.loads(ready_file.read_text())
    ca = f"  TLS CA       {ready['caFile']}\n" if "caFile" in ready else ""
    click.echo(f"mockd started (pid {child.pid})\n  mock server  {ready['mockUrl']}\n{ca}"
               f"  admin API    {ready['adminUrl']}\n  log          {log_file}\n"
               f"  stop with    mockd stop --data-dir {shlex.quote(str(directory))}")


def _serve_arguments(kwargs: dict[str, Any], directory: Path) -> list[str]:
    """``start``'s flags as ``serve`` takes them: every server option, paths made absolute (the child
    runs elsewhere), the data directory resolved, the token passed in the environment instead."""
    arguments = ["--data-dir", str(directory)]
    for parameter in serve.params:
        value = kwargs.get(parameter.name or "")
        if not isinstance(parameter, click.Option) or parameter.name in ("data_dir", "admin_token", "ready_file") \
                or value is None or value is False or value == ():
            continue
        flag = parameter.opts[0]
        for item in value if parameter.multiple else [value]:
            if parameter.is_flag:
                arguments.append(flag)
            else:
                arguments += [flag, str(Path(item).resolve()) if isinstance(item, Path) else str(item)]
    return arguments


def _last_error(log_file: Path) -> str | None:
    lines = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("mockd: error: "):
            return line[len("mockd: error: "):]
    return None


@main.command()
@click.option("--data-dir", envvar="MOCKD_DATA_DIR", help="Data directory of the mockd to stop.")
@click.option("--settings", "settings_path", type=click.Path(path_type=Path), help="Settings file.")
def stop(data_dir: str | None, settings_path: Path | None) -> None:
    """Stop the mockd started by `mockd start` (open WebSockets are closed with 1001).

    \b
    Example:
      mockd stop
    """
    pid_file = _runtime_dir(data_dir, settings_path) / PID_FILE
    pid = _read_pid(pid_file)
    if pid is None or not process_running(pid):
        pid_file.unlink(missing_ok=True)
        fail(f"mockd is not running (no live pid in {pid_file})")
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while process_running(pid):
        if time.monotonic() > deadline:
            fail(f"mockd (pid {pid}) did not stop within {STOP_TIMEOUT:.0f}s")
        time.sleep(0.02)
    pid_file.unlink(missing_ok=True)
    click.echo(f"mockd stopped (pid {pid})")


def _register_stream_recordings() -> None:
    from mockd.cli.recordings import stream_recordings

    main.add_command(stream_recordings, "stream-recordings")
    main.add_command(stream_recordings, "sr")


_register_stream_recordings()


@main.command()
def version() -> None:
    """Print the version.

    \b
    Example:
      mockd version
    """
    click.echo(f"mockd {__version__}")
