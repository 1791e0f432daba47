"""Processes: whether one still runs (how leftovers of a killed process, a
SIGKILL leaves no chance to clean up, are told from work in progress), and
this process's peak memory (the benchmarks)."""

from __future__ import annotations

import os
import sys

__all__ = ["peak_rss_kib", "pid_alive", "wait_child"]


def pid_alive(pid: int) -> bool:
    """True if process `pid` exists (or may: when in doubt, it is alive, so
    that nobody's work in progress is ever removed)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        # os.kill(pid, 0) would terminate the process on Windows: ask
        # OpenProcess instead.
        from ._win32 import process_exists

        return process_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True             # another user's process
    except OSError:
        return True
    return True


def wait_child(proc) -> tuple[int, float | None, int | None]:
    """Wait for the subprocess.Popen `proc`: (exit code, its CPU seconds,
    its peak RSS in KiB).  The last two come from wait4, where it exists
    (POSIX); elsewhere they are None ("n/a")."""
    if not hasattr(os, "wait4"):
        return proc.wait(), None, None
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def peak_rss_kib() -> int | None:
    """This process's own peak resident set, in KiB, or None where it cannot
    be known.  Linux: VmHWM of /proc/self/status (unlike ru_maxrss it does
    not inherit the high-water mark of the process that forked it: Linux
    carries that across exec).  Elsewhere psutil if it is installed (on
    Windows the peak working set), else ru_maxrss where resource exists."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        info = psutil.Process().memory_info()
        peak = getattr(info, "peak_wset", None)     # Windows only
        if peak is not None:
            return peak // 1024
    try:
        import resource
    except ImportError:                 # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss     # bytes on macOS
