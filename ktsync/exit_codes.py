"""Exit statuses, a public contract (scripts rely on them; README "Exit codes" lists them per command).

Defined here, at the bottom of the command modules' imports, so that every command module uses the
same values without importing ``ktsync.cli`` (which imports them).
"""

from typing import Final

EXIT_FAILED: Final = 1  # the command could not do its job; one line on stderr says why
EXIT_REJECTED: Final = 2  # enqueue / import: the valid lines are enqueued, some lines were rejected
EXIT_USAGE: Final = 64  # a wrong option or argument (sysexits EX_USAGE; click's own 2 would mean "rejected")
EXIT_INTERRUPTED: Final = 130  # enqueue / import: Ctrl-C (128 + SIGINT); it says how far it got
