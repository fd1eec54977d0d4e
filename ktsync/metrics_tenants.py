"""Per-tenant metric families: each tenant's samples with a ``tenant`` label, or summed over the tenants.

The exporter reads every per-tenant family (outcomes, KlickTipp calls, limiter, dead letters, lane calls,
latency) once per tenant and labels it ``tenant="<name>"`` (``default`` for the default tenant).
Deployment-wide families (queues, lanes' queues, schedule, recovery, workers) carry no tenant label.
With very many tenants, ``KTSYNC_METRICS_PER_TENANT=0`` keeps one series per label set instead: the
per-tenant families are summed over the tenants (the limiter's gauges, one per KlickTipp account, are the
default tenant's then, as before tenants).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PER_TENANT_ENV = "KTSYNC_METRICS_PER_TENANT"
TENANT_LABEL = "tenant"
_ON, _OFF = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


def per_tenant(env: Mapping[str, str]) -> bool:
    """Whether per-tenant families carry a ``tenant`` label (default yes); ValueError naming the variable."""
    raw = env.get(PER_TENANT_ENV, "").strip().lower()
    if not raw or raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ValueError(f"{PER_TENANT_ENV} must be 1 (a tenant label) or 0 (summed over tenants), got {raw!r}")


@dataclass(frozen=True)
class Buckets:
    """A histogram's value: cumulative buckets (upper bound -> count) and the sum of observations."""

    buckets: tuple[tuple[str, float], ...]
    sum: float

    def __add__(self, other: Buckets) -> Buckets:
        counts = dict(self.buckets)
        for bound, count in other.buckets:
            counts[bound] = counts.get(bound, 0) + count
        order = [bound for bound, _ in self.buckets] + [
            b for b, _ in other.buckets if b not in dict(self.buckets)
        ]
        return Buckets(tuple((bound, counts[bound]) for bound in order), self.sum + other.sum)


Value = float | Buckets


@dataclass(frozen=True)
class Reading:
    """One tenant's samples of one family (label values -> value), before the tenant label.
    ``summed``: the family is summed over tenants when unlabelled; else the first tenant's is kept."""

    name: str
    kind: str  # counter, gauge or histogram
    labels: tuple[str, ...] = ()
    samples: Mapping[tuple[str, ...], Value] = field(default_factory=dict)
    summed: bool = True


def combine(per_tenant: Sequence[tuple[str, Sequence[Reading]]], *, labelled: bool) -> list[Reading]:
    """Each family once, in the order first read: with a ``tenant`` label (first) on every sample,
    or summed over the tenants. ``per_tenant``: (tenant, its readings), the default tenant first. Pure."""
    merged: dict[str, Reading] = {}
    for tenant, readings in per_tenant:
        for reading in readings:
            known = merged.get(reading.name)
            if labelled:
                samples = {(tenant, *key): value for key, value in reading.samples.items()}
                labels = (TENANT_LABEL, *reading.labels)
                base = known.samples if known is not None else {}
                merged[reading.name] = Reading(reading.name, reading.kind, labels, {**base, **samples})
            elif known is None:
                merged[reading.name] = reading
            elif reading.summed:
                merged[reading.name] = Reading(reading.name, reading.kind, reading.labels,
                                               _sum(known.samples, reading.samples), reading.summed)  # fmt: skip
    return list(merged.values())


def _sum(
    left: Mapping[tuple[str, ...], Value], right: Mapping[tuple[str, ...], Value]
) -> dict[tuple[str, ...], Value]:
    total = dict(left)
    for key, value in right.items():
        total[key] = value if key not in total else _add(total[key], value)
    return total


def _add(left: Value, right: Value) -> Value:
    if isinstance(left, Buckets) and isinstance(right, Buckets):
        return left + right
    if isinstance(left, Buckets) or isinstance(right, Buckets):
        raise TypeError("a histogram and a number cannot be summed")
    return left + right
