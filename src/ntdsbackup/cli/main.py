"""The ``ntdsbackup`` command line.

Exit codes (also in the README):
  0 success; 1 unexpected error; 2 usage error (a bad option, no usable
  password, an output that exists without --overwrite); 3 the DC is in the
  wrong state (offline for a backup, online for a restore, failed
  consistency check); 4 access denied; 5 archive invalid, corrupted or
  incomplete; 6 other ntdsbcli failure; 7 I/O or engine failure (a closed
  output pipe included); 8 the database or its logs fail the ESE checks
  (not bootable); 130, 143, 129 interrupted by SIGINT (Ctrl-C),
  SIGTERM, SIGHUP (128 + the signal number).

Every option is checked when the command line is parsed (argtypes.py, and
the _validate hooks of each command group for rules that join two options),
before anything is asked of a DC.  Each command group registers its parsers
and handlers (dc_cmd, archive_cmd, bench_cmd, keys_cmd); what they share is in
common.  When standard output carries the archive (backup -o -),
nothing else is ever written there: progress, JSON events, errors and
summaries go to standard error.
"""

from __future__ import annotations

import argparse
import sys

import shtab

from .. import errors
from ..platform import signals
from . import archive_cmd, bench_cmd, dc_cmd, fleet_cmd, keys_cmd
from .common import (
    EXIT_IO,
    Reporter,
    broken_pipe,
    common_options,
    error_message,
    exit_code_for,
)


def build_parser() -> argparse.ArgumentParser:
    common = common_options(subcommand=True)
    parser = argparse.ArgumentParser(
        prog="ntdsbackup", parents=[common_options()],
        description="Back up and restore Active Directory domain controllers through the "
                    "ntdsbcli streaming API.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"ntdsbackup {__version__}")
    # `ntdsbackup --print-completion bash|zsh|tcsh`: a completion script made
    # from this very parser, so it knows every command and option.
    shtab.add_argument_to(parser, ["--print-completion"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dc_cmd.add_parsers(sub, common)
    archive_cmd.add_parsers(sub, common)
    fleet_cmd.add_parsers(sub, common)
    bench_cmd.add_parsers(sub, common)
    keys_cmd.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:     # --help or --print-completion into a closed pipe
        Reporter(False, False).stdout_closed()
        return EXIT_IO
    if args.quiet and args.verbose:
        parser.error("-q/--quiet and -v/--verbose exclude each other")
    validate = getattr(args, "_validate", None)
    if validate is not None:
        validate(args)
    import os

    from ..emulator import emu_root, use_emu_root

    # Where the root came from, for an error that says where it looked.
    args.emu_root_from = "option" if args.emu_root else \
        "env" if os.environ.get("NTDSB_EMU_ROOT") else "default"
    use_emu_root(emu_root(args.emu_root))
    report = Reporter(getattr(args, "json", False), archive_cmd.stdout_carries_archive(args))
    with signals.termination_handlers():
        try:
            return args.handler(args)
        except KeyboardInterrupt as exc:
            code = exit_code_for(exc)
            report.error(f"interrupted ({signals.signal_name(exc)})", code, "Interrupted")
            return code
        except (errors.NtdsbackupError, OSError, ValueError) as exc:
            code = exit_code_for(exc)
            if broken_pipe(exc):
                report.stdout_closed()
                message = "standard output was closed (broken pipe)" + (
                    ": the archive is incomplete" if report.data_on_stdout else "")
            else:
                message = error_message(exc, args)
            report.error(message, code, type(exc).__name__)
            return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
