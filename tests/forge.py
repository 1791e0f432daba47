"""Building damaged and hostile archives for tests: frames parsed and made
independently of the writer, so a forgery can be self-consistent (every frame
hash right) while lying about its content."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass

import xxhash
import zstandard

from ntdsbackup.archive.framing import (  # noqa: F401 (re-exported for the tests)
    HEADER_SIZE,
    META_MAGIC,
    FrameHeader,
    pack_index,
    parse_header,
)
from ntdsbackup.archive.members import PAX_BFT, PAX_SOURCE, document_member, tar_header
from ntdsbackup.lists import BFT_NAMES


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


# --- Whole archives, built frame by frame (for the hostile-archive tests) ---------------

CHUNK_MAGIC = 0x184D2A5E
BLOCK = 512
FORGE_CHUNK = 32 * 1024


def compressed(raw: bytes, *, content_size: bool = True) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True,
                                    write_content_size=content_size).compress(raw)


def frame(magic: int, raw: bytes, index: int, *, zframe: bytes | None = None,
          raw_size: int | None = None) -> bytes:
    """A frame header (right hash of `raw`) and a zstd frame (by default `raw`
    compressed with content size and checksum)."""
    zframe = compressed(raw) if zframe is None else zframe
    hdr = FrameHeader(magic, len(raw) if raw_size is None else raw_size, len(zframe), index,
                      xxhash.xxh3_128_digest(raw))
    return hdr.pack() + zframe


def unsized_frame(head: bytes, zeros: int) -> bytes:
    """A zstd frame of `head` then `zeros` zero bytes that does not record its
    content size: a few KB on disk however large it inflates."""
    out = io.BytesIO()
    cctx = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False)
    with cctx.stream_writer(out, closefd=False) as w:
        w.write(head)
        block = bytes(1 << 20)
        while zeros > 0:
            w.write(block[:zeros])
            zeros -= len(block)
    return out.getvalue()


def ustar_block(name: bytes, size: int, typeflag: bytes = b"0", *, prefix: bytes = b"",
                linkname: bytes = b"", magic: bytes = b"ustar\x0000") -> bytes:
    """One ustar header block made by hand (right checksum), for headers no
    writer of ours produces."""
    blk = bytearray(BLOCK)
    blk[0:len(name)] = name
    blk[100:108] = b"0000600\x00"
    blk[108:116] = blk[116:124] = b"0000000\x00"
    blk[124:136] = b"%011o\x00" % size if size < 8 ** 11 else b"\x80" + size.to_bytes(11, "big")
    blk[136:148] = b"00000000000\x00"
    blk[156:157] = typeflag
    blk[157:157 + len(linkname)] = linkname
    blk[257:265] = magic
    blk[345:345 + len(prefix)] = prefix
    blk[148:156] = b" " * 8
    blk[148:156] = b"%06o\x00 " % sum(blk)
    return bytes(blk)


def pax_block(data: bytes, typeflag: bytes = b"x", *, size: int | None = None) -> bytes:
    """A pax extended header ('x', or 'g' global) holding exactly `data`."""
    size = len(data) if size is None else size
    return ustar_block(b"././@PaxHeader", size, typeflag) + data + bytes(-len(data) % BLOCK)


def pax_records(records: dict[str, str]) -> bytes:
    out = b""
    for key, value in records.items():
        body = f" {key}={value}\n".encode()
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        out += str(n).encode() + body
    return out


@dataclass
class Member:
    """A file member of a forged archive: its header blocks and its data."""

    name: str
    data: bytes
    bft: int = 0x21
    source: str = ""
    header: bytes | None = None      # default: what the writer's tar_header makes

    def __post_init__(self):
        if not self.source:
            self.source = "\\\\DC01\\C$\\Windows\\NTDS\\" + self.name.split("/", 1)[-1]
        if self.header is None:
            self.header = tar_header(self.name, len(self.data), 0, {
                PAX_BFT: f"0x{self.bft:02X}", PAX_SOURCE: self.source})

    def entry(self) -> dict:
        return {"name": self.name, "bft": self.bft, "bft_name": BFT_NAMES.get(self.bft, "?"),
                "source": self.source, "size": len(self.data)}


def database(size: int = 3 * FORGE_CHUNK + 1000) -> Member:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    return Member("database/ntds.dit", data, 0x44)


def log(n: int, size: int = FORGE_CHUNK + 512) -> Member:
    return Member(f"logs/edb{n:05X}.log", bytes([n]) * size)


def manifest_doc(members: list[Member], **edits) -> dict:
    out = doc(tool="ntdsbackup 0.1.0", server="DC01", created="2026-01-01T00:00:00Z",
              created_unix=1767225600, backup_type="full", expiry_token="dG9rZW4=",
              chunk_size=FORGE_CHUNK,
              compression={"algorithm": "zstd", "level": 1, "frame_per_chunk": True},
              hash="xxh3-128", files=[m.entry() for m in members[:1]],
              logs_listed_in="trailer")
    out.update(edits)
    return out


def trailer_doc(members: list[Member], **edits) -> dict:
    files = [dict(m.entry(), xxh3_128=xxhash.xxh3_128_hexdigest(m.data),
                  chunks=-(-len(m.data) // FORGE_CHUNK), compressed=len(m.data))
             for m in members]
    out = doc(complete=True, files=files, log_generations={"low": 1, "high": 2},
              stats={"bytes_read": sum(len(m.data) for m in members), "wall_seconds": 0.5},
              tool="ntdsbackup 0.1.0", finished="2026-01-01T00:00:01Z")
    out.update(edits)
    return out


def build(members: list[Member] | None = None, *, manifest: dict | bytes | None = None,
          trailer: dict | bytes | None = None, index: Callable[[dict], None] | bytes | None = None,
          after_manifest: bytes = b"", manifest_frame: bytes | None = None,
          chunk: int = FORGE_CHUNK) -> bytes:
    """A whole archive, every frame hash right.  manifest/trailer: a document
    (made a member here) or the raw bytes of the member; index: an edit of the
    seek index document, or its raw JSON payload.  after_manifest: bytes
    hidden inside the manifest's frame after its member; manifest_frame: the
    whole first frame instead.  chunk: the chunk size files are cut at."""
    members = [database(), log(1), log(2)] if members is None else members
    manifest = manifest_doc(members, chunk_size=chunk) if manifest is None else manifest
    trailer = trailer_doc(members) if trailer is None else trailer
    if isinstance(manifest, dict):
        manifest = document_member("ntdsbackup/manifest.json", manifest, 0)
    if isinstance(trailer, dict):
        trailer = document_member("ntdsbackup/trailer.json", trailer, 0, end_of_archive=True)
    out = bytearray(manifest_frame or frame(META_MAGIC, manifest + after_manifest, 0))
    meta, files = 1, []
    for m in members:
        entry = {"name": m.name, "header_offset": len(out)}
        out += frame(META_MAGIC, m.header, meta)
        meta += 1
        entry["data_offset"], entry["chunks"] = len(out), []
        for i in range(0, len(m.data), chunk):
            piece = frame(CHUNK_MAGIC, m.data[i:i + chunk], i // chunk)
            entry["chunks"].append([len(out), i, len(m.data[i:i + chunk]),
                                    len(piece) - HEADER_SIZE])
            out += piece
        if len(m.data) % BLOCK:
            out += frame(META_MAGIC, bytes(-len(m.data) % BLOCK), meta)
            meta += 1
        files.append(entry)
    trailer_at = len(out)
    out += frame(META_MAGIC, trailer, meta)
    if not isinstance(index, bytes):
        doc_ = {"version": 1, "trailer_offset": trailer_at, "files": files}
        if index is not None:
            index(doc_)
        index = json.dumps(doc_, separators=(",", ":")).encode()
    return bytes(out) + pack_index(index)


def raw_document(name: str, body: bytes, *, end_of_archive: bool = False) -> bytes:
    """A document member holding `body` as it is (for JSON no writer makes)."""
    out = tar_header(name, len(body), 0) + body + bytes(-len(body) % BLOCK)
    return out + bytes(2 * BLOCK) if end_of_archive else out


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth
