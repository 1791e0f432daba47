"""Creating files that cannot be turned against their host.

Every file ntdsbackup writes (archives, extracted files, staging files,
journals, the emulated DC's files) is created here: exclusively
(O_CREAT|O_EXCL|O_NOFOLLOW), under an unpredictable name in the target's own
directory, private from the first instant (mode 0600), then moved to its
final name by :func:`commit`, which refuses to replace an existing entry
unless asked and then replaces the entry itself: a symlink planted at either
name is never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

__all__ = ["PRIVATE_MODE", "FileExists", "commit", "create_private", "fsync_dir",
           "open_private", "regular_mode", "remove_quietly"]

PRIVATE_MODE = 0o600
_CREATE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
           | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


class FileExists(FileExistsError):
    """The final name is taken and replacing it was not asked for."""


def open_private(path: os.PathLike | str, mode: int = PRIVATE_MODE) -> int:
    """Create `path` exclusively (never through a symlink) and return a
    write-only descriptor.  The mode is set explicitly, so the umask cannot
    widen or narrow it."""
    fd = os.open(path, _CREATE, mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private(directory: os.PathLike | str, prefix: str = ".ntdsb-",
                   suffix: str = ".tmp", mode: int = PRIVATE_MODE) -> tuple[int, Path]:
    """A new file with an unpredictable name in `directory`: (fd, path)."""
    directory = Path(directory)
    for _ in range(16):
        path = directory / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            return open_private(path, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not find a free temporary name", str(directory))


def commit(tmp: os.PathLike | str, final: os.PathLike | str, *, overwrite: bool = False) -> None:
    """Give the finished file `tmp` its final name, in the same directory.

    Without overwrite an existing entry at `final` (a file, a directory, a
    symlink, even a dangling one) is refused with FileExists and `tmp` is left
    for the caller to remove.  With overwrite the entry is replaced (a rename:
    a symlink there is replaced, its target never written)."""
    tmp, final = os.fspath(tmp), os.fspath(final)
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        # A hard link fails if the name exists, atomically; then drop the
        # temporary name.
        os.link(tmp, final, follow_symlinks=False)
    except FileExistsError:
        raise FileExists(errno.EEXIST, "refusing to replace an existing file (give "
                         "--overwrite to replace it)", final) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.ENOSYS, errno.EMLINK) and not isinstance(
                                 exc, NotImplementedError):
            raise
        # A file system without hard links: check, then rename.  On Windows
        # rename itself refuses an existing name.
        if os.path.lexists(final):
            raise FileExists(errno.EEXIST, "refusing to replace an existing file (give "
                             "--overwrite to replace it)", final) from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


def fsync_dir(path: os.PathLike | str) -> None:
    """Make a rename or unlink in `path` durable (a no-op where directories
    cannot be opened, as on Windows, whose renames are journaled)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def regular_mode(path: os.PathLike | str) -> os.stat_result | None:
    """lstat of `path` if it is a regular file, else None (missing, a symlink,
    a directory...): modes and owners are only ever copied from a real file,
    never from whatever a link points at."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def remove_quietly(path: os.PathLike | str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
