"""Frame layer of the archive format (docs/FORMAT.md, "Frames").

Every zstd data frame in an archive is preceded by a 48-byte frame header, a
zstd *skippable* frame that stock zstd ignores:

    u32 magic        FILE_CHUNK_MAGIC (file data) or META_MAGIC (tar metadata)
    u32 size         40, the payload size
    u32 format       1
    u32 raw_size     bytes of decompressed data in the frame that follows
    u32 frame_size   bytes of that zstd frame
    u32 reserved     0
    u64 index        chunk number within the file, or metadata frame number
    u8[16] xxh3_128  canonical XXH3-128 of the decompressed data

The engine writes file-chunk headers (include/ntdsb_engine.h); this module
writes metadata headers and parses both.  The last frame of an archive is
the seek index, a skippable frame of its own magic whose payload ends with a
fixed footer so that a seekable reader can find it from the end.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FILE_CHUNK_MAGIC = 0x184D2A5E
META_MAGIC = 0x184D2A5D
INDEX_MAGIC = 0x184D2A5F
ZSTD_FRAME_MAGIC = 0xFD2FB528
SKIPPABLE_MIN, SKIPPABLE_MAX = 0x184D2A50, 0x184D2A5F

HEADER_FORMAT = 1
HEADER_PAYLOAD = 40
HEADER_SIZE = 8 + HEADER_PAYLOAD
_HEADER = struct.Struct("<IIIIIIQ16s")
assert _HEADER.size == HEADER_SIZE

INDEX_FOOTER = struct.Struct("<I8s")     # payload length, magic
INDEX_FOOTER_MAGIC = b"NTDSBSK1"

# A signed stream's last frame, after the seek index: a minisign signature
# over the BLAKE2b-512 of every archive byte before this frame, then the same
# kind of footer (docs/FORMAT.md, "Signatures").
SIGNATURE_MAGIC = 0x184D2A5B
SIGNATURE_FOOTER_MAGIC = b"NTDSBSG1"
MAX_SIGNATURE_SIZE = 16 * 1024           # a .minisig is under 9 KiB by minisign's limits

# Hostile-input limits: no frame may ask us for more than this.
MAX_RAW_SIZE = 64 * 1024 * 1024          # NTDSB_CHUNK_MAX
MAX_META_SIZE = 8 * 1024 * 1024          # a metadata frame: the largest trailer, and then some
MAX_INDEX_SIZE = 256 * 1024 * 1024       # read as a stream, never held whole


def zstd_compress_bound(n: int) -> int:
    """ZSTD_COMPRESSBOUND: the largest frame zstd produces for n input bytes."""
    margin = ((128 << 10) - n) >> 11 if n < (128 << 10) else 0
    return n + (n >> 8) + margin


@dataclass(frozen=True)
class FrameHeader:
    magic: int
    raw_size: int
    frame_size: int
    index: int
    xxh3_128: bytes

    @property
    def is_chunk(self) -> bool:
        return self.magic == FILE_CHUNK_MAGIC

    def pack(self) -> bytes:
        return _HEADER.pack(self.magic, HEADER_PAYLOAD, HEADER_FORMAT, self.raw_size,
                            self.frame_size, 0, self.index, self.xxh3_128)


def chunk_frame_size(header: bytes) -> int:
    """The frame_size field of a packed frame header (not validated)."""
    return _HEADER.unpack(header)[4]


class FrameFormatError(ValueError):
    """A frame header that no writer of this format produces."""


def parse_header(buf: bytes) -> FrameHeader:
    """Parse and validate a 48-byte frame header (magic already known to be ours)."""
    if len(buf) != HEADER_SIZE:
        raise FrameFormatError(f"frame header is {len(buf)} bytes, expected {HEADER_SIZE}")
    magic, size, fmt, raw, frame, reserved, index, digest = _HEADER.unpack(buf)
    if magic not in (FILE_CHUNK_MAGIC, META_MAGIC):
        raise FrameFormatError(f"unexpected frame magic 0x{magic:08X}")
    if size != HEADER_PAYLOAD:
        raise FrameFormatError(f"frame header payload is {size} bytes, expected {HEADER_PAYLOAD}")
    if fmt != HEADER_FORMAT:
        raise FrameFormatError(f"frame header format {fmt} is not supported (this reader: 1)")
    if reserved != 0:
        raise FrameFormatError("reserved field of a frame header is not zero")
    if raw > MAX_RAW_SIZE:
        raise FrameFormatError(f"frame claims {raw} decompressed bytes (limit {MAX_RAW_SIZE})")
    if frame > zstd_compress_bound(raw) + 64 or frame < 9:
        raise FrameFormatError(f"frame size {frame} is impossible for {raw} raw bytes")
    return FrameHeader(magic, raw, frame, index, digest)


def pack_index(payload: bytes) -> bytes:
    """The seek-index skippable frame: payload, then the footer."""
    body = payload + INDEX_FOOTER.pack(len(payload), INDEX_FOOTER_MAGIC)
    return struct.pack("<II", INDEX_MAGIC, len(body)) + body


def pack_signature(text: str) -> bytes:
    """The signature skippable frame: the .minisig text, then the footer."""
    payload = text.encode("utf-8")
    if len(payload) > MAX_SIGNATURE_SIZE:
        raise ValueError(f"a signature of {len(payload)} bytes (at most {MAX_SIGNATURE_SIZE})")
    body = payload + INDEX_FOOTER.pack(len(payload), SIGNATURE_FOOTER_MAGIC)
    return struct.pack("<II", SIGNATURE_MAGIC, len(body)) + body
