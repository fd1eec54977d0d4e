"""The bottom layer of ktsync: the message contract and what every side shares.

Producers (``ktsync.producers``), workers (``ktsync.worker``) and the configuration (``ktsync.config``)
import from here and never from each other; the ``ktsync`` commands sit on top of all of them
(``tests/unit/test_layers.py`` keeps it so). Nothing in here imports anything above it.
"""
