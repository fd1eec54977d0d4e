"""Mapping CRM properties to KlickTipp fields: resolution against the account, conversion, rejection."""

from __future__ import annotations

import pytest

from ktsync.config.settings import load_settings
from ktsync.worker.sync.mapping import MappingConfigError, MappingError, map_contact, resolve_mapping

FIELD_INDEX = {
    "fieldFirstName": "First Name",
    "fieldLastName": "Last Name",
    "fieldCompanyName": "Company",
    "fieldPhone": "Phone",
    "fieldMobilePhone": "Mobile Phone",
    "fieldWebsite": "Website",
    "fieldCity": "City",
    "fieldZip": "Zip",
    "fieldCountry": "Country",
    "fieldBirthday": "Birthday",
    "fieldLeadValue": "Lead Value",
    "field100001": "CRM Contact ID",
}
SOURCE = load_settings({"KTSYNC_LISTID": "23"}).source("hubspot")


def test_default_mapping_converts_every_type_and_stores_the_crm_id() -> None:
    # Given the default HubSpot mapping resolved against an account with a "CRM Contact ID" field
    mapping = resolve_mapping(SOURCE, FIELD_INDEX)

    # When a contact with typed properties is mapped
    mapped = map_contact(
        crm_contact_id="501",
        email="Alex@Shop.Example",
        sms_number="0170 1234567",
        properties={
            "firstname": "Alex",
            "website": "https://alex.example",
            "date_of_birth": "1993-12-08",
            "lead_value": "19.99",
            "mobilephone": "+49 170 1234567",
            "lifecyclestage": "lead",
            "hs_unmapped": "ignored",
        },
        mapping=mapping,
    )

    # Then every value is in KlickTipp's wire format
    assert mapped.email == "alex@shop.example"
    assert mapped.sms_number == "+491701234567"
    assert mapped.fields == {
        "field100001": "501",
        "fieldFirstName": "Alex",
        "fieldWebsite": "https://alex.example",
        "fieldBirthday": "755308800",
        "fieldLeadValue": "1999",
        "fieldMobilePhone": "+491701234567",
    }


def test_every_unconvertible_value_is_named_and_nothing_is_mapped() -> None:
    mapping = resolve_mapping(SOURCE, FIELD_INDEX)
    with pytest.raises(MappingError) as exc:
        map_contact(
            crm_contact_id="501",
            email="a@shop.example",
            sms_number=None,
            properties={"website": "www.shop.example", "lead_value": "viel", "date_of_birth": "08.12.1993"},
            mapping=mapping,
        )
    by_property = {p.property: p for p in exc.value.problems}
    assert set(by_property) == {"website", "lead_value", "date_of_birth"}
    assert by_property["website"].field == "fieldWebsite"
    assert by_property["website"].value == "www.shop.example"
    assert "http" in by_property["website"].reason
    assert "lead_value" in str(exc.value)


def test_empty_and_null_values_are_not_sent() -> None:
    mapped = map_contact(
        crm_contact_id="1",
        email="a@shop.example",
        sms_number=None,
        properties={"firstname": "", "lastname": None},
        mapping=resolve_mapping(SOURCE, FIELD_INDEX),
    )
    assert mapped.fields == {"field100001": "1"}


def test_a_missing_crm_id_field_is_a_configuration_error_that_says_what_to_do() -> None:
    index = {k: v for k, v in FIELD_INDEX.items() if v != "CRM Contact ID"}
    with pytest.raises(MappingConfigError, match="no data field labelled 'CRM Contact ID'"):
        resolve_mapping(SOURCE, index)


def test_a_mapping_to_a_field_the_account_lacks_is_a_configuration_error() -> None:
    index = {k: v for k, v in FIELD_INDEX.items() if k != "fieldLeadValue"}
    with pytest.raises(
        MappingConfigError, match=r"fields\.lead_value: the account has no data field 'fieldLeadValue'"
    ):
        resolve_mapping(SOURCE, index)
