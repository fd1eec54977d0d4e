"""Typed fake-API errors: what was refused, not how it is written (``fake_klicktipp.shapes`` does that).

The tree::

    FakeError                      any refusal the fake answers with an error response
    ├── Rejected                   406 {"error": N[, "code": M]} (business rule, numeric code)
    │   ├── EmailRequired          error 32, no email and no SMS number (406, or 401 as recorded)
    │   └── UnknownTag             tag or untag names an unknown tag (error 403, or 7 as recorded)
    ├── FieldRejected              406 {"error": 8, "field", "name", "field_value", "reason"}
    ├── ContactUnsubscribed        406 with a configurable body (default {"error": 10, "code": 4})
    └── Refused                    any status with a string-array body from the message catalogue
        ├── MissingArgument        401 "Missing required argument X" (raw text as recorded)
        ├── SearchMiss             404 from ``POST /subscriber/search`` (raw text as recorded)
        └── RetrieveMiss           404 from ``GET /subscriber/{id}`` (an empty body as recorded)

Messages come in two languages. The default language is what the spec or the recorded responses
show, which is a mix: English where the spec gives English, German where only German was
recorded (e.g. "Sie sind bereits eingeloggt."). German mode answers German throughout, except where
a German account was recorded answering English ("Missing required argument").
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class Msg(Enum):
    """A string-array message: (default text, German text), with ``{placeholders}``."""

    ACCESS_DENIED = ("API access denied.", "API Zugriff verweigert")
    WRONG_LOGIN = ("Wrong username or password.", "Falscher Benutzername oder Passwort.")
    ALREADY_LOGGED_IN = ("Sie sind bereits eingeloggt.", "Sie sind bereits eingeloggt.")
    NOT_LOGGED_IN = ("Benutzer nicht eingeloggt.", "Benutzer nicht eingeloggt.")
    NOT_A_STRING = ('The key "{key}" must be a string.', 'Der Schlüssel "{key}" muss ein String sein.')
    MISSING_ARGUMENT = ("Missing required argument {key}", "Missing required argument {key}")
    NO_SUCH_ENTITY = ("There is no such entity.", "Diese Entität existiert nicht.")
    CONTACT_NOT_FOUND = ("There is no such entity.", "Diesen Kontakt gibt es nicht.")
    CONTACT_MISSING = ("Der Kontakt existiert nicht.", "Der Kontakt existiert nicht.")
    NO_CONTACTS = ("There is no such entity.", "Es existieren keine Kontakte.")
    TAG_NOT_FOUND = ("There is no such entity.", "Kein Tag mit dieser ID.")
    FIELD_NOT_FOUND = ("There is no such entity.", "Kein Field mit dieser ID.")
    LIST_NOT_FOUND = ("There is no such entity.", "Kein Opt-In-Prozess mit dieser ID.")
    TAG_EXISTS = (
        "A tag or SmartLink with the name {name} already exists.",
        "Ein Tag oder SmartLink mit dem Namen {name} existiert bereits.",
    )
    TAG_NOT_CREATED = ("Tag konnte nicht erstellt werden.", "Tag konnte nicht erstellt werden.")
    UNPARSEABLE_BODY = (
        "The request body could not be parsed.",
        "Der Inhalt der Anfrage konnte nicht gelesen werden.",
    )
    INVALID_FILTER = ("Invalid filter value {value}.", "Ungültiger Filterwert {value}.")
    NO_ROUTE = ("Could not find the controller.", "Could not find the controller.")

    def text(self, *, german: bool, params: Mapping[str, str]) -> str:
        """The message in the chosen language with its placeholders filled."""
        template = self.value[1] if german else self.value[0]
        return template.format(**params)


class FakeError(Exception):
    """Base of every refusal the fake turns into an error response."""


class Rejected(FakeError):
    """A 406 with the numeric body ``{"error": N}`` or ``{"error": N, "code": M}``."""

    def __init__(self, error: int, code: int | None = None) -> None:
        super().__init__(f"error {error}" + ("" if code is None else f" code {code}"))
        self.error = error
        self.code = code


class EmailRequired(Rejected):
    """``POST /subscriber`` without email and SMS number: error 32 (the status is an option)."""

    def __init__(self) -> None:
        super().__init__(32)


class UnknownTag(Rejected):
    """Tag or untag names a tag id the account does not have (the code is an option)."""

    def __init__(self) -> None:
        super().__init__(403)


class FieldRejected(FakeError):
    """A data-field value failed validation (error 8, or error 7 on update when configured)."""

    def __init__(self, *, field: str, name: str, value: str, reason: str, on_update: bool = False) -> None:
        super().__init__(f"{name}: {reason}")
        self.field = field
        self.name = name
        self.value = value
        self.reason = reason
        self.on_update = on_update


class ContactUnsubscribed(FakeError):
    """Re-subscribing an unsubscribed email address; the body is configurable."""


class Refused(FakeError):
    """Any status with a one-string array body taken from the message catalogue."""

    def __init__(self, status: int, msg: Msg, **params: str) -> None:
        super().__init__(f"{status} {msg.name}")
        self.status = status
        self.msg = msg
        self.params = params


class MissingArgument(Refused):
    """A required argument is missing: 401 "Missing required argument <key>" (Drupal Services)."""

    def __init__(self, key: str) -> None:
        super().__init__(401, Msg.MISSING_ARGUMENT, key=key)


class SearchMiss(Refused):
    """``POST /subscriber/search`` found no contact with the email address."""

    def __init__(self) -> None:
        super().__init__(404, Msg.CONTACT_NOT_FOUND)


class RetrieveMiss(Refused):
    """``GET /subscriber/{id}`` found no contact with the id or Contact Key."""

    def __init__(self) -> None:
        super().__init__(404, Msg.CONTACT_NOT_FOUND)
