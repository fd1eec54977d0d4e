"""Finding a text inside Redis key names, in any letter case: ``SCAN MATCH`` narrows, the name decides.

Redis globs match bytes, so a class such as ``[éÉ]`` matches one byte and never a two-byte UTF-8
letter: a non-ASCII character becomes ``*`` in the pattern, and every key found is checked in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import redis

GLOB_SPECIAL = frozenset("*?[]\\^")
SCAN_COUNT = 1000


def nocase_glob(text: str) -> str:
    """A MATCH pattern for at least every spelling of ``text`` in any letter case (specials escaped)."""
    out: list[str] = []
    for char in text:
        if not char.isascii():
            if not out or out[-1] != "*":
                out.append("*")
        elif char.lower() != char.upper():
            out.append(f"[{char.lower()}{char.upper()}]")
        elif char in GLOB_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def keys_containing(client: redis.Redis, head: str, text: str) -> Iterator[tuple[bytes, str]]:
    """Every key ``head…text…`` (``text`` in any letter case), with its decoded name."""
    needle = text.lower()
    pattern = f"{head}*{nocase_glob(text)}*"
    for key in cast(list[bytes], client.scan_iter(match=pattern, count=SCAN_COUNT)):
        name = key.decode(errors="replace")
        if needle in name[len(head) :].lower():
            yield key, name
