"""In-memory twin of the Redis dead-letter store, for unit tests."""

from __future__ import annotations

from worker.deadletter.base import DeadLetter


class MemoryDeadLetterStore:
    def __init__(self) -> None:
        self._letters: dict[str, DeadLetter] = {}

    def add(self, letter: DeadLetter) -> None:
        self._letters[letter.id] = letter

    def get(self, letter_id: str) -> DeadLetter | None:
        return self._letters.get(letter_id)

    def list(self, limit: int = 100) -> list[DeadLetter]:
        newest = sorted(self._letters.values(), key=lambda d: (d.last_failed_at, d.id), reverse=True)
        return newest[:limit]

    def count(self) -> int:
        return len(self._letters)

    def remove(self, letter_id: str) -> bool:
        return self._letters.pop(letter_id, None) is not None
