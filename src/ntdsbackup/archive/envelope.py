"""The envelope around an archive: an age v1 file whose plaintext is the
archive, or nothing (a plain ``.tar.zst``).

Every reader goes through :func:`open_plaintext`: given a descriptor of a
file (a stream is spooled to one first: ops.open_archive, source.py), it
tells an age file from a plain archive by its first bytes, opens the header
with the keys (ntdsbackup.crypto) and hands back a :class:`Plaintext`, which
the readers use like a file and the engine reads through directly (an
AgeReader: each chunk authenticated before a byte of it is used).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import _ntdsbcli
from ..errors import DecryptionError, EngineError
from ..platform.files import pread
from .frameinput import ENCRYPTED_NEEDS_A_KEY

AGE_MAGIC = b"age-encryption.org/"
_NONCE_SIZE = 16


@dataclass
class DecryptionKeys:
    """What a reader may decrypt with: age identities (X25519) and/or a
    passphrase (scrypt).  repr never shows either."""

    identities: Sequence[object] = ()
    passphrase: str | None = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return bool(self.identities) or self.passphrase is not None


def is_age(prefix: bytes) -> bool:
    return prefix.startswith(AGE_MAGIC)


class Plaintext(io.RawIOBase):
    """The archive inside an age file, as a binary file: read, readinto and
    (on a seekable file) seek, tell and pread at plaintext offsets.  The
    engine takes `.source` (the AgeReader) in place of a descriptor."""

    def __init__(self, reader, header_size: int):
        super().__init__()
        self.source = reader
        self.header_size = header_size          # bytes of envelope before the payload

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self.source.seekable)

    def readinto(self, buffer) -> int:
        try:
            return self.source.readinto(buffer)
        except EngineError as exc:
            raise decryption_error(exc) from None

    def pread(self, n: int, offset: int) -> bytes:
        try:
            return self.source.pread(n, offset)
        except EngineError as exc:
            raise decryption_error(exc) from None

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if not self.seekable():
            raise io.UnsupportedOperation("an age stream read from a pipe cannot seek")
        if whence == io.SEEK_CUR:
            pos += self.source.tell()
        elif whence == io.SEEK_END:
            pos += self.source.size
        if pos < 0:
            raise ValueError("negative seek position")
        return self.source.seek(min(pos, self.source.size))

    def tell(self) -> int:
        return self.source.tell()

    def close(self) -> None:
        if not self.closed:
            self.source.close()
        super().close()


def decryption_error(exc: EngineError) -> Exception:
    """An engine CORRUPT status from the age layer as an ArchiveError."""
    if exc.status_name != "NTDSB_E_CORRUPT":
        return exc
    return DecryptionError(f"the encrypted archive is damaged or was altered: {exc.detail}")


def open_header(read_at: Callable[[int, int], bytes], keys: DecryptionKeys | None
                ) -> tuple[bytes, int] | None:
    """(payload key, offset of the payload) of the age file read by
    read_at(size, offset), its header parsed and unwrapped with the keys;
    None when it is no age file.  DecryptionError when the keys open no
    stanza, the header is malformed or its MAC fails (ntdsbackup.crypto)."""
    from ..crypto import read_header, unwrap

    if not is_age(read_at(len(AGE_MAGIC), 0)):
        return None
    if not keys:
        raise DecryptionError(ENCRYPTED_NEEDS_A_KEY)
    at = 0

    def sequential(n: int) -> bytes:     # the parser stops at the header's end
        nonlocal at
        data = read_at(n, at)[:n]
        at += len(data)
        return data
    header = read_header(sequential)
    nonce = read_at(_NONCE_SIZE, header.length)
    if len(nonce) != _NONCE_SIZE:
        raise DecryptionError("truncated age file: the header is not followed by a nonce")
    payload_key = unwrap(header, nonce, identities=keys.identities,
                         passphrase=keys.passphrase)
    return payload_key, header.length + _NONCE_SIZE


def open_plaintext(fd: int, keys: DecryptionKeys | None, *,
                   threads: int = 1) -> Plaintext | None:
    """The archive in the file at descriptor `fd`: a Plaintext when it is an
    age file, None when it is a plain archive (then read `fd` itself; its
    position is not moved here).

    threads: how many threads open each batch of chunks.  One: the engine
    reads the payload in its reader thread while its workers decompress, so
    decryption already runs beside decompression, and on two cores a batch
    split over more threads only fights the workers (verify of a 512 MiB DC,
    medians of 5: plain 0.277 s, encrypted 0.265 s with 1 thread, 0.304 s
    with 2)."""
    opened = open_header(lambda n, offset: pread(fd, n, offset), keys)
    if opened is None:
        return None
    payload_key, start = opened
    sealed = os.fstat(fd).st_size - start
    try:
        reader = _ntdsbcli.AgeReader(fd, start, sealed, payload_key, threads=threads)
    except EngineError as exc:
        raise decryption_error(exc) from None
    return Plaintext(reader, start)


__all__ = ["AGE_MAGIC", "DecryptionKeys", "Plaintext", "decryption_error", "is_age",
           "open_header", "open_plaintext"]

