"""Exclusive, non-blocking locks on directories: one restore at a time per
DC directory.

POSIX: flock on the directory itself (released with its descriptor, so a
killed process leaves no lock behind).  Windows: no flock and no directory
descriptors, so a byte-range lock (msvcrt.locking, LockFile underneath) on
the file LOCK_NAME in the directory; it also goes away with the process.
The lock file stays (removing it would race with the next locker); it is
empty and hidden.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path

from . import files

__all__ = ["LOCK_NAME", "DirectoryLock", "LockHeld"]

LOCK_NAME = ".ntdsb-restore.lock"
_WINDOWS = sys.platform == "win32"      # the switch; tests set it


class LockHeld(BlockingIOError):
    """Another process holds the lock."""

    def __init__(self, path: os.PathLike | str):
        super().__init__(errno.EWOULDBLOCK, "locked by another process", os.fspath(path))


def _msvcrt():
    import msvcrt
    return msvcrt


class DirectoryLock:
    """The lock on `directory`, taken at once or LockHeld; release() (or the
    context's end, or the process's) gives it back."""

    def __init__(self, directory: os.PathLike | str):
        self.directory = Path(directory)
        self._held: list[int] = []      # the descriptor, while it is ours
        self._locked = False            # Windows: the byte range is ours to unlock
        if _WINDOWS:
            self._lock_file()
        else:
            self._flock()

    def _flock(self) -> None:
        import fcntl
        # Owned at once: an interrupt anywhere below leaves a descriptor that
        # release() (or __del__) closes, never a lock nobody holds.
        self._held.append(os.open(self.directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        try:
            fcntl.flock(self._held[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise LockHeld(self.directory) from None
        except BaseException:
            self.release()
            raise

    def _lock_file(self) -> None:
        msvcrt = _msvcrt()
        path = self.directory / LOCK_NAME
        fresh = not path.exists()
        self._held.append(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
                                  | getattr(os, "O_NOINHERIT", 0), files.PRIVATE_MODE))
        fd = self._held[0]
        try:
            if fresh:
                with contextlib.suppress(OSError):
                    files.set_hidden(path)
            os.lseek(fd, 0, os.SEEK_SET)
            try:
                # One byte at offset 0 (past the end of the empty file: allowed).
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                self._locked = True
            except OSError:
                raise LockHeld(self.directory) from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        held = getattr(self, "_held", [])   # __init__ may not have got that far
        if held and getattr(self, "_locked", False):
            self._locked = False
            # Unlock before closing: Windows frees a closed handle's locks
            # only eventually.
            with contextlib.suppress(OSError):
                os.lseek(held[0], 0, os.SEEK_SET)
                _msvcrt().locking(held[0], _msvcrt().LK_UNLCK, 1)
        while held:
            os.close(held.pop())    # one line: an interrupt cannot lose the descriptor

    def __del__(self) -> None:          # an interrupted owner: the lock still goes
        self.release()

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
