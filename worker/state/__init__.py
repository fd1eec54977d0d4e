"""Per-contact sync state: what was last applied to KlickTipp for each (source, CRM contact)."""

from worker.state.base import Claim, ContactState, StateStore, claimed
from worker.state.memory import MemoryStateStore
from worker.state.redis import RedisStateStore

__all__ = ["Claim", "ContactState", "MemoryStateStore", "RedisStateStore", "StateStore", "claimed"]
