"""`ntdsbackup bench`: the engine against its baselines, side by side.

Backup contenders, on one emulated DC, alternating and repeated:
  engine           the double-buffered, multi-threaded engine (backup to a file)
  engine-serial    the same C engine with one buffer and no overlap
  python-loop      DsBackupRead 1 MiB -> xxhash -> zstandard.compress -> write
  zstd-cli         stock `zstd -<level> -T<threads>` compressing the same ntds.dit
Restore contenders:
  engine-restore   the full restore of the engine's archive onto the DC (in DSRM),
                   verification included
  zstd-d           stock `zstd -d` (single-threaded) decompressing ntds.dit.zst
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..emu import EmulatedDC
from .harness import Contender, alternate

RUNNERS = "ntdsbackup.bench.runners"


def _fsync_path(path: Path):
    def sync():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return sync


def _py(*args) -> list[str]:
    return [sys.executable, "-m", RUNNERS, *map(str, args)]


def prepare_dc(root: Path, name: str, size: int, page_size: int, seed: int) -> EmulatedDC:
    dc = EmulatedDC(name, root)
    if dc.exists():
        st = dc.status()
        if st["database"] and st["database"]["size"] == size and \
                st["database"]["page_size"] == page_size:
            if not st["online"]:
                dc.start()
            return dc
    dc.create(size, page_size=page_size, seed=seed, force=True)
    return dc


def backup_contenders(dc: EmulatedDC, work: Path, *, level: int, threads: int,
                      chunk_size: int, ring: int, include=("engine", "engine-serial",
                                                         "python-loop", "zstd-cli")):
    common = ["--root", dc.root, "--server", dc.name, "--level", level,
              "--chunk-size", chunk_size]
    dit = dc.ntds_dir / "ntds.dit"
    zout = work / "zstd-cli.zst"
    table = {
        "engine": Contender("engine", _py("engine-backup", *common, "--threads", threads,
                                          "--ring", ring, "--out", work / "engine.tar.zst")),
        "engine-serial": Contender("engine-serial",
                                   _py("engine-backup", *common, "--serial", "--out",
                                       work / "serial.tar.zst")),
        "python-loop": Contender("python-loop", _py("python-loop", *common, "--out",
                                                    work / "loop.zst")),
        "zstd-cli": Contender("zstd-cli", ["zstd", "-q", "-f", f"-{level}",
                                           f"-T{threads or os.cpu_count()}", str(dit), "-o",
                                           str(zout)],
                              nbytes=dit.stat().st_size, after=_fsync_path(zout)),
    }
    return [table[k] for k in include]


def run(size: int, *, root: Path | None = None, name: str = "BENCH01", page_size: int = 8192,
        repeat: int = 3, level: int = 1, threads: int = 0, chunk_size: int = 1 << 20,
        ring: int = 0, seed: int = 1, restore: bool = True, on_run=None) -> dict:
    """Run the side-by-side comparison; returns a JSON-ready report."""
    if shutil.which("zstd") is None:
        raise RuntimeError("the zstd command-line tool is needed as a baseline "
                           "(apt-get install zstd)")
    tmp = None
    if root is None:
        tmp = tempfile.mkdtemp(prefix="ntdsb-bench-")
        root = Path(tmp) / "emu"
    root = Path(root)
    work = root.parent / f"{name}-bench-out"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NTDSB_EMU_ROOT=str(root.resolve()))
    os.environ["NTDSB_EMU_ROOT"] = env["NTDSB_EMU_ROOT"]
    try:
        dc = prepare_dc(root, name, size, page_size, seed)
        contenders = backup_contenders(dc, work, level=level, threads=threads,
                                       chunk_size=chunk_size, ring=ring)
        alternate(contenders, repeat, env, on_run)
        report = {"size": size, "page_size": page_size, "repeat": repeat, "level": level,
                  "threads": threads or os.cpu_count(), "chunk_size": chunk_size,
                  "backup": {c.name: c.summary() for c in contenders}}
        engine = contenders[0]
        report["backup_ratios"] = {
            f"engine/{c.name}": round(engine.median_mb_per_s() / c.median_mb_per_s(), 3)
            for c in contenders[1:] if c.median_mb_per_s()}
        eng = report["backup"]["engine"]
        if eng["extra"].get("written"):
            report["compression_ratio"] = round(eng["bytes"] / eng["extra"]["written"], 3)
        if restore:
            report.update(_restore_comparison(dc, work, repeat, threads, level, env, on_run))
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _restore_comparison(dc, work, repeat, threads, level, env, on_run) -> dict:
    archive = work / "engine.tar.zst"
    dit = dc.ntds_dir / "ntds.dit"
    zsrc = work / "ntds.dit.zst"
    os.system(f"zstd -q -f -{level} -T0 '{dit}' -o '{zsrc}'")
    zout = work / "zstd-d.out"
    dc.stop()
    try:
        contenders = [
            Contender("engine-restore", _py("engine-restore", "--root", dc.root, "--server",
                                            dc.name, "--archive", archive, "--threads",
                                            threads, "--out", work / "restore-unused")),
            Contender("zstd-d", ["zstd", "-q", "-f", "-d", "-T1", str(zsrc), "-o", str(zout)],
                      nbytes=dit.stat().st_size, after=_fsync_path(zout)),
        ]
        alternate(contenders, repeat, env, on_run)
    finally:
        # Leave the DC as found: online (its restore record consumed by start).
        dc.start()
    eng, base = contenders
    return {"restore": {c.name: c.summary() for c in contenders},
            "restore_ratios": {"engine-restore/zstd-d": round(
                eng.median_mb_per_s() / base.median_mb_per_s(), 3)}}
