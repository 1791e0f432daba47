"""An archive as a seekable descriptor, whatever the caller named: a path,
'-' (standard input, spooled to a private temporary file) or a binary file
object; its signature checked (signing.py) and its envelope opened
(envelope.py) before anything reads it.  What restore reads, twice."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..platform import signals
from ..platform.files import OPEN_READ, create_private, set_binary
from .envelope import DecryptionKeys, Plaintext, open_plaintext
from .ops import ArchiveSource, _fd_of, read_documents
from .signing import SignedFacts, Trust, check, check_embedded_archive, check_manifest


class ArchiveInput:
    """The archive as a seekable descriptor: a path, '-' (standard input) or
    a binary file object.  A real file open at its start is read through its
    own descriptor (a duplicate: the caller's stays open, its position
    afterwards is unspecified).  Anything else (standard input, a BytesIO, a
    pipe, a file not at its start: the archive is what it reads from there)
    is spooled to a private temporary file first: the archive must be
    verified in full before the DC is touched, and its documents at the end
    are read before its data."""

    def __init__(self, source: ArchiveSource, spool_dir: str | None,
                 keys: DecryptionKeys | None = None, trust: Trust | None = None):
        self.source = source
        self.spool_dir = spool_dir
        self.keys = keys
        self.trust = trust
        self.signed: SignedFacts | None = None   # what a checked signature vouches for
        self.fd = -1
        self.spool: Path | None = None
        self.plain: Plaintext | None = None    # an age-encrypted archive's plaintext
        self.label = str(source)

    def __enter__(self) -> ArchiveInput:
        src = self.source
        if isinstance(src, str) and src == "-":
            self.label = "<stdin>"
            set_binary(sys.stdin.fileno())
            self._spooled(lambda dst: _spool(sys.stdin.fileno(), dst))
        elif isinstance(src, (str, os.PathLike)):
            self.fd = os.open(src, OPEN_READ)
        elif callable(getattr(src, "read", None)):
            name = getattr(src, "name", None)
            self.label = name if isinstance(name, str) else "<stream>"
            fd = _file_at_start(src)
            if fd is not None:
                self.fd = os.dup(fd)
            else:
                self._spooled(lambda dst: _spool_fileobj(src, dst))
        else:
            raise TypeError("archive must be a path, '-' or a binary file object, not "
                            f"{type(src).__name__}")
        try:
            detached = self.trust.detached_text(self.source) if self.trust else None
            if detached is not None:
                # A signature file covers the stored bytes (the age file
                # itself): checked on the descriptor that is then read.
                self.signed = check(self.fd, detached, self.trust.keys)
            # The header is opened here; every chunk is authenticated as the
            # verification pass reads it, before anything on the DC changes.
            self.plain = open_plaintext(self.fd, self.keys)
            if self.trust is not None and self.signed is None:
                self.signed = self._embedded_signature()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _spooled(self, copy: Callable[[int], None]) -> None:
        """The archive copied by copy(descriptor) into a private temporary file."""
        # create_private, not mkstemp: on Windows mkstemp's 0600 is no
        # protection, and the spool holds every password hash of the domain.
        fd, self.spool = create_private(self.spool_dir or tempfile.gettempdir(),
                                        prefix="ntdsb-restore-", suffix=".tar.zst")
        try:
            copy(fd)
            self.fd = os.open(self.spool, OPEN_READ)
        except BaseException:
            # __exit__ does not run when __enter__ fails (Ctrl-C while the
            # archive is still arriving): the spool must not outlive us.
            self.spool.unlink(missing_ok=True)
            raise

    def _embedded_signature(self) -> SignedFacts:
        """A signed stream's own signature, checked over the plaintext before
        it (the archive itself, whatever envelope it came in)."""
        assert self.trust is not None
        with self.reader() as fh:
            return check_embedded_archive(fh, self.trust.keys)

    def rewind(self) -> Any:
        """What the engine reads, at the archive's start: the descriptor, or
        the AgeReader of an encrypted archive."""
        if self.plain is not None:
            self.plain.seek(0)
            return self.plain.source
        os.lseek(self.fd, 0, os.SEEK_SET)
        return self.fd

    @contextlib.contextmanager
    def data(self) -> Iterator[Any]:
        """What the engine reads for one pass over the whole archive (the
        interface remote_input.RemoteInput shares)."""
        yield self.rewind()

    @contextlib.contextmanager
    def reader(self) -> Iterator[BinaryIO]:
        if self.plain is not None:
            self.plain.seek(0)
            yield self.plain  # type: ignore[misc]
            return
        with open(self.rewind(), "rb", closefd=False) as fh:
            yield fh

    def documents(self) -> dict[str, Any]:
        """Manifest, trailer and seek index, read through the index at the end
        (no file is decompressed): what the archive claims, which the staging
        pass then checks member by member."""
        with self.reader() as fh:
            docs = read_documents(fh)
        if self.signed is not None:
            check_manifest(self.signed, docs["manifest"])
        return docs

    def __exit__(self, *exc: object) -> None:
        if self.plain is not None:
            self.plain.close()
            self.plain = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.spool is not None:
            with contextlib.suppress(FileNotFoundError):
                self.spool.unlink()


def _spool(src: int, dst: int) -> None:
    """Copy standard input to the spool with reads a signal always ends
    (signals.read_some): Ctrl-C or SIGTERM stops the copy whether data keeps
    flowing or the writer has stalled; a buffered reader would go on
    blocking in its own loop.  Closes dst."""
    try:
        while block := signals.read_some(src, 1 << 20):
            view = memoryview(block)
            while view:
                view = view[os.write(dst, view):]
    finally:
        os.close(dst)


def _spool_fileobj(src: BinaryIO, dst: int) -> None:
    """Copy what a file object reads (to its end) to the spool.  Closes dst."""
    try:
        while block := src.read(1 << 20):
            if not isinstance(block, (bytes, bytearray, memoryview)):
                raise TypeError("the archive's file object must be binary: read() returned "
                                f"{type(block).__name__}")
            view = memoryview(block)
            while view:
                view = view[os.write(dst, view):]
    finally:
        os.close(dst)


def _file_at_start(fh: BinaryIO) -> int | None:
    """The descriptor of a real, seekable file positioned at its very start
    (nothing read ahead by a buffer either), else None."""
    fd = _fd_of(fh)
    if fd is None:
        return None
    try:
        if fh.tell() != 0 or os.lseek(fd, 0, os.SEEK_CUR) != 0:
            return None
    except OSError:              # a pipe or a terminal: not seekable
        return None
    return fd


__all__ = ["ArchiveInput"]
