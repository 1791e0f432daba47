"""Object storage (S3) for archives: streamed multipart uploads, ranged
reads with read-ahead, object-lock retention, listing and cleanup.

Every call goes through boto3/botocore (client.py): one well-kept library
with every object-lock call (docs/STORAGE.md says why, with figures).
Errors are StorageError (an OSError: exit code 7), naming s3://BUCKET/KEY
and never a credential.  boto3 is imported only when storage is used.
"""

from __future__ import annotations

from ..errors import LocationError, StorageError
from .cleanup import PendingUpload, abort_stale_uploads, pending_uploads
from .listing import DeleteOutcome, ObjectEntry, delete, list_objects, object_exists
from .location import S3Location, endpoint_url, is_object_url, parse_location
from .lock import (
    MODES,
    Retention,
    bucket_lock_enabled,
    legal_hold_of,
    require_lock_enabled,
    retention_of,
    set_retention,
)
from .pipefeed import PipeFeed
from .reader import S3Reader
from .retry import DEFAULT_RETRY, RetryPolicy
from .upload import S3Upload, UploadResult, put_bytes

__all__ = ["DEFAULT_RETRY", "MODES", "DeleteOutcome", "LocationError", "ObjectEntry",
           "PendingUpload", "PipeFeed", "Retention", "RetryPolicy", "S3Location", "S3Reader",
           "S3Upload", "StorageError", "UploadResult", "abort_stale_uploads",
           "bucket_lock_enabled", "delete", "endpoint_url", "is_object_url", "legal_hold_of",
           "list_objects", "object_exists", "parse_location", "pending_uploads", "put_bytes",
           "require_lock_enabled", "retention_of", "set_retention"]
