"""mypy --strict passes on the public modules and on a sample embedder
(tests/mypy.ini lists them), and the sample runs against an emulated DC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "mypy.ini"

pytest.importorskip("mypy", reason="mypy comes with the lint extra")


def _mypy(tmp_path: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir",
         str(tmp_path / "mypy-cache"), "--no-error-summary", *files],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_strict_passes_on_the_public_modules_and_the_sample(tmp_path):
    proc = _mypy(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_catches_a_misused_event(tmp_path):
    """The events are typed: a key one event lacks is an error, as are a
    wrong argument type and a wrong callback."""
    bad = tmp_path / "bad_embedder.py"
    bad.write_text(
        "import ntdsbackup\n"
        "def cb(event: ntdsbackup.Event) -> None:\n"
        "    if event['event'] == 'phase':\n"
        "        print(event['done'])\n"
        "def wrong(event: int) -> None: ...\n"
        "ntdsbackup.backup('DC01', 'x.tar.zst', level='fast')\n"
        "ntdsbackup.restore('x.tar.zst', 'DC01', progress=wrong)\n")
    proc = _mypy(tmp_path, str(bad))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert 'TypedDict "PhaseEvent" has no key "done"' in out, out
    assert 'Argument "level" to "backup" has incompatible type "str"' in out, out
    assert 'Argument "progress" to "restore" has incompatible type' in out, out


def test_the_sample_embedder_runs(dc):
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import embedder_sample
    finally:
        sys.path.remove(str(ROOT / "tests"))
    plan = embedder_sample.run(dc.name)
    assert plan.database is not None and len(plan.files) >= 2
