"""From the UNC paths a provider speaks to the local paths a restore writes.

Each provider names files its own way, so the mapping is chosen where the
provider is opened (:func:`path_mapper`), never guessed from the platform:

- the system's ntdsbcli.dll: the restore runs on the DC itself (in DSRM), so
  ``\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit`` is ``C:\\Windows\\NTDS\\ntds.dit``, and only
  for this computer's own name: a path on another server is refused, never
  written to the local drive;
- the emulated DC (the bundled library, src/emu): by its documented folder
  contract (docs/EMULATOR.md), ``\\\\<name>\\C$\\Windows\\NTDS\\<file>`` is
  ``<emulator root>/<DC folder>/NTDS/<file>``, the root found the way the
  library finds it: ``$NTDSB_EMU_ROOT``, else
  ``$XDG_DATA_HOME/ntdsbackup/emu``, else ``~/.local/share/ntdsbackup/emu``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path, PureWindowsPath

from .errors import NtdsbackupError

__all__ = ["PathMappingError", "default_emu_root", "emu_root", "emulated_dc_path",
           "local_drive_path", "local_names", "path_mapper"]

_UNC = re.compile(r"^\\\\([^\\]+)\\([A-Za-z])\$\\(.*)$")
_EMU_PREFIX = ("windows", "ntds")
_EMULATOR_NAMES = ("libntdsbemu.so", "ntdsbemu.dll")


class PathMappingError(NtdsbackupError, ValueError):
    """A path from the provider that cannot be mapped to a local one."""


def _split(unc: str) -> tuple[str, str, list[str]]:
    m = _UNC.match(unc)
    if not m:
        raise PathMappingError(f"not an administrative-share UNC path: {unc!r}")
    server, drive, rest = m.groups()
    parts = [p for p in rest.split("\\") if p]
    if any(p in (".", "..") or "/" in p or "\x00" in p for p in parts):
        raise PathMappingError(f"refusing a path with '.', '..' or '/': {unc!r}")
    return server, drive, parts


def default_emu_root() -> Path:
    """$XDG_DATA_HOME/ntdsbackup/emu, else ~/.local/share/ntdsbackup/emu."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "ntdsbackup" / "emu"


def emu_root(explicit: os.PathLike | str | None = None) -> Path:
    """The emulator root: `explicit`, else $NTDSB_EMU_ROOT, else the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("NTDSB_EMU_ROOT")
    return Path(env) if env else default_emu_root()


def local_names() -> set[str]:
    """The names this computer answers to, folded: its host name, the first
    label of it, %COMPUTERNAME% (the NetBIOS name), and localhost."""
    names = {"localhost", "127.0.0.1", "::1"}
    for name in (socket.gethostname(), os.environ.get("COMPUTERNAME", "")):
        if name:
            names.update({name.casefold(), name.split(".")[0].casefold()})
    return names


def local_drive_path(unc: str, local: set[str] | None = None) -> Path:
    """The real DC's mapping: the administrative share of the local drive.
    The server must be this computer (one of `local`, default local_names();
    a fully qualified name counts by its first label)."""
    server, drive, parts = _split(unc)
    local = local_names() if local is None else {n.casefold() for n in local}
    if server.casefold() not in local and server.split(".")[0].casefold() not in local:
        raise PathMappingError(f"{unc!r} is on {server!r}, not on this computer: a restore "
                               "writes only to the DC it runs on")
    return Path(str(PureWindowsPath(f"{drive}:\\", *parts)))


def emulated_dc_path(unc: str, root: os.PathLike | str | None = None) -> Path:
    """The emulated DC's mapping (module docstring)."""
    server, drive, parts = _split(unc)
    if drive.upper() != "C" or [p.lower() for p in parts[:2]] != list(_EMU_PREFIX):
        raise PathMappingError(f"the emulated DC only serves \\\\{server}\\C$\\Windows\\NTDS: "
                               f"{unc!r}")
    base = emu_root(root)
    folder = base / server
    if not (folder / "dc.conf").is_file():
        # Server names are case-insensitive, as Windows' are.
        found = [e for e in (os.listdir(base) if base.is_dir() else [])
                 if e.lower() == server.lower() and (base / e / "dc.conf").is_file()]
        if not found:
            raise PathMappingError(f"no emulated DC {server!r} under the emulator root {base}")
        folder = base / found[0]
    return folder.joinpath("NTDS", *parts[2:])


def is_emulated(provider) -> bool:
    """Whether `provider` is the emulated DC: the bundled library (or a copy
    under its name), or, since the Windows build of the emulator is named
    ntdsbcli.dll like the real one, the library $NTDSB_PROVIDER names while
    $NTDSB_EMU_ROOT is set (the two settings that run the emulator there;
    docs/WINDOWS.md).  The system's own ntdsbcli.dll never is."""
    path = os.fspath(provider.path)
    if Path(path).name.lower() in _EMULATOR_NAMES:
        return True
    chosen = os.environ.get("NTDSB_PROVIDER")
    return bool(chosen and os.environ.get("NTDSB_EMU_ROOT")
                and os.path.normcase(os.path.abspath(chosen)) ==
                os.path.normcase(os.path.abspath(path)))


def path_mapper(provider) -> Callable[[str], Path]:
    """The UNC-to-local mapping of `provider` (a loaded Provider)."""
    return emulated_dc_path if is_emulated(provider) else local_drive_path
