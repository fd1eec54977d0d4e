"""Dead letters grouped by cause, each group with what it means and the fix to make. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ktsync.worker.deadletter.base import Census, DeadLetter
from ktsync.worker.klicktipp.codes import describe

# reason -> (what happened, what the operator does about it). The README's runbook says the same.
# A plain replay resends the stored message, old values included: where the fix is made in the CRM,
# the fix says `replay --refetch` (reload the contact from the CRM's API), and what to do without one.
_WITHOUT_API = (
    "without the CRM's API: the CRM's next change of the contact brings the fixed value (then purge), "
    "or `dlq show ID --message`, edit, `ktsync enqueue`, purge"
)
RUNBOOK: dict[str, tuple[str, str]] = {
    "invalid_message": (
        "the message breaks contract v1, or the call carries no message of its task's type "
        "(a string, a list, extra arguments, another type's task, a body that is not JSON)",
        "fix the producer (`ktsync dlq show ID`: what arrived, and why) and purge: a call that breaks the "
        "contract is never replayed; a valid message sent to another type's task replays to its own task",
    ),
    "mapping": (
        "a CRM value cannot be converted to its KlickTipp field type",
        "fix the value in the CRM, then replay --reason mapping --refetch (a plain replay resends the old "
        f"value); {_WITHOUT_API}. Fixed the field type in the config instead: restart workers, replay",
    ),
    "config": (
        "the configuration does not fit the account (listid, field, label), e.g. a mapped data field "
        "deleted in KlickTipp (the workers log an ALARM naming it)",
        "`ktsync check` lists what no longer fits; fix config/ktsync.yaml (restart workers) or the "
        "account, then replay --reason config",
    ),
    "validation": (
        "KlickTipp rejected a value (406)",
        "fix the value in the CRM, then replay --refetch (a plain replay resends the old value); "
        f"{_WITHOUT_API}. Fixed the field mapping instead: restart workers, replay",
    ),
    "conflict": (
        "the address or SMS number belongs to another KlickTipp contact",
        "merge or clean up the two contacts (CRM and KlickTipp), then replay "
        "(--refetch when the CRM's address changed)",
    ),
    "auth": (
        "KlickTipp refused this operation although the worker's credentials work (the plan lacks it); "
        "a refused credential dead-letters nothing, its workers step aside (see ktsync status)",
        "enable the feature for the account (or change the mapping), then replay --reason auth",
    ),
    "reference_not_found": (
        "an opt-in process or tag vanished from the account",
        "check the listid and tags in KlickTipp, then replay",
    ),
    "retries_exhausted": (
        "KlickTipp or the network kept failing",
        "check KlickTipp's status and the network; replay when healthy",
    ),
    "rejected": (
        "KlickTipp refused the request (406 without a code)",
        "read the message; usually data to fix in the CRM, then replay --refetch",
    ),
    "not_subscribed": ("the contact is not subscribed for this action", "usually nothing to do; purge"),
    "subscription_not_found": (
        "KlickTipp answered error 4 ('subscription not found') on add-or-update, and the contact had not "
        "unsubscribed",
        "look at the contact and the opt-in process in KlickTipp; replay once they are sound",
    ),
    "contact_or_tag_not_found": (
        "KlickTipp answered error 7 on a tag call: an unknown address or an unknown tag",
        "check the tags and the contact's address in KlickTipp; replay",
    ),
    "bad_request": (
        "KlickTipp called the request itself wrong (400, or 401 'Missing required argument')",
        "a ktsync bug or a proxy that rewrites bodies: inspect with `ktsync dlq show`, report it",
    ),
    "contact_not_found": (
        "KlickTipp has no contact with that address",
        "check for an e-mail change made outside the CRM; replay",
    ),
    "unsubscribed": (
        "the contact (its e-mail address or SMS number) unsubscribed in KlickTipp, which forbids "
        "subscribing it again",
        "nothing to do in KlickTipp: the CRM should show the contact as unsubscribed; purge",
    ),
    "not_found": (
        "KlickTipp answered 404 for something ktsync addressed (a contact, tag or list by id)",
        "check whether it was deleted in KlickTipp; `ktsync check` for the configuration; replay",
    ),
    "method_not_allowed": (
        "KlickTipp answered 405: a wrong method on the route, usually a wrong klicktipp.base_url",
        "check klicktipp.base_url (and any proxy in front of KlickTipp), then replay",
    ),
    "unexpected_status": (
        "KlickTipp (or a proxy in front of it) answered with a status it does not use (3xx, 410, ...)",
        "check klicktipp.base_url and any proxy; replay when the answers are KlickTipp's again",
    ),
    "callback": (
        "the CRM callback URL kept failing",
        "fix the callback endpoint, then replay --reason callback",
    ),
    "poison": (
        "the message killed the worker process repeatedly",
        "inspect the payload (dlq show); fix the bug before replaying",
    ),
    "unexpected": (
        "an error ktsync does not know (a bug?)",
        "read the traceback (dlq show), report it; replay once fixed",
    ),
}
UNKNOWN = ("an unclassified failure", "inspect with `ktsync dlq show`")


@dataclass(frozen=True)
class Group:
    reason: str
    code: int | None
    count: int
    oldest: float
    newest: float
    meaning: str
    fix: str


def group(letters: Iterable[DeadLetter]) -> list[Group]:
    """Dead letters counted by (reason, KlickTipp code), biggest group first."""
    buckets: dict[tuple[str, int | None], list[DeadLetter]] = {}
    for letter in letters:
        buckets.setdefault((letter.reason, letter.code), []).append(letter)
    groups = [
        _group(reason, code, len(items), [i.last_failed_at for i in items], items[0].error)
        for (reason, code), items in buckets.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.reason, g.code or 0))


def group_census(census: Census, sample: Callable[[str], DeadLetter | None]) -> list[Group]:
    """The groups of a store's :meth:`census`, biggest first; ``sample`` reads the one letter per group
    whose error says what its KlickTipp code means (only groups with a code read one)."""
    groups = []
    for cause in census:
        letter = sample(cause.sample) if cause.code is not None else None
        error = letter.error if letter is not None else {}
        groups.append(_group(cause.reason, cause.code, cause.count, [cause.oldest, cause.newest], error))
    return groups


def _group(reason: str, code: int | None, count: int, times: list[float], sample: Mapping[str, Any]) -> Group:
    meaning, fix = RUNBOOK.get(reason, UNKNOWN)
    detail = describe(code, sample.get("code"), sample.get("operation")) if code is not None else None
    return Group(
        reason,
        code,
        count,
        min(times),
        max(times),
        f"{meaning}{f' - {detail}' if detail else ''}",
        fix,
    )
