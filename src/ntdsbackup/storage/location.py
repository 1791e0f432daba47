"""Object-storage locations: ``s3://BUCKET/KEY`` parsed into an S3Location.

``az://`` and ``gs://`` are recognised as object-storage names, so that a
command says plainly that this build does not serve them rather than
treating them as a local path: only S3 can be tested here (against a real
radosgw), and an untested backend must not hold anyone's backups.

The endpoint is ``$NTDSB_S3_ENDPOINT`` when set, else whatever the standard
AWS chain says (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, endpoint_url in the
config file), else AWS itself.  Credentials come only from the standard
chains (environment, ~/.aws files, instance roles): never from the command
line, and never in a message or a repr.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import LocationError

__all__ = ["ENDPOINT_VARIABLE", "S3Location", "endpoint_url", "is_object_url",
           "parse_location"]

ENDPOINT_VARIABLE = "NTDSB_S3_ENDPOINT"
_SERVED = ("s3",)
_KNOWN = ("s3", "az", "gs")
# S3's bucket rule, loosened to what Ceph also accepts (capitals, underscores):
# enough to catch a path mistaken for a location.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (the key may be a prefix, or empty: the bucket)."""

    bucket: str
    key: str = ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def __str__(self) -> str:
        return self.url

    def child(self, name: str) -> S3Location:
        """The key `name` below this one taken as a folder."""
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Location(self.bucket, prefix + name)

    def sibling(self, suffix: str) -> S3Location:
        """KEY + suffix (a detached signature: NAME.minisig)."""
        return S3Location(self.bucket, self.key + suffix)


def is_object_url(text: object) -> bool:
    """Whether `text` names object storage (s3://, az://, gs://), served or not."""
    if not isinstance(text, str):
        return False
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in _KNOWN


def parse_location(text: str) -> S3Location:
    """``s3://BUCKET[/KEY]`` -> S3Location; LocationError for anything else."""
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _KNOWN:
        raise LocationError(f"{text!r} is not an object-storage location (s3://BUCKET/KEY)")
    if scheme not in _SERVED:
        raise LocationError(f"{scheme}:// locations are not supported by this build: only "
                            "s3:// is (S3 is the only object store the tests run against)")
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise LocationError(f"{text!r}: {bucket!r} is not a bucket name")
    if "\0" in key or "\n" in key:
        raise LocationError(f"{text!r}: a key cannot hold NUL or newline characters")
    return S3Location(bucket, key)


def endpoint_url() -> str | None:
    """$NTDSB_S3_ENDPOINT, or None: botocore then follows the AWS chain."""
    return os.environ.get(ENDPOINT_VARIABLE) or None
