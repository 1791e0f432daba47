"""The page checks of one file as Python sees them.

The checking itself is C (include/ntdsb_pages.h): inside the backup's and
the restore's worker threads, with the GIL released, or here over a file
on disk (check_file).  Each run yields one PageResult: the counts, the
first bad pages with the reason each one failed, the file's first bytes
(the header the verdict reads) and, for a streamed database, its trailer
page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..lists import BFT_LOG, BFT_NTDS_DATABASE

KIND_NONE = 0
KIND_DATABASE = 1
KIND_LOG = 2

# Reasons a unit (a page or a log segment) is listed, as the C checker
# gives them (NTDSB_PAGE_*).
BAD_CHECKSUM = 1
CORRECTABLE = 2
MISPLACED = 3
BAD_PGNO = 4
FLAG_FLIPPED = 5

REASON_NAMES = {
    BAD_CHECKSUM: "bad-checksum",
    CORRECTABLE: "correctable",
    MISPLACED: "misplaced",
    BAD_PGNO: "bad-page-number",
    FLAG_FLIPPED: "flag-flipped",
}

# Bytes handed to the checker per call when a file is checked from disk.
BLOCK_BYTES = 8 * 1024 * 1024


def kind_of(bft: int) -> int:
    """Which check a backed-up file gets, by its BFT."""
    if bft == BFT_NTDS_DATABASE:
        return KIND_DATABASE
    if bft == BFT_LOG:
        return KIND_LOG
    return KIND_NONE


@dataclass(frozen=True)
class BadUnit:
    """One listed bad page (database) or segment (log)."""

    number: int      # the page number, or the segment index isec of a log
    reason: int      # CORRECTABLE, MISPLACED, ...
    detail: int      # the bit offset (CORRECTABLE), the other page number (MISPLACED, BAD_PGNO)

    def describe(self, unit: str) -> str:
        if self.reason == CORRECTABLE:
            fix = ", which ESE's ECC corrects when it reads the page" if unit == "page" else ""
            return f"{unit} {self.number}: a single flipped bit (bit {self.detail}){fix}"
        if self.reason == MISPLACED:
            return (f"{unit} {self.number}: holds the checksum of {unit} {self.detail} "
                    "(a misplaced or stale write)")
        if self.reason == BAD_PGNO:
            return (f"{unit} {self.number}: its header names {unit} {self.detail} "
                    "(a misplaced or stale write)")
        if self.reason == FLAG_FLIPPED:
            return (f"{unit} {self.number}: the checksum-format flag bit (0x2000) is "
                    "flipped")
        return f"{unit} {self.number}: bad checksum"

    def as_json(self) -> dict[str, Any]:
        return {"page": self.number, "reason": REASON_NAMES.get(self.reason, "bad-checksum"),
                "detail": self.detail}


@dataclass
class PageResult:
    """What the checker found in one file."""

    kind: int
    file_size: int
    geometry: bool = False   # the header gave a page (segment) size to check with
    unit_size: int = 0
    first_unit: int = 0
    ok: int = 0
    ok_old: int = 0
    uninit: int = 0
    bad: int = 0
    correctable: int = 0
    listed: list[BadUnit] = field(default_factory=list)
    head: bytes = b""
    trailer: bytes | None = None
    tail_bytes: int = 0
    short: int = 0           # bytes of the file that could not be read (check_file)

    @classmethod
    def from_engine(cls, d: dict[str, Any]) -> PageResult:
        return cls(kind=d["kind"], file_size=d["file_size"], geometry=bool(d["geometry"]),
                   unit_size=d["unit_size"], first_unit=d["first_unit"], ok=d["ok"],
                   ok_old=d["ok_old"], uninit=d["uninit"], bad=d["bad"],
                   correctable=d["correctable"],
                   listed=[BadUnit(*p) for p in d["problems"]], head=bytes(d["head"]),
                   trailer=None if d["trailer"] is None else bytes(d["trailer"]),
                   tail_bytes=d["tail_bytes"])

    @property
    def checked(self) -> int:
        return self.ok + self.ok_old + self.uninit + self.bad

    @property
    def uncorrectable(self) -> int:
        return self.bad - self.correctable


def new_checker(kind: int, file_size: int) -> Any:
    """A checker for one file, to give to backup_file / restore_file (pages=)."""
    from .. import _ntdsbcli

    return _ntdsbcli.PageChecker(kind, file_size)


def result_of(checker: Any) -> PageResult:
    return PageResult.from_engine(checker.result())


def check_file(path: str | os.PathLike[str], kind: int) -> PageResult:
    """Check a file on disk, in blocks, each checked with the GIL released.
    A file that ends before the size it had when opened keeps the units it
    never had counted nowhere: `short` says how many bytes were missing."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        checker = new_checker(kind, size)
        view = memoryview(bytearray(min(BLOCK_BYTES, max(size, 1))))
        done = 0
        while done < size:
            n = f.readinto(view[:min(len(view), size - done)])
            if not n:
                break
            checker.feed(view[:n], done)
            done += n
        checker.finish()
    result = result_of(checker)
    result.short = size - done
    return result
