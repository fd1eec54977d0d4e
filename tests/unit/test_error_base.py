"""One error base: every ktsync error that says what it means derives from ``KtsyncError``.

The reasons are the dead-letter reasons operators group and replay by, so they are part of the public
interface: the table below pins them, and a slug is shared only by classes of one meaning.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import random
from types import ModuleType

import pytest

import ktsync
from ktsync.core.errors import UNEXPECTED, KtsyncError
from ktsync.worker.retry import Action, RetryPolicy, decide

# Every exception class that declares a reason today -> its slug. A slug never changes.
REASONS: dict[str, str] = {
    "ktsync.worker.klicktipp.errors.KlickTippError": "error",
    "ktsync.worker.klicktipp.errors.TransportError": "transport",
    "ktsync.worker.klicktipp.errors.RequestTimeout": "timeout",
    "ktsync.worker.klicktipp.errors.APIError": "api",
    "ktsync.worker.klicktipp.errors.UnexpectedStatus": "unexpected_status",
    "ktsync.worker.klicktipp.errors.ServerError": "server",
    "ktsync.worker.klicktipp.errors.RateLimited": "rate_limited",
    "ktsync.worker.klicktipp.errors.MalformedResponse": "malformed_response",
    "ktsync.worker.klicktipp.errors.AuthError": "auth",
    "ktsync.worker.klicktipp.errors.NotFound": "not_found",
    "ktsync.worker.klicktipp.errors.BadRequest": "bad_request",
    "ktsync.worker.klicktipp.errors.MethodNotAllowed": "method_not_allowed",
    "ktsync.worker.klicktipp.errors.Rejected": "rejected",
    "ktsync.worker.klicktipp.errors.ValidationError": "validation",
    "ktsync.worker.klicktipp.errors.ConflictError": "conflict",
    "ktsync.worker.klicktipp.errors.UnsubscribedError": "unsubscribed",
    "ktsync.worker.klicktipp.errors.SubscriptionNotFound": "subscription_not_found",
    "ktsync.worker.klicktipp.errors.NotSubscribedError": "not_subscribed",
    "ktsync.worker.klicktipp.errors.ContactNotFound": "contact_not_found",
    "ktsync.worker.klicktipp.errors.ContactOrTagNotFound": "contact_or_tag_not_found",
    "ktsync.worker.klicktipp.errors.ReferenceNotFound": "reference_not_found",
    "ktsync.worker.crm.base.FetchError": "crm_fetch",
    "ktsync.worker.locks.LockBusy": "lock_busy",
    "ktsync.worker.ratelimit.gate.Throttled": "throttled",
    "ktsync.worker.refresh.MissingCrmApi": "config",
    "ktsync.worker.service.EmailChangeConflict": "conflict",
    "ktsync.worker.tasks.CallbackFailed": "callback",
    "ktsync.worker.tasks.CredentialRefused": "credential_refused",
    "ktsync.worker.tasks.PoisonMessage": "poison",
}

# Slugs that several classes declare because they mean the same thing; any other slug has one class.
SHARED: dict[str, set[str]] = {
    # The new address belongs to another contact: KlickTipp's answer, and the e-mail change it refused.
    "conflict": {"ktsync.worker.klicktipp.errors.ConflictError", "ktsync.worker.service.EmailChangeConflict"},
    # The deployment is not configured for the work (fix the configuration, then replay): no CRM API for
    # an id-only webhook, a secret it cannot read, a tenant it does not serve or cannot add as asked.
    "config": {
        "ktsync.worker.refresh.MissingCrmApi",
        "ktsync.config.secrets.SecretError",
        "ktsync.config.registry.TenantRefused",
        "ktsync.tenant_admin.TenantAdminError",
    },
}


def name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def ktsync_modules() -> list[ModuleType]:
    """Every module of the ktsync packages (``ktsync.worker`` & co. are linked into ``ktsync``)."""
    names = [m.name for m in pkgutil.walk_packages(ktsync.__path__, "ktsync.")]
    # A ``__main__`` runs its command when imported; it defines no error of its own.
    return [importlib.import_module(module) for module in names if not module.endswith(".__main__")]


def exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for module in ktsync_modules()
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__
    ]


def declared_reasons() -> dict[str, str]:
    """Class name -> the reason it declares itself (not inherited), for every exception class."""
    return {name(cls): cls.__dict__["reason"] for cls in exception_classes() if "reason" in cls.__dict__}


def test_the_walk_finds_the_error_classes_of_every_layer() -> None:
    found = {name(cls) for cls in exception_classes()}
    assert set(REASONS) <= found
    assert {"ktsync.config.model.ConfigError", "ktsync.core.contract.ContractError"} <= found


def test_every_error_that_declares_a_reason_derives_from_the_one_base() -> None:
    stray = [
        name(cls)
        for cls in exception_classes()
        if "reason" in cls.__dict__ and not issubclass(cls, KtsyncError)
    ]
    assert stray == []


def test_every_declared_reason_is_a_slug() -> None:
    assert {n: r for n, r in declared_reasons().items() if not r.isidentifier() or r != r.lower()} == {}


def test_the_dead_letter_reasons_are_those_of_today() -> None:
    declared = declared_reasons()
    assert {n: declared.get(n) for n in REASONS} == REASONS


def test_a_reason_is_shared_only_by_classes_of_one_meaning() -> None:
    by_reason: dict[str, set[str]] = {}
    for cls_name, reason in declared_reasons().items():
        by_reason.setdefault(reason, set()).add(cls_name)
    unnamed = {
        reason: names - SHARED.get(reason, set()) for reason, names in by_reason.items() if len(names) > 1
    }
    assert {reason: names for reason, names in unnamed.items() if names} == {}


def test_the_two_configuration_errors_have_names_of_their_own() -> None:
    classes = [cls for cls in exception_classes() if cls.__name__ == "ConfigError"]
    assert [name(cls) for cls in classes] == ["ktsync.config.model.ConfigError"]


@pytest.mark.parametrize(
    "error_type",
    [
        "ktsync.config.model.ConfigError",
        "ktsync.worker.crm.base.CrmConfigError",
        "ktsync.worker.klicktipp.errors.KlickTippConfigError",
    ],
)
def test_a_configuration_error_is_a_ktsync_error_and_still_a_value_error(error_type: str) -> None:
    module, _, cls_name = error_type.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    assert issubclass(cls, KtsyncError)
    assert issubclass(cls, ValueError)
    # Found at start-up, never by a task: a task that met one would dead-letter it with its traceback.
    assert cls.reason == UNEXPECTED
    assert not cls.retryable


class Declared(KtsyncError):
    reason = "declared"


class Transient(KtsyncError):
    reason = "transient"
    retryable = True


@pytest.mark.parametrize(
    ("error", "attempt", "action", "reason"),
    [
        (Declared(), 1, Action.DEAD_LETTER, "declared"),
        (Transient(), 1, Action.RETRY, "transient"),
        (Transient(), 3, Action.DEAD_LETTER, "retries_exhausted"),
        # A ``reason`` attribute alone (here a str, as on UnicodeError or ssl.SSLError) says nothing.
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 1, Action.DEAD_LETTER, UNEXPECTED),
    ],
)
def test_the_retry_decision_takes_only_ktsync_errors_at_their_word(
    error: BaseException, attempt: int, action: Action, reason: str
) -> None:
    decision = decide(error, attempt, RetryPolicy(max_attempts=3), random.Random(1))
    assert (decision.action, decision.reason) == (action, reason)


def test_a_ktsync_error_without_fields_pickles() -> None:
    # Celery pickles the errors of failed tasks.
    restored = pickle.loads(pickle.dumps(Declared("boom")))  # noqa: S301 - our own bytes
    assert (type(restored), str(restored)) == (Declared, "boom")
