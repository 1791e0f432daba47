"""The C fast path for reading an archive: the structure and the metadata
frames are read exactly as the pure-Python reader reads them (layout.py),
with unbuffered os.read on the descriptor so that nothing is read ahead;
each file's chunk frames are read by the engine
(ntdsbackup._ntdsbcli.restore_file: parallel decompression, every chunk
verified, the GIL released).  Same checks, same words and the same report
as the pure-Python reader, which stays the independent reference."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _ntdsbcli
from ..errors import EngineError
from ..platform.files import pread
from ..platform.signals import read_some
from .envelope import decryption_error
from .frameinput import FrameInput
from .framing import HEADER_SIZE, chunk_frame_size
from .layout import Consumer, MemberResult, ReadReport, chunk_error, read_structure
from .reader import ChunkDecoder

if TYPE_CHECKING:
    from ..dbcheck.archive import ArchivePages

# The engine keeps up to ring_depth chunks in flight (threads + 2 by
# default), each a slot of chunk_size + ZSTD_compressBound(chunk_size) bytes
# of which a chunk's decompression touches chunk_size.  The ring is made
# shallower where the chunk size would take those past this budget (never
# below 2, double buffering): the default 1 MiB chunks never are.
RING_BUDGET = 64 * 1024 * 1024


def ring_depth(chunk_size: int, threads: int) -> int:
    """The ring_depth for restore_file: 0 (the engine's threads + 2) unless
    that many chunks of chunk_size would exceed RING_BUDGET."""
    fits = RING_BUDGET // chunk_size
    return 0 if fits >= (threads or os.cpu_count() or 1) + 2 else max(2, fits)


@dataclass
class Target:
    """Where the fast reader writes a member: a descriptor, or -1 to only verify."""

    fd: int = -1


def read_fd(fd: int | Any, *, open_member: Callable[[MemberResult], Target] | None = None,
            close_member: Callable[[MemberResult, Target], None] | None = None,
            on_manifest: Callable[[dict], None] | None = None, threads: int = 0,
            progress: Callable[[MemberResult, int], None] | None = None,
            pages: ArchivePages | None = None) -> ReadReport:
    """Read and verify a whole archive from descriptor `fd` (at its start),
    or from an AgeReader (envelope.Plaintext.source: an encrypted archive,
    its chunks decrypted in parallel as the engine reads them).  pages: check
    the ESE pages of the database and the logs too (in the engine's workers)
    and collect the results there."""
    if isinstance(fd, int):
        inp = FrameInput(lambda n: read_some(fd, min(n, 1 << 24)))
    else:
        inp = FrameInput(_decrypting_reads(fd))

    def read_data(member: MemberResult, chunk_size: int) -> int:
        if 2 * chunk_size > RING_BUDGET:
            # The engine double-buffers: two chunks this large would break the
            # memory bound, so these (rare) archives are decoded one chunk at a
            # time in Python, with the same checks and the same targets.
            targets = _Targets(open_member, close_member, progress)
            try:
                return ChunkDecoder(inp, pages.consumer(targets) if pages else targets)(
                    member, chunk_size)
            finally:
                targets.close_member(member)        # a no-op once it was closed
        data_start = inp.offset
        target = open_member(member) if open_member else Target()
        checker = pages.checker_for(member) if pages else None
        try:
            # No chunk may claim more than the manifest's chunk size: a hostile
            # header cannot make the engine allocate more than that per slot.
            result = _ntdsbcli.restore_file(
                fd, target.fd, member.size, member.name, threads=threads,
                ring_depth=ring_depth(chunk_size, threads), max_raw_size=chunk_size,
                progress=(lambda done, m=member: progress(m, done)) if progress else None,
                pages=checker)
        except EngineError as exc:
            raise _as_archive_error(exc, member, fd, data_start) from None
        finally:
            if close_member:
                close_member(member, target)
        inp.offset += result["stats"]["bytes_in"]
        if pages:
            pages.done(member, checker)
        member.xxh3_128 = result["xxh3_128"].hex()
        return result["stats"]["chunks"]

    return read_structure(inp, read_data, on_manifest)


class _Targets(Consumer):
    """The Python decoder's blocks written where the engine would write them."""

    def __init__(self, open_member, close_member, progress):
        self._open, self._close, self._progress = open_member, close_member, progress
        self._target: Target | None = None
        self._done = 0

    def open_member(self, member: MemberResult) -> None:
        self._target = self._open(member) if self._open else Target()
        self._done = 0

    def block(self, member: MemberResult, data: bytes) -> None:
        if self._target.fd >= 0:
            view = memoryview(data)
            while view:
                view = view[os.write(self._target.fd, view):]
        self._done += len(data)
        if self._progress:
            self._progress(member, self._done)

    def close_member(self, member: MemberResult) -> None:
        target, self._target = self._target, None
        if target is not None and self._close:
            self._close(member, target)


def _decrypting_reads(reader) -> Callable[[int], bytes]:
    def read(n: int) -> bytes:
        try:
            return reader.read(min(n, 1 << 24))
        except EngineError as exc:
            raise decryption_error(exc) from None
    return read


def _as_archive_error(exc: EngineError, member: MemberResult, fd: int | Any,
                      data_start: int) -> Exception:
    """An engine CORRUPT status as the readers' ArchiveError (layout.chunk_error)."""
    if not isinstance(fd, int) and (exc.detail or "").startswith("age "):
        return decryption_error(exc)      # the envelope, not a chunk of the member
    if exc.status_name != "NTDSB_E_CORRUPT" or exc.chunk_index is None or exc.offset is None:
        return exc
    # The engine says "chunk K (offset O): why"; we name the member around it.
    reason = re.sub(r"^chunk \d+ \(offset \d+\): ", "", exc.detail or str(exc))
    return chunk_error(member, exc.chunk_index, exc.offset, reason,
                       _chunk_header_offset(fd, data_start, exc.chunk_index))


def _chunk_header_offset(fd: int | Any, data_start: int, index: int) -> int | None:
    """The archive offset of chunk `index` of the member whose data starts at
    data_start.  The engine reports the chunk and its file offset only, so
    the frame headers before it (sound: it is the first bad one) are walked
    again.  None where the descriptor cannot be read at an offset (a pipe)."""
    at = data_start
    for _ in range(index):
        try:
            header = pread(fd, HEADER_SIZE, at) if isinstance(fd, int) else \
                fd.pread(HEADER_SIZE, at)
        except (OSError, EngineError):          # a pipe
            return None
        if len(header) < HEADER_SIZE:
            return None
        at += HEADER_SIZE + chunk_frame_size(header)
    return at


__all__ = ["Target", "read_fd"]
