"""Tenant names and where each tenant's keys live: the part of multi-tenancy every layer shares.

A tenant is one KlickTipp account served by the deployment. Messages name theirs in the optional
``tenant`` field (absent: ``default``, the top-level settings). Everything ktsync keeps about a
tenant's contacts lives under the tenant's key prefix: the deployment's ``redis.key_prefix`` for
``default`` (an installation from before tenants keeps its keys), ``<key_prefix>@<tenant>`` for any
other, e.g. ``ktsync@acme:state:hubspot:501``. ``@`` never occurs in the default tenant's own key
names, so a ``ktsync:*`` pattern never reaches into another tenant's keys, nor ``ktsync@acme:*``
into ``ktsync@acme2:*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ktsync.core.contract_patterns import TENANT_PATTERN

DEFAULT_TENANT = "default"
_TENANT = re.compile(TENANT_PATTERN)
TENANT_RULE = "must be 1 to 64 characters of a-z, 0-9, _ or -"


def is_tenant_name(value: object) -> bool:
    return isinstance(value, str) and _TENANT.match(value) is not None


def tenant_prefix(key_prefix: str, tenant: str) -> str:
    """The key prefix of ``tenant``'s keys (see the module docstring)."""
    return key_prefix if tenant == DEFAULT_TENANT else f"{key_prefix}@{tenant}"


def deployment_prefix_of(prefix: str) -> str:
    """The deployment's key prefix from any tenant's (``ktsync@acme`` -> ``ktsync``): where the keys
    every tenant shares live, such as a worker session's lock registry (``redis.key_prefix`` has no ``@``)."""
    return prefix.split("@", 1)[0]


def tenant_of(message: Mapping[str, Any] | object) -> str:
    """The tenant a raw message names, ``default`` when it names none. Not validated (see the contract):
    a value that is not a tenant name is returned as text, to be refused by whoever routes it."""
    if not isinstance(message, Mapping):
        return DEFAULT_TENANT
    value = message.get("tenant")
    return DEFAULT_TENANT if value is None else str(value)
