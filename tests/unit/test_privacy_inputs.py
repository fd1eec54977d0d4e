"""Privacy deletions on the way in: the setting, the contract's ``privacy`` flag, HubSpot's privacyDeletion."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ktsync.config.settings import DEFAULT_CONFIG_PATH, ConfigError, load_settings, settings_from_dict
from ktsync.core.contract import ContactDeleted, ContractError, parse_message
from ktsync.producers.webhooks.payloads import hubspot_batch
from tests.webhooks.helpers import hubspot_event

T_MS = 1_795_341_600_000


def document(**source: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    data["sources"]["zoho"] = source
    return data


def test_privacy_deletions_delete_by_default_whatever_the_deletion_policy() -> None:
    settings = load_settings({})
    assert settings.source("hubspot").privacy_deletion_policy == "delete"
    assert settings.source("hubspot").deletion_policy == "untag"


def test_the_policy_is_set_per_source_and_validated_by_name() -> None:
    assert settings_from_dict(document(privacy_deletion_policy="delete"), {}).source(
        "zoho"
    ).privacy_deletion_policy == ("delete")
    with pytest.raises(ConfigError) as failed:
        settings_from_dict(document(privacy_deletion_policy="anonymize"), {})
    [(key, reason)] = failed.value.problems
    assert key == "sources.zoho.privacy_deletion_policy"
    assert "delete" in reason


def test_an_invalid_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as failed:
        load_settings({"KTSYNC_PRIVACY_DELETION_POLICY": "untag"})
    [(key, reason)] = failed.value.problems
    assert key == "KTSYNC_PRIVACY_DELETION_POLICY"
    assert reason == "must be one of delete, got 'untag'"
    assert (
        load_settings({"KTSYNC_PRIVACY_DELETION_POLICY": "delete"}).source("x").privacy_deletion_policy
        == "delete"
    )


DELETED = {"v": 1, "type": "contact.deleted", "source": "hubspot", "crm_contact_id": "501", "occurred_at": 1}


def test_privacy_is_an_optional_boolean_of_contact_deleted() -> None:
    plain = parse_message(DELETED)
    assert isinstance(plain, ContactDeleted)
    assert plain.privacy is False
    erasure = parse_message({**DELETED, "privacy": True})
    assert isinstance(erasure, ContactDeleted)
    assert erasure.privacy is True
    with pytest.raises(ContractError) as failed:
        parse_message({**DELETED, "privacy": "please"})
    assert [e.field for e in failed.value.errors] == ["privacy"]
    with pytest.raises(ContractError):  # only contact.deleted has it
        parse_message({**DELETED, "type": "crm.contact_changed", "privacy": True})


@pytest.mark.parametrize("kind", ["contact.privacyDeletion", "object.privacyDeletion"])
def test_a_hubspot_privacy_deletion_becomes_a_privacy_contact_deleted(kind: str) -> None:
    batch = hubspot_batch([hubspot_event(7, kind, 501, at_ms=T_MS, objectTypeId="0-1")])
    [event] = batch.events
    [message] = event.messages
    assert (message["type"], message["crm_contact_id"], message["privacy"]) == (
        "contact.deleted",
        "501",
        True,
    )
    assert not batch.collapse  # a newer change of 501 in the same batch must not push it out


def test_an_ordinary_hubspot_deletion_is_no_privacy_deletion() -> None:
    batch = hubspot_batch([hubspot_event(7, "contact.deletion", 501, at_ms=T_MS)])
    [event] = batch.events
    assert "privacy" not in event.messages[0]
    assert batch.collapse
