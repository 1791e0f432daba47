"""Emulated domain controllers: folders under an emulator root.

``ROOT/<DC>/`` holds ``dc.conf`` (config.py), ``mode`` (``online`` or ``dsrm``),
``NTDS/`` (ntds.dit, edb.chk, edbXXXXX.log, edb.log) and, after a restore,
``restore.state``.  The emulator library (src/emu) serves the ntdsbcli API
over these files; this module creates and manages them.  docs/EMULATOR.md
is the full contract.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..dbcheck.folder import log_generation
from ..errors import DCStateError, NtdsbackupError, format_hresult
from ..fsutil import atomic_write_text, format_size, fsync_dir
from ..platform.processes import pid_alive
from ..platform.signals import deferred
from ..provider_paths import emu_root
from . import data as dcdata
from .config import DCConfig

__all__ = ["EmulatedDC", "RestoreState", "status_text", "use_emu_root"]

ONLINE = "online"
DSRM = "dsrm"
# Server names become folder names: no separators, no underscore (the API
# refuses underscores), nothing that escapes the root.
_BAD_NAME = re.compile(r"[\\/_:*?\"<>|\x00-\x1f]")
# Free space kept beyond what a new DC needs: the file system's own
# metadata, and room for the configuration and journal files written later.
SPACE_MARGIN = 64 << 20


def use_emu_root(root: os.PathLike | str) -> Path:
    """Point this process (and the emulator library it loads) at `root`."""
    path = Path(root).resolve()
    os.environ["NTDSB_EMU_ROOT"] = str(path)
    return path


def strip_server(server: str) -> str:
    """'\\\\DC01' -> 'DC01' (leading backslashes are optional in the API)."""
    return server.lstrip("\\")


@dataclass
class RestoreState:
    """ROOT/<DC>/restore.state, written by DsRestoreRegisterW/RegisterComplete."""

    state: str
    hr: int
    gen_low: int | None
    gen_high: int | None
    fields: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> RestoreState | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key != "map":
                fields[key] = value

        def num(key):
            return int(fields[key], 0) if fields.get(key) else None

        return cls(fields.get("state", "?"), num("hr") or 0, num("gen_low"), num("gen_high"),
                   fields)


class EmulatedDC:
    """One emulated DC, ``root/name``."""

    def __init__(self, name: str, root: os.PathLike | str | None = None):
        name = strip_server(name)
        if not name or _BAD_NAME.search(name) or name in (".", ".."):
            raise ValueError(f"invalid DC name {name!r}: letters, digits and '-' only, no '_'")
        self.name = name
        self.root = emu_root(root)
        self.path = self.root / name
        self.ntds_dir = self.path / "NTDS"

    # -- files ----------------------------------------------------------------
    @property
    def conf_path(self) -> Path:
        return self.path / "dc.conf"

    def exists(self) -> bool:
        return self.conf_path.is_file()

    def _require(self) -> None:
        if not self.exists():
            raise NtdsbackupError(f"no emulated DC {self.name!r} under {self.root}")

    def config(self) -> DCConfig:
        self._require()
        return DCConfig.load(self.conf_path)

    def save_config(self, cfg: DCConfig) -> None:
        cfg.save(self.conf_path)

    @property
    def mode(self) -> str:
        try:
            value = (self.path / "mode").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return ONLINE
        return value or ONLINE

    def _set_mode(self, mode: str) -> None:
        atomic_write_text(self.path / "mode", mode + "\n")

    def restore_state(self) -> RestoreState | None:
        return RestoreState.load(self.path / "restore.state")

    # -- life cycle -------------------------------------------------------------
    def create(self, size: int, *, page_size: int = 8192, seed: int = 0,
               from_file: os.PathLike | str | None = None, domain: str = "CORP",
               tombstone_days: int = 180, log_size: int | None = None,
               log_count: int | None = None, force: bool = False) -> None:
        """Write the DC's folder: dc.conf, mode=online and NTDS/ with real ESE files.

        The DC is built in a hidden staging folder ``.NAME.creating<pid>``
        and renamed into place when complete; the staging folder is removed
        on every failure and signal, and one left by a killed process is
        removed by the next create of that name.  Free space is checked
        before anything is written."""
        replacing = self.path.exists()
        if replacing and not force:
            raise NtdsbackupError(f"{self.path} already exists (use --force to replace it)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_staging()
        dit_size = os.stat(from_file).st_size if from_file is not None else size
        logs = (log_size or dcdata.default_log_size(dit_size)) * (
            (log_count if log_count is not None else dcdata.DEFAULT_LOG_COUNT) + 1)
        # The DC being replaced is removed first: its space counts as free.
        self._check_space(dit_size, logs, _tree_bytes(self.path) if replacing else 0)
        if replacing:
            shutil.rmtree(self.path)
        staging = self.root / f".{self.name}.creating{os.getpid()}"
        try:
            if staging.exists():
                shutil.rmtree(staging)      # this pid's, so from a process long gone
            (staging / "NTDS").mkdir(parents=True)
            kwargs = {}
            if log_size is not None:
                kwargs["log_size"] = log_size
            if log_count is not None:
                kwargs["log_count"] = log_count
            if from_file is not None:
                dcdata.create_from_file(staging / "NTDS", Path(from_file), **kwargs)
            else:
                dcdata.create_ntds(staging / "NTDS", size, page_size=page_size, seed=seed,
                                   **kwargs)
            DCConfig(name=self.name, domain=domain, tombstone_days=tombstone_days).save(
                staging / "dc.conf")
            atomic_write_text(staging / "mode", ONLINE + "\n")
            with deferred():
                os.replace(staging, self.path)
                fsync_dir(self.root)
        except BaseException:
            with deferred():            # a second signal must not cut the cleanup short
                shutil.rmtree(staging, ignore_errors=True)
            raise

    def _remove_stale_staging(self) -> None:
        """Staging folders of this name whose process is gone (killed with no
        chance to clean up)."""
        pattern = re.compile(re.escape(f".{self.name}.creating") + r"(\d+)")
        for entry in os.scandir(self.root):
            m = pattern.fullmatch(entry.name)
            if m and entry.is_dir(follow_symlinks=False) and not pid_alive(int(m.group(1))):
                shutil.rmtree(entry.path, ignore_errors=True)

    def _check_space(self, dit_size: int, log_bytes: int, reclaimed: int = 0) -> None:
        need = dit_size + log_bytes + SPACE_MARGIN
        free = shutil.disk_usage(self.root).free + reclaimed
        if need > free:
            exc = OSError(f"not enough free space under {self.root}: the DC needs "
                          f"{format_size(need)} (database {format_size(dit_size)}, logs "
                          f"{format_size(log_bytes)}, margin {format_size(SPACE_MARGIN)}), "
                          f"{format_size(free)} free")
            exc.errno = errno.ENOSPC
            raise exc

    def stop(self) -> None:
        """Reboot into Directory Services Restore Mode (the DS stops)."""
        self._require()
        self._set_mode(DSRM)

    def start(self) -> dict:
        """Boot normally.  After a registered restore, run the consistency check
        a real DC runs first; on failure stay in DSRM and raise DCStateError."""
        self._require()
        if self.mode == ONLINE:
            return {"mode": ONLINE, "checked": False}
        rs = self.restore_state()
        if rs is None:
            self._set_mode(ONLINE)
            return {"mode": ONLINE, "checked": False}
        if rs.state != "complete":
            raise DCStateError(
                f"{self.name}: a restore was registered but never completed "
                "(DsRestoreRegisterComplete was not called); the directory service "
                "will not start. If a restore was killed, `ntdsbackup restore --recover "
                f"--server {self.name}` completes or undoes it; otherwise run the restore "
                "again.")
        if rs.hr != 0:
            raise DCStateError(
                f"{self.name}: the last restore reported failure {format_hresult(rs.hr)}; "
                "the directory service will not start until a valid database is restored.")
        report = dcdata.check_consistency(self.ntds_dir, gen_low=rs.gen_low,
                                          gen_high=rs.gen_high)
        if not report.ok:
            problems = "\n  ".join(report.problems[:20])
            raise DCStateError(
                f"{self.name}: consistency check failed; staying in DSRM:\n  {problems}")
        # Recovery replayed the logs: the DS opens a new current log and checkpoint.
        dcdata.finish_recovery(self.ntds_dir)
        # The restore is consumed: keep its record for the operator, then boot.
        done = self.path / "restore.state"
        os.replace(done, self.path / f"restore.done.{int(time.time())}")
        fsync_dir(self.path)
        self._set_mode(ONLINE)
        return {"mode": ONLINE, "checked": True, "report": report}

    def activity(self, fraction: float, seed: int | None = None) -> dict:
        """Simulate a running DC: rewrite `fraction` of the pages, add log generations."""
        self._require()
        if self.mode != ONLINE:
            raise DCStateError(f"{self.name} is in DSRM: only a running DC has activity")
        if not 0 < fraction <= 1:
            raise ValueError("the fraction of pages must be in (0, 1]")
        return dcdata.activity(self.ntds_dir, fraction,
                               seed if seed is not None else int(time.time()))

    # -- reporting --------------------------------------------------------------
    def log_generations(self) -> list[int]:
        return sorted(g for entry in os.listdir(self.ntds_dir)
                      if (g := log_generation(entry)) is not None)

    def status(self) -> dict:
        cfg = self.config()
        rs = self.restore_state()
        dit = self.ntds_dir / "ntds.dit"
        out = {
            "name": self.name,
            "path": str(self.path),
            "mode": self.mode,
            "online": self.mode == ONLINE,
            "domain": cfg.domain,
            "tombstone_days": cfg.tombstone_days,
            "clock_offset": cfg.clock_offset,
            "accounts": [f"{a.domain}\\{a.user}" for a in cfg.accounts],
            "default_privileges": list(cfg.default_privileges),
            "faults": dict(cfg.faults),
            "restore": None if rs is None else {"state": rs.state, "hr": rs.hr,
                                                 "gen_low": rs.gen_low,
                                                 "gen_high": rs.gen_high},
            "database": dcdata.describe(self.ntds_dir) if dit.exists() else None,
        }
        return out


def _tree_bytes(path: Path) -> int:
    """Disk space held by the files below `path` (allocated blocks where known)."""
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += getattr(st, "st_blocks", st.st_size // 512) * 512
    return total


def status_text(st: dict) -> str:
    """A readable rendering of EmulatedDC.status()."""
    mode = "online (directory service running)" if st["online"] else \
        "DSRM (directory service stopped, restore mode)"
    lines = [f"DC {st['name']}  {mode}", f"  folder      {st['path']}",
             f"  domain      {st['domain']}   tombstone lifetime {st['tombstone_days']} days"]
    db = st.get("database")
    if db:
        lines.append(f"  ntds.dit    {format_size(db['size'])}, {db['page_size']}-byte pages, "
                     f"{db['pages']} pages, dbstate {db['dbstate_name']}")
        lines.append(f"  logs        generations {db['log_low']}..{db['log_high']} closed, "
                     f"current {db['log_current']}, checkpoint at {db['checkpoint_gen']}")
    else:
        lines.append("  ntds.dit    missing")
    if st["accounts"]:
        lines.append(f"  accounts    {', '.join(st['accounts'])}")
    if st["faults"]:
        lines.append("  faults      " + ", ".join(f"{k}={v}" for k, v in st["faults"].items()))
    if st["clock_offset"]:
        lines.append(f"  clock       offset {st['clock_offset']} s")
    rs = st.get("restore")
    if rs:
        lines.append(f"  restore     {rs['state']} (hr 0x{rs['hr']:08X}), "
                     f"logs {rs['gen_low']}..{rs['gen_high']}")
    return "\n".join(lines)

