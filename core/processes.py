"""Stopping a child process the polite way first: SIGTERM, then SIGKILL when it does not exit in time."""

from __future__ import annotations

import subprocess
from typing import Any

STOP_TIMEOUT = 5.0


def stop(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> int:
    """Terminate ``process`` (nothing when it has exited), kill it after ``timeout`` s; its exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
