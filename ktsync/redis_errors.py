"""One line for a Redis a command cannot use: unreachable, refusing the credentials, or lacking the DB index.

Every ``ktsync`` command ends with such a line (``Error: cannot reach Redis at redis://127.0.0.1:1/0:
Connection refused``) and exit status 1, never a traceback: the ``ktsync`` group turns the errors of
:data:`REDIS_ERRORS` into it. The URL is shown without its password.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from kombu.exceptions import OperationalError

REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, OperationalError)
PROBE_TIMEOUT = 2.0  # seconds for the follow-up question "how many databases do you have?"


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (user names stay: they help, they are no secret)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "the configured Redis URL"
    if not password:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_db(url: str) -> int:
    """The DB index a Redis URL selects (0 when it names none)."""
    try:
        db = redis.Redis.from_url(url).connection_pool.connection_kwargs.get("db", 0)
        return int(db)
    except (ValueError, TypeError):
        return 0


def redis_error_line(url: str, exc: BaseException, *, databases: int | None = None) -> str:
    """The one line for ``exc`` (``databases``: how many the server has, when known)."""
    where = redact(url)
    cause = _redis_cause(exc)
    if isinstance(cause, redis.AuthenticationError):
        line = f"Redis at {where} refused the credentials: {cause}"
    elif isinstance(cause, redis.ConnectionError | redis.TimeoutError):
        line = f"cannot reach Redis at {where}: {_reason(cause)}"
    elif isinstance(cause, redis.ResponseError) and databases is not None and url_db(url) >= databases:
        line = (f"cannot use Redis at {where}: DB index {url_db(url)} is out of range "
                f"(the server has {databases}: 0-{databases - 1})")  # fmt: skip
    elif isinstance(cause, redis.ResponseError):
        line = f"Redis at {where} answered with an error: {cause}"
    elif isinstance(cause, redis.RedisError):
        line = f"Redis at {where} failed: {type(cause).__name__}: {cause}"
    else:
        line = f"cannot use the broker at {where}: {cause}"
    return " ".join(line.split())


def _redis_cause(exc: BaseException) -> BaseException:
    """kombu and Celery wrap the Redis client's errors: the innermost Redis error, else ``exc``."""
    seen = exc
    while not isinstance(seen, redis.RedisError):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            return exc
        seen = inner
    return seen


def _reason(exc: BaseException) -> str:
    """``Connection refused``, ``Name or service not known``, ``timed out``: the operating system's words."""
    inner = exc.__cause__ or exc.__context__
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    if isinstance(exc, redis.TimeoutError) or isinstance(inner, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def server_databases(url: str) -> int | None:
    """How many databases the server behind ``url`` has (asked on DB 0); None when it does not say."""
    try:
        pool = redis.Redis.from_url(url).connection_pool  # the URL's own DB index would win over db=0
        options = {**pool.connection_kwargs, "db": 0, "socket_timeout": PROBE_TIMEOUT,
                   "socket_connect_timeout": PROBE_TIMEOUT}  # fmt: skip
        client = redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **options)
        )
        try:
            value = client.config_get("databases").get("databases")
        finally:
            client.close()
        return int(value) if value is not None else None
    except (redis.RedisError, ValueError, TypeError):
        return None  # CONFIG may be disabled (managed Redis): the server's own words then


def describe_redis_error(url: str, exc: BaseException) -> str:
    """:func:`redis_error_line`, after asking the server how many databases it has when that may be why."""
    cause = _redis_cause(exc)
    databases = server_databases(url) if isinstance(cause, redis.ResponseError) and url_db(url) > 0 else None
    return redis_error_line(url, exc, databases=databases)


def configured_redis_url() -> str:
    """The Redis URL the settings name: for the command group, which reports every command's Redis error."""
    from ktsync.config.settings import ConfigError, load_settings

    try:
        return load_settings().redis_url
    except ConfigError:
        return "the configured Redis URL"
