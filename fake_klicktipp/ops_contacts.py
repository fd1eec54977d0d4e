"""The contact operations under ``/subscriber``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fake_klicktipp.accounts import AccountView
from fake_klicktipp.errors import MissingArgument, Msg, Refused, Rejected, RetrieveMiss, UnknownTag
from fake_klicktipp.model import BOUNCES, STATUSES, Contact
from fake_klicktipp.render import subscriber_object
from fake_klicktipp.store import DEFAULT_BOUNCES, DEFAULT_STATUSES, ContactChange, Subscription
from fake_klicktipp.wire import (
    ApiRequest,
    Reply,
    as_list,
    filter_tokens,
    id_list,
    ok,
    optional_id,
    optional_text,
    required_id,
    text_arg,
)


def _filters(*sources: tuple[Mapping[str, Any], str, str]) -> tuple[frozenset[str], frozenset[str]]:
    """Status and bounce filters from the first source (mapping, status key, bounce key) that has any."""
    for source, status_key, bounce_key in sources:
        if as_list(source.get(status_key)) or as_list(source.get(bounce_key)):
            return (
                filter_tokens(source.get(status_key), STATUSES, DEFAULT_STATUSES),
                filter_tokens(source.get(bounce_key), BOUNCES, DEFAULT_BOUNCES),
            )
    return DEFAULT_STATUSES, DEFAULT_BOUNCES


def _subscriber(view: AccountView, contact: Contact) -> dict[str, Any]:
    return subscriber_object(contact, view.state, view.options)


def index(view: AccountView, req: ApiRequest) -> Reply:
    """``GET /subscriber?status=…&bounceStatus=…`` (CSV); defaults: subscribed, not hard-bounced."""
    statuses, bounces = _filters((req.query, "status", "bounceStatus"))
    ids = [str(contact_id) for contact_id in view.store.index(statuses, bounces)]
    if not ids and view.options.index_empty_404:
        raise Refused(404, Msg.NO_CONTACTS)
    return ok(ids if view.options.index_shape == "array" else {"subscribers": ids})


def create(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /subscriber``: add or update, answer with the full subscriber object."""
    body = req.body
    subscription = Subscription(
        email=optional_text(body, "email"),
        sms_number=optional_text(body, "smsnumber"),
        listid=optional_id(body.get("listid"), Rejected(402)),
        tagid=optional_id(body.get("tagid"), Rejected(403)),
        fields=body.get("fields"),
    )
    contact = view.store.upsert(subscription, int(time.time()))
    return ok(_subscriber(view, contact))


def retrieve(view: AccountView, req: ApiRequest) -> Reply:
    """``GET /subscriber/{id}`` (id or Contact Key)."""
    contact = view.store.by_ref(req.param or "")
    if contact is None:
        raise RetrieveMiss()
    return ok(_subscriber(view, contact))


def update(view: AccountView, req: ApiRequest) -> Reply:
    """``PUT /subscriber/{id}``: ``newemail``, ``newsmsnumber``, ``fields``."""
    change = ContactChange(
        new_email=optional_text(req.body, "newemail"),
        new_sms_number=optional_text(req.body, "newsmsnumber"),
        fields=req.body.get("fields"),
    )
    view.store.update(req.param or "", change)
    return ok([True])


def delete(view: AccountView, req: ApiRequest) -> Reply:
    """``DELETE /subscriber/{id}``."""
    view.store.delete(req.param or "")
    return ok([True])


def unsubscribe(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /subscriber/unsubscribe``."""
    view.store.unsubscribe(text_arg(req.body, "email"), int(time.time()))
    return ok([True])


def tag(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /subscriber/tag`` with ``tagids`` (array) — a single ``tagid`` is accepted too."""
    email = text_arg(req.body, "email")
    raw = req.body.get("tagids", req.body.get("tagid"))
    tag_ids = id_list(raw, UnknownTag())
    if not tag_ids:
        raise MissingArgument("tagids")
    view.store.tag(email, tag_ids, int(time.time()))
    return ok([True])


def untag(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /subscriber/untag`` with one ``tagid``."""
    email = text_arg(req.body, "email")
    view.store.untag(email, required_id(req.body, "tagid", UnknownTag()))
    return ok([True])


def search(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /subscriber/search``: ``[id]`` as a number, 404 when unknown."""
    return ok([view.store.search(text_arg(req.body, "email"))])


def tagged(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /subscriber/tagged``: id → tagging time; filters from the query or either body naming."""
    tag_id = required_id({**req.query, **req.body}, "tagid", Rejected(403))
    statuses, bounces = _filters(
        (req.query, "status", "bounceStatus"),
        (req.body, "status", "bounceStatus"),
        (req.body, "statusFilter", "bounceStatusFilter"),
    )
    found = view.store.tagged(tag_id, statuses, bounces)
    return ok({str(contact_id): str(ts) for contact_id, ts in found.items()})
