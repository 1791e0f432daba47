"""backup, verify, ls, extract, restore and bench subcommands."""

from __future__ import annotations


def add_parsers(sub, common) -> None:
    """Registers the archive subcommands (none yet in this version)."""


def dispatch(args) -> int:
    raise SystemExit(f"ntdsbackup: unknown command {args.command!r}")
