"""Read operational state straight from Redis: queue depths and ages, parked retries, limiter, dead letters.

Shared by ``ktsync status`` and ``ktsync metrics``; every reader is read-only, a few pipelined commands.

Kombu's Redis transport keeps waiting messages in a list per queue (plus one list per priority
step; ``LPUSH`` to publish, ``BRPOP`` to consume, so the oldest message is at index -1) and
delivered-but-unacknowledged ones in the ``unacked`` hash; a retry with a countdown sits there too,
with an ``eta`` header in the future. Every broker key carries ``broker_prefix`` (kombu's
``global_keyprefix``). Longer delays are parked in ktsync's ``{p}:schedule`` sorted set, and tasks
waiting for their budget in its key queues (``{p}:kq:*``, see ``worker/keyqueues.py``).

The one write: given the key prefix, reading a queue's age records first-seen checkpoints
(:mod:`ktsync.core.queue_age`), so that other producers' messages have an age too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, cast

import redis

from ktsync.config.celery import celery_config
from ktsync.config.settings import Settings
from ktsync.core.broker import UNACKED_KEY, deferred_by_lane
from ktsync.core.lanes import LANES, Lane
from ktsync.core.queue_age import QueueAge, oldest, sample_queues
from ktsync.core.queue_age_store import RedisAgeBook
from ktsync.core.stranded import describe, find_stranded
from ktsync.worker.credentials import refused_credentials
from ktsync.worker.deadletter import RedisDeadLetterStore
from ktsync.worker.lanemetrics import recent_shares
from ktsync.worker.ratelimit.base import Limits, recovered, with_margin
from ktsync.worker.ratelimit.redis import bucket_key, inflight_key
from ktsync.worker.recovery import live_sessions, read_recovery
from ktsync.worker.stats import RedisStats


@dataclass(frozen=True)
class QueueStatus:
    queue: str
    pending: int
    in_flight: int
    scheduled: int
    parked: int = 0  # retries waiting in ktsync's schedule (only known with the key prefix)
    oldest_pending_age: float | None = None  # seconds; 0 when empty, None when nothing says
    deferred: int = 0  # tasks waiting for their budget in ktsync's key queues
    # "enqueued_at": exact, from the message's header; "first_seen": at least that old (ktsync first saw
    # it, or a newer message, waiting that long ago); None when empty or unknown
    oldest_pending_age_source: str | None = None

    @property
    def drained(self) -> bool:
        """Nothing left to do: nothing pending, running, scheduled, parked or deferred."""
        return not (self.pending or self.in_flight or self.scheduled or self.parked or self.deferred)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drained": self.drained}


def queue_status(
    client: redis.Redis, queue: str, now: float, broker_prefix: str = "", *, parked: int = 0
) -> QueueStatus:
    """Depths of one queue; ``now`` is Unix time, used to tell scheduled retries from running tasks."""
    return queue_statuses(client, [queue], now, broker_prefix, parked=parked)[0]


def queue_statuses(
    client: redis.Redis, queues: Sequence[str], now: float, broker_prefix: str = "", *, parked: int = 0,
    key_prefix: str | None = None,
) -> list[QueueStatus]:  # fmt: skip
    """Depths and oldest-message ages of several queues (``parked`` goes to the first).

    Without ``key_prefix`` read-only: only ``ktsync_enqueued_at`` headers tell ages. With it, also
    first-seen checkpoints (recorded on the way), so that every producer's messages have an age.
    """
    book = RedisAgeBook(client, key_prefix, broker_prefix)
    sampled = sample_queues(book, queues, local_now=now, recording=key_prefix is not None)
    unacked = cast(list[bytes], client.hvals(broker_prefix + UNACKED_KEY))
    in_flight, scheduled = _unacked_by_queue(unacked, now)
    statuses = []
    for index, queue in enumerate(queues):
        pending, age = sampled[queue].pending, sampled[queue].age
        seconds, source = _age_fields(pending, age)
        statuses.append(QueueStatus(queue, pending, in_flight[queue], scheduled[queue], parked if index == 0 else 0,
                                    oldest_pending_age=seconds, oldest_pending_age_source=source))  # fmt: skip
    return statuses


def _age_fields(pending: int, age: QueueAge | None) -> tuple[float | None, str | None]:
    if not pending:
        return 0.0, None
    return (round(age.seconds, 3), age.source) if age is not None else (None, None)


def _unacked_by_queue(unacked: Iterable[bytes], now: float) -> tuple[Counter[str], Counter[str]]:
    in_flight: Counter[str] = Counter()
    scheduled: Counter[str] = Counter()
    for raw in unacked:
        routing_key, eta = _routing_and_eta(raw)
        if eta is not None and eta > now:
            scheduled[routing_key] += 1
        else:
            in_flight[routing_key] += 1
    return in_flight, scheduled


def _routing_and_eta(raw: bytes) -> tuple[str, float | None]:
    try:
        message, _exchange, routing_key = json.loads(raw)
        eta = message.get("headers", {}).get("eta")
        return str(routing_key), datetime.fromisoformat(eta).timestamp() if eta else None
    except (ValueError, TypeError, AttributeError):
        return "", None


@dataclass(frozen=True)
class ParkedStatus:
    """Retries parked in ``{p}:schedule`` (delays longer than the broker countdown)."""

    count: int
    overdue: int  # due but not yet moved back: no worker runs the mover if this stays above 0
    next_due: float | None


def parked_status(client: redis.Redis, key_prefix: str, now: float) -> ParkedStatus:
    key = f"{key_prefix}:schedule"
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    pipe.zcount(key, "-inf", now)
    pipe.zrange(key, 0, 0, withscores=True)
    count, overdue, first = pipe.execute()
    first = cast(list[tuple[bytes, float]], first)
    return ParkedStatus(int(count), int(overdue), float(first[0][1]) if first else None)


@dataclass(frozen=True)
class LimiterStatus:
    """The account's KlickTipp budget as the limiter's Lua script would see it now (Redis's clock)."""

    tokens: float
    burst: float
    rate: float
    paused_for: float  # seconds left of a 429 pause; 0 when not paused
    paused_until: float | None  # Unix time
    in_flight: int
    max_in_flight: int
    rate_factor: float = 1.0  # share of the rate in force after 429s (recovers over time)


def limiter_status(client: redis.Redis, key_prefix: str, account: str, *, limits: Limits) -> LimiterStatus:
    """Read ``{p}:rl:{account}`` (tokens, ts, paused_until) and its ``:inflight`` leases; see
    ``worker/ratelimit/redis.py`` for the layout. Tokens are refilled to now, as the script does."""
    bucket = bucket_key(key_prefix, account)
    rate, burst, max_in_flight = limits.rate, limits.burst, limits.max_in_flight
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    pipe = client.pipeline(transaction=False)
    pipe.hmget(bucket, "tokens", "ts", "paused_until", "factor", "factor_ts")
    pipe.zcount(inflight_key(key_prefix, account), f"({now_ms}", "+inf")
    (tokens_raw, ts_raw, paused_raw, factor_raw, factor_ts_raw), in_flight = pipe.execute()
    factor_ts = float(factor_ts_raw) if factor_ts_raw is not None else now_ms
    factor = recovered(float(factor_raw), (now_ms - factor_ts) / 1000) if factor_raw is not None else 1.0
    tokens = float(tokens_raw) if tokens_raw is not None else float(burst)
    ts = float(ts_raw) if ts_raw is not None else now_ms
    tokens = min(burst, tokens + max(0.0, now_ms - ts) * rate * factor / 1000)
    paused_ms = float(paused_raw) if paused_raw is not None else 0.0
    paused_for = max(0.0, paused_ms - now_ms) / 1000
    return LimiterStatus(
        tokens=round(tokens, 3),
        burst=float(burst),
        rate=float(rate),
        paused_for=round(paused_for, 3),
        paused_until=paused_ms / 1000 if paused_for > 0 else None,
        in_flight=int(in_flight),
        max_in_flight=max_in_flight,
        rate_factor=round(factor, 3),
    )


def dead_letter_counts(client: redis.Redis, key_prefix: str) -> Counter[tuple[str, int | None]]:
    """Dead letters counted by (reason, KlickTipp code), from the store's cause index (no message read)."""
    census = RedisDeadLetterStore(client, key_prefix).census()
    return Counter({(cause.reason, cause.code): cause.count for cause in census})


def routed_queues(settings: Settings) -> list[str]:
    """Every queue ktsync workers read, in the order they take work (live, the pre-lane queue, bulk)."""
    routes = celery_config(settings)["task_routes"].values()
    return list(dict.fromkeys([*settings.worker.consumed_queues, *(route["queue"] for route in routes)]))


def total_status(queues: Sequence[QueueStatus], deferred: int) -> QueueStatus:
    """Every queue together: ``drained`` means nothing is left to do anywhere."""
    pending = sum(q.pending for q in queues)
    age, source = _age_fields(pending, oldest([_age_of(q) for q in queues if q.pending]))
    return QueueStatus("all", pending, sum(q.in_flight for q in queues), sum(q.scheduled for q in queues),
                       sum(q.parked for q in queues), age, deferred, source)  # fmt: skip


def _age_of(status: QueueStatus) -> QueueAge | None:
    seconds, source = status.oldest_pending_age, status.oldest_pending_age_source
    return None if seconds is None else QueueAge(seconds, exact=source == "enqueued_at")


def overall_status(client: redis.Redis, settings: Settings, now: float) -> QueueStatus:
    """Every queue, parked retry and deferred task together (``drained``: nothing left anywhere)."""
    shared = settings.deployment_prefix  # the queues, the schedule and the key queues are every tenant's
    parked = parked_status(client, shared, now)
    queues = queue_statuses(client, routed_queues(settings), now, settings.broker_prefix, parked=parked.count)
    return total_status(queues, sum(deferred_by_lane(client, shared).values()))


def lane_report(
    settings: Settings,
    queues: Sequence[QueueStatus],
    deferred: dict[Lane, int],
    shares: dict[Lane, float | None],
) -> dict[str, Any]:
    """Per lane: its queue's depth, age and in-flight count, its deferred tasks, its share of the calls."""
    by_name = {q.queue: q for q in queues}
    report = {}
    for lane in LANES:
        queue = by_name[settings.worker.lane_queue(lane)]
        with_deferred = replace(queue, deferred=deferred[lane])
        report[lane.value] = {**with_deferred.to_dict(), "budget_share": shares.get(lane)}
    return report


def status_report(client: redis.Redis, settings: Settings, account: str, now: float) -> dict[str, Any]:
    """What ``ktsync status --json`` prints, except the workers (they answer over the broker)."""
    # The tenant's own keys, and those every tenant shares (queues, schedule, key queues, limiter, recovery)
    prefix, shared = settings.key_prefix, settings.deployment_prefix
    rate, consumed = settings.rate, routed_queues(settings)
    parked = parked_status(client, shared, now)
    queues = queue_statuses(
        client, consumed, now, settings.broker_prefix, parked=parked.count, key_prefix=shared
    )
    stranded, complete = find_stranded(client, consumed, settings.broker_prefix, scan=True)
    deferred = deferred_by_lane(client, shared)
    refused = refused_credentials(client, prefix)
    lanes = lane_report(settings, queues, deferred, recent_shares(client, prefix, now))
    store = RedisDeadLetterStore(client, prefix)
    groups = dead_letter_counts(client, prefix)
    by_reason: Counter[str] = Counter()
    for (reason, _code), count in groups.items():
        by_reason[reason] += count
    limiter = limiter_status(client, shared, account, limits=with_margin(rate.per_second, rate.burst, rate.max_in_flight, rate.bulk_share))  # fmt: skip
    return {
        "tenant": settings.tenant,
        "queue": total_status(queues, sum(deferred.values())).to_dict(),
        "queues": [q.to_dict() for q in queues],
        "lanes": lanes,
        "scheduled": {
            "eta": sum(q.scheduled for q in queues),
            "parked": parked.count,
            "parked_overdue": parked.overdue,
            "next_parked_due": parked.next_due,
        },
        "outcomes": RedisStats(client, prefix).snapshot(),
        "dead_letters": store.count(),
        "dead_letters_by_reason": dict(by_reason),
        "dead_letter_groups": [
            {"reason": reason, "code": code, "count": count}
            for (reason, code), count in sorted(groups.items(), key=lambda item: (-item[1], item[0][0]))
        ],
        "dead_letters_evicted": store.evicted(),
        "limiter": {"account": account, **asdict(limiter)},
        "auth_breaker_open": bool(refused),  # kept for scripts: some worker's credential is refused
        "credentials_refused": refused,
        "recovery": read_recovery(client, shared),
        "sessions": live_sessions(client, shared),
        # Messages on lists no worker of this installation reads (a broker-prefix mismatch); the
        # search for other prefixes looks at a bounded number of keys ("complete": it saw them all)
        "stranded": [{**s.to_dict(), "warning": describe(s, settings.broker_prefix)} for s in stranded],
        "stranded_search_complete": complete,
    }
