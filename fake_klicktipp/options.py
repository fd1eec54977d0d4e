"""Behaviour switches where the sources disagree or the account's language matters.

Each option's default is the variant that validates against KlickTipp's OpenAPI spec:

=========================== ============ ========================================================
option                      default      meaning
=========================== ============ ========================================================
german                      false        German messages in string-array errors
auth_failure_status         403          status for a missing/expired session (401 or 403)
index_shape                 "object"     ``GET /subscriber`` as ``{"subscribers": [...]}`` (spec) or
                                         ``"array"`` for the plain ``[...]`` of the recorded API
index_empty_404             true         ``GET /subscriber`` with no match answers 404 (recorded)
unsubscribed_error          {"error":    406 body for re-subscribing an unsubscribed email
                            10,"code":4}
sms_null_when_absent        false        ``sms_*`` keys ``null`` (recorded) instead of ``""`` (spec)
update_validation_error7    false        field validation on ``PUT /subscriber`` answers
                                         ``{"error": 7}`` instead of the error-8 object
request_log_limit           100000       the request log keeps this many newest entries
=========================== ============ ========================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


def _default_unsubscribed_error() -> dict[str, Any]:
    return {"error": 10, "code": 4}


@dataclass(frozen=True)
class Options:
    """The fake's behaviour switches (see the module docstring)."""

    german: bool = False
    auth_failure_status: int = 403
    index_shape: Literal["object", "array"] = "object"
    index_empty_404: bool = True
    unsubscribed_error: Any = field(default_factory=_default_unsubscribed_error)
    sms_null_when_absent: bool = False
    update_validation_error7: bool = False
    request_log_limit: int = 100_000


def _check(name: str, value: Any) -> Any:
    if name in ("german", "index_empty_404", "sms_null_when_absent", "update_validation_error7"):
        if not isinstance(value, bool):
            raise ValueError(f"option {name} must be true or false")
    elif name == "auth_failure_status" and value not in (401, 403):
        raise ValueError("option auth_failure_status must be 401 or 403")
    elif name == "index_shape" and value not in ("object", "array"):
        raise ValueError('option index_shape must be "object" or "array"')
    elif name == "unsubscribed_error" and not isinstance(value, dict | list):
        raise ValueError("option unsubscribed_error must be a JSON object or array")
    elif name == "request_log_limit" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError("option request_log_limit must be a positive integer")
    return value


def updated_options(current: Options, changes: Mapping[str, Any]) -> Options:
    """``current`` with ``changes`` applied; raises ValueError for unknown names or bad values."""
    known = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)}")
    return dataclasses.replace(current, **{name: _check(name, value) for name, value in changes.items()})


def options_json(options: Options) -> dict[str, Any]:
    """The options as a JSON object."""
    return dataclasses.asdict(options)
