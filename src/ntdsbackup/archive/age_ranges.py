"""The plaintext of an age file read by positioned reads of its stored bytes,
for a reader that has no descriptor to give the engine's AgeReader: an
object in a bucket (S3Reader.pread, one ranged GET a miss), or a caller's
own ``pread(size, offset)``.

It follows the engine's seekable reader (src/engine/age_in.c) rule for
rule: the header is parsed and the payload key unwrapped by the one
envelope.open_header that every reader uses; the stored
length must be one a valid payload can have (the engine's own
age_plain_size); the final chunk is authenticated before anything else, so
the plaintext size is known and a cut at a chunk boundary or an appended
byte is refused at open; every chunk is authenticated before a byte of it is
returned.  The failures are the engine's too, class and wording: a
DecryptionError "the encrypted archive is damaged or was altered: age chunk
K (plaintext offset N): authentication failed", and when a last chunk fails,
whether it authenticates with the other final flag says why (a cut, or data
after the final chunk).

Memory is bounded whatever the input: the header parser stops at
MAX_HEADER, nothing is allocated by a claimed size, a miss reads at most
BATCH_CHUNKS chunks at once (about 4 MiB) and at most `cache_chunks`
opened chunks are kept (least recently used first out).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .. import _ntdsbcli
from ..errors import DecryptionError, EngineError
from .envelope import DecryptionKeys, decryption_error, open_header

__all__ = ["BATCH_CHUNKS", "CHUNK_SIZE", "SEALED_SIZE", "AgeRanges"]

CHUNK_SIZE = 65536                   # plaintext bytes of a full chunk
TAG_SIZE = 16
SEALED_SIZE = CHUNK_SIZE + TAG_SIZE
BATCH_CHUNKS = 64                    # most chunks read by one positioned read
DEFAULT_CACHE_CHUNKS = 16            # 1 MiB of plaintext
_MAX_STORED = (1 << 64) - 1          # what the engine's size check takes

Pread = Callable[[int, int], bytes]


def _damaged(what: str) -> DecryptionError:
    return DecryptionError(f"the encrypted archive is damaged or was altered: {what}")


def _at(k: int, what: str) -> DecryptionError:
    return _damaged(f"age chunk {k} (plaintext offset {k * CHUNK_SIZE}): {what}")


def _nonce(k: int, final: bool) -> bytes:
    return k.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class AgeRanges(io.RawIOBase):
    """The archive inside an age file, as a seekable binary file (read,
    readinto, seek, tell, pread(size, offset), size), over `pread` of the
    stored bytes, `stored_size` of them.  Opening reads the header, the
    nonce and the final chunk, and refuses the file (DecryptionError) when
    the keys open no stanza, the header MAC fails, the length is one no
    payload can have or the final chunk does not authenticate.

    pread may be called from several threads; read/seek share one position.
    `stored_read` counts the stored bytes fetched (header included)."""

    def __init__(self, pread: Pread, stored_size: int, keys: DecryptionKeys | None, *,
                 cache_chunks: int = DEFAULT_CACHE_CHUNKS):
        super().__init__()
        if cache_chunks < 1:
            raise ValueError("cache_chunks must be at least 1")
        self._pread_stored = pread
        self.stored_size = stored_size
        self.stored_read = 0
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_chunks = cache_chunks
        self._pos = 0
        opened = open_header(self._stored, keys)
        if opened is None:
            raise DecryptionError("not an age file")
        self._key: bytes | None = opened[0]
        self.header_size = opened[1]                  # where the payload starts
        self._aead: ChaCha20Poly1305 | None = ChaCha20Poly1305(self._key)
        self.sealed_size = stored_size - self.header_size
        self._size = self._plain_size(self.sealed_size)
        self.nchunks = 1 if self._size == 0 else -(-self._size // CHUNK_SIZE)
        # The final chunk first: until it authenticates the length is a claim.
        with self._lock:
            self._load(self.nchunks - 1, 1)

    # -- the file object -------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes of plaintext (known, and authenticated, once open)."""
        return self._size

    @property
    def payload_start(self) -> int:
        """Offset of the first sealed chunk in the stored bytes."""
        return self.header_size

    @property
    def payload_key(self) -> bytes:
        """The payload key, for handing the same payload to the engine's
        AgeReader (a pass over all of it); gone once closed."""
        self._check_open()
        assert self._key is not None
        return self._key

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence == io.SEEK_END:
            pos += self._size
        elif whence != io.SEEK_SET:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = min(pos, self._size)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.pread(len(view), self._pos)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = self._size - self._pos
        data = self.pread(size, self._pos)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def pread(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes of plaintext at `offset` (fewer only at the
        end), the position unchanged; each chunk authenticated first."""
        self._check_open()
        if offset < 0:
            raise ValueError("negative offset")
        size = max(0, min(size, self._size - offset))
        if size == 0:
            return b""
        first, last = offset // CHUNK_SIZE, (offset + size - 1) // CHUNK_SIZE
        pieces: list[bytes] = []
        with self._lock:
            k = first
            while k <= last:
                got = self._cache.get(k)
                if got is not None:
                    self._cache.move_to_end(k)
                    pieces.append(got)
                    k += 1
                    continue
                run = 1
                while run < BATCH_CHUNKS and k + run <= last and k + run not in self._cache:
                    run += 1
                pieces += self._load(k, run)
                k += run
        joined = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        start = offset - first * CHUNK_SIZE
        return joined[start:start + size]

    def close(self) -> None:
        if not self.closed:
            with self._lock:
                self._cache.clear()
                self._aead = self._key = None
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O on a closed age reader")

    # -- the payload -------------------------------------------------------
    def _stored(self, size: int, offset: int) -> bytes:
        """Up to `size` stored bytes at `offset`, never past stored_size."""
        size = max(0, min(size, self.stored_size - offset))
        if size == 0:
            return b""
        data = self._pread_stored(size, offset)[:size]
        self.stored_read += len(data)
        return data

    @staticmethod
    def _plain_size(sealed: int) -> int:
        """The plaintext size a payload of `sealed` bytes has, by the
        engine's own rule (ntdsb_age_plain_size)."""
        if not 0 <= sealed <= _MAX_STORED:
            raise _damaged(f"age payload of {sealed} bytes: no valid payload has that length "
                           "(truncated or trailing bytes)")
        try:
            return int(_ntdsbcli.age_plain_size(sealed))
        except EngineError as exc:
            raise decryption_error(exc) from None

    def _sealed_at(self, k0: int, count: int) -> bytes:
        """Exactly the stored bytes of chunks [k0, k0 + count)."""
        start = k0 * SEALED_SIZE
        end = self.sealed_size if k0 + count == self.nchunks else (k0 + count) * SEALED_SIZE
        out = bytearray()
        while len(out) < end - start:
            got = self._stored(end - start - len(out), self.header_size + start + len(out))
            if not got:      # the object shrank after it was measured
                raise _at(k0 + len(out) // SEALED_SIZE,
                          "truncated (end of file inside the payload)")
            out += got
        return bytes(out)

    def _load(self, k0: int, count: int) -> list[bytes]:
        """Chunks [k0, k0 + count) opened, in order, and kept in the cache;
        the first that fails to authenticate is the one reported."""
        aead = self._aead
        if aead is None:
            raise ValueError("I/O on a closed age reader")
        sealed = self._sealed_at(k0, count)
        final_run = k0 + count == self.nchunks
        out = []
        for i in range(count):
            k = k0 + i
            piece = sealed[i * SEALED_SIZE:(i + 1) * SEALED_SIZE]
            final = final_run and i == count - 1
            try:
                plain = aead.decrypt(_nonce(k, final), piece, None)
            except InvalidTag:
                raise self._why(aead, k, piece, final, last=i == count - 1) from None
            out.append(plain)
            self._cache[k] = plain
            self._cache.move_to_end(k)
            while len(self._cache) > self._cache_chunks:
                self._cache.popitem(last=False)
        return out

    @staticmethod
    def _why(aead: ChaCha20Poly1305, k: int, piece: bytes, final: bool, *,
             last: bool) -> DecryptionError:
        """Chunk k failed: when it is the last of what was read, it is tried
        once with the other flag to say why (the engine's open_into_cache):
        authenticating as non-final where the payload ends is a cut at a
        chunk boundary; as final where more follows, trailing data."""
        if last and len(piece) > TAG_SIZE and (not final or len(piece) == SEALED_SIZE):
            try:
                aead.decrypt(_nonce(k, not final), piece, None)
            except InvalidTag:
                pass
            else:
                return _at(k, "truncated (the input ends after this chunk, which is not the "
                              "final one)" if final else "data after the final chunk")
        return _at(k, "authentication failed")
