"""One zstd frame of an archive, decompressed and checked against its frame
header without ever allocating more than the header claims.

The header's raw_size has already been checked against its limit (the
metadata cap, or the chunk size) before the frame was read.  The zstd frame
must record its own content size, equal to raw_size: decompression then
writes into a buffer of exactly that size, and zstd refuses a frame that
would produce one byte more (a frame that does not record its size, which
zstd would happily inflate to gigabytes, is refused before decoding).
"""

from __future__ import annotations

import re
import struct

import xxhash
import zstandard

from ..errors import ArchiveError
from .framing import ZSTD_FRAME_MAGIC, FrameHeader

_ZSTD_MAGIC = struct.pack("<I", ZSTD_FRAME_MAGIC)
_UNUSED = re.compile(r"contains (\d+) bytes of unused data")


class CorruptFrame(ArchiveError):
    """A frame whose content does not match its header."""

    def __init__(self, message: str, header: FrameHeader | None, offset: int):
        super().__init__(message, archive_offset=offset)
        self.header = header
        self.offset = offset


def content_size_problem(frame: bytes, raw_size: int) -> str | None:
    """Why the zstd frame's own header does not fit raw_size, or None (worded
    as the engine words it)."""
    if frame[:4] != _ZSTD_MAGIC:
        return "not a zstd frame"
    try:
        declared = zstandard.get_frame_parameters(frame).content_size
    except zstandard.ZstdError:
        return "not a zstd frame"
    if declared == zstandard.CONTENTSIZE_UNKNOWN:
        return "the zstd frame does not record its content size"
    if declared != raw_size:
        return f"the zstd frame holds {declared} bytes, the header says {raw_size}"
    return None


def unused_bytes(exc: zstandard.ZstdError) -> int | None:
    """How many bytes followed the zstd frame, when that is why zstd refused it."""
    m = _UNUSED.search(str(exc))
    return int(m.group(1)) if m else None


def decode_frame(dctx: zstandard.ZstdDecompressor, hdr: FrameHeader, frame: bytes,
                 start: int) -> bytes:
    """Decompress one frame (the zstd frame after the header at archive offset
    `start`) and check it against its header."""
    problem = content_size_problem(frame, hdr.raw_size)
    if problem:
        raise CorruptFrame(f"bad frame at offset {start}: {problem}", hdr, start)
    try:
        data = dctx.decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        if unused_bytes(exc) is not None:
            raise CorruptFrame(f"frame at offset {start} is not exactly one zstd frame", hdr,
                               start) from None
        raise CorruptFrame(f"zstd cannot decode the frame at offset {start}: {exc}", hdr,
                           start) from None
    if len(data) != hdr.raw_size:       # zstd checks this too; the format depends on it
        raise CorruptFrame(f"bad frame at offset {start}: decompressed {len(data)} bytes, "
                           f"the header says {hdr.raw_size}", hdr, start)
    if xxhash.xxh3_128_digest(data) != hdr.xxh3_128:
        raise CorruptFrame(f"XXH3-128 mismatch in the frame at offset {start}", hdr, start)
    return data
