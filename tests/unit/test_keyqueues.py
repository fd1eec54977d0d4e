"""Key queues (work deferred for its budget): one test body for Redis and the in-memory twin."""

from __future__ import annotations

import itertools
import time

import pytest

from ktsync.worker.keyqueues import KeyQueues, MemoryKeyQueues, RedisKeyQueues, release_step
from ktsync.worker.schedule import Parked
from tests.unit.twins import twin

queues = twin(MemoryKeyQueues, RedisKeyQueues)


def task(n: int, queue: str = "ktsync.bulk") -> Parked:
    return Parked(
        "ktsync.sync_contact", ({"crm_contact_id": str(n)},), {"failures": 0}, f"t{n}", queue, 100.0 + n
    )


def test_deferred_tasks_of_one_key_are_released_in_order_one_spacing_apart(queues: KeyQueues) -> None:
    # Given five tasks of one key deferred at once, 0.1 s apart at the key's rate
    dues = [queues.defer("acct:bulk", task(n), delay=0.0, spacing=0.1) for n in range(5)]

    # Then their release times follow each other at the spacing, in the order they came
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(dues)]
    assert gaps == [0.1, 0.1, 0.1, 0.1]
    # And only the first is due right away
    assert [entry.id for entry in queues.due("acct:bulk")] == ["t0"]
    assert queues.count("acct:bulk") == 5


def test_a_key_spaces_its_own_work_only(queues: KeyQueues) -> None:
    queues.defer("acct:bulk", task(1), delay=0.0, spacing=60.0)
    queues.defer("acct:bulk", task(2), delay=0.0, spacing=60.0)  # a minute later
    queues.defer("acct:live", task(3, "ktsync.live"), delay=0.0, spacing=60.0)  # another key: now
    assert [e.id for e in queues.due("acct:bulk")] == ["t1"]
    assert [e.id for e in queues.due("acct:live")] == ["t3"]


def test_the_release_step_publishes_due_tasks_as_deferred_and_forgets_empty_keys(queues: KeyQueues) -> None:
    # Given a due task and one not yet due
    queues.defer("acct:bulk", task(1), delay=0.0, spacing=0.0)
    queues.defer("acct:live", task(2, "ktsync.live"), delay=30.0, spacing=0.0)
    published: list[Parked] = []

    # When the mover's step runs (twice)
    moved = release_step(queues, published.append)() + release_step(queues, published.append)()

    # Then the due one went out once, with its queue and first enqueue time; its key is forgotten
    assert moved == 1
    assert published == [task(1)]
    assert queues.fairness_keys() == ["acct:live"]


def test_a_task_whose_publish_fails_stays_deferred(queues: KeyQueues) -> None:
    queues.defer("acct:bulk", task(1), delay=0.0, spacing=0.0)

    def broker_down(entry: Parked) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        release_step(queues, broker_down)()
    assert queues.count("acct:bulk") == 1


def test_an_idle_key_starts_again_from_now(queues: KeyQueues) -> None:
    # Given a key whose deferred work all went out (its clock had the next release a minute ahead)
    queues.defer("acct:bulk", task(1), delay=0.0, spacing=60.0)
    release_step(queues, lambda _entry: None)()
    # Then a new deferral is not pushed behind that old spacing: the emptied key's clock is forgotten
    due = queues.defer("acct:bulk", task(2), delay=0.0, spacing=0.05)
    assert due <= time.time() + 0.01
