"""Whether a process still runs: how leftovers of a killed process (a
SIGKILL leaves no chance to clean up) are told from work in progress."""

from __future__ import annotations

import os
import sys

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True if process `pid` exists (or may: when in doubt, it is alive, so
    that nobody's work in progress is ever removed)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        # os.kill(pid, 0) would terminate the process on Windows; until the
        # Windows port asks OpenProcess, every pid counts as alive.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True             # another user's process
    except OSError:
        return True
    return True
