"""`ntdsbackup bench`: the engine against its baselines, side by side.

Backup contenders, on one emulated DC, alternating and repeated:
  engine           the double-buffered, multi-threaded engine (backup to a file)
  engine-serial    the same C engine with one buffer and no overlap
  python-loop      DsBackupRead 1 MiB -> xxhash -> zstandard.compress -> write
  zstd-cli         stock `zstd -<level> -T<threads>` compressing the same ntds.dit
  pzstd            `pzstd -<level> -p <threads>`: parallel zstd, the strongest
                   stock peer of a multi-core engine
  limit            <threads> x the single-core compression rate `zstd -b<level>`
                   measures on the same ntds.dit, in memory (no reading, no writing)
Verify contenders (nothing written):
  engine-verify    ntdsbackup.archive.verify of the engine's archive: every chunk
                   decompressed and its hash, every file hash and the trailer checked
  pzstd-t          `pzstd -t -p <threads>` of a pzstd-made ntds.dit.zst: parallel
                   decompression to nothing, zstd's checksum checked
  zstd-t           `zstd -t` of ntds.dit.zst (one thread)
  limit            <threads> x the single-core decompression rate of `zstd -b<level>`
Restore contenders:
  engine-restore   the full restore of the engine's archive onto the DC (in DSRM),
                   the verification pass included
  zstd-d           stock `zstd -d -T1` decompressing ntds.dit.zst; its CLI writes
                   on a second thread (asyncio, zstd >= 1.5.3)
  zstd-d-1thread   the same with --no-asyncio: decompressing and writing on one
                   thread
  pzstd-d          `pzstd -d -p <threads>` of the pzstd-made ntds.dit.zst
  limit            `cp` of the same ntds.dit (the plain copy rate)
Every restore peer has the file life cycle of the engine's restore (see
replacing): its output is written beside the file it replaces, fsynced,
renamed over it, and the old one deleted.

Every file the contenders write goes to the work directory, by default a
tmpfs (/dev/shm) when there is one: on a shared machine the disk is the
noisiest part, and the comparison is about the data path.  --work-dir on a
real disk measures that disk too.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..emulator import EmulatedDC
from ..platform.files import fsync_dir, fsync_file
from .harness import Contender, alternate, paired_ratio

RUNNERS = "ntdsbackup.bench.runners"


def default_work_base() -> str | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return None


def _beside_previous(out: Path) -> tuple:
    """(before, after) hooks that give a command-line tool the file life cycle
    of the engine: its new output is written beside the previous one, which is
    deleted once the new one is complete and fsynced (the engine writes a
    .partial or staging file, then replaces the old file).  Before: rename the
    previous output aside (not timed).  After: fsync the new output and delete
    the previous one (timed with the run).

    This matters on a virtual machine: there, writing 1 GiB beside 1 GiB that
    still exists was measured 1-10x slower than truncating and rewriting the
    same file, because the new pages come from guest memory the host has to
    fault in again.  Overwriting in place would measure that, not the tools."""
    prev = out.with_name(out.name + ".prev")

    def before():
        if out.exists():
            os.replace(out, prev)

    def after():
        fsync_file(out)
        prev.unlink(missing_ok=True)
    return before, after


def replacing(target: Path) -> tuple:
    """(staging, before, after) that give a restore peer the file life cycle of
    the engine's restore: the new file is written beside the one it replaces
    (`staging`, which the peer writes), fsynced, the old file moved aside and
    the new one renamed over its name, the directory fsynced, the old file
    deleted.  Before (untimed): clear a stale staging file.  After (timed with
    the run): everything from the fsync on.  The first, unrecorded round of
    alternate() leaves a file of the same size at `target` for the next ones
    to replace, as the DC's ntds.dit is for the engine."""
    staging = target.with_name(target.name + ".staging")
    aside = target.with_name(target.name + ".old")
    directory = target.parent

    def before():
        staging.unlink(missing_ok=True)

    def after():
        fsync_file(staging)
        replaced = target.exists()
        if replaced:
            os.replace(target, aside)
        os.replace(staging, target)
        fsync_dir(directory)
        if replaced:
            aside.unlink()
            fsync_dir(directory)
    return staging, before, after


def _zstd_has_asyncio() -> bool:
    return subprocess.run(["zstd", "--no-asyncio", "-V"], capture_output=True).returncode == 0


def _py(*args) -> list[str]:
    return [sys.executable, "-m", RUNNERS, *map(str, args)]


class Bench:
    """An emulated DC in a work directory, and the contenders to run on it."""

    def __init__(self, work: Path, *, name: str = "BENCH01", size: int, page_size: int = 8192,
                 seed: int = 1):
        self.work = work
        self.root = work / "emu"
        self.out = work / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, NTDSB_EMU_ROOT=str(self.root.resolve()))
        os.environ["NTDSB_EMU_ROOT"] = self.env["NTDSB_EMU_ROOT"]
        self.dc = EmulatedDC(name, self.root)
        self.dc.create(size, page_size=page_size, seed=seed, force=True)
        self.dit = self.dc.ntds_dir / "ntds.dit"

    def set_faults(self, **faults) -> None:
        cfg = self.dc.config()
        cfg.set_faults(**faults)
        self.dc.save_config(cfg)

    # -- contenders ------------------------------------------------------------
    def _common(self, level, chunk_size):
        return ["--root", self.root, "--server", self.dc.name, "--level", level,
                "--chunk-size", chunk_size]

    def engine(self, name="engine", *, level=1, threads=0, chunk_size=1 << 20, ring=0,
               serial=False, encrypted=False, page_checks=True) -> Contender:
        extra = ["--serial"] if serial else ["--threads", threads, "--ring", ring]
        if not page_checks:
            extra += ["--no-page-checks"]
        if encrypted:
            extra += ["--age-identity", self.age_identity()]
        return Contender(name, _py("engine-backup", *self._common(level, chunk_size), *extra,
                                   "--out", self.out / f"{name}.tar.zst"))

    def age_identity(self) -> Path:
        """An age identity file for the encrypted contenders (made once)."""
        path = self.out / "age-identity.txt"
        if not path.exists():
            from ..crypto import X25519Identity, write_identity_file

            write_identity_file(path, X25519Identity.generate())
        return path

    def python_loop(self, *, level=1) -> Contender:
        return Contender("python-loop", _py("python-loop", *self._common(level, 1 << 20),
                                            "--out", self.out / "loop.zst"))

    def read_only(self, chunk_size=1 << 20) -> Contender:
        return Contender("read-only", _py("read-only", *self._common(1, chunk_size), "--out",
                                          self.out / "unused"))

    def zstd_cli(self, *, level=1, threads=0) -> Contender:
        out = self.out / "zstd-cli.zst"
        before, after = _beside_previous(out)
        return Contender("zstd-cli", ["zstd", "-q", "-f", f"-{level}",
                                      f"-T{threads or os.cpu_count()}", str(self.dit), "-o",
                                      str(out)],
                         nbytes=self.dit.stat().st_size, before=before, after=after)

    def pzstd(self, *, level=1, threads=0) -> Contender:
        out = self.out / "pzstd.zst"
        before, after = _beside_previous(out)
        return Contender("pzstd", ["pzstd", "-q", "-f", f"-{level}", "-p",
                                   str(threads or os.cpu_count()), str(self.dit), "-o",
                                   str(out)],
                         nbytes=self.dit.stat().st_size, before=before, after=after)

    def zstd_bench(self, name: str, *, mode: str, level=1, threads=0,
                   seconds: int = 1) -> Contender:
        """A limit: `threads` x the single-core rate `zstd -b` measures for
        compressing (mode "compress") or decompressing ("decompress") the
        same ntds.dit, in memory."""
        return Contender(name, _py("zstd-bench", "--file", self.dit, "--mode", mode,
                                   "--level", level, "--threads", threads or os.cpu_count(),
                                   "--seconds", seconds, "--out", self.out / "unused"))

    def zstd_source(self, level=1) -> Path:
        """ntds.dit.zst made by `zstd -T0` (once, untimed)."""
        src = self.out / "ntds.dit.zst"
        if not src.exists():
            subprocess.run(["zstd", "-q", "-f", f"-{level}", "-T0", str(self.dit), "-o",
                            str(src)], check=True)
        return src

    def pzstd_source(self, level=1, threads=0) -> Path:
        """ntds.dit.pzst made by pzstd (once, untimed): pzstd decompresses its
        own frames in parallel, zstd's on one thread."""
        src = self.out / "ntds.dit.pzst"
        if not src.exists():
            subprocess.run(["pzstd", "-q", "-f", f"-{level}", "-p",
                            str(threads or os.cpu_count()), str(self.dit), "-o", str(src)],
                           check=True)
        return src

    def engine_verify(self, archive: Path, threads=0) -> Contender:
        return Contender("engine-verify", _py("engine-verify", "--archive", archive,
                                              "--threads", threads, "--out",
                                              self.out / "unused"))

    def pzstd_t(self, level=1, threads=0) -> Contender:
        return Contender("pzstd-t", ["pzstd", "-q", "-t", "-p", str(threads or os.cpu_count()),
                                     str(self.pzstd_source(level, threads))],
                         nbytes=self.dit.stat().st_size)

    def zstd_t(self, level=1) -> Contender:
        return Contender("zstd-t", ["zstd", "-q", "-t", str(self.zstd_source(level))],
                         nbytes=self.dit.stat().st_size)

    @property
    def restore_target(self) -> Path:
        """The file every restore peer replaces (one, so that the peers hold
        one restored copy between them, as the DC does)."""
        return self.out / "restored-ntds.dit"

    def pzstd_d(self, level=1, threads=0) -> Contender:
        src = self.pzstd_source(level, threads)
        staging, before, after = replacing(self.restore_target)
        return Contender("pzstd-d", ["pzstd", "-q", "-f", "-d", "-p",
                                     str(threads or os.cpu_count()), str(src), "-o",
                                     str(staging)],
                         nbytes=self.dit.stat().st_size, before=before, after=after)

    def copy(self, name="copy-limit") -> Contender:
        """`cp` of the same bytes with the restore's life cycle: the plain copy
        rate, the limit of any restore that writes a new file."""
        staging, before, after = replacing(self.restore_target)
        return Contender(name, ["cp", "--reflink=never", str(self.dit), str(staging)],
                         nbytes=self.dit.stat().st_size, before=before, after=after)

    def engine_restore(self, archive: Path, threads=0, *, name="engine-restore",
                       encrypted=False) -> Contender:
        extra = ["--age-identity", self.age_identity()] if encrypted else []
        return Contender(name, _py("engine-restore", "--root", self.root,
                                   "--server", self.dc.name, "--archive", archive,
                                   "--threads", threads, "--out", self.out / "unused", *extra))

    def zstd_d(self, level=1, *, asyncio=True) -> Contender:
        """`zstd -d`.  zstd decompresses on one thread, but since 1.5.3 its CLI
        writes the output on a second one (asyncio), so the default overlaps
        decompression with writing; --no-asyncio is the single thread."""
        src = self.zstd_source(level)
        name = "zstd-d" if asyncio else "zstd-d-1thread"
        # A zstd without the option (< 1.5.3) has no I/O thread to turn off.
        flags = [] if asyncio or not _zstd_has_asyncio() else ["--no-asyncio"]
        staging, before, after = replacing(self.restore_target)
        return Contender(name, ["zstd", "-q", "-f", "-d", "-T1", *flags, str(src), "-o",
                                str(staging)],
                         nbytes=self.dit.stat().st_size, before=before, after=after)


@contextmanager
def bench_workspace(work_dir: str | None):
    base = work_dir or default_work_base()
    tmp = Path(tempfile.mkdtemp(prefix="ntdsb-bench-", dir=base))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ratios(first: Contender, others: list[Contender]) -> dict:
    """first's rate over each other's: the median of the per-round ratios."""
    out = {}
    for c in others:
        r = paired_ratio(first, c)
        if r is not None:
            out[f"{first.name}/{c.name}"] = round(r[0], 3)
    return out


def ratio_spreads(first: Contender, others: list[Contender]) -> dict:
    """The per-round ratios' [min, max], beside ratios(): how much to trust each."""
    out = {}
    for c in others:
        r = paired_ratio(first, c)
        if r is not None:
            out[f"{first.name}/{c.name}"] = [round(r[1], 3), round(r[2], 3)]
    return out


def _limit(c: Contender, what: str) -> dict:
    """A limit's summary: what it is, and for a `zstd -b` limit the median
    single-core rate it multiplies (its CPU time and memory are zstd -b's own
    benchmark loop, not a comparable figure: left out)."""
    s = {**c.summary(), "what": what}
    single = [r.extra["single_core_mb_per_s"] for r in c.runs
              if "single_core_mb_per_s" in r.extra]
    if single:
        s.update(single_core_mb_per_s_median=round(statistics.median(single), 1),
                 cores=c.runs[-1].extra["cores"], cpu_seconds_median=None, max_rss_mib=None)
    return s


def run(size: int, *, work_dir: str | None = None, page_size: int = 8192, repeat: int = 3,
        level: int = 1, threads: int = 0, chunk_size: int = 1 << 20, ring: int = 0,
        restore: bool = True, bench_seconds: int = 1, on_run=None) -> dict:
    """The side-by-side comparison; returns a JSON-ready report.

    Tables backup, verify and restore (contender -> summary), each with its
    ratios (engine / every other contender and / the table's limit) and its
    limit in limits[table].  restore=False: the backup table only."""
    for tool in ("zstd", "pzstd"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"the {tool} command-line tool is a baseline: "
                               f"apt-get install zstd")
    threads = threads or os.cpu_count() or 1
    with bench_workspace(work_dir) as work:
        b = Bench(work, size=size, page_size=page_size)
        contenders = [b.engine(level=level, threads=threads, chunk_size=chunk_size, ring=ring),
                      b.engine("engine-serial", level=level, chunk_size=chunk_size,
                               serial=True),
                      b.python_loop(level=level), b.zstd_cli(level=level, threads=threads),
                      b.pzstd(level=level, threads=threads),
                      # The cost of encryption: the same engine writing an age file.
                      b.engine("engine-age", level=level, threads=threads,
                               chunk_size=chunk_size, ring=ring, encrypted=True),
                      # The cost of checking every page: the same engine without.
                      b.engine("engine-no-pages", level=level, threads=threads,
                               chunk_size=chunk_size, ring=ring, page_checks=False)]
        climit = b.zstd_bench("compression-limit", mode="compress", level=level,
                              threads=threads, seconds=bench_seconds)
        alternate([*contenders, climit], repeat, b.env, on_run)
        eng = contenders[0].summary()
        limits = {"backup": _limit(climit, f"{threads} x the single-core compression rate "
                                           f"of zstd -b{level} on the same ntds.dit")}
        report = {"size": size, "page_size": page_size, "repeat": repeat, "level": level,
                  "threads": threads, "chunk_size": chunk_size, "work_dir": str(work.parent),
                  "backup": {c.name: c.summary() for c in contenders},
                  "backup_ratios": ratios(contenders[0], [*contenders[1:], climit]),
                  "backup_ratio_spreads": ratio_spreads(contenders[0],
                                                        [*contenders[1:], climit]),
                  "limits": limits}
        if eng["extra"].get("written"):
            report["compression_ratio"] = round(eng["bytes"] / eng["extra"]["written"], 3)
        if not restore:                     # the backup table only
            return report
        archive = b.out / "engine.tar.zst"
        vc = [b.engine_verify(archive, threads), b.pzstd_t(level, threads), b.zstd_t(level)]
        dlimit = b.zstd_bench("decompression-limit", mode="decompress", level=level,
                              threads=threads, seconds=bench_seconds)
        alternate([*vc, dlimit], repeat, b.env, on_run)
        report["verify"] = {c.name: c.summary() for c in vc}
        report["verify_ratios"] = ratios(vc[0], [*vc[1:], dlimit])
        report["verify_ratio_spreads"] = ratio_spreads(vc[0], [*vc[1:], dlimit])
        limits["verify"] = _limit(dlimit, f"{threads} x the single-core decompression rate "
                                          f"of zstd -b{level} on the same ntds.dit")
        b.dc.stop()
        rc = [b.engine_restore(archive, threads), b.zstd_d(level),
              b.zstd_d(level, asyncio=False), b.pzstd_d(level, threads),
              b.engine_restore(b.out / "engine-age.tar.zst", threads,
                               name="engine-restore-age", encrypted=True)]
        rlimit = b.copy()
        alternate([*rc, rlimit], repeat, b.env, on_run)
        report["restore"] = {c.name: c.summary() for c in rc}
        report["restore_ratios"] = ratios(rc[0], [*rc[1:], rlimit])
        report["restore_ratio_spreads"] = ratio_spreads(rc[0], [*rc[1:], rlimit])
        limits["restore"] = _limit(rlimit, "cp of the same ntds.dit, written beside the "
                                           "file it replaces, fsynced, renamed over it, "
                                           "the old one deleted")
        return report
