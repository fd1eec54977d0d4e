"""The rate limiter in Redis: one atomic Lua script per acquisition, shared by every worker on every host.

Key layout per account (``{p}`` the key prefix, ``{a}`` a hash of the KlickTipp username):

* ``{p}:rl:{a}``          hash: ``tokens`` (float), ``ts`` (ms of the last refill), ``paused_until`` (ms),
  ``factor`` (share of the configured rate in force after 429s) and ``factor_ts`` (ms of its last cut);
  ``live_until`` (ms: a live call is waiting for the budget until then), ``bulk`` and ``bulk_ts``
  (the bulk lane's own small bucket, refilled at ``bulk_share`` of the rate, used only while live
  work waits)
* ``{p}:rl:{a}:inflight`` sorted set: slot token -> lease expiry (ms); expired leases are dropped

Who goes first, in one script: a call of a task already under way needs one token, a task's first
call two (:func:`~ktsync.worker.ratelimit.base.tokens_needed`); while live work waits — a live call was
refused, or messages wait in the live queue — a bulk task's first call must also take a token from
the bulk bucket, so bulk gets at most ``bulk_share`` of the rate and live work the rest.

The clock is Redis's own (``TIME``), so workers on hosts with skewed clocks still share one budget.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from ktsync.core.lanes import Lane
from ktsync.worker.ratelimit.base import (
    DECREASE,
    FLOOR,
    IN_FLIGHT_RETRY,
    RECOVERY,
    SHARE_RECHECK,
    Grant,
    Limits,
    tokens_needed,
)

# KEYS[1] bucket hash, KEYS[2] in-flight zset, KEYS[3] the live lane's broker list.
# ARGV[1] rate (tokens/s), ARGV[2] burst, ARGV[3] max in flight (0 = no cap), ARGV[4] lease ms,
# ARGV[5] slot token, ARGV[6] recovery per second, ARGV[7] lane ("live" | "bulk"), ARGV[8] tokens
# needed (1 or 2), ARGV[9] bulk share (0..1), ARGV[10] 1 when the call is a task's first, ARGV[11] ms
# after which a bulk call asks again when its share is 0, ARGV[12] spare tokens wanted for the caller's
# next calls (taken only from what the bucket holds beyond the call's need: ``spare_tokens``).
# Returns {granted 0|1, wait ms (-1: a slot frees in milliseconds), why, spare tokens taken}.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local recovery, live, need = tonumber(ARGV[6]), ARGV[7] == 'live', tonumber(ARGV[8])
local share, first = tonumber(ARGV[9]), ARGV[10] == '1'
local h = redis.call('HMGET', KEYS[1], 'paused_until', 'factor', 'factor_ts', 'tokens', 'ts',
                     'live_until', 'bulk', 'bulk_ts')
local paused = tonumber(h[1] or '0')
if now < paused then return {0, paused - now, 'paused'} end
local function live_waits(wait)
  if live then redis.call('HSET', KEYS[1], 'live_until', now + wait + 100) end
end
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then
    live_waits(50)
    return {0, -1, 'in_flight'}
  end
end
local factor = tonumber(h[2] or '1')
local factor_ts = tonumber(h[3] or now)
factor = math.min(1, factor + math.max(0, now - factor_ts) * recovery / 1000)
rate = rate * factor
local tokens = tonumber(h[4] or burst)
local ts = tonumber(h[5] or now)
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local bulk, bulk_ts = tonumber(h[7] or '0'), tonumber(h[8] or now)
local shared = (not live) and first and share < 1 and
               (tonumber(h[6] or '0') > now or redis.call('LLEN', KEYS[3]) > 0)
if shared then
  bulk = math.min(1, bulk + math.max(0, now - bulk_ts) * rate * share / 1000)
  if bulk < 1 then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now, 'bulk', tostring(bulk), 'bulk_ts', now)
    if share <= 0 then return {0, tonumber(ARGV[11]), 'share'} end
    return {0, math.ceil((1 - bulk) * 1000 / (rate * share)), 'share'}
  end
end
if tokens < need then
  local wait = math.ceil((need - tokens) * 1000 / rate)
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
  live_waits(wait)
  return {0, wait, 'rate'}
end
if shared then bulk = bulk - 1 else bulk = 0 end
local spare = 0
if (not shared) and cap == 0 then
  spare = math.max(0, math.min(tonumber(ARGV[12] or '0'), math.floor(tokens - need)))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1 - spare), 'ts', now, 'bulk', tostring(bulk),
           'bulk_ts', now)
if live then redis.call('HDEL', KEYS[1], 'live_until') end
redis.call('PEXPIRE', KEYS[1], 3600000)
if cap > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], lease + 60000)
end
return {1, 0, '', spare}
"""

# KEYS[1] bucket hash; ARGV[1] burst, ARGV[2] spare tokens to give back. Adds them to the bucket as it
# was last written (its refill since then is counted from ``ts`` as usual), never above the burst, and
# never into a pause (the pause emptied the bucket on purpose). Returns 1 when given back.
GIVE_BACK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'paused_until', 'tokens')
if not h[2] or now < tonumber(h[1] or '0') then return 0 end
local tokens = math.min(tonumber(ARGV[1]), tonumber(h[2]) + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens))
return 1
"""

# KEYS[1] bucket hash; ARGV[1] pause ms, ARGV[2] decrease, ARGV[3] floor, ARGV[4] recovery per second.
# Extends (never shortens) the pause, empties the bucket until then (KlickTipp's is empty too: no burst
# right after the pause) and cuts the rate factor (multiplicative decrease).
PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if until_ms > current then
  local factor = tonumber(redis.call('HGET', KEYS[1], 'factor') or '1')
  local factor_ts = tonumber(redis.call('HGET', KEYS[1], 'factor_ts') or now)
  factor = math.min(1, factor + math.max(0, now - factor_ts) * tonumber(ARGV[4]) / 1000)
  factor = math.max(tonumber(ARGV[3]), factor * tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'paused_until', until_ms, 'tokens', '0', 'ts', until_ms,
             'factor', tostring(factor), 'factor_ts', until_ms)
end
redis.call('PEXPIRE', KEYS[1], math.max(3600000, tonumber(ARGV[1]) + 60000))
return until_ms
"""


def bucket_key(prefix: str, account: str) -> str:
    return f"{prefix}:rl:{account}"


def inflight_key(prefix: str, account: str) -> str:
    """The account's in-flight slots (crash recovery drops a dead worker's, see ``ktsync.worker.recovery``)."""
    return f"{bucket_key(prefix, account)}:inflight"


class RedisRateLimiter:
    """``live_queue``: the broker list of the live lane (with the broker prefix); messages waiting
    there count as live work waiting."""

    def __init__(self, client: redis.Redis, prefix: str = "ktsync", *, live_queue: str = "") -> None:
        self._redis = client
        self._p = prefix
        self._live_queue = live_queue or f"{prefix}:no-live-queue"
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._pause = client.register_script(PAUSE_LUA)

    def _keys(self, account: str) -> list[str]:
        return [bucket_key(self._p, account), inflight_key(self._p, account)]

    def acquire(
        self,
        account: str,
        limits: Limits,
        token: str,
        *,
        lane: Lane = Lane.LIVE,
        followup: bool = False,
        spare: int = 0,
    ) -> Grant:
        args: list[str | int | float] = [
            limits.rate,
            limits.burst,
            limits.max_in_flight,
            int(limits.lease * 1000),
            token,
            RECOVERY,
            lane.value,
            tokens_needed(limits.burst, followup=followup),
            limits.bulk_share,
            0 if followup else 1,
            int(SHARE_RECHECK * 1000),
            spare,
        ]
        keys = [*self._keys(account), self._live_queue]
        granted, wait_ms, why, *taken = cast(list[object], self._acquire(keys=keys, args=args))
        if granted == 1:
            return Grant(token, spare=int(cast(int, taken[0])) if taken else 0)
        why_text = why.decode() if isinstance(why, bytes) else str(why)
        wait = IN_FLIGHT_RETRY if int(cast(int, wait_ms)) < 0 else int(cast(int, wait_ms)) / 1000
        return Grant(None, wait, why_text)

    def release(self, account: str, token: str) -> None:
        self._redis.zrem(self._keys(account)[1], token)

    def give_back(self, account: str, limits: Limits, count: int, *, pipe: Any = None) -> None:
        if count > 0:  # EVAL, not EVALSHA: a pipeline would check the script registry first
            client = self._redis if pipe is None else pipe
            client.eval(GIVE_BACK_LUA, 1, bucket_key(self._p, account), limits.burst, count)

    def pause(self, account: str, seconds: float) -> None:
        self._pause(
            keys=self._keys(account)[:1], args=[max(1, int(seconds * 1000)), DECREASE, FLOOR, RECOVERY]
        )
