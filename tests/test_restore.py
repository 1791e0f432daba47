"""Restore on the emulated DC: the full cycle, refusals before anything
changes, and faults at every step rolled back and reported."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ntdsbackup import errors
from ntdsbackup.emulator.config import Account
from ntdsbackup.phases.backup import Identity, backup
from ntdsbackup.phases.restore import restore

CHUNK = 128 * 1024


def snapshot(dc) -> dict[str, str]:
    """Every file of the DC's NTDS folder (hidden ones too) with its SHA-256."""
    out = {}
    for root, _, files in os.walk(dc.ntds_dir):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, dc.ntds_dir)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def trace(dc) -> list[str]:
    path = dc.path / "calls.log"
    return [line.split()[1] for line in path.read_text().splitlines()] if path.exists() else []


def set_conf(dc, **changes):
    cfg = dc.config()
    for k, v in changes.items():
        if k.startswith("fault_"):
            cfg.set_faults(**{k[6:]: v})
        else:
            setattr(cfg, k, v)
    dc.save_config(cfg)


@pytest.fixture
def backed_up(make_dc, tmp_path):
    """A DC with activity after its backup, now in DSRM: (dc, archive, backed-up files)."""
    dc = make_dc("DC01", size=6 << 20)
    archive = tmp_path / "dc01.tar.zst"
    summary = backup("DC01", archive, chunk_size=CHUNK)
    files = {f["name"].split("/")[1]: f for f in summary.files}
    contents = {name: (dc.ntds_dir / name).read_bytes() for name in files}
    dc.activity(0.05, seed=9)
    dc.stop()
    set_conf(dc, trace=True)
    return dc, archive, contents


def test_full_cycle_backup_activity_restore_start(backed_up):
    dc, archive, contents = backed_up
    assert (dc.ntds_dir / "ntds.dit").read_bytes() != contents["ntds.dit"]   # activity
    result = restore(archive, "DC01")
    assert not result.dry_run and result.plan.total_bytes == sum(map(len, contents.values()))
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data, name
    # Nothing but the restored set: old logs, edb.log and edb.chk were moved
    # aside and then deleted; no staging or aside files are left.
    assert sorted(os.listdir(dc.ntds_dir)) == sorted(contents)
    st = dc.restore_state()
    assert (st.state, st.hr) == ("complete", 0)
    gens = sorted(int(n[3:8], 16) for n in contents if n.startswith("edb"))
    assert (st.gen_low, st.gen_high) == (gens[0], gens[-1])
    assert trace(dc) == ["DsIsNTDSOnlineW", "DsRestorePrepareW",
                         "DsRestoreGetDatabaseLocationsW", "DsBackupFree",
                         "DsRestoreRegisterW", "DsRestoreRegisterComplete", "DsRestoreEnd"]
    report = dc.start()
    assert report["checked"] and report["report"].ok
    assert dc.mode == "online"
    # Recovery attached the database (a new header pair requiring only the new
    # current log); every page and every restored log is as backed up.
    for name, data in contents.items():
        got = (dc.ntds_dir / name).read_bytes()
        if name == "ntds.dit":
            got, data = got[2 * 8192:], data[2 * 8192:]
        assert got == data, name
    # The DC works again: a new backup of it verifies.
    backup("DC01", dc.path.parent / "again.tar.zst", chunk_size=CHUNK)


def test_dry_run_changes_nothing(backed_up):
    dc, archive, _ = backed_up
    before = snapshot(dc)
    result = restore(archive, "DC01", dry_run=True)
    assert result.dry_run and all(c.ok for c in result.plan.checks)
    names = [c.name for c in result.plan.checks]
    for expected in ("DC offline", "expiry token", "target locations", "archive integrity",
                     "log chain", "free space"):
        assert expected in names
    assert result.plan.days_left is not None and 179 < result.plan.days_left <= 180
    assert snapshot(dc) == before and dc.restore_state() is None
    assert "DsRestoreRegisterW" not in trace(dc) and trace(dc)[-1] == "DsRestoreEnd"


def test_restore_from_a_bytesio_is_spooled_and_leaves_no_spool(backed_up, tmp_path):
    dc, archive, contents = backed_up
    spool = tmp_path / "spool"
    spool.mkdir()
    result = restore(io.BytesIO(archive.read_bytes()), "DC01", spool_dir=str(spool))
    assert not result.dry_run and result.plan.archive == "<stream>"
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data, name
    assert os.listdir(spool) == []
    assert dc.start()["report"].ok


def test_restore_from_an_open_file_uses_its_descriptor(backed_up, monkeypatch):
    """A real file at its start is read through its descriptor (nothing
    spooled), and stays open for the caller."""
    dc, archive, contents = backed_up
    with monkeypatch.context() as m:
        m.setattr(tempfile, "mkstemp", _no_spool)
        with open(archive, "rb") as fh:
            result = restore(fh, "DC01")
            assert not fh.closed and fh.seek(0) == 0 and fh.read(4) == archive.read_bytes()[:4]
    assert result.plan.archive == str(archive)
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data, name


def test_restore_from_a_file_past_its_start_reads_from_there(backed_up, tmp_path):
    """The archive is what the file object reads from its position (here
    after a prefix): that is spooled, as a stream is."""
    dc, archive, contents = backed_up
    boxed = tmp_path / "boxed"
    boxed.write_bytes(b"a container's own header" + archive.read_bytes())
    with open(boxed, "rb") as fh:
        fh.seek(len(b"a container's own header"))
        result = restore(fh, "DC01")
    assert result.plan.archive == str(boxed)
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data, name


def _no_spool(*args, **kwargs):
    raise AssertionError("the archive was spooled")


def test_restore_refuses_a_text_stream_and_other_objects(backed_up):
    dc, _, _ = backed_up
    before = snapshot(dc)
    _refused(dc, before, TypeError, restore, io.StringIO("x"), "DC01", match="binary")
    _refused(dc, before, TypeError, restore, 42, "DC01", match="binary file object")


def _refused(dc, before, exc_type, call, *args, match=None, **kw):
    with pytest.raises(exc_type, match=match):
        call(*args, **kw)
    assert snapshot(dc) == before
    assert dc.restore_state() is None
    calls = trace(dc)
    assert "DsRestoreRegisterW" not in calls
    log = dc.path / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    opened = sum("DsRestorePrepareW" in ln and "hr=0x00000000" in ln for ln in lines)
    assert opened == calls.count("DsRestoreEnd")


def test_tampered_archive_is_refused_before_anything_changes(backed_up, tmp_path):
    dc, archive, _ = backed_up
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0x04
    bad = tmp_path / "bad.tar.zst"
    bad.write_bytes(bytes(data))
    _refused(dc, snapshot(dc), errors.ArchiveError, restore, bad, "DC01")


@pytest.mark.parametrize("seed", range(12))
def test_flipped_bit_anywhere_is_refused_or_harmless(backed_up, tmp_path, seed):
    """One flipped bit anywhere, the plan's documents at the end included: the
    restore refuses with nothing changed, or (a bit the restore does not use:
    the seek index's chunk list) restores exactly the backed-up files."""
    import random

    dc, archive, contents = backed_up
    data = bytearray(archive.read_bytes())
    rng = random.Random(seed)
    # Half the seeds aim at the last 4 KiB: the trailer and the seek index.
    pos = rng.randrange(len(data) - 4096, len(data)) if seed % 2 else rng.randrange(len(data))
    data[pos] ^= 1 << rng.randrange(8)
    bad = tmp_path / "flipped.tar.zst"
    bad.write_bytes(bytes(data))
    before = snapshot(dc)
    try:
        restore(bad, "DC01")
    except (errors.ArchiveError, errors.EngineError):
        assert snapshot(dc) == before and dc.restore_state() is None
    else:
        for name, content in contents.items():
            assert (dc.ntds_dir / name).read_bytes() == content, name


def test_truncated_archive_is_refused(backed_up, tmp_path):
    dc, archive, _ = backed_up
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    _refused(dc, snapshot(dc), errors.ArchiveError, restore, cut, "DC01",
             match="incomplete|truncated")


def _wrong_hash(trailer):
    trailer["files"][0]["xxh3_128"] = "0" * 32


def _wrong_size(trailer):
    trailer["files"][-1]["size"] += 8192


def _log_dropped(trailer):
    trailer["files"].pop()
    trailer["log_generations"]["high"] -= 1


def _logs_reordered(trailer):
    trailer["files"][1], trailer["files"][2] = trailer["files"][2], trailer["files"][1]


@pytest.mark.parametrize("edit,match", [
    (_wrong_hash, "whole-file XXH3-128 mismatch"),
    (_wrong_size, "differs from its trailer entry"),
    # The pre-flight reads the archived database's header: it requires the
    # generation the trailer no longer lists.
    (_log_dropped, "could never be recovered: its header requires log generations 3..5, "
                   "the archive lacks 5"),
    (_logs_reordered, "differs from its trailer entry"),
], ids=["file-hash", "size", "log-not-listed", "members-out-of-order"])
def test_lying_trailer_is_refused_before_anything_changes(backed_up, tmp_path, edit, match):
    """Every frame intact, but the trailer the plan is made from lies: the
    staging pass finds out, its files are removed, nothing is registered."""
    from forge import forge_trailer

    dc, archive, _ = backed_up
    forged = tmp_path / "forged.tar.zst"
    forged.write_bytes(forge_trailer(archive.read_bytes(), edit))
    _refused(dc, snapshot(dc), errors.ArchiveError, restore, forged, "DC01", match=match)


def test_archive_of_another_dc_is_refused(backed_up, make_dc, tmp_path):
    dc, _, _ = backed_up
    other = make_dc("DC02", size=2 << 20)
    foreign = tmp_path / "dc02.tar.zst"
    backup("DC02", foreign, chunk_size=CHUNK)
    del other
    _refused(dc, snapshot(dc), errors.ArchiveError, restore, foreign, "DC01",
             match="backup of DC02, not of DC01")


def test_online_dc_is_refused(backed_up):
    dc, archive, _ = backed_up
    dc.start()
    before = snapshot(dc)
    _refused(dc, before, errors.DCStateError, restore, archive, "DC01",
             match="Restore Mode")
    assert trace(dc)[-1] == "DsIsNTDSOnlineW"


def test_expired_token_is_refused(backed_up):
    dc, archive, _ = backed_up
    set_conf(dc, clock_offset=200 * 86400)
    _refused(dc, snapshot(dc), errors.ContentsExpired, restore, archive, "DC01",
             match="tombstone lifetime")


def test_wrong_identity_is_refused(backed_up, provider):
    dc, archive, _ = backed_up
    cfg = dc.config()
    cfg.set_account(Account.create("CORP", "admin", "right", "restore,admin", iterations=1000))
    cfg.set_account(Account.create("CORP", "op", "pw", "backup", iterations=1000))
    dc.save_config(cfg)
    before = snapshot(dc)
    try:
        _refused(dc, before, errors.AccessDenied, restore, archive, "DC01",
                 identity=Identity("admin", "CORP", "wrong"))
        _refused(dc, before, errors.AccessDenied, restore, archive, "DC01",
                 identity=Identity("op", "CORP", "pw"))
        restore(archive, "DC01", identity=Identity("admin", "CORP", "right"))
    finally:
        provider.set_auth_identity(None, None, None)


def _assert_rolled_back(dc, before, hr):
    assert snapshot(dc) == before
    st = dc.restore_state()
    assert st.state == "complete" and st.hr == hr
    calls = trace(dc)
    assert calls.count("DsRestoreRegisterComplete") == 1 and calls[-1] == "DsRestoreEnd"


def _fail_staging(monkeypatch, exc, *, on_call=1, switch=None):
    """Make the engine's n-th staging write (an out_fd) raise `exc` while
    switch["on"] (default: always)."""
    from ntdsbackup.archive import fastread

    real = fastread._ntdsbcli.restore_file
    calls = {"n": 0}

    def failing(in_fd, out_fd, size, name, **kw):
        if out_fd >= 0 and (switch is None or switch["on"]):
            calls["n"] += 1
            if calls["n"] == on_call:
                raise exc
        return real(in_fd, out_fd, size, name, **kw)

    monkeypatch.setattr(fastread._ntdsbcli, "restore_file", failing)


def test_fault_during_staging_changes_nothing_and_registers_nothing(backed_up, monkeypatch):
    """Staging (which is also the verification) runs before DsRestoreRegisterW:
    a fault there removes the staging files and leaves no restore record, so
    the DC still boots on its old database."""
    dc, archive, _ = backed_up
    before = snapshot(dc)
    _fail_staging(monkeypatch, OSError(28, "No space left on device"), on_call=2)
    _refused(dc, before, OSError, restore, archive, "DC01", match="No space")
    assert dc.start()["mode"] == "online"
    assert snapshot(dc) == before


def test_fault_during_the_swap_rolls_back_and_reports(backed_up, monkeypatch):
    dc, archive, _ = backed_up
    before = snapshot(dc)
    _fail_swap(monkeypatch)
    with pytest.raises(OSError, match="Input/output"):
        restore(archive, "DC01")
    _assert_rolled_back(dc, before, 0xC80003FE)     # hrDiskIO


def test_fault_in_register(backed_up):
    dc, archive, _ = backed_up
    set_conf(dc, fault_register_hr=0xC8000711)
    before = snapshot(dc)
    with pytest.raises(errors.HResultError, match="hrPermissionDenied"):
        restore(archive, "DC01")
    assert snapshot(dc) == before and dc.restore_state() is None
    calls = trace(dc)
    # Nothing was registered, so there is nothing to complete; the handle is ended.
    assert "DsRestoreRegisterComplete" not in calls and calls[-1] == "DsRestoreEnd"


def test_interrupt_during_staging_changes_nothing(backed_up, monkeypatch):
    dc, archive, _ = backed_up
    before = snapshot(dc)
    _fail_staging(monkeypatch, KeyboardInterrupt())
    _refused(dc, before, KeyboardInterrupt, restore, archive, "DC01")


def _fail_swap(monkeypatch, *, switch=None):
    """os.replace fails once the old files are aside and one staged file is in."""
    from ntdsbackup.phases import restore_journal

    real_forward = restore_journal.forward

    def forward_then_fail(journal):
        if switch is not None and not switch["on"]:
            return real_forward(journal)
        real_replace = os.replace
        count = {"n": 0}

        def flaky(src, dst):
            count["n"] += 1
            if count["n"] == len(journal.old) + 2:
                raise OSError(5, "Input/output error")
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", flaky)
        try:
            real_forward(journal)
        finally:
            monkeypatch.setattr(os, "replace", real_replace)

    monkeypatch.setattr(restore_journal, "forward", forward_then_fail)


def test_failed_restore_keeps_the_dc_from_starting(backed_up, monkeypatch):
    """A failure after DsRestoreRegisterW is reported with its code: the DC
    refuses to start until a restore completes."""
    dc, archive, _ = backed_up
    broken = {"on": True}
    _fail_swap(monkeypatch, switch=broken)
    with pytest.raises(OSError, match="Input/output"):
        restore(archive, "DC01")
    with pytest.raises(errors.DCStateError, match="reported failure"):
        dc.start()
    broken["on"] = False
    restore(archive, "DC01")            # a good restore clears it
    assert dc.start()["checked"]


def test_staging_files_of_a_killed_restore_are_cleaned_up(backed_up):
    """A restore killed while staging leaves hidden staging files and nothing
    registered; the next restore removes them, whatever their names."""
    dc, archive, contents = backed_up
    stale = [dc.ntds_dir / ".ntds.dit.ntdsb-staging", dc.ntds_dir / ".edb000FF.log.ntdsb-staging"]
    for p in stale:
        p.write_bytes(b"half a file")
    restore(archive, "DC01")
    assert sorted(os.listdir(dc.ntds_dir)) == sorted(contents)


def test_second_restore_at_once_is_refused(backed_up):
    import fcntl

    dc, archive, _ = backed_up
    before = snapshot(dc)
    fd = os.open(dc.ntds_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)       # the first restore
        _refused(dc, before, errors.DCStateError, restore, archive, "DC01",
                 match="another restore is running")
    finally:
        os.close(fd)
    restore(archive, "DC01")


def test_consistency_check_failure_keeps_dc_offline(backed_up):
    dc, archive, _ = backed_up
    restore(archive, "DC01")
    with open(dc.ntds_dir / "ntds.dit", "r+b") as fh:
        fh.seek(8192 * 10 + 100)
        b = fh.read(1)
        fh.seek(8192 * 10 + 100)
        fh.write(bytes([b[0] ^ 3]))        # two bits: beyond what ESE's ECC corrects
    with pytest.raises(errors.DCStateError, match="consistency check failed"):
        dc.start()
    assert dc.mode == "dsrm"


def test_cli_restore_from_stdin_with_json(backed_up):
    dc, archive, contents = backed_up
    with open(archive, "rb") as fh:
        r = subprocess.run([sys.executable, "-m", "ntdsbackup", "restore", "-", "--server",
                            "DC01", "--json"], stdin=fh, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    result = events[-1]
    assert result["event"] == "result" and result["dry_run"] is False
    assert [e["phase"] for e in events if e["event"] == "phase"] == ["stage", "swap"]
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data


def test_cli_dry_run_and_exit_codes(backed_up):
    dc, archive, _ = backed_up
    r = subprocess.run([sys.executable, "-m", "ntdsbackup", "restore", str(archive),
                        "--server", "DC01", "--dry-run"], capture_output=True, text=True)
    assert r.returncode == 0 and "nothing was changed" in r.stdout
    dc.start()
    r = subprocess.run([sys.executable, "-m", "ntdsbackup", "restore", str(archive),
                        "--server", "DC01"], capture_output=True, text=True)
    assert r.returncode == 3 and "Restore Mode" in r.stderr


def test_sigint_while_reading_stdin_changes_nothing(backed_up):
    """Ctrl-C while the archive is still arriving on stdin: exit 130, nothing on the
    DC touched, the spool file removed."""
    import signal
    import tempfile
    import time

    dc, archive, _ = backed_up
    before = snapshot(dc)
    spool = tempfile.mkdtemp()
    proc = subprocess.Popen([sys.executable, "-m", "ntdsbackup", "restore", "-", "--server",
                             "DC01", "--spool-dir", spool], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = archive.read_bytes()
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    while not os.listdir(spool) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert snapshot(dc) == before and dc.restore_state() is None
    assert os.listdir(spool) == []
    assert "DsRestorePrepareW" not in trace(dc)


def test_not_enough_space_is_refused_before_anything_changes(backed_up, monkeypatch):
    dc, archive, _ = backed_up
    before = snapshot(dc)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))
    _refused(dc, before, errors.NtdsbackupError, restore, archive, "DC01",
             match="not enough free space")


def test_backup_restore_cycles_keep_the_dc_bootable(make_dc, tmp_path):
    """create -> backup -> stop -> restore -> start, three times over: after
    each start the database header requires only the new current log, so the
    next backup (whose truncation deletes the replayed logs) restores and
    boots too."""
    from ntdsbackup import ese
    from ntdsbackup.emulator import data as dcdata

    dc = make_dc("DC01", size=4 << 20)
    for cycle in range(3):
        archive = tmp_path / f"cycle{cycle}.tar.zst"
        backup("DC01", archive, chunk_size=CHUNK)
        dc.stop()
        restore(archive, "DC01")
        report = dc.start()
        assert report["checked"] and report["report"].ok, cycle
        h = dcdata._read_dit_header(dc.ntds_dir).header
        current = max(dc.log_generations()) + 1
        assert (h.gen_min_required, h.gen_max_required) == (current, current), cycle
        assert h.dbstate == ese.DBSTATE_DIRTY_SHUTDOWN


def test_archive_whose_database_requires_missing_logs_is_refused(make_dc, tmp_path):
    """A database whose header requires generations the archive does not hold
    could never start: refused in the pre-flight, with nothing changed."""
    from ntdsbackup.emulator import data as dcdata

    dc = make_dc("DC01", size=4 << 20)
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK)
    dc.stop()
    restore(archive, "DC01")
    dc.start()
    # What `dc start` used to leave: the header still requiring the replayed
    # generations, which the next backup's truncation deletes.
    fd = os.open(dc.ntds_dir / "ntds.dit", os.O_RDWR)
    try:
        h = dcdata._read_dit_header(dc.ntds_dir).header
        h.gen_min_required, h.gen_max_required = 3, 5
        dcdata._write_header_pair(fd, h)
    finally:
        os.close(fd)
    stale = tmp_path / "stale.tar.zst"
    # The backup's own checks see it first, and refuse to write it ...
    with pytest.raises(errors.DatabaseDamaged,
                       match=r"missing log generation\(s\) 3, 4, 5 \(database/ntds.dit "
                             r"requires 3\.\.5\)"):
        backup("DC01", stale, chunk_size=CHUNK)
    assert not stale.exists()
    # ... so the archive is made without them, as an older version made it.
    backup("DC01", stale, chunk_size=CHUNK, page_checks=False)
    dc.stop()
    set_conf(dc, trace=True)
    _refused(dc, snapshot(dc), errors.ArchiveError, restore, stale, "DC01",
             match=r"could never be recovered: its header requires log generations 3\.\.5, "
                   r"the archive lacks 3, 4, 5 \(it holds 6\.\.7\)")   # 7: nothing truncated
    with pytest.raises(errors.ArchiveError, match="could never be recovered"):
        restore(stale, "DC01", dry_run=True)


def test_symlinked_database_lends_neither_its_mode_nor_its_target(backed_up, tmp_path):
    """ntds.dit replaced by a symlink to a world-writable file elsewhere: the
    restore replaces the link itself (the file it points at is untouched) and
    the restored database gets the private default, not the target's 0777."""
    dc, archive, contents = backed_up
    outside = tmp_path / "elsewhere.dit"
    outside.write_bytes(b"not the database")
    os.chmod(outside, 0o777)
    dit = dc.ntds_dir / "ntds.dit"
    dit.unlink()
    dit.symlink_to(outside)
    restore(archive, "DC01")
    st = os.lstat(dit)
    assert not os.path.islink(dit) and (st.st_mode & 0o7777) == 0o600
    assert dit.read_bytes() == contents["ntds.dit"]
    assert outside.read_bytes() == b"not the database"
    assert (os.stat(outside).st_mode & 0o7777) == 0o777


def test_replaced_file_keeps_its_own_mode(backed_up):
    dc, archive, _ = backed_up
    os.chmod(dc.ntds_dir / "ntds.dit", 0o640)
    restore(archive, "DC01")
    assert (os.lstat(dc.ntds_dir / "ntds.dit").st_mode & 0o7777) == 0o640


def test_archive_of_the_largest_chunks_restores(make_dc, tmp_path):
    """64 MiB chunks (the largest a backup may choose) are staged one chunk at
    a time, with the same checks, into the same staging files."""
    dc = make_dc("DC01", size=4 << 20)
    archive = tmp_path / "big.tar.zst"
    summary = backup("DC01", archive, chunk_size=64 << 20)
    contents = {f["name"].split("/")[1]: (dc.ntds_dir / f["name"].split("/")[1]).read_bytes()
                for f in summary.files}
    dc.activity(0.05, seed=2)
    dc.stop()
    restore(archive, "DC01")
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data, name
    assert dc.start()["checked"]
