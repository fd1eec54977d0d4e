"""Leaving a Redis as a test found it: flush the suite's own server, else delete only the test's keys."""

from __future__ import annotations

import redis

from ktsync.core.redis_server import RedisHandle


def forget_keys(client: redis.Redis, handle: RedisHandle, namespace: str) -> None:
    """Flush a Redis the suite started; on one it did not (``KTSYNC_REDIS_URL``), delete only the keys
    under ``namespace`` (never flush a Redis we did not start)."""
    if handle.owned:
        client.flushdb()
        return
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
