"""ruff and cython-lint over the project, so style problems fail the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the [test] extra)")
    return found


def test_ruff():
    r = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cython_lint():
    pyx = [str(p) for p in [ROOT / "src" / "_ntdsbcli.pyx", *sorted((ROOT / "src" / "pyx")
                                                                     .glob("*.pxi"))]]
    r = subprocess.run([_tool("cython-lint"), *pyx], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
