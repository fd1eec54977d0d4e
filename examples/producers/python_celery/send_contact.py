"""Enqueue one ktsync message with plain Celery: the ktsync package is not needed, only `celery[redis]`.

    KTSYNC_REDIS_URL=redis://127.0.0.1:6379/0 [KTSYNC_QUEUE=ktsync.live] python send_contact.py [message.json]

The message is a contract-v1 JSON object (default: ../contact.json, a ``contact.upsert``). Prints the
Celery task id; exits 1 with one line on stderr when the type is unknown or the broker unreachable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from celery import Celery
from kombu.exceptions import OperationalError  # kombu comes with Celery

# The task to call for each message type (the wire: ktsync's README, "For other teams").
TASKS = {
    "contact.upsert": "ktsync.sync_contact",
    "contact.deleted": "ktsync.delete_contact",
    "klicktipp.deletion_requested": "ktsync.handle_deletion_request",
    "crm.contact_changed": "ktsync.fetch_and_sync",
    "klicktipp.contact_changed": "ktsync.refresh_from_klicktipp",
}
# "ktsync.live" for changes as they happen; "ktsync.bulk" for imports and resyncs (served after live work).
QUEUE = os.environ.get("KTSYNC_QUEUE", "ktsync.live")
DEFAULT_MESSAGE = Path(__file__).resolve().parent.parent / "contact.json"


def main(argv: list[str]) -> int:
    message = json.loads(Path(argv[1] if len(argv) > 1 else DEFAULT_MESSAGE).read_text(encoding="utf-8"))
    task = TASKS.get(message.get("type"))
    if task is None:
        print(f"type: must be one of {', '.join(TASKS)}, got {message.get('type')!r}", file=sys.stderr)
        return 1
    app = Celery(broker=os.environ.get("KTSYNC_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        result = app.send_task(
            task,
            args=[message],  # the message is the one positional argument
            queue=QUEUE,
            serializer="json",  # ktsync's workers accept JSON only
            # Optional: when the message was enqueued (Unix seconds), for ktsync's queue age and latency.
            headers={"ktsync_enqueued_at": time.time()},
            # No argsrepr needed: the worker shows the task as "contact.upsert hubspot/501" in Flower and
            # `celery events`, never the message's personal data.
        )
    except OperationalError as exc:
        print(f"cannot reach the broker: {exc}", file=sys.stderr)
        return 1
    print(result.id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
