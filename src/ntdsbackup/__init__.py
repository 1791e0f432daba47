"""ntdsbackup: back up and restore Active Directory domain controllers through
the ntdsbcli streaming API, with a GIL-free hashing and compressing engine.

The library API::

    summary = ntdsbackup.backup("DC01", "DC01.tar.zst")   # path, "-", or a binary file object
    for piece in ntdsbackup.iter_backup("DC01"): ...      # verified frames, for pipelines
    report = ntdsbackup.verify("DC01.tar.zst")
    ntdsbackup.extract("DC01.tar.zst", "out/")
    result = ntdsbackup.restore("DC01.tar.zst", "DC01", dry_run=True)

Lower level: open_provider() gives the loaded ntdsbcli provider, whose
backup_prepare()/restore_prepare() return handle-owning contexts.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._ntdsbcli import BackupContext, Provider, RestoreContext, hresult_name
from .archive import extract, verify
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .phases.backup import BackupSummary, Identity, backup
from .phases.restore import RestorePlan, RestoreResult, restore
from .provider import default_provider_path, open_provider
from .stream import Piece, iter_backup

__all__ = [
    "__version__",
    "backup",
    "iter_backup",
    "restore",
    "verify",
    "extract",
    "BackupSummary",
    "RestorePlan",
    "RestoreResult",
    "Identity",
    "Piece",
    "Provider",
    "BackupContext",
    "RestoreContext",
    "hresult_name",
    "open_provider",
    "default_provider_path",
    *_errors_all,
]
