"""Multi-string lists of the ntdsbcli API (reference section 6).

A list is a block of UTF-16LE strings, each a BFT code unit followed by a UNC
path and a NUL, ended by one extra NUL.  Lists come from the provider, so
they are parsed strictly: anything else is a ListFormatError, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ListFormatError

# BFT_* values (include/ntdsbcli_abi.h); the compiled module exports the same
# table as _ntdsbcli.BFT, checked equal in the tests.
BFT_LOG = 0x21
BFT_LOG_DIR = 0x82
BFT_CHECKPOINT_DIR = 0x83
BFT_NTDS_DATABASE = 0x44
BFT_PATCH_FILE = 0x25
BFT_UNKNOWN = 0x0F

BFT_NAMES = {
    BFT_LOG: "BFT_LOG",
    BFT_LOG_DIR: "BFT_LOG_DIR",
    BFT_CHECKPOINT_DIR: "BFT_CHECKPOINT_DIR",
    BFT_NTDS_DATABASE: "BFT_NTDS_DATABASE",
    BFT_PATCH_FILE: "BFT_PATCH_FILE",
    BFT_UNKNOWN: "BFT_UNKNOWN",
}


@dataclass(frozen=True)
class ListEntry:
    bft: int
    path: str

    @property
    def bft_name(self) -> str:
        return BFT_NAMES.get(self.bft, f"BFT_0x{self.bft:02X}")


def parse_multistring(data: bytes) -> list[ListEntry]:
    """Parse a W-form list.  The size covers the final extra NUL."""
    if len(data) % 2:
        raise ListFormatError(f"list size {len(data)} is odd: not UTF-16")
    if len(data) < 2 or data[-2:] != b"\x00\x00":
        raise ListFormatError("list does not end with a NUL")
    try:
        text = data.decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"list is not valid UTF-16LE: {exc}") from None
    if not text.endswith("\x00"):
        raise ListFormatError("list does not end with a NUL")
    body = text[:-1]  # drop the list-ending NUL
    if body in ("", "\x00"):  # an empty list, with or without its entry NUL
        return []
    if not body.endswith("\x00"):
        raise ListFormatError("list does not end with a double NUL")
    entries = []
    for raw in body[:-1].split("\x00"):
        if len(raw) < 2:
            raise ListFormatError(f"list entry {raw!r} has no path after its BFT code")
        # Decoding joins a surrogate pair into one character: a BFT code is a
        # single code unit, so a pair where it should be is a malformed list.
        if ord(raw[0]) > 0xFFFF:
            raise ListFormatError(f"list entry {raw!r} does not start with a one-unit BFT code")
        entries.append(ListEntry(ord(raw[0]), raw[1:]))
    return entries


def build_multistring(entries: list[tuple[int, str]]) -> bytes:
    """The inverse of parse_multistring (for tests and tools)."""
    text = "".join(chr(bft) + path + "\x00" for bft, path in entries) + "\x00"
    return text.encode("utf-16-le")

