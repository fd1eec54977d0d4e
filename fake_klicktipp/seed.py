r"""Seed files: the JSON that defines the fake accounts' starting data, and how it becomes ``State``\ s.

Format (the shipped default is ``fake_klicktipp/seed.json``; every top-level key except
``accounts``, ``lists`` and ``fields`` may be omitted)::

    {
      "accounts": [{                       # one or more, each with data of its own (the first is
                                           # the primary: control calls without ?account= show it)
        "username": "demo", "password": "demo-secret",     # session login (POST /account/login)
        "developer_key": "0123…", "customer_key": "…",     # optional partner triple (X-Un = username)
        "profile": {"uid": "…", …},                        # the "account" object login answers with
        "lists": […], "tags": […], …       # optional: the account's own starting data (any key of
      }],                                  # ACCOUNT_DATA_KEYS), else the top-level one below
      "lists": [{"id": 3, "name": "", "single_opt_in": false,          # exactly one unnamed list:
                 "pending_url": "…", "thankyou_url": "…"}],          # the default DOI process
      "fields": [{"key": "fieldFirstName", "label": "First Name", "type": "line"}],
      "tags": [{"id": 10, "name": "Webinar 2026", "text": "", "smart": false}],
      "contacts": [{"id": 1000001, "email": "…", "sms_phone": "+49…", "listid": 23,
                    "status": "subscribed|pending|unsubscribed",
                    "bounce": "nobounce|softbounce|hardbounce|spambounce",
                    "created": 1767225600, "confirmed": null, "unsubscribed": null,
                    "fields": {"fieldFirstName": "…"}, "tags": {"10": 1767225600}}],
      "options": {"german": false, …}      # see fake_klicktipp.options; applied on top of the
    }                                      # start-up profile ("profile" here replaces it first)

Every account starts with its own copy of the top-level ``lists``, ``fields``, ``tags``,
``contacts`` and ``next_contact_id``, or with the ones its entry names: a contact one account creates
is never seen by another. Ids (contacts, tags) count per account, so two accounts may both have a
contact 1000003, each its own.

Field types: line, paragraph, email, number, decimal, url, date, datetime, time, html, phone.
Contact ``fields`` go through the same validation as API input. ``confirmed`` defaults to
``created`` for subscribed and unsubscribed contacts; ``unsubscribed`` defaults to ``created``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

from fake_klicktipp.catalog import Catalog
from fake_klicktipp.errors import FakeError
from fake_klicktipp.fields import validate_fields
from fake_klicktipp.fieldtypes import FIELD_TYPES, FieldType, normalize_sms_number
from fake_klicktipp.model import BOUNCES, STATUSES, Account, Contact, DataField, OptInProcess, State, Tag
from fake_klicktipp.options import DEFAULT_PROFILE, Options, Profile, profile_options, updated_options
from fake_klicktipp.store import Store

PENDING_URL = "https://fake-klicktipp.example/pending/{id}"
THANKYOU_URL = "https://fake-klicktipp.example/thankyou/{id}"


class SeedError(ValueError):
    """The seed document is not valid."""


#: The keys of a seed an account entry may name for itself (the starting data of that account).
ACCOUNT_DATA_KEYS: Final = ("lists", "fields", "tags", "contacts", "next_contact_id")


@dataclass(frozen=True)
class Seeded:
    """A fresh state per account (in seed order) and the options a seed asks for."""

    states: Mapping[str, State]
    options: Options

    @property
    def state(self) -> State:
        """The primary (first) account's state."""
        return next(iter(self.states.values()))


def default_seed() -> dict[str, Any]:
    """A fresh copy of the shipped default seed."""
    text = resources.files("fake_klicktipp").joinpath("seed.json").read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


def read_seed(path: Path | None) -> dict[str, Any]:
    """The seed document at ``path``, or the default seed."""
    if path is None:
        return default_seed()
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise SeedError(f"{path}: a seed must be a JSON object")
    return document


def _items(seed: Mapping[str, Any], key: str, *, required: bool) -> list[Mapping[str, Any]]:
    items = seed.get(key, None if required else [])
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise SeedError(f"seed key {key!r} must be a list of objects")
    return items


def _account(raw: Mapping[str, Any]) -> Account:
    profile = {str(k): "" if v is None else str(v) for k, v in dict(raw.get("profile", {})).items()}
    developer_key = raw.get("developer_key")
    if developer_key is not None:
        bytes.fromhex(developer_key)  # ValueError for an odd-length or non-hex key
    profile.setdefault("username", str(raw["username"]))
    return Account(
        username=str(raw["username"]),
        password=str(raw["password"]),
        developer_key=developer_key,
        customer_key=raw.get("customer_key"),
        profile=profile,
    )


def _optin(raw: Mapping[str, Any]) -> OptInProcess:
    listid = int(raw["id"])
    return OptInProcess(
        id=listid,
        name=str(raw.get("name", "")),
        single_opt_in=bool(raw.get("single_opt_in", False)),
        pending_url=str(raw.get("pending_url", PENDING_URL.format(id=listid))),
        thankyou_url=str(raw.get("thankyou_url", THANKYOU_URL.format(id=listid))),
        resend_confirmation_email=bool(raw.get("resend_confirmation_email", False)),
        use_change_email=bool(raw.get("use_change_email", False)),
    )


def _field(raw: Mapping[str, Any]) -> DataField:
    key, kind = str(raw["key"]), str(raw.get("type", "line"))
    if not key.startswith("field") or kind not in FIELD_TYPES:
        raise SeedError(f"field {key!r}: keys start with 'field', types are {sorted(FIELD_TYPES)}")
    return DataField(key=key, label=str(raw.get("label", key)), type=cast(FieldType, kind))


def _tag(raw: Mapping[str, Any]) -> Tag:
    return Tag(
        id=int(raw["id"]), name=str(raw["name"]), text=str(raw.get("text", "")), smart=bool(raw.get("smart"))
    )


def _contact(raw: Mapping[str, Any], state: State) -> Contact:
    status, bounce = raw.get("status", "subscribed"), raw.get("bounce", "nobounce")
    if status not in STATUSES or bounce not in BOUNCES:
        raise SeedError(f"contact {raw.get('id')}: status {status!r} or bounce {bounce!r} is unknown")
    created = int(raw.get("created", 0))
    default_confirmed = None if status == "pending" else created
    sms = str(raw.get("sms_phone") or "")
    contact = Contact(
        id=int(raw["id"]),
        email=str(raw.get("email") or ""),
        sms_phone=normalize_sms_number(sms) if sms else "",
        listid=int(raw.get("listid", state.default_list_id)),
        status=status,
        bounce=bounce,
        created=created,
        confirmed=raw.get("confirmed", default_confirmed),
        unsubscribed=raw.get("unsubscribed", created if status == "unsubscribed" else None),
        fields=validate_fields(state.fields, raw.get("fields")),
        tags={int(tag_id): int(ts) for tag_id, ts in dict(raw.get("tags", {})).items()},
    )
    unknown_tags = set(contact.tags) - set(state.tags)
    if unknown_tags or contact.listid not in state.lists:
        raise SeedError(f"contact {contact.id}: unknown tags {sorted(unknown_tags)} or list {contact.listid}")
    return contact


def _definitions(seed: Mapping[str, Any], account: Account) -> State:
    lists = {optin.id: optin for optin in map(_optin, _items(seed, "lists", required=True))}
    defaults = [optin.id for optin in lists.values() if optin.name == ""]
    if len(defaults) != 1:
        raise SeedError("exactly one list must have an empty name: the default DOI process")
    tags = {tag.id: tag for tag in map(_tag, _items(seed, "tags", required=False))}
    return State(
        accounts={account.username: account},
        lists=lists,
        default_list_id=defaults[0],
        fields={f.key: f for f in map(_field, _items(seed, "fields", required=True))},
        tags=tags,
        next_tag_id=max(tags, default=0) + 1,
    )


def _account_state(raw: Mapping[str, Any], seed: Mapping[str, Any]) -> State:
    """One account's fresh state: its entry's own data keys over the seed's top-level ones."""
    data = {**seed, **{key: raw[key] for key in ACCOUNT_DATA_KEYS if key in raw}}
    state = _definitions(data, _account(raw))
    store = Store(state, Catalog(state))
    for raw_contact in _items(data, "contacts", required=False):
        contact = _contact(raw_contact, state)
        if contact.id in state.contacts or store.by_email(contact.email) or contact.sms_phone in state.by_sms:
            raise SeedError(f"contact {contact.id}: id, email or SMS number is not unique")
        store.insert(contact)
    state.next_contact_id = int(data.get("next_contact_id", state.next_contact_id))
    return state


def account_states(entries: Any, seed: Mapping[str, Any]) -> dict[str, State]:
    """A fresh state for each account entry, starting from ``seed``'s data; raises SeedError.

    Also what ``POST /_fake/accounts`` adds: new accounts start from the data of the last reset's seed.
    """
    try:
        raws = _items({"accounts": entries}, "accounts", required=True)
        states: dict[str, State] = {}
        for raw in raws:
            state = _account_state(raw, seed)
            (username,) = state.accounts
            if username in states:
                raise SeedError(f"account {username!r} is named twice")
            states[username] = state
    except SeedError:
        raise
    except (KeyError, TypeError, ValueError, FakeError) as exc:
        raise SeedError(f"invalid seed: {exc!r}") from exc
    if not states:
        raise SeedError("seed key 'accounts' must name at least one account")
    return states


def build(seed: Mapping[str, Any], profile: Profile = DEFAULT_PROFILE) -> Seeded:
    """A fresh ``State`` per account and the ``profile``'s options with the seed's on top; raises SeedError."""
    states = account_states(seed.get("accounts"), seed)
    try:
        options = updated_options(profile_options(profile), dict(seed.get("options", {})))
    except (TypeError, ValueError) as exc:
        raise SeedError(f"invalid seed: {exc!r}") from exc
    return Seeded(states=states, options=options)
