"""The object-storage layer against a real Ceph radosgw (the s3 fixture):
streamed multipart uploads and their aborts, ranged reads, object lock,
listing, and what happens when the server or the uploader dies."""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

import pytest

from flakyproxy import FlakyProxy
from ntdsbackup.cli.common import EXIT_IO, exit_code_for
from ntdsbackup.errors import LocationError, StorageError
from ntdsbackup.storage import (
    RetryPolicy,
    S3Location,
    S3Reader,
    S3Upload,
    abort_stale_uploads,
    bucket_lock_enabled,
    delete,
    list_objects,
    parse_location,
    pending_uploads,
    put_bytes,
    require_lock_enabled,
    retention_of,
    set_retention,
)
from ntdsbackup.storage.client import forget_clients, new_client

PART = 5 << 20                       # S3's smallest part: the most parts per byte
# Retries cut short, for the tests where the server is gone on purpose.
BRIEF = RetryPolicy(attempts=3, first_wait=0.1, max_wait=0.2)
# The default number of attempts, with shorter waits.
QUICK = RetryPolicy(attempts=6, first_wait=0.05, max_wait=0.2)


def _key(name: str) -> str:
    return f"{name}-{os.urandom(4).hex()}"


def _stored(s3, bucket: str, key: str) -> bytes:
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def _upload(location: S3Location, data: bytes, *, piece: int = 1 << 20, **options):
    with S3Upload(location, part_size=PART, **options) as upload:
        for start in range(0, len(data), piece):
            assert upload.write(memoryview(data)[start:start + piece]) == \
                len(data[start:start + piece])
        return upload.commit()


# -- uploads ---------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, PART, 3 * PART + 12345],
                         ids=["empty", "one-byte", "one-part", "parts-and-rest"])
def test_upload_round_trip(s3, bucket, size):
    data = os.urandom(size)
    location = S3Location(bucket, _key(f"round-{size}"))
    result = _upload(location, data)
    stored = _stored(s3, bucket, location.key)
    assert result.size == size == len(stored)
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    assert pending_uploads(bucket, location.key) == []


def test_parts_double_every_grow_every_parts(s3, bucket):
    """S3 takes 10,000 parts at most: the parts grow so that a large archive
    still fits.  With grow_every=2, 5 MiB parts go 5, 5, 10, 10, 20: 40 MiB
    in 5 parts where a fixed size would need 8 (the ETag's -N says how many
    parts the server assembled)."""
    data = os.urandom(8 * PART)
    location = S3Location(bucket, _key("grow"))
    sizes = []
    with S3Upload(location, part_size=PART, grow_every=2) as upload:
        for start in range(0, len(data), 1 << 20):
            upload.write(data[start:start + (1 << 20)])
            if upload.part_size not in sizes:
                sizes.append(upload.part_size)
        result = upload.commit()
    assert sizes == [PART, 2 * PART, 4 * PART]
    assert result.etag.endswith("-5") and result.size == len(data)
    assert _stored(s3, bucket, location.key) == data


def test_parts_in_flight_never_exceed_the_bound(bucket):
    """The server never sees more than max_in_flight parts at once, and the
    upload's memory stays within max_in_flight + 1 parts (and some slack)."""
    client = new_client()
    running, peak, lock = [0], [0], threading.Lock()

    def began(**_):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])

    def ended(**_):
        with lock:
            running[0] -= 1

    client.meta.events.register("before-call.s3.UploadPart", began)
    client.meta.events.register("after-call.s3.UploadPart", ended)
    piece = os.urandom(1 << 20)
    tracemalloc.start()
    try:
        with S3Upload(S3Location(bucket, _key("bounded")), part_size=PART, max_in_flight=2,
                      client=client) as upload:
            for _ in range(10 * 5):
                upload.write(piece)
            result = upload.commit()
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == 50 << 20
    assert 1 <= peak[0] <= 2 and upload.peak_in_flight == 2
    assert peak_bytes < (2 + 2) * PART, peak_bytes


def test_abort_leaves_no_object_and_no_pending_upload(s3, bucket):
    location = S3Location(bucket, _key("aborted"))
    upload = S3Upload(location, part_size=PART)
    upload.write(os.urandom(2 * PART + 10))
    assert [p.location for p in pending_uploads(bucket, location.key)] == [location]
    assert upload.abort() is True
    assert upload.abort() is True                     # idempotent
    assert s3.missing(bucket, location.key)
    assert pending_uploads(bucket, location.key) == []
    with pytest.raises(ValueError):
        upload.write(b"more")


def test_an_exception_inside_the_context_manager_aborts(s3, bucket):
    location = S3Location(bucket, _key("raised"))
    with pytest.raises(RuntimeError), S3Upload(location, part_size=PART) as upload:
        upload.write(os.urandom(PART + 1))
        raise RuntimeError("the engine failed")
    assert s3.missing(bucket, location.key)
    assert pending_uploads(bucket, location.key) == []


def test_leaving_without_commit_publishes_nothing(s3, bucket):
    location = S3Location(bucket, _key("uncommitted"))
    with S3Upload(location, part_size=PART) as upload:
        upload.write(b"small")
    assert s3.missing(bucket, location.key)


def test_server_killed_mid_upload_then_cleanup(rgw_restarted, bucket):
    s3 = rgw_restarted
    location = S3Location(bucket, _key("server-died"))
    piece = os.urandom(1 << 20)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught, \
            S3Upload(location, part_size=PART, retry=BRIEF) as upload:
        for i in range(200):
            upload.write(piece)
            if i == 2 * PART >> 20:
                s3.stop_rgw()
        upload.commit()
    assert time.monotonic() - started < 60
    assert location.key in str(caught.value) and s3.secret_key not in str(caught.value)
    assert exit_code_for(caught.value) == EXIT_IO
    assert upload.abort_error is not None        # the abort could not reach it either
    s3.start_rgw()
    assert s3.missing(bucket, location.key)
    assert [p.location for p in pending_uploads(bucket, location.key)] == [location]
    aborted = abort_stale_uploads(bucket, location.key)
    assert [p.location for p in aborted] == [location]
    assert pending_uploads(bucket, location.key) == []


UPLOADER = """
import os, sys, time
from ntdsbackup.storage import S3Upload, parse_location
upload = S3Upload(parse_location(sys.argv[1]), part_size=5 << 20, max_in_flight=2)
piece = os.urandom(1 << 20)
for i in range(10_000):
    upload.write(piece)
    if i == 12:
        print("parts on their way", flush=True)
    time.sleep(0.005)
upload.commit()
"""


def test_a_killed_uploader_leaves_no_object_and_cleanup_aborts_it(s3, bucket):
    location = S3Location(bucket, _key("killed"))
    proc = subprocess.Popen([sys.executable, "-c", UPLOADER, location.url],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "parts on their way"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert s3.missing(bucket, location.key)
    assert [p.location for p in abort_stale_uploads(bucket, location.key)] == [location]
    assert pending_uploads(bucket, location.key) == []


@pytest.fixture
def flaky(s3, monkeypatch):
    """The package pointed at a FlakyProxy (through $NTDSB_S3_ENDPOINT)."""
    proxies = []

    def make(drop: int) -> FlakyProxy:
        proxy = FlakyProxy(s3.rgw_port, drop)
        proxies.append(proxy)
        monkeypatch.setenv("NTDSB_S3_ENDPOINT", f"http://127.0.0.1:{proxy.port}")
        forget_clients()
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
    forget_clients()


def test_reset_connections_are_retried(s3, bucket, flaky):
    data = os.urandom(2 * PART + 3)
    proxy = flaky(drop=3)
    location = S3Location(bucket, _key("flaky"))
    assert _upload(location, data, retry=QUICK).size == len(data)
    assert proxy.dropped == 3
    proxy = flaky(drop=2)
    with S3Reader(location, retry=QUICK) as reader:
        assert reader.read() == data
    assert proxy.dropped == 2
    proxy = flaky(drop=5)            # one below the six attempts
    assert put_bytes(S3Location(bucket, _key("flaky-small")), b"sig", retry=QUICK).size == 3
    proxy = flaky(drop=6)
    with pytest.raises(StorageError, match="after 6 attempts"):
        put_bytes(S3Location(bucket, _key("flaky-gone")), b"sig", retry=QUICK)


def test_a_restart_during_the_retries_is_ridden_out(rgw_restarted, bucket):
    s3 = rgw_restarted
    patient = RetryPolicy(attempts=12, first_wait=0.5, max_wait=2.0)   # about 20 s
    s3.stop_rgw()
    restart = threading.Timer(1.0, s3.start_rgw)
    restart.start()
    try:
        result = put_bytes(S3Location(bucket, _key("restart")), b"after", retry=patient)
    finally:
        restart.join()
    assert result.size == 5


# -- reads -----------------------------------------------------------------

@pytest.fixture(scope="module")
def stored_object(s3, bucket):
    """26 MiB and a bit, in 5 MiB parts: blocks, parts and the end unaligned."""
    data = os.urandom(26 * (1 << 20) + 4321)
    location = S3Location(bucket, _key("readable"))
    _upload(location, data)
    return location, data


def test_sequential_read_equals_the_object(stored_object):
    location, data = stored_object
    with S3Reader(location, block=4 << 20, parallel=3) as reader:
        assert reader.size == len(data)
        got = bytearray()
        while chunk := reader.read(700_001):
            got += chunk
        assert got == data
        assert reader.read(10) == b""
        # Read ahead in blocks, not a GET per read().
        assert reader.gets <= len(data) // (4 << 20) + 4


def test_readinto_and_seek(stored_object):
    location, data = stored_object
    with S3Reader(location) as reader:
        buffer = bytearray(1000)
        reader.seek(-500, io.SEEK_END)
        assert reader.readinto(buffer) == 500 and buffer[:500] == data[-500:]
        assert reader.tell() == len(data)
        reader.seek(12345)
        assert reader.read(10) == data[12345:12355]
        with pytest.raises(io.UnsupportedOperation):
            reader.fileno()


def test_random_preads_equal_slices(stored_object):
    location, data = stored_object
    rng = random.Random(15)
    with S3Reader(location) as reader:
        for _ in range(300):
            offset = rng.randrange(0, len(data))
            size = rng.choice([1, 100, 4096, 65536, 300_000])
            assert reader.pread(size, offset) == data[offset:offset + size]
        for offset in (0, 3 << 20, len(data) - (5 << 20)):      # larger than a block
            assert reader.pread(9 << 20, offset) == data[offset:offset + (9 << 20)]
        assert reader.tell() == 0
        assert reader.pread(100, len(data) - 10) == data[-10:]
        assert reader.pread(100, len(data) + 10) == b""


def test_the_end_of_an_object_costs_few_gets(stored_object):
    """What ls does: the start, then the last KiBs (trailer and index)."""
    location, data = stored_object
    with S3Reader(location) as reader:
        reader.read(4096)
        reader.seek(-200_000, io.SEEK_END)
        assert reader.read(150_000) == data[-200_000:-50_000]
        assert reader.read() == data[-50_000:]
        assert reader.gets <= 3


def test_pipe_feed_equals_the_object(stored_object):
    location, data = stored_object
    with S3Reader(location, block=2 << 20) as reader:
        feed = reader.pipe_feed(start=1000)
        got = bytearray()
        with open(feed.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 20):
                got += chunk
        feed.join(30)
        feed.check()
        assert got == data[1000:]


def test_pipe_feed_cancel_ends_the_thread_while_nobody_reads(stored_object):
    location, _ = stored_object
    with S3Reader(location, block=2 << 20) as reader:
        feed = reader.pipe_feed()
        time.sleep(0.5)                   # the pipe is full by now
        feed.cancel()
        feed.join(5)
        assert feed.done
        os.close(feed.fd)
        feed.check()


def test_the_server_gone_mid_read_is_a_clear_error(rgw_restarted, stored_object):
    s3 = rgw_restarted
    location, data = stored_object
    reader = S3Reader(location, block=1 << 20, parallel=2, retry=BRIEF)
    with reader:
        assert reader.read(3 << 20) == data[:3 << 20]
        s3.stop_rgw()
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            while reader.read(1 << 20):
                pass
        assert time.monotonic() - started < 30
    assert isinstance(caught.value, OSError) and location.key in str(caught.value)
    assert s3.secret_key not in str(caught.value)


def test_the_pipe_feed_records_the_server_going_away(rgw_restarted, stored_object):
    s3 = rgw_restarted
    location, data = stored_object
    with S3Reader(location, block=1 << 20, parallel=2, retry=BRIEF) as reader:
        feed = reader.pipe_feed()
        with open(feed.fd, "rb", buffering=0) as pipe:
            first = pipe.read(1 << 20)
            s3.stop_rgw()
            rest = b"".join(iter(lambda: pipe.read(1 << 20), b""))
        feed.join(30)
        assert len(first) + len(rest) < len(data)          # end of file came early
        with pytest.raises(StorageError, match=location.key):
            feed.check()


def test_a_missing_object_is_named(bucket):
    with pytest.raises(StorageError, match="no such object") as caught:
        S3Reader(S3Location(bucket, "no/such/key"))
    assert caught.value.code == "NoSuchKey" and "s3://" + bucket in str(caught.value)


# -- object lock -----------------------------------------------------------

def _soon(minutes: float) -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=minutes)


def test_compliance_retention_after_a_multipart_upload(lock_bucket):
    location = S3Location(lock_bucket, _key("compliance"))
    result = _upload(location, os.urandom(PART + 99))
    assert result.version_id
    assert retention_of(location, result.version_id) is None
    until = _soon(3)
    held = set_retention(location, result.version_id, "COMPLIANCE", until)
    assert held.mode == "COMPLIANCE" and held.until >= until
    assert retention_of(location, result.version_id) == held
    assert delete(location, result.version_id) == "locked"
    with pytest.raises(StorageError) as caught:
        set_retention(location, result.version_id, "COMPLIANCE", _soon(1))
    assert caught.value.code == "AccessDenied"
    longer = set_retention(location, result.version_id, "COMPLIANCE", _soon(4))
    assert longer.until > held.until
    assert [e.version_id for e in list_objects(lock_bucket, location.key)] == \
        [result.version_id]


def test_governance_retention(lock_bucket):
    location = S3Location(lock_bucket, _key("governance"))
    result = put_bytes(location, b"a detached signature")
    held = set_retention(location, result.version_id, "GOVERNANCE", _soon(3))
    assert held.mode == "GOVERNANCE"
    assert delete(location, result.version_id) == "locked"
    with pytest.raises(StorageError):
        set_retention(location, result.version_id, "GOVERNANCE", _soon(1))
    assert set_retention(location, result.version_id, "GOVERNANCE", _soon(5)).until > \
        held.until


def test_an_unlocked_version_is_deleted(lock_bucket):
    location = S3Location(lock_bucket, _key("unlocked"))
    result = put_bytes(location, b"x")
    assert delete(location, result.version_id) == "deleted"
    assert list(list_objects(lock_bucket, location.key)) == []


def test_retention_on_a_bucket_without_lock_is_a_clear_error(bucket):
    location = S3Location(bucket, _key("no-lock"))
    put_bytes(location, b"x")
    with pytest.raises(StorageError, match="lock"):
        set_retention(location, None, "COMPLIANCE", _soon(1))
    with pytest.raises(StorageError, match=f"the bucket {bucket} has no object lock"):
        require_lock_enabled(bucket)


def test_bucket_lock_enabled(bucket, lock_bucket):
    assert bucket_lock_enabled(bucket) is False
    assert bucket_lock_enabled(lock_bucket) is True
    require_lock_enabled(lock_bucket)


# -- listing ---------------------------------------------------------------

def test_listing_500_objects_in_pages(s3):
    bucket = s3.create_bucket()
    client = s3.client()
    keys = [f"fleet/DC{i % 20:02d}/backup-{i:04d}.tar.zst" for i in range(500)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=k.encode()),
                      keys))
    client.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x")
    started = time.monotonic()
    entries = list(list_objects(bucket, "fleet/", page_size=100))
    assert time.monotonic() - started < 10
    assert [e.location.key for e in entries] == sorted(keys)
    assert all(e.size == len(e.location.key) and e.version_id is None for e in entries)
    assert all(e.last_modified.tzinfo is not None for e in entries)
    assert delete(entries[0].location) == "deleted"
    assert len(list(list_objects(bucket, "fleet/DC00/"))) == 24


# -- locations and credentials (no server needed, but cheap) ---------------

def test_locations():
    assert parse_location("s3://bucket/a/b.tar.zst") == S3Location("bucket", "a/b.tar.zst")
    assert parse_location("s3://bucket") == S3Location("bucket", "")
    assert parse_location("s3://b1/x").sibling(".minisig").url == "s3://b1/x.minisig"
    for url in ("az://container/x", "gs://bucket/x"):
        with pytest.raises(LocationError, match="not supported by this build"):
            parse_location(url)
    for bad in ("/tmp/x", "s3:///key", "s3://a/x"):
        with pytest.raises(LocationError):
            parse_location(bad)


def test_no_credentials_is_a_clear_error_without_secrets(s3, bucket, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    forget_clients()
    try:
        with pytest.raises(StorageError, match="no usable credentials") as caught:
            put_bytes(S3Location(bucket, "nope"), b"x")
    finally:
        forget_clients()
    assert f"s3://{bucket}/nope" in str(caught.value)
    assert exit_code_for(caught.value) == EXIT_IO


def test_wrong_credentials_name_the_key_not_the_secret(s3, bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-" + "x" * 20)
    forget_clients()
    try:
        with pytest.raises(StorageError) as caught:
            put_bytes(S3Location(bucket, "denied"), b"x")
    finally:
        forget_clients()
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "not-the-secret" not in str(caught.value) and s3.secret_key not in repr(caught.value)
