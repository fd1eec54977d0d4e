"""Which service call applies each message type, and the check that a task got a message of its own type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ktsync.core.contract import (
    ContactChanged,
    ContactDeleted,
    ContactUpsert,
    DeletionRequested,
    KlickTippContactChanged,
    Message,
    MessageType,
)
from ktsync.worker.calls import wrong_task
from ktsync.worker.runtime import WorkerRuntime
from ktsync.worker.service import SyncOutcome

M = TypeVar("M", ContactUpsert, ContactDeleted, DeletionRequested, ContactChanged, KlickTippContactChanged)


@dataclass(frozen=True)
class Handler(Generic[M]):
    """Applies one message type's events; a message of another type sent to its task is an invalid call."""

    expects: MessageType
    kind: type[M]
    apply: Callable[[WorkerRuntime, M], SyncOutcome]

    def __call__(self, runtime: WorkerRuntime, event: Message, task: str) -> SyncOutcome:
        if not isinstance(event, self.kind):
            raise wrong_task(event.type, task, self.expects)
        return self.apply(runtime, event)


def _upsert(runtime: WorkerRuntime, event: ContactUpsert) -> SyncOutcome:
    return runtime.services.sync.upsert(event)


def _deleted(runtime: WorkerRuntime, event: ContactDeleted) -> SyncOutcome:
    return runtime.services.deletions.contact_deleted(event)


def _deletion_requested(runtime: WorkerRuntime, event: DeletionRequested) -> SyncOutcome:
    return runtime.services.deletions.deletion_requested(event)


def _fetch_and_sync(runtime: WorkerRuntime, event: ContactChanged) -> SyncOutcome:
    return runtime.services.refresh.fetch_and_sync(event)


def _from_klicktipp(runtime: WorkerRuntime, event: KlickTippContactChanged) -> SyncOutcome:
    return runtime.services.refresh.from_klicktipp(event)


HANDLERS: Mapping[MessageType, Handler[Any]] = {
    handler.expects: handler
    for handler in (
        Handler(MessageType.UPSERT, ContactUpsert, _upsert),
        Handler(MessageType.DELETED, ContactDeleted, _deleted),
        Handler(MessageType.DELETION_REQUESTED, DeletionRequested, _deletion_requested),
        Handler(MessageType.CHANGED, ContactChanged, _fetch_and_sync),
        Handler(MessageType.KLICKTIPP_CHANGED, KlickTippContactChanged, _from_klicktipp),
    )
}
