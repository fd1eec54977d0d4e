"""Privacy deletions (GDPR erasure): the person deleted in KlickTipp and purged from ktsync's stores."""

from ktsync.worker.erasure.eraser import ERASED, Eraser, ErasureStores, Survey
from ktsync.worker.erasure.people import People
from ktsync.worker.erasure.plan import ErasureReport, Subject
from ktsync.worker.erasure.timelines import MemoryTimelines, RedisTimelines, Timelines

__all__ = [
    "ERASED",
    "Eraser",
    "ErasureReport",
    "ErasureStores",
    "MemoryTimelines",
    "People",
    "RedisTimelines",
    "Subject",
    "Survey",
    "Timelines",
]
