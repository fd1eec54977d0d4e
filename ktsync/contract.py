"""The message contract's public import path for other services (``from ktsync.contract import parse_message``).

The contract itself lives at the bottom of the import graph, in :mod:`ktsync.core.contract`; this name
is kept so that code written against ktsync 0.1–0.3 goes on working.
"""

from ktsync.core.contract import *  # noqa: F403
from ktsync.core.contract import __all__ as __all__
