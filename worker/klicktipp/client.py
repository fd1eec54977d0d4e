"""``KlickTippClient``: one typed method per Management API operation (KLICKTIPP_API.md §3).

IDs go in as ``str`` or ``int`` and come out as ``str``. Every failure raises a ``KlickTippError``
(see ``errors.py``); wrong arguments raise ``ValueError`` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Final, Self, TypeVar

import requests

from . import arguments as args
from . import parsing
from .arguments import FieldValue, Id
from .auth import Auth, auth_from_env
from .errors import KlickTippConfigError, NotFound
from .http import DEFAULT_BASE_URL, DEFAULT_POOL_SIZE, Gate, HttpClient, JSONBody, Observer, Timeout
from .models import Account, BounceFilter, DataField, OptInProcess, StatusFilter, Subscriber, Tag
from .requestor import Requestor

T = TypeVar("T")
ENV_BASE_URL: Final = "KLICKTIPP_BASE_URL"


class KlickTippClient:
    """A thread-safe client for KlickTipp's Management API. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        auth: Auth,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        timeout: Timeout = Timeout(),  # noqa: B008 - frozen value object
        pool_size: int = DEFAULT_POOL_SIZE,
        gate: Gate | None = None,
        observer: Observer | None = None,
        client_identifier: str | None = "ktsync",
    ) -> None:
        http = HttpClient(
            base_url,
            session=session,
            timeout=timeout,
            pool_size=pool_size,
            gate=gate,
            observer=observer,
            client_identifier=client_identifier,
        )
        self._requestor = Requestor(http, auth)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        session: requests.Session | None = None,
        timeout: Timeout = Timeout(),  # noqa: B008 - frozen value object
        pool_size: int = DEFAULT_POOL_SIZE,
        gate: Gate | None = None,
        observer: Observer | None = None,
    ) -> KlickTippClient:
        """Configure from ``KLICKTIPP_BASE_URL`` and the credentials of ``auth_from_env``."""
        base_url = (env.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise KlickTippConfigError(f"{ENV_BASE_URL} must start with https:// or http://")
        return cls(
            auth_from_env(env),
            base_url=base_url,
            session=session,
            timeout=timeout,
            pool_size=pool_size,
            gate=gate,
            observer=observer,
        )

    def close(self) -> None:
        """Log out of a session (best effort) and release the connection pool."""
        self._requestor.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- account ----------------------------------------------------------------------------------------

    def login(self) -> Account | None:
        """Log in now unless a session exists (session auth; otherwise lazy). None for partner auth."""
        return self._requestor.login()

    def logout(self) -> None:
        """End the session now (the next call logs in again). Nothing to do for partner auth."""
        self._requestor.logout()

    # -- data fields and opt-in processes -----------------------------------------------------------------

    def field_index(self) -> dict[str, str]:
        """Field key (``fieldFirstName``, ``field12345``) -> label."""
        return self._call("api.customfield.index", "GET", "/field", parsing.parse_str_map)

    def field_get(self, fieldid: str) -> DataField:
        """One data field; a leading ``field`` prefix is stripped (``fieldFirstName`` -> ``FirstName``)."""
        path = args.field_path(fieldid)
        return self._call("api.customfield.retrieve", "GET", path, parsing.parse_data_field)

    def list_index(self) -> dict[str, str]:
        """Opt-in process ID -> name; the one with an empty name is the account's default DOI process."""
        return self._call("api.optin.index", "GET", "/list", parsing.parse_str_map)

    def list_get(self, listid: Id) -> OptInProcess:
        path = f"/list/{args.numeric_id(listid, 'listid')}"
        return self._call("api.optin.retrieve", "GET", path, parsing.parse_optin_process)

    def list_redirect(self, listid: Id, email: str) -> str:
        """The pending or thank-you URL of ``listid`` for this contact."""
        # The spec types this listid as a string (unlike subscriber.create's integer).
        body = {"listid": str(args.numeric_id(listid, "listid")), "email": args.nonempty(email, "email")}
        return self._call("api.optin.redirect", "POST", "/list/redirect", parsing.parse_url, json=body)

    # -- subscribers -------------------------------------------------------------------------------------

    def subscriber_index(
        self,
        *,
        status: StatusFilter | Iterable[StatusFilter] | None = None,
        bounce_status: BounceFilter | Iterable[BounceFilter] | None = None,
    ) -> list[str]:
        """Contact IDs. KlickTipp's defaults without filters: subscribed, not hard-bounced."""
        params = args.filters(status, bounce_status)
        try:
            return self._call(
                "api.subscriber.index", "GET", "/subscriber", parsing.parse_id_list, params=params
            )
        except NotFound:  # 404 ["Es existieren keine Kontakte."]: an empty account
            return []

    def subscriber_create(
        self,
        *,
        email: str | None = None,
        smsnumber: str | None = None,
        listid: Id | None,
        tagid: Id | None = None,
        fields: Mapping[str, FieldValue] | None = None,
    ) -> Subscriber:
        """Add or update (by email or SMS number) a contact.

        ``listid`` is required on purpose: ``listid=None`` runs the account's default double opt-in
        process, which may email the contact. Callers must say so.
        """
        if not email and not smsnumber:
            raise ValueError("subscriber_create needs an email or an smsnumber")
        body = args.present(
            email=email or None,
            smsnumber=smsnumber or None,
            listid=None if listid is None else args.numeric_id(listid, "listid"),
            tagid=None if tagid is None else args.numeric_id(tagid, "tagid"),
            fields=args.field_values(fields),
        )
        return self._call("api.subscriber.create", "POST", "/subscriber", parsing.parse_subscriber, json=body)

    def subscriber_get(self, subscriber_id: Id) -> Subscriber:
        """A contact by ID (or by its Contact Key)."""
        path = args.subscriber_path(subscriber_id)
        return self._call("api.subscriber.retrieve", "GET", path, parsing.parse_subscriber)

    def subscriber_update(
        self,
        subscriber_id: Id,
        *,
        newemail: str | None = None,
        newsmsnumber: str | None = None,
        fields: Mapping[str, FieldValue] | None = None,
    ) -> None:
        """Change email, SMS number and/or fields of a contact by ID (the way to change an email)."""
        body = args.present(
            newemail=newemail or None, newsmsnumber=newsmsnumber or None, fields=args.field_values(fields)
        )
        if not body:
            raise ValueError("subscriber_update needs newemail, newsmsnumber or fields")
        path = args.subscriber_path(subscriber_id)
        self._call("api.subscriber.update", "PUT", path, parsing.expect_ok, json=body)

    def subscriber_delete(self, subscriber_id: Id) -> None:
        path = args.subscriber_path(subscriber_id)
        self._call("api.subscriber.delete", "DELETE", path, parsing.expect_ok)

    def subscriber_unsubscribe(self, email: str) -> None:
        body = {"email": args.nonempty(email, "email")}
        self._call(
            "api.subscriber.unsubscribe", "POST", "/subscriber/unsubscribe", parsing.expect_ok, json=body
        )

    def subscriber_tag(self, email: str, tagids: Sequence[Id]) -> None:
        """Add one or more manual tags (tagging may start automations)."""
        ids = [tagids] if isinstance(tagids, str | int) else list(tagids)
        numeric = list(dict.fromkeys(args.numeric_id(tagid, "tagid") for tagid in ids))
        if not numeric:
            raise ValueError("subscriber_tag needs at least one tag id")
        body = {"email": args.nonempty(email, "email"), "tagids": numeric}
        self._call("api.subscriber.tag", "POST", "/subscriber/tag", parsing.expect_ok, json=body)

    def subscriber_untag(self, email: str, tagid: Id) -> None:
        """Remove one manual tag (SmartTags are refused with error 31)."""
        body = {"email": args.nonempty(email, "email"), "tagid": args.numeric_id(tagid, "tagid")}
        self._call("api.subscriber.untag", "POST", "/subscriber/untag", parsing.expect_ok, json=body)

    def subscriber_search(self, email: str) -> str | None:
        """The ID of the contact with this email, or None."""
        body = {"email": args.nonempty(email, "email")}
        try:
            return self._call(
                "api.subscriber.search", "POST", "/subscriber/search", parsing.parse_optional_id, json=body
            )
        except NotFound:
            return None

    def subscriber_tagged(
        self,
        tagid: Id,
        *,
        status: StatusFilter | Iterable[StatusFilter] | None = None,
        bounce_status: BounceFilter | Iterable[BounceFilter] | None = None,
    ) -> dict[str, int]:
        """Contact ID -> unix seconds when tagged, for contacts carrying ``tagid``.

        Filters go in the query string as CSV with ``tagid`` in the body, as KlickTipp's own n8n and
        Node-RED connectors send them. The spec instead requires body arrays ``status[]`` and
        ``bounceStatus[]``, and the seed calls them ``statusFilter[]``; see KLICKTIPP_API.md §3.3.
        """
        body = {"tagid": args.numeric_id(tagid, "tagid")}
        params = args.filters(status, bounce_status)
        return self._call(
            "api.subscriber.tagged",
            "POST",
            "/subscriber/tagged",
            parsing.parse_timestamp_map,
            json=body,
            params=params,
        )

    # -- tags --------------------------------------------------------------------------------------------

    def tag_index(self) -> dict[str, str]:
        """Manual tag ID -> name (SmartTags are not listed)."""
        return self._call("api.tag.index", "GET", "/tag", parsing.parse_str_map)

    def tag_create(self, name: str, *, text: str | None = None) -> str:
        """Create a manual tag and return its ID (names are unique: look them up first)."""
        body = args.present(name=args.nonempty(name, "name"), text=text)
        return self._call("api.tag.create", "POST", "/tag", parsing.parse_id, json=body)

    def tag_get(self, tagid: Id) -> Tag:
        return self._call(
            "api.tag.retrieve", "GET", f"/tag/{args.numeric_id(tagid, 'tagid')}", parsing.parse_tag
        )

    def tag_update(self, tagid: Id, *, name: str | None = None, text: str | None = None) -> None:
        body = args.present(name=name, text=text)
        if not body:
            raise ValueError("tag_update needs a name or a text")
        self._call(
            "api.tag.update", "PUT", f"/tag/{args.numeric_id(tagid, 'tagid')}", parsing.expect_ok, json=body
        )

    def tag_delete(self, tagid: Id) -> None:
        """Delete a tag; it is removed from every contact."""
        self._call("api.tag.delete", "DELETE", f"/tag/{args.numeric_id(tagid, 'tagid')}", parsing.expect_ok)

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[object], T],
        *,
        json: JSONBody | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        return self._requestor.request(operation, method, path, parse, json=json, params=params)
