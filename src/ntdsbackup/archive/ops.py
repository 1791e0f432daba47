"""verify and ls over the pure-Python reader (extract is in extract.py)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Union

from ..errors import ArchiveError
from ..platform.signals import signal_ended_reader
from .documents import read_document
from .frameinput import FrameInput
from .framing import INDEX_FOOTER, INDEX_FOOTER_MAGIC
from .members import MANIFEST_NAME, TRAILER_NAME
from .reader import Consumer, MemberResult, ReadReport, read_archive

# What the readers take: a path, "-" (standard input) or a binary file object.
ArchiveSource = Union[str, os.PathLike[str], BinaryIO]


@contextlib.contextmanager
def open_archive(source: ArchiveSource) -> Iterator[BinaryIO]:
    """A binary stream for a path, '-' (stdin) or an already open file object."""
    if source == "-":
        # Not sys.stdin.buffer: a signal must end a read on a stalled pipe.
        with signal_ended_reader(sys.stdin.fileno()) as fh:
            yield fh
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=1 << 20) as fh:
            yield fh
    else:
        yield source


def _fd_of(fh) -> int | None:
    """A real descriptor positioned at the start of the archive, or None."""
    try:
        fd = fh.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    if hasattr(fh, "peek") or hasattr(fh, "tell"):
        try:
            if fh.tell() != os.lseek(fd, 0, os.SEEK_CUR):
                return None       # a buffered reader has read ahead
        except OSError:
            pass                  # a pipe: nothing was read from it yet
    return fd


def verify(source: ArchiveSource, *, threads: int = 0, pure: bool = False,
           progress: Callable[[MemberResult, int], None] | None = None) -> ReadReport:
    """Check every frame, every whole-file hash and the trailer.  Uses the C
    engine (parallel decompression) on a real descriptor, else the pure-Python
    reader, which pure=True forces.  progress(member, bytes_done) as each
    file is read."""
    with open_archive(source) as fh:
        fd = None if pure else _fd_of(fh)
        if fd is not None:
            from .fastread import read_fd

            return read_fd(fd, threads=threads, progress=progress)
        return read_archive(fh, Counting(Consumer(), progress))


class Counting(Consumer):
    """A consumer that passes every call on to `inner` and tells `progress`
    how many bytes of the member it has had so far."""

    def __init__(self, inner: Consumer, progress: Callable[[MemberResult, int], None] | None):
        self.inner, self.progress, self.done = inner, progress, 0

    def open_member(self, member: MemberResult) -> None:
        self.done = 0
        self.inner.open_member(member)

    def block(self, member: MemberResult, data: bytes) -> None:
        self.inner.block(member, data)
        self.done += len(data)
        if self.progress:
            self.progress(member, self.done)

    def close_member(self, member: MemberResult) -> None:
        self.inner.close_member(member)


def describe(source: ArchiveSource) -> dict[str, Any]:
    """Manifest and trailer.  A seekable file is read through its seek index
    (no decompression of the data); a stream is read and verified in full."""
    with open_archive(source) as fh:
        if _seekable(fh):
            with contextlib.suppress(ArchiveError):
                return read_documents(fh)
            fh.seek(0)
        report = read_archive(fh)
    return {"manifest": report.manifest, "trailer": report.trailer,
            "archive_bytes": report.archive_bytes, "verified": True}


def _seekable(fh) -> bool:
    try:
        return fh.seekable()
    except (AttributeError, OSError):
        return False


def _one_document(fh, offset: int, name: str) -> dict:
    """The document `name` from the metadata frame at `offset`, that frame
    checked on its own exactly as a full read checks it."""
    fh.seek(offset)
    return read_document(FrameInput(fh.read, offset), name)


def read_documents(fh) -> dict:
    """Manifest, trailer and seek index of a seekable archive, each frame
    verified on its own, without decompressing any file.  The documents are
    what the archive *claims*: a full read (read_archive, fastread.read_fd)
    checks them against the members."""
    end = fh.seek(0, os.SEEK_END)
    if end < INDEX_FOOTER.size + 8:
        raise ArchiveError("archive too short")
    fh.seek(end - INDEX_FOOTER.size)
    length, magic = INDEX_FOOTER.unpack(fh.read(INDEX_FOOTER.size))
    if magic != INDEX_FOOTER_MAGIC:
        raise ArchiveError("incomplete archive: no seek index at the end")
    start = end - INDEX_FOOTER.size - length - 8
    if start < 0:
        raise ArchiveError("seek index footer points outside the archive")
    fh.seek(start)
    index = FrameInput(fh.read, start).index()      # checked, and the end of the archive
    trailer_at = index["trailer_offset"]
    if not 0 < trailer_at < start:
        raise ArchiveError(f"the seek index gives no valid trailer offset ({trailer_at!r})")
    manifest = _one_document(fh, 0, MANIFEST_NAME)
    trailer = _one_document(fh, trailer_at, TRAILER_NAME)
    return {"manifest": manifest, "trailer": trailer, "archive_bytes": end, "verified": False,
            "index": index}
