"""The rate limiter in Redis: one atomic Lua script per acquisition, shared by every worker on every host.

Key layout per account (``{p}`` the key prefix, ``{a}`` a hash of the KlickTipp username):

* ``{p}:rl:{a}``          hash: ``tokens`` (float), ``ts`` (ms of the last refill), ``paused_until`` (ms),
  ``factor`` (share of the configured rate in force after 429s) and ``factor_ts`` (ms of its last cut)
* ``{p}:rl:{a}:inflight`` sorted set: slot token -> lease expiry (ms); expired leases are dropped

The clock is Redis's own (``TIME``), so workers on hosts with skewed clocks still share one budget.
"""

from __future__ import annotations

from typing import cast

import redis

from worker.ratelimit.base import DECREASE, FLOOR, IN_FLIGHT_RETRY, RECOVERY, Grant, Limits

# KEYS[1] bucket hash, KEYS[2] in-flight zset.
# ARGV[1] rate (tokens/s), ARGV[2] burst, ARGV[3] max in flight (0 = no cap), ARGV[4] lease ms,
# ARGV[5] slot token. Returns {granted 0|1, wait ms, why}.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local recovery = tonumber(ARGV[6])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if now < paused then return {0, paused - now, 'paused'} end
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then return {0, -1, 'in_flight'} end
end
local factor = tonumber(redis.call('HGET', KEYS[1], 'factor') or '1')
local factor_ts = tonumber(redis.call('HGET', KEYS[1], 'factor_ts') or now)
factor = math.min(1, factor + math.max(0, now - factor_ts) * recovery / 1000)
rate = rate * factor
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts') or now)
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
  return {0, math.ceil((1 - tokens) * 1000 / rate), 'rate'}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
if cap > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], lease + 60000)
end
return {1, 0, ''}
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


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._pause = client.register_script(PAUSE_LUA)

    def _keys(self, account: str) -> list[str]:
        return [f"{self._p}:rl:{account}", f"{self._p}:rl:{account}:inflight"]

    def acquire(self, account: str, limits: Limits, token: str) -> Grant:
        args: list[str | int | float] = [
            limits.rate,
            limits.burst,
            limits.max_in_flight,
            int(limits.lease * 1000),
            token,
            RECOVERY,
        ]
        granted, wait_ms, why = cast(list[object], self._acquire(keys=self._keys(account), args=args))
        if granted == 1:
            return Grant(token)
        why_text = why.decode() if isinstance(why, bytes) else str(why)
        wait = IN_FLIGHT_RETRY if int(cast(int, wait_ms)) < 0 else int(cast(int, wait_ms)) / 1000
        return Grant(None, wait, why_text)

    def release(self, account: str, token: str) -> None:
        self._redis.zrem(self._keys(account)[1], token)

    def pause(self, account: str, seconds: float) -> None:
        self._pause(
            keys=self._keys(account)[:1], args=[max(1, int(seconds * 1000)), DECREASE, FLOOR, RECOVERY]
        )
