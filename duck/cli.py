"""The ``duck`` command: ``duck serve``, the admin commands of duck/ctl, and the
data commands (backup, restore, import, export) of duck/migrate."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import trio

from . import __version__, logs, realtime
from .config import Config, ConfigError, load_config
from .ctl import admin, apppass
from .migrate import commands as data_commands
from .mime import collector
from .store import EmbeddedDatabaseError, StoreError

log = logging.getLogger("duck")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./duck-data)")
    parser.add_argument(
        "--mongo-uri", help="use this MongoDB deployment instead of the embedded one"
    )
    parser.add_argument("--database", help="database name (default duck)")
    parser.add_argument("--embedded-engine", choices=["rust", "python"])
    parser.add_argument("--embedded-cache-size", help="embedded cache size, e.g. 256M")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--log-format", choices=logs.FORMATS,
                        help="text lines (default) or JSON lines")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``duck`` command."""
    parser = argparse.ArgumentParser(prog="duck", description="duck mail store server")
    parser.add_argument("--version", action="version", version=f"duck {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _add_common(serve)
    serve.add_argument("--host", help="address of the IMAP listeners (default 127.0.0.1)")
    serve.add_argument("--imap-port", type=int, help="IMAP port with STARTTLS (default 1143)")
    serve.add_argument(
        "--imaps-port", type=int, help="implicit-TLS IMAP port (default 1993; 0 disables)"
    )
    serve.add_argument("--lmtp-port", type=int, help="LMTP port (default 2424)")
    serve.add_argument(
        "--pop3-port", type=int, help="POP3 port with STLS (default 1110; 0 disables)"
    )
    serve.add_argument(
        "--pop3s-port", type=int, help="implicit-TLS POP3 port (default 1995; 0 disables)"
    )
    serve.add_argument(
        "--managesieve-port", type=int,
        help="ManageSieve port with STARTTLS (default 4190; 0 disables)",
    )
    serve.add_argument(
        "--managesieves-port", type=int,
        help="implicit-TLS ManageSieve port (default 0: disabled)",
    )
    serve.add_argument("--api-port", type=int, help="HTTP API port (default 8080)")
    serve.add_argument(
        "--api-host", help="address of the HTTP API (default 127.0.0.1; others need a token)"
    )
    serve.add_argument("--api-token", help="access token the HTTP API requires")
    serve.add_argument("--lmtp-host", help="address of the LMTP listener (default 127.0.0.1)")
    serve.add_argument("--socketmap-port", type=int,
                       help="Postfix socketmap recipient lookups on this port (default off)")
    serve.add_argument("--hostname", help="name in greetings and the self-signed certificate")
    serve.add_argument(
        "--workers", type=int,
        help="server processes sharing the ports and the database (default 1)",
    )
    serve.add_argument(
        "--smtp-relay", help="host:port of the SMTP relay for redirects and vacation replies",
    )
    serve.add_argument(
        "--smtp-relay-tls", choices=["starttls", "tls", "none"],
        help="TLS to the relay (default starttls)",
    )
    # Internal: a worker of `duck serve --workers N`, its settings on stdin.
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)

    admin.add_parsers(sub, _add_common)
    data_commands.add_parsers(sub, _add_common)
    apppass.add_parsers(sub, _add_common)
    return parser


def _config(args: argparse.Namespace) -> Config:
    keys = [
        "data_dir", "mongo_uri", "database", "embedded_engine", "embedded_cache_size",
        "log_level", "log_format", "host", "imap_port", "imaps_port", "lmtp_port", "api_port",
        "hostname", "socketmap_port",
        "api_host", "api_token", "lmtp_host", "workers", "pop3_port", "pop3s_port",
        "smtp_relay", "smtp_relay_tls", "managesieve_port", "managesieves_port",
    ]
    overrides = {key: getattr(args, key, None) for key in keys}
    return load_config(args.config, overrides)


def _setup_logging(level: str, tag: str = "", fmt: str = "text") -> None:
    logs.configure(level, fmt, tag)


async def _serve(config: Config) -> int:
    """Serve until a signal: the first stops gracefully, a second at once. With
    ``workers`` > 1 this process supervises that many server processes."""
    # Imported here: the admin commands start faster without the servers' modules.
    from .server import Server, stop_on_signals
    from .workers import WorkerPool

    server = Server(config) if config.workers == 1 else WorkerPool(config)
    # (A worker pool's parent serves nothing: its workers raise their own loops.)
    with _loop_priority(config) if config.workers == 1 else contextlib.nullcontext():
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as server_scope:
                await nursery.start(stop_on_signals, server.request_shutdown,
                                    server_scope.cancel)
                await server.run()
            nursery.cancel_scope.cancel()
    return server.exit_code if isinstance(server, WorkerPool) else 0


_STARTUP_ERRORS = (OSError, StoreError, EmbeddedDatabaseError)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _tune_gc() -> None:
    """Fewer collector passes for a long-running server, and the objects of the
    imports out of the oldest generation's walks (``gc.freeze``)."""
    from . import server  # noqa: F401  (its imports, frozen with the rest)

    collector.settle()


@contextlib.contextmanager
def _loop_priority(config: Config) -> Iterator[None]:
    """The serving loop's thread at the lowest real-time priority where allowed
    (duck/realtime.py) while it serves."""
    if not config.loop_realtime:
        yield
        return
    with realtime.raised(config.workers) as why_not:
        if why_not is None:
            log.info("the event loop runs at real-time priority %d (SCHED_FIFO)",
                     realtime.PRIORITY)
        else:
            log.info("the event loop runs at ordinary priority (real-time: %s)", why_not)
        yield


def _run_serve(async_fn: Callable[[], Awaitable[int | None]]) -> int:
    _tune_gc()
    try:
        return trio.run(async_fn) or 0
    except (OSError, StoreError, EmbeddedDatabaseError, ExceptionGroup) as exc:
        # A port in use, a database that never answered: one clear line, not a
        # traceback. Anything else is a bug and keeps its traceback.
        leaves = _leaves(exc)
        if not all(isinstance(e, _STARTUP_ERRORS) for e in leaves):
            raise
        print(f"duck: {leaves[0]}", file=sys.stderr)
        return 1


def _worker() -> int:
    from .workers import WorkerSpec, run_worker

    try:
        spec = WorkerSpec.read(sys.stdin.buffer)
    except ConfigError as exc:
        print(f"duck worker: {exc}", file=sys.stderr)
        return 2
    if spec is None:
        return 0  # the parent stopped before it handed over the settings
    _setup_logging(spec.config.log_level, f"worker-{spec.index}", spec.config.log_format)
    with _loop_priority(spec.config):
        return _run_serve(partial(run_worker, spec))


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``duck`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "serve" and args.worker:
        return _worker()
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        _setup_logging(config.log_level, fmt=config.log_format)
        return _run_serve(partial(_serve, config))
    # The admin commands print what they did; the store's progress lines are noise
    # there unless asked for.
    _setup_logging(args.log_level or "WARNING", fmt=config.log_format)
    if args.command in admin.COMMANDS:
        return admin.run(args, config)
    if args.command in data_commands.COMMANDS:
        return data_commands.main(args, config)
    if args.command == apppass.COMMAND:
        return apppass.run(args, config)
    return 2


if __name__ == "__main__":
    sys.exit(main())
