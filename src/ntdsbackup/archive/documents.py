"""The manifest and trailer frames: each holds exactly one tar member with a
JSON document, its zero padding and, for the trailer, the two zero blocks
that end a tar archive, and nothing else.  The document is parsed within
bounds (boundedjson) and checked against the format (schema)."""

from __future__ import annotations

from ..errors import ArchiveError
from . import boundedjson
from .frameinput import FrameInput
from .members import BLOCK, MANIFEST_NAME, TRAILER_NAME, padding
from .schema import check_manifest, check_trailer
from .tarheader import MemberHeader, parse_member

_CHECKS = {MANIFEST_NAME: check_manifest, TRAILER_NAME: check_trailer}
_WHAT = {MANIFEST_NAME: "the manifest", TRAILER_NAME: "the trailer"}
_TAIL = {MANIFEST_NAME: "its zero padding",
         TRAILER_NAME: "its zero padding and the two zero blocks that end a tar archive"}
_AFTER = {MANIFEST_NAME: "the manifest member", TRAILER_NAME: "the end-of-archive blocks"}


def read_document(inp: FrameInput, name: str) -> dict:
    """The document `name` from the next frame of `inp`."""
    return load_document(inp.meta(_WHAT[name]), name)


def load_document(data: bytes, name: str) -> dict:
    """The document `name` (MANIFEST_NAME or TRAILER_NAME) from the whole
    content of its metadata frame."""
    what = _WHAT[name]
    header = parse_member(data, 0, what)
    if header.name != name:
        if name == MANIFEST_NAME:
            raise ArchiveError("the archive does not start with its manifest")
        raise ArchiveError(f"expected the trailer, found member {header.name!r}")
    return document_from(data, header, name)


def document_from(data: bytes, header: MemberHeader, name: str) -> dict:
    """The document whose member header (already parsed from data) is `header`."""
    what = _WHAT[name]
    end = header.data_offset + header.size
    tail = end + padding(header.size) + (2 * BLOCK if name == TRAILER_NAME else 0)
    if len(data) < end:
        raise ArchiveError(f"the frame of {what} ends inside its member")
    if len(data) < tail or any(data[end:tail]):
        raise ArchiveError(f"{what} is not followed by {_TAIL[name]}")
    if len(data) > tail:
        raise ArchiveError(f"the frame of {what} holds {len(data) - tail} bytes after "
                           f"{_AFTER[name]}")
    doc = boundedjson.parse(data[header.data_offset:end], what)
    return _CHECKS[name](doc)
