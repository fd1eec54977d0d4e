"""KlickTipp outbound webhooks (a flat parameter map) to ``klicktipp.*`` messages.

KlickTipp sends the parameters the account configured, by POST (form-encoded or JSON) or GET
(query string), and may put some into the URL with ``__param__`` placeholders: the query string
and the body are merged (the body wins). ``email`` is always present; the KlickTipp contact id is
under a configurable name. There is no event id and no timestamp: ``occurred_at`` is the receipt
time and nothing is deduplicated (delivery is at-least-once and unordered; workers are idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import parse_qsl

from ktsync.core.contract import MessageType
from ktsync.producers.webhooks.payloads.common import Batch, Event, PayloadError, Problem, validated

SOURCE = "klicktipp"
EMAIL_PARAM = "email"
FORM = "application/x-www-form-urlencoded"


def flat_params(*, content_type: str, body: bytes, query: bytes) -> dict[str, str]:
    """The merged parameters of the query string and a form or JSON body (first value of a repeat)."""
    params = _form(query)
    if body.strip():
        params.update(_body(content_type.split(";")[0].strip().lower(), body))
    return params


def klicktipp_event(params: Mapping[str, str], *, deletion: bool, id_param: str, now: float) -> Batch:
    """One ``klicktipp.deletion_requested`` (``deletion``) or ``klicktipp.contact_changed`` message."""
    email = params.get(EMAIL_PARAM, "").strip()
    if not email:
        raise PayloadError([Problem(None, EMAIL_PARAM, "is required")])
    kind = MessageType.DELETION_REQUESTED if deletion else MessageType.KLICKTIPP_CHANGED
    message = {
        "v": 1,
        "type": str(kind),
        "source": SOURCE,
        "email": email,
        "klicktipp_id": params.get(id_param, "").strip() or None,
        "occurred_at": now,
    }
    try:
        checked = validated(message, None)
    except PayloadError as exc:
        renamed = (
            Problem(p.index, id_param if p.field == "klicktipp_id" else p.field, p.reason)
            for p in exc.problems
        )
        raise PayloadError(renamed) from None
    return Batch(events=(Event(dedupe_id=None, messages=(checked,)),), received=1, collapse=False)


def _body(content_type: str, body: bytes) -> dict[str, str]:
    if content_type == "application/json" or content_type.endswith("+json"):
        return _json(body)
    if content_type in (FORM, ""):
        return _json(body) if not content_type and body.lstrip().startswith(b"{") else _form(body)
    raise PayloadError([Problem(None, "$", f"unsupported content type {content_type!r} (use form or JSON)")])


def _form(raw: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError([Problem(None, "$", "not valid form encoding (UTF-8)")]) from None
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key, value)
    return params


def _json(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError([Problem(None, "$", "not valid JSON")]) from None
    if not isinstance(data, dict):
        raise PayloadError([Problem(None, "$", "must be a flat JSON object of parameters")])
    nested = [key for key, value in data.items() if isinstance(value, dict | list)]
    if nested:
        raise PayloadError([Problem(None, key, "must be a single value (the map is flat)") for key in nested])
    return {str(key): "" if value is None else _text(value) for key, value in data.items()}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
