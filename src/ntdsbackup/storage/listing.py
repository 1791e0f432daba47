"""What is under a prefix, and deleting a version where the lock allows.

The listing is of versions (ListObjectVersions, one page at a time, each
page retried): it gives the version id a retention is set on and shown
for, and works the same on a bucket without versioning (id "null", given
here as None).  A delete the server refuses because the version is locked
is an answer ("locked"), not a failure: prune reports it as retained and
goes on with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..errors import StorageError
from .client import s3_client
from .location import S3Location
from .lock import legal_hold_of, retention_of
from .retry import DEFAULT_RETRY, RetryPolicy, with_retries

__all__ = ["DeleteOutcome", "ObjectEntry", "delete", "list_objects", "object_exists"]

DeleteOutcome = Literal["deleted", "locked", "missing"]


@dataclass(frozen=True)
class ObjectEntry:
    location: S3Location
    size: int
    last_modified: datetime
    version_id: str | None      # None in a bucket without versioning
    etag: str
    is_latest: bool


def list_objects(bucket: str, prefix: str = "", *, all_versions: bool = False,
                 page_size: int = 1000, retry: RetryPolicy = DEFAULT_RETRY,
                 client: Any = None) -> Iterator[ObjectEntry]:
    """The objects under `prefix`, in key order: the current version of
    each (a deleted one, whose newest entry is a delete marker, is left
    out), or with all_versions every version still stored."""
    client = client or s3_client()
    url = f"s3://{bucket}/{prefix}"
    markers: dict[str, str] = {}
    while True:
        def page_of(markers: dict[str, str] = markers) -> dict[str, Any]:
            return dict(client.list_object_versions(Bucket=bucket, Prefix=prefix,
                                                    MaxKeys=page_size, **markers))

        page = with_retries(
            page_of,
            doing="listing", url=url, policy=retry)
        for version in page.get("Versions", []):
            if not (all_versions or version.get("IsLatest")):
                continue
            vid = version.get("VersionId")
            yield ObjectEntry(S3Location(bucket, version["Key"]), int(version["Size"]),
                              version["LastModified"],
                              None if vid in (None, "null") else str(vid),
                              str(version.get("ETag", "")).strip('"'),
                              bool(version.get("IsLatest")))
        if not page.get("IsTruncated"):
            return
        markers = {"KeyMarker": page["NextKeyMarker"]}
        if page.get("NextVersionIdMarker"):
            markers["VersionIdMarker"] = page["NextVersionIdMarker"]


def object_exists(location: S3Location, *, client: Any = None) -> bool:
    """Whether the key has a current object (an output that must not be
    replaced unless asked)."""
    client = client or s3_client()
    try:
        with_retries(lambda: client.head_object(Bucket=location.bucket, Key=location.key),
                     doing="looking for", url=location.url)
    except StorageError as exc:
        if exc.code == "NoSuchKey":
            return False
        raise
    return True


def delete(location: S3Location, version_id: str | None = None, *,
           retry: RetryPolicy = DEFAULT_RETRY, client: Any = None) -> DeleteOutcome:
    """Delete the version (without one: the current object; in a versioned
    bucket that only adds a delete marker).  "locked" when the server
    refuses because a retention or a legal hold is on the version; a
    refusal for any other reason (no permission) is a StorageError."""
    client = client or s3_client()
    extra = {"VersionId": version_id} if version_id else {}
    try:
        with_retries(lambda: client.delete_object(Bucket=location.bucket, Key=location.key,
                                                  **extra),
                     doing="deleting", url=location.url, policy=retry)
    except StorageError as exc:
        if exc.code == "NoSuchKey":
            return "missing"
        if exc.code == "AccessDenied" and _locked(location, version_id, client):
            return "locked"
        raise
    return "deleted"


def _locked(location: S3Location, version_id: str | None, client: Any) -> bool:
    held = retention_of(location, version_id, client=client)
    return (held is not None and held.active()) or legal_hold_of(location, version_id,
                                                                 client=client)
