"""Multipart uploads left pending: by a process that was killed, or whose
abort could not reach the server.  They are invisible as objects but keep
their parts' space until aborted.

A backup being written now under the same prefix is also a pending upload:
give older_than (longer than any backup takes) when others may be running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .client import s3_client
from .location import S3Location
from .retry import DEFAULT_RETRY, RetryPolicy, error_code, with_retries

__all__ = ["PendingUpload", "abort_stale_uploads", "pending_uploads"]


@dataclass(frozen=True)
class PendingUpload:
    location: S3Location
    upload_id: str = ""
    initiated: datetime | None = None

    def __repr__(self) -> str:
        return f"PendingUpload({self.location.url}, initiated {self.initiated})"


def pending_uploads(bucket: str, prefix: str = "", *, retry: RetryPolicy = DEFAULT_RETRY,
                    client: Any = None) -> list[PendingUpload]:
    """Every multipart upload started and neither completed nor aborted."""
    client = client or s3_client()
    found: list[PendingUpload] = []
    markers: dict[str, str] = {}
    while True:
        def page_of(markers: dict[str, str] = markers) -> dict[str, Any]:
            return dict(client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, **markers))

        page = with_retries(
            page_of,
            doing="listing the pending uploads under", url=f"s3://{bucket}/{prefix}",
            policy=retry)
        for upload in page.get("Uploads", []):
            found.append(PendingUpload(S3Location(bucket, upload["Key"]), upload["UploadId"],
                                       upload.get("Initiated")))
        if not page.get("IsTruncated"):
            return found
        markers = {"KeyMarker": page["NextKeyMarker"],
                   "UploadIdMarker": page["NextUploadIdMarker"]}


def abort_stale_uploads(bucket: str, prefix: str = "", *,
                        older_than: timedelta = timedelta(0),
                        retry: RetryPolicy = DEFAULT_RETRY,
                        client: Any = None) -> list[PendingUpload]:
    """Abort the pending uploads under `prefix` started more than
    `older_than` ago (by the server's clock); returns those aborted."""
    client = client or s3_client()
    cutoff = datetime.now(timezone.utc) - older_than
    aborted = []
    for upload in pending_uploads(bucket, prefix, retry=retry, client=client):
        if upload.initiated is not None and upload.initiated > cutoff:
            continue
        loc = upload.location

        def abort(loc: S3Location = loc, upload_id: str = upload.upload_id) -> None:
            try:
                client.abort_multipart_upload(Bucket=loc.bucket, Key=loc.key,
                                              UploadId=upload_id)
            except Exception as exc:
                if error_code(exc) != "NoSuchUpload":   # gone meanwhile: as good
                    raise

        with_retries(abort, doing="aborting the pending upload of", url=loc.url,
                     policy=retry)
        aborted.append(upload)
    return aborted

