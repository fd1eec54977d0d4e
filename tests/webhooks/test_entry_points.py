"""`ktsync webhooks` (registered on a click group) and `python -m ktsync.producers.webhooks` as a process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
import redis
import requests
from click.testing import CliRunner

from ktsync.cli_webhooks import register
from ktsync.config.settings import Settings, load_settings
from ktsync.core.redis_server import RedisHandle
from ktsync.producers.webhooks.secrets import WebhookConfigError, WebhookSecrets
from tests.webhooks.helpers import KLICKTIPP_TOKEN, queued, settings_for

READY = re.compile(rb"ktsync webhooks listening on (http://\S+)")
ROOT = Path(__file__).resolve().parents[2]


def command() -> click.Group:
    @click.group()
    def main() -> None:
        pass

    register(main, lambda: load_settings({}))
    return main


def test_the_command_lists_its_routes_and_variables() -> None:
    result = CliRunner().invoke(command(), ["webhooks", "--help"])
    assert result.exit_code == 0
    for name in ("/webhooks/hubspot", "HUBSPOT_CLIENT_SECRET", "CLOSE_WEBHOOK_SIGNATURE_KEY", "ZOHO_CHANNEL_TOKEN",
                 "KTSYNC_WEBHOOK_SECRET", "KLICKTIPP_WEBHOOK_TOKEN", "KTSYNC_WEBHOOK_PUBLIC_URL", "--port"):  # fmt: skip
        assert name in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no webhook route is configured"),
        (
            {"CLOSE_WEBHOOK_SIGNATURE_KEY": "not-hex"},
            "CLOSE_WEBHOOK_SIGNATURE_KEY: must be the hex signature_key",
        ),
        ({"ZOHO_CHANNEL_ID": "1"}, "ZOHO_CHANNEL_ID and ZOHO_CHANNEL_TOKEN: set both or neither"),
        (
            {"HUBSPOT_CLIENT_SECRET": "s", "KTSYNC_WEBHOOK_PUBLIC_URL": "hooks.example"},
            "KTSYNC_WEBHOOK_PUBLIC_URL",
        ),
    ],
)
def test_the_command_refuses_to_start_misconfigured(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("HUBSPOT_", "CLOSE_", "ZOHO_", "KLICKTIPP_WEBHOOK", "KTSYNC_WEBHOOK")):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(command(), ["webhooks"], env=env)
    assert result.exit_code == 1
    assert message in result.output


def test_secrets_from_the_environment_never_show_in_reprs() -> None:
    secrets = WebhookSecrets.from_env(
        {
            "HUBSPOT_CLIENT_SECRET": "hs-s3cret",
            "CLOSE_WEBHOOK_SIGNATURE_KEY": "ABcd",
            "KLICKTIPP_WEBHOOK_TOKEN": "kt",
            "KLICKTIPP_WEBHOOK_ID_PARAM": "kid",
            "KTSYNC_WEBHOOK_PUBLIC_URL": "https://hooks.example/kt/",
        }
    )
    assert secrets.close_signature_key == b"\xab\xcd"
    assert (secrets.klicktipp_token_param, secrets.klicktipp_id_param) == ("Authorization", "kid")
    assert secrets.public_url == "https://hooks.example/kt"
    assert secrets.enabled() == {"hubspot", "close", "klicktipp"}
    assert "hs-s3cret" not in repr(secrets)
    assert "abcd" not in repr(secrets).lower()
    with pytest.raises(WebhookConfigError) as caught:
        WebhookSecrets.from_env({"CLOSE_WEBHOOK_SIGNATURE_KEY": "zz-secret-zz"})
    assert "zz-secret-zz" not in str(caught.value)


@contextmanager
def module_process(env: dict[str, str]) -> Iterator[str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "ktsync.producers.webhooks", "--port", "0", "--log-level", "warning"],
            stdout=out, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and process.poll() is None:
                out.seek(0)
                found = READY.search(out.read())
                if found:
                    yield found.group(1).decode()
                    return
                time.sleep(0.05)
            err.seek(0)
            raise AssertionError(f"no ready line (exit {process.poll()}): {err.read().decode()}")
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.slow
def test_python_m_producers_webhooks_serves_with_a_ready_line(
    redis_handle: RedisHandle, namespace: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Given a config file on the test's Redis keys (what KTSYNC_CONFIG points a deployment at)
    settings: Settings = settings_for(redis_handle, namespace)
    config = tmp_path / "ktsync.yaml"
    config.write_text(
        f"version: 1\nredis: {{url: '{redis_handle.url}', key_prefix: '{namespace}', "
        f"broker_prefix: '{settings.broker_prefix}'}}\nworker: {{queue: '{namespace}'}}\n"
        "sources: {default: {listid: null}}\n",
        encoding="utf-8",
    )
    env = {"KTSYNC_CONFIG": str(config), "KLICKTIPP_WEBHOOK_TOKEN": KLICKTIPP_TOKEN}
    with module_process(env) as url, requests.Session() as http:
        http.trust_env = False
        assert http.get(f"{url}/healthz", timeout=5).status_code == 200
        answer = http.post(
            f"{url}/webhooks/klicktipp",
            data={"email": "a@b.example", "Authorization": KLICKTIPP_TOKEN},
            timeout=10,
        )
        assert answer.status_code == 200
        assert (
            http.post(f"{url}/webhooks/hubspot", data=b"[]", timeout=5).status_code == 404
        )  # not configured
    assert [name for name, _ in queued(redis_client, settings)] == ["ktsync.refresh_from_klicktipp"]
