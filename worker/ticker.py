"""A daemon thread that runs one function every few seconds and survives its failures.

The heartbeat, the reclaimer, the schedule mover, the credential watch and the queue-age watch each run
in one; :func:`thread_step` runs one from a worker consumer's start to its stop."""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable
from typing import Any, Protocol

import redis
from celery import bootsteps

log = logging.getLogger(__name__)


class Ticker:
    """Calls ``tick`` every ``interval`` seconds (the first time at once) until :meth:`stop`.

    A failing tick is logged and tried again next time: these threads keep a worker recoverable, so
    they must outlive a Redis restart or a bug in one pass."""

    def __init__(self, name: str, tick: Callable[[], object], interval: float) -> None:
        self._tick, self._interval = tick, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except redis.RedisError as exc:  # Redis restarting: the next tick tries again
                log.warning("%s: %s", self._thread.name, exc)
            except Exception:  # never let the thread die: log the bug, keep going
                log.exception("%s failed", self._thread.name)
            self._stop.wait(self._interval)


class Runner(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def thread_step(class_name: str, make: Callable[[Any], Runner]) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep (named ``class_name``) that starts ``make(consumer)`` once the consumer's
    tasks are set up, and stops it with the consumer."""

    def start(self: Any, parent: Any) -> None:
        self.runner = make(parent)
        self.runner.start()

    def stop(self: Any, _parent: Any) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.stop()

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(name=f"ktsync.{class_name}", requires=frozenset({"celery.worker.consumer.tasks:Tasks"}),
                         start=start, stop=stop)  # fmt: skip

    # new_class honours bootsteps' metaclass, which names the step after its (module-qualified) class.
    step: type[bootsteps.StartStopStep] = types.new_class(
        class_name, (bootsteps.StartStopStep,), exec_body=body
    )
    return step
