"""Crash-safe small-file writes shared by the emulated DC (write a private
temporary file, fsync, rename, fsync the directory), and sizes as people
type them.  File creation itself lives in platform/files.py."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

from .platform.files import commit, create_private, fsync_dir, remove_quietly

__all__ = ["SIZE_UNITS", "atomic_write_bytes", "atomic_write_text", "format_size",
           "fsync_dir", "parse_size"]


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` as one step: a new file under an
    unpredictable name beside it (never through a link planted there),
    renamed over the old entry (a symlink at `path` is replaced, not
    followed)."""
    path = Path(path)
    fd, tmp = create_private(path.parent, prefix=f".{path.name[:200]}.", mode=mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        commit(tmp, path, overwrite=True)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


# K, M, G, T and KiB, MiB, GiB, TiB are binary (powers of 1024); kB, MB, GB,
# TB are decimal.  Block and chunk sizes are binary by nature, so a bare "1M"
# means what such an option needs; the decimal units stay for those who
# spell them out.
SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 1000,
    "m": 1 << 20, "mib": 1 << 20, "mb": 1000**2,
    "g": 1 << 30, "gib": 1 << 30, "gb": 1000**3,
    "t": 1 << 40, "tib": 1 << 40, "tb": 1000**4,
}
SIZE_MAX = (1 << 63) - 1        # what a file offset can hold
_SIZE = re.compile(r"(\d{1,30})(?:\.(\d{1,30}))?\s*([a-z]*)")


def parse_size(text: str) -> int:
    """'8192', '64MiB', '1M' (= 1 MiB), '1.5G', '1MB' (= 10^6) -> bytes.

    Plain decimal digits only (no exponent, sign, infinity or hex), and the
    result must be a whole number of bytes below 2^63."""
    s = text.strip().lower().replace("_", "")
    m = _SIZE.fullmatch(s)
    if not m or m.group(3) not in SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 8192, 64MiB, 1GiB; K, M, G are "
                         "binary, kB, MB, GB decimal)")
    whole, frac, unit = m.groups()
    value = Fraction(f"{whole}.{frac or 0}") * SIZE_UNITS[unit]
    if value.denominator != 1:
        raise ValueError(f"not a whole number of bytes: {text!r}")
    if value > SIZE_MAX:
        raise ValueError(f"too large: {text!r} (at most 2^63 - 1 bytes)")
    return int(value)


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
