"""Helpers shared by the CLI-level tests: running the command line in a
subprocess, the emulator's call journal, faults, and file snapshots that
tell whether a file was touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def cli(*args, **kw) -> subprocess.CompletedProcess:
    """`ntdsbackup ARGS` in a subprocess (never raises on a non-zero exit)."""
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "ntdsbackup", *map(str, args)], **kw)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """r, once it is known to have exited 0 (else the failure shows why)."""
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r


def last_json(r: subprocess.CompletedProcess) -> dict:
    """The last line a --json command printed (its result), parsed."""
    return json.loads(r.stdout.strip().splitlines()[-1])


def popen(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ntdsbackup", *map(str, args)], **kw)


def trace_calls(dc) -> list[str]:
    path = dc.path / "calls.log"
    return [line.split()[1] for line in path.read_text().splitlines()] if path.exists() else []


def enable_trace(dc) -> None:
    cfg = dc.config()
    cfg.trace = True
    dc.save_config(cfg)


def set_faults(dc, **faults) -> None:
    cfg = dc.config()
    cfg.set_faults(**faults)
    dc.save_config(cfg)


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    """Content, mtime and mode of a file, to prove it was not touched."""
    st = os.stat(path)
    return path.read_bytes(), st.st_mtime_ns, st.st_mode


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` (hidden ones and aside folders too), hashed:
    equal snapshots mean the same files with the same contents."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def listing(directory: Path) -> list[str]:
    """Every entry below `directory` (hidden ones too), relative, sorted."""
    out = []
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(out)


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    """Poll until predicate() is true (the bound only stops a broken test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def no_traceback(stderr) -> bool:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    return "Traceback" not in text and "Exception ignored" not in text
