"""The archive's structure (docs/FORMAT.md, "Stream layout"), walked the same
way by both readers: the manifest frame; for each file its header frame, its
chunk frames and its padding frame; the trailer frame; the seek index; the
end.  Every metadata frame must hold exactly what the format puts there,
member names must be unique, and everything is checked against the trailer
and the index at the end.

The readers differ only in how a file's chunk frames are read: the
pure-Python reader decodes them here in Python (reader.py), the fast path
hands the descriptor to the engine (fastread.py).  Either way the member has
been checked (and its name found unique) before its first byte reaches the
consumer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchiveError
from .documents import document_from, read_document
from .frameinput import FrameInput
from .members import MANIFEST_NAME, PAX_BFT, PAX_SOURCE, TRAILER_NAME, member_name, padding
from .schema import MAX_FILES, same_file
from .tarheader import MemberHeader, parse_member

_BFT = re.compile(r"0x[0-9A-Fa-f]{1,4}")


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
    signed: Any = None     # signing.SignedFacts when a signature was demanded and held
    encrypted: bool = False  # read through its age envelope
    embedded_signature: Any = None  # a signed stream's (text, frame offset), unchecked
    ese: Any = None        # dbcheck.Verdict of the database and logs (a deep read)

    @property
    def raw_bytes(self) -> int:
        return sum(f.size for f in self.files)


class Consumer:
    """Receives the files of an archive as it is read: open_member before a
    file's first block, block for each block in order, close_member after
    its last."""

    def open_member(self, member: MemberResult) -> None:
        pass

    def block(self, member: MemberResult, data: bytes) -> None:
        pass

    def close_member(self, member: MemberResult) -> None:
        pass


@dataclass
class _Placed:
    """Where a member's frames were, to check the seek index against."""

    header_offset: int
    data_offset: int


# read_data(member, chunk_size) reads the member's chunk frames from the
# input (leaving it at the frame after them; no chunk may be larger than the
# manifest's chunk_size), feeds the consumer, sets member.xxh3_128 and returns
# the number of chunk frames.
ReadData = Callable[[MemberResult, int], int]


def read_structure(inp: FrameInput, read_data: ReadData,
                   on_manifest: Callable[[dict], None] | None = None) -> ReadReport:
    """Read and verify a whole archive from `inp` (at its start)."""
    manifest = read_document(inp, MANIFEST_NAME)
    if on_manifest:
        on_manifest(manifest)
    report = ReadReport(manifest, {})
    seen: dict[str, str] = {}
    placed: list[_Placed] = []
    while True:
        at = inp.offset
        data = inp.meta("a member header or the trailer")
        header = parse_member(data, 0, f"the member at offset {at}")
        if header.name == TRAILER_NAME:
            report.trailer = document_from(data, header, TRAILER_NAME)
            report.trailer_offset = at
            break
        if len(data) != header.data_offset:
            raise ArchiveError(f"member header frame of {header.name!r} holds "
                               f"{len(data) - header.data_offset} bytes after the header",
                               member=header.name, archive_offset=at)
        member = check_member(header)
        if len(report.files) == MAX_FILES:      # more than a trailer may list
            raise ArchiveError(f"the archive holds more than {MAX_FILES} members")
        key = same_file(member.name)
        if key in seen:
            same = "" if seen[key] == member.name else f": the same file as {seen[key]!r}"
            raise ArchiveError(f"duplicate member {member.name!r}{same}", member=member.name,
                               archive_offset=at)
        seen[key] = member.name
        placed.append(_Placed(at, inp.offset))
        report.chunk_frames += read_data(member, manifest["chunk_size"])
        report.files.append(member)
        pad = padding(member.size)
        if pad and inp.meta(f"the padding of {member.name}") != bytes(pad):
            raise ArchiveError(f"the padding after {member.name} is not {pad} zero bytes",
                               member=member.name)
    report.index = inp.index()
    report.embedded_signature = inp.signature
    report.archive_bytes = inp.offset
    cross_check(report, placed)
    return report


def check_member(header: MemberHeader) -> MemberResult:
    """A file member's header: its BFT type and source, and a name that is the
    one its source gives (so no name can leave an extraction folder)."""
    bft_text, source = header.pax.get(PAX_BFT), header.pax.get(PAX_SOURCE)
    if bft_text is None or source is None or not _BFT.fullmatch(bft_text):
        raise ArchiveError(f"member {header.name!r} lacks its BFT type or source path")
    bft = int(bft_text, 16)
    if member_name(bft, source) != header.name:
        raise ArchiveError(f"member name {header.name!r} does not match its source {source!r}")
    return MemberResult(header.name, bft, source, header.size, "")


def chunk_error(member: MemberResult, index: int, file_offset: int, reason: str,
                archive_offset: int | None = None) -> ArchiveError:
    """A bad chunk, worded the same by both readers: "first bad chunk:
    NAME chunk K (file offset O): why", or "incomplete archive: ..." when the
    input ended.  archive_offset is where the chunk's frame header starts."""
    kind = "incomplete archive" if reason.startswith("truncated") else "first bad chunk"
    return ArchiveError(f"{kind}: {member.name} chunk {index} (file offset {file_offset}): "
                        f"{reason}", member=member.name, chunk_index=index,
                        file_offset=file_offset, archive_offset=archive_offset)


def cross_check(report: ReadReport, placed: list[_Placed]) -> None:
    """The members against the trailer, the manifest and the seek index."""
    index = report.index
    if index.get("trailer_offset") != report.trailer_offset:
        raise ArchiveError(f"the seek index says the trailer is at offset "
                           f"{index.get('trailer_offset')!r}, it is at "
                           f"{report.trailer_offset}", archive_offset=report.trailer_offset)
    listed = report.trailer["files"]
    if len(listed) != len(report.files):
        raise ArchiveError("the trailer's file list does not match the archive's members")
    for seen, entry in zip(report.files, listed):
        expect = (entry["name"], entry["bft"], entry["source"], entry["size"])
        if expect != (seen.name, seen.bft, seen.source, seen.size):
            raise ArchiveError(f"member {seen.name!r} differs from its trailer entry",
                               member=seen.name)
        if entry["xxh3_128"] != seen.xxh3_128:
            raise ArchiveError(f"whole-file XXH3-128 mismatch for {seen.name}: archive "
                               f"{seen.xxh3_128}, trailer {entry['xxh3_128']}",
                               member=seen.name)
    members = {f.name: f for f in report.files}
    for entry in report.manifest["files"]:
        match = members.get(entry["name"])
        if match is None or (entry["size"] is not None and match.size != entry["size"]):
            raise ArchiveError(f"manifest entry {entry['name']!r} is missing or differs",
                               member=entry["name"])
    indexed = index["files"]
    if len(indexed) != len(report.files):
        raise ArchiveError("the seek index's file list does not match the archive's members")
    # The chunk lists are a map for seeking only (docs/FORMAT.md): not checked.
    for seen, at, entry in zip(report.files, placed, indexed):
        if (entry["name"], entry["header_offset"], entry["data_offset"]) != \
                (seen.name, at.header_offset, at.data_offset):
            raise ArchiveError(f"the seek index's entry for {seen.name} does not match the "
                               f"archive (header at {at.header_offset}, data at "
                               f"{at.data_offset})", member=seen.name)
