"""The HTTP shell the CRM fetchers share: a pooled session, one GET, and the status-to-error table.

Each CRM module keeps its decisions pure (response JSON -> ``FetchedContact``; status, headers, body ->
``FetchError``) and uses this module for the wire. The wire never retries (the worker's retry decision
does, from ``retryable`` and ``retry_after``), never follows redirects (they would carry the credentials
elsewhere) and never puts a credential into a log line, a repr or an error message.

Status table (``error_for_status``)::

    429                 retryable, after the CRM's Retry-After (or its own rate-limit hint)
    408, 425, 5xx       retryable (Retry-After honoured when sent)
    401, 403            not retryable: "check <CREDENTIAL_ENV>"
    anything else       not retryable (3xx, other 4xx)

404 (Zoho also 204) is not an error: the fetcher returns None, "the CRM no longer has it".
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Final

import requests
from requests.adapters import HTTPAdapter

from ktsync.worker.crm.base import CrmConfigError, FetchError
from ktsync.worker.klicktipp.classify import parse_retry_after
from ktsync.worker.klicktipp.http import Timeout

log = logging.getLogger(__name__)

#: Slightly above a multiple of 3 s, the TCP retransmission window (as requests' docs advise).
DEFAULT_CONNECT_TIMEOUT: Final = 3.05
#: CRM APIs answer a single-record read in well under a second; 15 s bounds a hung request.
DEFAULT_READ_TIMEOUT: Final = 15.0
DEFAULT_TIMEOUT: Final = Timeout(connect=DEFAULT_CONNECT_TIMEOUT, read=DEFAULT_READ_TIMEOUT)
#: Keep-alive connections per host: one per worker thread (the default pool has 8).
DEFAULT_POOL_SIZE: Final = 16
#: CRM record ids (HubSpot and Zoho: digits, Close: ``cont_…``/``lead_…``). Anything else could walk
#: the URL path (``../``) with our credentials attached, so it is refused before any request.
RECORD_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
DETAIL_LIMIT: Final = 200
RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
AUTH_STATUSES: Final = frozenset({401, 403})
_TRANSPORT_FAILURES: Final = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (names lower-cased) and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class CrmHttp:
    """GETs against one CRM API base URL over a keep-alive pool, with the credentials on the session."""

    def __init__(
        self,
        crm: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        secrets: Iterable[str] = (),
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.crm = crm
        self.base_url = base_url.rstrip("/")
        self._owns_session = session is None
        self._session = session if session is not None else pooled_session(self.base_url, pool_size)
        self._session.headers.update({"Accept": "application/json", **(headers or {})})
        if auth is not None:
            self._session.auth = auth
        self._secrets = tuple(s for s in secrets if s)
        self._timeout = timeout.as_requests()

    def __repr__(self) -> str:
        return f"CrmHttp(crm={self.crm!r}, base_url={self.base_url!r})"

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Answer:
        """One GET; a transport failure becomes a retryable ``FetchError``."""
        started = time.perf_counter()
        try:
            response = self._session.get(
                self.base_url + path, params=params, timeout=self._timeout, allow_redirects=False
            )
        except _TRANSPORT_FAILURES as exc:
            log.debug("%s GET %s failed: %s", self.crm, path, type(exc).__name__)
            raise FetchError(
                f"{self.crm}: no answer from {self.base_url} ({type(exc).__name__})",
                retryable=True,
                crm=self.crm,
            ) from None
        except requests.RequestException as exc:  # invalid URL and the like: a configuration mistake
            raise FetchError(
                f"{self.crm}: request to {self.base_url} failed ({type(exc).__name__})",
                retryable=False,
                crm=self.crm,
            ) from None
        log.debug(
            "%s GET %s -> %d in %.3fs", self.crm, path, response.status_code, time.perf_counter() - started
        )
        headers = {name.lower(): value for name, value in response.headers.items()}
        body = response.content
        if not 200 <= response.status_code < 300:
            # An error message may quote the request back: blank the credentials before anyone reads it.
            for secret in self._secrets:
                body = body.replace(secret.encode(), b"***")
        return Answer(response.status_code, headers, body)

    def close(self) -> None:
        if self._owns_session:
            self._session.close()


def pooled_session(base_url: str, pool_size: int = DEFAULT_POOL_SIZE) -> requests.Session:
    """A keep-alive pool reading proxy and CA settings from the environment once, and no cookie jar.

    ``trust_env`` is off so that ``~/.netrc`` can never replace the credentials we set.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# -- pure helpers ----------------------------------------------------------------------------------


def record_id(crm: str, value: str, what: str = "contact id") -> str:
    """``value`` if it can be a record id of the CRM; a non-retryable ``FetchError`` otherwise."""
    if not RECORD_ID.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise FetchError(f"{crm}: {shown!r} is not a valid {what}", retryable=False, crm=crm)
    return value


def decode_json(crm: str, answer: Answer) -> object:
    """The JSON body of a 2xx answer; a body that is not JSON is a retryable ``FetchError``."""
    try:
        return json.loads(answer.body)
    except ValueError:
        raise FetchError(
            f"{crm}: answer is not JSON (HTTP {answer.status}, {len(answer.body)} bytes)",
            retryable=True,
            crm=crm,
            status=answer.status,
        ) from None


def json_or_none(body: bytes) -> object:
    """The decoded body of an error answer, or None (proxies put HTML there)."""
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


def malformed(crm: str, what: str, status: int = 200) -> FetchError:
    """A 2xx answer of the wrong shape: retryable (a proxy or a passing API fault)."""
    return FetchError(f"{crm}: unexpected answer ({what})", retryable=True, crm=crm, status=status)


def error_for_status(
    crm: str, status: int, *, retry_after: float | None, detail: str, credential: str
) -> FetchError:
    """The error for a non-2xx, non-"not found" answer (see the module's table)."""
    suffix = f" ({detail})" if detail else ""
    if status in AUTH_STATUSES:
        return FetchError(
            f"{crm} refused the credentials (HTTP {status}){suffix}: check {credential}",
            retryable=False,
            crm=crm,
            status=status,
        )
    if status == 429:
        wait = f", retry after {retry_after:g}s" if retry_after is not None else ""
        return FetchError(
            f"{crm} rate limit (HTTP 429{wait}){suffix}",
            retryable=True,
            retry_after=retry_after,
            crm=crm,
            status=status,
        )
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    kind = "server error" if status >= 500 else "unexpected answer"
    return FetchError(
        f"{crm} {kind} (HTTP {status}){suffix}",
        retryable=retryable,
        retry_after=retry_after if retryable else None,
        crm=crm,
        status=status,
    )


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (lower-cased names), or None."""
    return parse_retry_after(headers.get("retry-after"), now=now)


def number(value: object) -> float | None:
    """A finite, non-negative number from a header or JSON value, or None."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return result if 0 <= result < float("inf") else None


def detail(*parts: object) -> str:
    """The non-empty parts, comma-separated and cut to a readable length (never a whole body)."""
    text = ", ".join(str(p).strip() for p in parts if isinstance(p, str | int) and str(p).strip())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def text(value: object) -> str | None:
    """A stripped, non-empty string, or None (for CRM values that may be null, empty or absent)."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def base_url_from_env(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) base URL from ``env[name]`` (or the default), without a trailing slash."""
    value = env.get(name, "").strip() or default
    if not value.startswith(("https://", "http://")):
        raise CrmConfigError(f"{name}: must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def names_from_env(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of names from ``env[name]``, or the default when unset or blank."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not all(re.fullmatch(r"[A-Za-z0-9_.$-]{1,100}", n) for n in names):
        raise CrmConfigError(f"{name}: must be comma-separated property names, got {raw!r}")
    return names
