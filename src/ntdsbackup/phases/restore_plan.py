"""The restore plan: what the archive claims, checked against the DC before
anything on it changes.

Made from the trailer (read through the seek index), the DC's locations
(DsRestoreGetDatabaseLocationsW) and the archived database's own header:
where every file goes (by its BFT type, never by a path from the archive),
which old files of the ESE instance it replaces, whether the logs form a
chain that covers what the database requires, and whether the staging files
fit.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import ese
from ..archive.reader import FrameReader, MemberResult
from ..dbcheck.folder import log_generation
from ..errors import ArchiveError, DatabaseDamaged, NtdsbackupError
from ..fsutil import format_size
from ..lists import BFT_CHECKPOINT_DIR, BFT_LOG, BFT_LOG_DIR, BFT_NTDS_DATABASE, BFT_PATCH_FILE

SPACE_MARGIN = 64 << 20       # keep this much free beyond what the staged files need
_PATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.pat$")
# The files of an ESE instance that a restore replaces (the documentation says to
# empty the destination directories; they are moved aside instead).
_ESE_FILES = re.compile(r"^(edb[0-9A-Fa-f]{5}\.log|edb\.log|edb\.chk|edbres\d+\.jrs|"
                        r"edbtmp\.log|res[12]\.log|[A-Za-z0-9_-]+\.pat)$", re.IGNORECASE)
# Enough of the database's first chunks to hold its header and shadow pages.
_DB_HEADER_BYTES = 2 * max(ese.PAGE_SIZES)


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
    xxh3_128: str = ""

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

    @property
    def directories(self) -> list[Path]:
        """Every directory the restore writes in, sorted (the lock order)."""
        return sorted({f.target.parent for f in self.files})

    @property
    def database(self) -> PlannedFile:
        return next(f for f in self.files if f.bft == BFT_NTDS_DATABASE)

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


def token_days_left(token: bytes) -> float | None:
    """Days before the token expires, when its format is known (the emulator's,
    docs/EMULATOR.md); the real ntdsbcli token is opaque."""
    if len(token) == 64 and token[:8] == b"NTDSBEXP":
        when, tombstone = struct.unpack_from("<qI", token, 16)
        return tombstone - (time.time() - when) / 86400
    return None


def listed_files(trailer: dict) -> list[MemberResult]:
    """The files the trailer lists: the plan is made from them before any
    member is read.  Their shape (types, sizes, names that match their source
    paths, no duplicates) was checked when the trailer was read
    (archive/schema.py); what a restore adds is that there must be some."""
    entries = trailer.get("files") or []
    if not entries:
        raise ArchiveError("the trailer lists no files")
    return [MemberResult(e["name"], e["bft"], e["source"], e["size"], str(e.get("xxh3_128", "")))
            for e in entries]


def plan_files(plan: RestorePlan, files: list[MemberResult], to_local) -> None:
    """Choose each file's target by its BFT type and the DC's locations; never
    by a path read from the archive (log and patch names are rebuilt from
    validated patterns).  to_local maps the provider's UNC names to local
    paths."""
    dbs = [f for f in files if f.bft == BFT_NTDS_DATABASE]
    if len(dbs) != 1:
        raise ArchiveError(f"the archive holds {len(dbs)} NTDS databases, expected exactly 1")
    seen: set[Path] = set()
    for f in files:
        base = f.source.replace("/", "\\").rsplit("\\", 1)[-1]
        if f.bft == BFT_NTDS_DATABASE:
            unc = plan.locations[BFT_NTDS_DATABASE]
        elif f.bft == BFT_LOG:
            gen = log_generation(base)
            if gen is None:
                raise ArchiveError(f"log file {f.source!r} is not named edbXXXXX.log")
            unc = plan.locations[BFT_LOG_DIR] + f"\\edb{gen:05X}.log"
        elif f.bft == BFT_PATCH_FILE:
            if not _PATCH_NAME.match(base):
                raise ArchiveError(f"patch file {f.source!r} has an unexpected name")
            unc = plan.locations[BFT_CHECKPOINT_DIR] + "\\" + base
        else:
            raise ArchiveError(f"{f.name}: BFT type 0x{f.bft:02X} cannot be restored")
        target = to_local(unc)
        if target in seen:
            raise ArchiveError(f"two archive members map to {target}")
        seen.add(target)
        plan.files.append(PlannedFile(f.name, f.bft, f.size, f.source, unc, target,
                                      os.path.lexists(target), f.xxh3_128))
    old = sorted({str(d / n) for d in plan.directories for n in os.listdir(d)
                  if _ESE_FILES.match(n) and d / n not in seen})
    plan.moved_aside = old


def archived_generations(plan: RestorePlan) -> list[int]:
    return sorted(g for f in plan.files if f.bft == BFT_LOG
                  if (g := log_generation(f.target.name)) is not None)


def check_log_chain(plan: RestorePlan, trailer: dict) -> None:
    gens = archived_generations(plan)
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


def database_header(fh, index: dict, name: str) -> ese.HeaderPair:
    """The archived database's header and shadow pages, read from its first
    chunk frames through the seek index (each frame verified on its own; no
    other data is decompressed)."""
    entry = next((f for f in index.get("files", []) if isinstance(f, dict)
                  and f.get("name") == name), None)
    offset = entry.get("data_offset") if entry else None
    if not isinstance(offset, int) or offset <= 0:
        raise ArchiveError(f"the seek index gives no data offset for {name}")
    fh.seek(offset)
    got = bytearray()
    for chunk, frame in enumerate(FrameReader(fh, offset=offset)):
        if not frame.header.is_chunk or frame.header.index != chunk:
            break
        got += frame.data
        if len(got) >= _DB_HEADER_BYTES:
            break
    if not got:
        raise ArchiveError(f"the seek index's data offset for {name} holds no file data")
    return ese.read_db_header_pair(bytes(got))


def check_required_logs(plan: RestorePlan, pair: ese.HeaderPair) -> None:
    """The generations the archived database needs to be recovered (its
    header's lGenMinRequired..lGenMaxRequired, and for a streamed backup the
    first generation of bkinfoFullCur) must all be among the archived logs:
    otherwise the restored DC could never start, and saying so now is better
    than after its files were replaced."""
    h = pair.header
    if h is None:
        raise ArchiveError(f"the archived database's header is unreadable: "
                           f"{'; '.join(pair.problems)}")
    gens = set(archived_generations(plan))
    need: list[tuple[int, int, str]] = []
    if h.dbstate != ese.DBSTATE_CLEAN_SHUTDOWN and h.gen_min_required > 0:
        need.append((h.gen_min_required, max(h.gen_min_required, h.gen_max_required),
                     "its header requires"))
    if h.bk_full_cur.gen_low > 0:
        need.append((h.bk_full_cur.gen_low, plan.gen_high or h.bk_full_cur.gen_low,
                     "the backup began at"))
    for lo, hi, why in need:
        missing = [g for g in range(lo, hi + 1) if g not in gens]
        if missing:
            shown = ", ".join(str(g) for g in missing[:10]) + (" ..." if len(missing) > 10
                                                               else "")
            raise ArchiveError(
                f"the archived database could never be recovered: {why} log generations "
                f"{lo}..{hi}, the archive lacks {shown} (it holds {plan.gen_low}.."
                f"{plan.gen_high}); refusing before anything changes")
    detail = ", ".join(f"{why} {lo}..{hi}" for lo, hi, why in need) or \
        "the database was shut down cleanly: no logs required"
    plan.checks.append(Check("required logs", True, f"{detail}; all archived"))


def check_recorded_verdict(plan: RestorePlan, trailer: dict) -> None:
    """What the backup found when it checked every page and log as it
    streamed them (the trailer's "ese"): an archive it recorded as not
    bootable is refused before anything changes.  The staging pass checks
    the pages again (dbcheck) before the DC's files are touched."""
    recorded = trailer.get("ese")
    if not isinstance(recorded, dict):
        plan.checks.append(Check("database at backup", True,
                                 "not recorded (an archive made without page checks)"))
        return
    pages = recorded.get("pages") or {}
    logs = recorded.get("logs") or {}
    detail = (f"{recorded.get('verdict')}: {pages.get('ok', 0) + pages.get('old_format', 0)} "
              f"pages valid, {pages.get('bad', 0)} bad, {pages.get('correctable', 0)} "
              f"correctable; logs {logs.get('low')}..{logs.get('high')}")
    if recorded.get("verdict") != "bootable":
        plan.checks.append(Check("database at backup", False, detail))
        raise DatabaseDamaged(
            "the backup recorded that its database or logs fail the ESE checks, so the DC "
            "could not boot from them; refusing before anything changes: "
            + "; ".join(str(p) for p in (recorded.get("problems") or [])[:5]))
    plan.checks.append(Check("database at backup", True, detail))


def check_space(plan: RestorePlan) -> None:
    need: dict[int, int] = {}
    where: dict[int, Path] = {}
    for f in plan.files:
        dev = os.stat(f.target.parent).st_dev
        need[dev] = need.get(dev, 0) + f.size
        where[dev] = f.target.parent
    for dev, n in need.items():
        # The space available to this user (statvfs f_bavail on POSIX,
        # GetDiskFreeSpaceEx on Windows).
        free = shutil.disk_usage(where[dev]).free
        ok = free >= n + SPACE_MARGIN
        plan.checks.append(Check("free space", ok, f"{format_size(n)} to stage in "
                                 f"{where[dev]}, {format_size(free)} free"))
        if not ok:
            raise NtdsbackupError(f"not enough free space in {where[dev]}: staging needs "
                                  f"{format_size(n + SPACE_MARGIN)}, {format_size(free)} free; "
                                  "nothing was changed")
