"""Pure-Python archive reader and verifier, built on the zstandard and xxhash
packages: the independent check of the C writer, and a reader that needs
nothing compiled.

Reads a stream front to back (stdin works; nothing seeks).  The structure
(layout.py, shared with the fast path) and the metadata frames are read as
the fast path reads them; the chunk frames are decoded here, checked exactly
as the engine checks them (ntdsb_restore.h) and reported in its words, so
that both readers refuse the same archives.  The first problem raises
ArchiveError naming the member, the chunk and its offset.

FrameReader is the plain frame walk, for tools that look at frames one by
one (stream.py, the restore's look at the database header).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import xxhash
import zstandard

from ..errors import ArchiveError
from .frameinput import FrameInput, unexpected
from .framing import (
    FILE_CHUNK_MAGIC,
    HEADER_FORMAT,
    HEADER_PAYLOAD,
    HEADER_SIZE,
    INDEX_MAGIC,
    MAX_RAW_SIZE,
    META_MAGIC,
    SIGNATURE_MAGIC,
    FrameHeader,
    zstd_compress_bound,
)
from .layout import (
    Consumer,
    MemberResult,
    ReadReport,
    check_member,
    chunk_error,
    read_structure,
)
from .zframe import CorruptFrame, content_size_problem, decode_frame, unused_bytes

__all__ = ["Consumer", "CorruptFrame", "Frame", "FrameReader", "MemberResult", "ReadReport",
           "check_member", "decode_frame", "read_archive"]

_CHUNK_HEADER = struct.Struct("<IIIIIIQ16s")


@dataclass
class Frame:
    header: FrameHeader
    data: bytes | None   # decompressed and verified (None when not decoding)
    offset: int          # archive offset of the frame header


class FrameReader:
    """Yields verified frames from a binary stream, then checks the seek index
    (the last frame) and that nothing follows it."""

    def __init__(self, fileobj, *, decode: bool = True, offset: int = 0):
        self._inp = FrameInput(fileobj.read, offset)
        self.index: dict | None = None
        self.signature: tuple[str, int] | None = None    # a signed stream's last frame
        self._decode = decode     # False: check the structure only, yield data=None

    @property
    def offset(self) -> int:
        return self._inp.offset

    def __iter__(self) -> Iterator[Frame]:
        inp = self._inp
        while True:
            start = inp.offset
            got = inp.prefix()
            if got is None:
                if self.index is None:
                    raise ArchiveError("incomplete archive: no seek index at the end "
                                       "(the backup did not finish)")
                return
            magic, size, prefix = got
            if self.index is not None:
                if magic == SIGNATURE_MAGIC and self.signature is None:
                    self.signature = (inp.signature_body(size, start), start)
                    continue
                what = "the signature" if self.signature is not None else "the seek index"
                raise ArchiveError(f"data after {what} at offset {start}",
                                   archive_offset=start)
            if magic in (FILE_CHUNK_MAGIC, META_MAGIC):
                hdr = inp.header(prefix, start)
                frame = inp.read_exact(hdr.frame_size, "a zstd frame")
                data = decode_frame(inp.dctx, hdr, frame, start) if self._decode else None
                yield Frame(hdr, data, start)
            elif magic == INDEX_MAGIC:
                self.index = inp.index_body(size, start)
            else:
                raise ArchiveError(unexpected(magic, "a frame", start), archive_offset=start)


def read_archive(fileobj, consumer: Consumer | None = None,
                 on_manifest: Callable[[dict], None] | None = None) -> ReadReport:
    """Read and verify a whole archive; feed file contents to `consumer`."""
    inp = FrameInput(fileobj.read)
    return read_structure(inp, ChunkDecoder(inp, consumer or Consumer()), on_manifest)


class ChunkDecoder:
    """One member's chunk frames, decoded in Python, checked as the engine checks them."""

    def __init__(self, inp: FrameInput, consumer: Consumer):
        self.inp = inp
        self.consumer = consumer
        self.dctx = zstandard.ZstdDecompressor()

    def __call__(self, member: MemberResult, chunk_size: int) -> int:
        self.consumer.open_member(member)
        digest = xxhash.xxh3_128()
        seq = offset = first_raw = 0
        while offset < member.size:
            data = self._chunk(member, seq, offset, chunk_size, first_raw)
            first_raw = first_raw or len(data)
            digest.update(data)
            self.consumer.block(member, data)
            offset += len(data)
            seq += 1
            del data        # one chunk in memory at a time, not two
        member.xxh3_128 = digest.hexdigest()
        self.consumer.close_member(member)
        return seq

    def _chunk(self, member: MemberResult, seq: int, offset: int, limit: int,
               first_raw: int) -> bytes:
        at = self.inp.offset

        def bad(reason: str) -> ArchiveError:
            return chunk_error(member, seq, offset, reason, at)

        buf = self.inp.read_upto(HEADER_SIZE)
        if len(buf) < HEADER_SIZE:
            raise bad(f"truncated (end of input after {len(buf)} of the {HEADER_SIZE} "
                      "header bytes)")
        magic, payload, fmt, raw, frame_size, reserved, index, expect = _CHUNK_HEADER.unpack(buf)
        problem = _chunk_header_problem(magic, payload, fmt, raw, frame_size, reserved)
        if problem:
            raise bad(f"bad chunk header: {problem}")
        if raw > limit:
            raise bad(f"bad chunk header: raw_size {raw} is above the limit {limit}")
        if index != seq:
            raise bad(f"bad chunk header: chunk_index {index} where {seq} was expected")
        if raw > member.size - offset:
            raise bad(f"bad chunk header: raw_size {raw} goes past the file size {member.size}")
        last = raw == member.size - offset
        if seq and raw != first_raw and not (last and raw < first_raw):
            raise bad(f"bad chunk header: raw_size {raw} differs from the first chunk's "
                      f"{first_raw}" + ("" if last else " and it is not the last chunk"))
        bound = zstd_compress_bound(raw)
        if frame_size > bound:
            raise bad(f"bad chunk header: frame_size {frame_size} is above "
                      f"ZSTD_compressBound({raw}) = {bound}")
        frame = self.inp.read_upto(frame_size)
        if len(frame) < frame_size:
            raise bad(f"truncated (end of input after {len(frame)} of the {frame_size} "
                      "frame bytes)")
        problem = content_size_problem(frame, raw)
        if problem:
            raise bad(problem)
        try:
            data = self.dctx.decompress(frame, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            extra = unused_bytes(exc)
            if extra is not None:
                raise bad(f"the zstd frame is {frame_size - extra} bytes, the header says "
                          f"{frame_size}") from None
            raise bad(f"zstd: {exc}") from None
        if len(data) != raw:
            raise bad(f"decompressed {len(data)} bytes, the header says {raw}")
        if xxhash.xxh3_128_digest(data) != expect:
            raise bad("XXH3-128 mismatch")
        return data


def _chunk_header_problem(magic, payload, fmt, raw, frame_size, reserved) -> str | None:
    """The engine's chunk-header decode (ntdsb_chunk_header_decode), in its words."""
    if magic != FILE_CHUNK_MAGIC:
        return "magic"
    if payload != HEADER_PAYLOAD:
        return "payload size"
    if fmt != HEADER_FORMAT:
        return "unknown chunk header format"
    if reserved:
        return "nonzero reserved field in chunk header"
    if not 1 <= raw <= MAX_RAW_SIZE:
        return "chunk raw_size out of range"
    if frame_size == 0:
        return "chunk frame_size is 0"
    return None
