"""verify, ls and extract over the pure-Python reader."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tarfile
from pathlib import Path

from ..errors import ArchiveError
from ..fsutil import fsync_dir
from .framing import INDEX_FOOTER, INDEX_FOOTER_MAGIC
from .reader import Consumer, FrameReader, MemberResult, ReadReport, load_doc, read_archive


@contextlib.contextmanager
def open_archive(source):
    """A binary stream for a path, '-' (stdin) or an already open file object."""
    if source == "-":
        yield sys.stdin.buffer
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


def verify(source, *, threads: int = 0, pure: bool = False) -> ReadReport:
    """Check every frame, every whole-file hash and the trailer.  Uses the C
    engine (parallel decompression) on a real descriptor, else the pure-Python
    reader, which pure=True forces."""
    with open_archive(source) as fh:
        fd = None if pure else _fd_of(fh)
        if fd is not None:
            from .fastread import read_fd

            return read_fd(fd, threads=threads)
        return read_archive(fh)


class _Extractor(Consumer):
    """Writes each member to DIR/<member name>.partial; renamed once the whole
    archive has verified, removed otherwise."""

    def __init__(self, target: Path):
        self.target = target
        self.partials: list[tuple[Path, Path]] = []
        self.fh = None

    def open_member(self, member: MemberResult) -> None:
        final = (self.target / member.name).resolve()
        if self.target.resolve() not in final.parents:
            raise ArchiveError(f"member {member.name!r} would land outside {self.target}")
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.fh = os.fdopen(fd, "wb")
        self.partials.append((partial, final))

    def block(self, member: MemberResult, data: bytes) -> None:
        self.fh.write(data)

    def close_member(self, member: MemberResult) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        self.fh = None

    def commit(self) -> None:
        for partial, final in self.partials:
            os.replace(partial, final)
        for parent in {final.parent for _, final in self.partials}:
            fsync_dir(parent)

    def abort(self) -> None:
        if self.fh is not None:
            self.fh.close()
        for partial, _ in self.partials:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)


def extract(source, target_dir, *, threads: int = 0, pure: bool = False) -> ReadReport:
    """Write the backed-up files (no DC involved) under target_dir, verified."""
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    ex = _Extractor(target)
    try:
        with open_archive(source) as fh:
            fd = None if pure else _fd_of(fh)
            if fd is not None:
                from .fastread import Target, read_fd

                def open_member(m):
                    ex.open_member(m)
                    return Target(ex.fh.fileno())

                report = read_fd(fd, open_member=open_member,
                                 close_member=lambda m, t: ex.close_member(m), threads=threads)
            else:
                report = read_archive(fh, ex)
        ex.commit()
    except BaseException:
        ex.abort()
        raise
    return report


def describe(source) -> dict:
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


def _one_document(fh, offset: int, what: str) -> dict:
    fh.seek(offset)
    frame = next(iter(FrameReader(fh, offset=offset)), None)
    if frame is None or frame.header.is_chunk:
        raise ArchiveError(f"no metadata frame holding {what} at offset {offset}")
    try:
        with tarfile.open(fileobj=io.BytesIO(frame.data), mode="r:") as tar:
            info = tar.next()
            if info is None:
                raise ArchiveError(f"no {what} member")
            return load_doc(tar, info, what)
    except tarfile.TarError as exc:
        raise ArchiveError(f"{what} at offset {offset} is not a tar member: {exc}") from None


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
    reader = FrameReader(fh, offset=start)
    for _ in reader:
        raise ArchiveError("unexpected frame where the seek index should be")
    index = reader.index
    trailer_at = index.get("trailer_offset")
    if not isinstance(trailer_at, int) or not 0 < trailer_at < start:
        raise ArchiveError(f"the seek index gives no valid trailer offset ({trailer_at!r})")
    manifest = _one_document(fh, 0, "the manifest")
    trailer = _one_document(fh, trailer_at, "the trailer")
    return {"manifest": manifest, "trailer": trailer, "archive_bytes": end, "verified": False,
            "index": index}
