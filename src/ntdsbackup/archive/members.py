"""Tar members of the archive: names, headers, manifest and trailer documents.

The decompressed archive is a POSIX pax tar stream, so ``zstd -dc | tar -x``
restores every file with no tool of ours.  Headers are produced by the
standard library's tarfile (pax format: sizes beyond 8 GiB and our own
``NTDSB.*`` keywords need it).
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass, field

from ..lists import BFT_LOG, BFT_NAMES, BFT_NTDS_DATABASE, BFT_PATCH_FILE

FORMAT_NAME = "ntdsbackup-archive"
FORMAT_VERSION = 1
MANIFEST_NAME = "ntdsbackup/manifest.json"
TRAILER_NAME = "ntdsbackup/trailer.json"
BLOCK = 512
# Per-file pax records.  Spelled as extended attributes (user.ntdsb.*) because
# GNU tar extracts those silently, where it warns about unknown keywords.
PAX_BFT = "SCHILY.xattr.user.ntdsb.bft"
PAX_SOURCE = "SCHILY.xattr.user.ntdsb.source"

# Member folder per BFT type.  Restore places files by BFT type (from the
# manifest and trailer), never by these names.
_FOLDERS = {BFT_NTDS_DATABASE: "database", BFT_LOG: "logs", BFT_PATCH_FILE: "logs"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def member_name(bft: int, source: str) -> str:
    """'database/ntds.dit' for BFT_NTDS_DATABASE '\\\\DC01\\...\\ntds.dit'."""
    base = source.replace("/", "\\").rsplit("\\", 1)[-1]
    base = _SAFE.sub("_", base).lstrip(".") or "file"
    return f"{_FOLDERS.get(bft, 'other')}/{base}"


def padding(size: int) -> int:
    return -size % BLOCK


def tar_header(name: str, size: int, mtime: int, pax: dict[str, str] | None = None) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o600       # the archive holds every password hash of the domain
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    info.pax_headers = dict(pax or {})
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def document_member(name: str, doc: dict, mtime: int, end_of_archive: bool = False) -> bytes:
    """A whole tar member holding a JSON document, padded; optionally followed by
    the two zero blocks that end a tar archive."""
    body = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    out = tar_header(name, len(body), mtime) + body + bytes(padding(len(body)))
    if end_of_archive:
        out += bytes(2 * BLOCK)
    return out


@dataclass
class FileRecord:
    """One backed-up file, as manifest and trailer describe it."""

    name: str
    bft: int
    source: str
    size: int | None          # None: not known yet (the manifest's later databases)
    xxh3_128: str | None = None
    chunks: int | None = None
    compressed: int | None = None
    stats: dict = field(default_factory=dict)

    def manifest_entry(self) -> dict:
        return {"name": self.name, "bft": self.bft, "bft_name": BFT_NAMES.get(self.bft, "?"),
                "source": self.source, "size": self.size}

    def trailer_entry(self) -> dict:
        out = self.manifest_entry()
        out.update(xxh3_128=self.xxh3_128, chunks=self.chunks, compressed=self.compressed)
        return out

    def pax(self) -> dict[str, str]:
        return {PAX_BFT: f"0x{self.bft:02X}", PAX_SOURCE: self.source}
