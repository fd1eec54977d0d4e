"""Erasing contacts' timelines (written by :mod:`ktsync.worker.telemetry`), in Redis and in a twin."""

from __future__ import annotations

from typing import Protocol

import redis

from ktsync.worker.erasure.plan import Contact
from ktsync.worker.telemetry import timeline_key


class Timelines(Protocol):
    def forget(self, contact: Contact) -> bool:
        """Delete the contact's timeline; whether there was one."""
        ...


class RedisTimelines:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix

    def forget(self, contact: Contact) -> bool:
        return bool(self._redis.delete(timeline_key(self._p, *contact)))


class MemoryTimelines:
    """In-memory twin of :class:`RedisTimelines`: which contacts have a timeline."""

    def __init__(self) -> None:
        self.contacts: set[Contact] = set()

    def note(self, contact: Contact) -> None:
        self.contacts.add(contact)

    def forget(self, contact: Contact) -> bool:
        if contact not in self.contacts:
            return False
        self.contacts.discard(contact)
        return True
