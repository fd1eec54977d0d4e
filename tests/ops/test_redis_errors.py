"""A wrong Redis URL or DB index: one clear line and exit status 1 from every command, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from click.testing import CliRunner
from kombu.exceptions import OperationalError

from ktsync.cli import main
from ktsync.core.redis_server import RedisHandle
from ktsync.redis_errors import redact, redis_error_line

REFUSED = "redis://127.0.0.1:1/0"  # a port nobody listens on
COMMANDS = [
    ["status", "--ping-timeout", "0"],
    ["status", "--json"],
    ["dlq", "list"],
    ["dlq", "stats"],
    ["contact", "show", "someone@shop.example"],
    ["review", "list"],
    ["metrics", "--port", "0"],
]


def chained(error: Exception, cause: BaseException) -> Exception:
    error.__context__ = cause  # as redis-py raises it: inside the ``except`` of the socket error
    return error


@pytest.fixture
def out_of_range(redis_handle: RedisHandle) -> tuple[str, int]:
    """The test Redis's URL with a DB index it does not have, and how many it has."""
    client = redis.Redis.from_url(redis_handle.url)
    try:
        databases = int(client.config_get("databases")["databases"])
    except (redis.ResponseError, KeyError):
        pytest.skip("this Redis does not tell how many databases it has (CONFIG disabled)")
    finally:
        client.close()
    return urlunsplit(urlsplit(redis_handle.url)._replace(path=f"/{databases}")), databases


@pytest.mark.parametrize(
    ("url", "error", "databases", "line"),
    [
        (REFUSED, chained(redis.ConnectionError("Error 111 connecting"), ConnectionRefusedError(111, "Connection refused")),
         None, f"cannot reach Redis at {REFUSED}: Connection refused"),
        ("redis://nohost.invalid:6379/0", chained(redis.ConnectionError("Error -2"), OSError(-2, "Name or service not known")),
         None, "cannot reach Redis at redis://nohost.invalid:6379/0: Name or service not known"),
        (REFUSED, redis.TimeoutError("Timeout connecting to server"), None,
         f"cannot reach Redis at {REFUSED}: timed out"),
        ("redis://:s3cret@h:6379/0", redis.AuthenticationError("invalid username-password pair"), None,
         "Redis at redis://:***@h:6379/0 refused the credentials: invalid username-password pair"),
        ("redis://h:6379/99", redis.ResponseError("DB index is out of range"), 16,
         "cannot use Redis at redis://h:6379/99: DB index 99 is out of range (the server has 16: 0-15)"),
        ("redis://h:6379/99", redis.ResponseError("DB index is out of range"), None,
         "Redis at redis://h:6379/99 answered with an error: DB index is out of range"),
        (REFUSED, chained(OperationalError("publish failed"),
                          chained(redis.ConnectionError("x"), ConnectionRefusedError(111, "Connection refused"))),
         None, f"cannot reach Redis at {REFUSED}: Connection refused"),  # kombu's wrapper: the Redis error inside
    ],
)  # fmt: skip
def test_each_redis_failure_has_its_one_line(
    url: str, error: Exception, databases: int | None, line: str
) -> None:
    assert redis_error_line(url, error, databases=databases) == line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://ops:s3cret@h:6380/2", "rediss://ops:***@h:6380/2"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_the_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_says_in_one_line_that_redis_is_unreachable(
    args: list[str], env: dict[str, str], out_of_range: tuple[str, int]
) -> None:
    bad_db, databases = out_of_range
    for url, expected in (
        (REFUSED, f"Error: cannot reach Redis at {REFUSED}: Connection refused"),
        (bad_db, f"Error: cannot use Redis at {bad_db}: DB index {databases} is out of range (the server has "
                 f"{databases}: 0-{databases - 1})"),
    ):  # fmt: skip
        # When run in-process (click's runner) with a wrong URL or DB index
        result = CliRunner().invoke(main, args, env={**env, "KTSYNC_REDIS_URL": url})

        # Then exit status 1 and one line on stderr, no traceback
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines() == [expected], result.output
        assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("args", [COMMANDS[0], COMMANDS[2], COMMANDS[4], COMMANDS[6]], ids=" ".join)
def test_the_real_command_line_prints_one_line_and_no_traceback(
    args: list[str], env: dict[str, str], out_of_range: tuple[str, int]
) -> None:
    for url in (REFUSED, out_of_range[0]):
        result = subprocess.run([sys.executable, "-m", "ktsync", *args], capture_output=True, text=True,
                                env={**env, "KTSYNC_REDIS_URL": url}, timeout=60, check=False)  # fmt: skip

        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error: cannot ")
        assert url in line
