"""In-process throughput with pytest-benchmark: the engine, its serial mode and
the plain Python loop on the same emulated DC, and verify/restore.  Figures
are MB/s in extra_info; the targets are asserted in test_targets.py."""

from __future__ import annotations

import os

import pytest
import xxhash
import zstandard

from ntdsbackup import open_provider
from ntdsbackup.archive import verify
from ntdsbackup.lists import parse_multistring
from ntdsbackup.phases.backup import backup


def _record(benchmark, nbytes: int) -> None:
    if benchmark.stats is None:          # --benchmark-disable: ran once, nothing timed
        return
    stats = benchmark.stats.stats
    benchmark.extra_info["mb_per_s_median"] = round(nbytes / stats.median / 1e6, 1)
    benchmark.extra_info["bytes"] = nbytes


@pytest.mark.parametrize("mode", ["pipelined", "serial"])
def test_engine_backup(benchmark, bench_dc, mode):
    out = bench_dc.root.parent / f"engine-{mode}.tar.zst"
    kw = {"serial": True} if mode == "serial" else {}
    kw["overwrite"] = True               # each round replaces the previous archive
    result = benchmark.pedantic(lambda: backup(bench_dc.name, out, truncate=False, **kw),
                                rounds=3, iterations=1, warmup_rounds=0)
    _record(benchmark, result.bytes_read)
    os.unlink(out)


def _python_loop(server: str, out_path) -> int:
    """The same work as the engine's backup, on the same terms (fsync included)."""
    prov = open_provider()
    cctx = zstandard.ZstdCompressor(level=1, write_checksum=True)
    buf = bytearray(1 << 20)
    total = 0
    with open(out_path, "wb") as out, prov.backup_prepare(server) as ctx:
        for entry in parse_multistring(ctx.get_database_names()):
            ctx.open_file(entry.path, 1 << 20)
            while n := ctx.read(buf):
                data = bytes(buf[:n])
                xxhash.xxh3_128_digest(data)
                out.write(cctx.compress(data))
                total += n
            ctx.close_file()
        out.flush()
        os.fsync(out.fileno())
    return total


def test_python_loop(benchmark, bench_dc):
    out = bench_dc.root.parent / "loop.zst"
    total = benchmark.pedantic(lambda: _python_loop(bench_dc.name, out), rounds=3,
                               iterations=1)
    _record(benchmark, total)


@pytest.fixture(scope="module")
def archive(bench_dc):
    path = bench_dc.root.parent / "verify.tar.zst"
    backup(bench_dc.name, path, truncate=False)
    return path


@pytest.mark.parametrize("reader", ["engine", "pure"])
def test_verify(benchmark, archive, reader):
    report = benchmark.pedantic(lambda: verify(archive, pure=reader == "pure"), rounds=3,
                                iterations=1)
    _record(benchmark, report.raw_bytes)


def test_restore(benchmark, bench_dc, archive):
    """The whole restore onto the DC in DSRM (pre-flight, the pass that stages
    and verifies, swap); the DC is booted again afterwards."""
    from ntdsbackup.phases.restore import restore

    bench_dc.stop()
    try:
        result = benchmark.pedantic(lambda: restore(archive, bench_dc.name), rounds=3,
                                    iterations=1)
        _record(benchmark, result.plan.total_bytes)
    finally:
        bench_dc.start()
