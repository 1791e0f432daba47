"""From the UNC paths the provider speaks to local paths the restore writes.

On Windows the restore runs on the DC itself (DSRM), so ``\\\\DC01\\C$\\x``
is ``C:\\x``.  Elsewhere the provider is the emulated DC, whose documented
mapping (docs/EMULATOR.md) is ``\\\\<name>\\C$\\Windows\\NTDS\\<file>`` ->
``<emulator root>/<DC folder>/NTDS/<file>``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path, PureWindowsPath

from .emu import emu_root
from .errors import NtdsbackupError

_UNC = re.compile(r"^\\\\([^\\]+)\\([A-Za-z])\$\\(.*)$")
_EMU_PREFIX = ("windows", "ntds")


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


def _emulator_dc_folder(root: Path, server: str) -> Path:
    exact = root / server
    if (exact / "dc.conf").is_file():
        return exact
    for entry in os.listdir(root):
        if entry.lower() == server.lower() and (root / entry / "dc.conf").is_file():
            return root / entry
    raise PathMappingError(f"no emulated DC {server!r} under {root}")


def unc_to_local(unc: str, root: os.PathLike | str | None = None) -> Path:
    server, drive, parts = _split(unc)
    if sys.platform == "win32":
        return Path(str(PureWindowsPath(f"{drive}:\\", *parts)))
    if drive.upper() != "C" or [p.lower() for p in parts[:2]] != list(_EMU_PREFIX):
        raise PathMappingError(f"the emulated DC only serves \\\\{server}\\C$\\Windows\\NTDS: "
                               f"{unc!r}")
    folder = _emulator_dc_folder(emu_root(root), server)
    return folder.joinpath("NTDS", *parts[2:])
