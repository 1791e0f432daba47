"""The restore's intent record and the file moves it governs.

A restore replaces a set of files (the database, its logs, the checkpoint)
with another set, and no file system renames several files at once.  So,
as a database does with its own pages, the restore writes down what it is
about to do before it does any of it: the journal, a small JSON file in the
database's directory, written and fsynced before the first rename, names
every file that moves and where (old files to a hidden folder beside them,
staged files to their final names) and the state the restore has reached:

    staged        every new file is staged, verified and durable; nothing
                  moved, nothing registered
    registering   DsRestoreRegisterW is being or has been called: renames
                  may be under way
    complete      DsRestoreRegisterComplete(S_OK) returned: the new set is
                  in place for good; only deleting the old files remains
    rolling-back  the move back to the old set has begun

Every move is a rename within one directory, and each step can be told from
the files alone (an old file is aside exactly when its aside name exists; a
staged file is in place exactly when its staging name is gone), so moving
forward or back can be redone any number of times and always ends in one
whole set.  :func:`forward`, :func:`rollback` and :func:`finish` are those
moves; deciding which one applies is the restore's (phases/restore.py).
docs/RESTORE.md has the whole argument.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import xxhash

from ..errors import NtdsbackupError
from ..platform.files import commit, create_private, fsync_dir, remove_quietly

JOURNAL_NAME = ".ntdsbackup-restore.journal"
_JOURNAL_TMP_PREFIX = ".ntdsbackup-restore.journal-"
JOURNAL_FORMAT = "ntdsbackup-restore-journal"
JOURNAL_VERSION = 1
STAGING_PREFIX = ".ntdsb-staging-"
_LEGACY_STAGING_SUFFIX = ".ntdsb-staging"     # written by version 0.1 restores
ASIDE_PREFIX = ".ntdsb-old-"

STAGED = "staged"
REGISTERING = "registering"
COMPLETE = "complete"
ROLLING_BACK = "rolling-back"
STATES = (STAGED, REGISTERING, COMPLETE, ROLLING_BACK)


class JournalError(NtdsbackupError):
    """A journal that cannot be acted on safely (unreadable, or naming paths
    outside the DC's directories): nothing is moved; a person must look."""


@dataclass(frozen=True)
class NewFile:
    """A file of the archive: staged under `staging`, destined for `target`."""

    target: str
    staging: str
    size: int
    xxh3_128: str
    replaces: bool          # an old file stood at `target` when the plan was made


@dataclass(frozen=True)
class OldFile:
    """A file of the DC's old set and the name it has while aside."""

    path: str
    aside: str


def staging_name(target: Path) -> tuple[str, str]:
    """(prefix, suffix) for a staging file of `target`: unpredictable, hidden,
    recognisable, and naming what it will become."""
    return STAGING_PREFIX, f"-{target.name}"


def is_leftover(name: str) -> bool:
    """A staging or journal-update file of ours (never the journal itself)."""
    return (name.startswith(STAGING_PREFIX) or name.startswith(_JOURNAL_TMP_PREFIX)
            or (name.startswith(".") and name.endswith(_LEGACY_STAGING_SUFFIX)))


def sweep(directories) -> int:
    """Remove staging and journal-update leftovers from `directories`; the
    journal and aside folders are left to the journal's own moves."""
    removed = 0
    for d in directories:
        for name in os.listdir(d):
            if is_leftover(name):
                remove_quietly(Path(d) / name)
                removed += 1
        if removed:
            fsync_dir(d)
    return removed


class Journal:
    """The record on disk.  Every state change rewrites it whole (a new file,
    fsynced, renamed over the old one, the directory fsynced), so a crash
    leaves the previous state or the next, never half of either."""

    def __init__(self, path: Path, doc: dict):
        self.path = path
        self.doc = doc
        self.new = [NewFile(**f) for f in doc["new"]]
        self.old = [OldFile(**f) for f in doc["old"]]

    # -- reading and writing ---------------------------------------------------
    @classmethod
    def create(cls, directory: Path, *, server: str, archive: str, token: bytes,
               register: dict, new: list[NewFile], old_paths: list[Path]) -> Journal:
        """Write the record in state 'staged' (before any rename)."""
        ident = secrets.token_hex(6)
        old = [OldFile(str(p), str(p.parent / f"{ASIDE_PREFIX}{ident}" / p.name))
               for p in old_paths]
        doc = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "id": ident,
               "state": STAGED, "server": server, "archive": archive,
               "token": base64.b64encode(token).decode("ascii"), "register": register,
               "new": [vars(f) for f in new], "old": [vars(f) for f in old]}
        journal = cls(Path(directory) / JOURNAL_NAME, doc)
        journal._write(replace=False)
        return journal

    @classmethod
    def load(cls, directory: Path, allowed_dirs) -> Journal | None:
        """The record in `directory`, or None.  Every path it names must lie
        in one of `allowed_dirs` (the DC's own directories) or an aside folder
        directly below one: a record planted elsewhere moves nothing."""
        path = Path(directory) / JOURNAL_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) > 16 << 20:
            raise JournalError(f"{path}: implausibly large restore journal; left alone")
        try:
            doc = json.loads(raw)
            journal = cls(path, doc)
            journal._validate({os.path.normcase(os.fspath(d)) for d in allowed_dirs})
        except (ValueError, TypeError, KeyError) as exc:
            raise JournalError(f"{path}: unreadable restore journal ({exc}); nothing was "
                               "moved: compare it with the files beside it by hand") from None
        return journal

    def _validate(self, allowed: set[str]) -> None:
        d = self.doc
        if d.get("format") != JOURNAL_FORMAT or d.get("version") != JOURNAL_VERSION:
            raise ValueError("not a version 1 restore journal")
        if d.get("state") not in STATES:
            raise ValueError(f"unknown state {d.get('state')!r}")
        if not isinstance(d.get("register"), dict) or not isinstance(d.get("token"), str):
            raise ValueError("no registration parameters")
        base64.b64decode(d["token"], validate=True)

        def inside(p: str, aside: bool = False) -> None:
            parent = Path(p).parent
            if aside:
                if not parent.name.startswith(ASIDE_PREFIX):
                    raise ValueError(f"{p} is not in an aside folder")
                parent = parent.parent
            if os.path.normcase(str(parent)) not in allowed or Path(p).name in ("", ".", ".."):
                raise ValueError(f"{p} is outside the DC's directories")

        for f in self.new:
            inside(f.target)
            inside(f.staging)
            if not Path(f.staging).name.startswith(STAGING_PREFIX):
                raise ValueError(f"{f.staging} is not a staging name")
        for f in self.old:
            inside(f.path)
            inside(f.aside, aside=True)

    def _write(self, *, replace: bool) -> None:
        data = json.dumps(self.doc, indent=1, sort_keys=True).encode("utf-8")
        fd, tmp = create_private(self.path.parent, prefix=_JOURNAL_TMP_PREFIX, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            commit(tmp, self.path, overwrite=replace)
        except BaseException:
            remove_quietly(tmp)
            raise
        fsync_dir(self.path.parent)

    @property
    def state(self) -> str:
        return self.doc["state"]

    def set_state(self, state: str) -> None:
        self.doc = {**self.doc, "state": state}
        self._write(replace=True)

    @property
    def token(self) -> bytes:
        return base64.b64decode(self.doc["token"])

    @property
    def register_args(self) -> dict:
        return dict(self.doc["register"])

    @property
    def directories(self) -> list[Path]:
        return sorted({Path(f.target).parent for f in self.new} |
                      {Path(f.path).parent for f in self.old})

    def aside_dirs(self) -> list[Path]:
        return sorted({Path(f.aside).parent for f in self.old})

    def remove(self) -> None:
        remove_quietly(self.path)
        fsync_dir(self.path.parent)


# -- the moves ------------------------------------------------------------------

def forward(journal: Journal) -> None:
    """Old files aside, then every staged file to its final name; then the
    directories fsynced.  Steps already done are skipped.  Only in state
    'registering': once the old files are being deleted (state 'complete')
    a missing aside name no longer means "not moved yet"."""
    if journal.state != REGISTERING:
        raise NtdsbackupError(f"{journal.path}: cannot move forward in state {journal.state}")
    for aside in journal.aside_dirs():
        if not aside.is_dir():
            aside.mkdir(mode=0o700)
    for f in journal.old:
        if not os.path.lexists(f.aside) and os.path.lexists(f.path):
            os.replace(f.path, f.aside)
    for d in journal.directories + journal.aside_dirs():
        fsync_dir(d)
    for f in journal.new:
        if os.path.lexists(f.staging):
            os.replace(f.staging, f.target)
        elif not os.path.lexists(f.target):
            raise NtdsbackupError(f"{f.target}: neither staged nor in place; the journal "
                                  f"{journal.path} is left for inspection")
    for d in journal.directories:
        fsync_dir(d)


def rollback(journal: Journal) -> None:
    """Every old file back to its name (over the new file that replaced it),
    new files that replaced nothing removed, staging files and the aside
    folders removed, then the journal.  The caller has set the state to
    'rolling-back' if any rename may have happened."""
    for f in journal.old:
        if os.path.lexists(f.aside):
            os.replace(f.aside, f.path)
    for f in journal.new:
        # Placed (its staging name is gone) where nothing stood before: ours.
        if not f.replaces and not os.path.lexists(f.staging) and os.path.lexists(f.target):
            os.unlink(f.target)
    for d in journal.directories:
        fsync_dir(d)
    _cleanup(journal)


def finish(journal: Journal) -> None:
    """The restore is complete: delete the old files, then the journal."""
    _cleanup(journal)


def _cleanup(journal: Journal) -> None:
    for f in journal.new:
        remove_quietly(f.staging)
    for aside in journal.aside_dirs():
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(aside)
    sweep(journal.directories)
    for d in journal.directories:
        fsync_dir(d)
    journal.remove()


def new_set_problems(journal: Journal) -> list[str]:
    """Why the archive's file set could not be completed from what is on
    disk (empty when every new file is staged or placed, whole: size and
    XXH3-128 as verified when it was staged)."""
    problems = []
    for f in journal.new:
        path = f.staging if os.path.lexists(f.staging) else f.target
        try:
            h = xxhash.xxh3_128()
            size = 0
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
                    size += len(block)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        if size != f.size or h.hexdigest() != f.xxh3_128:
            problems.append(f"{path}: not the staged file (size {size}, expected {f.size})")
    return problems
