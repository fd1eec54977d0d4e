"""Which tenant a message is for, checked at the producer: unknown and disabled tenants are refused here.

A message names its tenant in the optional ``tenant`` field (absent: ``default``, which is always
served). A producer that sees the tenant registry (it has Redis: the broker is there) refuses a
message for a tenant the deployment does not serve with :class:`TenantRejected`, a
:class:`~ktsync.core.contract.ContractError` naming the field ``tenant`` and why, before anything is
enqueued; the worker refuses it again (dead-lettered as ``config``) should the tenant go away meanwhile.

The registry is read through a :class:`~ktsync.config.registry.WatchedTenants`: one ``GET`` of its
version every few seconds, not one read per message of a bulk import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ktsync.config.registry import TenantRefused, TenantView
from ktsync.core.contract import ContractError, FieldError
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant_name, tenant_of


class TenantSource(Protocol):
    """What the producer needs of :class:`~ktsync.config.registry.WatchedTenants`."""

    def current(self) -> TenantView: ...


class TenantRejected(ContractError):
    """A message is for a tenant this producer may not enqueue for (unknown, disabled, or not its own)."""

    def __init__(self, tenant: str, why: str) -> None:
        self.tenant, self.why = tenant, why
        super().__init__([FieldError("tenant", why)])


def stamped(message: Mapping[str, Any], tenant: str | None) -> dict[str, Any]:
    """The message for ``tenant`` (None: as it is): ``tenant`` set when it names none.

    A message that names another tenant is refused (:class:`TenantRejected`): a producer bound to one
    tenant never writes into another's account. ``default`` is left implicit, as before tenants."""
    out = dict(message)
    if tenant is None:
        return out
    named = out.get("tenant")
    if named is None:
        if tenant != DEFAULT_TENANT:
            out["tenant"] = tenant
        return out
    if named != tenant:
        raise TenantRejected(
            str(named), f"this producer enqueues for tenant {tenant!r}, the message names {named!r}"
        )
    return out


def tenant_problem(view: TenantView, tenant: str) -> str | None:
    """Why ``tenant`` takes no messages now (None: it does). Pure."""
    if not is_tenant_name(tenant):
        return f"{TENANT_RULE}, got {tenant!r}"
    try:
        view.lookup(tenant)
    except TenantRefused as exc:
        return exc.why
    return None


def needs_registry(message: Mapping[str, Any] | object) -> bool:
    """Whether checking the message's tenant needs the registry (``default`` is always served)."""
    return tenant_of(message) != DEFAULT_TENANT


def check_tenant(view: TenantView, message: Mapping[str, Any] | object) -> None:
    """:class:`TenantRejected` when the message's tenant takes no messages."""
    tenant = tenant_of(message)
    why = None if tenant == DEFAULT_TENANT else tenant_problem(view, tenant)
    if why is not None:
        raise TenantRejected(tenant, why)
