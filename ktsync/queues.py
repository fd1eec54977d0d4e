"""Read queue depths straight from the Redis broker: pending, in flight and scheduled (ETA) tasks.

Kombu's Redis transport keeps waiting messages in a list per queue (plus one list per priority
step) and delivered-but-unacknowledged ones in the ``unacked`` hash; a retry with a countdown sits
there too, with an ``eta`` header in the future.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

import redis

PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's defaults
UNACKED_KEY = "unacked"


@dataclass(frozen=True)
class QueueStatus:
    queue: str
    pending: int
    in_flight: int
    scheduled: int

    @property
    def drained(self) -> bool:
        return self.pending == 0 and self.in_flight == 0 and self.scheduled == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drained": self.drained}


def queue_status(client: redis.Redis, queue: str, now: float, broker_prefix: str = "") -> QueueStatus:
    """Depths of one queue; ``now`` is Unix time, used to tell scheduled retries from running tasks."""
    names = [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(broker_prefix + name)
    pipe.hvals(broker_prefix + UNACKED_KEY)
    *lengths, unacked = pipe.execute()
    in_flight = scheduled = 0
    for raw in cast(list[bytes], unacked):
        routing_key, eta = _routing_and_eta(raw)
        if routing_key != queue:
            continue
        if eta is not None and eta > now:
            scheduled += 1
        else:
            in_flight += 1
    return QueueStatus(queue=queue, pending=sum(lengths), in_flight=in_flight, scheduled=scheduled)


def _routing_and_eta(raw: bytes) -> tuple[str, float | None]:
    try:
        message, _exchange, routing_key = json.loads(raw)
        eta = message.get("headers", {}).get("eta")
        return str(routing_key), datetime.fromisoformat(eta).timestamp() if eta else None
    except (ValueError, TypeError, AttributeError):
        return "", None
