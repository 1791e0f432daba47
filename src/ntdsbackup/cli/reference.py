"""The command-line reference, generated from the parser itself so that it
cannot drift from what the tool accepts: docs/CLI.md (Markdown, committed,
checked by tests/test_cli_reference.py) and the man page.

    python -m ntdsbackup.cli.reference > docs/CLI.md
    python -m ntdsbackup.cli.reference --man > ntdsbackup.1
"""

from __future__ import annotations

import argparse
import sys

from .common import (
    EXIT_ACCESS,
    EXIT_ARCHIVE,
    EXIT_DAMAGED,
    EXIT_DC_STATE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_NTDSBCLI,
    EXIT_OK,
    EXIT_USAGE,
)
from .main import build_parser

EXIT_CODES = [
    (EXIT_OK, "success"),
    (EXIT_ERROR, "unexpected error"),
    (EXIT_USAGE, "usage error: a bad option, no usable password, an output that exists "
                 "without --overwrite"),
    (EXIT_DC_STATE, "the DC is in the wrong state: offline for a backup, online for a "
                    "restore, a failed consistency check"),
    (EXIT_ACCESS, "access denied"),
    (EXIT_ARCHIVE, "the archive is invalid, corrupted, hostile or incomplete"),
    (EXIT_NTDSBCLI, "another ntdsbcli failure"),
    (EXIT_IO, "I/O or engine failure (a closed output pipe included)"),
    (EXIT_DAMAGED, "the database or its logs fail the ESE page and log checks: a backup "
                   "refused under --on-bad-page fail, `verify --deep` finding the archive "
                   "not bootable, a restore refused before anything changed"),
    (EXIT_INTERRUPTED, "interrupted by SIGINT (Ctrl-C)"),
    (128 + 15, "interrupted by SIGTERM"),
    (128 + 1, "interrupted by SIGHUP"),
]


def _subcommands(parser: argparse.ArgumentParser):
    """(name, help, subparser) of each subcommand, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            name = ", ".join(f"`{o}`" for o in action.option_strings)
            if action.nargs != 0:
                name += f" `{action.metavar or action.dest.upper()}`"
        else:
            name = f"`{action.metavar or action.dest}`"
        text = (action.help or "").replace("%%", "%").replace("|", "\\|")
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            text += f" (one of {', '.join(map(str, action.choices))})"
        default = action.default
        if action.option_strings and action.nargs != 0 and default not in (None, False) \
                and "default" not in text:
            text += f" (default {default})"
        rows.append(f"| {name} | {text.strip()} |")
    return rows


def _section(lines: list[str], path: str, parser: argparse.ArgumentParser, level: int,
             summary: str) -> None:
    lines += [f"{'#' * level} `{path}`", ""]
    if summary:
        lines += [summary[0].upper() + summary[1:] + ".", ""]
    usage = " ".join(parser.format_usage().split())
    lines += ["```", usage.replace("usage: ", "", 1), "```", ""]
    rows = _option_rows(parser)
    if rows:
        lines += ["| argument | meaning |", "|---|---|", *rows, ""]
    for name, text, sub in _subcommands(parser):
        _section(lines, f"{path} {name}", sub, level + 1, text)


def markdown() -> str:
    parser = build_parser()
    lines = ["# The `ntdsbackup` command line", "",
             "Generated from the parser (`python -m ntdsbackup.cli.reference > docs/CLI.md`);"
             " a test checks that it matches.", "",
             parser.description or "", "", "## Exit codes", "", "| code | meaning |",
             "|---|---|", *[f"| {code} | {text} |" for code, text in EXIT_CODES], "",
             "## Commands", ""]
    for name, text, sub in _subcommands(parser):
        _section(lines, f"ntdsbackup {name}", sub, 3, text)
    return "\n".join(lines).rstrip() + "\n"


def man_page() -> str:
    """The man page, through argparse-manpage (the [docs] extra)."""
    from argparse_manpage.manpage import Manpage

    parser = build_parser()
    page = Manpage(parser, format="single-commands-section")
    exit_text = "\n".join(f".TP\n.B {code}\n{text}" for code, text in EXIT_CODES)
    return f"{page}\n.SH EXIT STATUS\n{exit_text}\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(man_page() if args == ["--man"] else markdown())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
