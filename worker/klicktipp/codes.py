"""KlickTipp's numeric error codes and what they mean, as data for operators and the classifier.

Sources: KLICKTIPP_API.md §4.3 (the official ``NotAcceptableResponse`` list plus the codes KlickTipp's own
connectors know). Meanings are for humans (dead-letter listings, logs); classification lives in
``classify.py`` and never looks at these strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: Operation whose ``error 7`` means "field validation failed" instead of "email not found".
UPDATE_OPERATION: Final = "api.subscriber.update"
#: Operations whose ``error 7`` may mean an unknown tag as well as an unknown address.
TAG_OPERATIONS: Final = frozenset({"api.subscriber.tag", "api.subscriber.untag"})

#: Top-level ``error`` values of a 406 body.
ERROR_MEANINGS: Final[Mapping[int, str]] = MappingProxyType(
    {
        4: "Subscription not found (before 2026-01: 'unsubscribed, cannot re-subscribe')",
        5: "Email address validation failed",
        6: "Error sending the confirmation email",
        7: "Subscriber email not found",
        8: "Field validation failed",
        9: "Subscriber not subscribed",
        10: "Subscriber update failed (see the subcode)",
        11: "Invalid phone number",
        12: "Internal error",
        30: "Email address change not allowed",
        31: "Untagging a SmartTag is not allowed",
        32: "Email address or SMS number required",
        100: "Invalid API key",
        401: "User (contact) not found",
        402: "List (opt-in process) not found",
        403: "Tag not found",
        404: "User group not found",
        405: "Campaign not found",
        406: "Tier not found",
        501: "Email address required",
        502: "Username required",
        503: "Password required",
        504: "First name required",
        505: "Last name required",
        506: "Username exists",
        507: "Email address exists (already assigned to another contact)",
        508: "User update failed",
    }
)

#: Subcodes (``code``) of ``error 10``.
ERROR_10_CODE_MEANINGS: Final[Mapping[int, str]] = MappingProxyType(
    {
        4: "The email address is unsubscribed and cannot be re-subscribed",
        5: "Invalid email address",
        6: "Error sending the confirmation email",
        9: "SMS number already assigned to another contact",
        10: "The SMS number is unsubscribed and cannot be re-subscribed",
        11: "Invalid phone number",
        12: "Internal error",
        30: "Email address is blocked (blacklist)",
        31: "SmartTags are only assigned by the system",
        32: "Email address or SMS number required",
    }
)

#: Meanings that depend on the operation (``error 7`` is ambiguous, §4.3).
OPERATION_MEANINGS: Final[Mapping[tuple[int, str], str]] = MappingProxyType(
    {
        (7, UPDATE_OPERATION): "Field validation failed (error 7 on Update Contact)",
        **{(7, op): "Unknown email address or unknown tag (error 7 on tag/untag)" for op in TAG_OPERATIONS},
    }
)


def describe(error: int | None, code: int | None = None, operation: str | None = None) -> str | None:
    """Return the human meaning of ``(error, code)`` on ``operation``, or None when unknown."""
    if error is None:
        return None
    if operation is not None and (error, operation) in OPERATION_MEANINGS:
        return OPERATION_MEANINGS[(error, operation)]
    if error == 10 and code is not None and code in ERROR_10_CODE_MEANINGS:
        return ERROR_10_CODE_MEANINGS[code]
    return ERROR_MEANINGS.get(error)
