"""The whole fake KlickTipp in one object: seeded state and rules, sessions, faults, options, request log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fake_klicktipp.auth import Credentials, Sessions
from fake_klicktipp.catalog import Catalog
from fake_klicktipp.faults import FaultInjector
from fake_klicktipp.options import DEFAULT_PROFILE, Options, Profile, updated_options
from fake_klicktipp.requestlog import RequestLog
from fake_klicktipp.seed import build
from fake_klicktipp.store import Store


class FakeKlickTipp:
    """One fake account (or several sharing a contact store) as the HTTP layer sees it.

    ``profile`` is the start-up profile: every reset returns to it (see ``fake_klicktipp.options``).
    """

    def __init__(self, default_seed: Mapping[str, Any], profile: Profile = DEFAULT_PROFILE) -> None:
        build(default_seed, profile)  # fail at start-up, not at the first reset, on a bad default seed
        self._default_seed = default_seed
        self.startup_profile = profile
        self.sessions = Sessions()
        self.faults = FaultInjector()
        self.reset(None)

    def reset(self, seed: Mapping[str, Any] | None) -> None:
        """Back to ``seed`` (default: the start-up one) and the start-up profile; clears sessions, faults, log."""
        seeded = build(self._default_seed if seed is None else seed, self.startup_profile)
        self.state = seeded.state
        self.catalog = Catalog(self.state)
        self.store = Store(self.state, self.catalog)
        self.credentials = Credentials(self.state.accounts.values())
        self.options = seeded.options
        self.sessions.clear()
        self.faults = FaultInjector()
        self.log = RequestLog(self.options.request_log_limit)

    def configure(self, changes: Mapping[str, Any]) -> Options:
        """Change options partially; raises ValueError for bad input."""
        options = updated_options(self.options, changes)
        if options.request_log_limit != self.options.request_log_limit:
            kept = self.log.since(None)[-options.request_log_limit :]
            self.log = RequestLog(options.request_log_limit)
            for entry in kept:
                self.log.record(entry)
        self.options = options
        return options
