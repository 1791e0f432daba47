"""An archive in object storage (``s3://BUCKET/KEY``) handed to the readers
(verify, ls, extract, restore), which take a path or a file object.

How it is read, by what the reader needs:

* "seekable" (ls): the S3Reader itself, a seekable file object, so that
  read_documents reads only the manifest, the trailer and the seek index
  by ranged GETs.
* "stream" (verify, extract): the object fed in order into a pipe by the
  parallel reader (storage.PipeFeed): the C engine reads the descriptor
  with no GIL, nothing touches local disk.  A download that fails makes the
  engine see end-of-file; its own error (StorageError, exit 7) is what is
  raised, not a "truncated archive".
* Spooled to a private temporary file (in --spool-dir, else $TMPDIR), with
  the same parallel reads, only where random access over the whole object
  is unavoidable: an age-encrypted archive (the engine's AgeReader
  authenticates chunks by position on a descriptor), a signature to check
  (a digest of every stored byte before anything is read), and restore
  (ArchiveInput reads the documents at the end before the data, then the
  data twice: the header check and the staging pass).  The detached
  NAME.minisig object is fetched beside the spool.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import StorageError
from ..platform.files import create_private
from .envelope import AGE_MAGIC, is_age
from .signing import SIGNATURE_SUFFIX, Trust

__all__ = ["Opened", "is_remote", "open_source"]

_COPY_BLOCK = 8 << 20


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
    spooled: list[Path] = field(default_factory=list)

    @property
    def identity(self) -> dict[str, Any]:
        """What a cached verify result is tied to (fleet/verified.py)."""
        return {"size": self.size, "etag": self.etag}


def is_remote(source: Any) -> bool:
    """An archive in object storage (s3://...)."""
    from ..storage import is_object_url

    return is_object_url(source)


@contextlib.contextmanager
def open_source(source: Any, *, how: Literal["seekable", "stream", "spool"],
                trust: Trust | None = None,
                spool_dir: str | None = None) -> Iterator[Opened]:
    """Anything but an s3:// URL is passed through unchanged."""
    from ..storage import is_object_url

    if not is_object_url(source):
        yield Opened(source, trust)
        return
    from ..storage import S3Reader, parse_location

    location = parse_location(source)
    reader = S3Reader(location)
    opened = Opened(None, trust, location.url, reader.size, reader._etag.strip('"'),
                    reader.version_id, lock_of(location, reader.version_id))
    try:
        encrypted = is_age(reader.pread(len(AGE_MAGIC), 0))
        if encrypted or trust is not None or how == "spool":
            opened.source = _spool(reader, spool_dir, opened)
            if trust is not None and trust.signature is None:
                opened.trust = Trust(trust.keys, _fetch_signature(location, spool_dir, opened))
            yield opened
        elif how == "seekable":
            opened.source = reader
            yield opened
        else:
            with _fed(reader) as pipe:
                opened.source = pipe
                yield opened
    finally:
        reader.close()
        for path in opened.spooled:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@contextlib.contextmanager
def _fed(reader: Any) -> Iterator[Any]:
    feed = reader.pipe_feed()
    pipe = open(feed.fd, "rb", buffering=0, closefd=False)
    try:
        try:
            yield pipe
        except BaseException as exc:
            # The engine saw the pipe end early: the download's own error
            # says why, if it failed.
            feed.cancel()
            feed.join(5.0)
            if feed.error is not None and not isinstance(exc, KeyboardInterrupt):
                raise feed.error from exc
            raise
        feed.join()
        feed.check()
    finally:
        feed.cancel()
        feed.join(5.0)
        pipe.close()
        os.close(feed.fd)


def _spool(reader: Any, spool_dir: str | None, opened: Opened) -> Path:
    """The whole object in a private file (mode 0600: it holds the domain's
    password hashes), removed by open_source whatever happens."""
    fd, path = create_private(spool_dir or tempfile.gettempdir(), prefix="ntdsb-s3-",
                              suffix=".spool")
    opened.spooled.append(path)
    try:
        while block := reader.read(_COPY_BLOCK):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return path


def _fetch_signature(location: Any, spool_dir: str | None, opened: Opened) -> str | None:
    """NAME.minisig beside the object, copied beside the spool; None when
    there is none (the archive may carry its signature inside)."""
    from ..storage import S3Reader, object_exists

    sig = location.sibling(SIGNATURE_SUFFIX)
    if not object_exists(sig):
        return None
    with S3Reader(sig) as reader:
        data = reader.read()
    fd, path = create_private(spool_dir or tempfile.gettempdir(), prefix="ntdsb-s3-",
                              suffix=SIGNATURE_SUFFIX)
    opened.spooled.append(path)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return str(path)


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
