"""ruff and cython-lint over the project, so style problems fail the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The linters run further tools by name (cython-lint runs pycodestyle): they
# must find the venv's, whether or not the venv is activated.
ENV = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name, path=ENV["PATH"])
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the [lint] extra)")
    return found


def test_ruff():
    r = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT,
                       capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cython_lint():
    pyx = [str(p) for p in [ROOT / "src" / "_ntdsbcli.pyx", *sorted((ROOT / "src" / "pyx")
                                                                     .glob("*.pxi"))]]
    r = subprocess.run([_tool("cython-lint"), *pyx], cwd=ROOT, capture_output=True, text=True,
                       env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
