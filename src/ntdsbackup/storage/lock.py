"""Object-lock retention: set after the upload, then confirmed.

Ceph 16 silently ignores the lock headers of CreateMultipartUpload, so a
retention is set on the finished version with PutObjectRetention and then
read back (HEAD, else GetObjectRetention): success is reported only when
the server shows the mode and a retain-until date at least as late as
asked.  In COMPLIANCE mode nobody can shorten the retention or delete the
version before the date, the root user included; in GOVERNANCE mode a user
with the bypass permission can.  Extending a retention is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import StorageError
from .client import s3_client
from .location import S3Location
from .retry import DEFAULT_RETRY, RetryPolicy, with_retries

__all__ = ["MODES", "Retention", "bucket_lock_enabled", "legal_hold_of",
           "require_lock_enabled", "retention_of", "set_retention"]

MODES = ("COMPLIANCE", "GOVERNANCE")
# The server may keep the date to the second or to the microsecond.
_SLACK = timedelta(seconds=1)


@dataclass(frozen=True)
class Retention:
    mode: str                 # COMPLIANCE or GOVERNANCE
    until: datetime           # retain-until, UTC

    def active(self, now: datetime | None = None) -> bool:
        return self.until > (now or datetime.now(timezone.utc))


def bucket_lock_enabled(bucket: str, *, retry: RetryPolicy = DEFAULT_RETRY,
                        client: Any = None) -> bool:
    """Whether the bucket was created with object lock (and so versioning)."""
    client = client or s3_client()
    url = f"s3://{bucket}/"
    try:
        config = with_retries(lambda: client.get_object_lock_configuration(Bucket=bucket),
                              doing="reading the object-lock setting of", url=url,
                              policy=retry)
    except StorageError as exc:
        if exc.code == "ObjectLockConfigurationNotFoundError":
            return False
        raise
    return bool(config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
                == "Enabled")


def require_lock_enabled(bucket: str, *, client: Any = None) -> None:
    """The clear error for a retention asked of a bucket without object lock
    (to be raised before a backup starts)."""
    if not bucket_lock_enabled(bucket, client=client):
        raise StorageError(f"the bucket {bucket} has no object lock, so no retention can be "
                           "set in it: use a bucket created with object lock enabled",
                           url=f"s3://{bucket}/", code="ObjectLockNotEnabled")


def set_retention(location: S3Location, version_id: str | None, mode: str, until: datetime,
                  *, bypass_governance: bool = False, retry: RetryPolicy = DEFAULT_RETRY,
                  client: Any = None) -> Retention:
    """Lock the version until `until` in `mode`, then confirm that it took
    (StorageError otherwise, never a silent success).  Shortening a
    retention is refused by the server (StorageError, code AccessDenied),
    except a GOVERNANCE one with bypass_governance and the permission."""
    mode = mode.upper()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if until.tzinfo is None:
        raise ValueError("until must be an aware datetime (UTC)")
    client = client or s3_client()
    extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
    if bypass_governance:
        extra["BypassGovernanceRetention"] = True
    with_retries(
        lambda: client.put_object_retention(
            Bucket=location.bucket, Key=location.key,
            Retention={"Mode": mode, "RetainUntilDate": until}, **extra),
        doing=f"setting {mode} retention until {until:%Y-%m-%d %H:%M:%S} on",
        url=location.url, policy=retry)
    held = retention_of(location, version_id, retry=retry, client=client)
    if held is None or held.mode != mode or held.until < until - _SLACK:
        shown = f"{held.mode} until {held.until:%Y-%m-%d %H:%M:%S}" if held else "no lock"
        raise StorageError(f"the retention on {location.url} did not take: {mode} until "
                           f"{until:%Y-%m-%d %H:%M:%S} was asked, the server shows {shown}",
                           url=location.url, code="LockNotConfirmed")
    return held


def retention_of(location: S3Location, version_id: str | None = None, *,
                 retry: RetryPolicy = DEFAULT_RETRY, client: Any = None) -> Retention | None:
    """The version's retention as the server shows it, or None."""
    client = client or s3_client()
    extra = {"VersionId": version_id} if version_id else {}
    head = with_retries(
        lambda: client.head_object(Bucket=location.bucket, Key=location.key, **extra),
        doing="reading the retention of", url=location.url, policy=retry)
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    if mode is None or until is None:
        # Not every server puts the lock on HEAD: ask for it.
        try:
            answer = with_retries(
                lambda: client.get_object_retention(Bucket=location.bucket,
                                                    Key=location.key, **extra),
                doing="reading the retention of", url=location.url, policy=retry)
        except StorageError as exc:
            if exc.code in ("NoSuchObjectLockConfiguration", "InvalidRequest",
                            "ObjectLockConfigurationNotFoundError"):
                return None
            raise
        mode = answer.get("Retention", {}).get("Mode")
        until = answer.get("Retention", {}).get("RetainUntilDate")
        if mode is None or until is None:
            return None
    return Retention(str(mode), until.astimezone(timezone.utc))


def legal_hold_of(location: S3Location, version_id: str | None = None, *,
                  client: Any = None) -> bool:
    """Whether a legal hold is on the version (it blocks deletes without a date)."""
    client = client or s3_client()
    extra = {"VersionId": version_id} if version_id else {}
    head = with_retries(
        lambda: client.head_object(Bucket=location.bucket, Key=location.key, **extra),
        doing="reading the legal hold of", url=location.url)
    return bool(head.get("ObjectLockLegalHoldStatus") == "ON")
