"""Per-contact sync state: what was last applied to KlickTipp for each (source, CRM contact)."""

from worker.state.base import ContactState, StateStore
from worker.state.memory import MemoryStateStore
from worker.state.redis import RedisStateStore

__all__ = ["ContactState", "MemoryStateStore", "RedisStateStore", "StateStore"]
