"""Retries with exponential backoff for transient failures, and the one
translation of boto3's exceptions into StorageError.

Transient: the connection refused, reset or timed out, a body cut short,
any 5xx, and throttling.  Anything else (no such key, access denied, a bad
request) fails at once: repeating it cannot help.  The attempts are
bounded, so a server that is gone costs a known time, never a hang.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import StorageError

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "error_code", "is_transient", "storage_error",
           "with_retries"]

T = TypeVar("T")

_THROTTLING = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
               "RequestLimitExceeded", "TooManyRequests", "InternalError",
               "ServiceUnavailable"}


@dataclass(frozen=True)
class RetryPolicy:
    """attempts in all (the first included); the waits between them double
    from `first_wait` up to `max_wait`, each with up to 25 % random jitter
    (so parallel parts do not retry in lockstep)."""

    attempts: int = 6
    first_wait: float = 0.25
    max_wait: float = 4.0

    def wait(self, failures: int) -> float:
        base = min(self.max_wait, self.first_wait * 2.0 ** (failures - 1))
        return base * (1 + random.random() / 4)


DEFAULT_RETRY = RetryPolicy()


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a ClientError (NoSuchKey, AccessDenied...)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status = _status(exc)
        return status >= 500 or status == 429 or error_code(exc) in _THROTTLING
    # HTTPClientError: reset, closed, read timeout, a body cut short (a
    # StreamingBody's own read wraps urllib3's ProtocolError so);
    # ConnectionError: refused, connect timeout.  OSError: a reset seen
    # while reading a streamed body outside botocore's wrappers.
    return isinstance(exc, (HTTPClientError, ConnectionError, OSError)) and \
        not isinstance(exc, StorageError)


def with_retries(call: Callable[[], T], *, doing: str, url: str,
                 policy: RetryPolicy = DEFAULT_RETRY,
                 cancelled: threading.Event | None = None) -> T:
    """call(), again after a wait while it fails transiently, at most
    policy.attempts times; then (or at once for a lasting failure) the
    StorageError saying what was being done to which object.  A set
    `cancelled` ends the waiting early (an upload being aborted)."""
    failures = 0
    while True:
        try:
            return call()
        except Exception as exc:
            failures += 1
            if isinstance(exc, StorageError) or not is_transient(exc) \
                    or failures >= policy.attempts:
                raise storage_error(exc, doing=doing, url=url, attempts=failures) from exc
            if cancelled is not None:
                if cancelled.wait(policy.wait(failures)):
                    raise storage_error(exc, doing=doing, url=url,
                                        attempts=failures) from exc
            else:
                time.sleep(policy.wait(failures))


def storage_error(exc: BaseException, *, doing: str, url: str,
                  attempts: int = 1) -> StorageError:
    """A StorageError naming the action and the object; botocore's own text
    carries the operation and the server's message (never a credential)."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageError(f"{doing} {url}: no usable credentials: set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, "
                            "or run where an instance role applies", url=url,
                            code="NoCredentials")
    code = error_code(exc)
    # HEAD answers carry no body: only the status is known.
    code = {"404": "NoSuchKey", "403": "AccessDenied"}.get(code or "", code)
    if code in ("NoSuchKey", "NoSuchBucket"):
        what = "no such object" if code == "NoSuchKey" else "no such bucket"
        return StorageError(f"{doing} {url}: {what}", url=url, code=code)
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    if code is not None:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        detail = f"{code}: {message}" if message else code
        return StorageError(f"{doing} {url} failed{tries}: {detail}", url=url, code=code)
    return StorageError(f"{doing} {url} failed{tries}: {exc}", url=url)
