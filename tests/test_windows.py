"""The Windows side, built with mingw-w64 and run under Wine (`make test-windows`;
`make test` runs it too).

tests/native/build_windows.sh builds the engine, the emulated DC as
ntdsbcli.dll (exactly the real DLL's export names) and the driver
tests/native/test_windows.c, linked against mingw-w64's import library of the
real DLL.  Under Wine the driver then runs

- the platform layer and the engine against an in-process provider, with the
  hostile restore inputs of tests/native/restore_cases.h;
- the full backup sequence against an emulated DC made by the project's own
  CLI (the threaded engine; every hash is compared here with the DC's files),
  the log listing and truncation;
- after `dc activity` and `dc stop`, the full restore sequence with the
  threaded restore pipeline, after which `dc start` must pass its consistency
  check and the database must be the one backed up.

Nothing here is skipped: without the compiler or Wine the tests fail and say
what is missing (`make deps-windows` installs both).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "windows"
MINGW = "x86_64-w64-mingw32-gcc"
DLL_EXPORTS = 27       # the real DLL's 28 names but DsRestoreCheckExpiryToken
TIMEOUT = 600


def _wine() -> str:
    for cand in (os.environ.get("NTDSB_WINE"), shutil.which("wine64"), shutil.which("wine"),
                 "/usr/lib/wine/wine64"):
        if cand and os.access(cand, os.X_OK):
            return cand
    pytest.fail("Wine is not installed: `make deps-windows` installs wine64 (Debian)")


def _winpath(p: Path) -> str:
    """The Windows spelling of a Linux path under Wine (Z: is /)."""
    return "Z:" + str(p.resolve()).replace("/", "\\")


def _passed(out: str) -> int:
    m = re.findall(r"^(\d+) passed, (\d+) failed\s*$", out, re.MULTILINE)
    assert m, out[-4000:]
    passed, failed = map(int, m[-1])
    assert failed == 0, out[-4000:]
    return passed


def _xxh3(path: Path) -> str:
    return xxhash.xxh3_128(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built():
    """Build once per module, and hold a lock until its tests are done: several
    suites may run at once on one machine, and they share build/windows."""
    if shutil.which(MINGW) is None:
        pytest.fail(f"{MINGW} is not installed: `make deps-windows` installs "
                    "gcc-mingw-w64-x86-64-win32 and mingw-w64-x86-64-dev")
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        env = dict(os.environ, BUILD_DIR=str(BUILD), PYTHON=sys.executable)
        r = subprocess.run(["sh", str(ROOT / "tests" / "native" / "build_windows.sh")], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=TIMEOUT)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        m = re.search(r"^warnings: (\d+)$", out, re.MULTILINE)
        assert m, out
        yield {"bin": BUILD / "bin", "warnings": int(m.group(1)), "output": out}


@pytest.fixture(scope="module")
def wine(built):
    """Run a program of the build under Wine, in a prefix inside the build folder
    (made once: the first start of Wine takes a while)."""
    exe = _wine()
    prefix = BUILD / "wineprefix"
    env = dict(os.environ, WINEPREFIX=str(prefix), WINEDEBUG="-all",
               # No Mono or Gecko installer on the first start.
               WINEDLLOVERRIDES="mscoree,mshtml=")
    # (Under the lock `built` holds for the whole module.)
    if not (prefix / "system.reg").exists():
        r = subprocess.run([exe, "wineboot", "--init"], env=env, capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert r.returncode == 0 and (prefix / "system.reg").exists(), \
            f"Wine cannot make its prefix: {(r.stdout + r.stderr)[-4000:]}"

    def run(*args: str, emu_root: Path | None = None) -> str:
        e = dict(env)
        if emu_root is not None:
            e["NTDSB_EMU_ROOT"] = _winpath(emu_root)  # read by ntdsbcli.dll under Wine
        r = subprocess.run([exe, str(built["bin"] / "test_windows.exe"), *args], env=e,
                           capture_output=True, text=True, timeout=TIMEOUT)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        return out

    return run


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ntdsbackup", *args], cwd=ROOT,
                          env=dict(os.environ, NTDSB_EMU_ROOT=str(root)), capture_output=True,
                          text=True, timeout=TIMEOUT)


def test_build_is_warning_free_and_exports_the_real_names(built):
    assert built["warnings"] == 0, (BUILD / "warnings.log").read_text()
    exports = (BUILD / "exports.txt").read_text().split()
    real = set((BUILD / "implib.txt").read_text().split())
    assert len(real) == 28 and "DsBackupPrepareW" in real
    assert len(exports) == DLL_EXPORTS and set(exports) <= real
    assert real - set(exports) == {"DsRestoreCheckExpiryToken"}
    # Every ...A form of a W export is there too.
    assert {e[:-1] + "A" for e in exports if e.endswith("W")} <= set(exports)


def test_engine_under_wine(wine, tmp_path):
    out = wine("engine", _winpath(tmp_path))
    assert _passed(out) >= 800, out[-2000:]
    m = re.search(r"^hostile inputs: (\d+) checks$", out, re.MULTILINE)
    assert m and int(m.group(1)) >= 700, out[-2000:]
    assert not list(tmp_path.iterdir())  # every temporary file went with its handle


def test_backup_and_restore_of_an_emulated_dc_under_wine(built, wine, tmp_path):
    root, out = tmp_path / "emu", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    r = _cli(root, "dc", "create", "DC01", "--size", "8MiB")
    assert r.returncode == 0, r.stdout + r.stderr
    ntds = root / "DC01" / "NTDS"
    password = tmp_path / "password"
    password.write_text("s3cret pw\n")
    r = _cli(root, "dc", "account", "DC01", "CORP\\op", "--privileges", "backup",
             "--password-file", str(password))
    assert r.returncode == 0, r.stdout + r.stderr
    with open(root / "DC01" / "dc.conf", "a") as conf:
        conf.write("trace=1\n")                   # calls.log, appended to by ntdsbcli.dll
    dit_before = _xxh3(ntds / "ntds.dit")
    assert sorted(p.name for p in ntds.glob("edb0*.log")) == [
        f"edb0000{g}.log" for g in range(1, 5)]       # closed 1..4, current 5, checkpoint 3

    args = ["DC01", _winpath(ntds), _winpath(out), _winpath(built["bin"] / "ntdsbcli.dll")]
    # The account's password is checked by ntdsbcli.dll (PBKDF2 through bcrypt).
    res = wine("backup", *args, "CORP\\op", "s3cret pw", emu_root=root)
    assert _passed(res) >= 95
    files = {m[0]: (int(m[1]), m[2]) for m in re.findall(r"^file (\S+) (\d+) ([0-9a-f]{32})$",
                                                         res, re.MULTILINE)}
    # The database, then the logs from the checkpoint (3) to the one the
    # backup closed (5, the old edb.log), all hashed as the DC holds them.
    assert sorted(files) == ["edb00003.log", "edb00004.log", "edb00005.log", "ntds.dit"]
    assert "logs 3..5" in res and "truncated 2 logs below generation 3" in res
    assert files["ntds.dit"] == (8 << 20, dit_before)
    for name, (size, digest) in files.items():
        assert (ntds / name).stat().st_size == size
        assert _xxh3(ntds / name) == digest, name
    assert sorted(p.name for p in ntds.iterdir()) == [
        "edb.chk", "edb.log", "edb00003.log", "edb00004.log", "edb00005.log", "ntds.dit"]
    # One whole line per call (append-only writes), in the documented format.
    calls = (root / "DC01" / "calls.log").read_bytes().decode()
    lines = calls.splitlines()
    assert "\r" not in calls and all(
        re.fullmatch(r"\d+ Ds\w+ h=(\d+|-) hr=0x[0-9A-F]{8}", line) for line in lines), calls
    fns = [line.split()[1:] for line in lines]
    assert ["DsBackupPrepareW", "h=1", "hr=0x00000000"] in fns
    assert ["DsBackupPrepareW", "h=-", "hr=0xC80001F9"] in fns       # hrBackupInProgress
    assert ["DsBackupTruncateLogs", "h=1", "hr=0x00000000"] in fns
    reads = sum(f[0] == "DsBackupRead" for f in fns)
    assert reads >= sum(-(-size // (64 << 10)) for size, _ in files.values())

    # The DC moves on, then goes down into DSRM for the restore.
    assert _cli(root, "dc", "activity", "DC01", "--pages", "5%").returncode == 0
    assert _xxh3(ntds / "ntds.dit") != dit_before
    assert _cli(root, "dc", "stop", "DC01").returncode == 0

    res = wine("restore", *args, emu_root=root)
    assert _passed(res) >= 55
    restored = {m[0]: (int(m[1]), m[2]) for m in re.findall(
        r"^restored (\S+) (\d+) ([0-9a-f]{32})$", res, re.MULTILINE)}
    assert restored == files
    assert sorted(p.name for p in ntds.iterdir()) == [
        "edb00003.log", "edb00004.log", "edb00005.log", "ntds.dit"]
    for name, (_size, digest) in files.items():
        assert _xxh3(ntds / name) == digest, name
    state = (root / "DC01" / "restore.state").read_text()
    assert "state=complete\nhr=0x00000000\n" in state and "gen_low=3\ngen_high=5\n" in state

    # What a real DC does at boot after a restore: the consistency check.
    r = _cli(root, "dc", "start", "DC01")
    assert r.returncode == 0 and "consistency check passed" in r.stdout + r.stderr, \
        r.stdout + r.stderr
    st = json.loads(_cli(root, "dc", "status", "DC01", "--json").stdout)
    assert st["online"] is True and st["restore"] is None
