"""The webhook receiver: CRM and KlickTipp webhooks in, contract-v1 messages onto the queue.

One module per job::

    secrets.py     the credentials and options, read once from the environment (WebhookSecrets)
    signatures.py  pure verification of HMAC signatures and static tokens (SignatureError)
    payloads/      pure mapping of each vendor's payload to contract messages and dedupe ids
    dedupe.py      "seen this event id?" in Redis, with an in-memory twin
    tenants.py     each tenant's routes /webhooks/{tenant}/{crm}: its own secrets and dedupe keys
    receiver.py    one request in, one response out: verify, map, dedupe, enqueue (blocking code)
    app.py         the Starlette shell: reads the body, runs the receiver in a thread pool, answers
    server.py      uvicorn via ktsync.core.web, with a ready line; ``python -m ktsync.producers.webhooks``
    bench.py       requests/s for signed HubSpot batches over one keep-alive connection

A 2xx answer means every message of the request is in the broker (``Producer.enqueue_many``
returned); a CRM that gets anything else retries.
"""
