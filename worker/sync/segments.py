"""Turn CRM segment properties into the KlickTipp tag names a contact should carry: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ktsync.config.settings import TagRule
from ktsync.worker.sync.convert import PropertyValue

MAX_TAG_NAME = 250


def desired_tags(properties: Mapping[str, PropertyValue], rules: Iterable[TagRule]) -> frozenset[str]:
    """Apply each rule's template to its property; a list gives one tag per item, empty gives none."""
    names: set[str] = set()
    for rule in rules:
        for value in _values(properties.get(rule.property)):
            names.add(rule.tag.replace("{value}", value)[:MAX_TAG_NAME])
    return frozenset(names)


def _values(raw: PropertyValue) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [item.strip() for item in raw if item.strip()]
    if isinstance(raw, bool):
        return ["true" if raw else "false"]
    text = str(raw).strip()
    return [text] if text else []


def is_owned(tag_name: str, prefix: str) -> bool:
    """Tags ktsync may add and remove carry the configured prefix; all others are left alone."""
    return tag_name.startswith(prefix)
