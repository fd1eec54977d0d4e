"""One tenant's view of the deployment's schedule of parked retries: what a privacy deletion of the
tenant may read and purge. The schedule itself is shared (one mover publishes every tenant's)."""

from __future__ import annotations

from ktsync.core.tenants import tenant_of
from ktsync.worker.schedule import BATCH, Parked, Schedule


class TenantSchedule:
    """Parks and removes as the shared schedule does; reads only ``tenant``'s entries."""

    def __init__(self, schedule: Schedule, tenant: str) -> None:
        self._schedule, self._tenant = schedule, tenant

    def park(self, entry: Parked, due: float) -> None:
        self._schedule.park(entry, due)

    def due(self, now: float, limit: int = BATCH) -> list[Parked]:
        return [e for e in self._schedule.due(now, limit) if tenant_of(e.message) == self._tenant]

    def remove(self, entry: Parked) -> None:
        self._schedule.remove(entry)

    def count(self) -> int:
        return len(self.due(float("inf"), 1_000_000))
