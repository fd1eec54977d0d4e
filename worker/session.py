"""Who a worker process is while it runs: a session id, new at every start.

Everything a worker holds in Redis on behalf of its tasks — contact and tag locks, in-flight slots of
the rate limiter, delivered messages — is tagged with its session, so that when its heartbeat stops
another worker can give all of it back at once (see :mod:`ktsync.worker.recovery`).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSession:
    id: str
    host: str
    pid: int

    @classmethod
    def new(cls) -> WorkerSession:
        return cls(id=secrets.token_hex(6), host=socket.gethostname(), pid=os.getpid())
