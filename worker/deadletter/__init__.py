"""The dead-letter store: tasks that can never succeed, kept with their payload and reason."""

from ktsync.worker.deadletter.base import Bounds, Cause, Census, DeadLetter, DeadLetterStore, Filter
from ktsync.worker.deadletter.memory import MemoryDeadLetterStore
from ktsync.worker.deadletter.redis import RedisDeadLetterStore

__all__ = [
    "Bounds",
    "Cause",
    "Census",
    "DeadLetter",
    "DeadLetterStore",
    "Filter",
    "MemoryDeadLetterStore",
    "RedisDeadLetterStore",
]
