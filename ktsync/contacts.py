"""One contact's story as ktsync knows it: its state, dead letters and timeline (``ktsync contact show``
and the console's contact page). Read-only.

A contact is found by its state, and also one that only failed so far (dead letters and a timeline,
no state yet): by a CRM id (``source/id``, or a bare id with a source or used by one source only), an
e-mail address, or a KlickTipp id.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from ktsync.core.errors import KtsyncError


class AmbiguousContact(KtsyncError, ValueError):
    """A CRM id or address that several contacts share: the caller must say which source."""


def contact_report(
    client: redis.Redis, prefix: str, who: str, source: str | None, *, klicktipp_id: bool = False
) -> dict[str, Any] | None:
    """State, dead letters and timeline of one contact; None when ktsync knows nothing of it.
    ``klicktipp_id``: WHO is a KlickTipp subscriber id (found by the state's index)."""
    from ktsync.worker.deadletter import RedisDeadLetterStore
    from ktsync.worker.erasure.eraser import READ_LIMIT
    from ktsync.worker.erasure.plan import contact_of
    from ktsync.worker.state import RedisStateStore
    from ktsync.worker.telemetry import read_timeline

    state = RedisStateStore(client, prefix)
    letters = RedisDeadLetterStore(client, prefix).list(limit=READ_LIMIT)
    if klicktipp_id:
        found = state.find(klicktipp_id=who.strip())
        contact = None if found is None else (found.source, found.crm_contact_id)
    else:
        contact = _locate(client, prefix, state, letters, who.strip(), source)
    if contact is None:
        return None
    record = state.get(*contact)
    return {
        "contact": {"source": contact[0], "crm_contact_id": contact[1]},
        "state": json.loads(record.to_json()) if record else None,
        "dead_letters": [d.to_dict() for d in letters if contact_of(d.message) == contact],
        "timeline": read_timeline(client, prefix, *contact),
    }


def _locate(
    client: redis.Redis, prefix: str, state: Any, letters: list[Any], who: str, source: str | None
) -> tuple[str, str] | None:
    """(source, crm_contact_id) of WHO: by its state, else by its dead letters and timeline."""
    from ktsync.worker.erasure.plan import address, contact_of
    from ktsync.worker.telemetry import timeline_key

    if "@" in who:
        found = state.find(email=who.lower())
        if found is not None:
            return (found.source, found.crm_contact_id)
        mail = who.lower()
        return _one(who, {contact_of(d.message) for d in letters if address(d.message.get("email")) == mail})
    name, sep, crm_id = who.partition("/")
    if sep and not source:
        source, who = name, crm_id
    if source:
        known = state.get(source, who) or any(contact_of(d.message) == (source, who) for d in letters)
        return (source, who) if known or client.exists(timeline_key(prefix, source, who)) else None
    sources = _sources_with_keys(client, prefix, who, [state.key("*", who), timeline_key(prefix, "*", who)])
    sources |= {c[0] for d in letters if (c := contact_of(d.message)) and c[1] == who}
    return _one(who, {(s, who) for s in sources})


def _sources_with_keys(client: redis.Redis, prefix: str, crm_id: str, patterns: list[str]) -> set[str]:
    """The sources in the keys matching any of ``patterns`` (each a key function's name with the
    source ``*``), all found in one SCAN."""
    ends = [pattern.split("*", 1) for pattern in patterns]
    sources = set()
    for key in client.scan_iter(match=f"{prefix}:*:{crm_id}", count=1000):
        name = key.decode()
        for head, tail in ends:
            if name.startswith(head) and name.endswith(tail) and len(name) >= len(head) + len(tail):
                sources.add(name[len(head) : -len(tail)])
    return sources


def _one(who: str, contacts: set[tuple[str, str] | None]) -> tuple[str, str] | None:
    found = sorted(c for c in contacts if c is not None)
    if len(found) > 1:
        raise AmbiguousContact(
            f"{who!r} is {', '.join(f'{s}/{c}' for s, c in found)}: give source/id (or --source)"
        )
    return found[0] if found else None
