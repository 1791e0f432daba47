"""pytest-benchmark suite (run by `make bench`, never by `make test`).

NTDSB_BENCH_SIZE sets the emulated DC's size (default 1GiB), NTDSB_BENCH_REPEAT
the alternating runs of the side-by-side comparisons (default 3).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ntdsbackup.fsutil import parse_size

SIZE = parse_size(os.environ.get("NTDSB_BENCH_SIZE", "1GiB"))
REPEAT = int(os.environ.get("NTDSB_BENCH_REPEAT", "3"))


def work_base() -> str | None:
    from ntdsbackup.bench.compare import default_work_base

    return os.environ.get("NTDSB_BENCH_WORK_DIR") or default_work_base()


@pytest.fixture(scope="session")
def bench_dc():
    """One emulated DC for the in-process benchmarks, in the bench work dir."""
    from ntdsbackup.emulator import EmulatedDC, use_emu_root

    tmp = Path(tempfile.mkdtemp(prefix="ntdsb-pybench-", dir=work_base()))
    root = use_emu_root(tmp / "emu")
    dc = EmulatedDC("PYBENCH", root)
    dc.create(SIZE, seed=3)
    yield dc
    shutil.rmtree(tmp, ignore_errors=True)
