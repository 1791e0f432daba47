"""What the command line writes for a person: the progress bar on a real
terminal (a pseudo-terminal here), -q and -v, and errors that say where
they looked."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from dctools import cli, set_faults
from ntdsbackup.cli.main import build_parser
from ntdsbackup.cli.progress import render

BAR_LINE = re.compile(r"\d+\.\d%")


def on_terminal(args, columns: int, timeout: float = 120) -> tuple[int, str, str]:
    """`ntdsbackup ARGS` with standard error on a pseudo-terminal `columns`
    wide (standard output a pipe): exit code, what the terminal received, stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = dict(os.environ, COLUMNS=str(columns))
    proc = subprocess.Popen([sys.executable, "-m", "ntdsbackup", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=env)
    os.close(slave)
    received = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:           # EIO: the child closed its end
            break
        if not chunk:
            break
        received += chunk
    out, _ = proc.communicate(timeout=timeout)
    os.close(master)
    return proc.returncode, received.decode(), out.decode()


def screen_lines(text: str) -> tuple[list[str], list[str]]:
    """(every line as drawn: each redraw after a carriage return counts,
    the lines the terminal keeps: what is left of each once it ends)."""
    drawn, kept = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        parts = [p.replace("\x1b[K", "") for p in line.split("\r")]
        drawn += parts
        kept.append(parts[-1])
    return drawn, kept


@pytest.fixture
def slow_dc(make_dc):
    """A DC whose backup lasts about half a second: several redraws."""
    dc = make_dc(size=16 << 20)
    set_faults(dc, bandwidth=40_000_000)
    return dc


@pytest.mark.parametrize("columns", [80, 120])
def test_bar_fits_the_terminal_and_ends_once(slow_dc, tmp_path, columns):
    code, tty, _ = on_terminal(["backup", "--server", "DC01", "-o", tmp_path / "a.tar.zst"],
                               columns)
    assert code == 0, tty
    drawn, kept = screen_lines(tty)
    bars = [line for line in drawn if BAR_LINE.search(line)]
    assert len(bars) >= 3, tty                       # it did redraw
    assert max(len(line) for line in drawn) < columns, tty
    finished = [line for line in kept if "100.0%" in line]
    assert len(finished) == 1, kept                  # one final line for the job
    assert re.search(r"\d+ files", finished[0]), finished


def test_restore_and_verify_draw_a_bar_too(slow_dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    assert cli("backup", "--server", "DC01", "-o", archive).returncode == 0
    code, tty, out = on_terminal(["verify", archive], 80)
    assert code == 0 and "OK:" in out, tty
    drawn, kept = screen_lines(tty)
    assert [line for line in kept if "100.0%" in line] and max(map(len, drawn)) < 80
    assert cli("dc", "stop", "DC01").returncode == 0
    code, tty, out = on_terminal(["restore", archive, "--server", "DC01", "--dry-run"], 80)
    assert code == 0, tty
    kept = screen_lines(tty)[1]
    assert [line for line in kept if line.startswith("verify: ") and "100.0%" in line], kept


def test_error_starts_on_its_own_line(slow_dc, tmp_path):
    set_faults(slow_dc, read_hr=0x8007001F, read_after=8 << 20)
    code, tty, _ = on_terminal(["backup", "--server", "DC01", "-o", tmp_path / "a.tar.zst"],
                               80)
    assert code != 0
    drawn, kept = screen_lines(tty)
    assert any(BAR_LINE.search(line) for line in drawn), tty     # a bar was on screen
    errors = [line for line in kept if "ntdsbackup: error:" in line]
    assert errors and all(line.startswith("ntdsbackup: error:") for line in errors), kept


def test_no_bar_when_stderr_is_not_a_terminal_or_with_quiet(slow_dc, tmp_path):
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "a.tar.zst", text=True)
    assert r.returncode == 0 and not BAR_LINE.search(r.stderr), r.stderr
    code, tty, out = on_terminal(["backup", "-q", "--server", "DC01", "-o",
                                  tmp_path / "b.tar.zst"], 80)
    assert code == 0 and tty == "" and out == ""


@pytest.mark.parametrize("width", [20, 40, 60, 79, 80, 119, 200])
def test_render_never_exceeds_the_width(width):
    for label in ("x", "logs/edb00001.log", "stage: " + "very-long-name/" * 20):
        for eta, elapsed in ((123456.0, None), (None, 3.2), (None, None)):
            line = render(label, 3 << 30, 16 << 40, 987.6e6, eta, elapsed, width)
            assert len(line) <= width and "%" in line, (width, line)


def test_render_drops_optional_fields_when_narrow():
    wide = render("database/ntds.dit", 1 << 20, 4 << 20, 5e6, 12.0, None, 119)
    narrow = render("database/ntds.dit", 1 << 20, 4 << 20, 5e6, 12.0, None, 30)
    assert "ETA" in wide and "MB/s" in wide and "ntds.dit" in wide
    assert "ETA" not in narrow and "25.0%" in narrow


# -- -q and -v ---------------------------------------------------------------------------
def _subcommands(parser):
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            if sub._subparsers is not None:
                yield from ((f"{name} {n}", s) for n, s in _subcommands(sub))
            else:
                yield name, sub


def test_every_command_has_quiet_and_verbose():
    names = []
    for name, sub in _subcommands(build_parser()):
        options = {o for a in sub._actions for o in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, name
        names.append(name)
    assert {"backup", "restore", "verify", "ls", "extract", "bench", "dc status",
            "dc fault"} <= set(names)


def test_quiet_before_the_command_name_is_kept():
    args = build_parser().parse_args(["-q", "dc", "status", "DC01"])
    assert args.quiet and not args.verbose


def test_quiet_and_verbose_together_is_a_usage_error(dc):
    r = cli("dc", "status", "DC01", "-q", "-v", text=True)
    assert r.returncode == 2 and "exclude each other" in r.stderr


def test_time_breakdown_only_with_verbose(dc, tmp_path):
    plain = cli("backup", "--server", "DC01", "-o", tmp_path / "a.tar.zst", text=True)
    assert plain.returncode == 0 and "backed up DC01" in plain.stdout
    assert "reader waited" not in plain.stdout + plain.stderr
    verbose = cli("backup", "-v", "--server", "DC01", "-o", tmp_path / "b.tar.zst", text=True)
    assert verbose.returncode == 0 and "the reader waited" in verbose.stdout
    quiet = cli("backup", "-q", "--server", "DC01", "-o", tmp_path / "c.tar.zst", text=True)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "c.tar.zst").stat().st_size > 0


def test_quiet_prints_only_errors(dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    assert cli("backup", "--server", "DC01", "-o", archive).returncode == 0
    for args in (["verify", archive], ["ls", archive], ["dc", "status", "DC01"],
                 ["extract", archive, tmp_path / "x"], ["dc", "activity", "DC01"]):
        r = cli(*args, "-q", text=True)
        assert r.returncode == 0 and r.stdout == r.stderr == "", (args, r.stdout, r.stderr)
    r = cli("verify", tmp_path / "missing.tar.zst", "-q", text=True)
    assert r.returncode != 0 and r.stdout == "" and "ntdsbackup: error:" in r.stderr


def test_verbose_adds_each_file(dc, tmp_path):
    archive = tmp_path / "a.tar.zst"
    assert cli("backup", "--server", "DC01", "-o", archive).returncode == 0
    plain = cli("extract", archive, tmp_path / "x", text=True).stdout
    verbose = cli("extract", archive, tmp_path / "y", "-v", text=True).stdout
    files = int(re.search(r"extracted (\d+) files", plain).group(1))
    assert files >= 2 and "xxh3-128" not in plain
    assert verbose.count("xxh3-128") == files and f"extracted {files} files" in verbose


def test_stdout_archive_with_quiet_is_only_the_archive(dc, tmp_path):
    r = cli("backup", "-q", "--server", "DC01", "-o", "-")
    assert r.returncode == 0 and r.stderr == b""
    (tmp_path / "a.tar.zst").write_bytes(r.stdout)
    assert cli("verify", tmp_path / "a.tar.zst").returncode == 0     # nothing else in it


# -- errors say where they looked ---------------------------------------------------------
def test_unknown_server_names_the_emulator_root(dc, emu_root, tmp_path):
    r = cli("backup", "--server", "NOPE", "-o", tmp_path / "a.tar.zst", text=True)
    assert r.returncode == 6
    assert f"under {emu_root.resolve()} (from $NTDSB_EMU_ROOT)" in r.stderr, r.stderr
    assert "holds no DC folder NOPE" in r.stderr
    missing = tmp_path / "nowhere"
    r = cli("backup", "--server", "DC01", "--emu-root", missing, "-o", tmp_path / "b.tar.zst",
            text=True)
    assert f"under {missing} (from --emu-root), which does not exist" in r.stderr, r.stderr


def test_no_root_set_says_it_is_the_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NTDSB_EMU_ROOT"}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"))
    r = cli("backup", "--server", "DC01", "-o", tmp_path / "a.tar.zst", env=env, text=True)
    assert r.returncode == 6
    assert f"under {tmp_path / 'xdg' / 'ntdsbackup' / 'emu'} (the default" in r.stderr, r.stderr


def test_other_dc_refusal_names_the_option(make_dc, tmp_path):
    make_dc("DC01")
    other = make_dc("DC02")
    archive = tmp_path / "a.tar.zst"
    assert cli("backup", "--server", "DC01", "-o", archive).returncode == 0
    other.stop()
    r = cli("restore", archive, "--server", "DC02", "--dry-run", text=True)
    assert r.returncode == 5 and "give --allow-other-server" in r.stderr, r.stderr
