"""Tolerant parsers from decoded KlickTipp JSON to typed values; a wrong shape raises ``ShapeError``.

Tolerated where sources disagree (KLICKTIPP_API.md §1.3, §3.3): numbers vs numeric strings for IDs,
``[x]`` vs ``x`` for one-value answers, ``[]`` for an empty map (PHP encodes empty maps as lists), a plain
ID array vs ``{"subscribers": [...]}``, and missing keys in the subscriber object (missing tag maps
are reported as ``tags_known=False``, never as "no tags"). ``ShapeError`` messages
describe the shape only, never values: answers may carry secrets (login) or personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .models import Account, DataField, OptInProcess, Subscriber, SubscriptionStatus, Tag


class ShapeError(ValueError):
    """A 2xx answer did not have the documented shape (the wire turns it into ``MalformedResponse``)."""


def unwrap(payload: object) -> object:
    """``[x]`` -> ``x``: many answers are one-element arrays."""
    if isinstance(payload, list) and len(payload) == 1:
        return payload[0]
    return payload


def expect_ok(payload: object) -> None:
    """``[true]``, ``true`` or an empty body (the spec declares no content for several operations)."""
    if payload is None or unwrap(payload) is True:
        return
    raise ShapeError("expected [true]")


def as_id(value: object, what: str = "id") -> str:
    """A non-empty ID from a string or an integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ShapeError(f"{what} is not a string or number")
    text = str(value).strip()
    if not text:
        raise ShapeError(f"{what} is empty")
    return text


def parse_id(payload: object) -> str:
    """``[49]``, ``["49"]``, ``49`` or ``"49"``."""
    return as_id(unwrap(payload))


def parse_optional_id(payload: object) -> str | None:
    """Like ``parse_id``, but an empty array means "none"."""
    if payload == [] or payload is None:
        return None
    return parse_id(payload)


def parse_id_list(payload: object) -> list[str]:
    """A plain ID array or ``{"subscribers": [...]}``."""
    if isinstance(payload, dict) and "subscribers" in payload:
        payload = payload["subscribers"]
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise ShapeError("expected a list of ids")
    return [as_id(item) for item in payload]


def parse_str_map(payload: object) -> dict[str, str]:
    """``{"21": "mytag", …}`` (IDs or field keys to names); ``[]`` is an empty map."""
    return {key: _as_text(value) for key, value in _as_map(payload).items()}


def parse_timestamp_map(payload: object) -> dict[str, int]:
    """``{"<id>": "<unix seconds>", …}``; ``[]`` is an empty map."""
    result: dict[str, int] = {}
    for key, value in _as_map(payload).items():
        seconds = _as_int(value)
        if seconds is None:
            raise ShapeError("expected unix seconds as map values")
        result[key] = seconds
    return result


def parse_url(payload: object) -> str:
    """``["https://…"]`` or ``"https://…"``."""
    value = unwrap(payload)
    if not isinstance(value, str) or not value:
        raise ShapeError("expected a URL string")
    return value


def parse_subscriber(payload: object) -> Subscriber:
    """The subscriber object of §3.4; only ``id`` is required."""
    data = _as_map(unwrap(payload), "subscriber")
    if "id" not in data:
        raise ShapeError("subscriber has no id")
    status = _as_text(data.get("status"))
    subscription = SubscriptionStatus.from_raw(status)
    if subscription is SubscriptionStatus.UNKNOWN and _as_text(data.get("unsubscription")).strip():
        subscription = SubscriptionStatus.UNSUBSCRIBED  # d3 1.2.0's fallback: an unsubscription date
    manual_tags = _lenient_timestamps(data.get("manual_tags"))
    smart_tags = _lenient_timestamps(data.get("smart_tags"))
    return Subscriber(
        id=as_id(data["id"], "subscriber id"),
        email=_as_text(data.get("email")) or None,
        status=status,
        subscription=subscription,
        bounce=_as_text(data.get("bounce")),
        sms_phone=_as_text(data.get("sms_phone")) or None,
        listid=_as_text(data.get("listid")) or None,
        fields=MappingProxyType(
            {
                k: _as_text(v)
                for k, v in data.items()
                if k.startswith("field") and not isinstance(v, dict | list)
            }
        ),
        # `tags` should list every tag; the two maps are a fallback when it is missing or partial.
        tags=frozenset(_tag_ids(data.get("tags"))) | manual_tags.keys() | smart_tags.keys(),
        tags_known="tags" in data or "manual_tags" in data,
        manual_tags=MappingProxyType(manual_tags),
        smart_tags=MappingProxyType(smart_tags),
        raw=MappingProxyType(dict(data)),
    )


def parse_tag(payload: object) -> Tag:
    """``{"tagid": "21", "name": "mytag", "text": "…"}`` (``id`` accepted for ``tagid``)."""
    data = _as_map(unwrap(payload), "tag")
    return Tag(
        id=as_id(_first(data, "tagid", "id"), "tag id"),
        name=_as_text(data.get("name")),
        text=_as_text(data.get("text")),
    )


def parse_data_field(payload: object) -> DataField:
    """``{"id": "12345", "name": "label"}``."""
    data = _as_map(unwrap(payload), "data field")
    return DataField(id=as_id(_first(data, "id", "fieldid"), "field id"), name=_as_text(data.get("name")))


def parse_optin_process(payload: object) -> OptInProcess:
    """``{listid, name, usesingleoptin, pendingurl, thankyouurl, resendconfirmationemail, usechangeemail}``."""
    data = _as_map(unwrap(payload), "opt-in process")
    return OptInProcess(
        id=as_id(_first(data, "listid", "id"), "list id"),
        name=_as_text(data.get("name")),
        use_single_optin=_as_bool(data.get("usesingleoptin")),
        pending_url=_as_text(data.get("pendingurl")),
        thankyou_url=_as_text(data.get("thankyouurl")),
        resend_confirmation_email=_as_bool(data.get("resendconfirmationemail")),
        use_change_email=_as_bool(data.get("usechangeemail")),
        raw=MappingProxyType(dict(data)),
    )


def parse_account(payload: object) -> Account:
    """The ``account`` object of the login answer; every key optional."""
    data = _as_map(payload, "account") if payload is not None else {}
    return Account(
        uid=_as_text(data.get("uid")),
        username=_as_text(data.get("username")),
        email=_as_text(data.get("email")),
        raw=MappingProxyType(dict(data)),
    )


def mapping_of(payload: object, what: str) -> Mapping[str, Any]:
    """A JSON object, or ``ShapeError`` naming ``what``."""
    return _as_map(payload, what)


def _as_map(payload: object, what: str = "answer") -> Mapping[str, Any]:
    if payload == [] or payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ShapeError(f"{what} is not a JSON object")
    return {str(key): value for key, value in payload.items()}


def _first(data: Mapping[str, Any], *keys: str) -> object:
    return next((data[key] for key in keys if data.get(key) not in (None, "")), None)


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _tag_ids(value: object) -> list[str]:
    if isinstance(value, dict):
        return [str(key) for key in value]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int) and not isinstance(item, bool)]
    return []


def _lenient_timestamps(value: object) -> dict[str, int]:
    """Tag maps inside a contact: a malformed timestamp becomes 0 rather than hiding the tag."""
    if not isinstance(value, dict):
        return {}
    return {str(key): _as_int(ts) or 0 for key, ts in value.items()}
