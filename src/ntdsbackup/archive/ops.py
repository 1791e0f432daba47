"""verify and ls over the pure-Python reader (extract is in extract.py)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Union

from ..errors import ArchiveError
from ..platform.signals import signal_ended_reader
from .documents import read_document
from .envelope import DecryptionKeys, Plaintext, open_plaintext
from .frameinput import FrameInput
from .framing import (
    INDEX_FOOTER,
    INDEX_FOOTER_MAGIC,
    MAX_SIGNATURE_SIZE,
    SIGNATURE_FOOTER_MAGIC,
)
from .members import MANIFEST_NAME, TRAILER_NAME
from .reader import Consumer, MemberResult, ReadReport, read_archive
from .signing import SignedFacts, Trust, check_manifest

# What the readers take: a path, "-" (standard input) or a binary file object.
ArchiveSource = Union[str, os.PathLike[str], BinaryIO]


@dataclass
class Opened:
    """An open archive: its bytes (the plaintext of an age file) and, when a
    signature was demanded, what the checked signature vouches for (to be
    compared with the manifest once it is read: check_signed)."""

    fh: BinaryIO
    signed: SignedFacts | None = None

    def check_signed(self, manifest: dict | None) -> None:
        if self.signed is not None:
            check_manifest(self.signed, manifest or {})


@contextlib.contextmanager
def open_archive(source: ArchiveSource, keys: DecryptionKeys | None = None, *,
                 threads: int = 0, trust: Trust | None = None,
                 spool_dir: str | None = None,
                 how: Literal["seekable", "stream"] = "stream") -> Iterator[Opened]:
    """The archive for a path, '-' (stdin), an s3:// URL or its RemoteInput
    (remote.py: ranged reads for `how` "seekable", one download into a pipe
    for "stream"; nothing on local disk) or an
    already open file object: the plaintext when it is an age file
    (envelope.py).  With trust, the signature is checked first, over the
    very descriptor read afterwards (a stream is spooled to a private file
    for that: source.ArchiveInput)."""
    from .remote import is_remote
    from .remote_input import RemoteInput

    if is_remote(source):
        with RemoteInput(source, keys, trust) as inp, inp.view(how) as fh:
            yield Opened(fh, inp.signed)
        return
    if isinstance(source, RemoteInput):          # remote.open_source's: opened and checked
        with source.view(how) as fh:
            yield Opened(fh, source.signed)
        return
    if trust is not None:
        from .source import ArchiveInput

        with ArchiveInput(source, spool_dir, keys, trust) as inp, \
                inp.reader() as fh:
            yield Opened(fh, inp.signed)
        return
    with _open_plain_or_age(source, keys, threads, spool_dir) as fh:
        yield Opened(fh)


@contextlib.contextmanager
def _open_plain_or_age(source: ArchiveSource, keys: DecryptionKeys | None,
                       threads: int, spool_dir: str | None) -> Iterator[BinaryIO]:
    if source == "-":
        if keys:
            # An encrypted stream is copied to a private spool first (reads a
            # signal always ends), then read like a file: the payload reader
            # decrypts in batches, and a batch read from a stalled pipe would
            # hold up Ctrl-C until the writer sends more or closes.
            from .source import ArchiveInput

            with ArchiveInput(source, spool_dir, keys) as inp, inp.reader() as fh:
                yield fh
            return
        # Not sys.stdin.buffer: a signal must end a read on a stalled pipe.
        with signal_ended_reader(sys.stdin.fileno()) as fh:
            yield fh
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=1 << 20) as fh:
            plain = open_plaintext(fh.fileno(), keys)
            if plain is None:
                yield fh
            else:
                with plain:
                    yield plain  # type: ignore[misc]
    else:
        fd = _fd_of(source)
        plain = None
        if fd is not None and _seekable(source) and isinstance(fd, int):
            plain = open_plaintext(fd, keys)
        if plain is None:
            yield source
        else:
            with plain:
                yield plain  # type: ignore[misc]


def _fd_of(fh) -> Any:
    """What the engine reads the archive from: a real descriptor positioned
    at the start of the archive, the AgeReader of a decrypted one, or None."""
    if isinstance(fh, Plaintext):
        return fh.source if fh.tell() == 0 else None
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
           progress: Callable[[MemberResult, int], None] | None = None,
           keys: DecryptionKeys | None = None, trust: Trust | None = None,
           spool_dir: str | None = None, deep: bool = False) -> ReadReport:
    """Check every frame, every whole-file hash and the trailer.  Uses the C
    engine (parallel decompression) on a real descriptor, else the pure-Python
    reader, which pure=True forces.  progress(member, bytes_done) as each
    file is read.  keys decrypt an age-encrypted archive (every chunk is
    authenticated as it is read); trust demands a valid signature.  deep:
    also check every database page and log segment, the log chain and the
    required generations; report.ese is then the verdict a DC would give
    after restoring the archive (dbcheck.Verdict)."""
    from ..dbcheck.archive import ArchivePages

    pages = ArchivePages() if deep else None
    with open_archive(source, keys, threads=threads, trust=trust,
                      spool_dir=spool_dir) as opened:
        fd = None if pure else _fd_of(opened.fh)
        if fd is not None:
            from .fastread import read_fd

            report = read_fd(fd, threads=threads, progress=progress, pages=pages)
        else:
            consumer = Counting(Consumer(), progress)
            report = read_archive(opened.fh, pages.consumer(consumer) if pages else consumer)
        opened.check_signed(report.manifest)
        report.signed = opened.signed
        report.encrypted = isinstance(opened.fh, Plaintext)
        if pages is not None:
            report.ese = pages.verdict(report.trailer)
        return report


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


def describe(source: ArchiveSource, *, keys: DecryptionKeys | None = None,
             trust: Trust | None = None, spool_dir: str | None = None) -> dict[str, Any]:
    """Manifest and trailer.  A seekable file is read through its seek index
    (no decompression of the data); a stream is read and verified in full."""
    with open_archive(source, keys, trust=trust, spool_dir=spool_dir,
                      how="seekable") as opened:
        docs = _describe(opened.fh)
        opened.check_signed(docs["manifest"])
        if opened.signed is not None:
            docs["signed"] = opened.signed.as_dict()
        return docs


def _describe(fh) -> dict[str, Any]:
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
    checks them against the members.  A signed stream's signature frame
    (the very last) is returned unchecked as "signature": (text, offset)."""
    end = fh.seek(0, os.SEEK_END)
    if end < INDEX_FOOTER.size + 8:
        raise ArchiveError("archive too short")
    index_end, signature_at = _peel_signature(fh, end)
    fh.seek(index_end - INDEX_FOOTER.size)
    length, magic = INDEX_FOOTER.unpack(fh.read(INDEX_FOOTER.size))
    if magic != INDEX_FOOTER_MAGIC:
        raise ArchiveError("incomplete archive: no seek index at the end")
    start = index_end - INDEX_FOOTER.size - length - 8
    if start < 0:
        raise ArchiveError("seek index footer points outside the archive")
    fh.seek(start)
    frames = FrameInput(fh.read, start)
    index = frames.index()      # checked, and the end of the archive (or its signature)
    if (frames.signature is None) != (signature_at is None):
        raise ArchiveError("the signature frame at the end is not where the index ends")
    trailer_at = index["trailer_offset"]
    if not 0 < trailer_at < start:
        raise ArchiveError(f"the seek index gives no valid trailer offset ({trailer_at!r})")
    manifest = _one_document(fh, 0, MANIFEST_NAME)
    trailer = _one_document(fh, trailer_at, TRAILER_NAME)
    docs = {"manifest": manifest, "trailer": trailer, "archive_bytes": end, "verified": False,
            "index": index}
    if frames.signature is not None:
        docs["signature"] = frames.signature
    return docs


def _peel_signature(fh, end: int) -> tuple[int, int | None]:
    """Where the seek index ends, and where a signature frame after it starts
    (None without one), from the footer at `end`."""
    fh.seek(end - INDEX_FOOTER.size)
    length, magic = INDEX_FOOTER.unpack(fh.read(INDEX_FOOTER.size))
    if magic != SIGNATURE_FOOTER_MAGIC:
        return end, None
    if length > MAX_SIGNATURE_SIZE:
        raise ArchiveError(f"the signature frame at the end claims {length} bytes")
    start = end - INDEX_FOOTER.size - length - 8
    if start < INDEX_FOOTER.size + 8:
        raise ArchiveError("the signature footer points outside the archive")
    return start, start



