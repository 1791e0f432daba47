"""The C-level tests of tests/native, built standalone with -Wall -Wextra
-Werror and run: plainly, under AddressSanitizer + UBSan, and (the emulator,
whose contract is widest) under valgrind.  Each prints 'N passed, N failed'."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "tests" / "native"


def _run(script: str, mode: str, tmp_path: Path, timeout: int = 1200) -> str:
    env = dict(os.environ, BUILD_DIR=str(tmp_path))
    args = ["sh", str(NATIVE / script), mode]
    if script == "build_emu.sh":
        args.append(str(tmp_path / mode))
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    return out


def _run_binary(path: Path, *, under: list[str] | None = None, env: dict | None = None,
                timeout: int = 1200) -> str:
    r = subprocess.run([*(under or []), str(path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    return out


def _assert_all_passed(out: str) -> None:
    m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.MULTILINE)
    assert m, out[-2000:]
    for passed, failed in m:
        assert int(passed) > 0 and int(failed) == 0, out[-4000:]


@pytest.mark.parametrize("mode", ["plain", "asan"])
def test_emulator_native(tmp_path, mode):
    _assert_all_passed(_run("build_emu.sh", mode, tmp_path))


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind is not installed (make deps installs it)")
def test_emulator_under_valgrind(tmp_path):
    _assert_all_passed(_run("build_emu.sh", "valgrind", tmp_path))


@pytest.mark.parametrize("script,binary", [("build_pipeline.sh", "test_pipeline"),
                                           ("build_restore.sh", "test_restore"),
                                           ("build_age.sh", "test_age"),
                                           ("build_age.sh", "test_age_none"),
                                           ("build_pages.sh", "test_pages")])
@pytest.mark.parametrize("mode", ["plain", "asan"])
def test_engine_native(tmp_path, script, binary, mode):
    _run(script, mode, tmp_path)
    name = binary if mode == "plain" else f"{binary}_asan"
    _assert_all_passed(_run_binary(tmp_path / name))


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind is not installed (make deps installs it)")
@pytest.mark.parametrize("script,binary", [("build_pipeline.sh", "test_pipeline"),
                                           ("build_restore.sh", "test_restore"),
                                           ("build_age.sh", "test_age"),
                                           ("build_age.sh", "test_age_none"),
                                           ("build_pages.sh", "test_pages")])
def test_engine_under_valgrind(tmp_path, script, binary):
    _run(script, "plain", tmp_path)
    # Timing-sensitive cases get ten times the slack under valgrind.
    out = _run_binary(tmp_path / binary,
                      under=["valgrind", "-q", "--error-exitcode=1", "--leak-check=full",
                             "--errors-for-leak-kinds=all"],
                      env={"NTDSB_TEST_TIMING_SCALE": "10"})
    _assert_all_passed(out)
