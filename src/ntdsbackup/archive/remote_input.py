"""An archive in object storage as the restore reads it, with nothing on
local disk: what ArchiveInput (source.py) gives for a file, over an
S3Reader.

* The documents (manifest, trailer, seek index) and the database header
  are read by ranged GETs, through the plaintext when the archive is
  age-encrypted (age_ranges.py: each chunk read is authenticated).
* Each pass over the data (the dry run's verification, the staging pass) is
  a fresh parallel download fed into a pipe (storage.PipeFeed), which the
  engine reads without the GIL; an encrypted payload goes through the
  engine's AgeReader in pipe mode, which authenticates every chunk and the
  final one before the pass can succeed.  A download that fails makes the
  pass fail with the download's own error (StorageError, exit 7), before
  DsRestoreRegisterW: the DC's files are untouched.
* A signature (a trusted key given) is checked before anything else is read,
  over every stored byte, by one download pass of its own.

Every GET names the version and ETag seen at open (storage/reader.py), so
the bytes a later pass reads are the bytes the signature was checked over:
an object replaced in between fails the read instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, BinaryIO, Literal

from .. import _ntdsbcli
from ..errors import DecryptionError, EngineError, SignatureError
from .envelope import AGE_MAGIC, DecryptionKeys, Plaintext, decryption_error, is_age
from .frameinput import ENCRYPTED_NEEDS_A_KEY
from .ops import read_documents
from .signing import (
    MAX_SIGNATURE_FILE,
    SIGNATURE_SUFFIX,
    SignedFacts,
    Trust,
    check_digest,
    check_embedded_archive,
    check_manifest,
    parse_signature_file,
    read_signature_file,
)

__all__ = ["RemoteInput"]

_DIGEST_BLOCK = 8 << 20


class RemoteInput:
    """The interface restore uses (label, signed, plain, documents(),
    reader(), data()) over the object at an s3:// URL."""

    def __init__(self, url: str, keys: DecryptionKeys | None = None,
                 trust: Trust | None = None):
        self.url = url
        self.keys = keys
        self.trust = trust
        self.label = url
        self.signed: SignedFacts | None = None
        self.plain: Any = None          # the plaintext by ranges, when encrypted
        self._reader: Any = None
        self._payload: tuple[int, bytes] | None = None    # (start, key) when encrypted

    def __enter__(self) -> RemoteInput:
        from ..storage import S3Reader, parse_location

        location = parse_location(self.url)
        self.label = location.url
        self._reader = S3Reader(location)
        try:
            if self.trust is not None:
                detached = self._detached_signature(location)
                if detached is not None:
                    self.signed = self._check_stored(detached)
            if is_age(self._reader.pread(len(AGE_MAGIC), 0)):
                self._open_envelope()
            if self.trust is not None and self.signed is None:
                self.signed = self._embedded_signature()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.plain is not None:
            self.plain.close()
            self.plain = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # -- what the object is ----------------------------------------------
    @property
    def location(self) -> Any:
        return self._reader.location

    @property
    def size(self) -> int:
        return int(self._reader.size)

    @property
    def etag(self) -> str:
        return str(self._reader.etag)

    @property
    def version_id(self) -> str | None:
        return self._reader.version_id  # type: ignore[no-any-return]

    # -- what the readers ask ----------------------------------------------
    @contextlib.contextmanager
    def view(self, how: Literal["seekable", "stream"]) -> Iterator[BinaryIO]:
        """The archive as a file for ops.open_archive: read by ranges
        ("seekable"), or one pass in order ("stream": the pipe, or the
        plaintext the AgeReader makes of it)."""
        if how == "seekable":
            with self.reader() as fh:
                yield fh
            return
        with self.data() as data:
            if isinstance(data, int):
                with open(data, "rb", buffering=0, closefd=False) as pipe:
                    yield pipe
            else:
                yield Plaintext(data, 0)  # type: ignore[misc]

    @contextlib.contextmanager
    def reader(self) -> Iterator[Any]:
        """The archive (its plaintext) as a seekable file, read by ranges."""
        fh = self.plain if self.plain is not None else self._reader
        fh.seek(0)
        yield fh

    def documents(self) -> dict[str, Any]:
        with self.reader() as fh:
            docs = read_documents(fh)
        if self.signed is not None:
            check_manifest(self.signed, docs["manifest"])
        return docs

    @contextlib.contextmanager
    def data(self) -> Iterator[Any]:
        """What the engine reads for one pass over the whole archive: a pipe
        descriptor fed by a parallel download, or the AgeReader decrypting
        what that pipe carries."""
        start = self._payload[0] if self._payload else 0
        feed = self._reader.pipe_feed(start)
        age = None
        try:
            try:
                if self._payload is not None:
                    try:
                        age = _ntdsbcli.AgeReader(feed.fd, 0, None, self._payload[1],
                                                  threads=1)
                    except EngineError as exc:
                        raise decryption_error(exc) from None
                    yield age
                else:
                    yield feed.fd
            except BaseException as exc:
                # The engine saw the pipe end early: the download's own error
                # says why, if it failed.
                feed.cancel()
                feed.join(5.0)
                if feed.error is not None and not isinstance(exc, KeyboardInterrupt):
                    raise feed.error from exc
                raise
            feed.join()
            feed.check()
        finally:
            if age is not None:
                age.close()
            feed.cancel()
            feed.join(5.0)
            os.close(feed.fd)

    # -- opening ------------------------------------------------------------
    def _open_envelope(self) -> None:
        from .age_ranges import AgeRanges

        if not self.keys:
            raise DecryptionError(ENCRYPTED_NEEDS_A_KEY)
        self.plain = AgeRanges(self._reader.pread, self._reader.size, self.keys)
        self._payload = (self.plain.payload_start, self.plain.payload_key)

    def _detached_signature(self, location: Any) -> str | None:
        """--signature, else the NAME.minisig object beside the archive."""
        from ..storage import S3Reader, StorageError

        assert self.trust is not None
        if self.trust.signature is not None:
            return read_signature_file(self.trust.signature)
        sibling = location.sibling(SIGNATURE_SUFFIX)
        try:
            sig = S3Reader(sibling)
        except StorageError as exc:
            if exc.code == "NoSuchKey":
                return None
            raise
        with sig:
            if sig.size > MAX_SIGNATURE_FILE:
                raise SignatureError(f"{sibling.url} is not a minisign signature (larger "
                                     f"than {MAX_SIGNATURE_FILE} bytes)")
            return parse_signature_file(sig.read(), sibling.url)

    def _check_stored(self, signature_text: str) -> SignedFacts:
        """The signature over every stored byte (the age file itself when
        encrypted), read in order with the parallel read-ahead."""
        import hashlib

        digest = hashlib.blake2b()
        reader = self._reader
        reader.seek(0)
        while block := reader.read(_DIGEST_BLOCK):
            digest.update(block)
        assert self.trust is not None
        return check_digest(digest.digest(), signature_text, self.trust.keys)

    def _embedded_signature(self) -> SignedFacts:
        assert self.trust is not None
        with self.reader() as fh:
            return check_embedded_archive(fh, self.trust.keys)
