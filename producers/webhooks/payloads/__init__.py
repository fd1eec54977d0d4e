"""Pure mappings from each vendor's webhook payload to contract-v1 messages and dedupe ids."""

from ktsync.producers.webhooks.payloads.close import close_event
from ktsync.producers.webhooks.payloads.common import (
    Batch,
    Event,
    PayloadError,
    Problem,
    collapse,
    decode_json,
)
from ktsync.producers.webhooks.payloads.generic import generic_messages
from ktsync.producers.webhooks.payloads.hubspot import hubspot_batch
from ktsync.producers.webhooks.payloads.klicktipp import flat_params, klicktipp_event
from ktsync.producers.webhooks.payloads.zoho import zoho_notification

__all__ = [
    "Batch",
    "Event",
    "PayloadError",
    "Problem",
    "close_event",
    "collapse",
    "decode_json",
    "flat_params",
    "generic_messages",
    "hubspot_batch",
    "klicktipp_event",
    "zoho_notification",
]
