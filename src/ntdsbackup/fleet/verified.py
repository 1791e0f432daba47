"""NAME.verified.json: the result of `verify`, kept beside the archive, so
that `list` can show it without reading the archive again.

The record names what it was made from: the archive's size and, in object
storage, its ETag (locally its modification time in nanoseconds).  It is
trusted only while both still match: a replaced or altered archive has no
cached result.  Nothing in it is secret: the DC's name, the backup time and
when the tombstone lifetime ends, which `list` needs for an encrypted
archive whose manifest it cannot read without a key.
"""

from __future__ import annotations

import json
import time
from typing import Any

RECORD_SUFFIX = ".verified.json"
FORMAT = "ntdsbackup-verified-1"
MAX_RECORD = 64 << 10


def record_bytes(identity: dict[str, Any], *, ok: bool, deep: bool,
                 manifest: dict[str, Any]) -> bytes:
    from ..phases.restore_plan import token_days_left
    from .facts import token_of

    token = token_of(manifest)
    left = token_days_left(token) if token is not None else None
    record = {"format": FORMAT, **identity, "ok": ok, "deep": deep,
              "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "server": manifest.get("server"), "created_unix": manifest.get("created_unix"),
              "restorable_until": None if left is None else int(time.time() + left * 86400)}
    return json.dumps(record, sort_keys=True).encode() + b"\n"


def parse(data: bytes | None, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The record if it is one and still describes this very archive."""
    if not data or len(data) > MAX_RECORD:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    if any(record.get(k) != v for k, v in identity.items()):
        return None
    return record if isinstance(record.get("ok"), bool) else None


def write(source: Any, identity: dict[str, Any] | None, *, ok: bool, deep: bool,
          manifest: dict[str, Any]) -> str | None:
    """Write the record for `source` (a local path or an s3:// URL; None
    for a stream).  A folder or bucket that cannot take it is not the
    verify's failure: returns why, for a warning."""
    from .store import open_store_for_archive

    opened = open_store_for_archive(source)
    if opened is None:
        return None
    store, name = opened
    if identity is None:
        identity = store.identity_of(name)
    try:
        store.put(name + RECORD_SUFFIX, record_bytes(identity, ok=ok, deep=deep,
                                                     manifest=manifest))
    except OSError as exc:
        return f"the verify result could not be cached beside the archive: {exc}"
    return None
