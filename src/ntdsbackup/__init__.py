"""ntdsbackup: back up and restore Active Directory domain controllers through
the ntdsbcli streaming API, with a GIL-free hashing and compressing engine."""

from __future__ import annotations

__version__ = "0.1.0"

from ._ntdsbcli import BackupContext, Provider, RestoreContext, hresult_name
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .provider import default_provider_path, open_provider

__all__ = [
    "__version__",
    "Provider",
    "BackupContext",
    "RestoreContext",
    "hresult_name",
    "open_provider",
    "default_provider_path",
    *_errors_all,
]
