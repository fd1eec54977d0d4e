"""Crash recovery in seconds (Sidekiq Pro's super_fetch, on Celery's Redis transport).

Every worker heartbeats (:mod:`.heartbeat`): an alive key with a short expiry and the delivery tags
it holds. When a worker dies (``kill -9``, a lost host) its alive key expires after
``worker.heartbeat_timeout``; a live worker's reclaimer (:mod:`.reclaimer`) then puts its tasks back
at the head of their queue and releases its contact/tag locks and limiter slots — without waiting for
kombu's visibility timeout or the locks' leases. Unacked tasks nobody holds (an ack lost in a Redis
restart, a worker that never registered) go back once seen unheld for the heartbeat timeout.

The decisions are pure (:mod:`.decide`), the Redis side is in :mod:`.store`, the key layout in
:mod:`.keys`; :func:`read_recovery` and :func:`live_sessions` are for ``ktsync status`` and metrics.
"""

from ktsync.worker.recovery.keys import COUNTERS, Keys
from ktsync.worker.recovery.store import live_sessions, read_recovery

# The bootstep (ktsync.worker.recovery.step.recovery_step) is imported from its module: it needs the
# worker's runtime, which itself reads this package's key layout.
__all__ = ["COUNTERS", "Keys", "live_sessions", "read_recovery"]
