"""A worker's own KlickTipp credential: proven with a real call at start-up, and when KlickTipp refuses it,
only the workers holding that credential step aside — the healthy ones never notice.

The refusal is keyed by *credential*, not by account: two workers of one account, one with a wrong
password and one with the right one (or with partner keys), have different credential ids. When a
task's call is refused (401/403 after the client's one re-login), the worker checks its credential
with one real authenticated call:

* refused too: the credential is bad. It is marked refused in Redis (an ``ALARM`` is logged once),
  the task goes back to its queue for a healthy worker, and every worker holding that credential stops
  taking tasks and re-checks it with backoff — one login per worker per check, no storm — until it
  works again (see :mod:`ktsync.worker.credential_step`);
* accepted: the credential is fine and KlickTipp refused this one operation (a plan without that
  feature, say): the task is dead-lettered as ``auth``.

Key layout (``{p}`` the key prefix, ``{c}`` the credential id — a slow hash, never the secret):

* ``{p}:credential:{c}:refused``   string: JSON ``{since, error, host, next_check}``, with a TTL the
  refused workers keep renewing (a credential whose workers all left stops showing)
* ``{p}:credentials:refused``      set of credential ids that may be refused (stale ones are skipped)
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, cast

import redis

from ktsync.worker.klicktipp.auth import (
    ENV_CUSTOMER_KEY,
    ENV_DEVELOPER_KEY,
    ENV_PASSWORD,
    ENV_USERNAME,
    normalized_developer_key,
)
from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.errors import AuthError, KlickTippError

REFUSED_TTL = 60  # seconds a refusal shows after the last worker holding the credential renewed it
FINGERPRINT_ROUNDS = 100_000  # PBKDF2 rounds: the id must not help anyone guess the password


def credential_id(env: Mapping[str, str]) -> str:
    """A stable id of the credential in ``env`` (username plus password, or plus partner keys)."""
    username = env.get(ENV_USERNAME, "").strip().lower()
    # The keys as the client sends them: the same key pasted differently is the same credential.
    keys = normalized_developer_key(env.get(ENV_DEVELOPER_KEY, "")), env.get(ENV_CUSTOMER_KEY, "").strip()
    secret = "\0".join((env.get(ENV_PASSWORD, ""), *keys))
    digest = hashlib.pbkdf2_hmac(
        "sha256", secret.encode(), f"ktsync-credential:{username}".encode(), FINGERPRINT_ROUNDS
    )
    return digest.hex()[:16]


def verify(client: KlickTippClient) -> None:
    """One real authenticated call (never a cached answer): raises ``AuthError`` when refused."""
    client.login()
    client.list_index()


class Verdict(Enum):
    REFUSED = "refused"  # the credential is bad: step aside, give the task back
    OPERATION = "operation"  # the credential works; KlickTipp refused this operation
    UNKNOWN = "unknown"  # the check itself failed (KlickTipp unreachable): give the task back


class CredentialHealth(Protocol):
    def refused(self) -> bool: ...

    def refuse(self, error: str) -> bool:
        """Mark the credential refused; True when it was not yet (say the ALARM once)."""
        ...

    def renew(self, next_check: float) -> None:
        """Still refused: keep it visible, and say when it is checked next."""
        ...

    def accept(self) -> None: ...


def refusal_key(prefix: str, credential: str) -> str:
    return f"{prefix}:credential:{credential}:refused"


def refused_set_key(prefix: str) -> str:
    return f"{prefix}:credentials:refused"


class RedisCredentialHealth:
    def __init__(self, client: redis.Redis, prefix: str, credential: str) -> None:
        self._redis, self._id = client, credential
        self.key, self._refused_set = refusal_key(prefix, credential), refused_set_key(prefix)

    def refused(self) -> bool:
        return bool(self._redis.exists(self.key))

    def refuse(self, error: str) -> bool:
        info = {"since": time.time(), "error": error, "host": socket.gethostname(), "next_check": None}
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self.key, json.dumps(info), nx=True, ex=REFUSED_TTL)
        pipe.sadd(self._refused_set, self._id)
        created, _ = pipe.execute()
        return bool(created)

    def renew(self, next_check: float) -> None:
        raw = cast(bytes | None, self._redis.get(self.key))
        info = json.loads(raw) if raw else {"since": time.time(), "error": "", "host": socket.gethostname()}
        self._redis.set(self.key, json.dumps({**info, "next_check": next_check}), ex=REFUSED_TTL)

    def accept(self) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self.key)
        pipe.srem(self._refused_set, self._id)
        pipe.execute()


class MemoryCredentialHealth:
    """In-memory twin of :class:`RedisCredentialHealth`."""

    def __init__(self) -> None:
        self.info: dict[str, Any] | None = None

    def refused(self) -> bool:
        return self.info is not None

    def refuse(self, error: str) -> bool:
        if self.info is not None:
            return False
        self.info = {"since": time.time(), "error": error, "next_check": None}
        return True

    def renew(self, next_check: float) -> None:
        self.info = {**(self.info or {"since": time.time(), "error": ""}), "next_check": next_check}

    def accept(self) -> None:
        self.info = None


def refused_credentials(client: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """Every credential refused right now, with where and since when (for `ktsync status`)."""
    ids = sorted(i.decode() for i in cast(set[bytes], client.smembers(refused_set_key(prefix))))
    if not ids:
        return []
    values = cast(list[bytes | None], client.mget([refusal_key(prefix, i) for i in ids]))
    return [{"credential": i, **json.loads(raw)} for i, raw in zip(ids, values, strict=True) if raw]


@dataclass
class CredentialCheck:
    """Judges a refusal once per process at a time (the other threads wait for the verdict)."""

    health: CredentialHealth
    check: Callable[[], None]  # :func:`verify` with the worker's client

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def judge(self, error: AuthError) -> tuple[Verdict, bool]:
        """The verdict on a refused call, and whether this call newly marked the credential refused."""
        with self._lock:
            if self.health.refused():
                return Verdict.REFUSED, False
            try:
                self.check()
            except AuthError:
                return Verdict.REFUSED, self.health.refuse(f"{error.operation}: HTTP {error.status}")
            except KlickTippError:
                return Verdict.UNKNOWN, False
            return Verdict.OPERATION, False


def backoff(checks: int, *, first: float = 5.0, cap: float = 300.0) -> float:
    """Seconds before the ``checks``-th re-check of a refused credential (5, 10, 20 ... 300). Pure."""
    return float(min(cap, first * 2 ** max(checks - 1, 0)))
