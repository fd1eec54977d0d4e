"""What Flower, ``celery events`` and ``celery inspect`` show of a message: which contact, never its data.

One rule for both sides: ktsync's producer sets it as ``argsrepr``, and the worker's own request class
shows it whatever another producer set (see :mod:`ktsync.worker.request`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ktsync.core.contract import MessageType
from ktsync.core.contract_patterns import SOURCE_PATTERN
from ktsync.core.tenants import DEFAULT_TENANT, is_tenant_name

INVALID_MESSAGE = "invalid message"  # what is shown for a message of no known type
# What a summary may show of an id: a plain token. Anything else (an address used as an id) shows as "-".
_SHOWN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_SHOWN_SOURCE = re.compile(SOURCE_PATTERN)
_KNOWN_TYPES = frozenset(MessageType)


def summary(message: Mapping[str, Any]) -> str:
    """``contact.upsert hubspot/501``: the type, source and contact id; what is not a plain token shows as "-".
    A tenant other than ``default`` comes first: ``acme contact.upsert hubspot/501``."""
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in _KNOWN_TYPES:
        return INVALID_MESSAGE
    return f"{tenant_label(message)}{kind} {contact_ref(message)}"


def tenant_label(message: Mapping[str, Any]) -> str:
    """``"acme "`` for a message of tenant acme; nothing for the default tenant; "- " for a tenant
    that is not a valid name."""
    tenant = message.get("tenant", DEFAULT_TENANT)
    if tenant == DEFAULT_TENANT:
        return ""
    return f"{tenant} " if is_tenant_name(tenant) else "- "


def contact_ref(data: Mapping[str, Any]) -> str:
    """``hubspot/501``: the source and the CRM (else KlickTipp) contact id, "-" for what is not shown."""
    source = data.get("source")
    who = _shown_id(data.get("crm_contact_id")) or _shown_id(data.get("klicktipp_id")) or "-"
    shown_source = source if isinstance(source, str) and _SHOWN_SOURCE.fullmatch(source) else "-"
    return f"{shown_source}/{who}"


def _shown_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value)
    return text if _SHOWN_ID.fullmatch(text) else ""
