"""Tenants: one KlickTipp account each, with its credentials, settings and budget.

A tenant's document (a ``tenants.<name>`` entry of the config file, or a file given to
``ktsync tenant add``)::

    credentials:                       # the per-account variables of a single-account install
      KLICKTIPP_USERNAME: acme-shop
      KLICKTIPP_PASSWORD: {env: ACME_KLICKTIPP_PASSWORD}   # or {encrypted: ...}; see config.secrets
      HUBSPOT_CLIENT_SECRET: {env: ACME_HUBSPOT_SECRET}
    rate: {per_second: 5, burst: 10}   # any rate.* key; the others are the deployment's
    sources:                           # merged over the deployment's sources, key by key
      default: {listid: 1234}
    sync: {klicktipp_deletion_policy: review}
    enabled: true

Its settings are the deployment's document with these sections merged on top; environment overrides
of sources and budgets (``KTSYNC_LISTID``, ``KTSYNC_RATE_LIMIT``, ...) are the ``default`` tenant's
and do not apply. Its environment is the process's without any per-account variable of another
tenant, plus its own credentials: the KlickTipp developer key (``KLICKTIPP_DEVELOPER_KEY``) and the
base URLs stay the deployment's. Pure functions; :mod:`ktsync.config.settings` builds the settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ktsync.config.model import ConfigError, TenantSpec
from ktsync.config.secrets import Keyring, Secret
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant_name

# The per-account variables a tenant may set: name -> whether it is a secret (plain text refused in the
# config file, encrypted at rest in the registry, never shown).
TENANT_VARIABLES: Mapping[str, bool] = {
    "KLICKTIPP_USERNAME": False,
    "KLICKTIPP_PASSWORD": True,
    "KLICKTIPP_CUSTOMER_KEY": True,
    "HUBSPOT_ACCESS_TOKEN": True,
    "HUBSPOT_CLIENT_SECRET": True,
    "HUBSPOT_PROPERTIES": False,
    "HUBSPOT_LIST_PROPERTIES": False,
    "CLOSE_API_KEY": True,
    "CLOSE_WEBHOOK_SIGNATURE_KEY": True,
    "ZOHO_ACCESS_TOKEN": True,
    "ZOHO_CHANNEL_ID": False,
    "ZOHO_CHANNEL_TOKEN": True,
    "KTSYNC_WEBHOOK_SECRET": True,
    "KLICKTIPP_WEBHOOK_TOKEN": True,
}
SECTIONS = ("rate", "sources", "sync")
SYNC_KEYS = ("klicktipp_deletion_policy",)  # the rest of sync.* is the deployment's
DOCUMENT_KEYS = ("credentials", *SECTIONS, "enabled")
# Environment overrides a tenant's settings keep: where Redis and KlickTipp are, not whose budget.
DEPLOYMENT_ENV = ("KTSYNC_REDIS_URL", "KLICKTIPP_BASE_URL", "KTSYNC_BEAT_SCHEDULE_FILE")


def parse_tenant(
    name: str, raw: object, *, origin: str, key: str = "", plain_secrets: bool = False
) -> TenantSpec:
    """Check a tenant's document (not yet its sections: see ``settings.tenant_settings``).

    ``key`` prefixes the keys in errors (``tenants.acme.`` in the config file); ``plain_secrets``
    allows plain secret values (a file for ``ktsync tenant add``, encrypted before it is stored)."""
    problems: list[tuple[str, str]] = []
    if not is_tenant_name(name):
        problems.append((key.rstrip(".") or "name", f"{TENANT_RULE}, got {name!r}"))
    elif name == DEFAULT_TENANT:
        problems.append(
            (key.rstrip(".") or "name", "'default' is the top-level settings, not a tenant entry")
        )
    if not isinstance(raw, Mapping):
        raise ConfigError([*problems, (key.rstrip(".") or "$", "a tenant must be a mapping")], origin)
    problems += [(f"{key}{k}", "unknown key") for k in raw if k not in DOCUMENT_KEYS]
    credentials = _credentials(raw.get("credentials"), f"{key}credentials", plain_secrets, problems)
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        value = raw.get(section)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            problems.append((f"{key}{section}", "must be a mapping"))
            continue
        sections[section] = _jsonable(value)
    problems += [(f"{key}sync.{k}", "unknown key (a tenant sets only klicktipp_deletion_policy)")
                 for k in sections.get("sync", {}) if k not in SYNC_KEYS]  # fmt: skip
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append((f"{key}enabled", f"must be true or false, got {enabled!r}"))
    if problems:
        raise ConfigError(problems, origin)
    return TenantSpec(name, credentials, sections, bool(enabled), origin)


def _credentials(raw: object, key: str, plain: bool, problems: list[tuple[str, str]]) -> dict[str, Secret]:
    if not isinstance(raw, Mapping):
        problems.append((key, "required: a mapping of KLICKTIPP_USERNAME and the account's password or key"))
        return {}
    out: dict[str, Secret] = {}
    for name, value in raw.items():
        where = f"{key}.{name}"
        if name not in TENANT_VARIABLES:
            problems.append((where, f"not a per-account variable (one of {', '.join(TENANT_VARIABLES)})"))
            continue
        secret = _secret(value, where, plain_allowed=plain or not TENANT_VARIABLES[name], problems=problems)
        if secret is not None:
            out[name] = secret
    if "KLICKTIPP_USERNAME" not in out and not any(k.endswith(".KLICKTIPP_USERNAME") for k, _ in problems):
        problems.append((f"{key}.KLICKTIPP_USERNAME", "required: the tenant's KlickTipp user name"))
    if not {"KLICKTIPP_PASSWORD", "KLICKTIPP_CUSTOMER_KEY"} & set(raw):
        problems.append(
            (f"{key}.KLICKTIPP_PASSWORD", "required: KLICKTIPP_PASSWORD or KLICKTIPP_CUSTOMER_KEY")
        )
    return out


def _secret(
    value: object, where: str, *, plain_allowed: bool, problems: list[tuple[str, str]]
) -> Secret | None:
    if isinstance(value, str):
        if not value.strip():
            problems.append((where, "must not be empty"))
            return None
        if not plain_allowed:
            problems.append((where, "a secret is never written in plain text here: use {env: VARIABLE}, "
                                    "or `ktsync tenant add`, which stores it encrypted"))  # fmt: skip
            return None
        return Secret(plain=value.strip())
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, text),) = value.items()
        if kind in ("env", "encrypted") and isinstance(text, str) and text.strip():
            return Secret(env=text.strip()) if kind == "env" else Secret(encrypted=text.strip())
    problems.append((where, "must be a string, {env: VARIABLE} or {encrypted: TOKEN}"))
    return None


def _jsonable(value: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-JSON copy (YAML may give dates and the like; a stored document must round-trip)."""
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return loaded


def merged_document(base: Mapping[str, Any], spec: TenantSpec) -> dict[str, Any]:
    """The deployment's document with the tenant's sections on top (sources: per source, key by key)."""
    document = {key: value for key, value in base.items() if key != "tenants"}
    if "rate" in spec.sections:
        document["rate"] = {**(base.get("rate") or {}), **spec.sections["rate"]}
    if "sync" in spec.sections:
        document["sync"] = {**(base.get("sync") or {}), **spec.sections["sync"]}
    if "sources" in spec.sections:
        sources: dict[str, Any] = dict(base.get("sources") or {})
        for name, entry in spec.sections["sources"].items():
            mine = entry if isinstance(entry, Mapping) else {}
            sources[name] = {**(sources.get(name) or {}), **mine}
        document["sources"] = sources
    return document


def deployment_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a tenant's settings are built with: only the deployment-wide overrides."""
    return {name: env[name] for name in DEPLOYMENT_ENV if name in env}


def tenant_env(env: Mapping[str, str], spec: TenantSpec, keyring: Keyring | None) -> dict[str, str]:
    """The tenant's view of the environment: no other account's credentials, its own revealed."""
    own = {name: value for name, value in env.items() if name not in TENANT_VARIABLES}
    for name, secret in spec.credentials.items():
        own[name] = secret.reveal(env, keyring, what=f"tenant {spec.name}: credentials.{name}")
    return own


def sealed_document(spec: TenantSpec, keyring: Keyring | None) -> dict[str, Any]:
    """The document to store in the registry: plain secrets encrypted."""
    credentials = {
        name: secret.sealed(keyring, what=f"credentials.{name}").to_json()
        if TENANT_VARIABLES[name]
        else secret.to_json()
        for name, secret in spec.credentials.items()
    }
    return {"credentials": credentials, **spec.sections, "enabled": spec.enabled}


def shown_document(spec: TenantSpec) -> dict[str, Any]:
    """What ``ktsync tenant show`` prints: every secret as where it comes from, never its value."""
    credentials = {
        name: secret.shown() if TENANT_VARIABLES[name] else secret.to_json()
        for name, secret in spec.credentials.items()
    }
    return {"credentials": credentials, **spec.sections, "enabled": spec.enabled, "origin": spec.origin}


def fingerprint(spec: TenantSpec) -> str:
    """Changes whenever anything of the tenant changes (a worker rebuilds its parts then)."""
    stored = {"credentials": {k: v.to_json() for k, v in sorted(spec.credentials.items())},
              "sections": spec.sections, "enabled": spec.enabled}  # fmt: skip
    return hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:16]
