"""Backup end to end on the emulated DC: exact bytes, independent hashes,
determinism, faults, Ctrl-C, and the no-partial-archive rule."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash
import zstandard

import ntdsbackup
from ntdsbackup import errors
from ntdsbackup.archive import extract, verify
from ntdsbackup.archive.framing import FILE_CHUNK_MAGIC, HEADER_SIZE, parse_header
from ntdsbackup.phases.backup import backup

CHUNK = 256 * 1024


def dc_files(dc) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in dc.ntds_dir.iterdir() if p.is_file()}


def chunk_frames(archive: bytes) -> list[bytes]:
    """Every file-chunk header + frame, in order, parsed independently."""
    out, pos = [], 0
    while pos < len(archive):
        magic, size = int.from_bytes(archive[pos:pos + 4], "little"), \
            int.from_bytes(archive[pos + 4:pos + 8], "little")
        if magic in (FILE_CHUNK_MAGIC, 0x184D2A5D):
            hdr = parse_header(archive[pos:pos + HEADER_SIZE])
            end = pos + HEADER_SIZE + hdr.frame_size
            if magic == FILE_CHUNK_MAGIC:
                out.append(archive[pos:end])
            pos = end
        else:
            pos += 8 + size
    return out


def trace_calls(dc) -> list[str]:
    path = dc.path / "calls.log"
    return [line.split()[1] for line in path.read_text().splitlines()] if path.exists() else []


def enable_trace(dc):
    cfg = dc.config()
    cfg.trace = True
    dc.save_config(cfg)


def set_faults(dc, **faults):
    cfg = dc.config()
    cfg.set_faults(**faults)
    dc.save_config(cfg)


@pytest.fixture
def big_dc(make_dc):
    return make_dc("DC01", size=8 << 20)


def test_round_trip_through_stock_zstd_and_tar(big_dc, tmp_path):
    archive = tmp_path / "dc01.tar.zst"
    summary = backup("DC01", archive, chunk_size=CHUNK, truncate=False)
    files = dc_files(big_dc)
    out = tmp_path / "stock"
    out.mkdir()
    subprocess.run(f"zstd -q -dc '{archive}' | tar -x -C '{out}'", shell=True, check=True)
    assert (out / "database" / "ntds.dit").read_bytes() == files["ntds.dit"]
    logs = sorted((out / "logs").iterdir())
    assert [p.name for p in logs] == [f["name"].split("/")[1] for f in summary.files[1:]]
    for p in logs:
        assert p.read_bytes() == files[p.name]
    assert (out / "ntdsbackup" / "manifest.json").is_file()
    assert (out / "ntdsbackup" / "trailer.json").is_file()


def test_round_trip_through_our_reader(big_dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=CHUNK, truncate=False)
    files = dc_files(big_dc)
    report = extract(archive, tmp_path / "x")
    assert report.files[0].name == "database/ntds.dit"
    for f in report.files:
        data = (tmp_path / "x" / f.name).read_bytes()
        assert data == files[f.name.split("/")[1]]
        assert f.xxh3_128 == xxhash.xxh3_128_hexdigest(data)
    assert not list((tmp_path / "x").rglob("*.partial"))


def test_hashes_equal_independent_xxhash(big_dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    summary = backup("DC01", archive, chunk_size=CHUNK, truncate=False)
    dit = (big_dc.ntds_dir / "ntds.dit").read_bytes()
    assert summary.files[0]["xxh3_128"] == xxhash.xxh3_128_hexdigest(dit)
    frames = chunk_frames(archive.read_bytes())
    dctx = zstandard.ZstdDecompressor()
    offset = 0
    for i, raw in enumerate(frames[: len(dit) // CHUNK]):
        hdr = parse_header(raw[:HEADER_SIZE])
        data = dctx.decompress(raw[HEADER_SIZE:])
        assert hdr.index == i and hdr.raw_size == CHUNK
        assert data == dit[offset:offset + CHUNK]
        assert hdr.xxh3_128 == xxhash.xxh3_128_digest(data)
        offset += CHUNK


def test_manifest_and_trailer_content(big_dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    summary = backup("DC01", archive, chunk_size=CHUNK)
    report = verify(archive)
    m, t = report.manifest, report.trailer
    assert m["server"] == "DC01" and m["backup_type"] == "full" and m["version"] == 1
    assert m["files"][0]["source"] == "\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"
    assert m["files"][0]["bft"] == 0x44 and m["files"][0]["size"] == 8 << 20
    import base64

    token = base64.b64decode(m["expiry_token"])
    assert token[:8] == b"NTDSBEXP"
    gens = t["log_generations"]
    assert [f["bft"] for f in t["files"][1:]] == [0x21] * (gens["high"] - gens["low"] + 1)
    assert summary.truncated and summary.log_generations == gens


def test_frames_identical_across_threads_rings_and_serial(big_dc, tmp_path):
    runs = [dict(threads=1, ring_depth=2), dict(threads=2, ring_depth=3),
            dict(threads=4, ring_depth=8), dict(serial=True)]
    frames = []
    for i, kw in enumerate(runs):
        path = tmp_path / f"a{i}.tar.zst"
        backup("DC01", path, chunk_size=CHUNK, truncate=False, **kw)
        # Each backup closes a new log generation, so compare the database's frames.
        frames.append(chunk_frames(path.read_bytes())[: (8 << 20) // CHUNK])
    assert all(f == frames[0] for f in frames[1:])


def test_archive_mode_is_0600_whatever_the_umask(dc, tmp_path):
    old = os.umask(0)
    try:
        path = tmp_path / "a.tar.zst"
        backup("DC01", path, chunk_size=CHUNK)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_like_destination(dc, tmp_path):
    buf = io.BytesIO()
    summary = backup("DC01", buf, chunk_size=CHUNK, truncate=False)
    assert summary.bytes_written == len(buf.getvalue())
    buf.seek(0)
    report = verify(buf)
    assert report.files[0].size == (dc.ntds_dir / "ntds.dit").stat().st_size


def test_offline_dc_writes_nothing(dc, tmp_path):
    enable_trace(dc)
    dc.stop()
    path = tmp_path / "a.tar.zst"
    with pytest.raises(errors.DCStateError, match="not running"):
        backup("DC01", path)
    assert _leftovers(path) == []
    assert trace_calls(dc) == ["DsIsNTDSOnlineW"]


def _leftovers(path: Path) -> list[str]:
    """Whatever a backup to `path` left in its folder (the emulator root aside)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name != "emu")


def _expect_clean_failure(dc, path):
    assert not path.exists(), "a final archive exists after a failure"
    assert _leftovers(path) == [], "a temporary file outlived the failure"
    calls = trace_calls(dc)
    assert calls.count("DsBackupEnd") == 1 and calls[-1] == "DsBackupEnd"
    assert "DsBackupTruncateLogs" not in calls
    # No backup left in progress on the DC.
    ntdsbackup.open_provider().backup_prepare("DC01").end()


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_read_failure_at_a_chunk(big_dc, tmp_path, where):
    size = 8 << 20
    after = {"first": 0, "middle": size // 2, "last": size - CHUNK}[where]
    enable_trace(big_dc)
    set_faults(big_dc, read_hr=0xC7FF000D, read_after=after)
    path = tmp_path / "a.tar.zst"
    with pytest.raises(errors.EngineError) as info:
        backup("DC01", path, chunk_size=CHUNK)
    err = info.value
    assert err.hresult == 0xC7FF000D and err.call == "DsBackupRead"
    assert err.chunk_index == after // CHUNK and err.file == "database/ntds.dit"
    assert "hrCommunicationError (0xC7FF000D)" in str(err)
    assert f"chunk {after // CHUNK}" in str(err)
    _expect_clean_failure(big_dc, path)


def test_short_reads_give_the_same_archive_content(big_dc, tmp_path):
    a = tmp_path / "a.tar.zst"
    backup("DC01", a, chunk_size=CHUNK, truncate=False)
    set_faults(big_dc, short_read=7000)
    b = tmp_path / "b.tar.zst"
    summary = backup("DC01", b, chunk_size=CHUNK, truncate=False)
    n = (8 << 20) // CHUNK
    assert chunk_frames(a.read_bytes())[:n] == chunk_frames(b.read_bytes())[:n]
    assert summary.stats["read_calls"] > 8 << 20 // 7000


def test_dc_going_offline_midway(big_dc, tmp_path):
    enable_trace(big_dc)
    set_faults(big_dc, offline_after=3 << 20)
    path = tmp_path / "a.tar.zst"
    with pytest.raises(errors.EngineError) as info:
        backup("DC01", path, chunk_size=CHUNK)
    assert info.value.hresult == 0xC7FF000D
    assert _leftovers(path) == []
    calls = trace_calls(big_dc)
    assert calls.count("DsBackupEnd") == 1 and calls[-1] == "DsBackupEnd"
    assert big_dc.mode == "dsrm"


def test_truncate_failure_keeps_the_archive(big_dc, tmp_path):
    set_faults(big_dc, truncate_hr=0xC80001FE)
    path = tmp_path / "a.tar.zst"
    summary = backup("DC01", path, chunk_size=CHUNK)
    assert not summary.truncated and "hrLogWriteFail" in summary.truncate_error
    verify(path)


def test_no_truncate_option(big_dc, tmp_path):
    enable_trace(big_dc)
    backup("DC01", tmp_path / "a.tar.zst", chunk_size=CHUNK, truncate=False)
    calls = trace_calls(big_dc)
    assert "DsBackupTruncateLogs" not in calls
    assert calls[0] == "DsIsNTDSOnlineW" and calls[1] == "DsBackupPrepareW"
    assert calls[-2:] == ["DsBackupFree", "DsBackupEnd"]


def test_documented_call_order(big_dc, tmp_path):
    enable_trace(big_dc)
    backup("DC01", tmp_path / "a.tar.zst", chunk_size=CHUNK)
    calls = [c for c in trace_calls(big_dc) if c != "DsBackupRead"]
    nlogs = calls.count("DsBackupOpenFileW") - 1
    expected = (["DsIsNTDSOnlineW", "DsBackupPrepareW", "DsBackupGetDatabaseNamesW",
                 "DsBackupFree", "DsBackupOpenFileW", "DsBackupClose",
                 "DsBackupGetBackupLogsW", "DsBackupFree"]
                + ["DsBackupOpenFileW", "DsBackupClose"] * nlogs
                + ["DsBackupTruncateLogs", "DsBackupFree", "DsBackupEnd"])
    assert calls == expected


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "ntdsbackup", *args], env=env,
                          capture_output=True, **kw)


def test_cli_backup_to_stdout_and_verify_from_stdin(dc, tmp_path):
    out = tmp_path / "s.tar.zst"
    with open(out, "wb") as fh:
        r = subprocess.run([sys.executable, "-m", "ntdsbackup", "backup", "--server", "DC01",
                            "-o", "-", "--chunk-size", "64KiB"], stdout=fh,
                           stderr=subprocess.PIPE, check=False)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as fh:
        r = subprocess.run([sys.executable, "-m", "ntdsbackup", "verify", "-"], stdin=fh,
                           capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("OK:"), r.stderr


def test_cli_json_summary_and_exit_codes(dc, tmp_path):
    import json

    r = _cli("backup", "--server", "DC01", "-o", str(tmp_path / "j.tar.zst"), "--json",
             text=True)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[-1]["event"] == "summary" and events[-1]["bytes_read"] > 0
    assert any(e["event"] == "file" for e in events)
    dc.stop()
    r = _cli("backup", "--server", "DC01", "-o", str(tmp_path / "k.tar.zst"), text=True)
    assert r.returncode == 3 and "not running" in r.stderr
    r = _cli("backup", "--server", "NOPE", "-o", str(tmp_path / "k.tar.zst"), text=True)
    assert r.returncode == 6 and "hrCouldNotConnect" in r.stderr
    dc.start()
    set_faults(dc, read_hr=0xC7FF000D, read_after=0)
    r = _cli("backup", "--server", "DC01", "-o", str(tmp_path / "k.tar.zst"), text=True)
    assert r.returncode == 6 and "DsBackupRead failed: hrCommunicationError" in r.stderr
    assert not (tmp_path / "k.tar.zst").exists()


def test_sigint_stops_cleanly(make_dc, tmp_path):
    dc = make_dc("DC01", size=16 << 20)
    enable_trace(dc)
    set_faults(dc, bandwidth=4 << 20)          # ~4 s for the database
    path = tmp_path / "a.tar.zst"
    proc = subprocess.Popen([sys.executable, "-m", "ntdsbackup", "backup", "--server", "DC01",
                             "-o", str(path), "--chunk-size", "256KiB"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    # The temporary file is hidden beside the archive, its name unpredictable.
    while not list(tmp_path.glob(".a.tar.zst.*.partial")) and time.monotonic() < deadline:
        time.sleep(0.05)
    while "DsBackupRead" not in trace_calls(dc) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT)" in err and "Traceback" not in err
    _expect_clean_failure(dc, path)


def test_hostile_destination_is_reported(dc, tmp_path):
    enable_trace(dc)
    with pytest.raises(OSError):
        backup("DC01", tmp_path / "no" / "such" / "dir" / "a.tar.zst")
    assert trace_calls(dc) == []            # refused before the DC was asked anything
    ntdsbackup.open_provider().backup_prepare("DC01").end()


def test_overwrite_replaces_an_older_archive(dc, tmp_path):
    path = tmp_path / "a.tar.zst"
    path.write_bytes(b"an older archive\n")
    summary = backup("DC01", path, chunk_size=CHUNK, truncate=False, overwrite=True)
    assert path.stat().st_size == summary.bytes_written
    verify(path)
    assert _leftovers(path) == ["a.tar.zst"]


def test_sink_that_fails_midway(big_dc, tmp_path):
    class Failing(io.RawIOBase):
        def __init__(self):
            self.n = 0

        def writable(self):
            return True

        def write(self, b):
            self.n += len(b)
            if self.n > 1 << 20:
                raise OSError(28, "No space left on device")
            return len(b)

    enable_trace(big_dc)
    with pytest.raises(OSError, match="No space"):
        backup("DC01", Failing(), chunk_size=CHUNK)
    assert trace_calls(big_dc).count("DsBackupEnd") == 1


def test_archive_name_has_no_leftovers_on_success(dc, tmp_path):
    path = tmp_path / "ok.tar.zst"
    backup("DC01", path, chunk_size=CHUNK)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["emu", "ok.tar.zst"]
