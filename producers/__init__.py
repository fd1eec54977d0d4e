"""Producers: validate events against the message contract and enqueue them for the workers.

Producers import only the contract and the settings, never worker internals.
"""

from producers.enqueue import EnqueueError, Producer

__all__ = ["EnqueueError", "Producer"]
