"""The ``ntdsbackup`` command line.

Exit codes (also in docs/CLI.md):
  0 success; 1 unexpected error; 2 usage error; 3 the DC is in the wrong
  state (offline for a backup, online for a restore, failed consistency
  check); 4 access denied; 5 archive invalid, corrupted or incomplete;
  6 other ntdsbcli failure; 7 I/O or engine failure; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import errors
from .argtypes import fraction_arg, size_arg
from .fsutil import parse_size

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DC_STATE = 3
EXIT_ACCESS = 4
EXIT_ARCHIVE = 5
EXIT_NTDSBCLI = 6
EXIT_IO = 7
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    """The one mapping from exception class to exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
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
    p.add_argument("--size", type=size_arg, default=parse_size("64MiB"),
                   help="size of ntds.dit, e.g. 1GiB (default 64MiB)")
    p.add_argument("--page-size", type=int, choices=(8192, 32768), default=8192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="build the DC around an existing ntds.dit (e.g. an IFM copy)")
    p.add_argument("--log-size", type=size_arg, help="size of each log file")
    p.add_argument("--log-count", type=int, help="number of closed log generations")
    p.add_argument("--domain", default="CORP")
    p.add_argument("--tombstone-days", type=int, default=180)
    p.add_argument("--force", action="store_true", help="replace an existing DC of that name")
    p.add_argument("--json", action="store_true")

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
                         help="add or replace an account (password read from stdin or "
                              "$NTDSB_PASSWORD)")
    p.add_argument("name")
    p.add_argument("user", help="DOMAIN\\user")
    p.add_argument("--privileges", default="backup,restore,admin",
                   help="comma list of backup, restore, admin (may be empty)")
    p.add_argument("--default-privileges", dest="set_default", action="store_true",
                   help="instead, set the privileges of callers that give no identity")

    p = dcsub.add_parser("fault", parents=[common], help="set or clear injected faults")
    p.add_argument("name")
    p.add_argument("--clear", action="store_true", help="clear every fault first")
    from .emuconf import FAULT_KEYS

    for key, kind in FAULT_KEYS.items():
        p.add_argument(f"--{key.replace('_', '-')}", dest=f"fault_{key}",
                       type=lambda v: int(v, 0), metavar="HR" if kind == "hex" else "N")
    p.add_argument("--clock-offset", type=int, metavar="SECONDS",
                   help="shift the DC's clock (e.g. 16000000 to pass a tombstone lifetime)")
    p.add_argument("--trace", choices=("on", "off"), help="journal every API call to "
                                                          "calls.log")

    from . import commands

    commands.add_archive_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import commands
    from .emu import emu_root, use_emu_root

    use_emu_root(emu_root(args.emu_root))
    json_mode = getattr(args, "json", False)
    try:
        return commands.dispatch(args)
    except KeyboardInterrupt:
        _report_error("interrupted", json_mode, EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except (errors.NtdsbackupError, OSError, ValueError) as exc:
        code = exit_code_for(exc)
        _report_error(str(exc), json_mode, code, type(exc).__name__)
        return code


def _report_error(message: str, json_mode: bool, code: int, kind: str = "") -> None:
    if json_mode:
        print(json.dumps({"event": "error", "error": kind or "Interrupted", "message": message,
                          "exit_code": code}), flush=True)
    print(f"ntdsbackup: error: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

