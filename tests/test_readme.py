"""Every code block of README.md runs, so the README cannot rot.

```sh blocks run in order, each as one bash script (set -e: every command
must succeed), in one temporary folder with the venv's bin first on PATH
and NTDSB_EMU_ROOT set; lines that start with `make ` are left out (the
Makefile has its own targets), and a block whose first line is a comment
"# not run by the tests: WHY" is skipped for that reason.  Emulated DCs are
made smaller than the README's 1 GiB.  ```python blocks run in a fresh
namespace, in a folder of their own, against a fresh emulated DC01.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = "# not run by the tests:"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks(lang: str) -> list[tuple[int, str]]:
    """(line number, body) of every fenced block of `lang`."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _FENCE.finditer(text)
            if m.group(1) == lang]


def test_every_block_has_a_language_the_test_knows():
    text = README.read_text(encoding="utf-8")
    langs = {m.group(1) for m in _FENCE.finditer(text)}
    assert langs <= {"sh", "python"}, langs
    assert blocks("sh") and blocks("python")


def _script(body: str) -> str | None:
    lines = body.splitlines()
    if lines and lines[0].startswith(SKIP):
        assert lines[0][len(SKIP):].strip(), "say why the block is not run"
        return None
    kept = [line for line in lines if not line.startswith("make ")]
    # The README's DCs are 1 GiB; the suite's are small.
    return "\n".join(re.sub(r"(dc create \S+ --size) 1GiB", r"\1 16MiB", line)
                     for line in kept)


def test_the_shell_blocks_run_against_an_emulated_dc(tmp_path):
    env = dict(os.environ, NTDSB_EMU_ROOT=str(tmp_path / "emu"),
               PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")       # `. .venv/bin/activate`
    ran = 0
    for line, body in blocks("sh"):
        script = _script(body)
        if script is None:
            continue
        proc = subprocess.run(["bash", "-euo", "pipefail", "-xc", script], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (f"README.md line {line}:\n{proc.stderr[-3000:]}")
        ran += bool(script.strip())
    assert ran >= 2                         # "Using it" and the emergency path
    assert (tmp_path / "database" / "ntds.dit").is_file()   # zstd -dc | tar -x


def test_the_skip_marker_is_recognised():
    assert _script(f"{SKIP} needs a real DC\nntdsbackup backup --server DC01 -o -") is None
    assert _script("make demo\nntdsbackup ls x") == "ntdsbackup ls x"


@pytest.mark.parametrize("line,body", blocks("python"), ids=lambda v: str(v)[:20])
def test_the_python_blocks_run_against_an_emulated_dc(line, body, make_dc, tmp_path,
                                                      monkeypatch, capsys):
    make_dc("DC01")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = compile(body, f"README.md:{line}", "exec")
    exec(code, {"__name__": "__readme__"})
    assert capsys.readouterr().out                   # it printed what it says it prints
