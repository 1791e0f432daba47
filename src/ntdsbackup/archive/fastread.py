"""The C fast path for reading an archive: metadata frames are read here with
unbuffered os.read on the descriptor, each file's chunk frames by the engine
(ntdsbackup._ntdsbcli.restore_file: parallel decompression, every chunk
verified, the GIL released).  Same checks and the same report as the
pure-Python reader, which stays the independent reference."""

from __future__ import annotations

import io
import os
import re
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

import zstandard

from .. import _ntdsbcli
from ..errors import ArchiveError, EngineError
from .framing import (
    HEADER_PAYLOAD,
    INDEX_FOOTER,
    INDEX_MAGIC,
    MAX_INDEX_SIZE,
    META_MAGIC,
    FrameFormatError,
    parse_header,
)
from .members import MANIFEST_NAME, TRAILER_NAME, padding
from .reader import (
    MemberResult,
    ReadReport,
    check_member,
    cross_check,
    decode_frame,
    load_doc,
    parse_index,
)


class FdFrames:
    """Exact, unbuffered reads from a descriptor (nothing is read ahead, so the
    engine can take over at a frame boundary)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.offset = 0
        self._dctx = zstandard.ZstdDecompressor()

    def read_exact(self, n: int, what: str) -> bytes:
        parts, need = [], n
        while need:
            chunk = os.read(self.fd, min(need, 1 << 24))
            if not chunk:
                raise ArchiveError(f"incomplete archive: the stream ends inside {what} at "
                                   f"offset {self.offset + n - need}")
            parts.append(chunk)
            need -= len(chunk)
        self.offset += n
        return b"".join(parts)

    def peek_magic(self) -> tuple[int, int, bytes] | None:
        """Read the next 8 bytes (magic, size); None at a clean end of stream."""
        first = os.read(self.fd, 8)
        if not first:
            return None
        while len(first) < 8:
            more = os.read(self.fd, 8 - len(first))
            if not more:
                raise ArchiveError(f"incomplete archive: a truncated frame at offset "
                                   f"{self.offset}")
            first += more
        self.offset += 8
        magic, size = struct.unpack("<II", first)
        return magic, size, first

    def meta(self, what: str) -> bytes:
        """The next frame, which must be a metadata frame; its verified content."""
        got = self.peek_magic()
        if got is None:
            raise ArchiveError(f"incomplete archive: the stream ends before {what}")
        magic, size, prefix = got
        start = self.offset - 8
        if magic != META_MAGIC or size != HEADER_PAYLOAD:
            raise ArchiveError(f"expected {what} at offset {start}, found frame magic "
                               f"0x{magic:08X}")
        try:
            hdr = parse_header(prefix + self.read_exact(size, "a frame header"))
        except FrameFormatError as exc:
            raise ArchiveError(f"bad frame header at offset {start}: {exc}") from None
        frame = self.read_exact(hdr.frame_size, "a zstd frame")
        return decode_frame(self._dctx, hdr, frame, start)

    def expect_index(self) -> dict:
        got = self.peek_magic()
        if got is None or got[0] != INDEX_MAGIC:
            raise ArchiveError("incomplete archive: no seek index at the end "
                               "(the backup did not finish)")
        size = got[1]
        if size > MAX_INDEX_SIZE or size < INDEX_FOOTER.size:
            raise ArchiveError(f"seek index has impossible size {size}")
        index = parse_index(self.read_exact(size, "the seek index"), self.offset - 8)
        if self.peek_magic() is not None:
            raise ArchiveError(f"data after the seek index at offset {self.offset - 8}")
        return index


def _tar_info(data: bytes) -> tuple[tarfile.TarFile, tarfile.TarInfo]:
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        info = tar.firstmember
    except tarfile.TarError as exc:
        raise ArchiveError(f"damaged tar header: {exc}") from None
    if info is None:
        raise ArchiveError("a metadata frame holds no tar header")
    return tar, info


@dataclass
class Target:
    """Where the fast reader writes a member: a descriptor, or -1 to only verify."""

    fd: int = -1


def read_fd(fd: int, *, open_member: Callable[[MemberResult], Target] | None = None,
            close_member: Callable[[MemberResult, Target], None] | None = None,
            on_manifest: Callable[[dict], None] | None = None, threads: int = 0,
            progress: Callable[[MemberResult, int], None] | None = None) -> ReadReport:
    """Read and verify a whole archive from descriptor `fd` (at its start)."""
    frames = FdFrames(fd)
    tar, info = _tar_info(frames.meta("the manifest"))
    if info.name != MANIFEST_NAME:
        raise ArchiveError("the archive does not start with its manifest")
    manifest = load_doc(tar, info, "the manifest")
    chunk_size = manifest.get("chunk_size")
    if not isinstance(chunk_size, int) or not \
            _ntdsbcli.CHUNK_MIN <= chunk_size <= _ntdsbcli.CHUNK_MAX:
        raise ArchiveError(f"the manifest's chunk_size {chunk_size!r} is not a valid chunk size")
    if on_manifest:
        on_manifest(manifest)
    report = ReadReport(manifest, {})
    chunk_frames = 0
    while True:
        at = frames.offset
        data = frames.meta("a member header or the trailer")
        tar, info = _tar_info(data)
        if info.name == TRAILER_NAME:
            report.trailer = load_doc(tar, info, "the trailer")
            report.trailer_offset = at
            if len(data) < info.offset_data + info.size + padding(info.size) + 1024 or \
                    any(data[info.offset_data + info.size + padding(info.size):]):
                raise ArchiveError("the trailer is not followed by the end-of-archive blocks")
            break
        if len(data) != info.offset_data:
            raise ArchiveError(f"member header frame of {info.name!r} has trailing data")
        member = check_member(info)
        target = open_member(member) if open_member else Target()
        try:
            # No chunk may claim more than the manifest's chunk size: a hostile
            # header cannot make the engine allocate more than that per slot.
            result = _ntdsbcli.restore_file(
                fd, target.fd, member.size, member.name, threads=threads,
                max_raw_size=chunk_size,
                progress=(lambda done, m=member: progress(m, done)) if progress else None)
        except EngineError as exc:
            raise _as_archive_error(exc, member) from None
        finally:
            if close_member:
                close_member(member, target)
        frames.offset += result["stats"]["bytes_in"]
        chunk_frames += result["stats"]["chunks"]
        member.xxh3_128 = result["xxh3_128"].hex()
        report.files.append(member)
        pad = padding(member.size)
        if pad and frames.meta(f"the padding of {member.name}") != bytes(pad):
            raise ArchiveError(f"the padding after {member.name} is not zero")
    report.index = frames.expect_index()
    report.archive_bytes = frames.offset
    report.chunk_frames = chunk_frames
    cross_check(report)
    return report


def _as_archive_error(exc: EngineError, member: MemberResult) -> Exception:
    """An engine CORRUPT status as the reader's ArchiveError, worded like the
    pure-Python reader's."""
    if exc.status_name != "NTDSB_E_CORRUPT":
        return exc
    # The engine says "chunk K (offset O): why"; we name the member around it.
    reason = re.sub(r"^chunk \d+ \(offset \d+\): ", "", exc.detail or str(exc))
    kind = "incomplete archive" if reason.startswith("truncated") else "first bad chunk"
    err = ArchiveError(f"{kind}: {member.name} chunk {exc.chunk_index} "
                       f"(file offset {exc.offset}): {reason}")
    err.member, err.chunk_index, err.file_offset = member.name, exc.chunk_index, exc.offset
    return err


__all__ = ["FdFrames", "Target", "read_fd"]
