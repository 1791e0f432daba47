"""An object as a seekable binary file, read with ranged GETs.

Two ways of reading, chosen by what the caller does:

* Streaming: once reads follow one another (more than STREAM_AFTER bytes
  in a row), blocks of `block` bytes are fetched ahead in parallel, up to
  `parallel` of them beyond the one being read, so memory stays within
  parallel + 1 blocks.  verify and restore read like this.
* Random: anything else (ls reads the manifest at the start, then the
  trailer and seek index at the end) fetches small aligned pieces, kept in
  a small LRU, so that reading a few KiB costs one small GET, not a block
  and its read-ahead.

Every GET names the version and the ETag seen when the object was opened,
so an object replaced while it is read fails clearly instead of mixing two
objects' bytes.  Transient failures are retried (retry.py); a server that
stays gone gives StorageError, an OSError naming the key, in bounded time.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import StorageError
from .client import s3_client
from .location import S3Location
from .retry import DEFAULT_RETRY, RetryPolicy, with_retries

__all__ = ["DEFAULT_BLOCK", "S3Reader", "get_range"]

# 16 MiB blocks: against the tests' radosgw, a 192 MiB object read at
# 1.0-1.2x rclone's rate with them and 0.8-0.94x with 8 MiB (docs/STORAGE.md);
# memory is parallel + 1 blocks, 80 MiB.
DEFAULT_BLOCK = 16 << 20
SMALL_BLOCK = 256 << 10          # what a random read fetches at least
SMALL_CACHE = 16                 # small pieces kept: 4 MiB
STREAM_AFTER = 2 * SMALL_BLOCK   # bytes read in a row before read-ahead starts


class S3Reader(io.RawIOBase):
    """read, readinto, seek, tell, size, pread(n, offset), pipe_feed()."""

    def __init__(self, location: S3Location, *, block: int = DEFAULT_BLOCK, parallel: int = 4,
                 version_id: str | None = None, retry: RetryPolicy = DEFAULT_RETRY,
                 client: Any = None):
        super().__init__()
        if block < SMALL_BLOCK or parallel < 1:
            raise ValueError(f"block must be at least {SMALL_BLOCK} and parallel at least 1")
        self.location = location
        self.name = location.url
        self.block = block
        self.parallel = parallel
        self.retry = retry
        self._client = client or s3_client()
        extra = {"VersionId": version_id} if version_id else {}
        head = with_retries(
            lambda: self._client.head_object(Bucket=location.bucket, Key=location.key,
                                             **extra),
            doing="opening", url=self.name, policy=retry)
        self._size = int(head["ContentLength"])
        self._etag = str(head.get("ETag", ""))
        self.version_id: str | None = head.get("VersionId") or version_id
        self._pos = 0
        self._lock = threading.Lock()
        self._small: OrderedDict[int, bytes] = OrderedDict()
        self._window: dict[int, Future[bytes]] = {}     # block index -> its fetch
        self._run_end = -1          # where the last read ended
        self._run_bytes = 0         # bytes read in a row up to there
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="ntdsb-s3-read")
        self.gets = 0               # ranged GETs sent (for tests and measurements)

    def __repr__(self) -> str:
        return f"<S3Reader {self.name} {self._size} bytes>"

    # -- the file object -----------------------------------------------
    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("an S3 object has no descriptor (pipe_feed() gives one)")

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = self._size - self._pos
        size = max(0, min(size, self._size - self._pos))
        if size == 0:
            return b""
        offset = self._pos
        streaming = offset == self._run_end and self._run_bytes >= STREAM_AFTER
        self._run_bytes = self._run_bytes + size if offset == self._run_end else size
        self._run_end = offset + size
        data = self._streamed(offset, size) if streaming else self.pread(size, offset)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def pread(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes at `offset`, the position unchanged; safe to
        call from several threads at once."""
        self._check_open()
        size = max(0, min(size, self._size - offset))
        if size == 0:
            return b""
        if size >= self.block:
            return self._parallel_range(offset, size)
        first, last = offset // SMALL_BLOCK, (offset + size - 1) // SMALL_BLOCK
        pieces = [self._small_piece(i) for i in range(first, last + 1)]
        joined = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        start = offset - first * SMALL_BLOCK
        return joined[start:start + size]

    def close(self) -> None:
        if not self.closed:
            with self._lock:
                for future in self._window.values():
                    future.cancel()
                self._window.clear()
                self._small.clear()
            self._pool.shutdown(wait=False, cancel_futures=True)
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O on a closed reader of {self.name}")

    # -- fetching ------------------------------------------------------
    def fetch(self, offset: int, size: int) -> bytes:
        """One ranged GET of exactly these bytes of the opened version, retried."""
        self.gets += 1
        return get_range(self._client, self.location, offset, size, version_id=self.version_id,
                         etag=self._etag, policy=self.retry)

    def _small_piece(self, index: int) -> bytes:
        with self._lock:
            piece = self._small.get(index)
            if piece is not None:
                self._small.move_to_end(index)
                return piece
            ahead = self._window.get(index * SMALL_BLOCK // self.block)
        if ahead is not None and ahead.done() and not ahead.exception():
            start = index * SMALL_BLOCK - (index * SMALL_BLOCK // self.block) * self.block
            return ahead.result()[start:start + SMALL_BLOCK]
        offset = index * SMALL_BLOCK
        piece = self.fetch(offset, min(SMALL_BLOCK, self._size - offset))
        with self._lock:
            self._small[index] = piece
            while len(self._small) > SMALL_CACHE:
                self._small.popitem(last=False)
        return piece

    def _parallel_range(self, offset: int, size: int) -> bytes:
        """A large range as `block`-sized GETs in parallel, joined."""
        starts = range(offset, offset + size, self.block)
        futures = [self._pool.submit(self.fetch, s, min(self.block, offset + size - s))
                   for s in starts]
        try:
            return b"".join(f.result() for f in futures)
        finally:
            for f in futures:
                f.cancel()

    def _streamed(self, offset: int, size: int) -> bytes:
        """Bytes from the read-ahead window, which moves with the reads."""
        out = []
        while size > 0:
            index = offset // self.block
            data = self._window_block(index).result()
            start = offset - index * self.block
            piece = data[start:start + size]
            if not piece:
                raise StorageError(f"reading {self.name}: block {index} came back short",
                                   url=self.name)
            out.append(piece)
            offset += len(piece)
            size -= len(piece)
        return out[0] if len(out) == 1 else b"".join(out)

    def _window_block(self, index: int) -> Future[bytes]:
        """Block `index`, the window moved to start there: blocks before it
        dropped, fetches started for the next `parallel`."""
        blocks = (self._size + self.block - 1) // self.block
        with self._lock:
            for old in [i for i in self._window if i < index or i > index + self.parallel]:
                self._window.pop(old).cancel()
            for i in range(index, min(blocks, index + self.parallel + 1)):
                if i not in self._window:
                    start = i * self.block
                    self._window[i] = self._pool.submit(
                        self.fetch, start, min(self.block, self._size - start))
            return self._window[index]

    @property
    def etag(self) -> str:
        """The ETag seen at open, without its quotes (every read names it)."""
        return self._etag.strip('"')

    # -- a descriptor for the engine -----------------------------------
    def pipe_feed(self, start: int = 0) -> Any:
        """A thread writing the object's bytes from `start`, in order, into a
        pipe: the PipeFeed's fd is the read end, for a reader of descriptors
        (the C engine).  See pipefeed.py."""
        from .pipefeed import PipeFeed

        self._check_open()
        return PipeFeed(self, start)


def get_range(client: Any, location: S3Location, offset: int, size: int, *,
              version_id: str | None = None, etag: str | None = None,
              policy: RetryPolicy = DEFAULT_RETRY) -> bytes:
    """Exactly `size` bytes at `offset` of the object (of that version, and
    only while it has that ETag), by one ranged GET, retried."""
    if size <= 0:
        return b""
    end = offset + size - 1
    extra: dict[str, str] = {}
    if version_id:
        extra["VersionId"] = version_id
    if etag:
        extra["IfMatch"] = etag

    def get() -> bytes:
        response = client.get_object(Bucket=location.bucket, Key=location.key,
                                     Range=f"bytes={offset}-{end}", **extra)
        # Read through the StreamingBody itself, not what its `with` yields
        # (the raw urllib3 response): only then is a connection cut in the
        # middle of the body a botocore error, which is retried.
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        if len(data) != size:
            # Cut short: a transient failure, as a reset would be.
            raise ConnectionResetError(f"{len(data)} of {size} bytes arrived")
        return bytes(data)

    return with_retries(get, doing=f"reading bytes {offset}-{end} of", url=location.url,
                        policy=policy)
