"""``python -m ktsync.producers.webhooks``: serve the webhook receiver (what ``ktsync webhooks`` runs)."""

from ktsync.producers.webhooks.server import main

main()
