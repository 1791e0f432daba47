"""Every emulator fault x every phase of backup and restore x {SIGINT,
SIGTERM, SIGKILL}: the command ends with its documented exit code, leaves no
file under a final name that is not whole, ends every handle it opened,
leaves nothing in progress on the DC, and the DC's files are unchanged or one
whole set (after `restore --recover` when the process was killed)."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dctools import snapshot
from ntdsbackup import open_provider
from ntdsbackup.archive import verify
from ntdsbackup.phases.backup import backup
from ntdsbackup.phases.restore import recover, restore

CHUNK = 64 * 1024
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
FAULTS = {
    "none": {},
    "read-error": {"read_after": 96 << 10, "read_hr": 0xC80003FE},
    "short-reads": {"short_read": 5000},
    "latency": {"latency_us": 300},
    "bandwidth": {"bandwidth": 40 << 20},
    "goes-offline": {"offline_after": 160 << 10},
    "truncate-fails": {"truncate_hr": 0xC8000711},
    "register-fails": {"register_hr": 0xC8000711},
}
# Where the signal is sent: the first time (the nth time) a function of the
# package with this name is entered, or a line starting with this text runs.
BACKUP_PHASES = {
    "prepared": ("call", "open", 1),                  # the handle is open, nothing written
    "database": ("call", "on_progress", 3),           # in the middle of ntds.dit
    "logs": ("call", "file", 2),                      # the first log file
    "trailer": ("call", "finish", 1),                 # every file written, trailer next
    "truncate": ("line", "ctx.truncate_logs()", 1),   # the archive committed
}
RESTORE_PHASES = {
    "preflight": ("call", "check_space", 1),
    "staging": ("call", "open_member", 2),
    "registering": ("call", "_commit_registered", 1),
    "moving": ("call", "forward", 1),
    "deleting-old": ("call", "finish", 1),
}
_CHILD = textwrap.dedent("""
    import linecache, os, sys
    from ntdsbackup.cli import main
    kind, what, nth, sig = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    pkg = os.path.dirname(__import__("ntdsbackup").__file__)
    seen = [0]
    def fire():
        seen[0] += 1
        if seen[0] == nth:
            sys.settrace(None)
            sys.stderr.write("MATRIX-SIGNAL\\n")
            sys.stderr.flush()
            os.kill(os.getpid(), sig)
    def local(frame, event, arg):
        if event == "line" and linecache.getline(frame.f_code.co_filename,
                                                 frame.f_lineno).strip().startswith(what):
            fire()
        return local
    def tracer(frame, event, arg):
        if not frame.f_code.co_filename.startswith(pkg):
            return None
        if kind == "call":
            if frame.f_code.co_name == what:
                fire()
            return None
        return local
    sys.settrace(tracer)
    sys.exit(main(sys.argv[5:]))
""")


def _handles_balanced(dc, prefix: str, killed: bool) -> None:
    """Every handle that was opened was ended once (a killed process's aside)."""
    log = dc.path / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    pids = {ln.split()[0] for ln in lines}
    for pid in pids:
        mine = [ln.split() for ln in lines if ln.split()[0] == pid]
        opened = sum(f[1] == f"{prefix}PrepareW" and f[3] == "hr=0x00000000" for f in mine)
        ended = sum(f[1] == f"{prefix}End" for f in mine)
        if killed and opened > ended:
            continue            # the killed process (the only one that may fall short)
        assert opened == ended, (pid, opened, ended, [f[1] for f in mine])


def _set(dc, faults: dict) -> None:
    cfg = dc.config()
    cfg.faults.clear()
    cfg.set_faults(**faults)
    cfg.trace = True
    dc.save_config(cfg)


def _run(kind, what, nth, signum, argv, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CHILD, kind, what, str(nth), str(signum),
                           *argv], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def world(make_dc, emu_root, tmp_path):
    dc = make_dc("DC01", size=1 << 20, log_size=128 << 10, log_count=2)
    archive = tmp_path / "dc01.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK)
    dc.activity(0.05, seed=1)
    online = tmp_path / "online"
    shutil.copytree(dc.path, online)
    dc.stop()
    dsrm = tmp_path / "dsrm"
    shutil.copytree(dc.path, dsrm)
    old = snapshot(dc.ntds_dir)
    restore(archive, "DC01")
    new = snapshot(dc.ntds_dir)
    env = {**os.environ, "NTDSB_EMU_ROOT": str(emu_root)}
    return {"dc": dc, "archive": archive, "online": online, "dsrm": dsrm, "old": old,
            "new": new, "env": env, "tmp": tmp_path}


def _ended(r, fault, phase, signame) -> tuple[bool, bool, tuple]:
    """(the signal was sent, it was SIGKILL, the case for messages); a signal
    that was sent ended the command with 128 + its number (or killed it),
    without a traceback."""
    fired = "MATRIX-SIGNAL" in r.stderr
    case = (fault, phase, signame, r.returncode, r.stderr[-600:])
    if fired:
        assert r.returncode == {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}[signame], case
        assert "Traceback" not in r.stderr, case
    return fired, fired and signame == "SIGKILL", case


def _reset(dc, template: Path) -> None:
    shutil.rmtree(dc.path)
    shutil.copytree(template, dc.path)


def _backup_case(w, fault, phase, signame, counts) -> None:
    dc, tmp = w["dc"], w["tmp"]
    _reset(dc, w["online"])
    _set(dc, FAULTS[fault])
    before = snapshot(dc.ntds_dir)
    out = tmp / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    final = out / "DC01.tar.zst"
    kind, what, nth = BACKUP_PHASES[phase]
    r = _run(kind, what, nth, SIGNALS[signame],
             ["backup", "--server", "DC01", "-o", str(final), "--chunk-size", "64KiB"],
             w["env"])
    fired, killed, case = _ended(r, fault, phase, signame)
    if not fired:
        # The fault ended the backup before the signal's moment came.
        assert fault in ("read-error", "goes-offline") and r.returncode in (3, 6), case
    if final.exists():
        # Only a whole, committed archive has the final name.
        assert phase == "truncate" and fired, case
        verify(final)
    visible = [n for n in os.listdir(out) if not n.startswith(".")]
    assert visible in ([], [final.name]), case
    if not killed:
        assert sorted(os.listdir(out)) == visible, case      # no temporary file left
    _handles_balanced(dc, "DsBackup", killed)
    # Nothing in progress on the DC: a new backup can start at once (once a DC
    # that the fault took offline is back).
    if dc.mode != "online":
        assert fault == "goes-offline", case
        dc.start()
    ctx = open_provider().backup_prepare("DC01")
    ctx.end()
    after = snapshot(dc.ntds_dir)
    if not final.exists():
        # Nothing of the DC lost: every file as it was, but the current log,
        # which DsBackupGetBackupLogsW rolls (as a DC does); logs are only
        # truncated once the archive is committed.
        kept = {k: v for k, v in before.items() if k != "edb.log"}
        assert {k: after.get(k) for k in kept} == kept, case
    counts[("backup", "signal" if fired else "fault first", r.returncode)] += 1


def _restore_case(w, fault, phase, signame, counts) -> None:
    dc = w["dc"]
    _reset(dc, w["dsrm"])
    _set(dc, FAULTS[fault])
    kind, what, nth = RESTORE_PHASES[phase]
    r = _run(kind, what, nth, SIGNALS[signame],
             ["restore", str(w["archive"]), "--server", "DC01"], w["env"])
    fired, killed, case = _ended(r, fault, phase, signame)
    if not fired:
        assert fault == "register-fails" and r.returncode == 6, case
    if killed:
        recover("DC01")
    snap = snapshot(dc.ntds_dir)
    st = dc.restore_state()
    if snap == w["new"]:
        assert st is not None and (st.state, st.hr) == ("complete", 0), case
        which = "new"
    else:
        assert snap == w["old"], case
        assert st is None, case
        which = "old"
    _handles_balanced(dc, "DsRestore", killed)
    counts[("restore", "signal" if fired else "fault first", r.returncode, which)] += 1


def test_fault_phase_signal_matrix(world, capsys):
    counts: collections.Counter = collections.Counter()
    for fault in FAULTS:
        for signame in SIGNALS:
            for phase in BACKUP_PHASES:
                _backup_case(world, fault, phase, signame, counts)
            for phase in RESTORE_PHASES:
                _restore_case(world, fault, phase, signame, counts)
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\n  fault matrix: {len(FAULTS)} faults x "
              f"{len(BACKUP_PHASES) + len(RESTORE_PHASES)} phases x {len(SIGNALS)} signals "
              f"= {total} runs")
        for key, n in sorted(counts.items(), key=str):
            print(f"    {n:4d}  {' / '.join(map(str, key))}")
    assert total == len(FAULTS) * len(SIGNALS) * (len(BACKUP_PHASES) + len(RESTORE_PHASES))
