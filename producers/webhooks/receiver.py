"""One webhook request in, one response out: route, authenticate, map, deduplicate, enqueue.

This is blocking code (Redis, the broker); the ASGI shell runs it in a thread pool.

=========================================  ======  ==============================================
outcome                                    status  body
=========================================  ======  ==============================================
every new message is in the broker         200     received / enqueued / duplicates / ignored
unknown path, or a vendor not configured   404
unknown or disabled tenant                 404     ``reason``: which tenant and why (no secret)
method not allowed                         405     (``Allow`` header)
signature or token missing, bad or stale   401     "signature invalid or stale", nothing more
malformed body, contract rejections        400     every problem as (index, field, reason)
another delivery of an event is running    503     ``Retry-After``: answer once that one is done
Redis or the broker unreachable            503     ``Retry-After``: the vendor retries
=========================================  ======  ==============================================

Routes are ``/webhooks/{crm}`` (the ``default`` tenant's) and ``/webhooks/{tenant}/{crm}``, each
tenant checked with its own secrets and deduplicated under its own keys (see
:mod:`ktsync.producers.webhooks.tenants`); its messages carry ``"tenant": NAME``.

Logs carry the vendor, tenant, counts and the outcome: never secrets, signatures or payloads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from ktsync.config.registry import TenantRefused
from ktsync.core.dedupe import Claim, Deduper
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.producers.enqueue import EnqueueError
from ktsync.producers.webhooks.payloads import Batch, PayloadError, collapse
from ktsync.producers.webhooks.routes import Request, resolve
from ktsync.producers.webhooks.secrets import WebhookSecrets
from ktsync.producers.webhooks.signatures import SignatureError
from ktsync.producers.webhooks.tenants import FixedHooks, Hooks, TenantHooks, for_tenant

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
    """Turns requests into enqueued messages; create one per process (it holds the producer).

    ``secrets`` and ``deduper`` are the ``default`` tenant's; ``tenants`` gives every other tenant's
    (None: only the default tenant's routes are served)."""

    def __init__(
        self,
        *,
        secrets: WebhookSecrets,
        enqueuer: Enqueuer,
        deduper: Deduper,
        clock: Callable[[], float] = time.time,
        tenants: TenantHooks | None = None,
    ) -> None:
        self._tenants = tenants or FixedHooks(Hooks(DEFAULT_TENANT, secrets, deduper))
        self._enqueuer = enqueuer
        self._clock = clock

    def handle(self, request: Request) -> Response:
        """The response to one request; never raises."""
        found = resolve(request.path)
        if found is None:
            return Response(404, {"error": "not found"})
        tenant, route = found
        try:
            hooks = self._tenants.get(tenant)
        except TenantRefused as exc:
            log.info("webhook %s: refused, tenant %s: %s", route.vendor, tenant, exc.why)
            return Response(404, {"error": "not found", "reason": exc.why})
        except (EnqueueError, redis.RedisError) as exc:  # the registry cannot be read
            log.warning("webhook %s: tenant %s not looked up, answered 503 (%s)", route.vendor, tenant,
                        type(exc).__name__)  # fmt: skip
            return _retry_later("tenant registry unavailable, retry later")
        except Exception:
            log.exception("webhook %s: tenant %s: unexpected error, answered 500", route.vendor, tenant)
            return Response(500, {"error": "internal error"})
        if route.vendor not in hooks.secrets.enabled():
            return Response(404, {"error": "not found"})
        if request.method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            return Response(405, {"error": "method not allowed"}, (("allow", allowed),))
        try:
            return self._handle(
                route.vendor, hooks, lambda: route.handle(request, hooks.secrets, self._clock())
            )
        except Exception:
            log.exception("webhook %s: unexpected error, answered 500", route.vendor)
            return Response(500, {"error": "internal error"})

    def _handle(self, vendor: str, hooks: Hooks, build: Callable[[], Batch]) -> Response:
        try:
            batch = for_tenant(build(), hooks.tenant)
        except SignatureError as exc:
            log.warning("webhook %s: refused, signature %s", vendor, exc.kind)
            return Response(401, {"error": UNAUTHORIZED})
        except PayloadError as exc:
            fields = sorted({problem.field for problem in exc.problems})
            log.info("webhook %s: malformed, %d problems (%s)", vendor, len(exc.problems), ", ".join(fields))
            problems = [problem.to_dict() for problem in exc.problems]
            return Response(400, {"error": "malformed payload", "problems": problems})
        try:
            return self._deliver(vendor, batch, hooks)
        except (EnqueueError, redis.RedisError) as exc:
            log.warning(
                "webhook %s: %d events not enqueued, answered 503 (%s)",
                vendor,
                batch.received,
                type(exc).__name__,
            )
            return _retry_later("queue unavailable, retry later")

    def _deliver(self, vendor: str, batch: Batch, hooks: Hooks) -> Response:
        deduper = hooks.deduper
        claim = deduper.claim(vendor, [e.dedupe_id for e in batch.events if e.dedupe_id is not None])
        if claim.in_flight:
            _release(deduper, claim)
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
            _release(deduper, claim)
            raise
        try:
            deduper.commit(claim)
        except redis.RedisError as exc:  # enqueued all the same: a retry may enqueue again (idempotent)
            log.warning(
                "webhook %s: enqueued, but the dedupe ids were not stored (%s)", vendor, type(exc).__name__
            )
        log.info(
            "webhook %s%s: %d events, %d enqueued, %d duplicates, %d ignored",
            vendor, "" if hooks.tenant == DEFAULT_TENANT else f" (tenant {hooks.tenant})", batch.received, len(messages), duplicates, batch.ignored,
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


def _release(deduper: Deduper, claim: Claim) -> None:
    try:
        deduper.release(claim)
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
