"""Pure-Python archive reader and verifier, built on the zstandard and xxhash
packages and the standard library's tarfile: the independent check of the C
writer, and a reader that needs nothing compiled.

Reads a stream front to back (stdin works; nothing seeks).  Every frame is
checked against its header (sizes, XXH3-128, zstd content checksum), every
file against the trailer's whole-file hash, and the archive's structure
against the manifest.  The first problem raises ArchiveError naming the
member, the chunk and its offset.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import xxhash
import zstandard

from ..errors import ArchiveError
from .framing import (
    FILE_CHUNK_MAGIC,
    HEADER_PAYLOAD,
    INDEX_FOOTER,
    INDEX_FOOTER_MAGIC,
    INDEX_MAGIC,
    MAX_INDEX_SIZE,
    META_MAGIC,
    SKIPPABLE_MAX,
    SKIPPABLE_MIN,
    ZSTD_FRAME_MAGIC,
    FrameFormatError,
    FrameHeader,
    parse_header,
)
from .members import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PAX_BFT,
    PAX_SOURCE,
    TRAILER_NAME,
    member_name,
)

READ_BLOCK = 1 << 20


class CorruptFrame(ArchiveError):
    """A frame whose content does not match its header."""

    def __init__(self, message: str, header: FrameHeader | None, offset: int):
        super().__init__(message)
        self.header = header
        self.offset = offset


@dataclass
class Frame:
    header: FrameHeader
    data: bytes | None   # decompressed and verified (None when not decoding)
    offset: int          # archive offset of the frame header


class FrameReader:
    """Yields verified frames from a binary stream, then checks the seek index."""

    def __init__(self, fileobj, *, decode: bool = True, offset: int = 0):
        self._f = fileobj
        self.offset = offset      # of the stream's position, for messages
        self.index: dict | None = None
        self._decode = decode     # False: check the structure only, yield data=None
        self._dctx = zstandard.ZstdDecompressor()

    def _read_exact(self, n: int, what: str) -> bytes:
        parts, need = [], n
        while need:
            chunk = self._f.read(need)
            if not chunk:
                raise ArchiveError(
                    f"incomplete archive: the stream ends inside {what} at offset "
                    f"{self.offset + n - need}")
            parts.append(chunk)
            need -= len(chunk)
        self.offset += n
        return b"".join(parts)

    def _read_prefix(self) -> bytes | None:
        first = self._f.read(8)
        if not first:
            return None
        while len(first) < 8:
            more = self._f.read(8 - len(first))
            if not more:
                raise ArchiveError(f"incomplete archive: a truncated frame at offset "
                                   f"{self.offset}")
            first += more
        self.offset += 8
        return first

    def __iter__(self) -> Iterator[Frame]:
        while True:
            start = self.offset
            prefix = self._read_prefix()
            if prefix is None:
                if self.index is None:
                    raise ArchiveError("incomplete archive: no seek index at the end "
                                       "(the backup did not finish)")
                return
            if self.index is not None:
                raise ArchiveError(f"data after the seek index at offset {start}")
            magic, size = struct.unpack("<II", prefix)
            if magic in (FILE_CHUNK_MAGIC, META_MAGIC):
                if size != HEADER_PAYLOAD:
                    raise ArchiveError(f"frame header at offset {start} has payload size {size}")
                try:
                    hdr = parse_header(prefix + self._read_exact(size, "a frame header"))
                except FrameFormatError as exc:
                    raise CorruptFrame(f"bad frame header at offset {start}: {exc}", None,
                                       start) from None
                frame = self._read_exact(hdr.frame_size, "a zstd frame")
                data = decode_frame(self._dctx, hdr, frame, start) if self._decode else None
                yield Frame(hdr, data, start)
            elif magic == INDEX_MAGIC:
                if size > MAX_INDEX_SIZE or size < INDEX_FOOTER.size:
                    raise ArchiveError(f"seek index at offset {start} has impossible size {size}")
                self.index = parse_index(self._read_exact(size, "the seek index"), start)
            elif magic == ZSTD_FRAME_MAGIC:
                raise ArchiveError(f"a zstd frame without a frame header at offset {start}: "
                                   "not written by ntdsbackup (or damaged)")
            elif SKIPPABLE_MIN <= magic <= SKIPPABLE_MAX:
                # Another tool's skippable frame: harmless, skipped like zstd does.
                if size > MAX_INDEX_SIZE:
                    raise ArchiveError(f"skippable frame at offset {start} is too large")
                self._read_exact(size, "a skippable frame")
            else:
                raise ArchiveError(f"not an ntdsbackup archive (bytes {prefix[:4].hex()} at "
                                   f"offset {start})")


def decode_frame(dctx, hdr: FrameHeader, frame: bytes, start: int) -> bytes:
    """Decompress one frame and check it against its header."""
    if frame[:4] != struct.pack("<I", ZSTD_FRAME_MAGIC):
        raise CorruptFrame(f"frame at offset {start} is not a zstd frame", hdr, start)
    obj = dctx.decompressobj()
    try:
        data = obj.decompress(frame)
    except zstandard.ZstdError as exc:
        raise CorruptFrame(f"zstd cannot decode the frame at offset {start}: {exc}", hdr,
                           start) from None
    if not obj.eof or obj.unused_data:
        raise CorruptFrame(f"frame at offset {start} is not exactly one zstd frame", hdr,
                           start)
    if len(data) != hdr.raw_size:
        raise CorruptFrame(f"frame at offset {start} holds {len(data)} bytes, its header "
                           f"says {hdr.raw_size}", hdr, start)
    if xxhash.xxh3_128_digest(data) != hdr.xxh3_128:
        raise CorruptFrame(f"XXH3-128 mismatch in the frame at offset {start}", hdr, start)
    return data


def parse_index(body: bytes, start: int) -> dict:
    """Validate and parse the seek index payload (footer included)."""
    length, magic = INDEX_FOOTER.unpack(body[-INDEX_FOOTER.size:])
    if magic != INDEX_FOOTER_MAGIC or length != len(body) - INDEX_FOOTER.size:
        raise ArchiveError(f"seek index at offset {start} has a bad footer")
    try:
        index = json.loads(body[:length])
    except ValueError as exc:
        raise ArchiveError(f"seek index at offset {start} is not valid JSON: {exc}") from None
    if not isinstance(index, dict) or index.get("version") != 1:
        raise ArchiveError("seek index version is not supported")
    return index


class _TarStream(io.RawIOBase):
    """The decompressed tar stream, frame by frame, for tarfile's stream mode.
    Remembers the last frame so errors can be attributed."""

    def __init__(self, frames: FrameReader):
        self._it = iter(frames)
        self._buf = memoryview(b"")
        self.current: Frame | None = None
        self.chunk_frames = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            frame = next(self._it, None)
            if frame is None:
                return 0
            self.current = frame
            if frame.header.magic == FILE_CHUNK_MAGIC:
                self.chunk_frames += 1
            self._buf = memoryview(frame.data)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


@dataclass
class MemberResult:
    name: str
    bft: int
    source: str
    size: int
    xxh3_128: str


@dataclass
class ReadReport:
    manifest: dict
    trailer: dict
    files: list[MemberResult] = field(default_factory=list)
    archive_bytes: int = 0
    chunk_frames: int = 0
    trailer_offset: int | None = None   # where the trailer's frame starts
    index: dict = field(default_factory=dict)

    @property
    def raw_bytes(self) -> int:
        return sum(f.size for f in self.files)


# consumer(member, block) is called for every block of every file, in order;
# open_member(result) before a file's first block and close_member(result, ok)
# after its last.
class Consumer:
    def open_member(self, member: MemberResult) -> None:
        pass

    def block(self, member: MemberResult, data: bytes) -> None:
        pass

    def close_member(self, member: MemberResult) -> None:
        pass


def load_doc(tar: tarfile.TarFile, info: tarfile.TarInfo, what: str) -> dict:
    if not info.isfile() or info.size > 64 << 20:
        raise ArchiveError(f"{what} member is not a regular file of sane size")
    try:
        doc = json.loads(tar.extractfile(info).read())
    except ValueError as exc:
        raise ArchiveError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ArchiveError(f"{what} is not an ntdsbackup document")
    if doc.get("version") != FORMAT_VERSION:
        raise ArchiveError(f"archive format version {doc.get('version')!r} is not supported "
                           f"(this reader: {FORMAT_VERSION})")
    return doc


def read_archive(fileobj, consumer: Consumer | None = None,
                 on_manifest: Callable[[dict], None] | None = None) -> ReadReport:
    """Read and verify a whole archive; feed file contents to `consumer`."""
    consumer = consumer or Consumer()
    frames = FrameReader(fileobj)
    stream = _TarStream(frames)
    current: MemberResult | None = None
    chunk_size = None
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", bufsize=READ_BLOCK)
        first = tar.next()
        if first is None or first.name != MANIFEST_NAME:
            raise ArchiveError("the archive does not start with its manifest")
        manifest = load_doc(tar, first, "the manifest")
        chunk_size = manifest.get("chunk_size")
        if on_manifest:
            on_manifest(manifest)
        report = ReadReport(manifest, {})
        trailer = None
        while (info := tar.next()) is not None:
            if info.name == TRAILER_NAME:
                trailer = load_doc(tar, info, "the trailer")
                report.trailer_offset = stream.current.offset
                break
            current = check_member(info)
            consumer.open_member(current)
            h = xxhash.xxh3_128()
            src = tar.extractfile(info)
            while True:
                block = src.read(READ_BLOCK)
                if not block:
                    break
                h.update(block)
                consumer.block(current, block)
            current.xxh3_128 = h.hexdigest()
            consumer.close_member(current)
            report.files.append(current)
            current = None
        if trailer is None:
            raise ArchiveError("incomplete archive: no trailer (the backup did not finish)")
        if tar.next() is not None:
            raise ArchiveError("members after the trailer")
        tar.close()
        for _ in iter(lambda: stream.read(READ_BLOCK), b""):
            raise ArchiveError("data after the end of the tar archive")
        # Drain to the seek index and the end of the stream.
        for _frame in stream._it:
            raise ArchiveError("frames after the end of the tar archive")
    except CorruptFrame as exc:
        raise _attribute(exc, current, chunk_size) from None
    except tarfile.TarError as exc:
        raise ArchiveError(f"damaged tar structure: {exc}") from None
    report.trailer = trailer
    report.archive_bytes = frames.offset
    report.chunk_frames = stream.chunk_frames
    report.index = frames.index or {}
    cross_check(report)
    return report


def check_member(info: tarfile.TarInfo) -> MemberResult:
    if not info.isreg():
        raise ArchiveError(f"member {info.name!r} is not a regular file")
    try:
        bft = int(info.pax_headers[PAX_BFT], 16)
        source = info.pax_headers[PAX_SOURCE]
    except (KeyError, ValueError):
        raise ArchiveError(f"member {info.name!r} lacks its BFT type or source path") from None
    if member_name(bft, source) != info.name:
        raise ArchiveError(f"member name {info.name!r} does not match its source {source!r}")
    return MemberResult(info.name, bft, source, info.size, "")


def _attribute(exc: CorruptFrame, member: MemberResult | None, chunk_size) -> ArchiveError:
    hdr = exc.header
    if member is not None and hdr is not None and hdr.is_chunk:
        offset = hdr.index * chunk_size if isinstance(chunk_size, int) else "?"
        err = ArchiveError(f"first bad chunk: {member.name} chunk {hdr.index} "
                           f"(file offset {offset}, archive offset {exc.offset}): {exc}")
        err.member, err.chunk_index, err.file_offset = member.name, hdr.index, offset
        return err
    return exc


def cross_check(report: ReadReport) -> None:
    if report.index.get("trailer_offset") != report.trailer_offset:
        raise ArchiveError(f"the seek index says the trailer is at offset "
                           f"{report.index.get('trailer_offset')!r}, it is at "
                           f"{report.trailer_offset}")
    trailer_files = report.trailer.get("files")
    if not isinstance(trailer_files, list) or len(trailer_files) != len(report.files):
        raise ArchiveError("the trailer's file list does not match the archive's members")
    for seen, listed in zip(report.files, trailer_files):
        if not isinstance(listed, dict):
            raise ArchiveError("the trailer's file list is malformed")
        expect = (listed.get("name"), listed.get("bft"), listed.get("source"), listed.get("size"))
        if expect != (seen.name, seen.bft, seen.source, seen.size):
            raise ArchiveError(f"member {seen.name!r} differs from its trailer entry")
        if listed.get("xxh3_128") != seen.xxh3_128:
            raise ArchiveError(f"whole-file XXH3-128 mismatch for {seen.name}: archive "
                               f"{seen.xxh3_128}, trailer {listed.get('xxh3_128')}")
    listed_first = report.manifest.get("files", [])
    for entry in listed_first:
        match = [f for f in report.files if f.name == entry.get("name")]
        if not match or (entry.get("size") is not None and match[0].size != entry["size"]):
            raise ArchiveError(f"manifest entry {entry.get('name')!r} is missing or differs")
