"""Each account's own data with the rules that change it, and the view one API request works on.

Accounts never see each other's lists, fields, tags or contacts: a request is answered from the data
of the account it authenticated as (``AccountView``). Options, sessions, logins, faults and the
request log belong to the fake as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from fake_klicktipp.auth import Credentials, Sessions
from fake_klicktipp.catalog import Catalog
from fake_klicktipp.model import State
from fake_klicktipp.options import Options
from fake_klicktipp.store import Store


@dataclass(frozen=True)
class AccountData:
    """One account's state, with its definition rules (``catalog``) and contact rules (``store``)."""

    username: str
    state: State
    catalog: Catalog
    store: Store

    @classmethod
    def of(cls, username: str, state: State) -> AccountData:
        """The rules around a freshly seeded state."""
        catalog = Catalog(state)
        return cls(username=username, state=state, catalog=catalog, store=Store(state, catalog))


@dataclass(frozen=True)
class AccountView:
    """What an operation handler may touch: one account's data and the fake-wide options and logins."""

    data: AccountData
    options: Options
    sessions: Sessions
    credentials: Credentials

    @property
    def state(self) -> State:
        return self.data.state

    @property
    def catalog(self) -> Catalog:
        return self.data.catalog

    @property
    def store(self) -> Store:
        return self.data.store
