"""docs/CLI.md, the man page and the shell completion come from the parser:
the committed reference must be what the generator produces now, and the
generated forms must name every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ntdsbackup.cli import build_parser, reference

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["dc create", "dc start", "dc stop", "dc status", "dc activity", "dc account",
            "dc fault", "backup", "verify", "ls", "extract", "restore", "bench"]


def test_docs_cli_md_is_current():
    committed = (ROOT / "docs" / "CLI.md").read_text(encoding="utf-8")
    assert committed == reference.markdown(), \
        "docs/CLI.md is stale: python -m ntdsbackup.cli.reference > docs/CLI.md"


def test_reference_names_every_command_option_and_exit_code():
    text = reference.markdown()
    for command in COMMANDS:
        assert f"`ntdsbackup {command}`" in text, command
    for option in ("--recover", "--overwrite", "--password-file", "--allow-other-server",
                   "--chunk-size"):
        assert f"`{option}`" in text, option
    for code in (0, 2, 3, 5, 130, 143, 129):
        assert f"| {code} |" in text


def test_man_page():
    page = reference.man_page()
    assert page.startswith(".TH NTDSBACKUP")
    for command in COMMANDS:
        assert command.replace(" ", " ") in page.replace("\\-", "-"), command
    assert ".SH EXIT STATUS" in page and ".B 143" in page


def test_shell_completion_scripts():
    for shell, marker in (("bash", "complete"), ("zsh", "#compdef")):
        r = subprocess.run([sys.executable, "-m", "ntdsbackup", "--print-completion", shell],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert marker in r.stdout and "restore" in r.stdout and "--recover" in r.stdout


def test_parser_is_the_one_the_cli_runs():
    assert build_parser().prog == "ntdsbackup"
