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

On Windows a mode means nothing (the CRT maps 0600 to "not read-only"), so
files and directories are created through CreateFileW/CreateDirectoryW
(:mod:`._win32`) with a protected DACL instead: full access for the owner,
SYSTEM and Administrators, nothing for anyone else, inherited by nothing
from the folder (an archive holds every password hash of the domain).
Dot-names get the hidden attribute there, as they are hidden on POSIX.  And
a file is renamed only once closed: Windows refuses to rename over, or
away, a file that another handle holds without FILE_SHARE_DELETE.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from pathlib import Path

__all__ = ["Directory", "FileExists", "OPEN_RDWR", "OPEN_READ", "PRIVATE_DIR_MODE",
           "PositionedReads", "PRIVATE_DIR_SDDL", "PRIVATE_FILE_SDDL", "PRIVATE_MODE", "commit",
           "copy_mode_and_owner", "create_private", "fsync_dir", "fsync_file", "is_dot_name",
           "large_pipe", "make_private_dirs", "open_private", "os_handle", "pread", "pwrite",
           "regular_mode", "remove_quietly", "set_binary", "set_hidden", "sync_all",
           "windows_fd_flags", "write_all"]

# The platform switch of this module; tests set it (with a fake _win32) to
# follow the Windows branches without calling Windows.
_WINDOWS = sys.platform == "win32"
if _WINDOWS:
    from . import _win32
else:
    _win32 = None

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# What PRIVATE_MODE and PRIVATE_DIR_MODE are on Windows (SDDL, see the
# "Security Descriptor String Format" in the Windows documentation):
# D:P  a DACL, protected from the folder's inheritable entries;
# (A;;FA;;;OW)  allow FILE_ALL_ACCESS to OWNER RIGHTS (whoever owns it: the
#      user, or Administrators for an elevated administrator, or SYSTEM);
# (A;;FA;;;SY)  the same for LocalSystem (the directory service runs as it);
# (A;;FA;;;BA)  the same for BUILTIN\Administrators.
# Directories pass the same entries on to what is created in them (OICI).
PRIVATE_FILE_SDDL = "D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)"
PRIVATE_DIR_SDDL = "D:P(A;OICI;FA;;;OW)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
# Opening an existing file: binary on Windows (text mode turns CRLF into LF
# and stops at the first Ctrl-Z: a silently corrupted archive or database).
OPEN_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
OPEN_RDWR = os.O_RDWR | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
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


def windows_fd_flags() -> int:
    """The CRT flags of the descriptor made from a new file's HANDLE:
    write-only, binary (no newline translation, no Ctrl-Z as end of file:
    text mode would corrupt every archive), not inherited by children.
    The msvcrt values where os lacks the names."""
    return (os.O_WRONLY | getattr(os, "O_BINARY", 0x8000)
            | getattr(os, "O_NOINHERIT", 0x0080))


def is_dot_name(path: os.PathLike | str) -> bool:
    """Whether the last component is a dot-name (hidden on POSIX by
    convention, given the hidden attribute on Windows)."""
    name = os.path.basename(os.fspath(path).rstrip("/\\"))
    return name.startswith(".") and name not in (".", "..")


def os_handle(fd: int) -> int:
    """What the engine takes for a descriptor (ntdsb_file): the descriptor
    itself on POSIX; on Windows its OS HANDLE, because the engine's C
    runtime is not CPython's and would read its own table at that index.
    -1 ("no file": verify only) stays -1, also INVALID_HANDLE_VALUE."""
    if fd == -1 or not _WINDOWS:
        return fd
    return _win32.get_osfhandle(fd)


def open_private(path: os.PathLike | str, mode: int = PRIVATE_MODE) -> int:
    """Create `path` exclusively (never through a symlink) and return a
    write-only descriptor.  The mode is set explicitly, so the umask cannot
    widen or narrow it; on Windows the file gets PRIVATE_FILE_SDDL whatever
    the mode (module docstring)."""
    if _WINDOWS:
        return _win32.create_file(os.fspath(path), PRIVATE_FILE_SDDL,
                                  hidden=is_dot_name(path), fd_flags=windows_fd_flags())
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
    # Windows: `tmp` must be closed by now (see the module docstring); a
    # reader holding `final` open makes the replace fail (PermissionError)
    # rather than leave two files.
    if overwrite:
        os.replace(tmp, final)
        _renamed(tmp, final)
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
        _renamed(tmp, final)
        return
    os.unlink(tmp)
    _renamed(tmp, final)


def _renamed(tmp: str, final: str) -> None:
    """Windows: the hidden attribute follows the name, not the file (a
    temporary .name renamed to a plain name must not stay hidden)."""
    if _WINDOWS and is_dot_name(tmp) != is_dot_name(final):
        _win32.set_hidden(final, is_dot_name(final))


def set_binary(fd: int) -> None:
    """Put an inherited descriptor (standard input or output) in binary
    mode: on Windows the CRT opens them in text mode."""
    if _WINDOWS:
        _win32.set_binary(fd)


def copy_mode_and_owner(st: os.stat_result, fd: int) -> None:
    """Give the file `fd` the mode and owner in `st` (of the file it will
    replace), as far as permitted.  POSIX only: on Windows the file keeps
    PRIVATE_FILE_SDDL, which grants SYSTEM (the directory service) and
    Administrators full access, and the replaced file's own DACL is not
    copied."""
    if _WINDOWS:
        return
    os.fchmod(fd, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.fchown(fd, st.st_uid, st.st_gid)


def set_hidden(path: os.PathLike | str, hidden: bool = True) -> None:
    """Windows: give (or take) the hidden attribute; POSIX: nothing (a
    dot-name is all that hides a file there)."""
    if _WINDOWS:
        _win32.set_hidden(os.fspath(path), hidden)


def make_private_dirs(path: os.PathLike | str) -> None:
    """mkdir -p, each directory created with PRIVATE_DIR_MODE (on Windows
    PRIVATE_DIR_SDDL); directories that exist are left as they are."""
    path = Path(path)
    if not _WINDOWS:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        return
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for d in reversed(missing):
        try:
            _win32.create_directory(os.fspath(d), PRIVATE_DIR_SDDL, hidden=is_dot_name(d))
        except FileExistsError:
            if not d.is_dir():
                raise


def pread(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset`, the descriptor's position unchanged.
    Windows has no pread: seek, read and seek back, so the caller must not
    share the descriptor with another thread meanwhile."""
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    where = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, n)
    finally:
        os.lseek(fd, where, os.SEEK_SET)


def pwrite(fd: int, data, offset: int) -> int:
    """os.pwrite, or on Windows seek and write (the position is left after
    the data: the caller owns the descriptor)."""
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)


def fsync_file(path: os.PathLike | str) -> None:
    """Make a file written by someone else (a subprocess) durable.  Windows
    flushes only through a handle with write access."""
    flags = OPEN_RDWR if _WINDOWS else OPEN_READ
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_all() -> None:
    """Write back every dirty buffer of the system where that exists
    (os.sync: POSIX); elsewhere nothing."""
    if hasattr(os, "sync"):
        os.sync()


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


class PositionedReads:
    """read(n) of a file from `start` on, by pread: the descriptor's own
    position stays where it is for whoever reads it next."""

    def __init__(self, fd: int, start: int = 0):
        self.fd, self.at = fd, start

    def __call__(self, n: int) -> bytes:
        data = pread(self.fd, n, self.at)
        self.at += len(data)
        return data


def write_all(fd: int, data) -> None:
    """Every byte of data to fd (os.write may take fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
            if _WINDOWS:
                _win32.create_directory(where, PRIVATE_DIR_SDDL, hidden=is_dot_name(name))
            else:
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
                if self.fd is None:
                    fd = open_private(where, mode)       # (the Windows branch)
                else:
                    fd = os.open(where, _CREATE, mode, **kw)
            except FileExistsError:
                continue
            try:
                if self.fd is not None:
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


def large_pipe(size: int) -> tuple[int, int]:
    """os.pipe(), its buffer raised to `size` bytes where the system lets a
    process do that (Linux: F_SETPIPE_SZ, capped by /proc/sys/fs/pipe-max-size);
    elsewhere, or when refused, the default buffer.  A bigger buffer means
    fewer wake-ups for a reader of large blocks."""
    r, w = os.pipe()
    try:
        import fcntl
    except ImportError:                 # Windows: no pipe sizes to set
        return r, w
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, set_size, size)
    return r, w
