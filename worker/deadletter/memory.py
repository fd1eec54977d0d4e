"""In-memory twin of the Redis dead-letter store, for unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import replace

from ktsync.worker.deadletter.base import Bounds, Census, DeadLetter, Filter, census_of, merge


class MemoryDeadLetterStore:
    def __init__(self, bounds: Bounds = Bounds(), clock: Callable[[], float] = time.time) -> None:  # noqa: B008
        self._letters: dict[str, DeadLetter] = {}
        self._bounds = bounds
        self._clock = clock
        self._evicted = 0

    def add(self, letter: DeadLetter) -> None:
        self._letters[letter.id] = merge(self._letters.get(letter.id), letter)
        self._evict()

    def _evict(self) -> None:
        oldest_allowed = self._clock() - self._bounds.max_age
        newest_first = sorted(self._letters.values(), key=lambda d: (d.last_failed_at, d.id), reverse=True)
        keep = [d for d in newest_first if d.last_failed_at >= oldest_allowed][: self._bounds.max_entries]
        self._evicted += len(self._letters) - len(keep)
        self._letters = {d.id: d for d in keep}

    def get(self, letter_id: str) -> DeadLetter | None:
        return self._letters.get(letter_id)

    def list(self, where: Filter = Filter(), limit: int = 100) -> list[DeadLetter]:  # noqa: B008
        newest = sorted(self._letters.values(), key=lambda d: (d.last_failed_at, d.id), reverse=True)
        return [d for d in newest if where.matches(d)][:limit]

    def count(self) -> int:
        return len(self._letters)

    def census(self) -> Census:
        return census_of((d.id, d.reason, d.code, d.last_failed_at) for d in self._letters.values())

    def remove(self, letter_id: str) -> bool:
        return self._letters.pop(letter_id, None) is not None

    def remove_many(self, letter_ids: Collection[str]) -> int:
        return sum(self.remove(letter_id) for letter_id in set(letter_ids))

    def note_replay(self, letter_id: str) -> None:
        letter = self._letters.get(letter_id)
        if letter is not None:
            self._letters[letter_id] = replace(letter, replays=letter.replays + 1)

    def evicted(self) -> int:
        return self._evicted
