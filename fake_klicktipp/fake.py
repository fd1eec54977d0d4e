"""The whole fake KlickTipp in one object: the accounts and their data, sessions, faults, options, request log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fake_klicktipp.accounts import AccountData, AccountView
from fake_klicktipp.auth import Credentials, Sessions
from fake_klicktipp.catalog import Catalog
from fake_klicktipp.faults import FaultInjector
from fake_klicktipp.model import State
from fake_klicktipp.options import DEFAULT_PROFILE, Options, Profile, updated_options
from fake_klicktipp.requestlog import RequestLog
from fake_klicktipp.seed import account_states, build
from fake_klicktipp.store import Store


class FakeKlickTipp:
    """The fake accounts, each with data of its own, as the HTTP layer sees them.

    ``profile`` is the start-up profile: every reset returns to it (see ``fake_klicktipp.options``).
    The primary account is the seed's first; ``state``, ``catalog`` and ``store`` are its.
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
        document = self._default_seed if seed is None else seed
        seeded = build(document, self.startup_profile)
        self._seed = document
        self.accounts = {name: AccountData.of(name, state) for name, state in seeded.states.items()}
        self.primary = next(iter(self.accounts))
        self.credentials = Credentials(state.accounts[name] for name, state in seeded.states.items())
        self.options = seeded.options
        self.sessions.clear()
        self.faults = FaultInjector()
        self.log = RequestLog(self.options.request_log_limit)

    def add_accounts(self, entries: Any) -> list[str]:
        """Add accounts (seed account entries) starting from the last reset's seed data; their names.

        All or nothing: SeedError for a bad entry, ValueError for a name that exists already.
        """
        states = account_states(entries, self._seed)
        taken = sorted(set(states) & set(self.accounts))
        if taken:
            raise ValueError(f"account(s) exist already: {', '.join(taken)}")
        for name, state in states.items():
            self.accounts[name] = AccountData.of(name, state)
            self.credentials.add(state.accounts[name])
        return list(states)

    def account(self, username: str | None) -> AccountData:
        """An account's data (``None``: the primary's); ValueError for an unknown account."""
        found = self.accounts.get(self.primary if username is None else username)
        if found is None:
            raise ValueError(f"no account {username!r}")
        return found

    def view(self, username: str | None) -> AccountView:
        """What a request authenticated as ``username`` works on (``None``: not authenticated, the
        primary's data, which only the public login and logout get and neither reads)."""
        data = self.accounts[self.primary if username is None else username]
        return AccountView(data, self.options, self.sessions, self.credentials)

    @property
    def state(self) -> State:
        """The primary account's state."""
        return self.accounts[self.primary].state

    @property
    def catalog(self) -> Catalog:
        """The primary account's definition rules."""
        return self.accounts[self.primary].catalog

    @property
    def store(self) -> Store:
        """The primary account's contact rules."""
        return self.accounts[self.primary].store

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
