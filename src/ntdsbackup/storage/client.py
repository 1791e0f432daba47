"""The boto3 client every storage call goes through, one per endpoint and
process (clients are thread-safe; sessions are not, so clients are made
under a lock and shared by the upload and read-ahead threads).

Retries are ours (retry.py), so botocore makes one attempt per call: the
bound on attempts and the backoff are then in one place.  Checksums are
computed only where the API requires them: Ceph 16 stores and checks none
of the x-amz-checksum-* headers and refuses the aws-chunked trailers newer
botocore sends by default; we send Content-MD5 ourselves, which it checks.
"""

from __future__ import annotations

import threading
from typing import Any

from .location import endpoint_url

__all__ = ["POOL_CONNECTIONS", "forget_clients", "new_client", "s3_client"]

# Enough connections for an upload's parts in flight and a reader's
# read-ahead at the same time, with their defaults (4 + 4) and headroom.
POOL_CONNECTIONS = 32
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0

_lock = threading.Lock()
_clients: dict[str | None, Any] = {}


def s3_client() -> Any:
    """The shared client for the configured endpoint."""
    endpoint = endpoint_url()
    with _lock:
        client = _clients.get(endpoint)
        if client is None:
            client = _clients[endpoint] = _new_client(endpoint)
        return client


def new_client() -> Any:
    """A client of its own (not shared: for event hooks, measurements),
    configured as the shared ones are."""
    return _new_client(endpoint_url())


def _new_client(endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    s3_options: dict[str, str] = {}
    if endpoint is not None:
        # A server of our own (radosgw, MinIO...) on an address, not a DNS
        # name: buckets in the path, not in the host name.
        s3_options["addressing_style"] = "path"
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
        max_pool_connections=POOL_CONNECTIONS, s3=s3_options, signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required")
    return session.client("s3", endpoint_url=endpoint, config=config,
                          region_name=session.region_name or "us-east-1")


def forget_clients() -> None:
    """Drop the cached clients (after the endpoint or credentials changed)."""
    with _lock:
        _clients.clear()
