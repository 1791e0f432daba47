"""Restore: the documented phase order (reference section 7), made safe.

    1 DsSetAuthIdentityW (optional)       5 DsRestoreRegisterW
    2 DsIsNTDSOnlineW (must be FALSE)     6 the file copy (here: swap staged files in)
    3 DsRestorePrepareW (the token)       7 DsRestoreRegisterComplete(S_OK or failure)
    4 DsRestoreGetDatabaseLocationsW      8 DsRestoreEnd, on every path

Beyond the documented procedure (docs/RESTORE.md says why): between steps 4
and 5, with the DC's own files untouched and nothing registered, every file
is decompressed into a staging file beside its target, every chunk, file
hash and the trailer verified in that same pass, and fsynced.  Then an
intent record (phases/restore_journal.py) is written, and steps 5 to 7 run
with termination signals deferred: register, move the old files aside and
the staged ones in, complete, delete the old files.

Whatever interrupts it (an error, Ctrl-C, SIGTERM, SIGKILL, power loss), the
outcome is one whole file set, decided by one rule: before the registration
the old set stays (nothing was changed); once the DC holds the registration
the new set is completed, because the DC would not start on the old one
anyway; an *error* in the moves themselves rolls back and is reported through
DsRestoreRegisterComplete; a restore reported complete is never undone.  In
process the rule is applied at once (:func:`_settle`); after a kill the next
restore, or ``ntdsbackup restore --recover``, applies it from the record
(:func:`recover`).  --dry-run runs every check, the verification pass
included, writing nothing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Union

from .._ntdsbcli import Provider, RestoreContext
from ..archive.envelope import DecryptionKeys
from ..archive.fastread import Target, read_fd
from ..archive.ops import ArchiveSource
from ..archive.reader import MemberResult, ReadReport
from ..archive.remote_input import RemoteInput
from ..archive.signing import Trust
from ..archive.source import ArchiveInput
from ..dbcheck import Verdict
from ..dbcheck.archive import ArchivePages
from ..errors import (
    ArchiveError,
    DatabaseDamaged,
    DCStateError,
    EngineError,
    HResultError,
    NtdsbackupError,
)
from ..events import RecoveredEvent, RestoreEvent, RestoreProgressEvent
from ..lists import BFT_CHECKPOINT_DIR, BFT_LOG_DIR, BFT_NTDS_DATABASE, parse_multistring
from ..platform import signals
from ..platform.files import (
    copy_mode_and_owner,
    create_private,
    fsync_dir,
    regular_mode,
)
from ..platform.locks import DirectoryLock, LockHeld
from ..provider import open_provider
from ..provider_paths import path_mapper
from . import restore_journal as rj
from .backup import Identity
from .restore_plan import (
    Check,
    RestorePlan,
    check_log_chain,
    check_recorded_verdict,
    check_required_logs,
    check_space,
    database_header,
    listed_files,
    plan_files,
    token_days_left,
)

__all__ = ["RecoveryResult", "RestorePlan", "RestoreResult", "failure_hresult", "recover",
           "restore"]

# Failure codes reported through DsRestoreRegisterComplete (ntdsbmsg.h).
hrError = 0xC7FF0002
hrInvalidBackup = 0xC800020E
hrDiskFull = 0xC8000710
hrDiskIO = 0xC80003FE

# What an interrupted restore ended as (RestoreResult.outcome, the "settled" event).
UNCHANGED: Final = "unchanged"        # the DC holds its old files; nothing registered
COMPLETED: Final = "completed"        # the DC holds the archive's files, registered complete
ROLLED_BACK: Final = "rolled-back"    # the old files are back; the failure was reported

# Where the restore reads: a local file (or a spool), or an object in place.
_Input = Union[ArchiveInput, RemoteInput]


@dataclass
class RestoreResult:
    plan: RestorePlan
    dry_run: bool
    seconds: float
    verify_seconds: float = 0.0
    stage_seconds: float = 0.0
    swap_seconds: float = 0.0
    recovered: RecoveryResult | None = None   # an earlier, interrupted restore settled first

    @property
    def mb_per_s(self) -> float:
        return self.plan.total_bytes / self.seconds / 1e6 if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "seconds": round(self.seconds, 3),
                "verify_seconds": round(self.verify_seconds, 3),
                "stage_seconds": round(self.stage_seconds, 3),
                "swap_seconds": round(self.swap_seconds, 3),
                "mb_per_s": round(self.mb_per_s, 1),
                "recovered": None if self.recovered is None else self.recovered.as_dict(),
                **self.plan.as_dict()}


@dataclass
class RecoveryResult:
    """What recovery found in the DC's directories and what it did."""

    server: str
    outcome: Literal["nothing", "completed", "unchanged"]
    detail: str
    journal: str | None = None
    state: str | None = None      # the journal's state when found

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "outcome": self.outcome, "detail": self.detail,
                "journal": self.journal, "journal_state": self.state}

    def text(self) -> str:
        return f"recovery on {self.server}: {self.detail}"


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


class _DirectoryLock:
    """One restore at a time per DC directory.  DsRestoreRegisterW interlocks
    restores, but staging and recovery run outside it: an exclusive flock on
    each directory keeps a second ntdsbackup out (platform.locks: flock on
    POSIX, a lock file's byte-range lock on Windows)."""

    def __init__(self, directories: list[Path]):
        self.locks: list[DirectoryLock] = []
        try:
            for d in sorted(directories):
                try:
                    self.locks.append(DirectoryLock(d))
                except LockHeld:
                    raise DCStateError(f"another restore is running in {d}; nothing was "
                                       "changed") from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        locks = getattr(self, "locks", [])      # __init__ may not have got that far
        while locks:
            locks.pop().release()

    def __enter__(self) -> _DirectoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:          # an interrupted release: the descriptors still close
        self.release()


def _locations(ctx: RestoreContext) -> dict[int, str]:
    locs = {e.bft: e.path for e in parse_multistring(ctx.get_database_locations())}
    missing = {BFT_NTDS_DATABASE, BFT_LOG_DIR, BFT_CHECKPOINT_DIR} - set(locs)
    if missing:
        raise NtdsbackupError(f"DsRestoreGetDatabaseLocationsW lacks {sorted(missing)}")
    return locs


def _directories(locations: dict[int, str],
                 to_local: Callable[[str], Path]) -> tuple[Path, list[Path]]:
    """The database's directory (where the journal lives) and every directory
    the restore writes in, mapped by the provider's own rule (to_local)."""
    db_dir = to_local(locations[BFT_NTDS_DATABASE]).parent
    dirs = {db_dir, to_local(locations[BFT_LOG_DIR]), to_local(locations[BFT_CHECKPOINT_DIR])}
    return db_dir, sorted(dirs)


def restore(archive: ArchiveSource, server: str, *, provider: Provider | None = None,
            identity: Identity | None = None, dry_run: bool = False, threads: int = 0,
            progress: Callable[[RestoreEvent], None] | None = None,
            allow_other_server: bool = False, spool_dir: str | None = None,
            keys: DecryptionKeys | None = None, trust: Trust | None = None) -> RestoreResult:
    """Restore `archive` (a path, '-' for standard input, a binary file
    object, or an s3:// URL) onto the DC `server`, which must be in DSRM.  A
    file object that is not a real file at its start (a BytesIO, a pipe) is
    copied to a private temporary file in spool_dir first, as standard input
    is; an object is read in place (remote_input.py), never spooled.
    dry_run runs every check and returns the plan, changing nothing.
    keys decrypt an age-encrypted archive; trust demands a valid signature
    by one of its keys (checked before anything else is read).
    A restore interrupted earlier on this DC is settled first (see recover)."""
    from ..archive.remote import is_remote

    prov = provider or open_provider()
    emit: Callable[[RestoreEvent], None] = progress or (lambda event: None)
    t0 = time.monotonic()
    # An object is read where it lies (ranged reads, a download per pass):
    # nothing of it is written locally but the staged files themselves.
    opened = RemoteInput(str(archive), keys, trust) if is_remote(archive) else \
        ArchiveInput(archive, spool_dir, keys, trust)
    with opened as inp:
        docs = inp.documents()
        manifest = docs["manifest"]
        plan = RestorePlan(server, inp.label, manifest)
        backed_up = str(manifest.get("server", ""))
        same = backed_up.lower() == server.lstrip("\\").lower()
        if inp.signed is not None:
            plan.checks.append(Check("signature", True,
                                     f"signed by trusted key {inp.signed.key_id}"))
        if inp.plain is not None:
            plan.checks.append(Check("encryption", True, "age; every chunk is authenticated "
                                     "by the verification pass"))
        plan.checks.append(Check("archive server", same or allow_other_server,
                                 f"backup of {backed_up}, restoring onto {server}"))
        if not same and not allow_other_server:
            raise ArchiveError(f"the archive is a backup of {backed_up}, not of {server}; "
                               "refusing to restore another DC's database (give "
                               "--allow-other-server to restore it anyway)")

        if identity is not None:                                        # step 1
            prov.set_auth_identity(identity.user, identity.domain, identity.password)
        if prov.is_ntds_online(server):                                 # step 2
            raise DCStateError(f"the directory service on {server} is running: restart it "
                               "in Directory Services Restore Mode first; nothing was changed")
        plan.checks.append(Check("DC offline", True, "directory service stopped (DSRM)"))
        try:
            token = base64.b64decode(manifest["expiry_token"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise ArchiveError("the manifest has no valid expiry token") from None

        run = _Run(prov, server, inp, docs, plan, token, emit, threads)
        with prov.restore_prepare(server, token) as ctx:                # step 3; 8 on exit
            locations = _locations(ctx)                                  # step 4
            db_dir, dirs = _directories(locations, run.to_local)
            if not os.path.lexists(db_dir / rj.JOURNAL_NAME):
                return run.on(ctx, locations, dry_run, t0)
        # A restore interrupted earlier left its record: settle it (with a
        # handle of its own), then start again on a fresh one.
        recovered = recover(server, provider=prov, progress=emit)
        with prov.restore_prepare(server, token) as ctx:
            result = run.on(ctx, _locations(ctx), dry_run, t0)
        result.recovered = recovered
        return result


class _Run:
    """One restore on one prepared handle: plan, stage, swap."""

    def __init__(self, prov: Provider, server: str, inp: _Input, docs: dict[str, Any],
                 plan: RestorePlan, token: bytes, emit: Callable[[RestoreEvent], None],
                 threads: int):
        self.prov, self.server, self.inp, self.docs = prov, server, inp, docs
        self.to_local = path_mapper(prov)
        self.plan, self.token, self.emit, self.threads = plan, token, emit, threads

    def on(self, ctx: RestoreContext, locations: dict[int, str], dry_run: bool,
           t0: float) -> RestoreResult:
        plan = self.plan
        plan.days_left = token_days_left(self.token)
        plan.checks.append(Check("expiry token", True, "accepted by DsRestorePrepareW" + (
            f", {plan.days_left:.0f} days left" if plan.days_left is not None else "")))
        plan.locations = locations
        plan.checks.append(Check("target locations", True, ", ".join(
            locations[b] for b in (BFT_NTDS_DATABASE, BFT_LOG_DIR))))
        db_dir, dirs = _directories(locations, self.to_local)
        with _DirectoryLock(dirs):
            plan_files(plan, listed_files(self.docs["trailer"]), self.to_local)
            check_log_chain(plan, self.docs["trailer"])
            with self.inp.reader() as fh:
                header = database_header(fh, self.docs["index"], plan.database.name)
            check_required_logs(plan, header)
            check_recorded_verdict(plan, self.docs["trailer"])
            check_space(plan)
            if dry_run:
                self.emit({"event": "phase", "phase": "verify"})
                tv = time.monotonic()
                pages = ArchivePages()
                with self.inp.data() as data:
                    report = read_fd(data, threads=self.threads,
                                     progress=_progress_events(self.emit, "verify"),
                                     pages=pages)
                _integrity_checked(plan, report)
                _pages_checked(plan, pages.verdict(report.trailer))
                return RestoreResult(plan, True, time.monotonic() - t0,
                                     verify_seconds=time.monotonic() - tv)
            try:
                return self._stage_and_swap(ctx, db_dir, dirs, t0)
            except BaseException as exc:
                outcome = _settle(exc, ctx, db_dir, dirs)
                self.emit({"event": "settled", "outcome": outcome,
                           "detail": _OUTCOME_TEXT[outcome]})
                raise

    def _stage_and_swap(self, ctx: RestoreContext, db_dir: Path, dirs: list[Path],
                        t0: float) -> RestoreResult:
        plan = self.plan
        self.emit({"event": "phase", "phase": "stage"})
        ts = time.monotonic()
        rj.sweep(dirs)                 # staging files of a restore killed while staging
        staged: dict[str, str] = {}
        pages = ArchivePages()
        report = _stage(self.inp, plan, staged, self.threads, self.emit, pages)
        _integrity_checked(plan, report)
        _pages_checked(plan, pages.verdict(report.trailer))
        stage_seconds = time.monotonic() - ts

        tw = time.monotonic()
        self.emit({"event": "phase", "phase": "swap"})
        new = [rj.NewFile(str(f.target), staged[f.name], f.size, f.xxh3_128, f.replaces)
               for f in plan.files]
        old = [Path(p) for p in plan.moved_aside] + [f.target for f in plan.files
                                                     if f.replaces]
        journal = rj.Journal.create(db_dir, server=self.server, archive=plan.archive,
                                    token=self.token, register=_register_args(plan),
                                    new=new, old_paths=old)
        _commit_registered(ctx, journal)                            # steps 5, 6, 7
        return RestoreResult(plan, False, time.monotonic() - t0, 0.0, stage_seconds,
                             time.monotonic() - tw)


def _register_args(plan: RestorePlan) -> dict[str, Any]:
    loc = plan.locations
    return {"checkpoint_dir": loc[BFT_CHECKPOINT_DIR], "log_dir": loc[BFT_LOG_DIR],
            "restore_map": [[plan.database.source, loc[BFT_NTDS_DATABASE]]],
            "backup_log_dir": loc[BFT_LOG_DIR], "gen_low": plan.gen_low or 0,
            "gen_high": plan.gen_high or 0}


def _commit_registered(ctx: RestoreContext, journal: rj.Journal) -> None:
    """Register, move, complete, delete the old files: with termination
    signals held back, so a Ctrl-C lands once the DC holds one whole set."""
    with signals.deferred():
        journal.set_state(rj.REGISTERING)
        args = journal.register_args
        ctx.register(args["checkpoint_dir"], args["log_dir"],
                     [tuple(pair) for pair in args["restore_map"]], args["backup_log_dir"],
                     args["gen_low"], args["gen_high"])
        _complete(ctx, journal)


def _complete(ctx: RestoreContext, journal: rj.Journal) -> None:
    """With the restore registered on ctx: every new file in, completion
    reported, the old files deleted."""
    with signals.deferred():
        rj.forward(journal)
        if not ctx.completed:
            ctx.register_complete(0)
        journal.set_state(rj.COMPLETE)
        rj.finish(journal)


_OUTCOME_TEXT = {
    UNCHANGED: "the DC holds its old files; nothing was registered",
    COMPLETED: "the DC holds the archive's files and the restore is registered as complete",
    ROLLED_BACK: "the DC holds its old files; the failure was reported to it, so its "
                 "directory service will not start until a restore completes",
}


def _settle(exc: BaseException, ctx: RestoreContext, db_dir: Path,
            dirs: list[Path]) -> Literal["unchanged", "completed", "rolled-back"]:
    """After `exc` interrupted a restore on `ctx`: leave one whole file set and
    say which.  The record on disk, not this process's memory, says how far
    the restore got (an interruption may fall between any two lines)."""
    journal = rj.Journal.load(db_dir, dirs)
    if journal is None:
        rj.sweep(dirs)
        return COMPLETED if ctx.completed else UNCHANGED
    if ctx.completed or journal.state == rj.COMPLETE:
        # Every file was in place before completion was reported (and the
        # old ones may be partly deleted: moving "forward" again would take
        # a new file for an old one).  Only the deletion remains.
        if journal.state != rj.COMPLETE:
            journal.set_state(rj.COMPLETE)
        rj.finish(journal)
        return COMPLETED
    if ctx.registered and isinstance(exc, KeyboardInterrupt):
        # The DC holds the registration and would not start on its old files:
        # completing the verified, staged set is the way back to a working DC.
        try:
            _complete(ctx, journal)
            return COMPLETED
        except Exception as err:          # the moves themselves failed: undo
            exc = err
    if journal.state != rj.STAGED:
        journal.set_state(rj.ROLLING_BACK)
    rj.rollback(journal)
    if ctx.registered and not ctx.completed:
        with contextlib.suppress(NtdsbackupError):
            ctx.register_complete(failure_hresult(exc))
        return ROLLED_BACK
    return UNCHANGED


def recover(server: str, *, provider: Provider | None = None,
            identity: Identity | None = None,
            progress: Callable[[RestoreEvent], None] | None = None) -> RecoveryResult:
    """Settle a restore of `server` that was killed (SIGKILL, power loss) from
    its record: roll forward if the archive's files were all staged and the
    restore had reached the registration, back otherwise.  Also removes the
    staging files of a restore killed while staging.  The DC must be in DSRM."""
    prov = provider or open_provider()
    emit: Callable[[RestoreEvent], None] = progress or (lambda event: None)
    if identity is not None:
        prov.set_auth_identity(identity.user, identity.domain, identity.password)
    if prov.is_ntds_online(server):
        raise DCStateError(f"the directory service on {server} is running: recovery runs in "
                           "Directory Services Restore Mode")
    with prov.restore_prepare(server, None) as ctx:      # restricted: locations only
        locations = _locations(ctx)
    db_dir, dirs = _directories(locations, path_mapper(prov))
    with _DirectoryLock(dirs):
        result = _recover_locked(prov, server, db_dir, dirs)
    emit(RecoveredEvent(event="recovered", server=result.server, outcome=result.outcome,
                        detail=result.detail, journal=result.journal,
                        journal_state=result.state))
    return result


def _recover_locked(prov: Provider, server: str, db_dir: Path, dirs: list[Path]) -> RecoveryResult:
    journal = rj.Journal.load(db_dir, dirs)
    if journal is None:
        n = rj.sweep(dirs)
        return RecoveryResult(server, "nothing", "no interrupted restore" + (
            f"; removed {n} staging file(s) of a restore killed while staging" if n else ""))
    found = journal.state
    where = str(journal.path)
    if found == rj.COMPLETE:
        rj.finish(journal)
        return RecoveryResult(server, COMPLETED, "the restore had completed; its old files "
                              "are now deleted", where, found)
    if found in (rj.STAGED, rj.ROLLING_BACK):
        rj.rollback(journal)
        return RecoveryResult(server, UNCHANGED, "the restore had not been registered (or "
                              "was being undone): the DC holds its old files again", where,
                              found)
    problems = rj.new_set_problems(journal)
    if problems:
        journal.set_state(rj.ROLLING_BACK)
        rj.rollback(journal)
        raise NtdsbackupError(
            f"the interrupted restore of {server} cannot be completed ({'; '.join(problems)}); "
            "its old files are back in place, but the DC holds a registration that was never "
            "completed: run the restore again")
    with prov.restore_prepare(server, journal.token) as ctx:
        try:
            _commit_registered(ctx, journal)
        except BaseException as exc:
            outcome = _settle(exc, ctx, db_dir, dirs)
            if outcome != COMPLETED:
                raise NtdsbackupError(f"the interrupted restore of {server} could not be "
                                      f"completed: {exc}; {_OUTCOME_TEXT[outcome]}") from exc
            raise
    return RecoveryResult(server, COMPLETED, "the archive's files were all staged and the "
                          "restore registered: completed it (registered again, files moved "
                          "in, old files deleted)", where, found)


def _progress_events(emit: Callable[[RestoreEvent], None],
                     phase: Literal["verify", "stage"]) -> Callable[[MemberResult, int], None]:
    def progress(m: MemberResult, done: int) -> None:
        emit(RestoreProgressEvent(event="progress", phase=phase, name=m.name, done=done,
                                  size=m.size))
    return progress


def _integrity_checked(plan: RestorePlan, report: ReadReport) -> None:
    """Record the full read.  It also ties the read to the plan: the reader
    checks the index's trailer offset against the trailer it found, and the
    members against that trailer, which is the one the plan was made from."""
    plan.checks.append(Check("archive integrity", True,
                             f"{len(report.files)} files, {report.chunk_frames} chunks, "
                             "every chunk hash, file hash and the trailer match"))


def _pages_checked(plan: RestorePlan, verdict: Verdict) -> None:
    """The staged files as the DC's consistency check will see them: refuse
    now, while the DC's own files are untouched, rather than leave a DC that
    cannot start."""
    plan.checks.append(Check("database pages", verdict.ok, verdict.summary_text()))
    if not verdict.ok:
        raise DatabaseDamaged(
            "the archived database or its logs fail the ESE checks, so the DC could not "
            "boot from them; refusing before anything changes: "
            + "; ".join(verdict.problems[:5]), verdict)


def _stage(inp: _Input, plan: RestorePlan, staged: dict[str, str], threads: int,
           emit: Callable[[RestoreEvent], None], pages: ArchivePages) -> ReadReport:
    """The one pass over the archive: every file decompressed into its staging
    file (the engine: frames in parallel, each chunk verified as it is
    written), its whole-file hash checked, given the mode and owner of the
    file it replaces, fsynced; then the trailer and the seek index.  The DC's
    own files are not touched.  staged[name] = staging path."""
    by_name = {f.name: f for f in plan.files}

    def open_member(m: MemberResult) -> Target:
        planned = by_name.get(m.name)
        if planned is None or (planned.bft, planned.source, planned.size) != \
                (m.bft, m.source, m.size):
            raise ArchiveError(f"member {m.name!r} differs from its trailer entry")
        prefix, suffix = rj.staging_name(planned.target)
        fd, path = create_private(planned.target.parent, prefix=prefix, suffix=suffix)
        staged[m.name] = str(path)
        emit({"event": "file", "phase": "stage", "name": m.name, "size": m.size})
        return Target(fd)

    def close_member(m: MemberResult, target: Target) -> None:
        try:
            _copy_ownership(by_name[m.name].target, target.fd)
            os.fsync(target.fd)
        finally:
            os.close(target.fd)

    with inp.data() as data:
        report = read_fd(data, open_member=open_member, close_member=close_member,
                         threads=threads, progress=_progress_events(emit, "stage"), pages=pages)
    for d in plan.directories:
        fsync_dir(d)
    return report


def _copy_ownership(original: Path, fd: int) -> None:
    """A replaced file keeps its mode and owner (the DS's account must still be
    able to open it), taken with lstat from the file itself, never from what a
    symlink there points at; anything else keeps the staging default, 0600."""
    st = regular_mode(original)
    if st is not None:
        copy_mode_and_owner(st, fd)
