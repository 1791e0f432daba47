"""extract: an archive's files, verified, under a folder (no DC involved).

The files are the domain's password hashes, and the folder may be shared
with people who should not get them, so nothing is written the way a plain
unpacker would:

* Below DIR every name is resolved one component at a time relative to
  directory descriptors (platform.files.Directory), so a symlinked
  subdirectory is detected and never walked through.  DIR itself is the
  user's choice and may be a link.
* Each member goes to a new private file (mode 0600, created exclusively,
  unpredictable name) beside its final name; only once the whole archive has
  verified are they given their final names, and a temporary file never
  outlives a failure or a signal.
* Without overwrite an existing entry at a final name, or anything but a real
  directory where a folder goes, is refused: up front from the archive's
  own list of files where it can be read (the seek index's trailer of a
  seekable archive, else the manifest), when each member's turn comes, and
  atomically at the final rename.  With overwrite the entry is replaced (a
  symlink by the file, a symlinked folder by a real one), never written
  through.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArchiveError
from ..platform.files import Directory, FileExists, make_private_dirs
from .envelope import DecryptionKeys, Plaintext
from .reader import Consumer, MemberResult, ReadReport, read_archive
from .signing import Trust

if TYPE_CHECKING:
    from collections.abc import Callable

    from .ops import ArchiveSource

__all__ = ["extract"]


def extract(source: ArchiveSource, target_dir: str | os.PathLike[str], *, threads: int = 0,
            pure: bool = False, overwrite: bool = False,
            progress: Callable[[MemberResult, int], None] | None = None,
            keys: DecryptionKeys | None = None, trust: Trust | None = None,
            spool_dir: str | None = None) -> ReadReport:
    """Write the backed-up files under target_dir, every chunk, file hash and
    the trailer verified first.  Raises platform.files.FileExists for a name
    that is taken (unless overwrite), ArchiveError for a bad archive; on any
    failure nothing is left under a final name that was not there before.
    progress(member, bytes_done) as each file is read.  keys decrypt an
    age-encrypted archive; trust demands a valid signature, checked before
    the first byte is written, and the signed facts against the manifest
    before any file is opened."""
    from .ops import Counting, _fd_of, open_archive

    target = Path(target_dir)
    make_private_dirs(target)
    with Directory.open(target) as root:
        ex = _Extractor(root, overwrite)
        try:
            with open_archive(source, keys, threads=threads, trust=trust,
                              spool_dir=spool_dir) as opened:
                fh = opened.fh
                ex.check_names(_listed_names(source, fh))

                def on_manifest(manifest: dict) -> None:
                    opened.check_signed(manifest)
                    ex.check_manifest(manifest)
                fd = None if pure else _fd_of(fh)
                if fd is not None:
                    from .fastread import Target, read_fd

                    def open_member(m):
                        ex.open_member(m)
                        return Target(ex.fd)

                    report = read_fd(fd, open_member=open_member, on_manifest=on_manifest,
                                     close_member=lambda m, t: ex.close_member(m),
                                     threads=threads, progress=progress)
                else:
                    report = read_archive(fh, Counting(ex, progress), on_manifest=on_manifest)
                report.signed = opened.signed
            ex.commit()
        except BaseException:
            ex.abort()
            raise
        finally:
            ex.close()
    return report


def _listed_names(source, fh) -> list[str]:
    """The member names a seekable archive lists in its trailer (read through
    the seek index, nothing decompressed), to refuse a taken name before a
    single byte is written.  [] for a stream or an archive whose documents
    cannot be read: the full read then reports what is wrong with it.  An
    encrypted archive's plaintext (unbuffered, so exact) is left at its
    start; a plain file is read through a descriptor of its own, so that
    the one the engine reads stays untouched."""
    from .ops import read_documents

    try:
        if isinstance(fh, Plaintext):
            try:
                files = read_documents(fh)["trailer"].get("files")
            finally:
                fh.seek(0)
        elif isinstance(source, (str, os.PathLike)) and source != "-":
            with open(source, "rb") as own:
                files = read_documents(own)["trailer"].get("files")
        else:
            return []
    except (OSError, ValueError, KeyError, TypeError):    # ArchiveError is a ValueError
        return []
    if not isinstance(files, list):
        return []
    return [f["name"] for f in files if isinstance(f, dict) and isinstance(f.get("name"), str)]


def _split(name: str) -> tuple[list[str], str]:
    """'database/ntds.dit' -> (['database'], 'ntds.dit'); nothing that can
    leave the folder."""
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p
                                   for p in parts):
        raise ArchiveError(f"member {name!r} would land outside the folder")
    return parts[:-1], parts[-1]


class _Extractor(Consumer):
    """Members to private temporary files, renamed at commit."""

    def __init__(self, root: Directory, overwrite: bool):
        self.root = root
        self.overwrite = overwrite
        self.dirs: dict[tuple[str, ...], Directory] = {(): root}
        self.created: list[tuple[Directory, str]] = []      # folders made here, in order
        self.pending: list[tuple[Directory, str, str]] = []  # (folder, temporary, final)
        self.committed: list[tuple[Directory, str]] = []
        self.fd: int | None = None

    # -- refusals ------------------------------------------------------------------
    def check_names(self, names) -> None:
        for name in names:
            self._check(name)

    def check_manifest(self, manifest: dict) -> None:
        files = manifest.get("files")
        if isinstance(files, list):
            self.check_names(f["name"] for f in files
                             if isinstance(f, dict) and isinstance(f.get("name"), str))

    def _check(self, name: str) -> None:
        """Refuse `name` now if writing it would need --overwrite.  Only
        looks: creates nothing."""
        parts, leaf = _split(name)
        folder = self.root
        for i, part in enumerate(parts):
            st = folder.lstat(part)
            if st is None:
                return                      # nothing exists below: nothing to refuse
            if not stat.S_ISDIR(st.st_mode):
                if self.overwrite:
                    return                  # replaced by a real folder when written
                what = "is a symbolic link" if stat.S_ISLNK(st.st_mode) else \
                    "is not a directory"
                raise FileExists(folder.path / part, f"{what}: refusing to write below it",
                                 "give --overwrite to replace it with a real directory")
            folder = self._folder(tuple(parts[:i + 1]))
        st = folder.lstat(leaf)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            raise FileExists(folder.path / leaf, "is a directory", "remove it first")
        if not self.overwrite:
            raise FileExists(folder.path / leaf)

    # -- writing -------------------------------------------------------------------
    def _folder(self, parts: tuple[str, ...]) -> Directory:
        """The folder `parts` below the root, created if missing, never a link."""
        if parts in self.dirs:
            return self.dirs[parts]
        parent = self._folder(parts[:-1])
        folder, created = parent.subdirectory(parts[-1], replace=self.overwrite)
        if created:
            self.created.append((parent, parts[-1]))
        self.dirs[parts] = folder
        return folder

    def open_member(self, member: MemberResult) -> None:
        self._check(member.name)
        parts, leaf = _split(member.name)
        folder = self._folder(tuple(parts))
        self.fd, tmp = folder.create_private(prefix=f".{leaf[:200]}.", suffix=".partial")
        self.pending.append((folder, tmp, leaf))

    def block(self, member: MemberResult, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close_member(self, member: MemberResult) -> None:
        fd, self.fd = self.fd, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the end -------------------------------------------------------------------
    def commit(self) -> None:
        """Every final name at once, after the whole archive verified.  Without
        overwrite a name taken meanwhile stops the commit and the names already
        given are taken back, so it is all the files or none of them."""
        for folder, _tmp, final in self.pending:
            if not self.overwrite and folder.lstat(final) is not None:
                raise FileExists(folder.path / final)
        for folder, tmp, final in list(self.pending):
            folder.commit(tmp, final, overwrite=self.overwrite)
            self.pending.remove((folder, tmp, final))
            self.committed.append((folder, final))
        for folder in {id(f): f for f, _ in self.committed}.values():
            folder.fsync()
        self.committed.clear()
        self.created.clear()

    def abort(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        for folder, tmp, _final in self.pending:
            folder.remove_quietly(tmp)
        self.pending.clear()
        if not self.overwrite:
            # These names were free when the commit began: they are ours.
            for folder, final in self.committed:
                folder.remove_quietly(final)
        self.committed.clear()
        # Folders made for this extract, innermost first; only empty ones go.
        for parent, name in reversed(self.created):
            parent.rmdir_quietly(name)
        self.created.clear()

    def close(self) -> None:
        for parts, folder in self.dirs.items():
            if parts:
                folder.close()
        self.dirs = {(): self.root}
