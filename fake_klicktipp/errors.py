"""Typed fake-API errors and how each becomes an HTTP status and a JSON body.

The tree::

    FakeError                      any refusal the fake answers with an error response
    ├── Rejected                   406 {"error": N[, "code": M]} (business rule, numeric code)
    ├── FieldRejected              406 {"error": 8, "field", "name", "field_value", "reason"}
    ├── ContactUnsubscribed        406 with a configurable body (default {"error": 10, "code": 4})
    └── Refused                    any status with a string-array body from the message catalogue

Messages come in two languages. The default ("recorded") language is what the spec or the recorded
responses show, which is a mix: English where the spec gives English, German where only German was
recorded (e.g. "Sie sind bereits eingeloggt."). German mode answers German throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class Msg(Enum):
    """A string-array message: (recorded/default text, German text), with ``{placeholders}``."""

    ACCESS_DENIED = ("API access denied.", "API Zugriff verweigert")
    WRONG_LOGIN = ("Wrong username or password.", "Falscher Benutzername oder Passwort.")
    ALREADY_LOGGED_IN = ("Sie sind bereits eingeloggt.", "Sie sind bereits eingeloggt.")
    NOT_LOGGED_IN = ("Benutzer nicht eingeloggt.", "Benutzer nicht eingeloggt.")
    NOT_A_STRING = ('The key "{key}" must be a string.', 'Der Schlüssel "{key}" muss ein String sein.')
    MISSING_ARGUMENT = ("Missing required argument {key}", "Fehlendes Argument {key}")
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


def error_response(
    err: FakeError, *, german: bool, unsubscribed_body: Any, update_error7: bool
) -> tuple[int, Any]:
    """The (status, JSON body) for a fake error, honouring the language and shape options."""
    if isinstance(err, Refused):
        return err.status, [err.msg.text(german=german, params=err.params)]
    if isinstance(err, Rejected):
        body: dict[str, Any] = {"error": err.error}
        if err.code is not None:
            body["code"] = err.code
        return 406, body
    if isinstance(err, FieldRejected):
        if err.on_update and update_error7:
            return 406, {"error": 7}
        return 406, {
            "error": 8,
            "field": err.field,
            "name": err.name,
            "field_value": err.value,
            "reason": err.reason,
        }
    if isinstance(err, ContactUnsubscribed):
        return 406, unsubscribed_body
    raise TypeError(f"unknown fake error {err!r}")
