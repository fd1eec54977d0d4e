"""Run the ktsync command line as ``python -m ktsync``."""

from ktsync.cli import main

main()
