"""`ktsync check`: the configuration against the KlickTipp account, with no worker and no Redis.

Real parts: the ``ktsync`` command line as a subprocess, and the fake KlickTipp over loopback. The
config names a Redis on a closed port: the check must never need it.

Until ``ktsync/cli.py`` registers the command (``main.add_command(check)``), :func:`ktsync_check`
registers it in the subprocess itself; once it is registered, ``tests.ops.conftest.ktsync("check", ...)``
runs the same thing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fake_klicktipp.testing import (
    DEMO_CUSTOMER_KEY,
    DEMO_DEVELOPER_KEY,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DOUBLE_OPT_IN_LIST_ID,
    SINGLE_OPT_IN_LIST_ID,
    FakeControl,
    RunningFake,
)
from ktsync.config.settings import DEFAULT_CONFIG_PATH

pytestmark = pytest.mark.slow  # every test runs `ktsync check` as a subprocess

# The command registered in the subprocess (idempotent once ktsync/cli.py registers it too).
CHECK = (
    "from ktsync.cli import main; from ktsync.cli_check import check; "
    "main.add_command(check); main(prog_name='ktsync')"
)
READS = {("POST", "/account/login"), ("POST", "/account/logout")}  # besides every GET


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ktsync_check(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``ktsync check ARGS`` as a user would."""
    return subprocess.run(
        [sys.executable, "-c", CHECK, "check", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config_file(tmp_path: Path, fake_server: RunningFake) -> Callable[..., Path]:
    """``config_file(hubspot={...})``: the default config on the fake, opt-in process 23, no Redis."""

    def write(*, klicktipp: dict[str, Any] | None = None, **sources: dict[str, Any]) -> Path:
        document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
        document["redis"]["url"] = f"redis://127.0.0.1:{closed_port()}/0"  # never needed
        document["klicktipp"].update(base_url=fake_server.base_url, **(klicktipp or {}))
        document["sources"]["default"]["listid"] = SINGLE_OPT_IN_LIST_ID
        for name, entry in sources.items():
            document["sources"][name] = {**document["sources"].get(name, {}), **entry}
        path = tmp_path / "ktsync.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def env(config_file: Callable[..., Path], fake: FakeControl) -> dict[str, str]:
    """The operator's environment: the account's password (no KTSYNC_* or KLICKTIPP_* of the shell),
    on the fake reset to its seed (``fake``: no faults left by a test before)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("KTSYNC_", "KLICKTIPP_"))}
    return {
        **inherited,
        "KTSYNC_CONFIG": str(config_file()),
        "KLICKTIPP_USERNAME": DEMO_USERNAME,
        "KLICKTIPP_PASSWORD": DEMO_PASSWORD,
    }


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def assert_one_line_error(result: subprocess.CompletedProcess[str], starts: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"Error: {starts}"), result.stderr


def test_a_configuration_that_fits_says_so_and_only_reads(env: dict[str, str], fake: FakeControl) -> None:
    # Given the default configuration on an account that has all it names
    # When the operator checks it
    result = ktsync_check(env=env)

    # Then every key is ok, the opt-in process says its kind, and the last line says it all fits
    assert result.returncode == 0, result
    out = lines(result)
    assert out[0] == f"ok    credentials: KlickTipp at {fake.base_url} accepts them (password login)"
    assert 'ok    sources.default.listid: opt-in process 23 "CRM Single Opt-In" (single opt-in)' in out
    assert "ok    sources.default.fields.firstname: data field 'fieldFirstName' (label \"First Name\")" in out
    assert 'ok    sources.default.crm_id_field: data field labelled "CRM Contact ID" (field100001)' in out
    assert any(line.startswith('info  sources.default.tags: 1 tag named "[CRM] …" exists') for line in out)
    assert out[-1] == "everything fits"
    assert result.stderr == ""
    # And nothing in the account was changed
    writes = [(r["method"], r["path"]) for r in fake.requests() if r["method"] != "GET"]
    assert set(writes) <= READS, writes


def test_a_source_on_a_double_opt_in_process_with_partner_keys_fits(
    env: dict[str, str], config_file: Callable[..., Path], fake: FakeControl
) -> None:
    partner = {"KLICKTIPP_DEVELOPER_KEY": DEMO_DEVELOPER_KEY, "KLICKTIPP_CUSTOMER_KEY": DEMO_CUSTOMER_KEY}
    path = config_file(hubspot={"listid": DOUBLE_OPT_IN_LIST_ID})

    result = ktsync_check("--config", str(path), env={**env, **partner, "KTSYNC_CONFIG": "/nowhere"})

    assert result.returncode == 0, result
    out = lines(result)
    assert out[0].endswith("accepts them (partner keys)")
    assert 'ok    sources.hubspot.listid: opt-in process 24 "CRM Double Opt-In" (double opt-in)' in out
    assert out[-1] == "everything fits"


def test_a_mapped_field_the_account_lacks_is_named_by_source_and_property(
    env: dict[str, str], config_file: Callable[..., Path]
) -> None:
    # Given a hubspot mapping that names a field key and a label the account does not have
    fields = {"firstname": "fieldFirstName", "nickname": "fieldNickName", "shoe": {"label": "Shoe Size"}}
    path = config_file(hubspot={"fields": fields})

    # When it is checked
    result = ktsync_check(env={**env, "KTSYNC_CONFIG": str(path)})

    # Then each is a problem under its key, the rest still fits, and it exits 1
    assert result.returncode == 1, result
    out = lines(result)
    assert "FAIL  sources.hubspot.fields.nickname: the account has no data field 'fieldNickName'" in out
    assert "FAIL  sources.hubspot.fields.shoe: the account has no data field labelled 'Shoe Size'" in out
    assert any(line.startswith("ok    sources.hubspot.fields.firstname:") for line in out)
    assert out[-1] == "2 problem(s)"
    assert "Traceback" not in result.stderr


def test_an_opt_in_process_that_does_not_exist_is_named_with_those_that_do(
    env: dict[str, str], config_file: Callable[..., Path]
) -> None:
    path = config_file(default={"listid": 999})

    result = ktsync_check(env={**env, "KTSYNC_CONFIG": str(path)})

    assert result.returncode == 1, result
    assert (
        "FAIL  sources.default.listid: opt-in process 999 does not exist (account has: 23 (CRM Single Opt-In), "
        "24 (CRM Double Opt-In), 3 (default double opt-in))"
    ) in lines(result)
    assert lines(result)[-1] == "1 problem(s)"


def test_a_missing_crm_id_field_is_one_problem_line(
    env: dict[str, str], config_file: Callable[..., Path]
) -> None:
    path = config_file(default={"crm_id_field": "CRM Kontakt-ID"})

    result = ktsync_check(env={**env, "KTSYNC_CONFIG": str(path)})

    assert result.returncode == 1, result
    assert (
        "FAIL  sources.default.crm_id_field: the account has no data field labelled 'CRM Kontakt-ID'; create "
        "it in KlickTipp (a custom field of type line) or change the label"
    ) in lines(result)
    assert lines(result)[-1] == "1 problem(s)"


@pytest.mark.parametrize(
    ("wrong", "secret"),
    [
        ({"KLICKTIPP_PASSWORD": "not-the-password"}, "not-the-password"),
        (
            {"KLICKTIPP_DEVELOPER_KEY": DEMO_DEVELOPER_KEY, "KLICKTIPP_CUSTOMER_KEY": "not-the-key"},
            "not-the-key",
        ),
    ],
    ids=["password", "partner_keys"],
)
def test_credentials_klicktipp_refuses_fail_in_one_line_without_the_secret(
    env: dict[str, str], fake: FakeControl, wrong: dict[str, str], secret: str
) -> None:
    result = ktsync_check(env={**env, **wrong})

    assert_one_line_error(result, "credentials: KlickTipp refuses them (")
    assert result.stdout == ""
    assert secret not in result.stdout + result.stderr


def test_credentials_that_are_not_set_fail_in_one_line(env: dict[str, str]) -> None:
    result = ktsync_check(env={k: v for k, v in env.items() if k != "KLICKTIPP_PASSWORD"})

    assert_one_line_error(result, "credentials: KLICKTIPP_PASSWORD not set")


def test_klicktipp_unreachable_fails_in_one_line(env: dict[str, str]) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"

    result = ktsync_check(env={**env, "KLICKTIPP_BASE_URL": base_url})

    assert_one_line_error(result, f"KlickTipp at {base_url}: cannot connect (Connection refused)")
    assert result.stdout == ""


def test_klicktipp_answering_too_late_fails_in_one_line(
    env: dict[str, str], config_file: Callable[..., Path], fake: FakeControl
) -> None:
    fake.faults(latency_ms=2000)
    path = config_file(klicktipp={"read_timeout": 0.2})

    result = ktsync_check("--config", str(path), env=env)

    assert_one_line_error(result, f"KlickTipp at {fake.base_url}: no answer in time (timed out)")


def test_klicktipp_failing_to_answer_fails_in_one_line(env: dict[str, str], fake: FakeControl) -> None:
    fake.faults(outage_seconds=60)

    result = ktsync_check(env=env)

    assert_one_line_error(result, f"KlickTipp at {fake.base_url}: cannot read the account (")
    assert "HTTP 503" in result.stderr


def test_json_says_ok_problems_and_every_check(env: dict[str, str], config_file: Callable[..., Path]) -> None:
    # Given one source that fits and one with a field the account lacks
    path = config_file(hubspot={"fields": {"nickname": "fieldNickName"}})

    # When it is checked for a script
    result = ktsync_check("--json", "--config", str(path), env=env)

    # Then stdout is one JSON object with the problem and every check
    assert result.returncode == 1, result
    document = json.loads(result.stdout)
    assert set(document) == {"ok", "problems", "checks"}
    assert document["ok"] is False
    assert document["problems"] == [
        {
            "status": "fail",
            "key": "sources.hubspot.fields.nickname",
            "message": "the account has no data field 'fieldNickName'",
        }
    ]
    statuses = {c["key"]: c["status"] for c in document["checks"]}
    assert statuses["credentials"] == "ok"
    assert statuses["sources.default.listid"] == "ok"
    assert statuses["sources.hubspot.tags"] == "info"
    assert all(set(c) == {"status", "key", "message"} for c in document["checks"])


def test_json_of_a_check_that_could_not_run(env: dict[str, str]) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"

    result = ktsync_check("--json", env={**env, "KLICKTIPP_BASE_URL": base_url})

    assert_one_line_error(result, f"KlickTipp at {base_url}: cannot connect")
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert [p["key"] for p in document["problems"]] == ["klicktipp.base_url"]
    assert document["checks"] == document["problems"]


def test_an_invalid_configuration_fails_as_in_every_command(env: dict[str, str]) -> None:
    result = ktsync_check(env={**env, "KTSYNC_RATE_LIMIT": "abc"})

    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert "KTSYNC_RATE_LIMIT=abc: Not a valid number." in result.stderr


def test_a_config_file_that_does_not_exist_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    result = ktsync_check("--config", str(tmp_path / "missing.yaml"), env=env)

    assert result.returncode == 64, result
    assert "does not exist" in result.stderr
