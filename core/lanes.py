"""The two lanes of work, part of the wire: ``live`` changes go first, ``bulk`` work gets what is left.

Each lane is a Celery queue of its own (``<worker.queue>.live`` and ``<worker.queue>.bulk`` by default).
Workers take live work first; while live work waits, bulk work may use at most ``rate.bulk_share`` of
the account's budget. A *fairness key* names whose budget and whose turn a task is: today the
KlickTipp account and the lane; with several accounts in one deployment, the same key carries the tenant.
"""

from __future__ import annotations

from enum import StrEnum


class Lane(StrEnum):
    LIVE = "live"  # CRM webhooks, `ktsync enqueue`, the Python API's default
    BULK = "bulk"  # `ktsync import`, `ktsync resync`, reconciliation, dead-letter replays


DEFAULT_LANE = Lane.LIVE
LANES = tuple(Lane)


def parse_lane(value: object) -> Lane:
    """The lane named ``value``; ValueError saying what is accepted otherwise."""
    try:
        return Lane(str(value))
    except ValueError:
        raise ValueError(f"lane must be one of {', '.join(LANES)}, got {value!r}") from None


def fairness_key(account: str, lane: Lane) -> str:
    """Whose budget and whose turn: the unit ktsync schedules waiting work by."""
    return f"{account}:{lane.value}"
