"""A fake KlickTipp Management API server for the demo, integration tests and benchmarks (never production).

Start it with ``fake_klicktipp.server.serve(port=...)`` or ``python -m fake_klicktipp --port N``;
drive it from tests with ``fake_klicktipp.testing`` (``running_fake()``, ``FakeControl``).
It answers as KlickTipp's spec documents, or with ``--profile recorded`` as the real API was
recorded answering (``fake_klicktipp.options``). It serves several accounts, each with data of its
own (``fake_klicktipp.seed``, ``fake_klicktipp.accounts``; more at run time: ``POST /_fake/accounts``).
"""
