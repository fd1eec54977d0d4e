"""Pure request authentication: each vendor's HMAC signature scheme and static-token comparison.

Every check takes the headers (lower-case names), the raw body, the secret and ``now`` (Unix
seconds), returns None when the request is authentic and raises :class:`SignatureError` otherwise.
``SignatureError.kind`` tells logs *why* (missing, malformed, stale, mismatch); callers never tell
the client more than "signature invalid or stale". Every comparison is constant-time.

Schemes (KLICKTIPP_API.md §9 and the vendors' documentation):

* HubSpot v3: ``X-HubSpot-Signature-v3 = base64(HMAC_SHA256(client_secret,
  method + uri + body + timestamp))``, ``X-HubSpot-Request-Timestamp`` in milliseconds; ``uri`` is
  the full URL HubSpot called, with a fixed set of percent-escapes decoded (``HUBSPOT_DECODED``).
* Close: ``close-sig-hash = hex(HMAC_SHA256(bytes.fromhex(key), timestamp + body))``,
  ``close-sig-timestamp`` in seconds.
* ktsync generic: ``X-Ktsync-Signature: sha256=hex(HMAC_SHA256(secret, timestamp + "." + body))``,
  ``X-Ktsync-Timestamp`` in seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from enum import StrEnum

TOLERANCE_SECONDS = 300  # timestamps further than this from now, either way, are refused

HUBSPOT_SIGNATURE = "x-hubspot-signature-v3"
HUBSPOT_TIMESTAMP = "x-hubspot-request-timestamp"
CLOSE_SIGNATURE = "close-sig-hash"
CLOSE_TIMESTAMP = "close-sig-timestamp"
GENERIC_SIGNATURE = "x-ktsync-signature"
GENERIC_TIMESTAMP = "x-ktsync-timestamp"
GENERIC_PREFIX = "sha256="

# HubSpot decodes exactly these escapes in the request URI before signing; every other escape
# (%20, %26, %3D, ...) stays as it is.
HUBSPOT_DECODED: Mapping[str, str] = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_HUBSPOT_ESCAPE = re.compile("|".join(HUBSPOT_DECODED), re.IGNORECASE)
_DIGITS = re.compile(r"^[0-9]{1,16}$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


class Failure(StrEnum):
    MISSING = "missing"  # a header or parameter is absent
    MALFORMED = "malformed"  # present but not of the scheme's form (not hex, not a number, ...)
    STALE = "stale"  # the timestamp is outside the tolerance window
    MISMATCH = "mismatch"  # well-formed, fresh, and wrong


class SignatureError(Exception):
    """The request is not authentic; ``kind`` is for logs, never for the client."""

    def __init__(self, kind: Failure) -> None:
        self.kind = kind
        super().__init__(f"signature {kind}")


def decode_hubspot_uri(uri: str) -> str:
    """Decode the escapes HubSpot decodes (``%3A`` -> ``:`` ...), leave every other one alone."""
    return _HUBSPOT_ESCAPE.sub(lambda match: HUBSPOT_DECODED[match.group(0).upper()], uri)


def hubspot_uri(base_url: str, raw_path: str, query: str) -> str:
    """The URI HubSpot signed: public base URL + path as received + ``?query``, decoded."""
    return decode_hubspot_uri(f"{base_url.rstrip('/')}{raw_path}{'?' + query if query else ''}")


def verify_hubspot_v3(
    *, method: str, uri: str, body: bytes, headers: Mapping[str, str], secret: str, now: float
) -> None:
    """HubSpot signature v3 (``uri`` as built by :func:`hubspot_uri`)."""
    signature, timestamp = _required(headers, HUBSPOT_SIGNATURE, HUBSPOT_TIMESTAMP)
    _fresh(_number(timestamp) / 1000, now)
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(Failure.MALFORMED) from None
    message = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("ascii")
    _compare(given, hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest())


def verify_close(*, body: bytes, headers: Mapping[str, str], key: bytes, now: float) -> None:
    """Close: hex HMAC over ``timestamp + body`` with the hex-decoded signature key."""
    signature, timestamp = _required(headers, CLOSE_SIGNATURE, CLOSE_TIMESTAMP)
    _fresh(_number(timestamp), now)
    given = _hex(signature)
    _compare(given, hmac.new(key, timestamp.encode("ascii") + body, hashlib.sha256).digest())


def verify_generic(*, body: bytes, headers: Mapping[str, str], secret: str, now: float) -> None:
    """ktsync's own scheme for producers that can sign (Stripe-like ``timestamp.body``)."""
    signature, timestamp = _required(headers, GENERIC_SIGNATURE, GENERIC_TIMESTAMP)
    _fresh(_number(timestamp), now)
    if not signature.startswith(GENERIC_PREFIX):
        raise SignatureError(Failure.MALFORMED)
    given = _hex(signature[len(GENERIC_PREFIX) :])
    message = timestamp.encode("ascii") + b"." + body
    _compare(given, hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest())


def verify_token(given: object, expected: str) -> None:
    """A static shared token (KlickTipp's parameter, Zoho's channel token), compared in constant time."""
    if given is None or given == "":
        raise SignatureError(Failure.MISSING)
    if isinstance(given, bool) or not isinstance(given, str | int):
        raise SignatureError(Failure.MALFORMED)
    _compare(str(given).encode("utf-8"), expected.encode("utf-8"))


def _required(headers: Mapping[str, str], signature: str, timestamp: str) -> tuple[str, str]:
    values = (headers.get(signature, "").strip(), headers.get(timestamp, "").strip())
    if not all(values):
        raise SignatureError(Failure.MISSING)
    return values


def _number(timestamp: str) -> int:
    if not _DIGITS.match(timestamp):
        raise SignatureError(Failure.MALFORMED)
    return int(timestamp)


def _fresh(seconds: float, now: float) -> None:
    if abs(now - seconds) > TOLERANCE_SECONDS:
        raise SignatureError(Failure.STALE)


def _hex(value: str) -> bytes:
    if not _HEX_DIGEST.match(value):
        raise SignatureError(Failure.MALFORMED)
    return bytes.fromhex(value)


def _compare(given: bytes, expected: bytes) -> None:
    if not hmac.compare_digest(given, expected):
        raise SignatureError(Failure.MISMATCH)
