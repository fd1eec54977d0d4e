"""`ktsync console`: the operator console (dead letters with replay, contacts, lanes, budgets)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import click

from ktsync.cli_ops import log_format_option
from ktsync.config.settings import Settings
from ktsync.logs import configure_logging


def register(main: click.Group, settings: Callable[[], Settings]) -> None:
    """Add the ``console`` command to the ``ktsync`` command."""
    from ktsync.console.server import DEFAULT_PORT

    @main.command()
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Interface to listen on (loopback: put a TLS proxy in front to serve others).")  # fmt: skip
    @click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
                  help="0: a free port (printed when listening).")  # fmt: skip
    @click.option("--loglevel", "-l", default="INFO", show_default=True, help="Log level.")
    @log_format_option
    def console(host: str, port: int, loglevel: str, log_format: str) -> None:
        """Serve the operator console: overview, dead letters (replay, purge), contacts (lookup,
        forget), review list, tenants, audit.

        \b
        Users (nothing is served without authentication):
          KTSYNC_CONSOLE_AUTH            operators, user:password,user2:password2
          KTSYNC_CONSOLE_VIEWERS         read-only users, same format
          KTSYNC_CONSOLE_PROXY_HEADER    or: trust this header of an authenticating reverse proxy
          KTSYNC_CONSOLE_PROXY_OPERATORS   the proxy's users who may act (others: read-only)
          KTSYNC_CONSOLE_SECRET          signs session cookies (default: random per start)
          KTSYNC_CONSOLE_SECURE_COOKIE   1: the session cookie only over HTTPS
        """
        from ktsync.console.auth import ConsoleAuthError
        from ktsync.console.server import console_for, serve

        try:
            context = console_for(settings(), os.environ)
        except ConsoleAuthError as exc:
            raise click.ClickException(str(exc)) from None
        configure_logging(log_format, loglevel)
        if not serve(context, host=host, port=port, log_level=loglevel.lower()):
            sys.exit(f"ktsync console could not listen on {host}:{port}")
