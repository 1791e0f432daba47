"""Where a password comes from, for --user (DsSetAuthIdentityW) and for
``dc account``, in this order:

1. ``--password-file FILE``: its first line (``-``: standard input, unless
   standard input carries the archive);
2. ``--password-command CMD``: run without a shell (split like a POSIX
   shell would), its standard output's first line; a failure is an error;
3. ``$NTDSB_PASSWORD``;
4. a prompt on the terminal.

Standard input is never read implicitly: it may carry the archive
(``restore -``), and a password read from a pipe by accident is a password
typed into the wrong program.  Without a terminal and without one of the
sources above the command stops, naming them.  An empty password is
refused.  The password itself never appears in an argument list, a log
line, JSON or an exception message.
"""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

from ..errors import NtdsbackupError

__all__ = ["PASSPHRASE", "PASSWORD", "PasswordError", "Secret", "add_password_options",
           "read_password"]

ENV_VAR = "NTDSB_PASSWORD"
_MAX_LINE = 64 * 1024
_SOURCES = "--password-file FILE, --password-command CMD or $NTDSB_PASSWORD"


@dataclass(frozen=True)
class Secret:
    """A kind of secret read by read_password: its name, file option, variable."""

    what: str
    file_option: str
    env_var: str
    sources: str


PASSWORD = Secret("password", "--password-file", ENV_VAR, _SOURCES)
PASSPHRASE = Secret("passphrase", "--passphrase-file", "NTDSB_PASSPHRASE",
                    "--passphrase-file FILE or $NTDSB_PASSPHRASE")


class PasswordError(NtdsbackupError, ValueError):
    """No usable password source, or the source failed (a usage error)."""


def add_password_options(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-file", metavar="FILE",
                       help="read the password from the first line of FILE ('-': standard "
                            "input, unless it carries the archive)")
    group.add_argument("--password-command", metavar="CMD",
                       help="run CMD (no shell) and use the first line it prints as the "
                            "password")


def read_password(prompt: str, *, password_file: str | None = None,
                  password_command: str | None = None, stdin_is_data: bool = False,
                  secret: Secret | None = None, confirm: bool = False) -> str:
    """The password from the first source that is given (module docstring).
    secret names another kind (the archive's passphrase: its own file option
    and variable); confirm asks twice at a prompt (a new passphrase)."""
    kind = secret or PASSWORD
    if password_file is not None:
        password = _from_file(password_file, stdin_is_data, kind)
        where = f"{kind.file_option} {password_file}"
    elif password_command is not None:
        password = _from_command(password_command)
        where = "--password-command"
    elif kind.env_var in os.environ:
        password = os.environ[kind.env_var]
        where = f"${kind.env_var}"
    elif not stdin_is_data and _stdin_is_terminal():
        password = getpass.getpass(prompt)
        where = "the prompt"
        if confirm and password and getpass.getpass("again: ") != password:
            raise PasswordError(f"the two {kind.what}s typed differ")
    else:
        why = "standard input carries the archive" if stdin_is_data else \
            "standard input is not a terminal"
        raise PasswordError(f"no {kind.what} given and {why} (it is never read from there "
                            f"implicitly): give {kind.sources}")
    if not password:
        raise PasswordError(f"empty {kind.what} from {where}")
    return password


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _first_line(data: bytes, where: str) -> str:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordError(f"the password from {where} is not UTF-8 text") from None


def _from_file(path: str, stdin_is_data: bool, kind: Secret = PASSWORD) -> str:
    if path == "-":
        if stdin_is_data:
            raise PasswordError(f"{kind.file_option} -: standard input carries the archive; "
                                f"give the {kind.what} in a file")
        return _first_line(sys.stdin.buffer.readline(_MAX_LINE), "standard input")
    try:
        with open(path, "rb") as fh:
            data = fh.readline(_MAX_LINE)
    except OSError as exc:
        raise PasswordError(f"{kind.file_option} {path}: {exc.strerror or exc}") from None
    return _first_line(data, f"{kind.file_option} {path}")


def _from_command(command: str) -> str:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise PasswordError(f"--password-command: cannot split {command!r}: {exc}") from None
    if not argv:
        raise PasswordError("--password-command is empty")
    try:
        # Standard input stays out of it (it may be the archive); its
        # standard error is the user's.
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              check=False)
    except OSError as exc:
        raise PasswordError(f"--password-command: cannot run {argv[0]!r}: "
                            f"{exc.strerror or exc}") from None
    if done.returncode != 0:
        how = f"was killed by signal {-done.returncode}" if done.returncode < 0 else \
            f"exited with status {done.returncode}"
        raise PasswordError(f"--password-command {argv[0]!r} {how}; no password")
    return _first_line(done.stdout, "--password-command")
