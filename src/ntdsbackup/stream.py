"""The iterator form of a backup, for storage pipelines.

    for piece in iter_backup("DC01"):
        store.put(piece.data)          # concatenated, the pieces are the archive

The backup runs in a background thread (the engine releases the GIL, so it
overlaps with the consumer); its output goes through a bounded queue and is
cut at frame boundaries.  With verify=True (the default) every frame is
checked against its header before it is yielded: decompressed, its size and
XXH3-128 compared.  Memory is bounded by the queue, whatever the DC's size.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from .archive.framing import FILE_CHUNK_MAGIC
from .archive.reader import FrameReader

if TYPE_CHECKING:
    from .phases.backup import BackupSummary

_END = object()
_Item = Union[bytes, object]         # archive bytes, or _END


@dataclass(frozen=True)
class Piece:
    """One frame of the archive, with its header when it has one."""

    kind: str                 # "chunk" (file data), "meta" (tar metadata), "index"
    index: int | None         # chunk number within its file, or metadata frame number
    raw_size: int | None
    xxh3_128: bytes | None
    data: bytes               # the exact archive bytes (header + zstd frame)


class _QueueWriter(io.RawIOBase):
    """The backup's sink: hands bytes to the consumer through a bounded queue."""

    def __init__(self, q: queue.Queue[_Item], cancelled: threading.Event):
        self.q = q
        self.cancelled = cancelled

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        while True:
            if self.cancelled.is_set():
                raise BrokenPipeError("the consumer of the backup stream went away")
            try:
                self.q.put(data, timeout=0.1)
                return len(data)
            except queue.Full:
                continue


class _QueueReader(io.RawIOBase):
    """The consumer's side of the queue, as a stream for the frame parser."""

    def __init__(self, q: queue.Queue[_Item]):
        self.q = q
        self.buf = memoryview(b"")
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.buf:
            if self.done:
                return 0
            item = self.q.get()
            if not isinstance(item, bytes):         # _END
                self.done = True
                return 0
            self.buf = memoryview(item)
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


class _Recorder(io.RawIOBase):
    """Wraps the reader and keeps the exact bytes of the current frame."""

    def __init__(self, raw: _QueueReader):
        self.raw = raw
        self.taken = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.taken += data
        return data

    def take(self) -> bytes:
        out = bytes(self.taken)
        self.taken.clear()
        return out


class BackupStream:
    """Iterate to get the pieces; .summary holds the BackupSummary at the end."""

    def __init__(self, server: str, *, verify: bool = True, queue_bytes: int = 64 << 20,
                 **backup_kwargs: Any):
        from .phases.backup import DEFAULT_CHUNK_SIZE

        chunk = backup_kwargs.get("chunk_size", DEFAULT_CHUNK_SIZE)
        self._q: queue.Queue[_Item] = queue.Queue(maxsize=max(2, queue_bytes // chunk))
        self._cancel = threading.Event()
        self._verify = verify
        self._error: BaseException | None = None
        self.summary: BackupSummary | None = None
        self._thread = threading.Thread(target=self._run, args=(server, backup_kwargs),
                                        name="ntdsbackup-stream", daemon=True)

    def _run(self, server: str, kwargs: dict[str, Any]) -> None:
        from .phases.backup import backup

        try:
            self.summary = backup(server, _QueueWriter(self._q, self._cancel), **kwargs)
        except BaseException as exc:      # handed to the consumer's thread
            self._error = exc
        finally:
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._q.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self._cancel.is_set():
                    return

    def __iter__(self) -> Iterator[Piece]:
        self._thread.start()
        rec = _Recorder(_QueueReader(self._q))
        try:
            for frame in FrameReader(rec, decode=self._verify):
                h = frame.header
                kind = "chunk" if h.magic == FILE_CHUNK_MAGIC else "meta"
                yield Piece(kind, h.index, h.raw_size, h.xxh3_128, rec.take())
            tail = rec.take()
            if tail:
                yield Piece("index", None, None, None, tail)
        except BaseException:
            if self._error is None:
                raise
        finally:
            self._cancel.set()
            # Drain so a blocked writer sees the cancel, then wait for it.
            while self._thread.is_alive():
                try:
                    self._q.get(timeout=0.1)
                except queue.Empty:
                    pass
            self._thread.join()
        if self._error is not None:
            raise self._error


def iter_backup(server: str, *, verify: bool = True, **backup_kwargs: Any) -> BackupStream:
    """A backup of `server` as an iterable of archive pieces (see Piece).
    backup_kwargs are backup()'s keywords (provider, identity, level,
    threads, chunk_size, progress...)."""
    return BackupStream(server, verify=verify, **backup_kwargs)


__all__ = ["iter_backup", "BackupStream", "Piece"]
