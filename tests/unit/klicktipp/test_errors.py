"""The error tree: stable reasons, retryability, printable, JSON-safe and picklable errors, code meanings."""

from __future__ import annotations

import json
import pickle

import pytest

from ktsync.worker.klicktipp import errors
from ktsync.worker.klicktipp.codes import ERROR_10_CODE_MEANINGS, ERROR_MEANINGS, describe
from ktsync.worker.klicktipp.errors import (
    APIError,
    KlickTippConfigError,
    KlickTippError,
    RateLimited,
    ReferenceNotFound,
    Rejected,
    TransportError,
    ValidationError,
)

TREE = [getattr(errors, name) for name in errors.__all__ if name != "KlickTippConfigError"]
RETRYABLE = {"TransportError", "RequestTimeout", "ServerError", "RateLimited", "MalformedResponse"}


def test_every_error_has_a_unique_reason() -> None:
    reasons = [cls.reason for cls in TREE]
    assert len(reasons) == len(set(reasons))


@pytest.mark.parametrize("cls", TREE, ids=lambda cls: cls.__name__)
def test_retryable_only_for_no_answer_and_transient_answers(cls: type[KlickTippError]) -> None:
    assert cls.retryable is (cls.__name__ in RETRYABLE)


def test_the_tree_splits_no_answer_from_a_bad_answer() -> None:
    for cls in TREE:
        assert issubclass(cls, KlickTippError)
        if cls is not KlickTippError:
            assert issubclass(cls, TransportError) != issubclass(cls, APIError), cls
    assert not issubclass(KlickTippConfigError, KlickTippError)
    assert issubclass(KlickTippConfigError, ValueError)


def test_the_406_family_is_permanent() -> None:
    for cls in TREE:
        if issubclass(cls, Rejected):
            assert not cls.retryable


def validation_error() -> ValidationError:
    return ValidationError(
        'Validation error: Lead Value "fieldLeadValue" with value "abc" must be a numeric value',
        operation="api.subscriber.update",
        status=406,
        error=7,
        field="Lead Value",
        field_key="fieldLeadValue",
        field_value="abc",
        field_reason="must be a numeric value",
        messages=("x",),
        http_reason="Not Acceptable",
    )


def test_to_dict_is_json_safe_and_complete() -> None:
    data = validation_error().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "type": "ValidationError",
        "reason": "validation",
        "retryable": False,
        "message": 'Validation error: Lead Value "fieldLeadValue" with value "abc" must be a numeric value',
        "meaning": "Field validation failed (error 7 on Update Contact)",
        "operation": "api.subscriber.update",
        "status": 406,
        "error": 7,
        "code": None,
        "retry_after": None,
        "messages": ["x"],
        "http_reason": "Not Acceptable",
        "field": "Lead Value",
        "field_key": "fieldLeadValue",
        "field_value": "abc",
        "field_reason": "must be a numeric value",
    }


def test_str_names_operation_status_reason_codes_and_message() -> None:
    error = RateLimited("slow down", operation="api.subscriber.tag", status=429, retry_after=2.5)
    assert str(error) == "api.subscriber.tag: HTTP 429 rate_limited: slow down (retry after 2.5s)"
    rejected = Rejected("no", operation="api.subscriber.create", status=406, error=10, code=99)
    assert str(rejected) == "api.subscriber.create: HTTP 406 rejected (error 10, code 99): no"
    assert str(TransportError("ConnectionError: refused", operation="api.tag.index")) == (
        "api.tag.index: transport: ConnectionError: refused"
    )


@pytest.mark.parametrize(
    "error",
    [
        validation_error(),
        ReferenceNotFound("Tag not found", operation="api.subscriber.tag", status=406, error=403, kind="tag"),
        RateLimited("x", operation="o", status=429, retry_after=1.0),
        TransportError("x", operation="o"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(error: KlickTippError) -> None:
    # Celery pickles exceptions into results and retries
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(copy) is type(error)
    assert copy.to_dict() == error.to_dict()
    assert str(copy) == str(error)


def test_code_meanings_are_data_for_operators() -> None:
    assert describe(7, None, "api.subscriber.update") == "Field validation failed (error 7 on Update Contact)"
    assert (
        describe(7, None, "api.subscriber.tag")
        == "Unknown email address or unknown tag (error 7 on tag/untag)"
    )
    assert describe(7, None, "api.subscriber.unsubscribe") == "Subscriber email not found"
    assert describe(10, 4) == ERROR_10_CODE_MEANINGS[4]
    assert describe(10, 77) == ERROR_MEANINGS[10]
    assert describe(507) == ERROR_MEANINGS[507]
    assert describe(None) is None
    assert describe(12345) is None
    with pytest.raises(TypeError):
        ERROR_MEANINGS[1] = "x"  # type: ignore[index]
