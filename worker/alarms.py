"""ALARM lines in the log: what an operator must fix, said once per while rather than once per task."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("ktsync.alarm")

REPEAT_EVERY = 600.0  # seconds before the same ALARM is said again


class Alarms:
    """Logs each ALARM (an error line starting ``ALARM:``) at most once per ``every`` seconds per key."""

    def __init__(self, every: float = REPEAT_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self._every, self._clock = every, clock
        self._said: dict[str, float] = {}
        self._mutex = threading.Lock()

    def say(self, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``key`` was said less than ``every`` seconds ago; True if said."""
        now = self._clock()
        with self._mutex:
            last = self._said.get(key)
            if last is not None and now - last < self._every:
                return False
            self._said[key] = now
        log.error(message, *args)
        return True
