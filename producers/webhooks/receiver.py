"""One webhook request in, one response out: route, authenticate, map, deduplicate, enqueue.

This is blocking code (Redis, the broker); the ASGI shell runs it in a thread pool.

=========================================  ======  ==============================================
outcome                                    status  body
=========================================  ======  ==============================================
every new message is in the broker         200     received / enqueued / duplicates / ignored
unknown path, or a vendor not configured   404
method not allowed                         405     (``Allow`` header)
signature or token missing, bad or stale   401     "signature invalid or stale", nothing more
malformed body, contract rejections        400     every problem as (index, field, reason)
another delivery of an event is running    503     ``Retry-After``: answer once that one is done
Redis or the broker unreachable            503     ``Retry-After``: the vendor retries
=========================================  ======  ==============================================

Logs carry the vendor, counts and the outcome: never secrets, signatures or payloads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from ktsync.core.dedupe import Claim, Deduper
from ktsync.producers.enqueue import EnqueueError
from ktsync.producers.webhooks.payloads import Batch, PayloadError, collapse
from ktsync.producers.webhooks.routes import ROUTES, Request
from ktsync.producers.webhooks.secrets import WebhookSecrets
from ktsync.producers.webhooks.signatures import SignatureError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
UNAUTHORIZED = "signature invalid or stale"


@dataclass(frozen=True)
class Response:
    status: int
    body: Mapping[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


class Enqueuer(Protocol):
    """What the receiver needs of :class:`ktsync.producers.Producer`."""

    def enqueue_many(
        self, messages: Iterable[Mapping[str, Any]], *, validated: bool = False
    ) -> list[str]: ...


def _retry_later(reason: str) -> Response:
    return Response(503, {"error": reason}, (("retry-after", str(RETRY_AFTER_SECONDS)),))


class Receiver:
    """Turns requests into enqueued messages; create one per process (it holds the producer)."""

    def __init__(
        self,
        *,
        secrets: WebhookSecrets,
        enqueuer: Enqueuer,
        deduper: Deduper,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = secrets
        self._enabled = secrets.enabled()
        self._enqueuer = enqueuer
        self._deduper = deduper
        self._clock = clock

    def handle(self, request: Request) -> Response:
        """The response to one request; never raises."""
        route = ROUTES.get(request.path)
        if route is None or route.vendor not in self._enabled:
            return Response(404, {"error": "not found"})
        if request.method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            return Response(405, {"error": "method not allowed"}, (("allow", allowed),))
        try:
            return self._handle(route.vendor, lambda: route.handle(request, self._secrets, self._clock()))
        except Exception:
            log.exception("webhook %s: unexpected error, answered 500", route.vendor)
            return Response(500, {"error": "internal error"})

    def _handle(self, vendor: str, build: Callable[[], Batch]) -> Response:
        try:
            batch = build()
        except SignatureError as exc:
            log.warning("webhook %s: refused, signature %s", vendor, exc.kind)
            return Response(401, {"error": UNAUTHORIZED})
        except PayloadError as exc:
            fields = sorted({problem.field for problem in exc.problems})
            log.info("webhook %s: malformed, %d problems (%s)", vendor, len(exc.problems), ", ".join(fields))
            problems = [problem.to_dict() for problem in exc.problems]
            return Response(400, {"error": "malformed payload", "problems": problems})
        try:
            return self._deliver(vendor, batch)
        except (EnqueueError, redis.RedisError) as exc:
            log.warning(
                "webhook %s: %d events not enqueued, answered 503 (%s)",
                vendor,
                batch.received,
                type(exc).__name__,
            )
            return _retry_later("queue unavailable, retry later")

    def _deliver(self, vendor: str, batch: Batch) -> Response:
        claim = self._deduper.claim(vendor, [e.dedupe_id for e in batch.events if e.dedupe_id is not None])
        if claim.in_flight:
            self._release(claim)
            log.info(
                "webhook %s: %d events being delivered by another request, answered 503",
                vendor,
                len(claim.in_flight),
            )
            return _retry_later("another delivery of these events is in progress, retry later")
        messages, duplicates = _fresh_messages(batch, claim)
        try:
            if messages:
                self._enqueuer.enqueue_many(messages, validated=True)
        except BaseException:
            self._release(claim)
            raise
        try:
            self._deduper.commit(claim)
        except redis.RedisError as exc:  # enqueued all the same: a retry may enqueue again (idempotent)
            log.warning(
                "webhook %s: enqueued, but the dedupe ids were not stored (%s)", vendor, type(exc).__name__
            )
        log.info(
            "webhook %s: %d events, %d enqueued, %d duplicates, %d ignored",
            vendor, batch.received, len(messages), duplicates, batch.ignored,
        )  # fmt: skip
        body: dict[str, Any] = {
            "status": "accepted" if batch.events else "ignored",
            "received": batch.received,
            "enqueued": len(messages),
            "duplicates": duplicates,
            "ignored": batch.ignored,
        }
        if batch.note:
            body["note"] = batch.note
        return Response(200, body)

    def _release(self, claim: Claim) -> None:
        try:
            self._deduper.release(claim)
        except redis.RedisError as exc:  # the claims expire after their lease
            log.warning("webhook %s: could not release dedupe claims (%s)", claim.vendor, type(exc).__name__)


def _fresh_messages(batch: Batch, claim: Claim) -> tuple[list[Mapping[str, Any]], int]:
    """The messages of events this request claimed (or that are never deduplicated), collapsed."""
    claimed = set(claim.claimed)
    messages: list[Mapping[str, Any]] = []
    duplicates = 0
    for event in batch.events:
        if event.dedupe_id is None:
            messages.extend(event.messages)
        elif event.dedupe_id in claimed:
            claimed.discard(event.dedupe_id)  # a second event with the same id in one batch is a duplicate
            messages.extend(event.messages)
        else:
            duplicates += 1
    return (collapse(messages) if batch.collapse else messages), duplicates
