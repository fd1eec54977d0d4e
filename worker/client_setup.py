"""The KlickTipp client as every ktsync process builds it from its settings (one place for it)."""

from __future__ import annotations

from ktsync.config.settings import Settings
from ktsync.worker.klicktipp.auth import Auth
from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.http import Gate, Observer, Timeout


def klicktipp_client(
    settings: Settings, auth: Auth, *, gate: Gate | None = None, observer: Observer | None = None
) -> KlickTippClient:
    """Base URL and timeouts from ``klicktipp.*``; the worker adds its limiter (``gate``) and telemetry."""
    timeout = Timeout(connect=settings.klicktipp.connect_timeout, read=settings.klicktipp.read_timeout)
    return KlickTippClient(
        auth, base_url=settings.klicktipp.base_url, timeout=timeout, gate=gate, observer=observer
    )
