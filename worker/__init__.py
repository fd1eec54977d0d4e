"""The Celery worker: tasks, the KlickTipp client, the sync service and what they keep in Redis."""

if __name__ != "ktsync.worker":  # the checkout's top-level folder, imported by its pre-namespace name
    raise ImportError(
        f"import ktsync.worker, not {__name__}: ktsync's packages live under the one name ktsync"
    )
