"""The JSON Schema of contract v1: generated from the contract, committed, shipped, and of one mind with it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from marshmallow import Schema, fields

from ktsync.cli import main
from ktsync.core.contract import ContractError, MessageType, parse_message
from ktsync.core.contract_patterns import NOT_WHITESPACE, WHITESPACE, digits_below
from ktsync.core.contract_schema import SCHEMA_FILE, contract_schema, contract_schema_text
from tests.contract_cases import (
    ACCEPTED,
    EDGE_VALUES,
    EXAMPLES,
    KEYS,
    REJECTED,
    SCHEMA_GAPS,
    changed,
    near_valid,
    nested,
)

COMMITTED = Path(__file__).parents[2] / "producers" / SCHEMA_FILE
REGENERATE = f"run `ktsync contract schema > producers/{SCHEMA_FILE}`"
SCHEMA = contract_schema()
VALIDATOR = Draft202012Validator(SCHEMA)


def contract_rejection(message: object) -> ContractError | None:
    try:
        parse_message(message)
    except ContractError as exc:
        return exc
    return None


def contract_accepts(message: object) -> bool:
    return contract_rejection(message) is None


def test_the_committed_schema_is_the_generated_one() -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if committed != contract_schema_text():
        pytest.fail(f"producers/{SCHEMA_FILE} differs from the contract: {REGENERATE}", pytrace=False)


def test_the_schema_ships_as_package_data_of_ktsync_producers() -> None:
    resource = resources.files("ktsync.producers").joinpath(SCHEMA_FILE)
    assert json.loads(resource.read_text(encoding="utf-8")) == SCHEMA


def test_ktsync_contract_schema_prints_it() -> None:
    result = CliRunner().invoke(main, ["contract", "schema"])
    assert result.exit_code == 0, result.output
    assert result.output == contract_schema_text()


def test_it_is_a_draft_2020_12_schema_with_one_branch_per_message_type() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert [branch["properties"]["type"] for branch in SCHEMA["oneOf"]] == [{"const": t} for t in MessageType]


@pytest.mark.parametrize("message", ACCEPTED)
def test_every_accepted_case_is_valid_under_the_schema(message: dict[str, Any]) -> None:
    assert contract_accepts(message)
    assert VALIDATOR.is_valid(message), [error.message for error in VALIDATOR.iter_errors(message)]


@pytest.mark.parametrize(("message", "field", "reason"), REJECTED)
def test_every_rejected_case_is_invalid_under_the_schema(
    message: dict[str, Any], field: str, reason: str
) -> None:
    assert not contract_accepts(message)
    assert not VALIDATOR.is_valid(message), (
        f"the schema accepts what the contract rejects ({field}: {reason})"
    )


@pytest.mark.parametrize(("message", "field", "reason"), SCHEMA_GAPS)
def test_what_the_schema_cannot_say_is_only_what_the_readme_lists(
    message: dict[str, Any], field: str, reason: str
) -> None:
    # Days a month does not have: the contract rejects them, a JSON Schema pattern does not (README)
    assert not contract_accepts(message)
    assert VALIDATOR.is_valid(message)


@pytest.mark.parametrize("value", [[], "text", 42, None, [EXAMPLES[0]]])
def test_anything_but_an_object_is_invalid_under_both(value: object) -> None:
    assert not contract_accepts(value)
    assert not VALIDATOR.is_valid(value)


# Generated messages, as they travel: JSON (no NaN or Infinity, which JSON cannot carry).
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40), st.sampled_from([value for value in EDGE_VALUES if not isinstance(value, dict | list)]),
)  # fmt: skip
json_values = nested(json_scalars)
json_messages = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=len(KEYS))
near_valid_pairs = st.builds(
    lambda base, first, second: changed(base, **dict([first, second])),
    st.sampled_from(EXAMPLES),
    st.tuples(st.sampled_from(KEYS), json_scalars),
    st.tuples(st.sampled_from(KEYS), json_scalars),
)


def same_verdict(message: object) -> None:
    try:
        wire = json.loads(json.dumps(message, allow_nan=False))
    except ValueError:  # NaN or Infinity: not JSON, so no JSON Schema verdict to compare
        return
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in VALIDATOR.iter_errors(wire)]
    rejection = contract_rejection(wire)
    if rejection is not None:
        assert errors, f"the schema accepts what the contract rejects ({rejection}): {wire!r}"
    else:
        assert not errors, f"the schema rejects what the contract accepts ({errors}): {wire!r}"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(near_valid)
def test_a_valid_message_with_one_field_changed_gets_the_same_verdict_from_both(
    message: dict[str, Any],
) -> None:
    same_verdict(message)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(near_valid_pairs)
def test_a_valid_message_with_two_fields_changed_gets_the_same_verdict_from_both(
    message: dict[str, Any],
) -> None:
    same_verdict(message)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(json_messages)
def test_any_json_message_gets_the_same_verdict_from_both(message: dict[str, Any]) -> None:
    same_verdict({**message, "v": 1} if "v" not in message else message)


def patterns(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from patterns(item)


def strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from strings(item)


@pytest.mark.slow
def test_the_whitespace_class_is_exactly_what_python_strips() -> None:
    spaces = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
    assert [c for c in spaces if not re.fullmatch(WHITESPACE, c)] == []
    assert all(re.fullmatch(NOT_WHITESPACE, chr(code)) for code in range(0x110000) if not chr(code).isspace())


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**14), st.integers(min_value=0, max_value=2 * 10**14))
def test_digits_below_matches_exactly_the_numbers_of_that_length_below_the_limit(
    limit: int, number: int
) -> None:
    expected = len(str(number)) == len(str(limit)) and number < limit and number != 0
    assert (re.fullmatch(f"(?:{digits_below(limit)})", str(number)) is not None) == expected


def test_every_pattern_compiles_in_python_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for pattern in set(patterns(SCHEMA)):
            re.compile(pattern)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_every_pattern_gives_javascript_the_verdict_it_gives_python() -> None:
    # Given every pattern of the schema and every string of the contract cases
    cases = [param.values[0] for param in [*ACCEPTED, *REJECTED, *SCHEMA_GAPS]]
    texts = sorted(
        set(strings([cases, EDGE_VALUES])) | {"hubspot\n", "a@x.de\r", "\u2028501", "\ufeff1\ufeff"}
    )
    compiled = sorted(set(patterns(SCHEMA)))
    script = (
        "const {patterns, texts} = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map(p => { const r = new RegExp(p, 'u');"
        " return texts.map(t => r.test(t)); })));"
    )
    # When JavaScript (with the u flag, as ajv compiles them) and Python's re search each text
    run = subprocess.run(["node", "-e", script], input=json.dumps({"patterns": compiled, "texts": texts}),
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    javascript = json.loads(run.stdout)
    python = [[re.search(pattern, text) is not None for text in texts] for pattern in compiled]
    # Then they agree on every one
    differences = [
        (pattern, text)
        for pattern, js_row, py_row in zip(compiled, javascript, python, strict=True)
        for text, js, py in zip(texts, js_row, py_row, strict=True)
        if js != py
    ]
    assert differences == []


def test_a_new_optional_field_is_published_without_a_change_to_the_generator() -> None:
    class WithFlag(Schema):
        flag = fields.Boolean(load_default=False)

    published = contract_schema({MessageType.DELETED: WithFlag})
    assert published["oneOf"][0]["properties"]["flag"] == {"$ref": "#/$defs/flag"}
    assert published["$defs"]["flag"]["default"] is False
    assert "flag" not in published["oneOf"][0]["required"]


def test_a_field_without_an_exact_json_schema_stops_the_generator_with_its_name() -> None:
    class Loose(Schema):
        count = fields.Integer()  # takes "5" too, and rejects 5.0: no JSON Schema says that

    with pytest.raises(TypeError, match=r"contact\.upsert\.count: no exact JSON Schema for Integer"):
        contract_schema({MessageType.UPSERT: Loose})
