"""The dead-letter store: tasks that can never succeed, kept with their payload and reason."""

from worker.deadletter.base import DeadLetter, DeadLetterStore
from worker.deadletter.memory import MemoryDeadLetterStore
from worker.deadletter.redis import RedisDeadLetterStore

__all__ = ["DeadLetter", "DeadLetterStore", "MemoryDeadLetterStore", "RedisDeadLetterStore"]
