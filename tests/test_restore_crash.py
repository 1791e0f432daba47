"""The restore's crash consistency: interrupted at every line it runs, or
killed at many points, the DC holds its old file set or the archive's, whole,
and a restore reported complete is never undone (docs/RESTORE.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ntdsbackup
from dctools import snapshot
from ntdsbackup import errors
from ntdsbackup.phases import restore_journal as rj
from ntdsbackup.phases.backup import backup
from ntdsbackup.phases.restore import recover, restore

CHUNK = 64 * 1024
PACKAGE = str(Path(ntdsbackup.__file__).resolve().parent) + os.sep


def visible(snap: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in snap.items() if not k.startswith(".")}


class Scene:
    """A DC in DSRM whose files changed after its backup (so the old and the
    new set differ in every file but the untouched logs), restorable from a
    pristine copy before every run."""

    def __init__(self, make_dc, tmp_path: Path):
        self.dc = make_dc("DC01", size=2 << 20, log_size=128 << 10, log_count=2)
        self.archive = tmp_path / "dc01.tar.zst"
        backup("DC01", self.archive, chunk_size=CHUNK)
        self.dc.activity(0.05, seed=3)
        self.dc.stop()
        cfg = self.dc.config()
        cfg.trace = True
        self.dc.save_config(cfg)
        self.pristine = tmp_path / "pristine"
        shutil.copytree(self.dc.path, self.pristine, symlinks=True)
        self.old = snapshot(self.dc.ntds_dir)
        restore(self.archive, "DC01")
        self.new = snapshot(self.dc.ntds_dir)
        assert set(self.old) != set(self.new) or self.old != self.new
        self.reset()

    def reset(self) -> None:
        shutil.rmtree(self.dc.path)
        shutil.copytree(self.pristine, self.dc.path, symlinks=True)

    def calls(self) -> list[str]:
        log = self.dc.path / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def assert_whole(self, where: str, killed_pid: int | None = None) -> str:
        """The invariant after an interruption the process itself handled:
        exactly one whole set, nothing else, the registration agreeing, every
        handle ended (but those of a process that was killed)."""
        snap = snapshot(self.dc.ntds_dir)
        st = self.dc.restore_state()
        if snap == self.new:
            assert st is not None and (st.state, st.hr) == ("complete", 0), where
            which = "new"
        else:
            assert snap == self.old, f"{where}: neither set: {sorted(snap)}"
            assert st is None, f"{where}: old files but a registration {st}"
            which = "old"
        lines = [ln for ln in self.calls() if ln.split()[0] != str(killed_pid)]
        opened = sum("DsRestorePrepareW" in ln and "hr=0x00000000" in ln for ln in lines)
        ended = sum(" DsRestoreEnd " in f" {ln} " for ln in lines)
        assert opened == ended, f"{where}: {opened} handles opened, {ended} ended"
        return which


@pytest.fixture
def scene(make_dc, tmp_path):
    return Scene(make_dc, tmp_path)


def _package_lines(run) -> list[tuple[str, int]]:
    """Every (file, line) of the package that `run` executes, in first-hit order."""
    seen: dict[tuple[str, int], None] = {}

    def local(frame, event, arg):
        if event == "line":
            seen.setdefault((frame.f_code.co_filename, frame.f_lineno), None)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(PACKAGE) else None

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return list(seen)


class _Injected(KeyboardInterrupt):
    pass


def _fresh_process_state() -> None:
    """What a new process would start with, where an interrupted line may
    have left this one otherwise (a signal handler not put back)."""
    import signal

    from ntdsbackup.platform import signals

    signals._console = signals._ConsoleControl()
    for signum in signals.TERMINATION_SIGNALS:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                      else signal.SIG_DFL)


def _interrupt_at(target: tuple[str, int], run) -> bool:
    """Run with a KeyboardInterrupt raised the first time `target` is about to
    execute; True if it fired."""
    fired = []

    def local(frame, event, arg):
        if event == "line" and not fired and (frame.f_code.co_filename,
                                               frame.f_lineno) == target:
            fired.append(True)
            raise _Injected(f"{target[0]}:{target[1]}")
        return local

    def tracer(frame, event, arg):
        return local if not fired and frame.f_code.co_filename.startswith(PACKAGE) else None

    sys.settrace(tracer)
    try:
        run()
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    return bool(fired)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_keyboard_interrupt_at_every_line_leaves_one_whole_set(scene, capsys):
    """One run per line the restore executes inside the package, each from the
    same DSRM state, a KeyboardInterrupt raised just before that line."""
    import gc

    lines = _package_lines(lambda: restore(scene.archive, "DC01"))
    scene.reset()
    assert len(lines) > 300
    outcomes = {"old": 0, "new": 0}
    for target in lines:
        fired = _interrupt_at(target, lambda: restore(scene.archive, "DC01"))
        gc.collect()             # what an interrupted line left open is closed
        _fresh_process_state()
        where = f"{os.path.relpath(target[0], PACKAGE)}:{target[1]}"
        assert fired, where
        which = scene.assert_whole(where)
        outcomes[which] += 1
        # Nothing is left to recover, and the DC starts on the set it holds.
        assert recover("DC01").outcome == "nothing", where
        assert snapshot(scene.dc.ntds_dir) == (scene.new if which == "new" else scene.old)
        started = scene.dc.start()
        assert started["checked"] == (which == "new"), where
        scene.reset()
    with capsys.disabled():
        print(f"\n  interrupted at {len(lines)} lines: {outcomes['old']} left the old set, "
              f"{outcomes['new']} the archive's")
    assert outcomes["old"] and outcomes["new"]


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from ntdsbackup.phases.restore import restore
    pkg, archive, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    count = [0]
    files = []
    def local(frame, event, arg):
        if event == "line":
            count[0] += 1
            if kill_at < 0:
                files.append((frame.f_code.co_filename, frame.f_code.co_name))
            elif count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return local
    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(pkg) else None
    print(os.getpid(), flush=True)
    sys.settrace(tracer)
    restore(archive, "DC01")
    sys.settrace(None)
    def first(name):
        return next(i for i, (f, n) in enumerate(files, 1)
                    if n == name and f.endswith("restore_journal.py"))
    print(count[0], first("create"), first("forward"))
""")


def _child(scene, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CHILD, PACKAGE, str(scene.archive),
                           str(kill_at)], capture_output=True, text=True, timeout=120)


def test_sigkill_at_many_points_then_recover(scene, capsys):
    """SIGKILL at points spread over the whole restore and at every few lines
    of the swap; then `restore --recover` settles it and the DC starts."""
    r = _child(scene, -1)
    assert r.returncode == 0, r.stderr
    total, swap_start, _ = map(int, r.stdout.split()[1:])
    scene.reset()
    # A few points while planning and staging, many once the record is written.
    points = sorted(set(range(1, swap_start, max(1, swap_start // 8))) |
                    set(range(swap_start, total + 1, max(1, (total - swap_start) // 120))))
    seen = {"old": 0, "new": 0}
    for i, n in enumerate(points):
        r = _child(scene, n)
        assert r.returncode == -9, (n, r.stderr[-2000:])
        snap = snapshot(scene.dc.ntds_dir)
        st = scene.dc.restore_state()
        # Nothing is lost: one whole set is on disk, aside or staged included.
        assert set(scene.old.values()) <= set(snap.values()) or \
            set(scene.new.values()) <= set(snap.values()), n
        if st is None:
            # Nothing registered: a DC booting now sees exactly its old files.
            assert visible(snap) == scene.old, n
        elif st.state != "complete":
            with pytest.raises(errors.DCStateError, match="never completed"):
                scene.dc.start()
        else:
            assert st.hr == 0 and visible(snap) == scene.new, n
        if i % 4 == 0:        # the command an admin runs; in process otherwise (faster)
            cli = subprocess.run([sys.executable, "-m", "ntdsbackup", "restore", "--recover",
                                  "--server", "DC01"], capture_output=True, text=True,
                                 timeout=120)
            assert cli.returncode == 0, (n, cli.stderr)
        else:
            recover("DC01")
        which = scene.assert_whole(f"kill at {n}", killed_pid=int(r.stdout.split()[0]))
        seen[which] += 1
        assert scene.dc.start()["checked"] == (which == "new")
        scene.reset()
    with capsys.disabled():
        print(f"\n  SIGKILL at {len(points)} of {total} line events: recovery gave "
              f"{seen['old']} old sets, {seen['new']} archive sets")
    assert seen["old"] and seen["new"]


def test_next_restore_settles_an_interrupted_one_first(scene):
    """Killed after the registration: the next plain restore finishes the old
    one from its record, then runs its own."""
    r = _child(scene, -1)
    total, _, moves = map(int, r.stdout.split()[1:])
    scene.reset()
    # Inside the moves: after DsRestoreRegisterW, before its completion.
    killed = _child(scene, moves + 5)
    assert killed.returncode == -9
    st = scene.dc.restore_state()
    assert st is not None and st.state == "registered"
    assert (scene.dc.ntds_dir / rj.JOURNAL_NAME).exists()
    result = restore(scene.archive, "DC01")
    assert result.recovered is not None and result.recovered.outcome == "completed"
    assert scene.assert_whole("after the next restore",
                              killed_pid=int(killed.stdout.split()[0])) == "new"


def test_journal_naming_paths_outside_the_dc_is_refused(scene, tmp_path):
    """A record that would move files outside the DC's directories is not acted on."""
    import json

    victim = tmp_path / "victim"
    victim.write_text("precious")
    doc = {"format": rj.JOURNAL_FORMAT, "version": 1, "id": "x", "state": "registering",
           "server": "DC01", "archive": "a", "token": "", "register": {},
           "new": [], "old": [{"path": str(victim),
                               "aside": str(scene.dc.ntds_dir / ".ntdsb-old-x" / "victim")}]}
    (scene.dc.ntds_dir / rj.JOURNAL_NAME).write_text(json.dumps(doc))
    with pytest.raises(rj.JournalError, match="outside the DC's directories"):
        recover("DC01")
    assert victim.read_text() == "precious"
