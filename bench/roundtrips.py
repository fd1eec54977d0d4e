"""Redis round trips per new contact, by purpose, with the limiter on and off.

    .venv/bin/python -m bench.roundtrips [--contacts N]

Runs ktsync's contact task in this process (``Task.apply``: no broker, so only the task's own Redis
traffic is seen; Celery's own round trips per task are the same as the baselines' in ``bench.run``)
against the fake KlickTipp and the bench's Redis, after one warm-up contact (reference data loaded,
tags created). Every write to a Redis socket is one round trip: a pipeline is one however many
commands it holds. Each is put down to the innermost ktsync function on the stack, and its commands
are listed (``EVALSHA``/``EVAL`` with their first key).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from redis.connection import AbstractConnection

from bench.run import environment, new_contact
from ktsync.config.settings import load_settings
from ktsync.core.contract import TASK_NAMES, MessageType

WORKER = Path(__file__).resolve().parents[1] / "worker"

# The innermost ktsync function that made the round trip -> what it is for.
PURPOSES = {
    "RedisGuards.admit": "guard admit (delivery count + credential refusal)",
    "RedisStateStore.claim": "lock claim + state read (+ event marker)",
    "RedisStateStore.claim_and_acquire": "lock claim + state read + first limiter acquire",
    "RedisStateStore.commit": "state commit (+ event marker + unlock)",
    "RedisStateStore.release": "lock release (no commit)",
    "RedisReferenceCache.load": "reference cache read (shared, every few seconds per kind)",
    "RedisRateLimiter.acquire": "limiter acquire (per KlickTipp call)",
    "RedisRateLimiter.release": "limiter in-flight release (per KlickTipp call)",
    "RedisOutbound.publish": "outbound stream entry",
    "WorkerRuntime.finish": "closing: held writes (outbound, commit) + telemetry + stats + guard + latency",
    "Telemetry.waited": "limiter wait telemetry",
}


@dataclass
class Tally:
    """Round trips seen, by (who, commands)."""

    trips: Counter[tuple[str, str]] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.trips.values())


def parse_commands(packed: bytes) -> list[list[bytes]]:
    """The commands in a RESP-packed buffer (``*N\\r\\n$len\\r\\narg\\r\\n`` ...)."""
    commands, at = [], 0
    while at < len(packed) and packed[at : at + 1] == b"*":
        end = packed.index(b"\r\n", at)
        count, at = int(packed[at + 1 : end]), end + 2
        args = []
        for _ in range(count):
            end = packed.index(b"\r\n", at)
            size = int(packed[at + 1 : end])
            args.append(packed[end + 2 : end + 2 + size])
            at = end + 2 + size + 2
        commands.append(args)
    return commands


def describe(commands: list[list[bytes]]) -> str:
    """``INCR EXPIRE EXISTS``; scripts with their first key (which script it is)."""
    names = []
    for args in commands:
        name = args[0].decode().upper()
        if name in ("EVAL", "EVALSHA") and len(args) > 3 and int(args[2]) > 0:
            name += f"({_shape(args[3].decode())})"
        names.append(name)
    return " ".join(names)


def _shape(key: str) -> str:
    """A key without its ids: ``ktsync-bench:lock:contact:…`` -> ``lock:contact``."""
    parts = key.split(":")
    return ":".join(parts[1:3]) if len(parts) > 2 else key


def who(frame: FrameType | None) -> str:
    """The innermost public function of ktsync's worker on the stack (``Class.method``)."""
    while frame is not None:
        code = frame.f_code
        if not code.co_name.startswith(("_", "<")) and Path(code.co_filename).resolve().is_relative_to(
            WORKER
        ):
            return code.co_qualname
        frame = frame.f_back
    return "(outside the worker)"


@contextmanager
def counting(tally: Tally) -> Iterator[None]:
    """Count every packed send to Redis while the block runs."""
    original = AbstractConnection.send_packed_command

    def send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes | str) else list(command)
        packed = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
        tally.trips[(who(sys._getframe(1)), describe(parse_commands(packed)))] += 1
        original(self, command, check_health)

    AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def measure(env: dict[str, str], contacts: int, first: int) -> Tally:
    """Round trips of ``contacts`` new contacts (after one warm-up contact), in this process."""
    from ktsync.worker.celery_app import create_app

    settings = load_settings(env)
    app = create_app(settings, env)
    task = app.tasks[TASK_NAMES[MessageType.UPSERT]]
    ids = itertools.count(first)
    for _ in range(2):  # warm-up: reference data, both lifecycle stages' tags, connections
        task.apply(args=[new_contact(next(ids))]).get()
    tally = Tally()
    with counting(tally):
        for _ in range(contacts):
            result = task.apply(args=[new_contact(next(ids))]).get()
            if result.get("status") != "synced":
                raise RuntimeError(f"a new contact was not synced: {result}")
    app.ktsync_runtime.close()
    return tally


def report(name: str, tally: Tally, contacts: int) -> None:
    print(f"{name}: {tally.total() / contacts:.2f} Redis round trips per new contact")
    by_who: dict[str, list[tuple[str, int]]] = {}
    for (caller, commands), count in tally.trips.most_common():
        by_who.setdefault(caller, []).append((commands, count))
    for caller, rows in sorted(by_who.items(), key=lambda item: -sum(c for _, c in item[1])):
        purpose = PURPOSES.get(caller, caller)
        print(f"  {sum(c for _, c in rows) / contacts:5.2f}  {purpose}  [{caller}]")
        for commands, count in rows:
            print(f"           {count / contacts:5.2f}  {commands}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=200, help="new contacts per measurement")
    args = parser.parse_args()
    with environment(8) as (_settings, env, _fake):
        on = measure(env, args.contacts, first=0)
        off = measure({**env, "KTSYNC_RATE_LIMIT": "0"}, args.contacts, first=args.contacts + 2)
    report("limiter on (a budget never reached)", on, args.contacts)
    report("limiter off (rate.per_second 0)", off, args.contacts)


if __name__ == "__main__":
    main()
