"""The receiver's credentials and options, read once from the environment at the entry point.

The variable names are a public interface (README "Webhooks"). Values never appear in reprs, logs
or error messages; a vendor whose credentials are not set has its route disabled (404).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HUBSPOT_SECRET_ENV = "HUBSPOT_CLIENT_SECRET"  # noqa: S105 - a variable's name
CLOSE_KEY_ENV = "CLOSE_WEBHOOK_SIGNATURE_KEY"
ZOHO_CHANNEL_ID_ENV = "ZOHO_CHANNEL_ID"
ZOHO_TOKEN_ENV = "ZOHO_CHANNEL_TOKEN"  # noqa: S105 - a variable's name
GENERIC_SECRET_ENV = "KTSYNC_WEBHOOK_SECRET"  # noqa: S105 - a variable's name
KLICKTIPP_TOKEN_ENV = "KLICKTIPP_WEBHOOK_TOKEN"  # noqa: S105 - a variable's name
KLICKTIPP_TOKEN_PARAM_ENV = "KLICKTIPP_WEBHOOK_TOKEN_PARAM"  # noqa: S105 - a variable's name
KLICKTIPP_ID_PARAM_ENV = "KLICKTIPP_WEBHOOK_ID_PARAM"
PUBLIC_URL_ENV = "KTSYNC_WEBHOOK_PUBLIC_URL"

DEFAULT_KLICKTIPP_TOKEN_PARAM = "Authorization"  # noqa: S105 - the parameter name KlickTipp's receivers use
DEFAULT_KLICKTIPP_ID_PARAM = "klicktipp_id"

_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


class WebhookConfigError(ValueError):
    """The environment is not usable; the message names the variables, never their values."""


@dataclass(frozen=True)
class WebhookSecrets:
    """Who may call which route. ``None`` means "not configured": that route answers 404."""

    hubspot_client_secret: str | None = field(default=None, repr=False)
    close_signature_key: bytes | None = field(default=None, repr=False)
    zoho_channel_id: str | None = field(default=None, repr=False)
    zoho_token: str | None = field(default=None, repr=False)
    generic_secret: str | None = field(default=None, repr=False)
    klicktipp_token: str | None = field(default=None, repr=False)
    klicktipp_token_param: str = DEFAULT_KLICKTIPP_TOKEN_PARAM
    klicktipp_id_param: str = DEFAULT_KLICKTIPP_ID_PARAM
    public_url: str | None = None  # the base URL HubSpot calls (scheme://host[/prefix]), behind a proxy

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSecrets:
        """Read every variable; raise WebhookConfigError listing each problem."""

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        problems: list[str] = []
        close_hex = get(CLOSE_KEY_ENV)
        if close_hex is not None and not _HEX.match(close_hex):
            problems.append(f"{CLOSE_KEY_ENV}: must be the hex signature_key Close returned")
        zoho_id, zoho_token = get(ZOHO_CHANNEL_ID_ENV), get(ZOHO_TOKEN_ENV)
        if (zoho_id is None) != (zoho_token is None):
            problems.append(f"{ZOHO_CHANNEL_ID_ENV} and {ZOHO_TOKEN_ENV}: set both or neither")
        public_url = get(PUBLIC_URL_ENV)
        if public_url is not None and not _is_base_url(public_url):
            problems.append(f"{PUBLIC_URL_ENV}: must be http(s)://host[:port][/prefix], without query")
        if problems:
            raise WebhookConfigError("; ".join(problems))
        return cls(
            hubspot_client_secret=get(HUBSPOT_SECRET_ENV),
            close_signature_key=bytes.fromhex(close_hex) if close_hex else None,
            zoho_channel_id=zoho_id,
            zoho_token=zoho_token,
            generic_secret=get(GENERIC_SECRET_ENV),
            klicktipp_token=get(KLICKTIPP_TOKEN_ENV),
            klicktipp_token_param=get(KLICKTIPP_TOKEN_PARAM_ENV) or DEFAULT_KLICKTIPP_TOKEN_PARAM,
            klicktipp_id_param=get(KLICKTIPP_ID_PARAM_ENV) or DEFAULT_KLICKTIPP_ID_PARAM,
            public_url=public_url.rstrip("/") if public_url else None,
        )

    def enabled(self) -> frozenset[str]:
        """The vendors whose routes are served."""
        configured = {
            "hubspot": self.hubspot_client_secret,
            "close": self.close_signature_key,
            "zoho": self.zoho_token,
            "generic": self.generic_secret,
            "klicktipp": self.klicktipp_token,
        }
        return frozenset(name for name, value in configured.items() if value)


def _is_base_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.query and not parts.fragment
