"""`ktsync webhooks`: serve the webhook receiver (HubSpot, Close, Zoho, KlickTipp, generic)."""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from ktsync.cli_ops import log_format_option
from ktsync.config.settings import Settings
from ktsync.logs import configure_logging

DEFAULT_PORT = 8780


def register(main: click.Group, settings: Callable[[], Settings]) -> None:
    """Add the ``webhooks`` command to the ``ktsync`` command."""

    @main.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=DEFAULT_PORT,
        show_default=True,
        help="0: a free port.",
    )
    @click.option("--loglevel", "-l", default="INFO", show_default=True, help="Log level.")
    @log_format_option
    def webhooks(host: str, port: int, loglevel: str, log_format: str) -> None:
        """Receive CRM and KlickTipp webhooks and enqueue contract-v1 messages.

        \b
        Routes (each served only when its credentials are set):
          POST /webhooks/hubspot             HUBSPOT_CLIENT_SECRET (signature v3)
          POST /webhooks/close               CLOSE_WEBHOOK_SIGNATURE_KEY (hex)
          POST /webhooks/zoho                ZOHO_CHANNEL_ID + ZOHO_CHANNEL_TOKEN
          POST /webhooks/generic             KTSYNC_WEBHOOK_SECRET (X-Ktsync-Signature)
          POST|GET /webhooks/klicktipp[/deletion]
                                             KLICKTIPP_WEBHOOK_TOKEN (parameter
                                             KLICKTIPP_WEBHOOK_TOKEN_PARAM, default Authorization;
                                             contact id in KLICKTIPP_WEBHOOK_ID_PARAM, default
                                             klicktipp_id)
          POST /webhooks/{tenant}/{crm}      the same routes for a tenant, with its own secrets
          GET  /healthz
        KTSYNC_WEBHOOK_PUBLIC_URL: the public base URL HubSpot calls (behind a proxy).

        A 2xx answer means the messages are in the queue; 503 asks the sender to retry.
        """
        from ktsync.producers.webhooks.secrets import WebhookConfigError, WebhookSecrets
        from ktsync.producers.webhooks.server import serve

        try:
            secrets = WebhookSecrets.from_env(os.environ)
        except WebhookConfigError as exc:
            raise click.ClickException(str(exc)) from None
        conf = settings()
        if not secrets.enabled() and not _has_tenants(conf):
            raise click.ClickException(
                "no webhook route is configured: set at least one vendor's secret (see --help), "
                "or add a tenant with its own (`ktsync tenant add`)"
            )
        configure_logging(log_format, loglevel)
        serve(settings=conf, secrets=secrets, host=host, port=port, log_level=loglevel.lower())


def _has_tenants(settings: Settings) -> bool:
    """Whether any tenant besides ``default`` exists (its routes are ``/webhooks/{tenant}/{crm}``)."""
    from ktsync.tenant_scope import current_view

    return bool(current_view(settings).specs)
