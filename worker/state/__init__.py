"""Per-contact sync state: what was last applied to KlickTipp for each (source, CRM contact)."""

from ktsync.worker.state.base import Claim, ContactState, StateStore, claimed
from ktsync.worker.state.held import Held
from ktsync.worker.state.memory import MemoryStateStore
from ktsync.worker.state.redis import RedisStateStore

__all__ = ["Claim", "ContactState", "Held", "MemoryStateStore", "RedisStateStore", "StateStore", "claimed"]
