"""The emulated DC's NTDS files: create, simulate activity, check consistency.

A DC's NTDS folder holds ``ntds.dit`` (ESE database: header, shadow, pages),
``edb.chk`` (checkpoint) and the transaction logs ``edbXXXXX.log`` (closed,
5 uppercase hex digits) plus ``edb.log`` (the current generation).  Every
file is in real ESE format (docs/ESE.md), so the backup engine, stock tools
and the consistency check see what they would see on a real DC.

Bulk work (page generation, page checksums) runs in C with the GIL released
(``ntdsbackup._ntdsbcli.ese_*``); this module sequences files and headers.
Every write goes to a temporary name or is ordered like ESE's write-ahead
logging (logs, then pages, then header, then checkpoint), and is fsynced, so
a crash leaves a set that is still consistent or visibly incomplete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import random
from pathlib import Path

from .. import ese
from ..dbcheck.folder import check_folder, log_generation
from ..dbcheck.verdict import Verdict
from ..ese import Checkpoint, DbHeader, LgPos, LogHeader, LogTime, Signature
from ..fsutil import atomic_write_bytes, fsync_dir
from ..platform.files import OPEN_RDWR, create_private, pread, pwrite

DIT_NAME = "ntds.dit"
CHECKPOINT_NAME = "edb.chk"
CURRENT_LOG = "edb.log"
LOG_SECTOR = 4096  # cbSec of v8 logs
AD_LOG_SIZE = 10 * 1024 * 1024  # AD's log file size (reference 3.1)
DEFAULT_LOG_COUNT = 4  # closed logs created with a new DC, plus edb.log
# Bytes generated and written per step: big enough that the per-call cost
# vanishes, small enough to keep memory use small and bounded.
BLOCK_BYTES = 8 * 1024 * 1024
LOG_INTERVAL = _dt.timedelta(minutes=15)  # time between generated log generations

DBSTATE_NAMES = {
    1: "just-created",
    2: "dirty",
    3: "clean",
    4: "being-converted",
    5: "force-detach",
    6: "incremental-reseed",
    7: "dirty-and-patched",
    8: "revert-in-progress",
}


def _c():
    """The compiled helpers; imported late so this module imports without them."""
    from .. import _ntdsbcli

    return _ntdsbcli


def log_name(gen: int) -> str:
    return f"edb{gen:05X}.log"


def _derive(seed: int, label: str, bits: int = 32) -> int:
    """A stable number from (seed, label): signatures and times must not
    depend on Python's hash randomisation."""
    h = hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << bits) - 1)


def _seed64(seed: int) -> int:
    return seed & 0xFFFFFFFFFFFFFFFF


def default_log_size(db_size: int) -> int:
    """AD's 10 MiB logs for real-sized DBs; 1..10 MiB (a whole number of MiB)
    for small demo DCs, so logs stay a modest share of the set."""
    mib = 1024 * 1024
    return max(mib, min(AD_LOG_SIZE, (db_size // 32) // mib * mib))


def _check_log_size(log_size: int) -> int:
    if log_size % LOG_SECTOR or log_size < 2 * LOG_SECTOR:
        raise ValueError(
            f"log size must be a multiple of {LOG_SECTOR} and at least {2 * LOG_SECTOR}"
        )
    if log_size // LOG_SECTOR > 0xFFFF:
        raise ValueError("log size must be below 256 MiB (csecLGFile and LGPOS.isec are 16-bit)")
    return log_size


# ----------------------------------------------------------------- writing helpers


def _fsync_write_all(fd: int, data, offset: int) -> None:
    mv = memoryview(data)
    while mv:
        n = pwrite(fd, mv, offset)
        mv = mv[n:]
        offset += n


def _new_file(final: Path) -> tuple[int, Path]:
    """A file to be renamed to `final` once written: created exclusively under
    an unpredictable name beside it (never through a planted link), with the
    mode a DC's files have."""
    return create_private(final.parent, prefix=f".{final.name}.", suffix=".tmp", mode=0o644)


def _write_log_file(path: Path, hdr: LogHeader, seed: int, filled: int | None = None) -> None:
    """Write one log (tmp + rename, fsynced): header then v8 segments 1..;
    segments from `filled` on stay zero (an open edb.log)."""
    nseg = hdr.csec_lgfile - hdr.csec_header
    filled = nseg if filled is None else max(0, min(filled, nseg))
    fd, tmp = _new_file(path)
    c = _c()
    lt = hdr.tm_create.pack()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(ese.build_log_header(hdr))
            per = BLOCK_BYTES // hdr.cb_sec
            buf = bytearray(per * hdr.cb_sec)
            done = 0
            while done < filled:
                n = min(per, filled - done)
                mv = memoryview(buf)[: n * hdr.cb_sec]
                c.ese_generate_log_segments(
                    mv, hdr.cb_sec, hdr.csec_header + done, hdr.generation, seed, lt
                )
                f.write(mv)
                done += n
            f.truncate(hdr.csec_lgfile * hdr.cb_sec)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_header_pair(fd: int, hdr: DbHeader) -> None:
    """Header, fsync, then shadow, fsync: one valid copy exists at every instant."""
    page = ese.build_db_header(hdr)
    _fsync_write_all(fd, page, 0)
    os.fsync(fd)
    _fsync_write_all(fd, page, hdr.page_size)
    os.fsync(fd)


def _log_header(
    gen: int,
    sign_log: Signature,
    tm_create: LogTime,
    tm_prev: LogTime,
    log_size: int,
    page_size: int,
    ckpt: LgPos,
) -> LogHeader:
    return LogHeader(
        generation=gen,
        sign_log=sign_log,
        tm_create=tm_create,
        tm_prev_gen=tm_prev,
        cb_sec=LOG_SECTOR,
        csec_header=1,
        csec_lgfile=log_size // LOG_SECTOR,
        cb_page_size=page_size,
        lgpos_checkpoint=ckpt,
    )


def _write_logs(
    ntds: Path,
    *,
    gens: range,
    current: int,
    sign_log: Signature,
    t_first: _dt.datetime,
    log_size: int,
    page_size: int,
    ckpt_gen: int,
    seed: int,
    tm_before: LogTime | None = None,
) -> LogTime:
    """Closed logs for `gens`, then edb.log for `current` (a third filled).
    Generation g is created at t_first + (g - gens.start) * LOG_INTERVAL.
    Returns the current log's tmCreate."""
    prev = tm_before or LogTime(utc=False)
    ckpt = LgPos(ckpt_gen, 1, 0)
    all_gens = list(gens) + [current]
    for i, gen in enumerate(all_gens):
        tm = LogTime.from_datetime(t_first + i * LOG_INTERVAL)
        hdr = _log_header(gen, sign_log, tm, prev, log_size, page_size, ckpt)
        if gen == current:
            nseg = hdr.csec_lgfile - hdr.csec_header
            _write_log_file(ntds / CURRENT_LOG, hdr, seed, filled=max(1, nseg // 3))
        else:
            _write_log_file(ntds / log_name(gen), hdr, seed)
        prev = tm
    fsync_dir(ntds)
    return prev


def _write_checkpoint(ntds: Path, gen: int, sign_log: Signature) -> None:
    cp = Checkpoint(
        lgpos_checkpoint=LgPos(gen, 1, 0), sign_log=sign_log, lgpos_db_consistency=LgPos(gen, 1, 0)
    )
    atomic_write_bytes(ntds / CHECKPOINT_NAME, ese.build_checkpoint(cp))


def _generate_into(
    fd: int, page_size: int, first_pgno: int, count: int, seed: int, dbtime: int, buf: bytearray
) -> None:
    """Generate pages first_pgno.. and write them at their file offsets."""
    c = _c()
    per = len(buf) // page_size
    done = 0
    while done < count:
        n = min(per, count - done)
        mv = memoryview(buf)[: n * page_size]
        c.ese_generate_pages(mv, page_size, first_pgno + done, seed, dbtime)
        _fsync_write_all(fd, mv, (first_pgno + done + 1) * page_size)
        done += n


# ----------------------------------------------------------------- create


def create_ntds(
    ntds_dir,
    size_bytes: int,
    page_size: int = 8192,
    seed: int = 0,
    log_size: int | None = None,
    log_count: int = DEFAULT_LOG_COUNT,
    created: _dt.datetime | None = None,
) -> dict:
    """Write a live DC's NTDS files into ntds_dir (created if missing).

    ntds.dit: header + shadow + generated pages 1..N (N = size_bytes //
    page_size - 2; the last N // 64 stay all-zero, uninitialised), dbstate 2
    (dirty, as on a running DC).  Logs: closed
    generations 1..log_count and edb.log = log_count + 1, all with the DB's
    signLog and a tmPrevGen chain.  edb.chk: checkpoint two generations
    below the current one; the header's required range runs from the
    checkpoint to the current generation.

    Deterministic: the same arguments (and `created`, which defaults to a
    time derived from the seed) give the same bytes.  Returns describe().
    """
    if page_size not in (4096, 8192, 16384, 32768):
        raise ValueError(f"page size must be 4096, 8192, 16384 or 32768, got {page_size}")
    npages = size_bytes // page_size - 2
    if npages < 1:
        raise ValueError(f"size {size_bytes} is too small for a database of {page_size}-byte pages")
    if log_count < 0:
        raise ValueError("log_count must be >= 0")
    log_size = _check_log_size(log_size if log_size is not None else default_log_size(size_bytes))
    ntds = Path(ntds_dir)
    ntds.mkdir(parents=True, exist_ok=True)
    if created is None:
        created = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(
            seconds=_derive(seed, "created") % (365 * 86400)
        )
    t0 = LogTime.from_datetime(created)
    sign_db = Signature(_derive(seed, "signDb"), t0)
    sign_log = Signature(
        _derive(seed, "signLog"), LogTime.from_datetime(created + _dt.timedelta(seconds=1))
    )
    current = log_count + 1
    ckpt_gen = max(1, current - 2)
    dbtime = 0x400000 + current * 0x10000

    t_first = created + _dt.timedelta(seconds=2)
    tm_current = _write_logs(
        ntds,
        gens=range(1, current),
        current=current,
        sign_log=sign_log,
        t_first=t_first,
        log_size=log_size,
        page_size=page_size,
        ckpt_gen=ckpt_gen,
        seed=_seed64(seed),
    )

    hdr = DbHeader(
        page_size=page_size,
        dbstate=ese.DBSTATE_DIRTY_SHUTDOWN,
        dbtime_dirtied=dbtime,
        sign_db=sign_db,
        sign_log=sign_log,
        logtime_attach=t0,
        lgpos_attach=LgPos(1, 1, 0),
        objid_last=100 + (npages >> 9) + 1,
        gen_min_required=ckpt_gen,
        gen_max_required=current,
        gen_max_committed=current,
        logtime_gen_max_create=tm_current,
    )
    fd, tmp = _new_file(ntds / DIT_NAME)
    try:
        try:
            os.ftruncate(fd, (npages + 2) * page_size)
            buf = bytearray(max(page_size, BLOCK_BYTES // page_size * page_size))
            # The last 1/64 of the pages stay all-zero (uninitialised), as in a
            # database file that ESE has extended ahead of use.
            used = npages - npages // 64
            _generate_into(fd, page_size, 1, used, _seed64(seed), dbtime, buf)
            _write_header_pair(fd, hdr)
        finally:
            os.close(fd)
        os.replace(tmp, ntds / DIT_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_checkpoint(ntds, ckpt_gen, sign_log)
    fsync_dir(ntds)
    return describe(ntds)


def create_from_file(
    ntds_dir,
    dit_path,
    log_size: int | None = None,
    log_count: int = DEFAULT_LOG_COUNT,
    seed: int | None = None,
) -> dict:
    """Build a DC around an existing database (e.g. an IFM copy of ntds.dit).

    The header (or its shadow) must be valid.  The file is copied as is;
    logs are generated with its signLog so that the generations its header
    requires (lGenMinRequired..lGenMaxRequired, or the consistent position
    of a clean database) exist, with edb.log one above and the checkpoint at
    the lowest required generation.  Returns describe().
    """
    src = Path(dit_path)
    with open(src, "rb") as f:
        head = f.read(2 * 32768)
    pair = ese.read_db_header_pair(head)
    if pair.header is None:
        raise ese.EseFormatError(f"{src}: not a usable ESE database: " + "; ".join(pair.problems))
    h = pair.header
    size = src.stat().st_size
    if size % h.page_size or size < 3 * h.page_size:
        raise ese.EseFormatError(
            f"{src}: size {size} is not 3 or more pages of {h.page_size} bytes"
        )
    log_size = _check_log_size(log_size if log_size is not None else default_log_size(size))
    if seed is None:
        seed = h.sign_log.random
    ntds = Path(ntds_dir)
    ntds.mkdir(parents=True, exist_ok=True)

    if h.gen_min_required > 0:
        lo, hi = h.gen_min_required, max(h.gen_min_required, h.gen_max_required)
    else:  # clean database: nothing to replay; logs continue after its consistent point
        lo = hi = max(1, h.lgpos_consistent.generation, h.lgpos_detach.generation)
    first = max(1, min(lo, hi - log_count + 1))
    current = hi + 1
    start = h.sign_log.created.to_datetime() or _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)
    if start.tzinfo is None:
        start = start.replace(tzinfo=_dt.timezone.utc)
    _write_logs(
        ntds,
        gens=range(first, current),
        current=current,
        sign_log=h.sign_log,
        t_first=start + _dt.timedelta(seconds=2),
        log_size=log_size,
        page_size=h.page_size,
        ckpt_gen=lo,
        seed=_seed64(seed),
    )

    fd, tmp = _new_file(ntds / DIT_NAME)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while True:
                chunk = fin.read(BLOCK_BYTES)
                if not chunk:
                    break
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, ntds / DIT_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_checkpoint(ntds, lo, h.sign_log)
    fsync_dir(ntds)
    return describe(ntds)


# ----------------------------------------------------------------- inspecting


def _read_dit_header(ntds: Path) -> ese.HeaderPair:
    with open(ntds / DIT_NAME, "rb") as f:
        return ese.read_db_header_pair(f.read(2 * 32768))


def _log_files(ntds: Path) -> dict[int, str]:
    """Closed logs by generation (from the name)."""
    out = {}
    for name in os.listdir(ntds):
        gen = log_generation(name)
        if gen is not None:
            out[gen] = name
    return out


def _read_log_header(path: Path) -> tuple[LogHeader | None, list[str], int]:
    try:
        with open(path, "rb") as f:
            data = f.read(ese.LOG_HEADER_SIZE)
        size = path.stat().st_size
    except OSError as e:
        return None, [f"cannot read: {e.strerror}"], 0
    problems = ese.check_log_header(data)
    if len(data) < ese.LOG_HEADER_SIZE:
        return None, problems, size
    return ese.parse_log_header(data), problems, size


def describe(ntds_dir) -> dict:
    """A summary of the NTDS folder for status displays (no page checks)."""
    ntds = Path(ntds_dir)
    pair = _read_dit_header(ntds)
    h = pair.header
    size = (ntds / DIT_NAME).stat().st_size
    closed = sorted(_log_files(ntds))
    cur = None
    if (ntds / CURRENT_LOG).exists():
        lh, _, _ = _read_log_header(ntds / CURRENT_LOG)
        cur = lh.generation if lh else None
    ckpt_gen = None
    try:
        cp, _, _ = ese.read_checkpoint((ntds / CHECKPOINT_NAME).read_bytes())
        ckpt_gen = cp.lgpos_checkpoint.generation if cp else None
    except OSError:
        pass
    ps = h.page_size if h else None
    return {
        "size": size,
        "page_size": ps,
        "pages": size // ps - 2 if ps else None,
        "dbstate": h.dbstate if h else None,
        "dbstate_name": DBSTATE_NAMES.get(h.dbstate, str(h.dbstate)) if h else "unreadable",
        "dbtime": h.dbtime_dirtied if h else None,
        "gen_min_required": h.gen_min_required if h else None,
        "gen_max_required": h.gen_max_required if h else None,
        "sign_log": f"{h.sign_log.random:08X}" if h else None,
        "log_low": closed[0] if closed else None,
        "log_high": closed[-1] if closed else None,
        "log_current": cur,
        "checkpoint_gen": ckpt_gen,
    }


# ----------------------------------------------------------------- activity


def activity(ntds_dir, fraction: float, seed: int, new_generations: int | None = None) -> dict:
    """Simulate a running DC: rewrite `fraction` of the pages with new content.

    In ESE's write-ahead order: close edb.log and write new log generations
    (by default about one log's worth per log-size of changed pages, 1..64),
    then the pages (new dbtime, valid checksums), then the DB header + shadow
    (dbtimeDirtied, required range), then edb.chk (checkpoint two
    generations below the new current log).  Each step is fsynced.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ntds = Path(ntds_dir)
    pair = _read_dit_header(ntds)
    if pair.header is None:
        raise ese.EseFormatError(f"{ntds / DIT_NAME}: " + "; ".join(pair.problems))
    h = pair.header
    ps = h.page_size
    npages = (ntds / DIT_NAME).stat().st_size // ps - 2
    k = min(npages, max(1, round(fraction * npages)))
    rng = random.Random(seed)
    pages = (
        list(range(1, npages + 1)) if k == npages else sorted(rng.sample(range(1, npages + 1), k))
    )
    dbtime = h.dbtime_dirtied + 0x10000 + k

    # --- logs: close the current one, add generations
    cur_path = ntds / CURRENT_LOG
    sign_log = h.sign_log
    cur_hdr = None
    if cur_path.exists():
        cur_hdr, probs, _ = _read_log_header(cur_path)
        if probs:
            raise ese.EseFormatError(f"{cur_path}: " + "; ".join(probs))
    if cur_hdr is None:
        # No current log (e.g. after a restore that brought closed logs
        # only): start one above the highest closed generation first.
        closed = _log_files(ntds)
        top = None
        if closed:
            top, probs, _ = _read_log_header(ntds / closed[max(closed)])
            if top is None or probs:
                raise ese.EseFormatError(f"{ntds / closed[max(closed)]}: unreadable log header")
        log_size = top.csec_lgfile * top.cb_sec if top else default_log_size(npages * ps)
        tm_top = top.tm_create if top else LogTime(utc=False)
        t_top = tm_top.to_datetime() or _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)
        g0 = top.generation + 1 if top else max(1, h.gen_max_required)
        lh = _log_header(
            g0,
            sign_log,
            LogTime.from_datetime(t_top + LOG_INTERVAL),
            tm_top,
            log_size,
            ps,
            LgPos(max(1, g0 - 2), 1, 0),
        )
        _write_log_file(cur_path, lh, _seed64(_derive(seed, "logs", 64)), filled=1)
        cur_hdr = lh
    gen, log_size, tm_prev = (
        cur_hdr.generation,
        cur_hdr.csec_lgfile * cur_hdr.cb_sec,
        cur_hdr.tm_create,
    )
    if new_generations is None:
        new_generations = max(1, min(64, round(k * ps / log_size)))
    if new_generations < 1:
        raise ValueError("new_generations must be >= 1")
    new_current = gen + new_generations
    lseed = _seed64(_derive(seed, "logs", 64))
    ckpt_gen = max(1, new_current - 2)
    t_base = tm_prev.to_datetime() or _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)

    # A closed log is full: fill the rest of edb.log, in place (it is
    # deterministic, so redoing it after a crash writes the same bytes).
    nseg = cur_hdr.csec_lgfile - cur_hdr.csec_header
    fd = os.open(cur_path, OPEN_RDWR)
    try:
        used = _used_segments(fd, cur_hdr)
        if used < nseg:
            buf = bytearray((nseg - used) * cur_hdr.cb_sec)
            _c().ese_generate_log_segments(
                buf,
                cur_hdr.cb_sec,
                cur_hdr.csec_header + used,
                cur_hdr.generation,
                lseed,
                cur_hdr.tm_create.pack(),
            )
            _fsync_write_all(fd, buf, (cur_hdr.csec_header + used) * cur_hdr.cb_sec)
            os.fsync(fd)
    finally:
        os.close(fd)
    # New closed generations gen+1 .. new_current-1, then the new edb.log
    # staged under a temporary name.
    prev = tm_prev
    sign_log = h.sign_log
    for i in range(1, new_generations + 1):
        g = gen + i
        tm = LogTime.from_datetime(t_base + i * LOG_INTERVAL)
        lh = _log_header(g, sign_log, tm, prev, log_size, ps, LgPos(ckpt_gen, 1, 0))
        if g == new_current:
            staged = ntds / f".{CURRENT_LOG}.next{os.getpid()}"
            _write_log_file(staged, lh, lseed, filled=max(1, (lh.csec_lgfile - 1) // 3))
        else:
            _write_log_file(ntds / log_name(g), lh, lseed)
        prev = tm
    # link + replace: edb.log exists at every instant (as the emulator's own roll does).
    closed_path = ntds / log_name(gen)
    if not closed_path.exists():
        os.link(cur_path, closed_path)
    os.replace(staged, cur_path)
    fsync_dir(ntds)

    # --- pages, in runs of consecutive page numbers
    fd = os.open(ntds / DIT_NAME, OPEN_RDWR)
    try:
        buf = bytearray(max(ps, BLOCK_BYTES // ps * ps))
        for first, count in _runs(pages):
            _generate_into(fd, ps, first, count, _seed64(seed), dbtime, buf)
        os.fsync(fd)
        # --- header + shadow
        h.dbtime_dirtied = dbtime
        h.dbstate = ese.DBSTATE_DIRTY_SHUTDOWN
        h.gen_min_required = min(new_current, max(h.gen_min_required, ckpt_gen))
        h.gen_max_required = new_current
        h.gen_max_committed = new_current
        h.logtime_gen_max_create = prev
        _write_header_pair(fd, h)
    finally:
        os.close(fd)

    # --- checkpoint
    _write_checkpoint(ntds, ckpt_gen, sign_log)
    fsync_dir(ntds)
    return {
        "pages_rewritten": k,
        "pages_total": npages,
        "dbtime": dbtime,
        "generations_added": new_generations,
        "current_generation": new_current,
        "checkpoint_generation": ckpt_gen,
    }


def _used_segments(fd: int, hdr: LogHeader) -> int:
    """Number of leading non-zero segments of an open log."""
    nseg = hdr.csec_lgfile - hdr.csec_header
    data = pread(fd, nseg * hdr.cb_sec, hdr.csec_header * hdr.cb_sec)
    zero = bytes(hdr.cb_sec)
    used = 0
    # from the end: segments are written in order, so the used part is a prefix
    for i in range(len(data) // hdr.cb_sec - 1, -1, -1):
        if data[i * hdr.cb_sec : (i + 1) * hdr.cb_sec] != zero:
            used = i + 1
            break
    return used


def _runs(pages: list[int]):
    """(first, count) of each run of consecutive page numbers in a sorted list."""
    if not pages:
        return
    start = prev = pages[0]
    for p in pages[1:]:
        if p != prev + 1:
            yield start, prev - start + 1
            start = p
        prev = p
    yield start, prev - start + 1


# ----------------------------------------------------------------- consistency check

# The check itself is the project's one ESE verdict (dbcheck): the emulated
# DC runs it on its folder as a real DC's recovery would.
ConsistencyReport = Verdict


def check_consistency(ntds_dir, gen_low: int | None = None,
                      gen_high: int | None = None) -> Verdict:
    """What a DC checks when it starts after a restore (docs/ESE.md, "Checks"):
    dbcheck.check_folder on this NTDS folder."""
    return check_folder(ntds_dir, gen_low=gen_low, gen_high=gen_high)


__all__ = [
    "ConsistencyReport",
    "activity",
    "check_consistency",
    "create_from_file",
    "create_ntds",
    "default_log_size",
    "describe",
    "log_name",
]


# ----------------------------------------------------------------- recovery


def finish_recovery(ntds_dir, seed: int = 0) -> dict:
    """What the directory service does once recovery has replayed the restored
    logs: open a new current log (the generation after the highest restored
    one, chained to it), write a checkpoint at it, and attach the database at
    that position: its header then requires only the new current generation
    (docs/ESE.md, "After recovery").  Without that last step the header would
    go on requiring the replayed generations, which the next backup's log
    truncation deletes, and a restore of that backup could never start.  Call
    after check_consistency passed; existing edb.log/edb.chk are kept."""
    ntds = Path(ntds_dir)
    closed = _log_files(ntds)
    if not closed:
        raise ValueError(f"{ntds}: no closed log generations to recover from")
    high = max(closed)
    last, problems, _ = _read_log_header(ntds / closed[high])
    if last is None:
        raise ValueError(f"{ntds / closed[high]}: unreadable log header: {problems}")
    created = []
    current = ntds / CURRENT_LOG
    if not current.exists():
        now = LogTime.from_datetime(_dt.datetime.now())
        hdr = ese.replace(last, generation=high + 1, tm_create=now, tm_prev_gen=last.tm_create,
                          lgpos_checkpoint=LgPos(high + 1, 1, 0))
        _write_log_file(current, hdr, seed, filled=1)
        created.append(CURRENT_LOG)
    cur_hdr, cur_problems, _ = _read_log_header(current)
    if cur_hdr is None:
        raise ValueError(f"{current}: unreadable log header: {cur_problems}")
    gen = cur_hdr.generation
    if not (ntds / CHECKPOINT_NAME).exists():
        _write_checkpoint(ntds, gen, last.sign_log)
        created.append(CHECKPOINT_NAME)
    attached = _attach_at(ntds, gen, cur_hdr.tm_create)
    fsync_dir(ntds)
    return {"current_generation": gen, "created": created, "header_requires": attached}


def _attach_at(ntds: Path, gen: int, tm_create: LogTime) -> tuple[int, int]:
    """The database header as the attached, running instance keeps it: dirty
    (in use), requiring generations from the checkpoint (here: the new
    current log) to the current one."""
    pair = _read_dit_header(ntds)
    h = pair.header
    if h is None:
        raise ese.EseFormatError(f"{ntds / DIT_NAME}: " + "; ".join(pair.problems))
    h.dbstate = ese.DBSTATE_DIRTY_SHUTDOWN
    h.gen_min_required = gen
    h.gen_max_required = gen
    h.gen_max_committed = gen
    h.logtime_gen_max_create = tm_create
    fd = os.open(ntds / DIT_NAME, OPEN_RDWR)
    try:
        _write_header_pair(fd, h)
    finally:
        os.close(fd)
    return gen, gen
