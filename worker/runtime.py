"""Everything a worker process needs to run tasks, built once per process from the settings."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from config.settings import Settings
from worker.deadletter import DeadLetterStore, RedisDeadLetterStore
from worker.klicktipp.auth import auth_from_env
from worker.klicktipp.client import KlickTippClient
from worker.klicktipp.http import CallRecord, Timeout
from worker.reference import ReferenceData
from worker.service import SyncService
from worker.stats import RedisStats, Stats


class CallCounter:
    """Counts KlickTipp calls made by the current thread, i.e. by the task it runs."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self, record: CallRecord) -> None:
        self._local.count = self.value() + 1

    def reset(self) -> None:
        self._local.count = 0

    def value(self) -> int:
        count: int = getattr(self._local, "count", 0)
        return count


@dataclass
class WorkerRuntime:
    settings: Settings
    client: KlickTippClient
    reference: ReferenceData
    service: SyncService
    redis: redis.Redis
    dead_letters: DeadLetterStore
    stats: Stats
    calls: CallCounter

    @classmethod
    def build(cls, settings: Settings, env: Mapping[str, str]) -> WorkerRuntime:
        calls = CallCounter()
        client = KlickTippClient(
            auth_from_env(env),
            base_url=settings.klicktipp.base_url,
            timeout=Timeout(connect=settings.klicktipp.connect_timeout, read=settings.klicktipp.read_timeout),
            observer=calls,
        )
        reference = ReferenceData(client, ttl=settings.klicktipp.reference_ttl)
        store = redis.Redis.from_url(settings.redis_url)
        return cls(
            settings=settings,
            client=client,
            reference=reference,
            service=SyncService(client, reference, settings),
            redis=store,
            dead_letters=RedisDeadLetterStore(store, settings.key_prefix),
            stats=RedisStats(store, settings.key_prefix),
            calls=calls,
        )

    def close(self) -> None:
        self.client.close()
        self.redis.close()


class RuntimeHolder:
    """One runtime per process: a forked pool child builds its own (sockets must not cross fork)."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self._settings = settings
        self._env = dict(env)
        self._lock = threading.Lock()
        self._runtime: WorkerRuntime | None = None
        self._pid = 0

    def get(self) -> WorkerRuntime:
        if self._runtime is None or self._pid != os.getpid():
            with self._lock:
                if self._runtime is None or self._pid != os.getpid():
                    self._runtime = WorkerRuntime.build(self._settings, self._env)
                    self._pid = os.getpid()
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None and self._pid == os.getpid():
            self._runtime.close()
        self._runtime = None
