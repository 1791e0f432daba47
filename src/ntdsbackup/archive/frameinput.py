"""Reading an archive frame by frame, the same way in both readers: exact
reads (nothing read ahead, so the engine can take over a descriptor at a
frame boundary), metadata frames decoded within the metadata cap, and the
seek index read as a stream and checked to be the end of the archive."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import zstandard

from ..errors import ArchiveError
from . import boundedjson
from .framing import (
    FILE_CHUNK_MAGIC,
    HEADER_PAYLOAD,
    INDEX_FOOTER,
    INDEX_FOOTER_MAGIC,
    INDEX_MAGIC,
    MAX_INDEX_SIZE,
    MAX_META_SIZE,
    MAX_SIGNATURE_SIZE,
    META_MAGIC,
    SIGNATURE_FOOTER_MAGIC,
    SIGNATURE_MAGIC,
    SKIPPABLE_MAX,
    SKIPPABLE_MIN,
    ZSTD_FRAME_MAGIC,
    FrameFormatError,
    FrameHeader,
    parse_header,
)
from .schema import INDEX_COUNTED, check_index
from .zframe import CorruptFrame, decode_frame

INDEX_BLOCK = 64 * 1024


class FrameInput:
    """An archive stream read through `read(n)` (which may return fewer
    bytes, and b"" at the end), with the archive offset of what comes next."""

    def __init__(self, read: Callable[[int], bytes], offset: int = 0):
        self._read = read
        self.offset = offset
        self.dctx = zstandard.ZstdDecompressor()
        self.signature: tuple[str, int] | None = None   # a signed stream's, once read

    def read_upto(self, n: int) -> bytes:
        """n bytes, or fewer at the end of the stream."""
        parts, need = [], n
        while need:
            chunk = self._read(need)
            if not chunk:
                break
            parts.append(chunk)
            need -= len(chunk)
        data = b"".join(parts)
        self.offset += len(data)
        return data

    def read_exact(self, n: int, what: str) -> bytes:
        start = self.offset
        data = self.read_upto(n)
        if len(data) < n:
            raise ArchiveError(f"incomplete archive: the stream ends inside {what} at offset "
                               f"{start + len(data)}", archive_offset=start + len(data))
        return data

    def prefix(self) -> tuple[int, int, bytes] | None:
        """(magic, size, the 8 bytes) of the next frame; None at a clean end."""
        start = self.offset
        first = self.read_upto(8)
        if not first:
            return None
        if len(first) < 8:
            raise ArchiveError(f"incomplete archive: a truncated frame at offset {start}",
                               archive_offset=start)
        magic, size = struct.unpack("<II", first)
        return magic, size, first

    def header(self, prefix: bytes, start: int) -> FrameHeader:
        """The rest of a frame header whose 8-byte prefix was read."""
        _, size = struct.unpack("<II", prefix)
        if size != HEADER_PAYLOAD:
            raise CorruptFrame(f"bad frame header at offset {start}: payload size {size}",
                               None, start)
        try:
            hdr = parse_header(prefix + self.read_exact(size, "a frame header"))
        except FrameFormatError as exc:
            raise CorruptFrame(f"bad frame header at offset {start}: {exc}", None,
                               start) from None
        if hdr.magic == META_MAGIC and hdr.raw_size > MAX_META_SIZE:
            raise CorruptFrame(f"bad frame header at offset {start}: a metadata frame of "
                               f"{hdr.raw_size} bytes (limit {MAX_META_SIZE})", hdr, start)
        return hdr

    def meta(self, what: str) -> bytes:
        """The next frame, which must be a metadata frame: its verified content."""
        start = self.offset
        got = self.prefix()
        if got is None:
            raise ArchiveError(f"incomplete archive: the stream ends before {what} "
                               f"(offset {start})", archive_offset=start)
        magic, _, prefix = got
        if magic != META_MAGIC:
            raise ArchiveError(unexpected(magic, what, start), archive_offset=start)
        hdr = self.header(prefix, start)
        return decode_frame(self.dctx, hdr, self.read_exact(hdr.frame_size, "a zstd frame"),
                            start)

    def index(self) -> dict:
        """The next frame, which must be the seek index and the last thing in
        the stream but for a signed stream's signature frame: the index,
        checked (schema.check_index); the signature, if any, in
        self.signature as (text, offset of its frame)."""
        start = self.offset
        got = self.prefix()
        if got is None:
            raise ArchiveError("incomplete archive: no seek index at the end (the backup did "
                               "not finish)")
        if got[0] != INDEX_MAGIC:
            raise ArchiveError(unexpected(got[0], "the seek index", start),
                               archive_offset=start)
        index = self.index_body(got[1], start)
        end = self.offset
        after = self.prefix()
        if after is not None and after[0] == SIGNATURE_MAGIC:
            self.signature = (self.signature_body(after[1], end), end)
            end = self.offset
            after = self.prefix()
            what = "the signature"
        else:
            what = "the seek index"
        if after is not None:
            raise ArchiveError(f"data after {what} at offset {end}", archive_offset=end)
        return index

    def signature_body(self, size: int, start: int) -> str:
        """The text of the signature frame at `start` (its prefix read)."""
        if not INDEX_FOOTER.size < size <= MAX_SIGNATURE_SIZE + INDEX_FOOTER.size:
            raise ArchiveError(f"signature frame at offset {start} has impossible size {size}",
                               archive_offset=start)
        body = self.read_exact(size, "the signature")
        length, magic = INDEX_FOOTER.unpack(body[-INDEX_FOOTER.size:])
        if magic != SIGNATURE_FOOTER_MAGIC or length != size - INDEX_FOOTER.size:
            raise ArchiveError(f"signature frame at offset {start} has a bad footer",
                               archive_offset=start)
        try:
            return body[:length].decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(f"signature frame at offset {start} is not UTF-8 text",
                               archive_offset=start) from None

    def index_body(self, size: int, start: int) -> dict:
        """The payload of the seek index frame at `start` (its 8-byte prefix read)."""
        if size > MAX_INDEX_SIZE or size < INDEX_FOOTER.size:
            raise ArchiveError(f"seek index at offset {start} has impossible size {size}",
                               archive_offset=start)
        index = boundedjson.parse_stream(self._blocks(size - INDEX_FOOTER.size),
                                         "the seek index", INDEX_COUNTED)
        length, magic = INDEX_FOOTER.unpack(self.read_exact(INDEX_FOOTER.size,
                                                            "the seek index"))
        if magic != INDEX_FOOTER_MAGIC or length != size - INDEX_FOOTER.size:
            raise ArchiveError(f"seek index at offset {start} has a bad footer",
                               archive_offset=start)
        return check_index(index)

    def _blocks(self, n: int) -> Iterator[bytes]:
        """Exactly n bytes, in blocks (a parser that stops early reads no more)."""
        while n:
            block = self.read_exact(min(n, INDEX_BLOCK), "the seek index")
            n -= len(block)
            yield block


# An age file met where a plain archive was expected (no key was given).
ENCRYPTED_NEEDS_A_KEY = ("the archive is encrypted (an age file): give -i/--identity FILE, "
                         "or the passphrase (--passphrase-file, $NTDSB_PASSPHRASE)")


def unexpected(magic: int, what: str, start: int) -> str:
    """The message for a frame of the wrong kind where `what` should be."""
    if magic == ZSTD_FRAME_MAGIC:
        return (f"a zstd frame without a frame header at offset {start}: not written by "
                "ntdsbackup (or damaged)")
    if start == 0 and struct.pack("<I", magic) == b"age-":
        return ENCRYPTED_NEEDS_A_KEY
    if start == 0 and not SKIPPABLE_MIN <= magic <= SKIPPABLE_MAX:
        return f"not an ntdsbackup archive (bytes {struct.pack('<I', magic).hex()} at offset 0)"
    kind = {FILE_CHUNK_MAGIC: "a file chunk", INDEX_MAGIC: "the seek index"}.get(magic)
    return (f"expected {what} at offset {start}, found "
            + (kind or f"frame magic 0x{magic:08X}"))
