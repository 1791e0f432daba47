"""ntdsbackup: back up and restore Active Directory domain controllers through
the ntdsbcli streaming API, with a GIL-free hashing and compressing engine.

The library API::

    summary = ntdsbackup.backup("DC01", "DC01.tar.zst")   # path, "-", or a binary file object
    for piece in ntdsbackup.iter_backup("DC01"): ...      # verified frames, for pipelines
    report = ntdsbackup.verify("DC01.tar.zst")
    ntdsbackup.extract("DC01.tar.zst", "out/")
    result = ntdsbackup.restore("DC01.tar.zst", "DC01", dry_run=True)   # or a file object
    ntdsbackup.recover("DC01")                            # settle a restore that was killed

backup, iter_backup, restore and recover take progress=callback, called with
the events of ntdsbackup.events (typed dicts).

Lower level: open_provider() gives the loaded ntdsbcli provider, whose
backup_prepare()/restore_prepare() return handle-owning contexts.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._ntdsbcli import BackupContext, Provider, RestoreContext, hresult_name
from .archive import describe, extract, verify
from .archive.reader import ReadReport
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .events import *  # noqa: F403
from .events import __all__ as _events_all
from .phases.backup import BackupSummary, Identity, backup
from .phases.restore import RecoveryResult, RestorePlan, RestoreResult, recover, restore
from .provider import default_provider_path, open_provider
from .stream import Piece, iter_backup

__all__ = [
    "__version__",
    "backup",
    "iter_backup",
    "restore",
    "recover",
    "verify",
    "extract",
    "describe",
    "BackupSummary",
    "RestorePlan",
    "RestoreResult",
    "RecoveryResult",
    "ReadReport",
    "Identity",
    "Piece",
    "Provider",
    "BackupContext",
    "RestoreContext",
    "hresult_name",
    "open_provider",
    "default_provider_path",
    *_errors_all,
    *_events_all,
]
