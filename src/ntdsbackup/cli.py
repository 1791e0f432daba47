"""The ``ntdsbackup`` command line.

Exit codes (also in the README):
  0 success; 1 unexpected error; 2 usage error (a bad option, no usable
  password, an output that exists without --overwrite); 3 the DC is in the
  wrong state (offline for a backup, online for a restore, failed
  consistency check); 4 access denied; 5 archive invalid, corrupted or
  incomplete; 6 other ntdsbcli failure; 7 I/O or engine failure (a closed
  output pipe included); 130, 143, 129 interrupted by SIGINT (Ctrl-C),
  SIGTERM, SIGHUP (128 + the signal number).

Every option is checked when the command line is parsed (argtypes.py, and
_validate_* below for rules that join two options), before anything is
asked of a DC.  When standard output carries the archive (backup -o -),
nothing else is ever written there: progress, JSON events, errors and
summaries go to standard error.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import os
import sys

from . import errors
from .argtypes import (
    UINT32_MAX,
    UINT64_MAX,
    check_dit_size,
    clock_offset_arg,
    dit_size_arg,
    domain_arg,
    fault_count_arg,
    fraction_arg,
    hresult_arg,
    log_count_arg,
    log_size_arg,
    privileges_arg,
    tombstone_days_arg,
    user_arg,
)
from .credentials import PasswordError, add_password_options
from .fsutil import parse_size
from .platform import signals
from .platform.files import FileExists

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DC_STATE = 3
EXIT_ACCESS = 4
EXIT_ARCHIVE = 5
EXIT_NTDSBCLI = 6
EXIT_IO = 7
EXIT_INTERRUPTED = 130          # SIGINT; SIGTERM and SIGHUP give 143 and 129

# Faults whose counter the emulator holds in 32 bits; the others in 64.
_FAULT_LIMITS = {"short_read": UINT32_MAX}


def exit_code_for(exc: BaseException) -> int:
    """The one mapping from exception class to exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return signals.exit_code_for_interrupt(exc)
    if isinstance(exc, (PasswordError, FileExists)):
        return EXIT_USAGE
    if _broken_pipe(exc):
        return EXIT_IO
    if isinstance(exc, errors.DCStateError):
        return EXIT_DC_STATE
    if isinstance(exc, errors.AccessDenied):
        return EXIT_ACCESS
    if isinstance(exc, errors.ArchiveError):
        return EXIT_ARCHIVE
    if isinstance(exc, errors.HResultError) or (isinstance(exc, errors.EngineError)
                                                and exc.hresult is not None):
        return EXIT_NTDSBCLI
    if isinstance(exc, (errors.EngineError, OSError)):
        return EXIT_IO
    if isinstance(exc, errors.NtdsbackupError):
        return EXIT_ERROR
    return EXIT_ERROR


def _broken_pipe(exc: BaseException) -> bool:
    """A write to a pipe whose reader is gone, from Python or from the engine."""
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, errors.EngineError) and exc.sys_errno == errno.EPIPE)


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--emu-root", metavar="DIR",
                   help="emulator root holding emulated DCs (default: $NTDSB_EMU_ROOT, else "
                        "~/.local/share/ntdsbackup/emu)")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="ntdsbackup", parents=[common],
        description="Back up and restore Active Directory domain controllers through the "
                    "ntdsbcli streaming API.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ntdsbackup {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dc = sub.add_parser("dc", parents=[common], help="manage emulated domain controllers")
    dcsub = dc.add_subparsers(dest="dc_command", required=True, metavar="ACTION")

    p = dcsub.add_parser("create", parents=[common], help="create an emulated DC")
    p.add_argument("name")
    p.add_argument("--size", type=dit_size_arg, default=parse_size("64MiB"),
                   help="size of ntds.dit, a whole number of pages up to 16 TiB, e.g. 1GiB "
                        "(default 64MiB; K, M, G are binary)")
    p.add_argument("--page-size", type=int, choices=(8192, 32768), default=8192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="build the DC around an existing ntds.dit (e.g. an IFM copy)")
    p.add_argument("--log-size", type=log_size_arg,
                   help="size of each log file: whole 4 KiB sectors, 8 KiB to 256 MiB - 4 KiB")
    p.add_argument("--log-count", type=log_count_arg,
                   help="number of closed log generations (0 to 1024)")
    p.add_argument("--domain", type=domain_arg, default="CORP")
    p.add_argument("--tombstone-days", type=tombstone_days_arg, default=180,
                   help="tombstone lifetime (2 to 36500 days, default 180)")
    p.add_argument("--force", action="store_true", help="replace an existing DC of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(_validate=functools.partial(_validate_dc_create, p))

    for action, text in (("start", "boot normally (runs the consistency check after a "
                                   "restore)"),
                         ("stop", "reboot into Directory Services Restore Mode")):
        p = dcsub.add_parser(action, parents=[common], help=text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")

    p = dcsub.add_parser("status", parents=[common], help="show a DC's state")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    p = dcsub.add_parser("activity", parents=[common],
                         help="simulate a running DC: rewrite pages, add log generations")
    p.add_argument("name")
    p.add_argument("--pages", type=fraction_arg, default=0.01, metavar="FRACTION",
                   help="fraction of pages to rewrite, e.g. 1%% (default) or 0.05")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")

    p = dcsub.add_parser("account", parents=[common],
                         help="add or replace an account (password from --password-file, "
                              "--password-command, $NTDSB_PASSWORD or a prompt)")
    p.add_argument("name")
    p.add_argument("user", help="DOMAIN\\user")
    p.add_argument("--privileges", type=privileges_arg, default="backup,restore,admin",
                   help="comma list of backup, restore, admin (may be empty)")
    p.add_argument("--default-privileges", dest="set_default", action="store_true",
                   help="instead, set the privileges of callers that give no identity")
    add_password_options(p)
    p.set_defaults(_validate=functools.partial(_validate_dc_account, p))

    p = dcsub.add_parser("fault", parents=[common], help="set or clear injected faults")
    p.add_argument("name")
    p.add_argument("--clear", action="store_true", help="clear every fault first")
    from .emuconf import FAULT_KEYS

    for key, kind in FAULT_KEYS.items():
        kind_type = hresult_arg if kind == "hex" else \
            fault_count_arg(_FAULT_LIMITS.get(key, UINT64_MAX))
        p.add_argument(f"--{key.replace('_', '-')}", dest=f"fault_{key}", type=kind_type,
                       metavar="HR" if kind == "hex" else "N")
    p.add_argument("--clock-offset", type=clock_offset_arg, metavar="SECONDS",
                   help="shift the DC's clock (e.g. 16000000 to pass a tombstone lifetime)")
    p.add_argument("--trace", choices=("on", "off"), help="journal every API call to "
                                                          "calls.log")

    from . import commands

    commands.add_archive_commands(sub, common)
    return parser


def _validate_dc_create(parser: argparse.ArgumentParser, args) -> None:
    if args.from_file is None:
        problem = check_dit_size(args.size, args.page_size)
        if problem:
            parser.error(f"argument --size: {problem}")


def _validate_dc_account(parser: argparse.ArgumentParser, args) -> None:
    if not args.set_default:
        try:
            user_arg(args.user)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument user: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    validate = getattr(args, "_validate", None)
    if validate is not None:
        validate(args)
    from . import commands
    from .commands_archive import stdout_carries_archive
    from .emu import emu_root, use_emu_root

    use_emu_root(emu_root(args.emu_root))
    report = _Reporter(getattr(args, "json", False), stdout_carries_archive(args))
    with signals.termination_handlers():
        try:
            return commands.dispatch(args)
        except KeyboardInterrupt as exc:
            code = exit_code_for(exc)
            report.error(f"interrupted ({signals.signal_name(exc)})", code, "Interrupted")
            return code
        except (errors.NtdsbackupError, OSError, ValueError) as exc:
            code = exit_code_for(exc)
            if _broken_pipe(exc):
                report.stdout_closed()
                message = "standard output was closed (broken pipe)" + (
                    ": the archive is incomplete" if report.data_on_stdout else "")
            else:
                message = str(exc)
            report.error(message, code, type(exc).__name__)
            return code


class _Reporter:
    """The final error line, and its JSON event with --json: on standard
    output unless that carries the archive or was closed."""

    def __init__(self, json_mode: bool, data_on_stdout: bool):
        self.json_mode = json_mode
        self.data_on_stdout = data_on_stdout
        self.stdout_ok = not data_on_stdout

    def stdout_closed(self) -> None:
        """Point standard output at the null device, so that Python's own
        flush at exit cannot fail (and print a traceback) on the dead pipe."""
        self.stdout_ok = False
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def error(self, message: str, code: int, kind: str) -> None:
        if self.json_mode:
            event = json.dumps({"event": "error", "error": kind, "message": message,
                                "exit_code": code})
            self._write(sys.stdout if self.stdout_ok else sys.stderr, event)
        self._write(sys.stderr, f"ntdsbackup: error: {message}")

    def _write(self, stream, line: str) -> None:
        try:
            print(line, file=stream, flush=True)
        except OSError:
            if stream is sys.stdout:
                self.stdout_closed()
                self._write(sys.stderr, line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
