"""Request body and query decoding: JSON, PHP-style form encoding, and multipart form data.

Form keys nest the way PHP does: ``fields[fieldFirstName]=Alex`` gives ``{"fields": {...}}``,
``tagids[]=17&tagids[]=18`` and ``tagids[0]=17&tagids[1]=18`` give ``{"tagids": ["17", "18"]}``.
Anything that cannot be decoded raises ``BodyError`` (the API answers 406).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SUBKEYS = re.compile(r"\[([^\[\]]*)\]")


class BodyError(ValueError):
    """The request body cannot be decoded."""


def _split_key(key: str) -> list[str]:
    match = _KEY.fullmatch(key)
    if match is None:
        raise BodyError(f"malformed form key {key!r}")
    return [match.group(1), *_SUBKEYS.findall(match.group(2))]


def _insert(target: dict[str, Any], path: list[str], value: str) -> None:
    node = target
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if part == "":  # "[]" appends: give it the next free numeric index
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BodyError(f"form key {'/'.join(path)!r} is both a value and a container")
        node = child


def _listify(node: Any) -> Any:
    """Maps whose keys are all numeric become lists ordered by key (PHP's indexed arrays)."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def php_nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode flat ``(key, value)`` pairs with PHP bracket keys into nested maps and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        _insert(root, _split_key(key), value)
    result = _listify(root)
    return result if isinstance(result, dict) else {}


def parse_query(raw: bytes) -> dict[str, Any]:
    """The query string, decoded with PHP nesting."""
    if not raw:
        return {}
    try:
        return php_nest(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise BodyError("query string is not UTF-8") from exc


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message: Message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BodyError("multipart body without parts")
    pairs: list[tuple[str, str]] = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise BodyError("multipart part without a name")
        payload = part.get_payload(decode=True) or b""
        pairs.append((name, payload.decode(part.get_content_charset() or "utf-8")))
    return php_nest(pairs)


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The request body as a map; an empty body is ``{}``; raises BodyError when undecodable."""
    if not body.strip():
        return {}
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        if media_type == "application/x-www-form-urlencoded":
            return php_nest(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        if media_type == "multipart/form-data":
            return _multipart(content_type, body)
        if media_type in ("application/json", "") or media_type.endswith("+json"):
            decoded = json.loads(body)
            if not isinstance(decoded, dict):
                raise BodyError("a JSON body must be an object")
            return decoded
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError and parse_qsl errors are ValueErrors
        raise BodyError(str(exc)) from exc
    raise BodyError(f"unsupported content type {media_type!r}")
