"""What ``ktsync check`` finds when it compares the configuration with the KlickTipp account. Pure.

The problems are the worker's own (:func:`~ktsync.worker.preflight.account_problems`), so ``check``
fails where ``ktsync worker`` would refuse to start, and besides only where an opt-in process is
listed but cannot be read. This module attaches each problem to the configuration key it names,
adds an ``ok`` line for every key that fits, and informational lines (how many of a source's tags
exist) that are never problems. Keys and labels resolve as the worker resolves them
(:func:`~ktsync.worker.sync.mapping.resolve_mapping`: of two fields with one label, the last wins).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ktsync.config.settings import FieldMapping, Settings, SourceSettings
from ktsync.worker.preflight import account_problems

_OTHER_KEY = re.compile(r"\S+: ")  # "key.path: reason", for a problem of a key we do not list ourselves


class Status(StrEnum):
    OK = "ok"  # this key fits the account
    INFO = "info"  # worth knowing, never a problem
    FAIL = "fail"  # does not fit: the worker would refuse to start


@dataclass(frozen=True)
class Finding:
    """One line of the report: a configuration key (``sources.hubspot.listid``), its status, and why."""

    status: Status
    key: str
    message: str

    def line(self) -> str:
        """``ok    sources.hubspot.listid: opt-in process 23 ...`` (statuses padded to one column)."""
        label = "FAIL" if self.status is Status.FAIL else self.status.value
        return f"{label:<5} {self.key}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "key": self.key, "message": self.message}


@dataclass(frozen=True)
class Account:
    """What KlickTipp says, read for the check (never from ktsync's Redis cache)."""

    fields: Mapping[str, str]  # field key -> label (``GET /field``)
    lists: Mapping[str, str]  # opt-in process id -> name, "" for the default one (``GET /list``)
    tags: Mapping[str, str]  # manual tag id -> name (``GET /tag``: SmartTags are not listed)
    single_optin: Mapping[str, bool] = field(default_factory=dict)  # listid -> ``use_single_optin``
    unreadable: Mapping[str, str] = field(default_factory=dict)  # listid -> why ``GET /list/{id}`` failed


def listids_to_read(settings: Settings, lists: Mapping[str, str]) -> list[str]:
    """The configured opt-in processes that exist, each once: those whose details are worth a call."""
    wanted = {str(s.listid) for s in settings.sources.values() if s.listid is not None}
    return sorted(wanted & set(lists), key=int)


def compare(settings: Settings, account: Account) -> list[Finding]:
    """Every finding, source by source (sorted by name): listid, each mapped field, crm_id_field, tags."""
    problems = problems_by_key(
        account_problems(settings, account.fields, account.lists), known=_keys(settings)
    )
    findings: list[Finding] = []
    for name, source in sorted(settings.sources.items()):
        findings.append(_listid(source, account, problems.pop(f"sources.{name}.listid", [])))
        findings += [_unless_failed(problems, _field(name, mapping, account)) for mapping in source.fields]
        findings.append(_unless_failed(problems, _crm_id(source, account)))
        findings.append(_tags(source, account))
    # A problem of a key not listed above (a check the worker gained since) is never dropped.
    findings.extend(_fail(key, reasons) for key, reasons in problems.items())
    return findings


def problems_by_key(problems: Iterable[str], *, known: Sequence[str]) -> dict[str, list[str]]:
    """``"key: reason"`` strings grouped by key, ``known`` keys matched whole (a property may hold
    spaces); a string naming no key goes under ``"$"``."""
    by_length = sorted(known, key=len, reverse=True)
    grouped: dict[str, list[str]] = {}
    for text in problems:
        key = next((k for k in by_length if text.startswith(f"{k}: ")), None)
        if key is None and _OTHER_KEY.match(text):
            key = text.partition(": ")[0]
        key = key if key is not None else "$"
        grouped.setdefault(key, []).append(text[len(key) + 2 :] if text.startswith(f"{key}: ") else text)
    return grouped


def tenant_finding(name: str, *, origin: str, enabled: bool, key_prefix: str) -> Finding:
    """The first line of ``check --tenant``: which tenant, where it is defined, whether it takes work
    (a disabled tenant is checked all the same: enabling it should not be a surprise)."""
    state = "enabled" if enabled else f"disabled: it takes no work until `ktsync tenant enable {name}`"
    return Finding(Status.INFO, "tenant", f"{name} (from {origin or 'the config file'}, keys under "
                                          f"{key_prefix}:), {state}")  # fmt: skip


def summary(findings: Sequence[Finding]) -> str:
    failed = sum(f.status is Status.FAIL for f in findings)
    return "everything fits" if not failed else f"{failed} problem(s)"


def report(findings: Sequence[Finding]) -> dict[str, Any]:
    """The ``--json`` object: ``{"ok": bool, "problems": [...], "checks": [...]}``."""
    problems = [f.to_dict() for f in findings if f.status is Status.FAIL]
    return {"ok": not problems, "problems": problems, "checks": [f.to_dict() for f in findings]}


def _keys(settings: Settings) -> list[str]:
    keys = []
    for name, source in settings.sources.items():
        keys += [f"sources.{name}.listid", f"sources.{name}.crm_id_field"]
        keys += [f"sources.{name}.fields.{m.property}" for m in source.fields]
    return keys


def _unless_failed(problems: dict[str, list[str]], fits: Finding) -> Finding:
    """``fits``, unless the worker's checks found a problem with its key (then that, and it is taken)."""
    reasons = problems.pop(fits.key, None)
    return _fail(fits.key, reasons) if reasons else fits


def _fail(key: str, reasons: Sequence[str]) -> Finding:
    return Finding(Status.FAIL, key, "; ".join(reasons))


def _listid(source: SourceSettings, account: Account, reasons: Sequence[str]) -> Finding:
    key = f"sources.{source.name}.listid"
    if reasons or source.listid is None:
        return _fail(key, reasons or ["no opt-in process configured"])
    listid = str(source.listid)
    name = account.lists.get(listid, "")
    named = f"{listid} {_quoted(name)}" if name else f"{listid} (unnamed: the account's default)"
    if listid in account.unreadable:
        return _fail(key, [f"opt-in process {named} exists, but its details cannot be read "
                           f"({account.unreadable[listid]})"])  # fmt: skip
    single = account.single_optin.get(listid)
    if single is None:
        return Finding(Status.OK, key, f"opt-in process {named}")
    return Finding(Status.OK, key, f"opt-in process {named} ({'single' if single else 'double'} opt-in)")


def _field(source: str, mapping: FieldMapping, account: Account) -> Finding:
    key = f"sources.{source}.fields.{mapping.property}"
    if mapping.field is not None:
        label = account.fields.get(mapping.field, "")
        return Finding(Status.OK, key, f"data field {mapping.field!r} (label {_quoted(label)})")
    resolved = _by_label(account).get(mapping.label or "", "?")
    return Finding(Status.OK, key, f"data field labelled {_quoted(mapping.label or '')} ({resolved})")


def _crm_id(source: SourceSettings, account: Account) -> Finding:
    key = f"sources.{source.name}.crm_id_field"
    resolved = _by_label(account).get(source.crm_id_field, "?")
    return Finding(Status.OK, key, f"data field labelled {_quoted(source.crm_id_field)} ({resolved})")


def _by_label(account: Account) -> dict[str, str]:
    return {label: key for key, label in account.fields.items()}  # as resolve_mapping: the last one wins


def _tags(source: SourceSettings, account: Account) -> Finding:
    owned = sum(name.startswith(source.tag_prefix) for name in account.tags.values())
    named = _quoted(source.tag_prefix + " …")
    exist = f"1 tag named {named} exists" if owned == 1 else f"{owned} tags named {named} exist"
    count = len(source.tag_rules)
    rules = "its rule names" if count == 1 else f"its {count} rules name"
    return Finding(
        Status.INFO,
        f"sources.{source.name}.tags",
        f"{exist}; the worker creates the others {rules} on demand (a clash with a SmartTag is not "
        "checked: the API lists manual tags only)",
    )


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'
