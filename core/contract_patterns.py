"""The regular expressions of contract v1, written once in the dialect ECMA-262 and Python's ``re`` share.

The contract validates with them and its JSON Schema publishes them unchanged, so a producer's
validator (JavaScript's ``ajv``, Python's ``jsonschema``, ...) and ktsync agree on every string. The
shared dialect, and what it avoids:

- ``$`` also matches before a final newline in Python: patterns end with ``END`` instead.
- ``\\s``, ``\\w`` and ``\\d`` mean different sets in the two: classes are spelled out (``WHITESPACE`` is
  exactly what Python's ``str.strip()`` removes; no ``\\u{...}``, no ``\\p{...}``, no named groups).
- Every pattern starts with ``^``: JSON Schema searches, marshmallow matches.
"""

from __future__ import annotations

END = r"(?![\s\S])"  # the end of the text: no character follows
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WHITESPACE = f"[{_SPACE}]"  # Python's str.isspace(), so str.strip() removes exactly these
NOT_WHITESPACE = f"[^{_SPACE}]"

SOURCE_PATTERN = rf"^[a-z0-9_-]{{1,32}}{END}"
TENANT_PATTERN = rf"^[a-z0-9_-]{{1,64}}{END}"  # a tenant: one KlickTipp account of the deployment
SMS_PATTERN = rf"^\+?[0-9][0-9 ()./-]{{4,24}}{END}"
MAX_IDENTIFIER = 128
IDENTIFIER_PATTERN = (  # 1 to 128 characters once surrounding whitespace is stripped
    rf"^{WHITESPACE}*{NOT_WHITESPACE}(?:[\s\S]{{0,{MAX_IDENTIFIER - 2}}}{NOT_WHITESPACE})?{WHITESPACE}*{END}"
)

# E-mail: a dot-atom or quoted local part, then a domain name, an IPv4 literal or "localhost" (the rule
# of marshmallow 4.4's Email, minus its Python-only classes: any character from U+00A1 on counts as a
# letter, in the local part and in domain labels alike).
_LETTER = r"(?:[0-9A-Za-z]|[^\x00-\xa0])"
_ATOM = r"(?:[-!#$%&'*+/=?^_`{|}~0-9A-Za-z]|[^\x00-\xa0])+"
_QUOTED = r'"(?:[\x01-\x08\x0b\x0c\x0e-\x1f!#-\[\]-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*"'
_LABEL = rf"{_LETTER}(?:(?:-|{_LETTER}){{0,61}}{_LETTER})?"
_TOP_LABEL = rf"{_LETTER}(?:-|{_LETTER})*{_LETTER}"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_DOMAIN = rf"(?:(?:{_LABEL}\.)+{_TOP_LABEL}|\[{_OCTET}(?:\.{_OCTET}){{3}}\]|localhost)"
EMAIL_PATTERN = rf"^(?:{_ATOM}(?:\.{_ATOM})*|{_QUOTED})@{_DOMAIN}{END}"

# ISO 8601 / RFC 3339 date-times, extended (2026-11-22T10:00:00Z) or basic (20261122T100000Z); minutes,
# seconds and the fraction may be left off from the right, the zone may not.
# Groups: 1 year, 3 month, 4 day, 5 hour, 7 minute, 8 second, 9 fraction, 10 zone (2 and 6 keep the
# separators of one part alike). Whether the day exists in that month is checked by the contract only.
_DATE = r"(?!0000)([0-9]{4})(-?)(0[1-9]|1[0-2])\2(0[1-9]|[12][0-9]|3[01])"
_TIME = r"([01][0-9]|2[0-3])(?:(:?)([0-5][0-9])(?:\6([0-5][0-9])(?:[.,]([0-9]+))?)?)?"
_ZONE = r" ?([Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"  # " +0100": Ruby's Time#to_s
DATE_TIME_PATTERN = rf"^{WHITESPACE}*{_DATE}[Tt ]{_TIME}{_ZONE}{WHITESPACE}*{END}"
LOCAL_DATE_TIME_PATTERN = rf"^{WHITESPACE}*{_DATE}(?:[Tt ]{_TIME})?{WHITESPACE}*{END}"  # no zone
DECIMAL_PATTERN = rf"^{WHITESPACE}*[0-9]+(?:\.[0-9]+)?{WHITESPACE}*{END}"


def digits_below(limit: int) -> str:
    """A regex for the whole numbers below ``limit`` written with as many digits (the first not 0)."""
    digits = str(limit)
    options = []
    for position, digit in enumerate(digits):
        low, high = (1 if position == 0 else 0), int(digit) - 1
        if high >= low:
            rest = len(digits) - position - 1
            choice = str(low) if low == high else f"[{low}-{high}]"
            options.append(digits[:position] + choice + (f"[0-9]{{{rest}}}" if rest else ""))
    return "|".join(options) or "(?!)"  # (?!) matches nothing


def unix_time_pattern(*, seconds_below: int, milliseconds_from: int) -> str:
    """Unix seconds below ``seconds_below``, or milliseconds from ``milliseconds_from`` and below
    ``seconds_below * 1000``, as a decimal string (leading zeros, a fraction and whitespace around it
    allowed)."""
    shortest_seconds = len(str(seconds_below)) - 1
    milliseconds = len(str(milliseconds_from))
    if milliseconds_from != 10 ** (milliseconds - 1) or milliseconds != len(str(seconds_below * 1000)) - 1:
        raise ValueError(
            "milliseconds_from must be a power of ten one digit shorter than seconds_below * 1000"
        )
    integer = "|".join(
        [
            f"[0-9]{{1,{shortest_seconds}}}",
            digits_below(seconds_below),
            f"[1-9][0-9]{{{milliseconds - 1}}}",
            digits_below(seconds_below * 1000),
        ]
    )
    return rf"^{WHITESPACE}*0*(?:{integer})(?:\.[0-9]+)?{WHITESPACE}*{END}"
