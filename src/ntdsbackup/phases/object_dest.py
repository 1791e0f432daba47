"""A backup's destination in object storage (``s3://BUCKET/KEY``): the same
check/open/write_signature/commit/abort steps as a file destination
(backup._Destination), over a streamed multipart upload.

* check(): before the DC is asked anything, a retention asked of a bucket
  without object lock is refused (UsageError, exit 2), and so is a taken
  key unless overwrite (HEAD, FileExists).
* open(): the archive streams into an S3Upload; nothing touches local disk
  and memory is bounded by its parts in flight.  The last TAIL_BYTES
  written are kept to be compared with what the server returns.
* write_signature(): NAME.minisig, a small object beside the archive, put
  before the archive is completed (as for a file: a crash in between leaves
  a signature of nothing, never an archive that looks unsigned).
* commit(): complete the upload (the size is checked by HEAD), read the
  end of the object back by a ranged GET and compare it with the bytes
  written, and for a plain archive parse the trailer from it through the
  seek index and compare it with the trailer written: our own digests,
  not the server's.  Then the retention, confirmed, or the command fails
  saying the archive is there but not locked.
* abort(): the multipart upload is aborted (no object under the key), and
  a signature already put is deleted.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..archive.signing import SIGNATURE_SUFFIX
from ..archive.writer import Sink
from ..errors import LocationError, StorageError, UsageError
from ..platform.files import FileExists

TAIL_BYTES = 4 << 20        # the seek index of a very large DC fits; bounded memory


@dataclass(frozen=True)
class RetentionRequest:
    """--retain SECONDS --lock-mode MODE."""

    seconds: int
    mode: str = "COMPLIANCE"

    def until(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.seconds)


class _TailKeeper:
    """Passes writes on to the upload and keeps the last TAIL_BYTES."""

    def __init__(self, upload: Any):
        self.upload = upload
        self.tail: deque[bytes] = deque()
        self.kept = 0

    def write(self, data: Any) -> int:
        n = self.upload.write(data)
        piece = bytes(data)
        self.tail.append(piece)
        self.kept += len(piece)
        while self.tail and self.kept - len(self.tail[0]) >= TAIL_BYTES:
            self.kept -= len(self.tail.popleft())
        return n

    def flush(self) -> None:
        self.upload.flush()

    def last(self) -> bytes:
        joined = b"".join(self.tail)
        return joined[-TAIL_BYTES:]


class ObjectDestination:
    signs_beside = True          # the signature is NAME.minisig, over the stored bytes

    def __init__(self, url: str, *, overwrite: bool = False,
                 retention: RetentionRequest | None = None, encrypted: bool = False):
        from ..storage import parse_location

        self.location = parse_location(url)
        if not self.location.key or self.location.key.endswith("/"):
            raise LocationError(f"{url!r} names no object: give s3://BUCKET/PREFIX/NAME.tar.zst")
        self.overwrite = overwrite
        self.retention = retention
        self.encrypted = encrypted
        self.label = self.location.url
        self.final = None                  # no local path (backup._Destination has one)
        self.name = self.location.key.rsplit("/", 1)[-1]
        self.sig_location = self.location.sibling(SIGNATURE_SUFFIX)
        self.upload: Any = None
        self._tee: _TailKeeper | None = None
        self.result: Any = None            # storage.UploadResult of the archive
        self.sig_result: Any = None
        self.lock: Any = None              # storage.Retention confirmed on the archive

    @property
    def signature(self) -> str:
        return self.sig_location.url

    def check(self, signed: bool = False) -> None:
        from ..storage import bucket_lock_enabled, object_exists

        if self.retention is not None and not bucket_lock_enabled(self.location.bucket):
            raise UsageError(f"--retain needs a bucket with object lock, and "
                             f"{self.location.bucket} has none: use a bucket created with "
                             "object lock enabled; nothing was read from the DC")
        if self.overwrite:
            return
        for loc in [self.location] + ([self.sig_location] if signed else []):
            if object_exists(loc):
                raise FileExists(loc.url)

    def open(self) -> Sink:
        from ..storage import S3Upload

        self.upload = S3Upload(self.location)
        self._tee = _TailKeeper(self.upload)
        return Sink(fileobj=self._tee)

    def write_signature(self, text: str) -> None:
        from ..storage import put_bytes

        self.sig_result = put_bytes(self.sig_location, text.encode("utf-8"))

    def commit(self, sink: Sink, trailer: dict | None = None) -> None:
        assert self.upload is not None and self._tee is not None
        sink.flush(durable=True)
        self.result = self.upload.commit()
        try:
            self._read_back(trailer)
        except BaseException:
            # Not what was written: it must not stay under the key.
            self._delete(self.location, self.result.version_id)
            raise
        if self.retention is not None:
            self._lock()

    def _read_back(self, trailer: dict | None) -> None:
        from ..archive.ops import read_documents
        from ..storage import S3Reader

        assert self._tee is not None
        tail = self._tee.last()
        with S3Reader(self.location, version_id=self.result.version_id) as reader:
            got = reader.pread(len(tail), reader.size - len(tail))
            if got != tail:
                raise StorageError(f"reading {self.label} back: its last {len(tail)} bytes "
                                   "are not the ones written", url=self.label,
                                   code="Mismatch")
            if trailer is not None and not self.encrypted:
                docs = read_documents(reader)
                if docs["trailer"] != json.loads(json.dumps(trailer)):
                    raise StorageError(f"reading {self.label} back: its trailer is not the "
                                       "one written", url=self.label, code="Mismatch")

    def _lock(self) -> None:
        from ..storage import set_retention

        assert self.retention is not None
        until = self.retention.until()
        try:
            if self.sig_result is not None:
                set_retention(self.sig_location, self.sig_result.version_id,
                              self.retention.mode, until)
            self.lock = set_retention(self.location, self.result.version_id,
                                      self.retention.mode, until)
        except StorageError as exc:
            raise StorageError(f"the archive {self.label} is there but NOT locked: {exc}",
                               url=self.label, code="LockNotConfirmed") from exc

    def lock_record(self) -> dict[str, Any] | None:
        if self.lock is None:
            return None
        return {"mode": self.lock.mode, "until": _iso(self.lock.until)}

    def abort(self) -> None:
        if self.result is not None:
            return              # committed (and checked): a later failure keeps it
        if self.upload is not None:
            self.upload.abort()
        if self.sig_result is not None:
            self._delete(self.sig_location, self.sig_result.version_id)
            self.sig_result = None

    @staticmethod
    def _delete(location: Any, version_id: str | None) -> None:
        from ..storage import delete

        with contextlib.suppress(StorageError):
            delete(location, version_id)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

