"""An archive in object storage (``s3://BUCKET/KEY``) handed to the readers
(verify, ls, extract; restore opens its own), which take a path, a file
object or what open_source gives.

open_source opens the object as a RemoteInput (remote_input.py: the
signature checked over every stored byte first when a trusted key is
given, the age header opened with the keys) and says what the caller may
want to show about it (its retention lock, what a cached verify result is
tied to).  The readers then read it where it lies, nothing on local disk
(ops.open_archive):

* "seekable" (ls): ranged reads of the manifest, the trailer and the seek
  index only, through the plaintext for an age-encrypted object (the
  header, the final chunk and the documents' chunks, each authenticated).
* "stream" (verify, extract): one download in order, fetched in parallel
  into a pipe (storage.PipeFeed) that the C engine reads with no GIL, an
  encrypted payload through the engine's AgeReader in pipe mode.  A
  download that fails makes the engine see end-of-file; its own error
  (StorageError, exit 7) is what is raised, not a "truncated archive".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import StorageError
from .envelope import DecryptionKeys
from .signing import Trust

__all__ = ["Opened", "is_remote", "lock_of", "open_source"]


@dataclass
class Opened:
    """What the reader is given (source, trust) and what the caller may
    want to show about the object (lock, identity)."""

    source: Any
    trust: Trust | None
    url: str | None = None
    size: int = 0
    etag: str = ""
    version_id: str | None = None
    lock: dict[str, Any] | None = None

    @property
    def identity(self) -> dict[str, Any]:
        """What a cached verify result is tied to (fleet/verified.py)."""
        return {"size": self.size, "etag": self.etag}


def is_remote(source: Any) -> bool:
    """An archive in object storage (s3://...)."""
    from ..storage import is_object_url

    return is_object_url(source)


@contextlib.contextmanager
def open_source(source: Any, *, trust: Trust | None = None,
                keys: DecryptionKeys | None = None) -> Iterator[Opened]:
    """Anything but an s3:// URL is passed through unchanged.  An object is
    opened here (a bad signature, a missing or wrong key are refused before
    any reader starts) and handed over as its RemoteInput, whose signature
    is then already checked (trust None)."""
    if not is_remote(source):
        yield Opened(source, trust)
        return
    from .remote_input import RemoteInput

    with RemoteInput(source, keys, trust) as inp:
        yield Opened(inp, None, inp.label, inp.size, inp.etag, inp.version_id,
                     lock_of(inp.location, inp.version_id))


def lock_of(location: Any, version_id: str | None) -> dict[str, Any] | None:
    """The object's retention as the server shows it: {"mode", "until"}."""
    from ..storage import retention_of

    try:
        held = retention_of(location, version_id)
    except StorageError:
        return None
    if held is None:
        return None
    return {"mode": held.mode, "until": held.until.strftime("%Y-%m-%dT%H:%M:%SZ")}
