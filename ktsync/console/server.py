"""Serve the console with uvicorn: one process, one Redis client, the workers pinged over the broker."""

from __future__ import annotations

import os
from collections.abc import Mapping

import redis

from ktsync.config.settings import Settings
from ktsync.console.app import build_app
from ktsync.console.audit import RedisAuditLog
from ktsync.console.auth import users_from_env
from ktsync.console.context import Console
from ktsync.core.web import serve as serve_app

READY_LINE = "ktsync console listening on http://{host}:{port}"
DEFAULT_PORT = 8790
PING_TIMEOUT = 0.5
SECURE_COOKIE_ENV = "KTSYNC_CONSOLE_SECURE_COOKIE"
REDIS_TIMEOUT = 5.0


def console_for(settings: Settings, env: Mapping[str, str]) -> Console:
    """The console's context; ConsoleAuthError when its users are configured wrongly (or not at all)."""
    from ktsync.cli_ops import workers_online

    users = users_from_env(env)
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2.0, socket_timeout=REDIS_TIMEOUT
    )
    return Console(
        settings=settings,
        client=client,
        env=env,
        users=users,
        audit=RedisAuditLog(client, settings.deployment_prefix),
        ping=lambda: workers_online(settings, PING_TIMEOUT),
    )


def serve(console: Console, *, host: str, port: int, log_level: str = "info") -> bool:
    """Run the console until interrupted (blocking); False when it could not listen."""
    secure = os.environ.get(SECURE_COOKIE_ENV, "").strip().lower() in ("1", "true", "yes")
    app = build_app(console, secure_cookie=secure)
    try:
        return serve_app(
            app, host=host, port=port, ready_line=READY_LINE, log_level=log_level, log_config=None
        )
    finally:
        console.client.close()
