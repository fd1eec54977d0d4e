"""The routes: for each path, which vendor, which methods, and how a request becomes a Batch.

A route handler authenticates the request (SignatureError), then maps its payload (PayloadError).
Both are pure given the request, the secrets and ``now``; nothing here touches Redis.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ktsync.core.tenants import DEFAULT_TENANT, is_tenant_name
from ktsync.producers.webhooks.payloads import (
    Batch,
    PayloadError,
    Problem,
    close_event,
    decode_json,
    flat_params,
    generic_messages,
    hubspot_batch,
    klicktipp_event,
    zoho_notification,
)
from ktsync.producers.webhooks.secrets import WebhookSecrets
from ktsync.producers.webhooks.signatures import (
    Failure,
    SignatureError,
    hubspot_uri,
    verify_close,
    verify_generic,
    verify_hubspot_v3,
    verify_token,
)

POST = frozenset({"POST"})
POST_OR_GET = frozenset({"POST", "GET"})
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """What the routes need of an HTTP request. ``raw_path`` and ``query`` keep their escapes."""

    method: str
    path: str
    raw_path: str
    query: str
    headers: Mapping[str, str]  # lower-case names, first value of a repeated header
    body: bytes
    scheme: str = "http"
    host: str = "localhost"


Handler = Callable[[Request, WebhookSecrets, float], Batch]


@dataclass(frozen=True)
class Route:
    vendor: str
    methods: frozenset[str]
    handle: Handler


def _configured(value: T | None) -> T:
    if (
        value is None or not value
    ):  # the receiver serves only configured vendors; this is a second line of defence
        raise SignatureError(Failure.MISSING)
    return value


def _hubspot(request: Request, secrets: WebhookSecrets, now: float) -> Batch:
    base = secrets.public_url or f"{request.scheme}://{request.host}"
    verify_hubspot_v3(
        method=request.method,
        uri=hubspot_uri(base, request.raw_path, request.query),
        body=request.body,
        headers=request.headers,
        secret=_configured(secrets.hubspot_client_secret),
        now=now,
    )
    return hubspot_batch(decode_json(request.body))


def _close(request: Request, secrets: WebhookSecrets, now: float) -> Batch:
    key = _configured(secrets.close_signature_key)
    verify_close(body=request.body, headers=request.headers, key=key, now=now)
    return close_event(decode_json(request.body), now=now)


def _zoho(request: Request, secrets: WebhookSecrets, now: float) -> Batch:
    data = decode_json(request.body)
    if not isinstance(data, dict):
        raise PayloadError([Problem(None, "$", "must be a JSON object (a Zoho notification)")])
    channel_ok = _token_matches(data.get("channel_id"), _configured(secrets.zoho_channel_id))
    token_ok = _token_matches(data.get("token"), _configured(secrets.zoho_token))
    if not (channel_ok and token_ok):  # both compared, always: no early exit on the first
        raise SignatureError(Failure.MISMATCH)
    return zoho_notification(data, body_digest=hashlib.sha256(request.body).hexdigest(), now=now)


def _generic(request: Request, secrets: WebhookSecrets, now: float) -> Batch:
    secret = _configured(secrets.generic_secret)
    verify_generic(body=request.body, headers=request.headers, secret=secret, now=now)
    return generic_messages(decode_json(request.body))


def _klicktipp(*, deletion: bool) -> Handler:
    def handle(request: Request, secrets: WebhookSecrets, now: float) -> Batch:
        params = flat_params(
            content_type=request.headers.get("content-type", ""),
            body=request.body if request.method == "POST" else b"",
            query=request.query.encode("latin-1"),
        )
        verify_token(params.get(secrets.klicktipp_token_param), _configured(secrets.klicktipp_token))
        return klicktipp_event(params, deletion=deletion, id_param=secrets.klicktipp_id_param, now=now)

    return handle


def _token_matches(given: object, expected: str) -> bool:
    try:
        verify_token(given, expected)
    except SignatureError:
        return False
    return True


ROUTES: Mapping[str, Route] = {
    "/webhooks/hubspot": Route("hubspot", POST, _hubspot),
    "/webhooks/close": Route("close", POST, _close),
    "/webhooks/zoho": Route("zoho", POST, _zoho),
    "/webhooks/generic": Route("generic", POST, _generic),
    "/webhooks/klicktipp": Route("klicktipp", POST_OR_GET, _klicktipp(deletion=False)),
    "/webhooks/klicktipp/deletion": Route("klicktipp", POST_OR_GET, _klicktipp(deletion=True)),
}

TENANT_ROUTE = "/webhooks/{tenant}/{crm}"
_TENANT_PATH = re.compile(r"/webhooks/([^/]+)(/[^/]+(?:/deletion)?)\Z")


def resolve(path: str) -> tuple[str, Route] | None:
    """The tenant and route of a path: today's ``/webhooks/{crm}`` are the ``default`` tenant's,
    ``/webhooks/{tenant}/{crm}`` a tenant's (exact routes first: ``/webhooks/klicktipp/deletion``
    stays the default tenant's KlickTipp deletion route). None: no such route."""
    route = ROUTES.get(path)
    if route is not None:
        return DEFAULT_TENANT, route
    match = _TENANT_PATH.match(path)
    if match is None or not is_tenant_name(match.group(1)):
        return None
    route = ROUTES.get("/webhooks" + match.group(2))
    return None if route is None else (match.group(1), route)
