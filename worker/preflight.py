"""Check, before the first task, that the credential works and the configuration fits the account.

A worker whose credential KlickTipp refuses — checked with a real authenticated call at every start,
never from a cache — or that cannot resolve its opt-in process, its mapped fields or the "CRM
Contact ID" field refuses to start, so nothing is ever synced half-way and a misconfigured worker
never takes a task.
"""

from __future__ import annotations

from collections.abc import Mapping

from ktsync.config.settings import Settings
from ktsync.worker.credentials import CredentialCheck
from ktsync.worker.reference import ReferenceData
from ktsync.worker.sync.mapping import MappingConfigError, resolve_mapping


class PreflightError(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"the configuration does not fit the KlickTipp account:\n{lines}")


def account_problems(settings: Settings, fields: Mapping[str, str], lists: Mapping[str, str]) -> list[str]:
    """Every mismatch between the settings and the account's fields and opt-in processes. Pure."""
    problems = [f"{key}: {reason}" for key, reason in settings.worker_problems()]
    for name, source in sorted(settings.sources.items()):
        if source.listid is not None and str(source.listid) not in lists:
            available = ", ".join(f"{i} ({n or 'default double opt-in'})" for i, n in sorted(lists.items()))
            problems.append(
                f"sources.{name}.listid: opt-in process {source.listid} does not exist (account has: {available})"
            )
        try:
            resolve_mapping(source, fields)
        except MappingConfigError as exc:
            problems.extend(exc.problems)
    return problems


def preflight(settings: Settings, reference: ReferenceData) -> None:
    """Raise PreflightError listing every problem; reads the reference data (and warms its cache)."""
    problems = account_problems(settings, reference.fields(), reference.lists())
    if problems:
        raise PreflightError(problems)


def startup_check(settings: Settings, reference: ReferenceData, credential: CredentialCheck) -> None:
    """The worker's own credential first (one real call; ``AuthError`` when refused — then a refusal
    this credential had is cleared, since it works), then the configuration against the account."""
    credential.check()
    credential.health.accept()
    preflight(settings, reference)
