"""Test helpers: vendors' signatures re-derived from their documentation, events, a served receiver.

The signing functions below are written from the vendors' documents (KLICKTIPP_API.md §9), with
hmac/hashlib only; they never call the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import redis
import yaml

from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, settings_from_dict
from ktsync.core.lanes import Lane
from ktsync.core.redis_server import RedisHandle
from ktsync.core.web import in_thread
from ktsync.producers.webhooks.app import WebhookApp
from ktsync.producers.webhooks.secrets import WebhookSecrets
from ktsync.producers.webhooks.server import build_config, running_receiver

HUBSPOT_SECRET = "hubspot-client-secret-0123"
CLOSE_KEY_HEX = "8f3b2a01c4d5e6f708192a3b4c5d6e7f8f3b2a01c4d5e6f708192a3b4c5d6e7f"
ZOHO_CHANNEL = "1000000068001"
ZOHO_TOKEN = "zoho-token-abc"
GENERIC_SECRET = "generic-secret-xyz"
KLICKTIPP_TOKEN = "kt-static-token-9f8e"
SECRETS = WebhookSecrets(
    hubspot_client_secret=HUBSPOT_SECRET,
    close_signature_key=bytes.fromhex(CLOSE_KEY_HEX),
    zoho_channel_id=ZOHO_CHANNEL,
    zoho_token=ZOHO_TOKEN,
    generic_secret=GENERIC_SECRET,
    klicktipp_token=KLICKTIPP_TOKEN,
)
NOW = 1_795_341_600.0  # 2026-11-22T10:00:00Z


# --- signatures, from the vendors' documents ------------------------------------------------------


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    """base64(HMAC_SHA256(client secret, method + uri + body + timestamp)), uri already decoded."""
    source = method.encode() + uri.encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def close_sig(key_hex: str, timestamp: str, body: bytes) -> str:
    """hex(HMAC_SHA256(bytes.fromhex(signature_key), timestamp + body))."""
    return hmac.new(bytes.fromhex(key_hex), timestamp.encode() + body, hashlib.sha256).hexdigest()


def generic_sig(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=hex(HMAC_SHA256(secret, timestamp + "." + body))."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def hubspot_headers(uri: str, body: bytes, *, at: float, secret: str = HUBSPOT_SECRET) -> dict[str, str]:
    stamp = str(int(at * 1000))
    return {
        "x-hubspot-signature-v3": hubspot_v3(secret, "POST", uri, body, stamp),
        "x-hubspot-request-timestamp": stamp,
        "content-type": "application/json",
    }


def close_headers(body: bytes, *, at: float, key_hex: str = CLOSE_KEY_HEX) -> dict[str, str]:
    stamp = str(int(at))
    return {"close-sig-hash": close_sig(key_hex, stamp, body), "close-sig-timestamp": stamp}


def generic_headers(body: bytes, *, at: float, secret: str = GENERIC_SECRET) -> dict[str, str]:
    stamp = str(int(at))
    return {"x-ktsync-signature": generic_sig(secret, stamp, body), "x-ktsync-timestamp": stamp}


# --- payloads -----------------------------------------------------------------------------------


def hubspot_event(
    event_id: int,
    kind: str = "contact.propertyChange",
    object_id: int | None = 501,
    *,
    at_ms: int,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": 12345,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": at_ms,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "changeSource": "CRM_UI",
        **extra,
    }
    if object_id is not None:
        event["objectId"] = object_id
    return event


def close_body(action: str = "updated", object_type: str = "contact", **event: Any) -> dict[str, Any]:
    return {
        "subscription_id": "whsub_1",
        "event": {
            "id": "ev_1",
            "action": action,
            "object_type": object_type,
            "object_id": "cont_1",
            "lead_id": "lead_1",
            "date_created": "2026-11-22T09:59:00.000000+00:00",
            "date_updated": "2026-11-22T10:00:00.000000+00:00",
            "data": {"id": "cont_1", "name": "Alex", "emails": [{"email": "alex@shop.example"}]},
            "meta": {"request_method": "PUT"},
            **event,
        },
    }


def zoho_body(operation: str = "update", ids: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "server_time": 1795341600123,
        "query_params": {},
        "module": "Contacts",
        "resource_uri": "https://www.zohoapis.eu/crm/v2/Contacts",
        "ids": ["4150868000000624001"] if ids is None else ids,
        "affected_fields": [],
        "operation": operation,
        "channel_id": ZOHO_CHANNEL,
        "token": ZOHO_TOKEN,
        **extra,
    }


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


# --- a served receiver and its queue ------------------------------------------------------------


def webhook_settings(redis_url: str, namespace: str, *, owned: bool) -> Settings:
    """The default config, on the test's Redis keys and a queue of its own."""
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["redis"].update(
        url=redis_url, key_prefix=namespace, broker_prefix="" if owned else f"{namespace}:"
    )
    document["worker"]["queue"] = namespace
    return settings_from_dict(document, {})


def settings_for(handle: RedisHandle, namespace: str) -> Settings:
    return webhook_settings(handle.url, namespace, owned=handle.owned)


@contextmanager
def serving(
    settings: Settings, secrets: WebhookSecrets = SECRETS, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """The real receiver (real Producer, real Redis) under uvicorn in a thread; yields its base URL.
    ``env``: where tenants' secrets are revealed from (default ``os.environ``)."""
    with running_receiver(settings, secrets, env) as receiver, ThreadPoolExecutor(4) as pool:
        config = build_config(WebhookApp(receiver, pool), host="127.0.0.1", port=0, log_level="warning")
        with in_thread(config, "webhooks-under-test") as url:
            yield url


def queued(client: redis.Redis, settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """(task name, message) of every task waiting in the settings' queue, oldest first.

    Kombu's Redis transport LPUSHes a JSON envelope whose body is the base64 of ``[args, kwargs,
    embed]``; the message is ``args[0]``.
    """
    raw = client.lrange(settings.broker_prefix + settings.worker.lane_queue(Lane.LIVE), 0, -1)
    tasks = []
    for item in reversed(raw):
        envelope = json.loads(item)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        tasks.append((envelope["headers"]["task"], args[0]))
    return tasks
