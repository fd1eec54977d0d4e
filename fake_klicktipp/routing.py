"""The route table of the 22 Management API operations (plus legacy extras), and path normalization.

Paths are matched without an ``/api`` prefix and a ``.json`` suffix. Legacy operations are absent
from the current spec (KLICKTIPP_API.md §3, "Legacy or undocumented operations"): ``DELETE
/field/{id}`` lets tests delete a data field the way an account owner would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fake_klicktipp import ops_account, ops_catalog, ops_contacts
from fake_klicktipp.accounts import AccountView
from fake_klicktipp.wire import ApiRequest, Reply

Handler = Callable[[AccountView, ApiRequest], Reply]  # the caller's account, the request


@dataclass(frozen=True)
class Operation:
    """An operation; ``public`` ones need no session or partner headers, ``legacy`` ones are not in the spec."""

    id: str
    handler: Handler
    public: bool = False
    legacy: bool = False


@dataclass(frozen=True)
class Match:
    """The operation for a request, or the methods the path allows when the method is wrong."""

    path: str
    operation: Operation | None
    param: str | None = None
    allowed: tuple[str, ...] = ()


_STATIC: Final[dict[str, dict[str, Operation]]] = {
    "/account/login": {"POST": Operation("api.account.login", ops_account.login, public=True)},
    "/account/logout": {"POST": Operation("api.account.logout", ops_account.logout, public=True)},
    "/field": {"GET": Operation("api.customfield.index", ops_catalog.field_index)},
    "/list": {"GET": Operation("api.optin.index", ops_catalog.list_index)},
    "/list/redirect": {"POST": Operation("api.optin.redirect", ops_catalog.list_redirect)},
    "/subscriber": {
        "GET": Operation("api.subscriber.index", ops_contacts.index),
        "POST": Operation("api.subscriber.create", ops_contacts.create),
    },
    "/subscriber/unsubscribe": {"POST": Operation("api.subscriber.unsubscribe", ops_contacts.unsubscribe)},
    "/subscriber/tag": {"POST": Operation("api.subscriber.tag", ops_contacts.tag)},
    "/subscriber/untag": {"POST": Operation("api.subscriber.untag", ops_contacts.untag)},
    "/subscriber/search": {"POST": Operation("api.subscriber.search", ops_contacts.search)},
    "/subscriber/tagged": {"POST": Operation("api.subscriber.tagged", ops_contacts.tagged)},
    "/tag": {
        "GET": Operation("api.tag.index", ops_catalog.tag_index),
        "POST": Operation("api.tag.create", ops_catalog.tag_create),
    },
}

_WITH_ID: Final[dict[str, dict[str, Operation]]] = {
    "/field/": {
        "GET": Operation("api.customfield.retrieve", ops_catalog.field_retrieve),
        "DELETE": Operation("api.customfield.delete", ops_catalog.field_delete, legacy=True),
    },
    "/list/": {"GET": Operation("api.optin.retrieve", ops_catalog.list_retrieve)},
    "/subscriber/": {
        "GET": Operation("api.subscriber.retrieve", ops_contacts.retrieve),
        "PUT": Operation("api.subscriber.update", ops_contacts.update),
        "DELETE": Operation("api.subscriber.delete", ops_contacts.delete),
    },
    "/tag/": {
        "GET": Operation("api.tag.retrieve", ops_catalog.tag_retrieve),
        "PUT": Operation("api.tag.update", ops_catalog.tag_update),
        "DELETE": Operation("api.tag.delete", ops_catalog.tag_delete),
    },
}

_OPERATIONS: Final = tuple(
    op for table in (_STATIC, _WITH_ID) for methods in table.values() for op in methods.values()
)
OPERATION_IDS: Final = frozenset(op.id for op in _OPERATIONS if not op.legacy)  # exactly the spec's
LEGACY_OPERATION_IDS: Final = frozenset(op.id for op in _OPERATIONS if op.legacy)


def normalize(path: str) -> str:
    """Drop an ``/api`` prefix, a ``.json`` suffix and a trailing slash."""
    if path.startswith("/api/"):
        path = path[4:]
    path = path.removesuffix(".json").rstrip("/")
    return path or "/"


def _lookup(path: str) -> tuple[dict[str, Operation] | None, str | None]:
    methods = _STATIC.get(path)
    if methods is not None:
        return methods, None
    prefix, _, param = path.rpartition("/")
    methods = _WITH_ID.get(prefix + "/")
    return (methods, param) if methods is not None and param else (None, None)


def match(method: str, raw_path: str) -> Match:
    """The operation for ``method`` on ``raw_path``."""
    path = normalize(raw_path)
    methods, param = _lookup(path)
    if methods is None:
        return Match(path=path, operation=None)
    operation = methods.get(method)
    if operation is None:
        return Match(path=path, operation=None, allowed=tuple(methods))
    return Match(path=path, operation=operation, param=param)
