"""Redis ``SCAN MATCH`` patterns that find a text inside key names, in any letter case."""

from __future__ import annotations

GLOB_SPECIAL = frozenset("*?[]\\^")


def nocase_glob(text: str) -> str:
    """A MATCH pattern for exactly ``text``, whatever the letter case (glob characters escaped)."""
    out = []
    for char in text:
        if len(char.lower()) == len(char.upper()) == 1 and char.lower() != char.upper():
            out.append(f"[{char.lower()}{char.upper()}]")
        elif char in GLOB_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)
