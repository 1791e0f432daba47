"""`make demo`: an emulated DC end to end, with the figures printed.

    python -m ntdsbackup.demo --root demo-root --size 1GiB

Creates the DC, backs it up, verifies the archive, restores it onto the DC in
DSRM, boots the DC (its consistency check runs), and prints each step's
throughput beside stock zstd on the same file, on the same terms: every
figure durable where the step writes (fsynced), and the restore's peer with
the restore's file life cycle (written beside the file it replaces, fsynced,
renamed over it, the old one deleted).  Each line says what it includes.
`ntdsbackup bench` compares more peers (pzstd) and this machine's limits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .emulator import EmulatedDC, status_text, use_emu_root
from .fsutil import format_size, parse_size
from .platform.files import fsync_file, sync_all


def _timed(fn):
    t0 = time.monotonic()
    result = fn()
    return result, time.monotonic() - t0


def _settle() -> None:
    """Write back everything dirty before a timed step: on a disk, the step
    that follows a large write would otherwise pay for its writeback."""
    sync_all()


def _zstd(args: list[str], out: Path) -> float:
    """zstd writing a new file, fsynced (the engine fsyncs its archive)."""
    _settle()
    t0 = time.monotonic()
    subprocess.run(["zstd", "-q", "-f", *args, "-o", str(out)], check=True)
    fsync_file(out)
    return time.monotonic() - t0


def _zstd_test(src: Path) -> float:
    """zstd -t: decompression to nothing, its checksum checked."""
    _settle()
    t0 = time.monotonic()
    subprocess.run(["zstd", "-q", "-t", str(src)], check=True)
    return time.monotonic() - t0


def _zstd_replacing(src: Path, target: Path) -> float:
    """zstd -d -T1 of src with the restore's file life cycle: `target` (made
    first, untimed, as the DC's ntds.dit stands before a restore) is replaced
    by a file written beside it, fsynced, renamed over it; the old one is
    deleted.  The same helper gives `ntdsbackup bench`'s restore peers theirs."""
    from .bench.compare import replacing

    subprocess.run(["zstd", "-q", "-f", "-d", "-T1", str(src), "-o", str(target)], check=True)
    staging, before, after = replacing(target)
    before()
    _settle()
    t0 = time.monotonic()
    subprocess.run(["zstd", "-q", "-f", "-d", "-T1", str(src), "-o", str(staging)], check=True)
    after()
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ntdsbackup.demo")
    ap.add_argument("--root", default="demo-root", help="emulator root for the demo")
    ap.add_argument("--size", default="1GiB", help="size of the emulated ntds.dit")
    ap.add_argument("--name", default="DC01")
    ap.add_argument("--level", type=int, default=1)
    args = ap.parse_args(argv)

    from .archive import verify
    from .phases.backup import backup
    from .phases.restore import restore

    root = use_emu_root(args.root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    work = root / "archives"
    work.mkdir()
    size = parse_size(args.size)
    threads = os.cpu_count() or 1

    print(f"== 1. create emulated DC {args.name} ({args.size}) under {args.root}")
    dc = EmulatedDC(args.name, root)
    _, t_create = _timed(lambda: dc.create(size, seed=1))
    print(f"   created in {t_create:.1f} s")
    print(status_text(dc.status()))

    archive = work / f"{args.name}.tar.zst"
    print(f"\n== 2. back up {args.name} -> {archive}")
    _settle()
    summary = backup(args.name, archive, level=args.level)
    dit = dc.ntds_dir / "ntds.dit"
    zst = work / "ntds.dit.zst"
    t_zstd = _zstd([f"-{args.level}", f"-T{threads}", str(dit)], zst)
    zstd_rate = dit.stat().st_size / t_zstd / 1e6
    print(f"   {len(summary.files)} files, {format_size(summary.bytes_read)} -> "
          f"{format_size(summary.bytes_written)} (ratio {summary.ratio:.2f}) in "
          f"{summary.seconds:.2f} s: {summary.mb_per_s:.0f} MB/s "
          f"(read through DsBackupRead, hashed, compressed, written, fsynced)")
    print(f"   zstd -{args.level} -T{threads} of the same ntds.dit: {zstd_rate:.0f} MB/s "
          f"(read, compressed, written, fsynced; engine/zstd = "
          f"{summary.mb_per_s / zstd_rate:.2f}x)")

    print("\n== 3. verify the archive (every chunk hash, file hash, the trailer)")
    _settle()
    report, t_verify = _timed(lambda: verify(archive))
    verify_rate = report.raw_bytes / t_verify / 1e6
    t_zt = _zstd_test(zst)
    zt_rate = dit.stat().st_size / t_zt / 1e6
    print(f"   OK: {len(report.files)} files, {report.chunk_frames} chunks in {t_verify:.2f} s: "
          f"{verify_rate:.0f} MB/s (decompressed and hashed, nothing written)")
    print(f"   zstd -t of ntds.dit.zst: {zt_rate:.0f} MB/s (decompressed, checksum checked, "
          f"nothing written; engine/zstd = {verify_rate / zt_rate:.2f}x)")

    print(f"\n== 4. restore onto {args.name} in Directory Services Restore Mode")
    dc.activity(0.01, seed=2)
    dc.stop()
    _settle()
    result = restore(archive, args.name)
    t_zd = _zstd_replacing(zst, work / "ntds.dit.restored")
    zd_rate = dit.stat().st_size / t_zd / 1e6
    print(f"   {format_size(result.plan.total_bytes)} in {result.seconds:.2f} s: "
          f"{result.mb_per_s:.0f} MB/s (pre-flight; decompressed, verified and written beside "
          f"the DC's files, fsynced, in {result.stage_seconds:.2f} s; swapped over them, the "
          f"old ones deleted, in {result.swap_seconds:.2f} s)")
    print(f"   zstd -d -T1 of ntds.dit.zst: {zd_rate:.0f} MB/s (written beside the file it "
          f"replaces, fsynced, renamed over it, the old one deleted; engine/zstd = "
          f"{result.mb_per_s / zd_rate:.2f}x)")

    print(f"\n== 5. boot {args.name}: the DC's consistency check")
    started = dc.start()
    print(f"   {started['report'].summary_text()}")
    print(f"   {args.name} is {dc.mode}")

    print("\n== figures (MB/s; every writer fsyncs what it writes)")
    rows = [("backup (engine)", summary.mb_per_s, "DsBackupRead, hash, compress, write"),
            (f"zstd -{args.level} -T{threads}", zstd_rate, "the same ntds.dit: read, compress, "
                                                         "write"),
            ("verify (engine)", verify_rate, "decompress, every hash; nothing written"),
            ("zstd -t", zt_rate, "decompress, checksum; nothing written"),
            ("restore (engine)", result.mb_per_s, "verified, beside the DC's files, "
                                                  "swapped over them, old deleted"),
            ("zstd -d -T1", zd_rate, "beside the file it replaces, renamed over it, "
                                     "old deleted")]
    for name, rate, what in rows:
        print(f"   {name:<18} {rate:8.0f}  {what}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
