"""Building damaged and hostile archives for tests: frames parsed and made
independently of the writer, so a forgery can be self-consistent (every frame
hash right) while lying about its content."""

from __future__ import annotations

import io
import json
import struct
import tarfile

import xxhash
import zstandard

from ntdsbackup.archive.framing import HEADER_SIZE, META_MAGIC, FrameHeader, parse_header
from ntdsbackup.archive.members import document_member


def frames_of(data: bytes):
    """(offset, magic, total length) of every frame, parsed independently."""
    out, pos = [], 0
    while pos < len(data):
        magic, size = struct.unpack_from("<II", data, pos)
        if magic in (0x184D2A5E, META_MAGIC):
            hdr = parse_header(data[pos:pos + HEADER_SIZE])
            length = HEADER_SIZE + hdr.frame_size
        else:
            length = 8 + size
        out.append((pos, magic, length))
        pos += length
    return out


def meta_frame(raw: bytes, index: int = 0, *, lie_size: int | None = None) -> bytes:
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(raw)
    hdr = FrameHeader(META_MAGIC, len(raw) if lie_size is None else lie_size, len(frame),
                      index, xxhash.xxh3_128_digest(raw))
    return hdr.pack() + frame


def doc(**extra) -> dict:
    return {"format": "ntdsbackup-archive", "version": 1, **extra}


def forge_trailer(archive: bytes, edit) -> bytes:
    """The archive with its trailer rewritten by edit(trailer_dict), in a frame
    whose hashes are all correct; the seek index still points at it."""
    frames = frames_of(archive)
    trailer_at, _, trailer_len = frames[-2]
    raw = zstandard.ZstdDecompressor().decompress(
        archive[trailer_at + HEADER_SIZE:trailer_at + trailer_len])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.next()
        content = json.loads(tar.extractfile(member).read())
    edit(content)
    forged = meta_frame(document_member("ntdsbackup/trailer.json", content, 0,
                                        end_of_archive=True),
                        parse_header(archive[trailer_at:trailer_at + HEADER_SIZE]).index)
    return archive[:trailer_at] + forged + archive[trailer_at + trailer_len:]
