"""Serve the webhook receiver (``ktsync.core.web``: uvicorn with httptools + uvloop), one process.

One :class:`Producer`, one Redis client and one thread pool per process, created here at start-up
and closed on shutdown. ``python -m ktsync.producers.webhooks`` and ``ktsync webhooks`` both end up in
:func:`serve`, which prints ``READY_LINE`` once the socket accepts connections.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import redis
import uvicorn

from ktsync.config.registry import RedisTenantRegistry, WatchedTenants
from ktsync.config.settings import ConfigError, Settings, load_settings
from ktsync.core.dedupe import RedisDeduper
from ktsync.core.tenants import DEFAULT_TENANT, tenant_prefix
from ktsync.core.web import serve as serve_app
from ktsync.core.web import uvicorn_config
from ktsync.producers.enqueue import Producer
from ktsync.producers.webhooks.app import WebhookApp
from ktsync.producers.webhooks.receiver import Receiver
from ktsync.producers.webhooks.secrets import WebhookConfigError, WebhookSecrets
from ktsync.producers.webhooks.tenants import Hooks, RegistryHooks

READY_LINE = "ktsync webhooks listening on http://{host}:{port}"
POOL_THREADS = 8  # below Celery's producer pool (broker_pool_limit 10): no thread waits for a connection
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_TIMEOUT = 5.0
GRACEFUL_SECONDS = 5.0  # an enqueue in flight gets this long to reach the broker on shutdown
log = logging.getLogger(__name__)


@contextmanager
def running_receiver(
    settings: Settings, secrets: WebhookSecrets, env: Mapping[str, str] | None = None
) -> Iterator[Receiver]:
    """A receiver wired to the broker and Redis of ``settings``; closes both afterwards.

    ``secrets`` are the ``default`` tenant's (``/webhooks/{crm}``); every tenant of the config file and
    the registry has its routes ``/webhooks/{tenant}/{crm}``, with the secrets of its credentials
    (revealed from ``env``, default ``os.environ``, and ``KTSYNC_SECRET_KEY`` there)."""
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    watched = WatchedTenants(settings.tenants, RedisTenantRegistry(client, settings.deployment_prefix))
    producer = Producer(settings, tenants=watched)

    def deduper_for(tenant: str) -> RedisDeduper:
        return RedisDeduper(
            client, tenant_prefix(settings.deployment_prefix, tenant), ttl=settings.sync.event_id_ttl
        )

    try:
        default = Hooks(
            DEFAULT_TENANT, secrets, RedisDeduper(client, settings.key_prefix, ttl=settings.sync.event_id_ttl)
        )
        hooks = RegistryHooks(
            default, watched, env=os.environ if env is None else env, deduper_for=deduper_for
        )
        yield Receiver(secrets=secrets, enqueuer=producer, deduper=default.deduper, tenants=hooks)
    finally:
        producer.close()
        client.close()


def has_tenants(settings: Settings) -> bool:
    """Whether any tenant may have webhook routes (the config file's or the registry's); with Redis
    unreachable at start, assume so: requests answer 503 until it is back."""
    if settings.tenants:
        return True
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT)
    try:
        return bool(RedisTenantRegistry(client, settings.deployment_prefix).snapshot().documents)
    except redis.RedisError:
        return True
    finally:
        client.close()


def build_config(app: WebhookApp, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The uvicorn config (port 0 picks a free port, printed in the ready line); the process's logging
    (text or JSON, see ktsync.logs) stays in charge, and the receiver logs one line per request."""
    return uvicorn_config(
        app, host=host, port=port, log_level=log_level, graceful=GRACEFUL_SECONDS, log_config=None
    )


def serve(
    *,
    settings: Settings,
    secrets: WebhookSecrets,
    host: str = "127.0.0.1",
    port: int,
    log_level: str = "info",
) -> None:
    """Run the receiver until interrupted (blocking); prints the ready line when listening."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("webhook routes enabled for: %s", ", ".join(sorted(secrets.enabled())) or "none")
    with (
        running_receiver(settings, secrets) as receiver,
        ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="ktsync-webhooks") as pool,
    ):
        started = serve_app(
            WebhookApp(receiver, pool),
            host=host,
            port=port,
            ready_line=READY_LINE,
            log_level=log_level,
            graceful=GRACEFUL_SECONDS,
            log_config=None,
        )
    if not started:
        sys.exit(f"ktsync webhooks could not listen on {host}:{port}")


def main(argv: list[str] | None = None) -> None:
    """``python -m ktsync.producers.webhooks [--host H] [--port N]``: settings and secrets from the environment."""
    parser = argparse.ArgumentParser(prog="python -m ktsync.producers.webhooks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        secrets = WebhookSecrets.from_env(os.environ)
    except (ConfigError, WebhookConfigError) as exc:
        sys.exit(str(exc))
    if not secrets.enabled() and not has_tenants(settings):
        sys.exit(
            "no webhook route is configured: set at least one vendor's secret (see `ktsync webhooks --help`)"
        )
    serve(settings=settings, secrets=secrets, host=args.host, port=args.port, log_level=args.log_level)
