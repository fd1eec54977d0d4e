"""Which KlickTipp calls bring a contact from its known state to the desired one, and why. Pure.

The plan is data: the executor performs it, and a dry run prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ktsync.worker.state.base import ContactState
from ktsync.worker.sync.desired import Desired


@dataclass(frozen=True)
class Call:
    """One KlickTipp call: the operation id, its arguments, and why it is needed."""

    operation: str
    args: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    def describe(self) -> str:
        shown = {
            k: (f"{len(v)} values" if k == "fields" else v) for k, v in self.args.items() if v is not None
        }
        details = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.operation}({details}) - {self.reason}"


def identity_call(
    desired: Desired, stored: ContactState | None, *, listid: int | None, tagid: str | None
) -> Call | None:
    """Add-or-update by e-mail for a contact without a known KlickTipp id; update by id otherwise.

    ``listid`` is needed for add-or-update only (None there would run the default double opt-in)."""
    if stored is None or not stored.klicktipp_id or stored.is_tombstone:
        if listid is None:
            raise ValueError("add-or-update needs the source's opt-in process (listid)")
        return Call(
            "api.subscriber.create",
            {"email": desired.email, "smsnumber": desired.sms_number, "listid": listid, "tagid": tagid,
             "fields": dict(desired.fields)},
            "no KlickTipp id stored: add, or update the contact with this address",
        )  # fmt: skip
    newemail = desired.email if desired.email and desired.email != stored.email else None
    newsms = desired.sms_number if desired.sms_number and desired.sms_number != stored.sms_number else None
    fields_changed = desired.fields_hash != stored.fields_hash
    if not (newemail or newsms or fields_changed):
        return None
    reasons = [r for r, yes in (("e-mail changed", newemail), ("SMS number changed", newsms), ("fields changed", fields_changed)) if yes]  # fmt: skip
    return Call(
        "api.subscriber.update",
        {"subscriber_id": stored.klicktipp_id, "newemail": newemail, "newsmsnumber": newsms,
         "fields": dict(desired.fields) if fields_changed or newemail or newsms else None},
        f"{' and '.join(reasons)}: update by KlickTipp id {stored.klicktipp_id}",
    )  # fmt: skip


def first_tag(desired: frozenset[str], current: frozenset[str], tag_ids: Mapping[str, str]) -> str | None:
    """The tag to send along with add-or-update (saves one call for a contact with one new tag)."""
    missing = sorted((tag_ids[name] for name in desired - current if name in tag_ids), key=_numeric)
    return missing[0] if missing else None


def tag_calls(
    *, email: str | None, desired: frozenset[str], current: frozenset[str], tag_ids: Mapping[str, str]
) -> list[Call]:
    """One call adding every missing desired tag, one untag per owned tag that no longer applies."""
    if not email:
        return []
    calls: list[Call] = []
    add = sorted((tag_ids[n] for n in desired - current if n in tag_ids), key=_numeric)
    if add:
        names = sorted(desired - current)
        calls.append(Call("api.subscriber.tag", {"email": email, "tagids": add}, f"add {', '.join(names)}"))
    for name in sorted(current - desired):
        if name in tag_ids:
            calls.append(
                Call(
                    "api.subscriber.untag",
                    {"email": email, "tagid": tag_ids[name]},
                    f"no longer applies: {name}",
                )
            )
    return calls


def tag_ids_of(call: Call) -> frozenset[str]:
    """The tag ids a tag or untag call names."""
    ids = call.args.get("tagids", [call.args.get("tagid")])
    return frozenset(str(i) for i in ids if i is not None)


def applied_tags(call: Call, current: frozenset[str], tag_ids: Mapping[str, str]) -> frozenset[str]:
    """The tag names a contact carries after ``call`` (a tag or untag) succeeded."""
    named = tag_ids_of(call)
    names = {name for name, tag_id in tag_ids.items() if tag_id in named}
    return current | names if call.operation == "api.subscriber.tag" else current - names


def owned_names(tag_ids_on_contact: object, names_by_id: Mapping[str, str], prefix: str) -> frozenset[str]:
    """The owned (prefixed) manual tag names among the tag ids a contact carries."""
    ids = (
        tag_ids_on_contact if isinstance(tag_ids_on_contact, Mapping | list | set | frozenset | tuple) else ()
    )
    return frozenset(n for i in ids if (n := names_by_id.get(str(i))) is not None and n.startswith(prefix))


def _numeric(tag_id: str) -> tuple[int, int, str]:
    """Existing tags by id; tags still to be created (a dry run's placeholders) after them, as in a real run."""
    return (0, int(tag_id), tag_id) if tag_id.isdigit() else (1, 0, tag_id)
