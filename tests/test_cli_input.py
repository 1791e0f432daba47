"""Command-line input (issue 9, section 5): every option checked at parse
time (exit 2, the rule in the message), passwords only from sources that
cannot be the archive, and stdout that carries an archive carries nothing
else."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dctools import cli, enable_trace, no_traceback, set_faults, trace_calls
from ntdsbackup.emulator.config import Account
from ntdsbackup.fsutil import parse_size
from ntdsbackup.phases.backup import backup

# (command line after the DC's name is set up, what the message must name)
BAD_OPTIONS = [
    (["backup", "--server", "DC01", "-o", "{out}", "--threads", "-1"], ["--threads", "256"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--threads", "100000"], ["256"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--ring", "-5"], ["--ring", "2", "256"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--ring", "1"], ["--ring", "256"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--level", "99"], ["--level", "22"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--level", "-200000"], ["-131072"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--chunk-size", "1"], ["8192", "24576"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--chunk-size", "1MB"], ["8192"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--chunk-size", "128MiB"], ["64 MiB"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--chunk-size", "1e30"], ["--chunk-size"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--user", "bob"], ["DOMAIN\\user"]),
    (["backup", "--server", "DC01", "-o", "{out}", "--password-file", "{out}"], ["--user"]),
    (["dc", "create", "X1", "--size", "1e30"], ["--size"]),
    (["dc", "create", "X1", "--size", "inf"], ["--size"]),
    (["dc", "create", "X1", "--size", "-1"], ["--size"]),
    (["dc", "create", "X1", "--size", "17TiB"], ["16 TiB"]),
    (["dc", "create", "X1", "--size", "1000000"], ["8192", "999424", "1007616"]),
    (["dc", "create", "X1", "--size", "8KiB"], ["24576"]),
    (["dc", "create", "X1", "--log-size", "1000"], ["4096"]),
    (["dc", "create", "X1", "--log-size", "1GiB"], ["--log-size"]),
    (["dc", "create", "X1", "--log-count", "-1"], ["--log-count", "1024"]),
    (["dc", "create", "X1", "--tombstone-days", "0"], ["--tombstone-days", "2"]),
    (["dc", "create", "X1", "--domain", "CORP\nfault_read_hr=0x5"], ["--domain"]),
    (["dc", "fault", "DC01", "--read-hr", "0x1FFFFFFFF"], ["0xFFFFFFFF"]),
    (["dc", "fault", "DC01", "--read-after", "-1"], ["--read-after"]),
    (["dc", "fault", "DC01", "--short-read", "5000000000"], ["4294967295"]),
    (["dc", "fault", "DC01", "--clock-offset", "100000000000000"], ["--clock-offset"]),
    (["dc", "account", "DC01", "CORP\\x", "--privileges", "backup,root"], ["--privileges"]),
    (["dc", "account", "DC01", "nobody", "--password-file", "{out}"], ["DOMAIN\\user"]),
    (["verify", "{out}", "--threads", "-1"], ["--threads"]),
    (["extract", "{out}", "{out}.d", "--threads", "999"], ["--threads"]),
    (["restore", "{out}", "--server", "DC01", "--threads", "-3"], ["--threads"]),
    (["bench", "--repeat", "0"], ["--repeat"]),
    (["bench", "--threads", "-1"], ["--threads"]),
    (["bench", "--chunk-size", "1"], ["--chunk-size"]),
    (["bench", "--ring", "-5"], ["--ring"]),
    (["bench", "--level", "99"], ["--level"]),
    (["bench", "--size", "1e30"], ["--size"]),
    (["bench", "--sweep", "threads,colour"], ["--sweep", "threads"]),
]


@pytest.mark.parametrize("argv,names", BAD_OPTIONS,
                         ids=[" ".join(a[:2] + a[-2:]) for a, _ in BAD_OPTIONS])
def test_bad_option_is_refused_at_parse_time(dc, tmp_path, argv, names):
    enable_trace(dc)
    argv = [a.replace("{out}", str(tmp_path / "a.tar.zst")) for a in argv]
    r = cli(*argv, text=True)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert no_traceback(r.stderr), r.stderr
    assert "error: argument" in r.stderr or "error: " in r.stderr
    for name in names:
        assert name in r.stderr, r.stderr
    assert trace_calls(dc) == []                  # nothing was asked of the DC
    assert not (emu := dc.root / "X1").exists(), emu


def test_limits_are_the_engines_and_zstds():
    """The parse-time limits name the engine's own (include/ntdsb_engine.h)
    and those of the libzstd the engine is linked with."""
    import ctypes
    import re
    from pathlib import Path

    from ntdsbackup import _ntdsbcli
    from ntdsbackup.cli import argtypes

    header = (Path(__file__).resolve().parents[1] / "include" / "ntdsb_engine.h").read_text()

    def define(name):
        return int(re.search(rf"#define {name}\s+(\d+)u", header).group(1))

    engine = ctypes.CDLL(_ntdsbcli.__file__)
    expected = {"threads": define("NTDSB_THREADS_MAX"),
                "ring": (define("NTDSB_RING_MIN"), define("NTDSB_RING_MAX")),
                "level": (engine.ZSTD_minCLevel(), engine.ZSTD_maxCLevel())}
    ours = {"threads": argtypes.THREADS_MAX, "ring": (argtypes.RING_MIN, argtypes.RING_MAX),
            "level": (argtypes.LEVEL_MIN, argtypes.LEVEL_MAX)}
    assert ours == expected


def test_size_units_are_binary_and_decimal_units_explicit():
    assert parse_size("8192") == 8192
    assert parse_size("1K") == parse_size("1KiB") == 1024
    assert parse_size("1M") == parse_size("1MiB") == 1 << 20
    assert parse_size("1.5G") == 3 << 29
    assert parse_size("1MB") == 10**6 and parse_size("1kB") == 1000
    for bad in ("1e30", "inf", "nan", "-1", "0x10", "1.0000001K", "", "K", "1 parsec",
                "9" * 40):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_chunk_size_1M_is_a_mebibyte(dc, tmp_path):
    out = tmp_path / "a.tar.zst"
    r = cli("backup", "--server", "DC01", "-o", out, "--chunk-size", "1M", text=True)
    assert r.returncode == 0, r.stderr
    r = cli("ls", out, "--json", text=True)
    assert json.loads(r.stdout)["manifest"]["chunk_size"] == 1 << 20


def test_help_states_the_chunk_rule():
    r = cli("backup", "--help", text=True)
    text = " ".join(r.stdout.split())
    assert "multiple of 8 KiB" in text and "at least 24 KiB" in text and "binary" in text


# -- passwords -------------------------------------------------------------------------

PASSWORD = "s3cret-Pa55"


@pytest.fixture
def secured(make_dc, tmp_path):
    """DC01 with CORP\\op (backup, restore, admin) and no rights for anonymous callers,
    an archive of it, and the DC stopped for a restore."""
    dc = make_dc("DC01", size=2 << 20)
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=64 << 10, truncate=False)
    cfg = dc.config()
    cfg.set_account(Account.create("CORP", "op", PASSWORD, "backup,restore,admin"))
    cfg.default_privileges = ()
    cfg.trace = True
    dc.save_config(cfg)
    dc.stop()
    return dc, archive


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "NTDSB_PASSWORD"}
    env.update(extra)
    return env


def test_restore_from_stdin_never_reads_the_password_from_the_archive(secured):
    dc, archive = secured
    with open(archive, "rb") as fh:
        r = cli("restore", "-", "--server", "DC01", "--user", "CORP\\op", "--dry-run",
                stdin=fh, env=_env())
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "--password-file" in err and "--password-command" in err and "NTDSB_PASSWORD" in err
    assert "damaged" not in err and "invalid" not in err and no_traceback(err)
    assert trace_calls(dc) == []


def test_restore_from_stdin_with_a_password_file(secured, tmp_path):
    dc, archive = secured
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    with open(archive, "rb") as fh:
        r = cli("restore", "-", "--server", "DC01", "--user", "CORP\\op", "--dry-run",
                "--password-file", pw, stdin=fh, env=_env())
    assert r.returncode == 0, r.stderr
    assert PASSWORD.encode() not in r.stdout + r.stderr


def test_password_file_dash_is_refused_when_stdin_is_the_archive(secured):
    dc, archive = secured
    with open(archive, "rb") as fh:
        r = cli("restore", "-", "--server", "DC01", "--user", "CORP\\op", "--dry-run",
                "--password-file", "-", stdin=fh, env=_env(), text=True)
    assert r.returncode == 2 and "standard input" in r.stderr, r.stderr


def test_password_command(secured, tmp_path):
    dc, archive = secured
    dc.start()
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "b.tar.zst", "--user", "CORP\\op",
            "--password-command", f"echo {PASSWORD}", "--json", env=_env(), text=True,
            stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "c.tar.zst", "--user", "CORP\\op",
            "--password-command", "false", env=_env(), text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "exited with status 1" in r.stderr and no_traceback(r.stderr)
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "c.tar.zst", "--user", "CORP\\op",
            "--password-command", "no-such-program-anywhere", env=_env(), text=True,
            stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "no-such-program-anywhere" in r.stderr, r.stderr


@pytest.mark.parametrize("how", ["file", "env", "command"])
def test_empty_password_is_refused(secured, tmp_path, how):
    dc, archive = secured
    dc.start()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    extra = {"file": ["--password-file", empty], "env": [],
             "command": ["--password-command", "true"]}[how]
    env = _env(NTDSB_PASSWORD="") if how == "env" else _env()
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "b.tar.zst", "--user", "CORP\\op",
            *extra, env=env, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "empty password" in r.stderr, r.stderr
    assert trace_calls(dc) == []


def test_no_password_source_without_a_terminal(secured, tmp_path):
    dc, archive = secured
    dc.start()
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "b.tar.zst", "--user", "CORP\\op",
            input=PASSWORD + "\n", env=_env(), text=True)
    assert r.returncode == 2 and "--password-file" in r.stderr, r.stderr
    r = cli("dc", "account", "DC01", "CORP\\new", input="pw\n", env=_env(), text=True)
    assert r.returncode == 2 and "--password-file" in r.stderr, r.stderr


def test_wrong_password_never_appears_in_the_output(secured, tmp_path):
    dc, archive = secured
    dc.start()
    wrong = "Wr0ng-but-secret"
    for extra in ([], ["--json"]):
        r = cli("backup", "--server", "DC01", "-o", tmp_path / "b.tar.zst", "--user",
                "CORP\\op", *extra, env=_env(NTDSB_PASSWORD=wrong), text=True,
                stdin=subprocess.DEVNULL)
        assert r.returncode == 4, r.stderr
        assert wrong not in r.stdout + r.stderr


def test_dc_account_from_a_password_file(secured, tmp_path):
    dc, archive = secured
    dc.start()
    pw = tmp_path / "pw"
    pw.write_text("n3w-password\n")
    r = cli("dc", "account", "DC01", "CORP\\new", "--privileges", "backup", "--password-file",
            pw, env=_env(), text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "b.tar.zst", "--user", "CORP\\new",
            env=_env(NTDSB_PASSWORD="n3w-password"), text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


# -- stdout carries the archive and nothing else ---------------------------------------


def test_json_error_goes_to_stderr_when_stdout_is_the_archive(dc, tmp_path):
    set_faults(dc, read_hr=0xC7FF000D, read_after=100_000)
    r = cli("backup", "--server", "DC01", "-o", "-", "--json", "--chunk-size", "64KiB")
    assert r.returncode == 6, r.stderr
    assert b'"event"' not in r.stdout
    events = [json.loads(line) for line in r.stderr.decode().splitlines()
              if line.startswith("{")]
    assert events[-1]["event"] == "error" and events[-1]["exit_code"] == 6


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_closed_pipe_exits_7_without_a_traceback(dc, tmp_path, extra):
    enable_trace(dc)
    proc = subprocess.Popen([sys.executable, "-m", "ntdsbackup", "backup", "--server", "DC01",
                             "-o", "-", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                   # the reader went away before the first byte
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 7, err
    assert no_traceback(err), err
    assert "pipe" in err.lower()
    calls = trace_calls(dc)
    assert calls.count("DsBackupEnd") == 1 and "DsBackupTruncateLogs" not in calls


def test_closed_pipe_on_a_listing(dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    backup("DC01", archive, chunk_size=64 << 10, truncate=False)
    proc = subprocess.Popen([sys.executable, "-m", "ntdsbackup", "ls", str(archive)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 7 and no_traceback(err), err
