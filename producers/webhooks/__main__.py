"""``python -m producers.webhooks``: serve the webhook receiver (what ``ktsync webhooks`` runs)."""

from producers.webhooks.server import main

main()
