"""Tar member headers of untrusted archives, parsed within fixed bounds.

The standard library's tarfile is made for trusted archives: it loads any
pax header whole, whatever size it claims, and its pax parser is quadratic
on some inputs.  The readers parse headers here instead: one ustar header
block (checksum, magic, type) optionally preceded by one pax extended header
of at most MAX_PAX_SIZE bytes and MAX_PAX_RECORDS records, in time linear in
the header's size.  Only the keys the format uses are kept (docs/FORMAT.md,
"Limits"); anything that is not a regular file, or that would make
``tar -x`` read the member differently from us (global headers, GNU long
names, sparse maps), is refused.  The writer still makes headers with
tarfile (members.tar_header): its input is trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ArchiveError
from .members import BLOCK, PAX_BFT, PAX_SOURCE

MAX_PAX_SIZE = 128 * 1024          # a UNC path of 32767 UTF-16 units is at most 96 KiB
MAX_PAX_RECORDS = 64
MAX_MEMBER_SIZE = 1 << 48          # 256 TiB: far above any ESE database (16 TiB)

USTAR_MAGIC = b"ustar\x0000"       # POSIX ustar, version "00" (what pax writers use)
_KEPT = {"path", "size", PAX_BFT, PAX_SOURCE}
_TYPES = {
    b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device",
    b"4": "a block device", b"5": "a directory", b"6": "a FIFO", b"7": "a contiguous file",
    b"S": "a GNU sparse file", b"V": "a GNU volume header", b"M": "a GNU multi-volume part",
    b"D": "a GNU dump directory", b"\x00": "an old-style (pre-POSIX) member",
}
_OCTAL = re.compile(rb"[0-7]{1,12}")
_DECIMAL = re.compile(rb"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class MemberHeader:
    name: str
    size: int
    pax: dict[str, str]     # the pax keys the format uses (PAX_BFT, PAX_SOURCE), if present
    data_offset: int        # where the member's data starts, relative to the buffer given


def parse_member(buf: bytes, pos: int = 0, what: str = "a member") -> MemberHeader:
    """The header blocks of one regular-file member starting at buf[pos]."""
    block = _block(buf, pos, what)
    pax: dict[str, str] = {}
    if block[156:157] == b"x":
        size = _number(block, 124, 12, what)
        if size > MAX_PAX_SIZE:
            raise ArchiveError(f"the pax header of {what} is {size} bytes: over the limit "
                               f"{MAX_PAX_SIZE}")
        start = pos + BLOCK
        end = start + size
        padded = end + (-size % BLOCK)
        if padded > len(buf):
            raise ArchiveError(f"the pax header of {what} ends after the frame that holds it")
        if any(buf[end:padded]):
            raise ArchiveError(f"the pax header of {what} is not padded with zero bytes")
        pax = parse_pax(buf[start:end], what)
        pos = padded
        block = _block(buf, pos, what)
        if block[156:157] in (b"x", b"g"):
            raise ArchiveError(f"{what} has more than one pax header")
    _check_type(block, pax, what)
    name = pax.pop("path", None)
    if name is None:
        name = _text(block, 0, 100, "name", what)
        prefix = _text(block, 345, 155, "prefix", what)
        if prefix:
            name = f"{prefix}/{name}"
    if not name or "\x00" in name:
        raise ArchiveError(f"{what} has an empty or malformed name")
    size_text = pax.pop("size", None)
    size = int(size_text) if size_text is not None else _number(block, 124, 12, what)
    if size > MAX_MEMBER_SIZE:
        raise ArchiveError(f"member {name!r} claims {size} bytes (limit {MAX_MEMBER_SIZE})")
    return MemberHeader(name, size, pax, pos + BLOCK)


def parse_pax(data: bytes, what: str) -> dict[str, str]:
    """The records of one pax extended header ("LEN key=value\\n" each, LEN
    counting the whole record), keeping only the keys the format uses.  Each
    record is found from its own length, never by searching: linear time."""
    kept: dict[str, str] = {}
    pos = count = 0
    while pos < len(data):
        count += 1
        if count > MAX_PAX_RECORDS:
            raise ArchiveError(f"the pax header of {what} has more than {MAX_PAX_RECORDS} "
                               "records")
        space = data.find(b" ", pos, pos + 8)
        length = int(data[pos:space]) if space > pos and _DECIMAL.fullmatch(
            data, pos, space) else 0
        end = pos + length
        if length <= space - pos + 3 or end > len(data) or data[end - 1:end] != b"\n":
            raise ArchiveError(f"malformed pax record in the header of {what} at byte {pos}")
        equals = data.find(b"=", space + 1, end)
        if equals <= space + 1:
            raise ArchiveError(f"malformed pax record in the header of {what} at byte {pos}")
        key = data[space + 1:equals].decode("utf-8", "replace")
        if key.startswith("GNU.sparse."):
            raise ArchiveError(f"{what} is a sparse file (pax key {key})")
        if key in _KEPT:
            if key in kept:
                raise ArchiveError(f"the pax header of {what} repeats the key {key}")
            try:
                kept[key] = data[equals + 1:end - 1].decode("utf-8")
            except UnicodeDecodeError:
                raise ArchiveError(f"the pax value of {key} in {what} is not UTF-8") from None
        pos = end
    if "size" in kept and not _DECIMAL.fullmatch(kept["size"].encode()):
        raise ArchiveError(f"the pax size of {what} is not a decimal number")
    return kept


def _block(buf: bytes, pos: int, what: str) -> bytes:
    block = buf[pos:pos + BLOCK]
    if len(block) < BLOCK:
        raise ArchiveError(f"the tar header of {what} is cut short by the end of its frame")
    if block == bytes(BLOCK):
        raise ArchiveError(f"an end-of-archive block where the tar header of {what} should be")
    if block[257:265] != USTAR_MAGIC:
        raise ArchiveError(f"the tar header of {what} is not a POSIX ustar header")
    stored = _number(block, 148, 8, what)
    if stored != sum(block) - sum(block[148:156]) + 8 * ord(" "):
        raise ArchiveError(f"the tar header of {what} has a bad checksum")
    return block


def _check_type(block: bytes, pax: dict[str, str], what: str) -> None:
    kind = block[156:157]
    if kind == b"0":
        return
    name = pax.get("path") or block[:100].split(b"\x00", 1)[0].decode("utf-8", "replace")
    if kind == b"g":
        raise ArchiveError(f"a global pax header where the tar header of {what} should be")
    if kind in (b"L", b"K"):
        raise ArchiveError(f"{what} has a GNU long name or link header")
    raise ArchiveError(f"member {name!r} is not a regular file "
                       f"({_TYPES.get(kind, f'tar type {kind!r}')})")


def _number(block: bytes, pos: int, size: int, what: str) -> int:
    """An octal field: digits, then NUL or space padding (no base-256: sizes
    beyond the octal range go in the pax header)."""
    field = block[pos:pos + size].rstrip(b"\x00 ").lstrip(b" ")
    if not field:
        return 0
    if not _OCTAL.fullmatch(field):
        raise ArchiveError(f"the tar header of {what} has a malformed number field")
    return int(field, 8)


def _text(block: bytes, pos: int, size: int, field: str, what: str) -> str:
    raw = block[pos:pos + size].split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchiveError(f"the tar header of {what} has a {field} that is not UTF-8") from None
