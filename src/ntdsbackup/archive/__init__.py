"""The archive format (docs/FORMAT.md): a zstd-framed pax tar stream with
per-chunk XXH3-128 frame headers, a manifest first, a trailer last and a seek
index at the very end."""

from .extract import extract
from .ops import describe, verify
from .reader import ReadReport, read_archive

__all__ = ["describe", "extract", "verify", "read_archive", "ReadReport"]
