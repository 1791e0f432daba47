"""The Python layer's platform differences (src/ntdsbackup/platform/).

No Windows CPython runs here, so the Windows branches are followed with the
module switches set and a fake in place of the Windows calls (platform._win32,
msvcrt): what is checked is which call is made with what (the security
descriptor, the CRT flags, the hidden attribute, the lock), not Windows
itself.  The POSIX branches run for real."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path, PureWindowsPath

import pytest

from ntdsbackup.platform import files, locks, processes
from ntdsbackup.provider_paths import PathMappingError, local_drive_path, local_names

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "ntdsbackup"

# -- the DACL ----------------------------------------------------------------------

# Windows' well-known SID tokens of SDDL and what they are.
_SIDS = {"OW": "owner rights", "SY": "local system", "BA": "administrators",
         "WD": "everyone", "AU": "authenticated users", "BU": "users", "IU": "interactive",
         "CO": "creator owner", "AN": "anonymous", "BG": "guests"}
_PRIVATE = {"OW", "SY", "BA"}


def parse_dacl(sddl: str) -> tuple[set[str], list[dict]]:
    """(DACL flags, ACEs) of an SDDL string holding only a DACL."""
    m = re.fullmatch(r"D:((?:P|AI|AR)*)((?:\([^()]*\))*)", sddl)
    if not m:
        raise ValueError(f"not a DACL-only SDDL string: {sddl!r}")
    flags = set(re.findall(r"P|AI|AR", m.group(1)))
    aces = []
    for body in re.findall(r"\(([^()]*)\)", m.group(2)):
        fields = body.split(";")
        if len(fields) != 6:
            raise ValueError(f"an ACE has six fields: {body!r}")
        kind, ace_flags, rights, guid, inherit_guid, sid = fields
        if sid not in _SIDS:
            raise ValueError(f"unknown SID token {sid!r}")
        aces.append({"type": kind, "flags": {ace_flags[i:i + 2] for i in
                                             range(0, len(ace_flags), 2)} - {""},
                     "rights": rights, "guids": (guid, inherit_guid), "sid": sid})
    return flags, aces


def private_problems(sddl: str, *, inherit: bool) -> list[str]:
    """What makes `sddl` anything other than "the owner, SYSTEM and
    Administrators, full access, nothing inherited from the parent"."""
    flags, aces = parse_dacl(sddl)
    problems = []
    if "P" not in flags:
        problems.append("the DACL is not protected: the folder's entries would be inherited")
    sids = [a["sid"] for a in aces]
    if sorted(sids) != sorted(_PRIVATE):
        problems.append(f"grants {sorted(sids)}, not exactly {sorted(_PRIVATE)}")
    for a in aces:
        if a["type"] != "A":
            problems.append(f"{a['sid']}: not an allow ACE")
        if a["rights"] != "FA":
            problems.append(f"{a['sid']}: rights {a['rights']!r}, not FILE_ALL_ACCESS")
        if a["guids"] != ("", ""):
            problems.append(f"{a['sid']}: an object ACE")
        want = {"OI", "CI"} if inherit else set()
        if a["flags"] != want:
            problems.append(f"{a['sid']}: ACE flags {sorted(a['flags'])}, not {sorted(want)}")
    return problems


def test_private_file_dacl_grants_owner_system_administrators_only():
    assert private_problems(files.PRIVATE_FILE_SDDL, inherit=False) == []


def test_private_directory_dacl_passes_the_same_entries_on():
    assert private_problems(files.PRIVATE_DIR_SDDL, inherit=True) == []


@pytest.mark.parametrize("sddl, complaint", [
    ("D:(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)", "not protected"),
    ("D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;WD)", "grants"),
    ("D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BU)", "grants"),
    ("D:P(A;;FR;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)", "rights 'FR'"),
    ("D:P(A;OICI;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)", "ACE flags"),
    ("D:P(D;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)", "not an allow ACE"),
])
def test_the_dacl_check_catches_what_is_not_private(sddl, complaint):
    assert any(complaint in p for p in private_problems(sddl, inherit=False))


def test_the_dacl_parser_refuses_malformed_strings():
    for bad in ("O:BAD:P(A;;FA;;;SY)", "D:P(A;;FA;;SY)", "D:P(A;;FA;;;XX)"):
        with pytest.raises(ValueError):
            parse_dacl(bad)


# -- CRT flags ---------------------------------------------------------------------

def test_windows_descriptors_are_binary_write_only_not_inherited():
    flags = files.windows_fd_flags()
    assert flags & 0x8000                    # _O_BINARY: no CRLF or Ctrl-Z translation
    assert not flags & 0x4000                # _O_TEXT
    assert flags & 0x0080                    # _O_NOINHERIT
    assert flags & 3 == os.O_WRONLY


def test_existing_files_are_opened_binary_where_that_exists():
    binary = getattr(os, "O_BINARY", 0)
    assert files.OPEN_READ & binary == binary and files.OPEN_READ & 3 == os.O_RDONLY
    assert files.OPEN_RDWR & binary == binary and files.OPEN_RDWR & 3 == os.O_RDWR


# -- the Windows branches of platform.files, with fake Windows calls ------------------

class FakeWin32:
    """Records the calls platform.files makes on Windows and does what they
    would do to the file system (without the security descriptor)."""

    def __init__(self):
        self.calls: list[tuple] = []

    def create_file(self, path, sddl, *, hidden, fd_flags):
        self.calls.append(("create_file", os.path.basename(path), sddl, hidden, fd_flags))
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def create_directory(self, path, sddl, *, hidden):
        self.calls.append(("create_directory", os.path.basename(path), sddl, hidden))
        os.mkdir(path)

    def set_hidden(self, path, hidden):
        self.calls.append(("set_hidden", os.path.basename(path), hidden))

    def set_binary(self, fd):
        self.calls.append(("set_binary", fd))

    def get_osfhandle(self, fd):
        self.calls.append(("get_osfhandle", fd))
        return 0x1000 + fd


@pytest.fixture
def windows(monkeypatch):
    fake = FakeWin32()
    monkeypatch.setattr(files, "_WINDOWS", True)
    monkeypatch.setattr(files, "_win32", fake)
    monkeypatch.setattr(files, "_DIR_FD", False)     # Windows: no directory descriptors
    return fake


def test_windows_files_are_created_with_the_private_dacl_and_hidden_dot_names(
        windows, tmp_path):
    fd, path = files.create_private(tmp_path, prefix=".dc.tar.zst.", suffix=".partial")
    os.close(fd)
    fd = files.open_private(tmp_path / "plain")
    os.close(fd)
    assert windows.calls == [
        ("create_file", path.name, files.PRIVATE_FILE_SDDL, True, files.windows_fd_flags()),
        ("create_file", "plain", files.PRIVATE_FILE_SDDL, False, files.windows_fd_flags()),
    ]


def test_windows_commit_drops_the_hidden_attribute_with_the_dot_name(windows, tmp_path):
    fd, tmp = files.create_private(tmp_path, prefix=".x.", suffix=".partial")
    os.close(fd)
    files.commit(tmp, tmp_path / "x")
    assert windows.calls[-1] == ("set_hidden", "x", False)
    fd, tmp = files.create_private(tmp_path, prefix=".j.", suffix=".tmp")
    os.close(fd)
    n = len(windows.calls)
    files.commit(tmp, tmp_path / ".journal", overwrite=True)
    assert windows.calls[n:] == []           # dot-name to dot-name: stays hidden
    assert (tmp_path / "x").is_file() and (tmp_path / ".journal").is_file()


def test_windows_directories_get_the_private_dacl(windows, tmp_path):
    files.make_private_dirs(tmp_path / "out" / ".sub")
    with files.Directory.open(tmp_path / "out") as root:
        assert root.fd is None               # the path fallback
        folder, created = root.subdirectory("NTDS")
        assert created
        fd, name = folder.create_private(prefix=".ntds.dit.", suffix=".partial")
        os.close(fd)
        folder.commit(name, "ntds.dit")
    assert (tmp_path / "out" / "NTDS" / "ntds.dit").is_file()
    assert windows.calls == [
        ("create_directory", "out", files.PRIVATE_DIR_SDDL, False),
        ("create_directory", ".sub", files.PRIVATE_DIR_SDDL, True),
        ("create_directory", "NTDS", files.PRIVATE_DIR_SDDL, False),
        ("create_file", name, files.PRIVATE_FILE_SDDL, True, files.windows_fd_flags()),
        ("set_hidden", "ntds.dit", False),
    ]


def test_windows_keeps_the_dacl_instead_of_copying_a_mode(windows, tmp_path):
    fd = files.open_private(tmp_path / "staged")
    try:
        files.copy_mode_and_owner(os.stat(tmp_path), fd)     # a 0755 directory's stat
        assert os.stat(tmp_path / "staged").st_mode & 0o777 == 0o600
    finally:
        os.close(fd)


def test_posix_copies_the_mode(tmp_path):
    fd = files.open_private(tmp_path / "staged")
    try:
        files.copy_mode_and_owner(os.stat(tmp_path), fd)
        assert os.stat(tmp_path / "staged").st_mode & 0o777 == os.stat(tmp_path).st_mode & 0o777
    finally:
        os.close(fd)


def test_engine_files_are_handles_on_windows_descriptors_elsewhere(windows):
    assert files.os_handle(5) == 0x1005
    assert files.os_handle(-1) == -1         # NTDSB_NO_FILE: verify only
    assert windows.calls == [("get_osfhandle", 5)]
    files.set_binary(0)
    assert windows.calls[-1] == ("set_binary", 0)


def test_engine_files_are_the_descriptors_on_posix():
    assert files.os_handle(5) == 5 and files.os_handle(-1) == -1


def test_posix_files_are_private(tmp_path):
    old = os.umask(0)
    try:
        fd, path = files.create_private(tmp_path)
        os.close(fd)
        files.make_private_dirs(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "a" / "b").st_mode & 0o777 == 0o700


@pytest.mark.parametrize("name, hidden", [(".x.partial", True), ("x", False),
                                          ("dir/.j", True), (".", False), ("..", False)])
def test_dot_names(name, hidden):
    assert files.is_dot_name(name) is hidden


# -- positioned I/O without pread/pwrite (Windows) ------------------------------------

def test_pread_pwrite_fallbacks_leave_the_reader_position(monkeypatch, tmp_path):
    monkeypatch.delattr(os, "pread")
    monkeypatch.delattr(os, "pwrite")
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"0123456789")
        assert files.pwrite(fd, b"ab", 3) == 2
        os.lseek(fd, 1, os.SEEK_SET)
        assert files.pread(fd, 4, 2) == b"2ab5"
        assert os.lseek(fd, 0, os.SEEK_CUR) == 1
        assert files.pread(fd, 4, 8) == b"89"
    finally:
        os.close(fd)


# -- locks ------------------------------------------------------------------------

def test_posix_directory_lock_is_exclusive(tmp_path):
    with locks.DirectoryLock(tmp_path), pytest.raises(locks.LockHeld):
        locks.DirectoryLock(tmp_path)
    with locks.DirectoryLock(tmp_path):      # released with the first
        pass
    assert os.listdir(tmp_path) == []         # POSIX: the directory itself is locked


class FakeMsvcrt:
    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self):
        self.held: set[int] = set()          # inodes with byte 0 locked
        self.calls: list[tuple] = []

    def locking(self, fd, mode, nbytes):
        ino = os.fstat(fd).st_ino
        self.calls.append((mode, nbytes, os.lseek(fd, 0, os.SEEK_CUR)))
        if mode == self.LK_NBLCK:
            if ino in self.held:
                raise OSError(errno.EACCES, "Permission denied")
            self.held.add(ino)
        elif mode == self.LK_UNLCK:
            self.held.discard(ino)


def test_windows_directory_lock_is_a_byte_range_lock_on_a_lock_file(monkeypatch, tmp_path):
    fake = FakeMsvcrt()
    monkeypatch.setattr(locks, "_WINDOWS", True)
    monkeypatch.setattr(locks, "_msvcrt", lambda: fake)
    first = locks.DirectoryLock(tmp_path)
    assert os.listdir(tmp_path) == [locks.LOCK_NAME]
    with pytest.raises(locks.LockHeld):
        locks.DirectoryLock(tmp_path)
    first.release()
    with locks.DirectoryLock(tmp_path):
        pass
    assert fake.held == set()
    # Lock, refused lock, unlock, lock, unlock: one byte at offset 0 each time.
    assert fake.calls == [(2, 1, 0), (2, 1, 0), (0, 1, 0), (2, 1, 0), (0, 1, 0)]


# -- processes -------------------------------------------------------------------

def test_peak_rss_from_proc_on_linux():
    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc")
    # In a fresh process: this one's high-water mark may already be far above
    # what it holds now (the suite has run before).
    code = ("from ntdsbackup.platform import processes\n"
            "before = processes.peak_rss_kib()\n"
            "block = bytearray(96 << 20)       # zero-filled: every page touched\n"
            "print(before, processes.peak_rss_kib())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    before, after = map(int, r.stdout.split())
    assert after - before >= 64 << 10


def test_peak_rss_without_proc_falls_back(monkeypatch):
    import builtins
    real_open = builtins.open

    def no_proc(path, *a, **kw):
        if str(path).startswith("/proc"):
            raise FileNotFoundError(errno.ENOENT, "no /proc", path)
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setitem(sys.modules, "psutil", None)         # not installed
    kib = processes.peak_rss_kib()
    assert kib is not None and kib > 1024                     # ru_maxrss
    monkeypatch.setitem(sys.modules, "resource", None)       # Windows: no resource
    assert processes.peak_rss_kib() is None


def test_wait_child_measures_where_wait4_exists(monkeypatch):
    argv = [sys.executable, "-c", "import sys; sys.exit(3)"]
    code, cpu, rss = processes.wait_child(subprocess.Popen(argv))
    assert code == 3 and cpu is not None and cpu > 0 and rss is not None and rss > 1024
    monkeypatch.delattr(os, "wait4")
    proc = subprocess.Popen(argv)
    assert processes.wait_child(proc) == (3, None, None) and proc.returncode == 3


def test_bench_report_shows_what_could_not_be_measured():
    from ntdsbackup.bench.harness import Contender, Run
    from ntdsbackup.bench.report import _row

    c = Contender("engine", [])
    c.runs = [Run(10 ** 9, 1.0, None, None), Run(10 ** 9, 2.0, None, None)]
    s = c.summary()
    assert s["cpu_seconds_median"] is None and s["max_rss_mib"] is None
    assert _row(s).split()[-2:] == ["n/a", "n/a"]
    c.runs.append(Run(10 ** 9, 1.0, 0.5, 2048))
    s = c.summary()
    assert s["cpu_seconds_median"] == 0.5 and s["max_rss_mib"] == 2.0


# -- the real DC's path mapping ------------------------------------------------------

def test_local_drive_path_maps_this_computers_shares():
    local = {"DC01"}
    got = PureWindowsPath(str(local_drive_path(r"\\DC01\C$\Windows\NTDS\ntds.dit", local)))
    assert got == PureWindowsPath(r"C:\Windows\NTDS\ntds.dit")
    got = PureWindowsPath(str(local_drive_path(r"\\dc01.corp.example\d$\Logs\edb.log", local)))
    assert got == PureWindowsPath(r"d:\Logs\edb.log") and got.drive.upper() == "D:"


@pytest.mark.parametrize("unc", [r"\\DC02\C$\Windows\NTDS\ntds.dit",
                                 r"\\dc02.corp.example\C$\Windows\NTDS\ntds.dit"])
def test_local_drive_path_refuses_another_server(unc):
    with pytest.raises(PathMappingError, match="not on this computer"):
        local_drive_path(unc, {"DC01"})


def test_local_names_include_the_host_name(monkeypatch):
    import socket
    monkeypatch.setattr(socket, "gethostname", lambda: "dc07.corp.example")
    monkeypatch.setenv("COMPUTERNAME", "DC07")
    names = local_names()
    assert {"dc07", "dc07.corp.example", "localhost"} <= names
    assert PureWindowsPath(str(local_drive_path(r"\\DC07\C$\x"))) == PureWindowsPath(r"C:\x")


# -- one place for platform differences ----------------------------------------------

# What only platform/ may call: the OS-specific calls of the Windows port.
_PLATFORM_ONLY = re.compile(
    r"sys\.platform|os\.(fchmod|statvfs|pread|pwrite|sync|wait4)\b|/proc/|"
    r"^\s*(import|from)\s+(fcntl|resource|msvcrt)\b|ctypes\.windll")
# provider.py picks its library names by platform (the issue allows it).
_ALLOWED = {("provider.py", "sys.platform")}


def test_platform_differences_live_in_platform():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "platform":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = _PLATFORM_ONLY.search(line)
            if m and (str(rel), m.group(0)) not in _ALLOWED:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []


def test_existing_files_are_not_opened_in_text_mode():
    """os.open outside platform/ with a bare O_RDONLY/O_RDWR would be text
    mode on Windows; OPEN_READ/OPEN_RDWR carry O_BINARY."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "platform":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"os\.open\(", line) and re.search(r"os\.O_(RDONLY|RDWR)\b", line):
                found.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert found == []


class _Loaded:
    def __init__(self, path):
        self.path = path


def test_which_provider_is_the_emulator(monkeypatch, tmp_path):
    """The bundled library by name; on Windows, where the emulator is built as
    ntdsbcli.dll, the one NTDSB_PROVIDER names while NTDSB_EMU_ROOT is set;
    the system's ntdsbcli.dll never."""
    from ntdsbackup.provider_paths import emulated_dc_path, is_emulated, path_mapper

    monkeypatch.delenv("NTDSB_PROVIDER", raising=False)
    monkeypatch.delenv("NTDSB_EMU_ROOT", raising=False)
    assert is_emulated(_Loaded("/site/ntdsbackup/libntdsbemu.so"))
    assert not is_emulated(_Loaded("ntdsbcli.dll"))
    built = str(tmp_path / "build" / "ntdsbcli.dll")
    monkeypatch.setenv("NTDSB_PROVIDER", built)
    assert not is_emulated(_Loaded(built))              # no emulator root: a real DLL
    monkeypatch.setenv("NTDSB_EMU_ROOT", str(tmp_path / "emu"))
    assert is_emulated(_Loaded(built))
    assert path_mapper(_Loaded(built)) is emulated_dc_path
    assert not is_emulated(_Loaded("ntdsbcli.dll"))     # the system's, not the one named


def test_pid_alive_asks_openprocess_on_windows(monkeypatch):
    """On Windows os.kill(pid, 0) would end the process: the check goes to
    the Windows half (faked here), and the answer is what it says."""
    import types

    from ntdsbackup.platform import processes

    asked = []
    fake = types.ModuleType("ntdsbackup.platform._win32")
    fake.process_exists = lambda pid: asked.append(pid) or pid == 4242
    monkeypatch.setitem(sys.modules, "ntdsbackup.platform._win32", fake)
    monkeypatch.setattr(processes.sys, "platform", "win32")
    monkeypatch.setattr(processes.os, "kill", lambda *a: pytest.fail("os.kill on Windows"))
    assert processes.pid_alive(4242) and not processes.pid_alive(4243)
    assert asked == [4242, 4243]
