"""Pure mappings from each vendor's webhook payload to contract-v1 messages and dedupe ids."""

from producers.webhooks.payloads.close import close_event
from producers.webhooks.payloads.common import (
    Batch,
    Event,
    PayloadError,
    Problem,
    collapse,
    decode_json,
)
from producers.webhooks.payloads.generic import generic_messages
from producers.webhooks.payloads.hubspot import hubspot_batch
from producers.webhooks.payloads.klicktipp import flat_params, klicktipp_event
from producers.webhooks.payloads.zoho import zoho_notification

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
