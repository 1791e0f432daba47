"""ESE (JET Blue) headers: builders and parsers for the emulated DC's files.

Pure Python (struct) for the small fixed structures of docs/ESE.md:
LOGTIME, SIGNATURE, LGPOS, BKINFO, the database header page (DBFILEHDR),
the transaction log header (LGFILEHDR) and the checkpoint file (edb.chk).
Bulk page work (checksums over gigabytes, page generation) is C, reached
through ``ntdsbackup._ntdsbcli``; the header checksum, which only ever covers
one page, is also computed here so this module works without the extension.

All integers on disk are little-endian.  Offsets are those of the reference
(ese-format.md sections 2, 5, 6).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import struct
from dataclasses import dataclass, field

HEADER_SEED = 0x89ABCDEF
DB_MAGIC = 0x89ABCDEF
DB_VERSION = 0x620
DB_FORMAT_REVISION = 0x14  # Win8/2012 .. Server 2019 (reference 2.5)

FILETYPE_DATABASE = 1
FILETYPE_LOG = 3
FILETYPE_CHECKPOINT = 4
FILETYPE_OFFSET = 667  # unaligned u32 in every header kind

DBSTATE_JUST_CREATED = 1
DBSTATE_DIRTY_SHUTDOWN = 2
DBSTATE_CLEAN_SHUTDOWN = 3

DB_HEADER_USED = 748
LOG_HEADER_SIZE = 4096
CHECKPOINT_COPY_SIZE = 4096
CHECKPOINT_FILE_SIZE = 2 * CHECKPOINT_COPY_SIZE
PAGE_SIZES = (2048, 4096, 8192, 16384, 32768)

# Log format 8.4000.x: the v8 segmented body (reference 5.2).
LOG_VERSION = (8, 4000, 60)
LOG_UPDATE_MINOR = 140


class EseFormatError(ValueError):
    """A header is malformed: wrong size, magic, checksum or file type."""


# ---------------------------------------------------------------- checksums


def header_checksum(buf) -> int:
    """Header checksum (4.1): 0x89ABCDEF XOR every u32 except the first.

    Uses the C implementation when the extension is importable (it is called
    once per header, so the pure-Python fallback is fast enough too).
    """
    mv = memoryview(buf).cast("B")
    if len(mv) % 4:
        raise ValueError(f"length must be a multiple of 4, got {len(mv)}")
    try:
        from ntdsbackup._ntdsbcli import ese_header_checksum
    except ImportError:
        return header_checksum_py(mv)
    return ese_header_checksum(mv)


def header_checksum_py(buf) -> int:
    """Pure-Python header checksum: fold the buffer as one big integer.

    XOR of all 32-bit words equals folding the integer in halves down to 32
    bits, which takes log2(n) big-integer operations instead of n/4 steps.
    """
    mv = memoryview(buf).cast("B")
    if len(mv) <= 4:
        return HEADER_SEED
    body = bytes(mv[4:])
    nwords = len(body) // 4
    # pad to a power-of-two word count so every fold halves evenly
    width = 1
    while width < nwords:
        width *= 2
    v = int.from_bytes(body[: nwords * 4], "little")
    bits = width * 32
    while bits > 32:
        bits //= 2
        v = (v >> bits) ^ (v & ((1 << bits) - 1))
    return HEADER_SEED ^ v


def _u32(buf, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0]


# ---------------------------------------------------------------- small types


@dataclass(frozen=True)
class LogTime:
    """LOGTIME (2.1): 8 bytes; month 1..12, year stored as year - 1900."""

    sec: int = 0
    min: int = 0
    hour: int = 0
    day: int = 0
    month: int = 0
    year: int = 0  # full year (e.g. 2024); 0 with all other fields 0 = unset
    millis: int = 0
    utc: bool = True

    SIZE = 8

    @classmethod
    def from_datetime(cls, t: _dt.datetime) -> LogTime:
        if t.tzinfo is not None:
            t = t.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return cls(t.second, t.minute, t.hour, t.day, t.month, t.year, t.microsecond // 1000, True)

    def to_datetime(self) -> _dt.datetime | None:
        if self.is_unset():
            return None
        tz = _dt.timezone.utc if self.utc else None
        return _dt.datetime(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.min,
            self.sec,
            self.millis * 1000,
            tzinfo=tz,
        )

    def is_unset(self) -> bool:
        return self == LogTime(utc=self.utc) and not self.year

    def pack(self) -> bytes:
        if self.is_unset():
            return bytes(8)
        if not 1 <= self.month <= 12:
            raise ValueError(f"LOGTIME month must be 1..12, got {self.month}")
        ms = self.millis & 0x3FF
        b6 = (1 if self.utc else 0) | ((ms & 0x7F) << 1)
        b7 = ((ms >> 7) & 0x7) << 1
        return bytes(
            (self.sec, self.min, self.hour, self.day, self.month, self.year - 1900, b6, b7)
        )

    @classmethod
    def unpack(cls, buf, off: int = 0) -> LogTime:
        b = bytes(buf[off : off + 8])
        if len(b) != 8:
            raise EseFormatError("LOGTIME needs 8 bytes")
        if not any(b):
            return cls(utc=False)
        ms = (b[6] >> 1) | (((b[7] >> 1) & 0x7) << 7)
        return cls(b[0], b[1], b[2], b[3], b[4], b[5] + 1900, ms, bool(b[6] & 1))


@dataclass(frozen=True, order=True)
class LgPos:
    """LGPOS (2.1): position in the log stream; orders as (generation, isec, ib)."""

    generation: int = 0
    isec: int = 0
    ib: int = 0

    SIZE = 8

    def pack(self) -> bytes:
        return struct.pack("<HHi", self.ib, self.isec, self.generation)

    @classmethod
    def unpack(cls, buf, off: int = 0) -> LgPos:
        ib, isec, gen = struct.unpack_from("<HHi", buf, off)
        return cls(gen, isec, ib)


@dataclass(frozen=True)
class Signature:
    """SIGNATURE (2.1): random u32, creation LOGTIME, 16-byte computer name."""

    random: int = 0
    created: LogTime = field(default_factory=LogTime)
    computer: bytes = b""

    SIZE = 28

    def pack(self) -> bytes:
        name = self.computer[:16].ljust(16, b"\0")
        return struct.pack("<I", self.random) + self.created.pack() + name

    @classmethod
    def unpack(cls, buf, off: int = 0) -> Signature:
        (rnd,) = struct.unpack_from("<I", buf, off)
        name = bytes(buf[off + 12 : off + 28]).rstrip(b"\0")
        return cls(rnd, LogTime.unpack(buf, off + 4), name)


@dataclass(frozen=True)
class BkInfo:
    """BKINFO (2.1): a backup's log mark, its time and generation range."""

    mark: LgPos = field(default_factory=LgPos)
    time: LogTime = field(default_factory=LogTime)
    gen_low: int = 0
    gen_high: int = 0

    SIZE = 24

    def pack(self) -> bytes:
        return self.mark.pack() + self.time.pack() + struct.pack("<II", self.gen_low, self.gen_high)

    @classmethod
    def unpack(cls, buf, off: int = 0) -> BkInfo:
        lo, hi = struct.unpack_from("<II", buf, off + 16)
        return cls(LgPos.unpack(buf, off), LogTime.unpack(buf, off + 8), lo, hi)


# ---------------------------------------------------------------- database header


@dataclass
class DbHeader:
    """The fields of DBFILEHDR (2.2) the project reads or writes.

    Unlisted bytes of the 748 are written as zero and ignored on parse.
    """

    page_size: int = 8192
    dbstate: int = DBSTATE_DIRTY_SHUTDOWN
    dbtime_dirtied: int = 0
    sign_db: Signature = field(default_factory=Signature)
    sign_log: Signature = field(default_factory=Signature)
    lgpos_consistent: LgPos = field(default_factory=LgPos)
    logtime_consistent: LogTime = field(default_factory=LogTime)
    logtime_attach: LogTime = field(default_factory=LogTime)
    lgpos_attach: LgPos = field(default_factory=LgPos)
    logtime_detach: LogTime = field(default_factory=LogTime)
    lgpos_detach: LgPos = field(default_factory=LgPos)
    dbid: int = 1
    bk_full_prev: BkInfo = field(default_factory=BkInfo)
    bk_inc_prev: BkInfo = field(default_factory=BkInfo)
    bk_full_cur: BkInfo = field(default_factory=BkInfo)
    objid_last: int = 0
    os_version: tuple[int, int, int, int] = (10, 0, 17763, 0)
    revision: int = DB_FORMAT_REVISION  # ulDaeUpdateMajor
    revision_minor: int = 0  # ulDaeUpdateMinor
    gen_min_required: int = 0
    gen_max_required: int = 0
    gen_max_committed: int = 0
    gen_min_consistent: int = 0
    logtime_gen_max_create: LogTime = field(default_factory=LogTime)
    create_version: tuple[int, int] = (DB_VERSION, DB_FORMAT_REVISION)
    # read-only on parse
    magic: int = DB_MAGIC
    version: int = DB_VERSION
    attrib: int = 0
    filetype: int = FILETYPE_DATABASE
    checksum: int = 0


def build_db_header(h: DbHeader) -> bytes:
    """One header page (h.page_size bytes): fields per 2.2, rest zero, checksum set."""
    if h.page_size not in PAGE_SIZES:
        raise ValueError(f"page size must be one of {PAGE_SIZES}, got {h.page_size}")
    b = bytearray(h.page_size)
    struct.pack_into("<III", b, 4, DB_MAGIC, h.version, 0)
    struct.pack_into("<Q", b, 16, h.dbtime_dirtied)
    b[24:52] = h.sign_db.pack()
    struct.pack_into("<I", b, 52, h.dbstate)
    b[56:64] = h.lgpos_consistent.pack()
    b[64:72] = h.logtime_consistent.pack()
    b[72:80] = h.logtime_attach.pack()
    b[80:88] = h.lgpos_attach.pack()
    b[88:96] = h.logtime_detach.pack()
    b[96:104] = h.lgpos_detach.pack()
    struct.pack_into("<I", b, 104, h.dbid)
    b[108:136] = h.sign_log.pack()
    b[136:160] = h.bk_full_prev.pack()
    b[160:184] = h.bk_inc_prev.pack()
    b[184:208] = h.bk_full_cur.pack()
    struct.pack_into("<I", b, 212, h.objid_last)
    struct.pack_into("<4I", b, 216, *h.os_version)
    struct.pack_into("<II", b, 232, h.revision, h.page_size)
    struct.pack_into("<ii", b, 296, h.gen_min_required, h.gen_max_required)
    struct.pack_into("<II", b, 340, *h.create_version)
    b[348:356] = h.logtime_gen_max_create.pack()
    struct.pack_into("<i", b, 416, h.gen_max_committed)
    struct.pack_into("<iI", b, 640, h.gen_min_consistent, h.revision_minor)
    struct.pack_into("<I", b, FILETYPE_OFFSET, FILETYPE_DATABASE)
    struct.pack_into("<I", b, 0, header_checksum(b))
    return bytes(b)


def parse_db_header(buf) -> DbHeader:
    """Parse a header page (at least 748 bytes).  Does not validate: see
    check_db_header / read_db_header_pair."""
    if len(buf) < DB_HEADER_USED:
        raise EseFormatError(f"database header needs {DB_HEADER_USED} bytes, got {len(buf)}")
    cb = _u32(buf, 236)
    return DbHeader(
        checksum=_u32(buf, 0),
        magic=_u32(buf, 4),
        version=_u32(buf, 8),
        attrib=_u32(buf, 12),
        dbtime_dirtied=struct.unpack_from("<Q", buf, 16)[0],
        sign_db=Signature.unpack(buf, 24),
        dbstate=_u32(buf, 52),
        lgpos_consistent=LgPos.unpack(buf, 56),
        logtime_consistent=LogTime.unpack(buf, 64),
        logtime_attach=LogTime.unpack(buf, 72),
        lgpos_attach=LgPos.unpack(buf, 80),
        logtime_detach=LogTime.unpack(buf, 88),
        lgpos_detach=LgPos.unpack(buf, 96),
        dbid=_u32(buf, 104),
        sign_log=Signature.unpack(buf, 108),
        bk_full_prev=BkInfo.unpack(buf, 136),
        bk_inc_prev=BkInfo.unpack(buf, 160),
        bk_full_cur=BkInfo.unpack(buf, 184),
        objid_last=_u32(buf, 212),
        os_version=struct.unpack_from("<4I", buf, 216),
        revision=_u32(buf, 232),
        page_size=cb or 4096,  # 0 means 4096 (2.2)
        gen_min_required=struct.unpack_from("<i", buf, 296)[0],
        gen_max_required=struct.unpack_from("<i", buf, 300)[0],
        create_version=struct.unpack_from("<II", buf, 340),
        logtime_gen_max_create=LogTime.unpack(buf, 348),
        gen_max_committed=struct.unpack_from("<i", buf, 416)[0],
        gen_min_consistent=struct.unpack_from("<i", buf, 640)[0],
        revision_minor=_u32(buf, 644),
        filetype=_u32(buf, FILETYPE_OFFSET),
    )


def check_db_header(page) -> list[str]:
    """Problems with one header page (empty list = valid), per 1 and 8.1.

    The checksum covers the whole page; the page-size field must equal the
    page's length (0 meaning 4096), as ESE requires when it probes sizes.
    """
    problems = []
    if len(page) not in PAGE_SIZES:
        return [f"header page length {len(page)} is not an ESE page size"]
    if _u32(page, 4) != DB_MAGIC:
        problems.append(f"bad magic 0x{_u32(page, 4):08X}")
    cs = header_checksum(page)
    if cs != _u32(page, 0):
        problems.append(f"header checksum 0x{_u32(page, 0):08X} != computed 0x{cs:08X}")
    if _u32(page, 12) != 0:
        problems.append(f"attrib {_u32(page, 12)} != 0")
    ft = _u32(page, FILETYPE_OFFSET)
    if ft not in (0, FILETYPE_DATABASE):
        problems.append(f"filetype {ft} is not a database")
    cb = _u32(page, 236) or 4096
    if cb != len(page):
        problems.append(f"page size field {cb} != {len(page)}")
    return problems


def probe_page_size(data) -> int | None:
    """Find the page size like ESE: the candidate (2K..32K) whose header
    checksum is good and whose page-size field equals it (0 = 4096)."""
    for cand in PAGE_SIZES:
        if len(data) < cand:
            break
        page = memoryview(data)[:cand]
        if header_checksum(page) == _u32(page, 0) and (_u32(page, 236) or 4096) == cand:
            return cand
    return None


@dataclass
class HeaderPair:
    """Result of reading header + shadow (1): the header used and why."""

    header: DbHeader | None
    page_size: int | None
    used: str  # "primary", "shadow" or "none"
    problems: list[str]  # fatal: neither copy usable
    warnings: list[str]  # recoverable: one copy bad, or copies differ


def read_db_header_pair(data) -> HeaderPair:
    """Validate header (file page 0) and shadow (file page 1) of a database
    image prefix (at least 2 * 32 KiB or the whole file if smaller)."""
    mv = memoryview(data)
    cb = probe_page_size(mv)
    if cb is None and len(mv) >= 2 * 4096:
        # primary unreadable: probe the shadow, which sits one page later
        for cand in PAGE_SIZES:
            if len(mv) >= 2 * cand and not check_db_header(mv[cand : 2 * cand]):
                cb = cand
                break
    if cb is None:
        return HeaderPair(
            None,
            None,
            "none",
            ["no valid database header or shadow (magic/checksum/page size)"],
            [],
        )
    primary, shadow = mv[:cb], mv[cb : 2 * cb]
    p_bad = check_db_header(primary)
    s_bad = (
        check_db_header(shadow) if len(shadow) == cb else ["shadow header missing (file too short)"]
    )
    warnings: list[str] = []
    if not p_bad:
        if s_bad:
            warnings.append("shadow header bad: " + "; ".join(s_bad))
        elif bytes(primary) != bytes(shadow):
            warnings.append("header and shadow are both valid but differ")
        return HeaderPair(parse_db_header(primary), cb, "primary", [], warnings)
    if not s_bad:
        warnings.append("primary header bad, using shadow: " + "; ".join(p_bad))
        return HeaderPair(parse_db_header(shadow), cb, "shadow", [], warnings)
    return HeaderPair(
        None, cb, "none", ["header: " + "; ".join(p_bad), "shadow: " + "; ".join(s_bad)], []
    )


# ---------------------------------------------------------------- streamed-backup trailer


@dataclass
class BackupTrailer:
    """The page ESE appends to a streamed database (7)."""

    bkinfo: BkInfo
    sign_db: Signature
    sign_log: Signature
    gen_min_required: int
    gen_max_required: int
    gen_max_committed: int


def parse_backup_trailer(page) -> BackupTrailer | None:
    """The trailer if `page` is one: zero 40-byte page header apart from the
    checksum word, header XOR checksum valid, no DB magic.  Else None."""
    if len(page) < 148 or not any(page):
        return None
    if any(bytes(page[4:40])) or header_checksum(page) != _u32(page, 0):
        return None
    lo, hi, mc = struct.unpack_from("<iii", page, 120)
    return BackupTrailer(
        BkInfo.unpack(page, 40), Signature.unpack(page, 64), Signature.unpack(page, 92), lo, hi, mc
    )


# ---------------------------------------------------------------- log header


@dataclass
class LogHeader:
    """LGFILEHDR (5.1), the fields the project reads or writes."""

    generation: int
    sign_log: Signature
    tm_create: LogTime
    tm_prev_gen: LogTime = field(default_factory=LogTime)
    cb_sec: int = 4096
    csec_header: int = 1
    csec_lgfile: int = 2560  # 10 MiB / 4096
    cb_page_size: int = 8192
    version: tuple[int, int, int] = LOG_VERSION
    update_minor: int = LOG_UPDATE_MINOR
    flags: int = 0
    lgpos_checkpoint: LgPos = field(default_factory=LgPos)
    filetype: int = FILETYPE_LOG
    checksum: int = 0

    @property
    def segmented(self) -> bool:
        """True for the v8 segment format (>= 8.4000), whose segments carry checksums."""
        return tuple(self.version[:2]) >= (8, 4000)


def build_log_header(h: LogHeader) -> bytes:
    """The 4096-byte log header, checksummed."""
    b = bytearray(LOG_HEADER_SIZE)
    struct.pack_into(
        "<iHHHH", b, 4, h.generation, h.cb_sec, h.csec_header, h.csec_lgfile, h.cb_page_size
    )
    b[16:24] = h.tm_create.pack()
    b[24:32] = h.tm_prev_gen.pack()
    struct.pack_into("<III", b, 32, *h.version)
    b[44:72] = h.sign_log.pack()
    b[639] = h.flags
    b[640:648] = h.lgpos_checkpoint.pack()
    struct.pack_into("<I", b, 648, h.update_minor)
    struct.pack_into("<I", b, FILETYPE_OFFSET, FILETYPE_LOG)
    struct.pack_into("<I", b, 0, header_checksum(b))
    return bytes(b)


def parse_log_header(buf) -> LogHeader:
    if len(buf) < LOG_HEADER_SIZE:
        raise EseFormatError(f"log header needs {LOG_HEADER_SIZE} bytes, got {len(buf)}")
    gen, cb_sec, csec_h, csec_f, cb_page = struct.unpack_from("<iHHHH", buf, 4)
    return LogHeader(
        generation=gen,
        sign_log=Signature.unpack(buf, 44),
        tm_create=LogTime.unpack(buf, 16),
        tm_prev_gen=LogTime.unpack(buf, 24),
        cb_sec=cb_sec,
        csec_header=csec_h,
        csec_lgfile=csec_f,
        cb_page_size=cb_page or 4096,
        version=struct.unpack_from("<III", buf, 32),
        update_minor=_u32(buf, 648),
        flags=buf[639],
        lgpos_checkpoint=LgPos.unpack(buf, 640),
        filetype=_u32(buf, FILETYPE_OFFSET),
        checksum=_u32(buf, 0),
    )


def check_log_header(buf) -> list[str]:
    """Problems with a log header (5.1, 8.4): checksum over 4096, filetype 3 (or 0)."""
    if len(buf) < LOG_HEADER_SIZE:
        return [f"file shorter than the {LOG_HEADER_SIZE}-byte log header"]
    hdr = memoryview(buf)[:LOG_HEADER_SIZE]
    problems = []
    cs = header_checksum(hdr)
    if cs != _u32(hdr, 0):
        problems.append(f"header checksum 0x{_u32(hdr, 0):08X} != computed 0x{cs:08X}")
    ft = _u32(hdr, FILETYPE_OFFSET)
    if ft not in (0, FILETYPE_LOG):
        problems.append(f"filetype {ft} is not a log")
    return problems


# ---------------------------------------------------------------- checkpoint


@dataclass
class Checkpoint:
    """edb.chk (6): where recovery starts and the log signature."""

    lgpos_checkpoint: LgPos
    sign_log: Signature
    lgpos_full_backup_checkpoint: LgPos = field(default_factory=LgPos)
    lgpos_full_backup: LgPos = field(default_factory=LgPos)
    time_full_backup: LogTime = field(default_factory=LogTime)
    lgpos_inc_backup: LgPos = field(default_factory=LgPos)
    time_inc_backup: LogTime = field(default_factory=LogTime)
    lgpos_db_consistency: LgPos = field(default_factory=LgPos)
    filetype: int = FILETYPE_CHECKPOINT
    checksum: int = 0


def _build_checkpoint_copy(c: Checkpoint) -> bytes:
    b = bytearray(CHECKPOINT_COPY_SIZE)
    b[4:12] = c.lgpos_full_backup_checkpoint.pack()
    b[12:20] = c.lgpos_checkpoint.pack()
    b[20:48] = c.sign_log.pack()
    b[615:623] = c.lgpos_full_backup.pack()
    b[623:631] = c.time_full_backup.pack()
    b[631:639] = c.lgpos_inc_backup.pack()
    b[639:647] = c.time_inc_backup.pack()
    b[648:656] = c.lgpos_db_consistency.pack()
    struct.pack_into("<I", b, FILETYPE_OFFSET, FILETYPE_CHECKPOINT)
    struct.pack_into("<I", b, 0, header_checksum(b))
    return bytes(b)


def build_checkpoint(c: Checkpoint) -> bytes:
    """The 8192-byte edb.chk: two identical checksummed 4096-byte copies."""
    copy = _build_checkpoint_copy(c)
    return copy + copy


def parse_checkpoint(buf) -> Checkpoint:
    """Parse one 4096-byte copy (no validation)."""
    if len(buf) < CHECKPOINT_COPY_SIZE:
        raise EseFormatError(f"checkpoint copy needs {CHECKPOINT_COPY_SIZE} bytes, got {len(buf)}")
    return Checkpoint(
        lgpos_checkpoint=LgPos.unpack(buf, 12),
        sign_log=Signature.unpack(buf, 20),
        lgpos_full_backup_checkpoint=LgPos.unpack(buf, 4),
        lgpos_full_backup=LgPos.unpack(buf, 615),
        time_full_backup=LogTime.unpack(buf, 623),
        lgpos_inc_backup=LgPos.unpack(buf, 631),
        time_inc_backup=LogTime.unpack(buf, 639),
        lgpos_db_consistency=LgPos.unpack(buf, 648),
        filetype=_u32(buf, FILETYPE_OFFSET),
        checksum=_u32(buf, 0),
    )


def read_checkpoint(data) -> tuple[Checkpoint | None, list[str], list[str]]:
    """Validate both copies of edb.chk like the DB header pair.

    Returns (checkpoint or None, problems, warnings).
    """
    mv = memoryview(data)
    if len(mv) < CHECKPOINT_COPY_SIZE:
        return None, [f"file is {len(mv)} bytes, shorter than one checkpoint copy"], []

    def bad(copy) -> list[str]:
        if len(copy) < CHECKPOINT_COPY_SIZE:
            return ["copy missing (file too short)"]
        p = []
        cs = header_checksum(copy)
        if cs != _u32(copy, 0):
            p.append(f"checksum 0x{_u32(copy, 0):08X} != computed 0x{cs:08X}")
        ft = _u32(copy, FILETYPE_OFFSET)
        if ft not in (0, FILETYPE_CHECKPOINT):
            p.append(f"filetype {ft} is not a checkpoint")
        return p

    first, second = mv[:CHECKPOINT_COPY_SIZE], mv[CHECKPOINT_COPY_SIZE:CHECKPOINT_FILE_SIZE]
    b1, b2 = bad(first), bad(second)
    if not b1:
        warnings = []
        if b2:
            warnings.append("shadow copy bad: " + "; ".join(b2))
        elif bytes(first) != bytes(second):
            warnings.append("primary and shadow copies are both valid but differ")
        return parse_checkpoint(first), [], warnings
    if not b2:
        return parse_checkpoint(second), [], ["primary copy bad, using shadow: " + "; ".join(b1)]
    return None, ["primary copy: " + "; ".join(b1), "shadow copy: " + "; ".join(b2)], []


def replace(obj, **changes):
    """dataclasses.replace, re-exported for callers building modified headers."""
    return dataclasses.replace(obj, **changes)
