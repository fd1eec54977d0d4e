"""Crash recovery's Redis side: heartbeats, the reclaimer's reads, and taking a dead session's leftovers.

Key layout: see :mod:`ktsync.worker.recovery.keys`. Round trips: a heartbeat is one MULTI; a reclaimer pass
reads in two (the registry, then everything else in one MULTI) plus one for the routing keys of
unheld tags, if any; reclaiming a dead session is one script to take its leftovers and one to
release its locks and limiter slots (putting its tasks back goes through kombu).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from ktsync.worker.recovery.decide import Plan, SessionView, View
from ktsync.worker.recovery.keys import COUNTERS, SESSION_TTL, Keys

# KEYS[1] the session registry, KEYS[2] the session's alive key, KEYS[3] its held set, KEYS[4] its
# lock registry; ARGV[1] the session id.
# Takes a dead session's leftovers, atomically with the check that it is dead: nil when its alive key
# exists (it beat again) or it is no longer registered (another reclaimer took it); else
# {registry entry, held tags, lock key/token pairs flattened}, and the session is gone.
CLAIM_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return false end
local held = redis.call('SMEMBERS', KEYS[3])
local locks = redis.call('HGETALL', KEYS[4])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4])
return {entry, held, locks}
"""

# KEYS[1] the limiter's in-flight zset, KEYS[2] the holder session's lock registry, KEYS[3..n] lock
# keys; ARGV[1] the holder's slot token prefix ('' for none), ARGV[2..n-1] the lock tokens, in the
# order of the keys.
# Compare-and-delete: a lock is deleted only if it still holds the dead holder's token (one that
# expired and was taken by another worker since is left alone); its registry entry goes too if it
# still names that token. Returns {locks released, slots dropped}.
RELEASE_HELD_LUA = """
local locks = 0
for i = 3, #KEYS do
  local token = ARGV[i - 1]
  if redis.call('HGET', KEYS[2], KEYS[i]) == token then redis.call('HDEL', KEYS[2], KEYS[i]) end
  if redis.call('GET', KEYS[i]) == token then
    redis.call('DEL', KEYS[i])
    locks = locks + 1
  end
end
local slots = 0
if ARGV[1] ~= '' then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(member, 1, #ARGV[1]) == ARGV[1] then
      redis.call('ZREM', KEYS[1], member)
      slots = slots + 1
    end
  end
end
return {locks, slots}
"""


@dataclass(frozen=True)
class Taken:
    """A dead session's leftovers, taken out of Redis by :func:`claim_session`."""

    entry: Mapping[str, Any]  # its registry entry (host, pid, account...)
    held: frozenset[str]
    locks: Mapping[str, str]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def beat(
    client: redis.Redis, keys: Keys, session: str, entry: Mapping[str, Any], *, held: Collection[str],
    timeout: float,
) -> tuple[bool, dict[str, str]]:  # fmt: skip
    """One heartbeat: alive for ``timeout`` seconds more, holding ``held``, registered with ``entry``.
    Returns whether the registration was new (a reclaimer took the session: it was presumed dead) and
    the session's lock registry."""
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.alive(session), b"1", px=max(1, int(timeout * 1000)))
    pipe.delete(keys.held(session))
    if held:
        pipe.sadd(keys.held(session), *held)
        pipe.expire(keys.held(session), SESSION_TTL)
    pipe.hset(keys.sessions, session, json.dumps(dict(entry), sort_keys=True))
    pipe.expire(keys.locks(session), SESSION_TTL)
    pipe.hgetall(keys.locks(session))
    *_, registered, _expire, locks = pipe.execute()
    return bool(registered), {_text(k): _text(v) for k, v in cast(dict[bytes, bytes], locks).items()}


def read_view(client: redis.Redis, keys: Keys) -> View:
    """Sessions (alive or not, with their held tags), kombu's unacked tags, orphan records, the time."""
    sessions = [_text(s) for s in cast(list[bytes], client.hkeys(keys.sessions))]
    pipe = client.pipeline(transaction=True)
    pipe.time()
    pipe.hkeys(keys.unacked)
    pipe.zrange(keys.orphans, 0, -1, withscores=True)
    for session in sessions:
        pipe.exists(keys.alive(session))
        pipe.smembers(keys.held(session))
    (seconds, micros), unacked, orphans, *per_session = pipe.execute()
    views = tuple(
        SessionView(session, bool(alive), frozenset(_text(t) for t in held))
        for session, alive, held in zip(sessions, per_session[0::2], per_session[1::2], strict=True)
    )
    return View(
        now=seconds + micros / 1e6,
        sessions=views,
        unacked=frozenset(_text(t) for t in unacked),
        first_seen={_text(tag): float(score) for tag, score in orphans},
    )


def read_routes(client: redis.Redis, keys: Keys, tags: Collection[str]) -> dict[str, str]:
    """The routing key (queue) of each unacked tag; tags gone meanwhile, or unreadable, are left out."""
    if not tags:
        return {}
    ordered = sorted(tags)
    routes = {}
    for tag, raw in zip(ordered, cast(list[bytes | None], client.hmget(keys.unacked, ordered)), strict=True):
        try:
            _message, _exchange, routing_key = json.loads(raw) if raw else (None, None, None)
        except (ValueError, TypeError):
            continue
        if isinstance(routing_key, str):
            routes[tag] = routing_key
    return routes


def update_orphans(client: redis.Redis, keys: Keys, plan: Plan) -> None:
    """Store the plan's orphan records; done before any restore, so that a restored tag's old record
    can never send it back a second time once it is delivered again."""
    pipe = client.pipeline(transaction=True)
    if plan.forget:
        pipe.zrem(keys.orphans, *plan.forget)
    if plan.remember:
        pipe.zadd(keys.orphans, dict(plan.remember))
    pipe.execute()


def claim_session(client: redis.Redis, keys: Keys, session: str) -> Taken | None:
    """Take a dead session's leftovers (see :data:`CLAIM_LUA`); None if it is alive or already taken."""
    script_keys = [keys.sessions, keys.alive(session), keys.held(session), keys.locks(session)]
    taken = client.eval(CLAIM_LUA, len(script_keys), *script_keys, session)
    if not taken:
        return None
    entry, held, flat = cast(list[Any], taken)
    try:
        info = json.loads(entry)
    except ValueError:
        info = {}
    locks = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return Taken(info if isinstance(info, dict) else {}, frozenset(_text(t) for t in held), locks)


def release_held(
    client: redis.Redis, keys: Keys, session: str, locks: Mapping[str, str], *, account: str, slots: str
) -> tuple[int, int]:
    """Release ``locks`` that ``session`` held (compare-and-delete, see :data:`RELEASE_HELD_LUA`) and
    drop the limiter slots whose tokens start with ``slots`` ('' for none): (locks, slots) released."""
    if not locks and not slots:
        return 0, 0
    names = sorted(locks)
    script_keys = [keys.inflight(account), keys.locks(session), *names]
    released = client.eval(
        RELEASE_HELD_LUA, len(script_keys), *script_keys, slots, *(locks[n] for n in names)
    )
    lock_count, slot_count = cast(list[int], released)
    return int(lock_count), int(slot_count)


def deregister(client: redis.Redis, keys: Keys, session: str) -> Taken | None:
    """A clean stop: the session is gone; its leftovers (normally none) are returned to be released."""
    client.delete(keys.alive(session))
    return claim_session(client, keys, session)


def count(client: redis.Redis, keys: Keys, counts: Mapping[str, int]) -> None:
    pipe = client.pipeline(transaction=False)
    for name, n in counts.items():
        if n:
            pipe.hincrby(keys.metrics, name, n)
    pipe.execute()


def read_recovery(client: redis.Redis, prefix: str) -> dict[str, int]:
    """What crash recovery reclaimed so far, every counter of :data:`COUNTERS` (0 when never)."""
    raw = cast(dict[bytes, bytes], client.hgetall(Keys(prefix).metrics))
    found = {_text(k): int(v) for k, v in raw.items()}
    return {name: found.get(name, 0) for name in COUNTERS}


def live_sessions(client: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """The workers whose heartbeat is current: their registry entry plus ``id`` and ``held`` (tasks
    delivered to it, not acknowledged yet), oldest first."""
    keys = Keys(prefix)
    entries = cast(dict[bytes, bytes], client.hgetall(keys.sessions))
    pipe = client.pipeline(transaction=False)
    for session in entries:
        pipe.exists(keys.alive(_text(session)))
        pipe.scard(keys.held(_text(session)))
    answers = pipe.execute()
    found = []
    for (session, raw), alive, held in zip(entries.items(), answers[0::2], answers[1::2], strict=True):
        if alive:
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = {}
            found.append(
                {**(entry if isinstance(entry, dict) else {}), "id": _text(session), "held": int(held)}
            )
    return sorted(found, key=lambda e: (float(e.get("started", 0)), e["id"]))
