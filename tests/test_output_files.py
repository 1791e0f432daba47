"""Every file the tool creates is created exclusively, private, under an
unpredictable name, then renamed: a symlink or a file planted by someone who
can write to the output folder is never followed, truncated or replaced
(issue 9, section 2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dctools import cli, enable_trace, fingerprint, listing, no_traceback, trace_calls
from ntdsbackup.archive import extract
from ntdsbackup.fsutil import atomic_write_bytes, atomic_write_text
from ntdsbackup.phases.backup import backup
from ntdsbackup.platform.files import FileExists

CHUNK = 64 * 1024


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside every output folder that a planted symlink points at."""
    path = tmp_path / "victim" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(b"must never be written\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    return path


@pytest.fixture
def archive(dc, tmp_path) -> Path:
    path = tmp_path / "a.tar.zst"
    backup("DC01", path, chunk_size=CHUNK, truncate=False)
    return path


# -- backup -o ---------------------------------------------------------------------


def test_backup_never_writes_through_a_planted_partial_symlink(dc, tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    final = out / "DC01.tar.zst"
    before = fingerprint(victim)
    (out / "DC01.tar.zst.partial").symlink_to(victim)
    r = cli("backup", "--server", "DC01", "-o", final, "--chunk-size", "64KiB")
    assert r.returncode == 0, r.stderr
    assert fingerprint(victim) == before
    st = os.lstat(final)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_backup_refuses_an_existing_output_before_asking_the_dc(dc, tmp_path, victim):
    enable_trace(dc)
    final = tmp_path / "DC01.tar.zst"
    final.write_bytes(b"an older archive\n")
    before = fingerprint(final)
    r = cli("backup", "--server", "DC01", "-o", final, text=True)
    assert r.returncode == 2, r.stderr
    assert "--overwrite" in r.stderr and no_traceback(r.stderr)
    assert fingerprint(final) == before
    assert trace_calls(dc) == []                  # not even DsIsNTDSOnlineW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DC01.tar.zst", "emu", "victim"]


def test_backup_refuses_a_dangling_symlink_as_output(dc, tmp_path):
    final = tmp_path / "DC01.tar.zst"
    final.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExists):
        backup("DC01", final, chunk_size=CHUNK)
    assert final.is_symlink() and not (tmp_path / "nowhere").exists()


def test_backup_overwrite_replaces_a_symlink_never_its_target(dc, tmp_path, victim):
    final = tmp_path / "DC01.tar.zst"
    final.symlink_to(victim)
    before = fingerprint(victim)
    r = cli("backup", "--server", "DC01", "-o", final, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert fingerprint(victim) == before
    assert not final.is_symlink() and stat.S_IMODE(final.stat().st_mode) == 0o600
    assert cli("verify", final).returncode == 0


def test_backup_refuses_a_name_taken_during_the_backup(dc, tmp_path):
    """Checked up front and again, atomically, when the archive is renamed."""
    enable_trace(dc)
    final = tmp_path / "DC01.tar.zst"

    def plant(event):
        if event["event"] == "file" and not final.exists():
            final.write_bytes(b"someone else's file\n")

    with pytest.raises(FileExists):
        backup("DC01", final, chunk_size=CHUNK, progress=plant)
    assert final.read_bytes() == b"someone else's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DC01.tar.zst", "emu"]
    calls = trace_calls(dc)
    assert calls.count("DsBackupEnd") == 1 and "DsBackupTruncateLogs" not in calls


def test_backup_temporary_name_is_hidden_and_unpredictable(dc, tmp_path, monkeypatch):
    final = tmp_path / "DC01.tar.zst"
    seen = []

    def look(event):
        if event["event"] == "file":
            seen.extend(p.name for p in tmp_path.iterdir() if p.name not in ("emu",))

    backup("DC01", final, chunk_size=CHUNK, progress=look)
    temps = [n for n in seen if n != "DC01.tar.zst"]
    assert temps and all(n.startswith(".DC01.tar.zst.") and n != ".DC01.tar.zst.partial"
                         for n in temps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DC01.tar.zst", "emu"]


# -- extract -----------------------------------------------------------------------


def test_extract_never_writes_through_a_planted_partial_symlink(archive, tmp_path, victim):
    target = tmp_path / "x"
    (target / "database").mkdir(parents=True)
    (target / "database" / "ntds.dit.partial").symlink_to(victim)
    before = fingerprint(victim)
    r = cli("extract", archive, target)
    assert r.returncode == 0, r.stderr
    assert fingerprint(victim) == before
    st = os.lstat(target / "database" / "ntds.dit")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_extract_files_are_private_whatever_the_umask(archive, tmp_path):
    old = os.umask(0)
    try:
        extract(archive, tmp_path / "x")
    finally:
        os.umask(old)
    for name in listing(tmp_path / "x"):
        st = os.lstat(tmp_path / "x" / name)
        expect = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        assert stat.S_IMODE(st.st_mode) == expect, name


def test_extract_refuses_an_existing_file_unless_overwrite(archive, tmp_path):
    target = tmp_path / "x"
    (target / "database").mkdir(parents=True)
    existing = target / "database" / "ntds.dit"
    existing.write_bytes(b"an older database\n")
    before = fingerprint(existing)
    r = cli("extract", archive, target, text=True)
    assert r.returncode == 2 and "--overwrite" in r.stderr and no_traceback(r.stderr)
    assert fingerprint(existing) == before
    assert listing(target) == ["database", "database/ntds.dit"]
    r = cli("extract", archive, target, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert existing.read_bytes() != b"an older database\n"
    assert not [n for n in listing(target) if n.split("/")[-1].startswith(".")]


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_extract_refuses_a_symlinked_log_before_writing_anything(archive, tmp_path, victim,
                                                                 source):
    """A log is listed only in the trailer: a seekable archive is checked
    up front from its trailer, a stream when the log's turn comes; either
    way no final name is written."""
    target = tmp_path / "x"
    logs = extract(archive, tmp_path / "first").files[1:]
    (target / "logs").mkdir(parents=True)
    planted = target / logs[-1].name
    planted.symlink_to(victim)
    before = fingerprint(victim)
    if source == "file":
        r = cli("extract", archive, target, text=True)
    else:
        with open(archive, "rb") as fh:
            r = cli("extract", "-", target, stdin=fh, text=True)
    assert r.returncode == 2 and "--overwrite" in r.stderr, r.stderr
    assert fingerprint(victim) == before and planted.is_symlink()
    assert listing(target) == ["logs", f"{logs[-1].name}"]
    r = cli("extract", archive, target, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert fingerprint(victim) == before
    assert not planted.is_symlink() and stat.S_ISREG(os.lstat(planted).st_mode)


def test_extract_never_writes_below_a_symlinked_directory(archive, tmp_path):
    target = tmp_path / "x"
    target.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (target / "database").symlink_to(elsewhere)
    r = cli("extract", archive, target, text=True)
    assert r.returncode == 2, r.stderr
    assert "symbolic link" in r.stderr and "--overwrite" in r.stderr and no_traceback(r.stderr)
    assert listing(elsewhere) == [] and (target / "database").is_symlink()
    r = cli("extract", archive, target, "--overwrite", text=True)
    assert r.returncode == 0, r.stderr
    assert listing(elsewhere) == []
    assert not (target / "database").is_symlink() and (target / "database" / "ntds.dit").is_file()


def test_extract_into_a_directory_that_is_itself_a_symlink(archive, tmp_path):
    """DIR is the user's choice: it may be a link."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    report = extract(archive, tmp_path / "link")
    assert (real / report.files[0].name).is_file()


def test_failed_extract_leaves_nothing(archive, tmp_path):
    broken = tmp_path / "broken.tar.zst"
    data = archive.read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])
    target = tmp_path / "x"
    for pure in ("", "--pure"):
        r = cli("extract", broken, target, *([pure] if pure else []), text=True)
        assert r.returncode == 5, r.stderr
        assert listing(target) == [], listing(target)


# -- the emulator's small files ----------------------------------------------------


def test_atomic_write_never_follows_a_planted_temporary_name(tmp_path, victim):
    final = tmp_path / "mode"
    (tmp_path / f".mode.tmp{os.getpid()}").symlink_to(victim)
    before = fingerprint(victim)
    atomic_write_text(final, "dsrm\n")
    assert fingerprint(victim) == before and final.read_text() == "dsrm\n"


def test_atomic_write_replaces_a_symlink_at_the_final_name(tmp_path, victim):
    final = tmp_path / "dc.conf"
    final.symlink_to(victim)
    before = fingerprint(victim)
    old = os.umask(0)
    try:
        atomic_write_bytes(final, b"format=1\n", mode=0o644)
    finally:
        os.umask(old)
    assert fingerprint(victim) == before
    assert not final.is_symlink() and stat.S_IMODE(final.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dc.conf", "victim"]
