"""Released work goes to the head of its queue: it has waited its turn already.

A task deferred for its budget (see :mod:`ktsync.worker.keyqueues`) comes back when its tenant's
budget allows. Published as any message is, it would wait again at the tail of its lane's queue,
behind every task still queued there — with several tenants importing at once, behind the other
tenants' backlogs, each of whose tasks passes through a worker first: the first pass through a large
queue would cost every importer most of its budget. So the mover publishes it, then moves the
message it just published from the tail (kombu ``LPUSH``es) to the head (kombu ``BRPOP``s from the
right), in one atomic script. Should a producer publish in between, its message is the one moved:
only the order changes, nothing is lost or repeated.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from ktsync.core.broker import sub_queue
from ktsync.worker.schedule import Parked

# KEYS[1] a queue's list; ARGV[1] how many. The newest messages (the left end) become the next ones
# taken (the right end), in the order they were published.
TO_HEAD_LUA = """
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  local message = redis.call('LPOP', KEYS[1])
  if not message then break end
  redis.call('RPUSH', KEYS[1], message)
  moved = moved + 1
end
return moved
"""


class HeadRelease:
    """Publishes released entries (``publish``), and at the end of each mover step (:meth:`after`)
    moves them to the head of their queues, one script per queue, keeping their order."""

    def __init__(
        self,
        client: redis.Redis,
        broker_prefix: str,
        publish: Callable[[Parked], None],
        queue_of: Callable[[Parked], str],
    ) -> None:
        self._to_head = client.register_script(TO_HEAD_LUA)
        self._prefix, self._publish, self._queue_of = broker_prefix, publish, queue_of
        self._published: dict[str, int] = {}

    def publish(self, entry: Parked) -> None:
        self._publish(entry)
        queue = self._prefix + sub_queue(self._queue_of(entry), 0)
        self._published[queue] = self._published.get(queue, 0) + 1

    def flush(self) -> int:
        """Move what was published since the last flush to the head; how many were moved."""
        published, self._published = self._published, {}
        return sum(int(self._to_head(keys=[queue], args=[count])) for queue, count in published.items())

    def after(self, step: Callable[[], int]) -> Callable[[], int]:
        """``step``, then :meth:`flush` (also when the step failed half-way: what it published moves)."""

        def run() -> int:
            try:
                return step()
            finally:
                self.flush()

        return run
