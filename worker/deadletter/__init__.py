"""The dead-letter store: tasks that can never succeed, kept with their payload and reason."""

from worker.deadletter.base import Bounds, DeadLetter, DeadLetterStore, Filter
from worker.deadletter.memory import MemoryDeadLetterStore
from worker.deadletter.redis import RedisDeadLetterStore

__all__ = [
    "Bounds",
    "DeadLetter",
    "DeadLetterStore",
    "Filter",
    "MemoryDeadLetterStore",
    "RedisDeadLetterStore",
]
