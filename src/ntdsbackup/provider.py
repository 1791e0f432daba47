"""Which ntdsbcli provider to load, loaded once per process.

On Windows the default is the system's ntdsbcli.dll; everywhere else it is
the emulated domain controller bundled with the package.  The NTDSB_PROVIDER
environment variable (a path) overrides both.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from ._ntdsbcli import Provider

__all__ = ["default_provider_path", "emulator_library_path", "open_provider", "Provider"]

_lock = threading.Lock()
_loaded: dict[str, Provider] = {}


def emulator_library_path() -> Path:
    """The bundled emulated DC (a shared library next to this module)."""
    name = "ntdsbemu.dll" if sys.platform == "win32" else "libntdsbemu.so"
    return Path(__file__).resolve().parent / name


def default_provider_path() -> str:
    env = os.environ.get("NTDSB_PROVIDER")
    if env:
        return env
    if sys.platform == "win32":
        return "ntdsbcli.dll"
    return str(emulator_library_path())


def open_provider(path: str | os.PathLike[str] | None = None) -> Provider:
    """Load (or reuse) the provider at `path`, default_provider_path() if None.

    Providers are never unloaded (handles may outlive any one object), so a
    process loads each library once.
    """
    key = os.fspath(path) if path is not None else default_provider_path()
    with _lock:
        prov = _loaded.get(key)
        if prov is None:
            prov = Provider(key)
            _loaded[key] = prov
        return prov
