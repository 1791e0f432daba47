"""`list`: every archive of a location, one row each, and per DC the newest
backup that can still be restored.

A backup can never be restored once it is older than the tombstone
lifetime its expiry token carries (DsRestorePrepareW refuses it:
hrContentsExpired), so each row has the days left before that.  A row is
restorable when its documents read, its cached verify result (if any) is
not a failure, and that time has not run out.  The manifests are read in
parallel by a bounded pool, each from ranged reads of the archive's two
ends (store.py): nothing is decompressed but the three documents.

An encrypted archive's documents are read the same way when keys are
given: an AgeRanges (archive/age_ranges.py) over those ranged reads opens
the header, authenticates the final chunk and then only the chunks holding
the documents.  A key that opens no stanza, or a damaged payload, is that
row's problem ("could not be decrypted: ..."), not the listing's; its DC
and time may still come from a cached verify result, but such a row is
never restorable and prune keeps it.  Without keys an encrypted archive's
facts come only from a cached verify result.  Passphrase unwraps run one
at a time: scrypt takes up to 1 GiB each (crypto.READ_WORK_FACTOR).
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..archive.envelope import DecryptionKeys, is_age
from ..archive.signing import SIGNATURE_SUFFIX
from ..errors import DecryptionError
from .facts import token_of
from .store import Entry, LocalStore, S3Store, is_archive, open_store
from .verified import RECORD_SUFFIX, parse

if TYPE_CHECKING:
    from ..archive.age_ranges import AgeRanges

DEFAULT_WORKERS = 16
_SCRYPT_AT_ONCE = threading.Semaphore(1)


@dataclass
class Row:
    name: str
    url: str
    size: int
    encrypted: bool = False
    signed: bool = False
    server: str | None = None
    created_unix: int | None = None
    verified: bool | None = None            # the cached result; None: not verified
    lock_mode: str | None = None
    locked_until: datetime | None = None
    days_left: float | None = None           # of the tombstone lifetime
    problem: str | None = None               # why its documents could not be read
    entry: Entry | None = field(default=None, repr=False)
    sidecars: list[Entry] = field(default_factory=list, repr=False)

    @property
    def restorable(self) -> bool:
        return (self.problem is None and self.server is not None and self.verified is not False
                and (self.days_left is None or self.days_left > 0))

    def locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and \
            self.locked_until > (now or datetime.now(timezone.utc))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "server": self.server,
                "created": _iso(self.created_unix), "size": self.size,
                "encrypted": self.encrypted, "signed": self.signed, "verified": self.verified,
                "lock_mode": self.lock_mode,
                "locked_until": None if self.locked_until is None else
                self.locked_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "days_left": None if self.days_left is None else round(self.days_left, 1),
                "restorable": self.restorable, "problem": self.problem}


@dataclass
class Catalog:
    location: str
    rows: list[Row]
    seconds: float = 0.0

    def servers(self) -> list[dict[str, Any]]:
        """Per DC: its archives and the newest restorable one (flagged when none)."""
        out = []
        for server in sorted({r.server for r in self.rows if r.server is not None}):
            mine = [r for r in self.rows if r.server == server]
            best = newest_restorable(mine)
            out.append({"server": server, "archives": len(mine),
                        "newest_restorable": best.name if best else None,
                        "created": _iso(best.created_unix) if best else None,
                        "days_left": None if best is None or best.days_left is None
                        else round(best.days_left, 1),
                        "flagged": best is None})
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "archives": [r.as_dict() for r in self.rows],
                "servers": self.servers(), "seconds": round(self.seconds, 3)}


def newest_restorable(rows: list[Row]) -> Row | None:
    ok = [r for r in rows if r.restorable]
    return max(ok, key=lambda r: (r.created_unix or 0, r.name)) if ok else None


def scan(location: str, *, workers: int = DEFAULT_WORKERS,
         keys: DecryptionKeys | None = None) -> tuple[Catalog, Any]:
    """The catalog of `location` and its store (prune deletes through it).
    keys: what encrypted archives are opened with, to read their own
    documents."""
    t0 = time.monotonic()
    store = open_store(location)
    entries = store.entries()
    rows = [Row(name, store.url(name), e.size, entry=e,
                sidecars=[entries[name + s] for s in (SIGNATURE_SUFFIX, RECORD_SUFFIX)
                          if name + s in entries])
            for name, e in sorted(entries.items()) if is_archive(name)]
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="ntdsb-list") as pool:
        list(pool.map(lambda r: _fill(store, r, entries, keys), rows))
    return Catalog(store.label, rows, time.monotonic() - t0), store


def _fill(store: LocalStore | S3Store, row: Row, entries: dict[str, Entry],
          keys: DecryptionKeys | None = None) -> None:
    assert row.entry is not None
    row.signed = row.name + SIGNATURE_SUFFIX in entries
    record = entries.get(row.name + RECORD_SUFFIX)
    cached = parse(store.get(record), row.entry.identity) if record is not None else None
    try:
        held = store.lock_of(row.entry)
        if held is not None:
            row.lock_mode, row.locked_until = held.mode, held.until
        with store.reader(row.entry) as fh:
            row.encrypted = is_age(fh.read(32))
            fh.seek(0)
            if not row.encrypted:
                _from_documents(row, fh)
            elif keys:
                with _decrypted(store, fh, keys) as plain:
                    _from_documents(row, plain)
    except DecryptionError as exc:
        row.problem = f"could not be decrypted: {exc}"
    except (OSError, ValueError, KeyError, TypeError) as exc:   # ArchiveError is a ValueError
        row.problem = str(exc)
    if cached is not None:
        row.verified = cached["ok"]
        if row.encrypted and row.server is None:
            _from_record(row, cached)
    if row.encrypted and row.server is None and row.problem is None:
        row.problem = "encrypted, and no cached verify result names its DC (verify it once)"


def _decrypted(store: LocalStore | S3Store, fh: Any, keys: DecryptionKeys) -> AgeRanges:
    """The plaintext of the encrypted archive `fh`, by positioned reads of
    it (header, final chunk, then what is read); a passphrase's scrypt
    unwrap waits for any other one."""
    from ..archive.age_ranges import AgeRanges

    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    if keys.passphrase is None:
        return AgeRanges(store.pread_of(fh), size, keys)
    with _SCRYPT_AT_ONCE:
        return AgeRanges(store.pread_of(fh), size, keys)


def _from_documents(row: Row, fh: Any) -> None:
    from ..archive.ops import read_documents
    from ..phases.restore_plan import token_days_left

    docs = read_documents(fh)
    manifest = docs["manifest"]
    row.server = str(manifest.get("server") or "") or None
    created = manifest.get("created_unix")
    row.created_unix = created if isinstance(created, int) else None
    token = token_of(manifest)
    row.days_left = token_days_left(token) if token is not None else None
    row.signed = row.signed or "signature" in docs


def _from_record(row: Row, record: dict[str, Any]) -> None:
    """An encrypted archive's facts, from the verify that could read it."""
    server, created, until = (record.get("server"), record.get("created_unix"),
                              record.get("restorable_until"))
    row.server = server if isinstance(server, str) and server else None
    row.created_unix = created if isinstance(created, int) else None
    if isinstance(until, int):
        row.days_left = (until - time.time()) / 86400


def _iso(unix: int | None) -> str | None:
    if unix is None:
        return None
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
