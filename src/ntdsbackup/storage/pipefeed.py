"""An object streamed into a pipe, for a reader of descriptors.

The C engine reads its input with read(2) on a descriptor, without the GIL;
a pipe lets it consume a download that is fetched in parallel (a window of
`parallel` blocks ahead, as S3Reader streams).  The feeding thread writes
the blocks in order and closes its end when done, on an error and on
cancel(): the engine then sees end-of-file, and the caller, which must
call check() afterwards, gets the download's own error instead of a
"truncated archive".  The write end is non-blocking and polled, so that
cancel() ends the thread even while nobody reads the pipe.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING

from ..platform.files import large_pipe

if TYPE_CHECKING:
    from .reader import S3Reader

__all__ = ["PipeFeed"]

PIPE_BYTES = 1 << 20                  # fewer wake-ups than the default 64 KiB
_POLL = 0.1


class PipeFeed:
    """fd: the read end (the caller's to close).  cancel(), join(), check()."""

    def __init__(self, reader: S3Reader, start: int = 0):
        if not 0 <= start <= reader.size:
            raise ValueError(f"start {start} is outside the object (0..{reader.size})")
        self.reader = reader
        self.start = start
        self.error: BaseException | None = None
        self.bytes_fed = 0
        self._cancelled = threading.Event()
        self.fd, self._write_end = large_pipe(PIPE_BYTES)
        # Where pipes cannot be non-blocking (Windows before Python 3.12),
        # writes block and a cancel waits for the reader to close its end.
        with contextlib.suppress(OSError):
            os.set_blocking(self._write_end, False)
        self._thread = threading.Thread(target=self._run, name="ntdsb-s3-pipe", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop feeding; the thread closes the write end within _POLL seconds."""
        self._cancelled.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def check(self) -> None:
        """Re-raise what stopped the feed early (not a cancel, not a reader
        that closed its end)."""
        if self.error is not None:
            raise self.error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    # -- the thread ----------------------------------------------------
    def _run(self) -> None:
        try:
            for block in self._blocks():
                if not self._write(memoryview(block)):
                    return
        except BaseException as exc:
            self.error = exc
        finally:
            os.close(self._write_end)

    def _blocks(self) -> Iterator[bytes]:
        """The object from `start` in blocks, `parallel` fetches ahead."""
        reader, size, step = self.reader, self.reader.size, self.reader.block
        offsets = iter(range(self.start, size, step))
        pending: deque[Future[bytes]] = deque()
        try:
            for offset in offsets:
                pending.append(reader._pool.submit(reader.fetch, offset,
                                                   min(step, size - offset)))
                if len(pending) > reader.parallel:
                    yield pending.popleft().result()
                if self._cancelled.is_set():
                    return
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def _write(self, view: memoryview) -> bool:
        """All of view into the pipe; False when cancelled or the reader left."""
        while view:
            if self._cancelled.is_set():
                return False
            try:
                n = os.write(self._write_end, view)
            except BlockingIOError:
                select.select([], [self._write_end], [], _POLL)
                continue
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    return False          # the reader closed its end: its choice
                raise
            view = view[n:]
            self.bytes_fed += n
        return True
