"""SIGINT, SIGTERM and SIGHUP alike in every command: cleanup, the handle
ended exactly once, exit 128 + N (issue 9, section 4).  Each test waits for
an observable sign that the command is mid-way (a temporary file, bytes
taken from a pipe), never for a length of time."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from dctools import (
    enable_trace,
    listing,
    no_traceback,
    popen,
    set_faults,
    trace_calls,
    wait_for,
)
from ntdsbackup.phases.backup import backup

SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"),
           pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
           pytest.param(signal.SIGHUP, 129, id="SIGHUP")]


def _finish(proc, err_path) -> str:
    proc.wait(timeout=60)
    return err_path.read_text()


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_backup_signal_cleans_up_and_ends_the_handle(make_dc, tmp_path, signum, code):
    dc = make_dc("DC01", size=16 << 20)
    enable_trace(dc)
    set_faults(dc, bandwidth=4 << 20)          # a few seconds for the database
    out = tmp_path / "out"
    out.mkdir()
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        proc = popen("backup", "--server", "DC01", "-o", out / "a.tar.zst", "--chunk-size",
                     "256KiB", stdout=subprocess.DEVNULL, stderr=fh)
    wait_for(lambda: any(out.iterdir()), "the archive's temporary file")
    wait_for(lambda: "DsBackupRead" in trace_calls(dc), "the first DsBackupRead")
    proc.send_signal(signum)
    text = _finish(proc, err)
    assert proc.returncode == code, text
    assert "interrupted" in text and no_traceback(text)
    assert listing(out) == []
    calls = trace_calls(dc)
    assert calls.count("DsBackupEnd") == 1 and calls[-1] == "DsBackupEnd"
    assert "DsBackupTruncateLogs" not in calls


@pytest.fixture
def big_archive(make_dc, tmp_path):
    """An archive several times the size of a pipe's buffer."""
    make_dc("DC01", size=16 << 20)
    path = tmp_path / "a.tar.zst"
    backup("DC01", path, chunk_size=256 << 10, truncate=False)
    return path.read_bytes()


def _feed_half(proc, data: bytes) -> None:
    # The write returns once the reader has taken all but a pipe's buffer of
    # it: the command is then mid-way through the archive.
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_extract_signal_removes_every_temporary_file(big_archive, tmp_path, signum, code):
    target = tmp_path / "x"
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        proc = popen("extract", "-", target, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                     stderr=fh)
    _feed_half(proc, big_archive)
    wait_for(lambda: target.is_dir() and listing(target), "the first temporary file")
    proc.send_signal(signum)
    text = _finish(proc, err)
    proc.stdin.close()
    assert proc.returncode == code, text
    assert "interrupted" in text and no_traceback(text)
    assert listing(target) == []


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_verify_signal_exit_code(big_archive, tmp_path, signum, code):
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        proc = popen("verify", "-", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                     stderr=fh)
    _feed_half(proc, big_archive)
    proc.send_signal(signum)
    text = _finish(proc, err)
    proc.stdin.close()
    assert proc.returncode == code, text
    assert "interrupted" in text and no_traceback(text)


@pytest.fixture
def big_age_archive(make_dc, tmp_path):
    """An encrypted archive several times a pipe's buffer, and its identity file."""
    from ntdsbackup.crypto import X25519Identity, write_identity_file

    make_dc("DC03", size=16 << 20)
    identity = X25519Identity.generate()
    key = tmp_path / "key.txt"
    write_identity_file(key, identity)
    path = tmp_path / "a.tar.zst.age"
    backup("DC03", path, chunk_size=256 << 10, truncate=False, recipients=[identity.recipient])
    return path.read_bytes(), key


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_verify_of_an_encrypted_stream_signal_exit_code(big_age_archive, tmp_path, signum,
                                                         code):
    # The engine reads the stalled pipe through the age reader: the signal
    # must still end it (the reader watches the restore engine's stop flag).
    data, key = big_age_archive
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        proc = popen("verify", "-", "-i", key, stdin=subprocess.PIPE,
                     stdout=subprocess.DEVNULL, stderr=fh)
    _feed_half(proc, data)
    proc.send_signal(signum)
    text = _finish(proc, err)
    proc.stdin.close()
    assert proc.returncode == code, text
    assert "interrupted" in text and no_traceback(text)


@pytest.mark.parametrize("signum,code", SIGNALS[1:])
def test_restore_signal_while_spooling_changes_nothing(big_archive, make_dc, tmp_path, signum,
                                                       code):
    dc = make_dc("DC02", size=4 << 20)
    dc.stop()
    before = {p.name: p.read_bytes() for p in dc.ntds_dir.iterdir()}
    spool = tmp_path / "spool"
    spool.mkdir()
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        proc = popen("restore", "-", "--server", "DC02", "--spool-dir", spool,
                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=fh)
    _feed_half(proc, big_archive)
    proc.send_signal(signum)
    text = _finish(proc, err)
    proc.stdin.close()
    assert proc.returncode == code, text
    assert no_traceback(text)
    assert listing(spool) == []
    assert {p.name: p.read_bytes() for p in dc.ntds_dir.iterdir()} == before


# x86-64 and arm64 numbers of the calls a read may sleep in (read, poll, ppoll).
_SLEEPING_READ_CALLS = {"0", "7", "271"} if os.uname().machine == "x86_64" else {"63", "73"}


def _sleeping_in_a_read(tid: int) -> bool:
    with open(f"/proc/self/task/{tid}/syscall") as fh:
        return fh.read().split()[0] in _SLEEPING_READ_CALLS


def _signal_that_misses_the_read(signum: int, w: int) -> threading.Thread:
    """Once the main thread sleeps in its read, send signum so that its C
    handler runs on this helper thread (the kernel's choice while the main
    thread blocks it): the flag is set and nothing interrupts the read, the
    same state as a signal landing just before the read() call begins.  A
    byte follows half a second later: a plain os.read returns with it and
    only then runs the handler; a read a signal ends must not take it."""
    main = threading.main_thread().native_id

    def send():
        wait_for(lambda: _sleeping_in_a_read(main), "the main thread's read")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
        time.sleep(0.5)
        os.write(w, b"x")
    helper = threading.Thread(target=send)
    helper.start()
    return helper


@pytest.mark.parametrize("reader", ["read_some", "signal_ended_reader"])
def test_a_signal_ends_a_read_on_a_stalled_pipe(reader):
    # A restore from a stalled pipe once ignored SIGHUP for ever this way.
    from ntdsbackup.platform import signals as sig

    def interrupt(signum, frame):
        raise sig.Interrupted(signum)

    r, w = os.pipe()
    previous = signal.signal(signal.SIGUSR1, interrupt)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        helper = _signal_that_misses_the_read(signal.SIGUSR1, w)
        with pytest.raises(sig.Interrupted):
            if reader == "read_some":
                sig.read_some(r, 1)
            else:
                with sig.signal_ended_reader(r) as fh:
                    fh.read(1)
        helper.join()
        os.set_blocking(r, False)
        assert os.read(r, 1) == b"x"          # the interrupted read took nothing
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR1, previous)
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("signum,code", SIGNALS)
def test_dc_create_signal_removes_its_staging_folder(emu_root, tmp_path, signum, code):
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        # Far more than can be written before the signal lands.
        proc = popen("dc", "create", "BIG", "--size", "4GiB", stdout=subprocess.DEVNULL,
                     stderr=fh)
    wait_for(lambda: any(p.name.startswith(".BIG.creating") for p in emu_root.iterdir()),
             "the staging folder")
    proc.send_signal(signum)
    text = _finish(proc, err)
    assert proc.returncode == code, text
    assert "interrupted" in text and no_traceback(text)
    assert listing(emu_root) == []


def test_dc_create_removes_stale_staging_of_dead_processes(emu_root, make_dc):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = emu_root / f".DC05.creating{dead.pid}"
    (stale / "NTDS").mkdir(parents=True)
    (stale / "NTDS" / "ntds.dit").write_bytes(b"\0" * 8192)
    alive = emu_root / f".DC05.creating{os.getppid()}"   # a live process's work
    alive.mkdir()
    make_dc("DC05", size=2 << 20)
    assert not stale.exists() and alive.is_dir()


def test_dc_create_checks_free_space_first(emu_root, monkeypatch):
    import shutil

    from ntdsbackup.emulator import EmulatedDC

    real = shutil.disk_usage

    def tiny(path):
        return real(path)._replace(free=3 << 20)

    monkeypatch.setattr(shutil, "disk_usage", tiny)
    with pytest.raises(OSError) as info:
        EmulatedDC("DC06", emu_root).create(4 << 20, log_size=256 << 10, log_count=4)
    text = str(info.value)
    assert "3.0 MiB" in text and "free" in text and "needs" in text
    assert listing(emu_root) == []
