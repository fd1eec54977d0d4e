"""Log formats for ktsync's long-running commands: text (the default) or one JSON object per line.

``configure_logging(fmt, level)`` sets up the root logger (one handler on stderr); ``fmt`` None means
``KTSYNC_LOG_FORMAT`` or ``text``. A JSON line carries ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, the record's extras (``log.info("...", extra={"source": "hubspot"})``),
the Celery task id and name when logged inside a task, and ``exc_info`` for exceptions.

Two safety nets, whatever the format: extras named like a secret (``password``, ``*_token``, ``*_key``,
``*_secret``, ``authorization``, ``cookie``) are replaced by ``[redacted]``, and below WARNING e-mail
addresses are shortened to ``a***@example.com`` (full addresses only where an operator must act).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LOG_FORMAT_ENV = "KTSYNC_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:password|passwd|secret|token|key|authori[sz]ation|cookie|credentials?)$", re.IGNORECASE
)
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b")
REDACTED = "[redacted]"


class LogFormatError(ValueError):
    """An unknown log format was asked for."""


def resolve_format(fmt: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``fmt`` if given, else ``KTSYNC_LOG_FORMAT``, else ``text``; raises :class:`LogFormatError`."""
    environ = os.environ if env is None else env
    chosen = (fmt or environ.get(LOG_FORMAT_ENV, "") or "text").strip().lower()
    if chosen not in FORMATS:
        raise LogFormatError(f"{LOG_FORMAT_ENV}: must be one of {', '.join(FORMATS)}, got {chosen!r}")
    return chosen


def configure_logging(fmt: str | None = None, level: str | int = "INFO") -> str:
    """Route every log record through one stderr handler in the chosen format; returns the format.

    Safe to call again (the handler is replaced, not added twice). For uvicorn, pass
    ``log_config=None`` to ``uvicorn.Config`` so its loggers propagate here instead of printing.
    """
    chosen = resolve_format(fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter(TEXT_FORMAT))
    handler.set_name("ktsync")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "ktsync"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)  # warnings too (Celery warns before it sets up logging)
    return chosen


def take_over_celery_logging(fmt: str) -> None:
    """Make Celery leave logging to :func:`configure_logging` (its ``setup_logging`` signal): every
    record of the worker, Celery's own included, then goes through our formatter."""
    from celery import signals

    def setup(loglevel: int | str | None = None, **_: Any) -> None:
        configure_logging(fmt, loglevel or "INFO")

    signals.setup_logging.connect(setup, weak=False)


def mask_emails(text: str) -> str:
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def _safe(name: str, value: Any, sensitive: bool) -> Any:
    if _SECRET_NAME.search(name):
        return REDACTED
    if sensitive and isinstance(value, str):
        return mask_emails(value)
    return value


def _current_task() -> dict[str, str]:
    if "celery" not in sys.modules:  # never import Celery just to log
        return {}
    from celery import current_task

    task = current_task
    if not task or getattr(task.request, "id", None) is None:
        return {}
    return {"task_id": str(task.request.id), "task_name": str(task.name)}


class TextFormatter(logging.Formatter):
    """Plain text, with e-mail addresses shortened below WARNING."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return mask_emails(text) if record.levelno < logging.WARNING else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, task, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        sensitive = record.levelno < logging.WARNING
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_emails(message) if sensitive else message,
        }
        for name, value in _current_task().items():
            entry.setdefault(name, value)
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in entry:
                entry[name] = _safe(name, value, sensitive)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
