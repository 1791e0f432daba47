"""The progress events the library hands to a ``progress`` callback.

Every event is a plain dict whose ``"event"`` key says which one it is; the
TypedDicts below give their exact keys.  A callback takes any of them::

    def progress(event: ntdsbackup.Event) -> None:
        if event["event"] == "progress":
            print(event["name"], event["done"], "/", event["size"])

backup() and iter_backup() emit, per file of the DC, one "file" event, then
"progress" events as its bytes are read (the last one with done == size).

restore() emits a "phase" event as each phase starts ("verify" for a dry
run; "stage", then "swap" for a real one), a "file" and "progress" events
per file while it is verified or staged, and "settled" when an
interruption has been settled (which file set the DC holds).  restore() and
recover() emit "recovered" after settling a restore that an earlier process
left unfinished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypedDict, Union

__all__ = [
    "BackupEvent",
    "BackupFileEvent",
    "BackupProgressEvent",
    "Event",
    "PhaseEvent",
    "ProgressCallback",
    "RecoveredEvent",
    "RestoreEvent",
    "RestoreFileEvent",
    "RestoreProgressEvent",
    "SettledEvent",
]


class BackupFileEvent(TypedDict):
    """A backup starts reading one file of the DC."""

    event: Literal["file"]
    name: str             # the archive member ("database/ntds.dit", "logs/edb00001.log")
    source: str           # the path the DC gave for it
    size: int             # bytes


class BackupProgressEvent(TypedDict):
    """Bytes of a file read, compressed and written so far."""

    event: Literal["progress"]
    name: str
    done: int
    size: int


class PhaseEvent(TypedDict):
    """A restore enters a phase: "verify" (dry run), "stage", "swap"."""

    event: Literal["phase"]
    phase: Literal["verify", "stage", "swap"]


class RestoreFileEvent(TypedDict):
    """A restore starts writing one file to its staging file."""

    event: Literal["file"]
    phase: Literal["stage"]
    name: str
    size: int


class RestoreProgressEvent(TypedDict):
    """Bytes of an archive member verified ("verify") or staged ("stage") so far."""

    event: Literal["progress"]
    phase: Literal["verify", "stage"]
    name: str
    done: int
    size: int


class SettledEvent(TypedDict):
    """An interrupted restore was settled in process (then its exception propagates)."""

    event: Literal["settled"]
    outcome: Literal["unchanged", "completed", "rolled-back"]
    detail: str


class RecoveredEvent(TypedDict):
    """A restore left unfinished by an earlier process was settled (recover())."""

    event: Literal["recovered"]
    server: str
    outcome: Literal["nothing", "completed", "unchanged"]
    detail: str
    journal: str | None             # the intent record found, if any
    journal_state: str | None       # the state it recorded


BackupEvent = Union[BackupFileEvent, BackupProgressEvent]
RestoreEvent = Union[PhaseEvent, RestoreFileEvent, RestoreProgressEvent, SettledEvent,
                     RecoveredEvent]
Event = Union[BackupEvent, RestoreEvent]

# A callback for any of the library's functions.
ProgressCallback = Callable[[Event], None]
