"""What the command groups share: the options every command has, the exit
codes and the one mapping from exception to exit code, and how results,
errors and progress are written (a JSON line per event with --json)."""

from __future__ import annotations

import argparse
import errno
import os
import sys

from .. import errors
from ..platform import signals
from ..platform.files import FileExists
from .argtypes import (
    CHUNK_RULE,
    LEVEL_MAX,
    LEVEL_MIN,
    chunk_size_arg,
    level_arg,
    ring_arg,
    threads_arg,
    user_arg,
)
from .credentials import PasswordError, add_password_options

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DC_STATE = 3
EXIT_ACCESS = 4
EXIT_ARCHIVE = 5
EXIT_NTDSBCLI = 6
EXIT_IO = 7
EXIT_DAMAGED = 8
EXIT_INTERRUPTED = 130          # SIGINT; SIGTERM and SIGHUP give 143 and 129


def exit_code_for(exc: BaseException) -> int:
    """The one mapping from exception class to exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return signals.exit_code_for_interrupt(exc)
    if isinstance(exc, (PasswordError, FileExists, errors.KeyFileError, errors.UsageError)):
        return EXIT_USAGE
    if broken_pipe(exc):
        return EXIT_IO
    if isinstance(exc, errors.DCStateError):
        return EXIT_DC_STATE
    if isinstance(exc, errors.AccessDenied):
        return EXIT_ACCESS
    if isinstance(exc, errors.ArchiveError):
        return EXIT_ARCHIVE
    if isinstance(exc, errors.DatabaseDamaged):
        return EXIT_DAMAGED
    if isinstance(exc, errors.HResultError) or (isinstance(exc, errors.EngineError)
                                                and exc.hresult is not None):
        return EXIT_NTDSBCLI
    if isinstance(exc, (errors.EngineError, OSError)):
        return EXIT_IO
    if isinstance(exc, errors.NtdsbackupError):
        return EXIT_ERROR
    return EXIT_ERROR


def broken_pipe(exc: BaseException) -> bool:
    """A write to a pipe whose reader is gone, from Python or from the engine."""
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, errors.EngineError) and exc.sys_errno == errno.EPIPE)


def common_options(*, subcommand: bool = False) -> argparse.ArgumentParser:
    """The options every command has, given before or after its name.  A
    subcommand's copies default to nothing (SUPPRESS), so that they never
    overwrite what was given before the command's name."""
    p = argparse.ArgumentParser(add_help=False)

    def default(value):
        return argparse.SUPPRESS if subcommand else value

    p.add_argument("--emu-root", metavar="DIR", default=default(None),
                   help="emulator root holding emulated DCs (default: $NTDSB_EMU_ROOT, else "
                        "~/.local/share/ntdsbackup/emu)")
    p.add_argument("-q", "--quiet", action="store_true", default=default(False),
                   help="print only errors (and the archive, where standard output carries it)")
    p.add_argument("-v", "--verbose", action="store_true", default=default(False),
                   help="add details: where the time went, each file")
    return p


THREADS_HELP = "threads (default 0: one per CPU; at most 256)"


def identity_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", type=user_arg,
                   help="DOMAIN\\user for DsSetAuthIdentity (password from --password-file, "
                        "--password-command, $NTDSB_PASSWORD or a prompt on the terminal); "
                        "default: the process identity")
    add_password_options(p)


def validate_identity(parser: argparse.ArgumentParser, args) -> None:
    for option in ("password_file", "password_command"):
        if getattr(args, option) is not None and not args.user:
            parser.error(f"argument --{option.replace('_', '-')}: needs --user")


def engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--level", type=level_arg, default=1, metavar="N",
                   help=f"zstd level, {LEVEL_MIN} to {LEVEL_MAX} (negative: faster; "
                        "default 1)")
    p.add_argument("--threads", type=threads_arg, default=0,
                   help=f"hash/compress {THREADS_HELP}")
    p.add_argument("--chunk-size", type=chunk_size_arg, default=1 << 20, metavar="SIZE",
                   help=f"bytes per chunk and per DsBackupRead: {CHUNK_RULE} (default 1MiB)")
    p.add_argument("--ring", type=ring_arg, default=0, metavar="N",
                   help="buffers in the read ring, 2 to 256 (default 0: threads + 2)")


def read_identity(args, *, stdin_is_data: bool = False):
    if not getattr(args, "user", None):
        return None
    from ..phases.backup import Identity
    from .credentials import read_password

    domain, _, user = args.user.partition("\\")
    password = read_password(f"password for {args.user}: ", password_file=args.password_file,
                             password_command=args.password_command,
                             stdin_is_data=stdin_is_data)
    return Identity(user, domain, password)


def progress_for(args, to_stdout: bool = False):
    """The job's progress display: JSON lines with --json (on standard error
    when standard output carries the archive), a bar when standard error is
    a terminal and not -q, else only what a person must know."""
    from .progress import Progress

    if args.json:
        return Progress("json", sys.stderr if to_stdout else sys.stdout)
    bar = sys.stderr.isatty() and not args.quiet
    return Progress("bar" if bar else "quiet", sys.stderr)


def print_json(obj: dict, stream=None) -> None:
    """One result event as its documented JSON line (docs/JSON.md)."""
    from .progress import json_line

    (stream or sys.stdout).write(json_line(obj))
    (stream or sys.stdout).flush()


def say(args, *lines: str, detail: bool = False, stream=None) -> None:
    """Result lines for a person: none with -q; `detail` ones only with -v."""
    if args.quiet or (detail and not args.verbose):
        return
    for line in lines:
        print(line, file=stream or sys.stdout)


HR_COULD_NOT_CONNECT = 0xC7FF0007


def error_message(exc: BaseException, args) -> str:
    """The error line: the exception's text, and where the emulated DC was
    looked for when the emulator could not find it (the C emulator only
    returns hrCouldNotConnect; the command line knows the root it gave it)."""
    message = str(exc)
    server = getattr(args, "server", None)
    if not (isinstance(exc, errors.HResultError) and exc.hresult == HR_COULD_NOT_CONNECT
            and server and _emulated_provider()):
        return message
    from ..provider_paths import emu_root

    root = emu_root()
    name = server.lstrip("\\")
    given = {"option": "from --emu-root", "env": "from $NTDSB_EMU_ROOT"}.get(
        getattr(args, "emu_root_from", ""), "the default: neither --emu-root nor "
                                             "$NTDSB_EMU_ROOT is set")
    if not root.is_dir():
        where = "which does not exist"
    elif any(e.lower() == name.lower() and (root / e / "dc.conf").is_file()
             for e in os.listdir(root)):
        where = f"where the folder {name} exists (so its directory service is not reachable)"
    else:
        where = f"which holds no DC folder {name}"
    return f"{message}; the emulator looked for {name} under {root} ({given}), {where}"


def _emulated_provider() -> bool:
    from ..provider import open_provider
    from ..provider_paths import is_emulated

    try:
        return is_emulated(open_provider())
    except (OSError, ValueError):
        return False


class Reporter:
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
        from .progress import end_line, json_line

        end_line()             # never on the progress bar's line
        if self.json_mode:
            event = json_line({"event": "error", "error": kind, "message": message,
                               "exit_code": code}).rstrip("\n")
            self._write(sys.stdout if self.stdout_ok else sys.stderr, event)
        self._write(sys.stderr, f"ntdsbackup: error: {message}")

    def _write(self, stream, line: str) -> None:
        try:
            print(line, file=stream, flush=True)
        except OSError:
            if stream is sys.stdout:
                self.stdout_closed()
                self._write(sys.stderr, line)
