"""Restore: the documented phase order (reference section 7), made safe.

    1 DsSetAuthIdentityW (optional)       5 DsRestoreRegisterW
    2 DsIsNTDSOnlineW (must be FALSE)     6 the file copy (here: swap staged files in)
    3 DsRestorePrepareW (the token)       7 DsRestoreRegisterComplete(S_OK or failure)
    4 DsRestoreGetDatabaseLocationsW      8 DsRestoreEnd, on every path

Beyond the documented procedure (docs/RESTORE.md says why): between steps 4
and 5, with the DC's own files untouched and nothing registered, every file
is decompressed into a staging file beside its target, every chunk, file hash
and the trailer verified in that same pass, and fsynced.  Only a fully
verified, durable set is registered; the old files are then moved aside and
the staged ones renamed into place.  A failure before the registration
removes the staging files and leaves the DC exactly as it was; a failure
after it rolls the swap back and is reported through
DsRestoreRegisterComplete.  Old files are deleted only after success.
--dry-run runs every check, the verification pass included, writing nothing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..archive.fastread import Target, read_fd
from ..archive.members import member_name
from ..archive.ops import read_documents
from ..archive.reader import MemberResult, ReadReport
from ..errors import (
    ArchiveError,
    DCStateError,
    EngineError,
    HResultError,
    NtdsbackupError,
)
from ..fsutil import format_size, fsync_dir
from ..lists import (
    BFT_CHECKPOINT_DIR,
    BFT_LOG,
    BFT_LOG_DIR,
    BFT_NTDS_DATABASE,
    BFT_PATCH_FILE,
    parse_multistring,
)
from ..paths import unc_to_local
from ..provider import open_provider
from .backup import Identity

try:
    import fcntl
except ImportError:        # Windows: no flock
    fcntl = None

# Failure codes reported through DsRestoreRegisterComplete (ntdsbmsg.h).
hrError = 0xC7FF0002
hrInvalidBackup = 0xC800020E
hrDiskFull = 0xC8000710
hrDiskIO = 0xC80003FE
hrMissingRestoreLogFiles = 0xC800022D

SPACE_MARGIN = 64 << 20       # keep this much free beyond what the staged files need
_LOG_NAME = re.compile(r"^edb([0-9A-Fa-f]{5})\.log$")
_PATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.pat$")
# The files of an ESE instance that a restore replaces (the documentation says to
# empty the destination directories; we move them aside instead).
_ESE_FILES = re.compile(r"^(edb[0-9A-Fa-f]{5}\.log|edb\.log|edb\.chk|edbres\d+\.jrs|"
                        r"edbtmp\.log|res[12]\.log|[A-Za-z0-9_-]+\.pat)$", re.IGNORECASE)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class PlannedFile:
    name: str
    bft: int
    size: int
    source: str
    target_unc: str
    target: Path
    replaces: bool

    def as_dict(self) -> dict:
        return {"name": self.name, "bft": self.bft, "size": self.size, "source": self.source,
                "target": self.target_unc, "local_path": str(self.target),
                "replaces_existing": self.replaces}


@dataclass
class RestorePlan:
    server: str
    archive: str
    manifest: dict
    checks: list[Check] = field(default_factory=list)
    files: list[PlannedFile] = field(default_factory=list)
    locations: dict[int, str] = field(default_factory=dict)
    gen_low: int | None = None
    gen_high: int | None = None
    days_left: float | None = None
    moved_aside: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict:
        return {"server": self.server, "archive": self.archive,
                "backup_created": self.manifest.get("created"),
                "backup_server": self.manifest.get("server"),
                "checks": [c.as_dict() for c in self.checks],
                "files": [f.as_dict() for f in self.files],
                "log_generations": {"low": self.gen_low, "high": self.gen_high},
                "token_days_left": None if self.days_left is None else round(self.days_left, 1),
                "total_bytes": self.total_bytes, "moved_aside": self.moved_aside}

    def text(self) -> str:
        lines = [f"restore plan for {self.server} from {self.archive}",
                 f"  backup of {self.manifest.get('server')} taken "
                 f"{self.manifest.get('created')}"]
        for c in self.checks:
            lines.append(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        for f in self.files:
            verb = "replace" if f.replaces else "create"
            lines.append(f"  {verb:7} {f.target}  <- {f.name} ({format_size(f.size)})")
        if self.moved_aside:
            lines.append(f"  move aside then delete after success: {', '.join(self.moved_aside)}")
        return "\n".join(lines)


@dataclass
class RestoreResult:
    plan: RestorePlan
    dry_run: bool
    seconds: float
    verify_seconds: float = 0.0
    stage_seconds: float = 0.0
    swap_seconds: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.plan.total_bytes / self.seconds / 1e6 if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "seconds": round(self.seconds, 3),
                "verify_seconds": round(self.verify_seconds, 3),
                "stage_seconds": round(self.stage_seconds, 3),
                "swap_seconds": round(self.swap_seconds, 3),
                "mb_per_s": round(self.mb_per_s, 1), **self.plan.as_dict()}


def failure_hresult(exc: BaseException) -> int:
    """The code DsRestoreRegisterComplete receives for a failed restore."""
    if isinstance(exc, HResultError):
        return exc.hresult
    if isinstance(exc, EngineError) and exc.hresult:
        return exc.hresult
    if isinstance(exc, ArchiveError):
        return hrInvalidBackup
    if isinstance(exc, OSError) and exc.errno == 28:   # ENOSPC
        return hrDiskFull
    if isinstance(exc, OSError):
        return hrDiskIO
    return hrError


def _token_days_left(token: bytes) -> float | None:
    """Days before the token expires, when its format is known (the emulator's,
    docs/EMULATOR.md); the real ntdsbcli token is opaque."""
    if len(token) == 64 and token[:8] == b"NTDSBEXP":
        when, tombstone = struct.unpack_from("<qI", token, 16)
        return tombstone - (time.time() - when) / 86400
    return None


class _ArchiveInput:
    """The archive as a seekable descriptor.  Standard input is spooled to a
    private temporary file first: it must be verified in full before the DC is
    touched, and read a second time to stage."""

    def __init__(self, source, spool_dir: str | None):
        self.source = source
        self.spool_dir = spool_dir
        self.fd = -1
        self.spool: Path | None = None
        self.label = str(source)

    def __enter__(self):
        if self.source == "-":
            self.label = "<stdin>"
            fd, name = tempfile.mkstemp(prefix="ntdsb-restore-", suffix=".tar.zst",
                                        dir=self.spool_dir)
            self.spool = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
                self.fd = os.open(self.spool, os.O_RDONLY)
            except BaseException:
                # __exit__ does not run when __enter__ fails (Ctrl-C while the
                # archive is still arriving): the spool must not outlive us.
                self.spool.unlink(missing_ok=True)
                raise
        else:
            self.fd = os.open(self.source, os.O_RDONLY)
        return self

    def rewind(self) -> int:
        os.lseek(self.fd, 0, os.SEEK_SET)
        return self.fd

    def documents(self) -> dict:
        """Manifest, trailer and seek index, read through the index at the end
        (no file is decompressed): what the archive claims, which the staging
        pass then checks member by member."""
        with open(self.rewind(), "rb", closefd=False) as fh:
            return read_documents(fh)

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
        if self.spool is not None:
            with contextlib.suppress(FileNotFoundError):
                self.spool.unlink()


def restore(archive, server: str, *, provider=None, identity: Identity | None = None,
            dry_run: bool = False, threads: int = 0, progress=None,
            allow_other_server: bool = False, spool_dir: str | None = None) -> RestoreResult:
    """Restore `archive` (a path or '-') onto the DC `server`, which must be in
    DSRM.  dry_run runs every check and returns the plan, changing nothing."""
    prov = provider or open_provider()
    emit = progress or (lambda event: None)
    t0 = time.monotonic()
    with _ArchiveInput(archive, spool_dir) as inp:
        docs = inp.documents()
        manifest, trailer = docs["manifest"], docs["trailer"]
        plan = RestorePlan(server, inp.label, manifest)
        backed_up = str(manifest.get("server", ""))
        same = backed_up.lower() == server.lstrip("\\").lower()
        plan.checks.append(Check("archive server", same or allow_other_server,
                                 f"backup of {backed_up}, restoring onto {server}"))
        if not same and not allow_other_server:
            raise ArchiveError(f"the archive is a backup of {backed_up}, not of {server}; "
                               "refusing to restore another DC's database")

        if identity is not None:                                        # step 1
            prov.set_auth_identity(identity.user, identity.domain, identity.password)
        if prov.is_ntds_online(server):                                 # step 2
            raise DCStateError(f"the directory service on {server} is running: restart it "
                               "in Directory Services Restore Mode first; nothing was changed")
        plan.checks.append(Check("DC offline", True, "directory service stopped (DSRM)"))

        try:
            token = base64.b64decode(manifest["expiry_token"], validate=True)
        except (KeyError, ValueError):
            raise ArchiveError("the manifest has no valid expiry token") from None
        ctx = prov.restore_prepare(server, token)                       # step 3
        registered = False
        swap = lock = None
        try:
            plan.days_left = _token_days_left(token)
            plan.checks.append(Check("expiry token", True, "accepted by DsRestorePrepareW" + (
                f", {plan.days_left:.0f} days left" if plan.days_left is not None else "")))

            locs = parse_multistring(ctx.get_database_locations())      # step 4
            plan.locations = {e.bft: e.path for e in locs}
            missing = {BFT_NTDS_DATABASE, BFT_LOG_DIR, BFT_CHECKPOINT_DIR} - set(plan.locations)
            if missing:
                raise NtdsbackupError(f"DsRestoreGetDatabaseLocationsW lacks "
                                      f"{sorted(missing)}")
            plan.checks.append(Check("target locations", True, ", ".join(
                plan.locations[b] for b in (BFT_NTDS_DATABASE, BFT_LOG_DIR))))
            listed = _listed_files(trailer)
            _plan_files(plan, listed)
            _check_log_chain(plan, trailer)
            _check_space(plan)

            if dry_run:
                emit({"event": "phase", "phase": "verify"})
                tv = time.monotonic()
                report = read_fd(inp.rewind(), threads=threads,
                                 progress=_progress_events(emit, "verify"))
                _integrity_checked(plan, report)
                return RestoreResult(plan, True, time.monotonic() - t0,
                                     verify_seconds=time.monotonic() - tv)

            lock = _RestoreLock(plan)
            emit({"event": "phase", "phase": "stage"})
            ts = time.monotonic()
            swap = _Swap(plan)
            report = _stage(inp, plan, swap, threads, emit)
            _integrity_checked(plan, report)
            stage_seconds = time.monotonic() - ts

            db_target = plan.locations[BFT_NTDS_DATABASE]
            db_source = next(f.source for f in plan.files if f.bft == BFT_NTDS_DATABASE)
            ctx.register(plan.locations[BFT_CHECKPOINT_DIR], plan.locations[BFT_LOG_DIR],
                         [(db_source, db_target)], plan.locations[BFT_LOG_DIR],
                         plan.gen_low or 0, plan.gen_high or 0)         # step 5
            registered = True

            tw = time.monotonic()
            emit({"event": "phase", "phase": "swap"})
            swap.commit()                                               # step 6
            swap_seconds = time.monotonic() - tw
            ctx.register_complete(0)                                    # step 7
            swap.discard_old()
            return RestoreResult(plan, False, time.monotonic() - t0, 0.0, stage_seconds,
                                 swap_seconds)
        except BaseException as exc:
            if swap is not None:
                swap.rollback()
            if registered:
                with contextlib.suppress(NtdsbackupError):
                    ctx.register_complete(failure_hresult(exc))
            raise
        finally:
            if lock is not None:
                lock.release()
            if not ctx.ended:
                ctx.end()                                               # step 8


def _progress_events(emit, phase: str):
    return lambda m, done: emit({"event": "progress", "phase": phase, "name": m.name,
                                 "done": done, "size": m.size})


def _listed_files(trailer: dict) -> list[MemberResult]:
    """The files the trailer lists, checked for shape: the plan is made from
    them before any member is read."""
    entries = trailer.get("files")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError("the trailer lists no files")
    files = []
    for e in entries:
        if not isinstance(e, dict):
            raise ArchiveError("the trailer's file list is malformed")
        name, bft, source, size = (e.get(k) for k in ("name", "bft", "source", "size"))
        if not (isinstance(name, str) and isinstance(source, str) and isinstance(bft, int)
                and isinstance(size, int) and size >= 0):
            raise ArchiveError(f"the trailer's entry {name!r} is malformed")
        if member_name(bft, source) != name:
            raise ArchiveError(f"the trailer's entry {name!r} does not match its source "
                               f"{source!r}")
        files.append(MemberResult(name, bft, source, size, str(e.get("xxh3_128", ""))))
    return files


def _integrity_checked(plan: RestorePlan, report: ReadReport) -> None:
    """Record the full read.  It also ties the read to the plan: the reader
    checks the index's trailer offset against the trailer it found, and the
    members against that trailer, which is the one the plan was made from."""
    plan.checks.append(Check("archive integrity", True,
                             f"{len(report.files)} files, {report.chunk_frames} chunks, "
                             "every chunk hash, file hash and the trailer match"))


def _plan_files(plan: RestorePlan, files: list[MemberResult]) -> None:
    """Choose each file's target by its BFT type and the DC's locations; never
    by a path read from the archive (log and patch names are rebuilt from
    validated patterns)."""
    dbs = [f for f in files if f.bft == BFT_NTDS_DATABASE]
    if len(dbs) != 1:
        raise ArchiveError(f"the archive holds {len(dbs)} NTDS databases, expected exactly 1")
    seen: set[Path] = set()
    for f in files:
        base = f.source.replace("/", "\\").rsplit("\\", 1)[-1]
        if f.bft == BFT_NTDS_DATABASE:
            unc = plan.locations[BFT_NTDS_DATABASE]
        elif f.bft == BFT_LOG:
            m = _LOG_NAME.match(base)
            if not m:
                raise ArchiveError(f"log file {f.source!r} is not named edbXXXXX.log")
            unc = plan.locations[BFT_LOG_DIR] + f"\\edb{int(m.group(1), 16):05X}.log"
        elif f.bft == BFT_PATCH_FILE:
            if not _PATCH_NAME.match(base):
                raise ArchiveError(f"patch file {f.source!r} has an unexpected name")
            unc = plan.locations[BFT_CHECKPOINT_DIR] + "\\" + base
        else:
            raise ArchiveError(f"{f.name}: BFT type 0x{f.bft:02X} cannot be restored")
        target = unc_to_local(unc)
        if target in seen:
            raise ArchiveError(f"two archive members map to {target}")
        seen.add(target)
        plan.files.append(PlannedFile(f.name, f.bft, f.size, f.source, unc, target,
                                      target.exists()))
    dirs = {f.target.parent for f in plan.files}
    old = sorted({str(d / n) for d in dirs for n in os.listdir(d) if _ESE_FILES.match(n)
                  and d / n not in seen})
    plan.moved_aside = old


def _check_log_chain(plan: RestorePlan, trailer: dict) -> None:
    gens = sorted(int(_LOG_NAME.match(f.target.name).group(1), 16)
                  for f in plan.files if f.bft == BFT_LOG)
    listed = trailer.get("log_generations") or {}
    if not gens:
        raise ArchiveError("the archive holds no transaction logs: the database could not "
                           "be recovered")
    if gens != list(range(gens[0], gens[-1] + 1)):
        raise ArchiveError(f"the log chain has gaps: generations {gens}")
    if listed and (listed.get("low"), listed.get("high")) != (gens[0], gens[-1]):
        raise ArchiveError(f"the trailer says generations {listed.get('low')}.."
                           f"{listed.get('high')}, the archive holds {gens[0]}..{gens[-1]}")
    plan.gen_low, plan.gen_high = gens[0], gens[-1]
    plan.checks.append(Check("log chain", True, f"generations {gens[0]}..{gens[-1]}, "
                             "consecutive"))


def _check_space(plan: RestorePlan) -> None:
    need: dict[int, int] = {}
    where: dict[int, Path] = {}
    for f in plan.files:
        dev = os.stat(f.target.parent).st_dev
        need[dev] = need.get(dev, 0) + f.size
        where[dev] = f.target.parent
    for dev, n in need.items():
        st = os.statvfs(where[dev])
        free = st.f_bavail * st.f_frsize
        ok = free >= n + SPACE_MARGIN
        plan.checks.append(Check("free space", ok, f"{format_size(n)} to stage in "
                                 f"{where[dev]}, {format_size(free)} free"))
        if not ok:
            raise NtdsbackupError(f"not enough free space in {where[dev]}: staging needs "
                                  f"{format_size(n + SPACE_MARGIN)}, {format_size(free)} free; "
                                  "nothing was changed")


_STAGING_SUFFIX = ".ntdsb-staging"


def _staging_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{_STAGING_SUFFIX}")


def _remove_stale_staging(plan: RestorePlan) -> None:
    """Staging files of a restore that was killed while staging (nothing was
    registered then, and only a restore holding the lock writes them)."""
    for d in {f.target.parent for f in plan.files}:
        for name in os.listdir(d):
            if name.startswith(".") and name.endswith(_STAGING_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    (d / name).unlink()


def _stage(inp: _ArchiveInput, plan: RestorePlan, swap: _Swap, threads: int,
           emit) -> ReadReport:
    """The one pass over the archive: every file decompressed into its staging
    file (the engine: frames in parallel, each chunk verified as it is
    written), its whole-file hash checked, fsynced; then the trailer and the
    seek index.  The DC's own files are not touched."""
    by_name = {f.name: f for f in plan.files}
    _remove_stale_staging(plan)

    def open_member(m: MemberResult) -> Target:
        planned = by_name.get(m.name)
        if planned is None or (planned.bft, planned.source, planned.size) != \
                (m.bft, m.source, m.size):
            raise ArchiveError(f"member {m.name!r} differs from its trailer entry")
        path = _staging_path(planned.target)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        swap.staged.append((path, planned.target))
        emit({"event": "file", "phase": "stage", "name": m.name, "size": m.size})
        return Target(fd)

    def close_member(m: MemberResult, target: Target) -> None:
        try:
            os.fsync(target.fd)
        finally:
            os.close(target.fd)

    report = read_fd(inp.rewind(), open_member=open_member, close_member=close_member,
                     threads=threads, progress=_progress_events(emit, "stage"))
    for d in {t.parent for _, t in swap.staged}:
        fsync_dir(d)
    return report


class _RestoreLock:
    """One restore at a time per DC folder.  DsRestoreRegisterW interlocks
    restores, but staging runs before it: an exclusive flock on each target
    directory keeps a second ntdsbackup from staging over the first.  (Where
    flock does not exist, the registration's own interlock is all there is.)"""

    def __init__(self, plan: RestorePlan):
        self.fds: list[int] = []
        if fcntl is None:
            return
        try:
            for d in sorted({f.target.parent for f in plan.files}):
                fd = os.open(d, os.O_RDONLY)
                self.fds.append(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise DCStateError(f"another restore is running in {d}; nothing was "
                                       "changed") from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def _copy_ownership(original: Path, staged: Path) -> None:
    """A replaced file keeps its mode and owner (the DS's account must still be
    able to open it); a new file keeps the staging default, 0600."""
    try:
        st = original.stat()
    except FileNotFoundError:
        return
    os.chmod(staged, st.st_mode & 0o7777)
    if hasattr(os, "chown"):
        with contextlib.suppress(PermissionError):
            os.chown(staged, st.st_uid, st.st_gid)


class _Swap:
    """Moves old files aside and staged files into place, and can undo it."""

    def __init__(self, plan: RestorePlan):
        self.plan = plan
        self.staged: list[tuple[Path, Path]] = []       # (staging file, target)
        self.aside_dirs: dict[Path, Path] = {}
        self.moved: list[tuple[Path, Path]] = []        # (original, aside) done so far
        self.placed: list[tuple[Path, Path]] = []       # (staging, target) done so far

    def _aside_dir(self, d: Path) -> Path:
        if d not in self.aside_dirs:
            aside = d / f".ntdsb-old-{os.getpid()}-{int(time.time())}"
            aside.mkdir(mode=0o700)
            self.aside_dirs[d] = aside
        return self.aside_dirs[d]

    def commit(self) -> None:
        for staging, target in self.staged:
            _copy_ownership(target, staging)
        old = [Path(p) for p in self.plan.moved_aside] + \
              [t for _, t in self.staged if t.exists()]
        for path in old:
            aside = self._aside_dir(path.parent) / path.name
            os.replace(path, aside)
            self.moved.append((path, aside))
        for staging, target in self.staged:
            os.replace(staging, target)
            self.placed.append((staging, target))
        for d in {t.parent for _, t in self.staged} | set(self.aside_dirs):
            fsync_dir(d)

    def rollback(self) -> None:
        """Put every old file back and remove staged ones: the DC as it was."""
        for staging, target in reversed(self.placed):
            with contextlib.suppress(FileNotFoundError):
                os.replace(target, staging)
        for original, aside in reversed(self.moved):
            with contextlib.suppress(FileNotFoundError):
                os.replace(aside, original)
        for staging, _ in self.staged:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
        for aside in self.aside_dirs.values():
            with contextlib.suppress(OSError):
                aside.rmdir()
        for d in {t.parent for _, t in self.staged}:
            fsync_dir(d)
        self.moved.clear()
        self.placed.clear()

    def discard_old(self) -> None:
        for aside in self.aside_dirs.values():
            shutil.rmtree(aside, ignore_errors=True)
        for d in self.aside_dirs:
            fsync_dir(d)
