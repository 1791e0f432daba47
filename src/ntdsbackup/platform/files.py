"""Creating files that cannot be turned against their host.

Every file ntdsbackup writes (archives, extracted files, staging files,
journals, the emulated DC's files) is created here: exclusively
(O_CREAT|O_EXCL|O_NOFOLLOW), under an unpredictable name in the target's own
directory, private from the first instant (mode 0600), then moved to its
final name by :func:`commit`, which refuses to replace an existing entry
unless asked and then replaces the entry itself: a symlink planted at either
name is never followed.

:class:`Directory` does the same below a directory the caller chose, one
name at a time relative to open directory descriptors, so that a symlinked
subdirectory is seen and never walked through.  Where descriptors cannot
name directories (Windows) it falls back to checked paths: those branches
stay in this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_MODE", "Directory", "FileExists", "commit",
           "create_private", "fsync_dir", "open_private", "regular_mode", "remove_quietly"]

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_CREATE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
           | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


_OPEN_DIR = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
# Names relative to directory descriptors: everything Directory needs.
_DIR_FD = all(f in os.supports_dir_fd for f in (os.open, os.mkdir, os.stat, os.unlink,
                                                os.rmdir, os.rename, os.link))
_REPLACE_HINT = "give --overwrite to replace it"


class FileExists(FileExistsError):
    """The final name is taken (or is a symlink where a directory must be)
    and replacing it was not asked for."""

    def __init__(self, path: os.PathLike | str, reason: str = "already exists",
                 hint: str = _REPLACE_HINT):
        super().__init__(errno.EEXIST, f"{reason}; {hint}", os.fspath(path))
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.filename} {self.reason} ({self.hint})"


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
        raise FileExists(final) from None
    except OSError as exc:
        if not _no_hard_links(exc):
            raise
        # A file system without hard links: check, then rename.  On Windows
        # rename itself refuses an existing name.
        if os.path.lexists(final):
            raise FileExists(final) from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


def _no_hard_links(exc: OSError) -> bool:
    return isinstance(exc, NotImplementedError) or exc.errno in (
        errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS, errno.EMLINK)


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


class Directory:
    """An open directory below which entries are created, looked up and
    renamed one name at a time, never through a symlink.

    The directory itself is opened as given (it may be a link the caller
    chose); every subdirectory is opened with O_NOFOLLOW relative to its
    parent's descriptor, so a link planted anywhere below is detected, not
    walked through, even if it appears between a check and the use.  Names
    are single components: the caller splits paths."""

    def __init__(self, path: os.PathLike | str, fd: int | None):
        self.path = Path(path)
        self.fd = fd            # None: the path fallback (no directory descriptors)
        self._closed = False

    @classmethod
    def open(cls, path: os.PathLike | str) -> Directory:
        if not _DIR_FD:
            if not os.path.isdir(path):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", os.fspath(path))
            return cls(path, None)
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        return cls(path, os.open(path, flags))

    def close(self) -> None:
        if self.fd is not None and not self._closed:
            os.close(self.fd)
        self._closed = True

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- names relative to this directory ----------------------------------------
    def _at(self, name: str) -> tuple[str, dict]:
        if self._closed:
            raise ValueError(f"{self.path}: the directory handle is closed")
        if not name or name in (".", "..") or "/" in name or os.sep in name or \
                (os.altsep and os.altsep in name):
            raise ValueError(f"not a single file name: {name!r}")
        if self.fd is None:
            return os.path.join(self.path, name), {}
        return name, {"dir_fd": self.fd}

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a symlink is reported as one), or None."""
        where, kw = self._at(name)
        try:
            return os.stat(where, follow_symlinks=False, **kw)
        except FileNotFoundError:
            return None

    def subdirectory(self, name: str, *, replace: bool = False,
                     mode: int = PRIVATE_DIR_MODE) -> tuple[Directory, bool]:
        """(the subdirectory `name`, whether it was created).  A missing one is
        created with `mode`; a symlink or anything else that is not a real
        directory is refused with FileExists unless `replace`, and then
        removed and replaced by a real directory (its target untouched)."""
        where, kw = self._at(name)
        created = False
        st = self.lstat(name)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            what = "is a symbolic link" if stat.S_ISLNK(st.st_mode) else "is not a directory"
            if not replace:
                raise FileExists(self.path / name, f"{what}: refusing to write below it",
                                 "give --overwrite to replace it with a real directory")
            os.unlink(where, **kw)
            st = None
        if st is None:
            os.mkdir(where, mode, **kw)
            created = True
        if self.fd is None:
            if os.path.islink(where) or not os.path.isdir(where):
                raise FileExists(self.path / name, "changed while in use: refusing to write "
                                 "below it", "try again")
            return Directory(where, None), created
        try:
            fd = os.open(where, _OPEN_DIR, **kw)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                # Replaced by a link between the check and the open.
                raise FileExists(self.path / name, "changed into a symbolic link: refusing "
                                 "to write below it", "try again") from None
            raise
        if created:
            os.fchmod(fd, mode)     # the umask must not widen or narrow it
        return Directory(self.path / name, fd), created

    def create_private(self, prefix: str, suffix: str = ".tmp",
                       mode: int = PRIVATE_MODE) -> tuple[int, str]:
        """A new file with an unpredictable name here: (fd, name)."""
        for _ in range(16):
            name = f"{prefix}{secrets.token_hex(8)}{suffix}"
            where, kw = self._at(name)
            try:
                fd = os.open(where, _CREATE, mode, **kw)
            except FileExistsError:
                continue
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
            except BaseException:
                os.close(fd)
                raise
            return fd, name
        raise FileExistsError(errno.EEXIST, "could not find a free temporary name",
                              str(self.path))

    def commit(self, tmp: str, final: str, *, overwrite: bool = False) -> None:
        """:func:`commit` for two names in this directory."""
        if self.fd is None:
            commit(self._at(tmp)[0], self._at(final)[0], overwrite=overwrite)
            return
        for name in (tmp, final):
            self._at(name)          # single names only
        if overwrite:
            os.rename(tmp, final, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            return
        try:
            os.link(tmp, final, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        except FileExistsError:
            raise FileExists(self.path / final) from None
        except OSError as exc:
            if not _no_hard_links(exc):
                raise
            if self.lstat(final) is not None:
                raise FileExists(self.path / final) from None
            os.rename(tmp, final, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            return
        os.unlink(tmp, dir_fd=self.fd)

    def remove_quietly(self, name: str) -> None:
        where, kw = self._at(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where, **kw)

    def rmdir_quietly(self, name: str) -> None:
        """Remove an empty subdirectory; leave it if anything is in it."""
        where, kw = self._at(name)
        with contextlib.suppress(OSError):
            os.rmdir(where, **kw)

    def fsync(self) -> None:
        if self._closed:
            return
        if self.fd is None:
            fsync_dir(self.path)
            return
        with contextlib.suppress(OSError):
            os.fsync(self.fd)
