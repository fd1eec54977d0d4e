"""Behaviour switches where the sources disagree, and the profiles: named presets of those switches.

Two profiles: ``documented`` (the default) answers what KlickTipp's OpenAPI spec documents and
validates against it; ``recorded`` answers the bodies recorded from the real API (KLICKTIPP_API.md
§11, byte for byte) wherever they are known, and like ``documented`` elsewhere. Setting ``profile``
applies the whole preset (``request_log_limit`` excepted); switches given in the same change, or
later, override single ones, so ``profile`` names the preset the switches started from.

=========================== ============== ============== ==============================================
option                      documented     recorded       meaning
=========================== ============== ============== ==============================================
profile                     "documented"   "recorded"     the preset last applied
german                      false          true           German messages in string-array errors
auth_failure_status         403            403            status for a missing/expired session (401, 403)
index_shape                 "object"       "array"        ``GET /subscriber`` as ``{"subscribers": [...]}``
                                                          or as the plain ``[...]``
index_empty_404             true           true           ``GET /subscriber`` with no match answers 404
unsubscribed_error          {"error": 10,  ["Error 4"]    406 body for re-subscribing an unsubscribed
                            "code": 4}                    email (any JSON object or array)
sms_null_when_absent        false          true           without an SMS number ``sms_phone``,
                                                          ``sms_status``, ``sms_bounce`` are ``null``
                                                          instead of ``""`` (``sms_referrer`` is always
                                                          ``null``, ``sms_date``, ``sms_unsubscription``
                                                          always ``""``)
omit_tag_maps               false          true           the subscriber object lacks ``tags``,
                                                          ``manual_tags`` and ``smart_tags``
api_ip_when_pending         false          true           ``ip`` is ``"0.0.0.0 - By API Request"`` also
                                                          while Opt-In Pending (else ``"0.0.0.0"``)
update_validation_error7    false          true           field validation on ``PUT /subscriber``
                                                          answers ``{"error": 7}``, not the error-8 object
email_required_status       406            401            status of ``{"error": 32}`` (``POST
                                                          /subscriber`` without email and SMS number)
unknown_tag_error           403            7              error code when tag or untag names an unknown
                                                          tag id
raw_missing_argument        false          true           401 "Missing required argument X" as the raw,
                                                          not-JSON ``[Missing required argument X]``
raw_search_miss             false          true           ``POST /subscriber/search`` miss as the raw,
                                                          not-JSON ``[<message>]``
empty_retrieve_miss         false          true           ``GET /subscriber/{unknown}``: 404, empty body
empty_server_errors         false          true           injected 5xx faults have an empty body
request_log_limit           100000         (kept)         the request log keeps this many newest entries
=========================== ============== ============== ==============================================
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args, get_type_hints

Profile = Literal["documented", "recorded"]
PROFILES: Final[tuple[str, ...]] = get_args(Profile)
DEFAULT_PROFILE: Final[Profile] = "documented"

# What the recorded profile sets differently from the documented defaults (KLICKTIPP_API.md §11).
RECORDED_SWITCHES: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "german": True,
        "index_shape": "array",
        "unsubscribed_error": ["Error 4"],
        "sms_null_when_absent": True,
        "omit_tag_maps": True,
        "api_ip_when_pending": True,
        "update_validation_error7": True,
        "email_required_status": 401,
        "unknown_tag_error": 7,
        "raw_missing_argument": True,
        "raw_search_miss": True,
        "empty_retrieve_miss": True,
        "empty_server_errors": True,
    }
)


def _default_unsubscribed_error() -> dict[str, Any]:
    return {"error": 10, "code": 4}


@dataclass(frozen=True)
class Options:
    """The fake's behaviour switches (see the module docstring); the defaults are the documented profile."""

    profile: Profile = DEFAULT_PROFILE
    german: bool = False
    auth_failure_status: int = 403
    index_shape: Literal["object", "array"] = "object"
    index_empty_404: bool = True
    unsubscribed_error: Any = field(default_factory=_default_unsubscribed_error)
    sms_null_when_absent: bool = False
    omit_tag_maps: bool = False
    api_ip_when_pending: bool = False
    update_validation_error7: bool = False
    email_required_status: int = 406
    unknown_tag_error: int = 403
    raw_missing_argument: bool = False
    raw_search_miss: bool = False
    empty_retrieve_miss: bool = False
    empty_server_errors: bool = False
    request_log_limit: int = 100_000


_CHOICES: Final[Mapping[str, tuple[Any, ...]]] = MappingProxyType(
    {
        "profile": PROFILES,
        "auth_failure_status": (401, 403),
        "index_shape": ("object", "array"),
        "email_required_status": (401, 406),
        "unknown_tag_error": (403, 7),
    }
)
_FLAGS: Final = frozenset(name for name, hint in get_type_hints(Options).items() if hint is bool)


def _check(name: str, value: Any) -> Any:
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"option {name} must be true or false")
    elif name in _CHOICES:
        choices = _CHOICES[name]
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"option {name} must be one of {', '.join(map(repr, choices))}")
    elif name == "unsubscribed_error" and not isinstance(value, dict | list):
        raise ValueError("option unsubscribed_error must be a JSON object or array")
    elif name == "request_log_limit" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError("option request_log_limit must be a positive integer")
    return value


def as_profile(name: str) -> Profile:
    """``name`` as a profile name; ValueError for an unknown one."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return cast(Profile, name)


def profile_options(profile: Profile, *, request_log_limit: int | None = None) -> Options:
    """Every switch as ``profile`` sets it (``request_log_limit`` as given, else its default)."""
    switches = copy.deepcopy(dict(RECORDED_SWITCHES)) if profile == "recorded" else {}
    limit: dict[str, Any] = {} if request_log_limit is None else {"request_log_limit": request_log_limit}
    return dataclasses.replace(Options(), profile=profile, **switches, **limit)


def updated_options(current: Options, changes: Mapping[str, Any]) -> Options:
    """``current`` with ``changes`` applied (a ``profile`` first, as a whole preset); ValueError if bad."""
    known = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)}")
    checked = {name: _check(name, value) for name, value in changes.items()}
    if "profile" in checked:
        current = profile_options(checked["profile"], request_log_limit=current.request_log_limit)
    return dataclasses.replace(current, **checked)


def options_json(options: Options) -> dict[str, Any]:
    """The options as a JSON object."""
    return dataclasses.asdict(options)
