"""Transient failures under the commands: backup, verify and restore of
s3:// archives run through a proxy that resets connections (tests/flakyproxy.py),
in subprocesses pointed at it by $NTDSB_S3_ENDPOINT, as an operator would
run them.  Resets within the retry budget (storage/retry.py: 6 attempts,
about 8 s of waiting), at a connection's start or in the middle of an
answer's body, change nothing in the result; resets that outlast it fail
the command with exit 7
naming the object, in bounded time, leaving no object, no pending upload
and the DC as it was.  There is no setting for the budget: "outlast" means
every connection reset, from the start or for longer than the budget."""

from __future__ import annotations

import os
import time

import pytest

from dctools import cli, enable_trace, last_json, ok, set_faults, snapshot, trace_calls
from flakyproxy import FlakyProxy
from ntdsbackup.cli.common import EXIT_IO
from ntdsbackup.storage import pending_uploads
from ntdsbackup.storage.upload import DEFAULT_PART_SIZE

# What a command of these tests may take at most when the server stays
# unreachable: the attempts of one call and of the abort, with margin.
BOUND = 60.0


def _key(name: str) -> str:
    return f"t/{name}-{os.urandom(3).hex()}.tar.zst"


def _via(proxy: FlakyProxy) -> dict:
    return {**os.environ, "NTDSB_S3_ENDPOINT": proxy.url}


@pytest.fixture
def proxies(s3):
    """proxies(drop=..., cut=..., cut_after=...) -> a FlakyProxy to the
    test server, closed at the end."""
    made = []

    def make(drop: int = 0, **options) -> FlakyProxy:
        proxy = FlakyProxy(s3.rgw_port, drop, **options)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def _timeless(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("seconds", "mb_per_s")}


def _dc_files(dc, summary: dict) -> dict[str, bytes]:
    return {f["name"].split("/")[1]: (dc.ntds_dir / f["name"].split("/")[1]).read_bytes()
            for f in summary["files"]}


# -- within the budget ------------------------------------------------------

def test_a_backup_whose_first_connections_are_reset_completes(s3, bucket, make_dc, proxies,
                                                              tmp_path):
    dc = make_dc("DC01", size=48 << 20)
    proxy = proxies(drop=3)                      # below the 6 attempts of one call
    url = f"s3://{bucket}/{_key('reset-first')}"
    summary = last_json(ok(cli("backup", "--server", "DC01", "-o", url, "--json",
                               text=True, env=_via(proxy))))
    assert proxy.dropped == 3
    # The object is whole: the bytes the backup wrote, every chunk and file
    # hash right, the trailer the one the backup reported, and the files
    # read back from it the DC's own.
    stored = s3.client().get_object(Bucket=bucket, Key=url.split("/", 3)[3])["Body"].read()
    assert len(stored) == summary["bytes_written"]
    verified = last_json(ok(cli("verify", url, "--json", text=True)))
    assert verified["ok"] and verified["archive_bytes"] == len(stored)
    listed = last_json(ok(cli("ls", url, "--json", text=True)))
    assert listed["trailer"]["files"] == summary["files"]
    ok(cli("extract", url, tmp_path / "x"))
    for f in summary["files"]:
        got = (tmp_path / "x" / f["name"]).read_bytes()
        assert len(got) == f["size"]
        if f["name"] == "database/ntds.dit":     # the DC is idle: its file unchanged
            assert got == (dc.ntds_dir / "ntds.dit").read_bytes()


def test_a_backup_whose_parts_are_cut_midway_completes(s3, bucket, make_dc, proxies):
    make_dc("DC01", size=224 << 20)
    # Three connections cut once 2 MiB have crossed them: inside the first
    # parts' bodies (8 MiB each).
    proxy = proxies(cut=3, cut_after=2 << 20)
    url = f"s3://{bucket}/{_key('cut-parts')}"
    summary = last_json(ok(cli("backup", "--server", "DC01", "-o", url, "--json",
                               text=True, env=_via(proxy))))
    assert summary["bytes_written"] > 2 * DEFAULT_PART_SIZE      # several parts
    assert proxy.cuts == 3 and proxy.dropped == 3
    verified = last_json(ok(cli("verify", url, "--json", text=True)))
    assert verified["ok"] and verified["archive_bytes"] == summary["bytes_written"]


@pytest.fixture
def midway(s3, bucket, make_dc):
    """A DC backed up to an object of several 8 MiB blocks:
    (dc, url, the backed-up files' contents, verify's event without a proxy)."""
    dc = make_dc("DC01", size=224 << 20)
    url = f"s3://{bucket}/{_key('reset-midway')}"
    summary = last_json(ok(cli("backup", "--server", "DC01", "-o", url, "--json",
                               text=True)))
    assert summary["bytes_written"] > 2 * DEFAULT_PART_SIZE
    plain = last_json(ok(cli("verify", url, "--json", text=True)))
    return dc, url, _dc_files(dc, summary), plain


def test_verify_through_resets_midway(midway, proxies):
    _dc, url, _contents, plain = midway
    # Three connections cut after 2 MiB each: inside the first blocks' answers.
    proxy = proxies(cut=3, cut_after=2 << 20)
    flaky = last_json(ok(cli("verify", url, "--json", text=True, env=_via(proxy))))
    assert proxy.cuts == 3 and proxy.dropped == 3
    assert _timeless(flaky) == _timeless(plain)


def test_restore_through_resets_midway(midway, proxies, tmp_path):
    dc, url, contents, _plain = midway
    dc.activity(0.05, seed=9)
    dc.stop()
    assert (dc.ntds_dir / "ntds.dit").read_bytes() != contents["ntds.dit"]
    proxy = proxies(cut=3, cut_after=2 << 20)
    spool = tmp_path / "spool"
    spool.mkdir()
    restored = last_json(ok(cli("restore", url, "--server", "DC01", "--spool-dir", spool,
                                "--json", text=True, env=_via(proxy))))
    assert proxy.cuts == 3
    assert restored["archive"] == url
    # As a restore without the proxy would leave it: the archive's files, only.
    for name, data in contents.items():
        assert (dc.ntds_dir / name).read_bytes() == data, name
    assert sorted(os.listdir(dc.ntds_dir)) == sorted(contents)
    assert not list(spool.iterdir())


# -- beyond the budget ------------------------------------------------------

def test_a_backup_to_a_server_that_resets_everything_fails_cleanly(s3, bucket, dc, proxies):
    enable_trace(dc)
    proxy = proxies(drop=1 << 30)                # every connection, for good
    key = _key("reset-all")
    url = f"s3://{bucket}/{key}"
    t0 = time.monotonic()
    r = cli("backup", "--server", "DC01", "-o", url, text=True, env=_via(proxy))
    seconds = time.monotonic() - t0
    assert r.returncode == EXIT_IO, (r.stdout, r.stderr)
    assert url in r.stderr and "after 6 attempts" in r.stderr
    assert seconds < BOUND
    assert proxy.dropped >= 6
    assert "DsBackupPrepareW" not in trace_calls(dc)     # refused before the DC is asked
    assert s3.missing(bucket, key)
    assert not [u for u in pending_uploads(bucket, "t/") if u.location.key == key]


def test_an_outage_midway_through_a_backup_aborts_its_upload(s3, bucket, make_dc, proxies):
    dc = make_dc("SLOW1", size=224 << 20)
    set_faults(dc, bandwidth=48 << 20)           # a few seconds of streaming, several parts
    proxy = proxies()
    # Once 4 MiB have passed (inside the first part), everything is reset
    # for 12 s: longer than a part's 6 attempts (7.75-9.7 s), shorter than
    # those of the part and of the abort after it (15.5 s at the least), so
    # the part fails and the abort reaches the server.
    proxy.outage(after_bytes=4 << 20, seconds=12.0)
    key = _key("outage")
    url = f"s3://{bucket}/{key}"
    t0 = time.monotonic()
    r = cli("backup", "--server", "SLOW1", "-o", url, text=True, env=_via(proxy))
    seconds = time.monotonic() - t0
    assert r.returncode == EXIT_IO, (r.stdout, r.stderr)
    assert url in r.stderr and "after 6 attempts" in r.stderr
    assert seconds < BOUND
    assert proxy.cuts >= 1                       # a part cut midway, not refused at once
    assert s3.missing(bucket, key)
    assert not [u for u in pending_uploads(bucket, "t/") if u.location.key == key]


def test_an_outage_midway_through_a_restore_changes_nothing(s3, bucket, make_dc, proxies,
                                                            tmp_path):
    dc = make_dc("DC01", size=48 << 20)
    url = f"s3://{bucket}/{_key('outage-restore')}"
    ok(cli("backup", "--server", "DC01", "-o", url))
    dc.activity(0.05, seed=9)
    dc.stop()
    before = snapshot(dc.path)
    proxy = proxies()
    # Then nothing gets through, for good.
    proxy.outage(after_bytes=3 << 20)
    spool = tmp_path / "spool"
    spool.mkdir()
    t0 = time.monotonic()
    r = cli("restore", url, "--server", "DC01", "--spool-dir", spool, text=True,
            env=_via(proxy))
    seconds = time.monotonic() - t0
    assert r.returncode == EXIT_IO, (r.stdout, r.stderr)
    assert url in r.stderr
    assert seconds < BOUND
    assert proxy.cuts >= 1
    assert snapshot(dc.path) == before
    assert not list(spool.iterdir())
