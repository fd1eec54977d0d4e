"""Contract v1 cases, shared by the contract tests and the JSON Schema test: what is accepted, what is not.

Every case here must get the same verdict from ``parse_message`` and from the published JSON Schema
(tests/unit/test_contract_schema.py), except the few in SCHEMA_GAPS, which the README lists.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

DROP = object()  # as a value in a change: remove the key

UPSERT: dict[str, Any] = {
    "v": 1,
    "type": "contact.upsert",
    "source": "hubspot",
    "crm_contact_id": "501",
    "email": "alex@shop.example",
    "sms_number": "+491701234567",
    "properties": {
        "firstname": "Alex",
        "lead_value": 19.99,
        "vip": True,
        "gone": None,
        "lists": ["Newsletter"],
    },
    "occurred_at": "2026-11-22T10:00:00Z",
    "event_id": "evt-1",
}
DELETED: dict[str, Any] = {
    "v": 1,
    "type": "contact.deleted",
    "source": "hubspot",
    "crm_contact_id": "501",
    "occurred_at": 1795341600,
}
DELETION_REQUESTED: dict[str, Any] = {
    "v": 1,
    "type": "klicktipp.deletion_requested",
    "email": "a@shop.example",
    "occurred_at": 1795341600000,
}
CHANGED: dict[str, Any] = {
    "v": 1,
    "type": "crm.contact_changed",
    "source": "zoho",
    "crm_contact_id": "3477",
    "occurred_at": 1795341600,
}
KLICKTIPP_CHANGED: dict[str, Any] = {
    "v": 1,
    "type": "klicktipp.contact_changed",
    "klicktipp_id": "77",
    "occurred_at": 1795341600,
}
EXAMPLES = [UPSERT, DELETED, DELETION_REQUESTED, CHANGED, KLICKTIPP_CHANGED]


def changed(base: dict[str, Any], **change: Any) -> dict[str, Any]:
    """``base`` with ``change`` applied (a value of DROP removes the key)."""
    merged = {**base, **change}
    return {key: value for key, value in merged.items() if value is not DROP}


def upsert(**change: Any) -> dict[str, Any]:
    return changed(UPSERT, **change)


# fmt: off
ACCEPTED = [
    pytest.param(UPSERT, id="upsert"),
    pytest.param(DELETED, id="deleted"),
    pytest.param(DELETION_REQUESTED, id="deletion-requested"),
    pytest.param(CHANGED, id="changed"),
    pytest.param(KLICKTIPP_CHANGED, id="klicktipp-changed"),
    pytest.param(changed(DELETED, privacy=True, email="a@shop.example"), id="deleted-privacy"),
    pytest.param(changed(DELETION_REQUESTED, email=None, klicktipp_id=77), id="request-by-numeric-id"),
    pytest.param(upsert(email=None), id="sms-only"),
    pytest.param(upsert(sms_number=DROP), id="email-only"),
    pytest.param(upsert(v=1.0), id="v-1.0-is-the-integer-1"),
    pytest.param(upsert(crm_contact_id=501), id="numeric-id"),
    pytest.param(upsert(crm_contact_id=501.0), id="numeric-id-as-float"),
    pytest.param(upsert(crm_contact_id="  501 "), id="id-with-whitespace"),
    pytest.param(upsert(crm_contact_id="x" * 128), id="id-128-chars"),
    pytest.param(upsert(crm_contact_id=10**128 - 1), id="id-128-digits"),
    pytest.param(upsert(crm_contact_id=-(10**127 - 1)), id="id-negative-128-chars"),
    pytest.param(upsert(crm_contact_id="\ufeff501"), id="id-with-bom-kept"),
    pytest.param(upsert(source="a" * 32), id="source-32-chars"),
    pytest.param(upsert(source="my_crm-2"), id="source-with-underscore-and-dash"),
    pytest.param(upsert(email="a@localhost"), id="email-localhost"),
    pytest.param(upsert(email="a@[127.0.0.1]"), id="email-ip-literal"),
    pytest.param(upsert(email='"a@b"@shop.example'), id="email-quoted"),
    pytest.param(upsert(email="jörg@münchen.example"), id="email-unicode"),
    pytest.param(upsert(email="a@b.de"), id="email-short"),
    pytest.param(upsert(sms_number="+49 (170) 123-45.67"), id="sms-with-punctuation"),
    pytest.param(upsert(properties={}), id="no-properties"),
    pytest.param(upsert(properties={f"p{i}": i for i in range(500)}), id="500-properties"),
    pytest.param(upsert(properties={"x" * 100: "a", "n": 1, "big": 10**30, "neg": -1.5}), id="property-kinds"),
    pytest.param(upsert(properties={"lists": []}), id="empty-list"),
    pytest.param(upsert(event_id=None), id="event-id-null"),
    pytest.param(upsert(event_id="e" * 200), id="event-id-200"),
    pytest.param(upsert(dry_run=True), id="dry-run"),
    pytest.param(upsert(dry_run="yes"), id="dry-run-yes"),
    pytest.param(upsert(dry_run=0), id="dry-run-0"),
    pytest.param(upsert(occurred_at="2026-11-22T11:00:00+01:00"), id="iso-offset"),
    pytest.param(upsert(occurred_at="2026-11-22T10:00:00.052Z"), id="iso-fraction"),
    pytest.param(upsert(occurred_at="2026-11-22T10:00:00,5-0130"), id="iso-comma-fraction"),
    pytest.param(upsert(occurred_at="20261122T100000Z"), id="iso-basic"),
    pytest.param(upsert(occurred_at="2026-11-22 10:00:00 +0100"), id="iso-space-and-spaced-zone"),
    pytest.param(upsert(occurred_at="2026-11-22t10:00z"), id="iso-lowercase-no-seconds"),
    pytest.param(upsert(occurred_at="2026-11-22T10+01"), id="iso-hour-only"),
    pytest.param(upsert(occurred_at="2024-02-29T00:00:00Z"), id="iso-leap-day"),
    pytest.param(upsert(occurred_at="1969-12-31T23:59:59Z"), id="iso-before-1970"),
    pytest.param(upsert(occurred_at=" 2026-11-22T10:00:00Z\n"), id="iso-whitespace"),
    pytest.param(upsert(occurred_at=0), id="unix-zero"),
    pytest.param(upsert(occurred_at=7258118399.5), id="unix-latest-seconds"),
    pytest.param(upsert(occurred_at=10**11), id="unix-first-milliseconds"),
    pytest.param(upsert(occurred_at=7258118399999), id="unix-latest-milliseconds"),
    pytest.param(upsert(occurred_at="1795341600"), id="unix-string"),
    pytest.param(upsert(occurred_at=" 001795341600.25 "), id="unix-string-zeros-fraction"),
    pytest.param(upsert(occurred_at="1795341600000"), id="unix-string-milliseconds"),
    pytest.param(upsert(occurred_at="\x1c1795341600\x85"), id="unix-string-python-whitespace"),
    pytest.param(upsert(occurred_at="7258118399999"), id="unix-string-latest-milliseconds"),
]
# fmt: on

# (message, field, a part of the reason)
# fmt: off
REJECTED = [
    pytest.param(upsert(v=2), "v", "unsupported version 2", id="v-2"),
    pytest.param(upsert(v=None), "v", "is required", id="v-null"),
    pytest.param(upsert(v=DROP), "v", "is required", id="v-missing"),
    pytest.param(upsert(v="1"), "v", 'must be the integer 1, not the string "1"', id="v-string"),
    pytest.param(upsert(v=True), "v", "must be the integer 1, not a boolean", id="v-true"),
    pytest.param(upsert(v=1.5), "v", "must be the integer 1, not 1.5", id="v-1.5"),
    pytest.param(upsert(type="contact.merged"), "type", "must be one of", id="type-unknown"),
    pytest.param(upsert(type=DROP), "type", "must be one of", id="type-missing"),
    pytest.param(upsert(source="Hub Spot"), "source", "a-z, 0-9", id="source-space"),
    pytest.param(upsert(source="x" * 33), "source", "1 to 32", id="source-33"),
    pytest.param(upsert(source="hubspot\n"), "source", "a-z, 0-9", id="source-trailing-newline"),
    pytest.param(upsert(source=DROP), "source", "Missing data", id="source-missing"),
    pytest.param(upsert(crm_contact_id=""), "crm_contact_id", "1 to 128", id="id-empty"),
    pytest.param(upsert(crm_contact_id=" \t\u3000"), "crm_contact_id", "1 to 128", id="id-whitespace"),
    pytest.param(upsert(crm_contact_id="x" * 129), "crm_contact_id", "1 to 128", id="id-129"),
    pytest.param(upsert(crm_contact_id=10**128), "crm_contact_id", "1 to 128", id="id-129-digits"),
    pytest.param(upsert(crm_contact_id=-(10**127)), "crm_contact_id", "1 to 128", id="id-negative-129"),
    pytest.param(upsert(crm_contact_id=1.5), "crm_contact_id", "must be a string or an integer", id="id-1.5"),
    pytest.param(upsert(crm_contact_id=True), "crm_contact_id", "must be a string or an integer", id="id-bool"),
    pytest.param(upsert(crm_contact_id=None), "crm_contact_id", "Field may not be null", id="id-null"),
    pytest.param(upsert(email="not-an-address"), "email", "Not a valid email", id="email-no-at"),
    pytest.param(upsert(email="a@b"), "email", "Not a valid email", id="email-no-dot"),
    pytest.param(upsert(email="a@LOCALHOST"), "email", "Not a valid email", id="email-localhost-uppercase"),
    pytest.param(upsert(email="a..b@shop.example"), "email", "Not a valid email", id="email-double-dot"),
    pytest.param(upsert(email="a@-shop.example"), "email", "Not a valid email", id="email-label-hyphen"),
    pytest.param(upsert(email="a@shop.example-"), "email", "Not a valid email", id="email-tld-hyphen"),
    pytest.param(upsert(email="a@[256.0.0.1]"), "email", "Not a valid email", id="email-bad-ip"),
    pytest.param(upsert(email=" a@shop.example"), "email", "Not a valid email", id="email-whitespace"),
    pytest.param(upsert(email="a@shop.example\n"), "email", "Not a valid email", id="email-trailing-newline"),
    pytest.param(upsert(email=""), "email", "Not a valid email", id="email-empty"),
    pytest.param(upsert(email=5), "email", "Not a valid string", id="email-number"),
    pytest.param(upsert(email=None, sms_number=None), "email", "email or sms_number is required", id="no-contact"),
    pytest.param(upsert(email=DROP, sms_number=DROP), "email", "email or sms_number is required", id="no-keys"),
    pytest.param(upsert(sms_number="call me"), "sms_number", "not a phone number", id="sms-text"),
    pytest.param(upsert(sms_number="+4917012345\n"), "sms_number", "not a phone number", id="sms-newline"),
    pytest.param(upsert(properties={"nested": {"a": 1}}), "properties.nested", "must be a string, number", id="nested"),
    pytest.param(upsert(properties={"lists": ["a", 1]}), "properties.lists", "only contain strings", id="list-mixed"),
    pytest.param(upsert(properties=["a"]), "properties", "must be an object", id="properties-list"),
    pytest.param(upsert(properties=None), "properties", "Field may not be null", id="properties-null"),
    pytest.param(upsert(properties={"": 1}), "properties.", "1 to 100 characters", id="property-name-empty"),
    pytest.param(upsert(properties={"x" * 101: 1}), f"properties.{'x' * 101}", "1 to 100", id="property-name-101"),
    pytest.param(upsert(properties={f"p{i}": i for i in range(501)}), "properties", "at most 500", id="501-properties"),
    pytest.param(upsert(occurred_at="2026-11-22T10:00:00"), "occurred_at", "no time zone", id="iso-no-zone"),
    pytest.param(upsert(occurred_at="2026-11-22"), "occurred_at", "no time zone", id="iso-date-only"),
    pytest.param(upsert(occurred_at="yesterday"), "occurred_at", "not an ISO 8601", id="iso-word"),
    pytest.param(upsert(occurred_at="2026-13-01T00:00Z"), "occurred_at", "not an ISO 8601", id="iso-month-13"),
    pytest.param(upsert(occurred_at="2026-11-22T24:00Z"), "occurred_at", "not an ISO 8601", id="iso-hour-24"),
    pytest.param(upsert(occurred_at="2026-11-22T10:00:60Z"), "occurred_at", "not an ISO 8601", id="iso-second-60"),
    pytest.param(upsert(occurred_at="0000-01-01T00:00Z"), "occurred_at", "not an ISO 8601", id="iso-year-0"),
    pytest.param(upsert(occurred_at="2026-1122T10:00Z"), "occurred_at", "not an ISO 8601", id="iso-mixed-basic"),
    pytest.param(upsert(occurred_at="2026-11-22_10:00Z"), "occurred_at", "not an ISO 8601", id="iso-underscore"),
    pytest.param(upsert(occurred_at="2026-11-22T10:00:00+01:00:00"), "occurred_at", "not an ISO", id="iso-offset-s"),
    pytest.param(upsert(occurred_at="2026-W47-1T10:00Z"), "occurred_at", "not an ISO 8601", id="iso-week-date"),
    pytest.param(upsert(occurred_at="١٧٩٥٣٤١٦٠٠"), "occurred_at", "not an ISO 8601", id="unix-arabic-digits"),
    pytest.param(upsert(occurred_at=-5), "occurred_at", "non-negative", id="unix-negative"),
    pytest.param(upsert(occurred_at=7258118400), "occurred_at", "not a plausible", id="unix-2200"),
    pytest.param(upsert(occurred_at=99999999999), "occurred_at", "not a plausible", id="unix-gap"),
    pytest.param(upsert(occurred_at=7258118400000), "occurred_at", "not a plausible", id="unix-ms-2200"),
    pytest.param(upsert(occurred_at=10**400), "occurred_at", "not a plausible", id="unix-huge"),
    pytest.param(upsert(occurred_at="99999999999"), "occurred_at", "not a plausible", id="unix-string-gap"),
    pytest.param(upsert(occurred_at="7258118400"), "occurred_at", "not a plausible", id="unix-string-2200"),
    pytest.param(upsert(occurred_at="7258118400000"), "occurred_at", "not a plausible", id="unix-string-ms-2200"),
    pytest.param(upsert(occurred_at="1e9"), "occurred_at", "not an ISO 8601", id="unix-string-exponent"),
    pytest.param(upsert(occurred_at=True), "occurred_at", "ISO 8601", id="occurred-at-bool"),
    pytest.param(upsert(occurred_at=None), "occurred_at", "Field may not be null", id="occurred-at-null"),
    pytest.param(upsert(occurred_at=DROP), "occurred_at", "Missing data", id="occurred-at-missing"),
    pytest.param(upsert(emial="typo@shop.example"), "emial", "unknown field", id="unknown-field"),
    pytest.param(upsert(klicktipp_id="77"), "klicktipp_id", "unknown field", id="field-of-another-type"),
    pytest.param(upsert(event_id=""), "event_id", "Length must be between 1 and 200", id="event-id-empty"),
    pytest.param(upsert(event_id="e" * 201), "event_id", "Length must be between 1 and 200", id="event-id-201"),
    pytest.param(upsert(dry_run="maybe"), "dry_run", "Not a valid boolean", id="dry-run-maybe"),
    pytest.param(upsert(dry_run=None), "dry_run", "Field may not be null", id="dry-run-null"),
    pytest.param(upsert(dry_run=2), "dry_run", "Not a valid boolean", id="dry-run-2"),
    pytest.param(changed(DELETED, privacy="maybe"), "privacy", "Not a valid boolean", id="privacy-maybe"),
    pytest.param(changed(DELETED, sms_number="+491701234567"), "sms_number", "unknown field", id="deleted-sms"),
    pytest.param(changed(CHANGED, email="a@shop.example"), "email", "unknown field", id="changed-email"),
    pytest.param(changed(DELETION_REQUESTED, email=None), "email", "email or klicktipp_id", id="request-no-contact"),
    pytest.param(changed(KLICKTIPP_CHANGED, klicktipp_id=DROP), "email", "email or klicktipp_id", id="refresh-no-id"),
    pytest.param(changed(DELETION_REQUESTED, source="KT"), "source", "a-z, 0-9", id="request-bad-source"),
]
# fmt: on

# Rejected by the contract, accepted by the JSON Schema: rules no JSON Schema can state (README: "What
# the schema does not cover").
# fmt: off
SCHEMA_GAPS = [
    pytest.param(upsert(occurred_at="2026-02-30T10:00:00Z"), "occurred_at", "is not a date", id="february-30"),
    pytest.param(upsert(occurred_at="2026-02-29T10:00:00Z"), "occurred_at", "is not a date", id="not-a-leap-year"),
    pytest.param(upsert(occurred_at="2026-04-31T10:00:00Z"), "occurred_at", "is not a date", id="april-31"),
]
# fmt: on

# Generated messages: keys of the contract with any JSON-ish value (the fuzz tests), and valid messages
# with one key changed to a value near a rule's edge (where the contract and the schema could differ).
TYPES = ["contact.upsert", "contact.deleted", "klicktipp.deletion_requested", "crm.contact_changed",
         "klicktipp.contact_changed"]  # fmt: skip
KEYS = ["v", "type", "source", "crm_contact_id", "email", "sms_number", "properties", "occurred_at", "event_id",
        "dry_run", "klicktipp_id", "privacy", "extra"]  # fmt: skip
EDGE_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 1.5, 2, -0.0, "", " ", "1", "0", "yes", "maybe", [], ["a"], {}, {"a": 1},
    {"lists": ["a"]}, {"n": {"a": 1}}, {"": 1}, *TYPES, "hubspot", "hubspot\n", "Hub", "x" * 32, "x" * 33,
    " 501 ", "\u00a0501\u2003", "\x1c501\x85", "\ufeff", "x" * 128, "x" * 129, 10**128 - 1, 10**128, 501.0,
    "a@shop.example", "a@b", "a@localhost", '"q"@x.de', "€@x.de", "a@x.de-", "a@x.d", "+491701234567", "+49 1",
    "2026-11-22T10:00:00Z", "20261122T100000Z", "2026-11-22 10:00 +0100", "2026-11-22T10Z", "2026-11-22T10:00:00",
    "2026-13-01T00:00Z", "2026-11-22T24:00Z", "0000-01-01T00:00Z", "2026-11-22T10:00:00.Z", " 1795341600 ",
    "1795341600000", "99999999999", "7258118399", "7258118400", "00", "0.5", ".5", "5.", 7258118399.999,
    7258118400, 99999999999, 10**11, 7258118399999, 7258118400000, 1795341600, 1795341600000,
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["contact.upsert", "contact.deleted", "klicktipp.deletion_requested", "hubspot", "a@shop.example",
                     "2026-11-22T10:00:00Z", "2026-11-22T10:00:00", "+491701234567", "1795341600"]),
)  # fmt: skip


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``leaves``, and lists and objects of them, nested."""
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )


values = nested(scalars)
messages = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS)).map(
    lambda m: {**m, "v": 1} if m.get("v") is None and m else m
)
near_valid = st.builds(
    lambda base, key, value: changed(base, **{key: value}),
    st.sampled_from(EXAMPLES),
    st.sampled_from(KEYS),
    st.sampled_from([*EDGE_VALUES, DROP]) | values,
)
