"""How long bulk work will take: the KlickTipp budget, not the worker count, sets the pace.

ETA = contacts still to sync x KlickTipp calls a contact costs / the account's calls per second. The
calls a contact costs are what the workers measured in the bulk lane so far (calls / contacts
applied), or — before enough were measured — what a new contact costs (subscribe, then tag).
"""

from __future__ import annotations

import redis

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.worker.lanemetrics import read_lane_calls, read_latency
from ktsync.worker.ratelimit.base import RATE_MARGIN

NEW_CONTACT_CALLS = 2.0  # subscribe with its fields, then one tag call
MIN_MEASURED = 50  # contacts applied in the bulk lane before their average cost is trusted


def import_eta(remaining: int, calls_per_contact: float, calls_per_second: float) -> float | None:
    """Seconds until ``remaining`` contacts are synced; None without a budget to pace it. Pure."""
    if calls_per_second <= 0:
        return None
    return remaining * calls_per_contact / calls_per_second


def calls_per_contact(calls: int, applied: int) -> float:
    """The measured cost, once :data:`MIN_MEASURED` contacts were applied; else a new contact's. Pure."""
    return calls / applied if applied >= MIN_MEASURED else NEW_CONTACT_CALLS


def observed_calls_per_contact(settings: Settings) -> float | None:
    """What a bulk contact cost so far (read from Redis); None when Redis does not answer."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        calls = read_lane_calls(client, settings.key_prefix)[Lane.BULK]
        applied = read_latency(client, settings.key_prefix)[Lane.BULK].count
    except redis.RedisError:
        return None
    finally:
        client.close()
    return calls_per_contact(calls, applied)


def duration(seconds: float) -> str:
    """``2h05m``, ``4m10s``, ``12s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def eta_text(remaining: int, settings: Settings, cost: float | None) -> str:
    per_contact = cost if cost is not None else NEW_CONTACT_CALLS
    rate = settings.rate.per_second * RATE_MARGIN
    eta = import_eta(remaining, per_contact, rate)
    if eta is None:
        return "ETA unknown (no rate limit configured)"
    return f"ETA {duration(eta)} ({rate:g} calls/s x {per_contact:.1f} calls/contact)"
