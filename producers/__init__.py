"""Producers: validate events against the message contract and enqueue them for the workers.

Producers import only the contract and the settings, never worker internals.
"""

if __name__ != "ktsync.producers":  # the checkout's top-level folder, imported by its pre-namespace name
    raise ImportError(
        f"import ktsync.producers, not {__name__}: ktsync's packages live under the one name ktsync"
    )

from ktsync.producers.enqueue import EnqueueError, Producer

__all__ = ["EnqueueError", "Producer"]
