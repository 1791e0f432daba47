"""A streamed multipart upload as a binary writable file object.

The archive is written to S3Upload like to a file; nothing touches local
disk.  Memory is bounded: one part fills while at most max_in_flight others
are being sent, so at most max_in_flight + 1 parts exist, and write()
blocks while the senders are all busy.  Parts start at part_size and double
every GROW_EVERY parts: S3 takes at most 10,000 parts, which at a fixed
16 MiB would cap an archive at 156 GiB; growing, they reach beyond 900 GiB,
and an archive under 31 GiB never leaves the first size (80 MiB of parts
at most).  Each part carries its
Content-MD5 (the server refuses a part that arrived damaged) and is
retried with backoff when the failure is transient.

Nothing appears under the key before commit(): it completes the upload and
then checks the object (its size, and its multipart ETag, which is the MD5
of the parts' MD5s) by HEAD.  Leaving the context manager without commit(),
by an exception or not, aborts the upload; an upload whose abort could not
reach the server (or whose process was killed) is found and aborted later
by cleanup.abort_stale_uploads().
"""

from __future__ import annotations

import base64
import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import StorageError
from .client import s3_client
from .location import S3Location
from .retry import DEFAULT_RETRY, RetryPolicy, error_code, with_retries

__all__ = ["DEFAULT_PART_SIZE", "MIN_PART_SIZE", "S3Upload", "UploadResult", "put_bytes"]

MIN_PART_SIZE = 5 << 20          # S3's floor for every part but the last
# 16 MiB parts: against the tests' radosgw, a 192 MiB object went up at
# 1.10x rclone's rate with them and 1.00x with 8 MiB (docs/STORAGE.md).
DEFAULT_PART_SIZE = 16 << 20
MAX_PARTS = 10_000               # S3's ceiling
GROW_EVERY = 2000                # parts of one size before the size doubles


@dataclass(frozen=True)
class UploadResult:
    """The object as the server holds it after the check."""

    location: S3Location
    size: int
    etag: str
    version_id: str | None       # None in a bucket without versioning


def _md5(data: bytes | bytearray) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class S3Upload:
    """write(bytes) -> int, flush(), commit() -> UploadResult, abort()."""

    def __init__(self, location: S3Location, *, part_size: int = DEFAULT_PART_SIZE,
                 max_in_flight: int = 4, retry: RetryPolicy = DEFAULT_RETRY,
                 client: Any = None, grow_every: int = GROW_EVERY):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if max_in_flight < 1 or grow_every < 1:
            raise ValueError("max_in_flight and grow_every must be at least 1")
        self.location = location
        self.name = location.url
        self.first_part_size = part_size
        self.grow_every = grow_every
        self.part_size = part_size              # of the part being filled
        self.max_in_flight = max_in_flight
        self.retry = retry
        self._client = client or s3_client()
        self._buffer = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._futures: list[Future[None]] = []
        self._digests: dict[int, bytes] = {}          # part number -> its MD5
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._cancelled = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._state = "open"                           # -> committed | aborted
        self.in_flight = 0                             # parts being sent now
        self.peak_in_flight = 0                        # the most there ever were
        self.abort_error: StorageError | None = None   # an abort the server never saw

    def __repr__(self) -> str:
        return f"<S3Upload {self.name} {self._state}, {self._written} bytes>"

    # -- the file object -----------------------------------------------
    @property
    def closed(self) -> bool:
        return self._state != "open"

    def writable(self) -> bool:
        return True

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        """Take every byte of `data` (a bytes-like object, copied): a full
        part is handed to the senders, waiting for a free one."""
        self._check_open()
        view = memoryview(data).cast("B")
        size = len(view)
        while view:
            room = self.part_size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == self.part_size:
                self._send_part()
        self._written += size
        return size

    def flush(self) -> None:
        """Nothing to do: a part is sent when full, the rest by commit()
        (S3 has no way to make half a part durable)."""
        self._check_open()

    def __enter__(self) -> S3Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()        # after commit() a no-op

    def close(self) -> None:
        """Without commit() the upload is abandoned: aborted, not completed."""
        self.abort()

    # -- parts ---------------------------------------------------------
    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"the upload to {self.name} is {self._state}")
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _create(self) -> None:
        loc = self.location
        response = with_retries(
            lambda: self._client.create_multipart_upload(Bucket=loc.bucket, Key=loc.key),
            doing="starting the upload of", url=self.name, policy=self.retry)
        self._upload_id = response["UploadId"]
        self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="ntdsb-s3-up")

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._create()
        number = len(self._futures) + 1
        if number > MAX_PARTS:
            raise StorageError(f"uploading {self.name}: more than {MAX_PARTS} parts; use a "
                               "larger part size", url=self.name)
        self._slots.acquire()          # blocks while max_in_flight parts are in flight
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        body, self._buffer = self._buffer, bytearray()   # handed over, not copied
        self.part_size = self.first_part_size << (number // self.grow_every)   # the next
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        assert self._pool is not None
        self._futures.append(self._pool.submit(self._upload_part, number, body))

    def _upload_part(self, number: int, body: bytearray) -> None:
        loc = self.location
        try:
            digest = _md5(body)
            response = with_retries(
                lambda: self._client.upload_part(
                    Bucket=loc.bucket, Key=loc.key, UploadId=self._upload_id,
                    PartNumber=number, Body=body, ContentMD5=_b64(digest),
                    ContentLength=len(body)),
                doing=f"uploading part {number} of", url=self.name, policy=self.retry,
                cancelled=self._cancelled)
            if response["ETag"].strip('"') != digest.hex():
                raise StorageError(f"uploading part {number} of {self.name}: the server "
                                   "stored other bytes than were sent (ETag differs)",
                                   url=self.name)
            with self._lock:
                self._digests[number] = digest
        except BaseException as exc:
            with self._lock:
                if self._failure is None:
                    self._failure = exc
        finally:
            with self._lock:
                self.in_flight -= 1
            self._slots.release()

    def _wait_for_parts(self) -> None:
        for future in self._futures:
            future.result()           # _upload_part never raises: it records
        self._raise_failure()

    # -- the end -------------------------------------------------------
    def commit(self) -> UploadResult:
        """Send the rest, complete the upload, check the object by HEAD."""
        self._check_open()
        try:
            if self._upload_id is None:
                # Never a full part: one PUT, still at commit, so nothing
                # appears under the key before now either.
                result = put_bytes(self.location, bytes(self._buffer), retry=self.retry,
                                   client=self._client)
                self._buffer = bytearray()
            else:
                if self._buffer:
                    self._send_part()
                self._wait_for_parts()
                result = self._complete()
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self._shutdown()
        return result

    def _complete(self) -> UploadResult:
        loc = self.location
        numbers = sorted(self._digests)
        parts = [{"PartNumber": n, "ETag": f'"{self._digests[n].hex()}"'} for n in numbers]
        expected_etag = hashlib.md5(b"".join(self._digests[n] for n in numbers),
                                    usedforsecurity=False).hexdigest() + f"-{len(numbers)}"
        attempts = 0

        def complete() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            try:
                return dict(self._client.complete_multipart_upload(
                    Bucket=loc.bucket, Key=loc.key, UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts}))
            except Exception as exc:
                # A retry after an answer that was lost: the first attempt
                # completed it.  The HEAD below decides.
                if attempts > 1 and error_code(exc) == "NoSuchUpload":
                    return {}
                raise

        response = with_retries(complete, doing="completing the upload of", url=self.name,
                                policy=self.retry)
        self._upload_id = None
        return check_object(self.location, size=self._written, etag=expected_etag,
                            version_id=response.get("VersionId"), retry=self.retry,
                            client=self._client)

    def abort(self) -> bool:
        """Stop sending and abort the multipart upload, so that no object
        appears under the key.  Idempotent; a no-op after commit().  False
        when the server could not be told (abort_error says why: the upload
        stays pending until cleanup.abort_stale_uploads())."""
        if self._state != "open":
            return self.abort_error is None
        self._state = "aborted"
        self._cancelled.set()
        for future in self._futures:
            future.cancel()
        self._shutdown()              # the parts still in flight end first
        self._buffer = bytearray()
        if self._upload_id is None:
            return True
        loc, upload_id = self.location, self._upload_id

        def abort() -> None:
            try:
                self._client.abort_multipart_upload(Bucket=loc.bucket, Key=loc.key,
                                                    UploadId=upload_id)
            except Exception as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise

        try:
            with_retries(abort, doing="aborting the upload of", url=self.name,
                         policy=self.retry)
        except StorageError as exc:
            self.abort_error = exc
            return False
        self._upload_id = None
        return True

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def put_bytes(location: S3Location, data: bytes, *, retry: RetryPolicy = DEFAULT_RETRY,
              client: Any = None) -> UploadResult:
    """A small object in one PUT (a detached signature), checked by HEAD."""
    client = client or s3_client()
    digest = _md5(data)
    response = with_retries(
        lambda: client.put_object(Bucket=location.bucket, Key=location.key, Body=data,
                                  ContentMD5=_b64(digest), ContentLength=len(data)),
        doing="uploading", url=location.url, policy=retry)
    return check_object(location, size=len(data), etag=digest.hex(),
                        version_id=response.get("VersionId"), retry=retry, client=client)


def check_object(location: S3Location, *, size: int, etag: str, version_id: str | None,
                 retry: RetryPolicy = DEFAULT_RETRY, client: Any = None) -> UploadResult:
    """HEAD the object (the version just written, where there are versions)
    and refuse one whose size or ETag is not what was sent."""
    client = client or s3_client()
    extra = {"VersionId": version_id} if version_id else {}
    head = with_retries(
        lambda: client.head_object(Bucket=location.bucket, Key=location.key, **extra),
        doing="checking", url=location.url, policy=retry)
    got_size, got_etag = int(head["ContentLength"]), str(head.get("ETag", "")).strip('"')
    if got_size != size or got_etag != etag:
        raise StorageError(f"checking {location.url}: the server holds {got_size} bytes with "
                           f"ETag {got_etag}, but {size} bytes with ETag {etag} were sent",
                           url=location.url, code="Mismatch")
    return UploadResult(location, got_size, got_etag, head.get("VersionId") or version_id)
