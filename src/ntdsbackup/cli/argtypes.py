"""argparse value types shared by every subcommand.

Each type checks its whole rule and states it when a value breaks it, so a
bad value stops at parse time (exit 2, "argument --X: ...") before anything
is asked of a DC.  The limits are the engine's and zstd's own, named here
once.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

import zstandard

from .. import _ntdsbcli
from ..fsutil import format_size, parse_size

# include/ntdsb_engine.h: NTDSB_THREADS_MAX, NTDSB_RING_MIN, NTDSB_RING_MAX
# (tests/test_cli_input.py checks them against the header).
THREADS_MAX = 256
RING_MIN, RING_MAX = 2, 256
# ZSTD_minCLevel() is -ZSTD_TARGETLENGTH_MAX: negative levels trade ratio for speed.
LEVEL_MIN, LEVEL_MAX = -zstandard.TARGETLENGTH_MAX, zstandard.MAX_COMPRESSION_LEVEL
CHUNK_GRANULE, CHUNK_MIN, CHUNK_MAX = (_ntdsbcli.READ_GRANULE, _ntdsbcli.CHUNK_MIN,
                                       _ntdsbcli.CHUNK_MAX)
CHUNK_RULE = (f"a multiple of {format_size(CHUNK_GRANULE).replace('.0 ', ' ')} "
              f"({CHUNK_GRANULE} bytes), at least {CHUNK_MIN // 1024} KiB ({CHUNK_MIN}) and "
              f"at most {CHUNK_MAX >> 20} MiB; K, M, G are binary (1M = 1 MiB), kB, MB, GB "
              "decimal")
# AD's documented maximum database size.
DIT_MAX = 16 << 40
DIT_MIN_PAGES = 3               # the header, its shadow and one data page
LOG_COUNT_MAX = 1024
TOMBSTONE_DAYS = (2, 36500)     # AD's minimum lifetime; a century at most
CLOCK_OFFSET_MAX = 100 * 366 * 86400
UINT32_MAX, UINT64_MAX = (1 << 32) - 1, (1 << 64) - 1
REPEAT_MAX = 1000


def _typed(name: str, parse: Callable[[str], object]) -> Callable[[str], object]:
    parse.__name__ = name       # argparse names the type in some of its messages
    return parse


def _int(text: str, rule: str, base: int = 10) -> int:
    try:
        return int(text.strip(), base)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {rule}") \
            from None


def int_range(lo: int, hi: int, *, zero: str | None = None, base: int = 10,
              unit: str = "", show: Callable[[int], str] = str) -> Callable[[str], int]:
    """A whole number in lo..hi; with `zero`, 0 is also allowed and means that.
    base=0 also takes 0x... (as C does); `show` writes the bounds."""
    span = f"{show(lo)} to {show(hi)}{unit}"
    rule = f"0 ({zero}) or {span}" if zero else span

    def parse(text: str) -> int:
        value = _int(text, rule, base)
        if not (zero and value == 0) and not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text.strip()} is out of range: give {rule}")
        return value

    return _typed("int", parse)


threads_arg = int_range(1, THREADS_MAX, zero="one per CPU")
ring_arg = int_range(RING_MIN, RING_MAX, zero="threads + 2")
level_arg = int_range(LEVEL_MIN, LEVEL_MAX)
log_count_arg = int_range(0, LOG_COUNT_MAX)
tombstone_days_arg = int_range(*TOMBSTONE_DAYS, unit=" days")
repeat_arg = int_range(1, REPEAT_MAX)
clock_offset_arg = int_range(-CLOCK_OFFSET_MAX, CLOCK_OFFSET_MAX, unit=" seconds")
hresult_arg = int_range(0, UINT32_MAX, base=0, show=lambda v: f"0x{v:08X}")


def fault_count_arg(hi: int) -> Callable[[str], int]:
    return int_range(0, hi, base=0)


def size_arg(text: str) -> int:
    """'64MiB', '1GiB', '8192' -> bytes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def chunk_size_arg(text: str) -> int:
    """A chunk size the engine accepts (CHUNK_RULE)."""
    value = size_arg(text)
    if value % CHUNK_GRANULE or not CHUNK_MIN <= value <= CHUNK_MAX:
        raise argparse.ArgumentTypeError(f"{text.strip()} = {value} bytes is not a valid chunk "
                                         f"size: give {CHUNK_RULE}")
    return value


def dit_size_arg(text: str) -> int:
    """A database size: positive, at most DIT_MAX.  Whether it is a whole
    number of pages depends on --page-size: check_dit_size."""
    value = size_arg(text)
    if not 0 < value <= DIT_MAX:
        raise argparse.ArgumentTypeError(f"{text.strip()} is out of range: a database is "
                                         f"larger than 0 and at most {DIT_MAX >> 40} TiB")
    return value


def check_dit_size(size: int, page_size: int) -> str | None:
    """Why `size` is no database of `page_size`-byte pages, or None."""
    if size % page_size:
        low = size // page_size * page_size
        return (f"{size} is not a whole number of {page_size}-byte pages: give "
                f"{low or page_size * DIT_MIN_PAGES} or {low + page_size}")
    if size < DIT_MIN_PAGES * page_size:
        return (f"{size} is too small: a database has at least {DIT_MIN_PAGES} pages "
                f"({DIT_MIN_PAGES * page_size} bytes with {page_size}-byte pages)")
    return None


def log_size_arg(text: str) -> int:
    """An ESE log file size: whole 4 KiB sectors, 2 to 65535 of them (the
    header's sector count is 16-bit)."""
    from ..emulator.data import LOG_SECTOR

    value = size_arg(text)
    hi = 0xFFFF * LOG_SECTOR
    if value % LOG_SECTOR or not 2 * LOG_SECTOR <= value <= hi:
        raise argparse.ArgumentTypeError(
            f"{text.strip()} is not a valid log size: give a multiple of {LOG_SECTOR} from "
            f"{2 * LOG_SECTOR} to {hi} bytes (256 MiB - 4 KiB)")
    return value


def fraction_arg(text: str) -> float:
    """'1%' or '0.01' -> 0.01, in (0, 1]."""
    s = text.strip()
    try:
        value = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction or a percentage") from None
    if not math.isfinite(value) or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a fraction in (0, 1] or a percentage")
    return value


def user_arg(text: str) -> str:
    """DOMAIN\\user, both parts present, no control characters (the name
    goes into one line of the emulated DC's configuration)."""
    domain, sep, user = text.partition("\\")
    if not sep or not domain or not user or not text.isprintable():
        raise argparse.ArgumentTypeError(f"{text!r}: give the user as DOMAIN\\user")
    return text


_DOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,254}")


def domain_arg(text: str) -> str:
    """A NetBIOS or DNS domain name: letters, digits, '-' and '.'."""
    if not _DOMAIN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: give a domain name of letters, digits, "
                                         "'-' and '.' (at most 255)")
    return text


def privileges_arg(text: str) -> str:
    from ..emulator.config import check_privileges

    try:
        check_privileges(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def object_prefix_arg(text: str) -> str:
    """s3://BUCKET or s3://BUCKET/PREFIX (where the bench puts its objects)."""
    if not text.startswith("s3://") or not text[5:].split("/", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: give s3://BUCKET or s3://BUCKET/PREFIX")
    return text


def size_list_arg(text: str) -> list[int]:
    """'256MiB,1GiB' -> database sizes, each as dit_size_arg takes it."""
    sizes = [dit_size_arg(part) for part in text.split(",") if part.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of sizes")
    return sizes


def sweep_axes_arg(text: str) -> list[str]:
    from ..bench.sweep import SWEEPS

    axes = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in axes if a not in SWEEPS]
    if not axes or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of "
                                         f"{', '.join(SWEEPS)}")
    return axes


_DURATION_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "y": 366 * 86400}
RETAIN_MAX_DAYS = 100 * 366        # a century: a typo, not a retention


def duration_arg(text: str) -> int:
    """'30d' -> seconds; units h, d, w, y (a year counted as 366 days, so a
    retention in years never falls short).  At least an hour: a lock that
    ends before the backup is read back protects nothing."""
    t = text.strip().lower()
    unit = _DURATION_UNITS.get(t[-1:]) if t else None
    rule = "a whole number and a unit: h, d, w or y (e.g. 30d)"
    if unit is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; give {rule}")
    value = _int(t[:-1], rule) * unit
    if not 3600 <= value <= RETAIN_MAX_DAYS * 86400:
        raise argparse.ArgumentTypeError(f"{text.strip()} is out of range: give 1h to "
                                         f"{RETAIN_MAX_DAYS}d")
    return value
