"""`ktsync console` as a user starts it: refused without users, a ready line with the real port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from tests.integration.console_helpers import OPERATOR, USERS_ENV, Client
from tests.integration.test_vertical_slice import ktsync

pytestmark = [pytest.mark.integration, pytest.mark.slow]
READY = re.compile(rb"ktsync console listening on (http://\S+)")


def test_the_console_refuses_to_start_without_users(env: dict[str, str]) -> None:
    bare = {k: v for k, v in os.environ.items() if not k.startswith("KTSYNC_CONSOLE_")}
    done = subprocess.run([sys.executable, "-m", "ktsync", "console", "--port", "0"], env={**bare, **env},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1
    assert "serves nobody without authentication: set KTSYNC_CONSOLE_AUTH" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_wrong_user_list_names_the_variable(env: dict[str, str]) -> None:
    done = ktsync("console", env={**env, "KTSYNC_CONSOLE_AUTH": "op"})
    assert done.returncode == 1
    assert "KTSYNC_CONSOLE_AUTH: entry 1 is not user:password" in done.stderr


def test_the_console_serves_on_loopback_with_a_ready_line(env: dict[str, str]) -> None:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([sys.executable, "-m", "ktsync", "console", "--port", "0"],
                                   stdout=out, stderr=err, env={**os.environ, **env, **USERS_ENV})  # fmt: skip
        try:
            deadline, found = time.monotonic() + 30, None
            while found is None and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.05)
                out.seek(0)
                found = READY.search(out.read())
            err.seek(0)
            assert found, f"no ready line (exit {process.poll()}): {err.read().decode()}"
            base = found.group(1).decode()
            assert base.startswith("http://127.0.0.1:")  # loopback unless --host says otherwise
            assert requests.get(base + "/healthz", timeout=10).json() == {"status": "ok"}
            client = Client(base)
            assert 'id="whoami">op (operator)' in client.login(OPERATOR).text
        finally:
            process.terminate()
            process.wait(timeout=15)
        err.seek(0)
        assert b"op-secret-1" not in err.read()  # no password in the log
