"""The archive commands over object storage, end to end through the command
line, against the real radosgw of the `s3` fixture (credentials and
endpoint reach the subprocesses through the environment only)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from dctools import cli, enable_trace, last_json, ok, popen, set_faults, trace_calls
from ntdsbackup.cli.common import EXIT_IO, EXIT_USAGE
from ntdsbackup.storage import abort_stale_uploads, pending_uploads


def _key(name: str) -> str:
    return f"t/{name}-{os.urandom(3).hex()}.tar.zst"


def test_plain_round_trip(s3, bucket, dc, tmp_path):
    url = f"s3://{bucket}/{_key('plain')}"
    summary = last_json(ok(cli("backup", "--server", "DC01", "-o", url, "--json",
                               text=True)))
    assert summary["archive"] == url and summary["lock"] is None
    verified = last_json(ok(cli("verify", url, "--json", text=True)))
    assert verified["ok"] and verified["lock"] is None and verified["server"] == "DC01"
    record = json.loads(s3.client().get_object(
        Bucket=bucket, Key=url.split("/", 3)[3] + ".verified.json")["Body"].read())
    assert record["ok"] and record["size"] == summary["bytes_written"]
    listed = last_json(ok(cli("ls", url, "--json", text=True)))
    assert listed["verified"] is False            # from the seek index: ranged reads only
    assert [f["name"] for f in listed["trailer"]["files"]] == \
        [f["name"] for f in summary["files"]]
    out = tmp_path / "x"
    ok(cli("extract", url, out))
    assert (out / "database" / "ntds.dit").stat().st_size == summary["files"][0]["size"]
    ok(cli("dc", "stop", "DC01"))
    restored = last_json(ok(cli("restore", url, "--server", "DC01", "--json", text=True,
                                env={**os.environ, "TMPDIR": str(tmp_path)})))
    assert restored["archive"] == url
    ok(cli("dc", "start", "DC01"))


def test_the_library_reads_and_restores_an_object(s3, bucket, dc, tmp_path, monkeypatch):
    """ntdsbackup.verify / describe / restore take an s3:// URL as the
    commands do (and backup writes one)."""
    import ntdsbackup

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    url = f"s3://{bucket}/{_key('library')}"
    summary = ntdsbackup.backup("DC01", url)
    report = ntdsbackup.verify(url, deep=True)
    assert report.trailer["files"] == summary.files and report.ese.ok
    docs = ntdsbackup.describe(url)
    assert docs["verified"] is False and docs["trailer"]["files"] == summary.files
    ok(cli("dc", "stop", "DC01"))
    result = ntdsbackup.restore(url, "DC01")
    assert {c.name for c in result.plan.checks if c.ok} >= {"database pages",
                                                             "archive integrity"}
    ok(cli("dc", "start", "DC01"))


def test_encrypted_signed_round_trip(s3, bucket, dc, tmp_path):
    key = last_json(ok(cli("key", "generate", "-o", tmp_path / "id.txt", "--json",
                           text=True)))
    sign = last_json(ok(cli("key", "generate", "--signing", "-o", tmp_path / "s.key",
                            "--json", text=True)))
    url = f"s3://{bucket}/{_key('sealed')}.age"
    summary = last_json(ok(cli("backup", "--server", "DC01", "-o", url, "-r", key["public"],
                               "--sign-key", tmp_path / "s.key", "--json", text=True)))
    assert summary["encrypted"] and summary["signature"] == url + ".minisig"
    reading = ("-i", tmp_path / "id.txt", "--trusted-key", sign["public_file"],
               "--spool-dir", tmp_path)
    verified = last_json(ok(cli("verify", url, *reading, "--json", text=True)))
    assert verified["encrypted"] and verified["signed"]["server"] == "DC01"
    ok(cli("ls", url, *reading))
    ok(cli("extract", url, tmp_path / "x", *reading))
    assert (tmp_path / "x" / "database" / "ntds.dit").stat().st_size > 0
    ok(cli("dc", "stop", "DC01"))
    ok(cli("restore", url, "--server", "DC01", *reading))
    ok(cli("dc", "start", "DC01"))
    # The signature is checked over the object: a wrong key is refused.
    other = last_json(ok(cli("key", "generate", "--signing", "-o", tmp_path / "o.key",
                             "--json", text=True)))
    r = cli("verify", url, "-i", tmp_path / "id.txt", "--trusted-key", other["public_file"])
    assert r.returncode == 5, r.stderr


def test_a_taken_key_is_refused_before_the_dc_is_asked(s3, bucket, dc):
    url = f"s3://{bucket}/{_key('taken')}"
    ok(cli("backup", "--server", "DC01", "-o", url))
    enable_trace(dc)
    r = cli("backup", "--server", "DC01", "-o", url)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "DsBackupPrepareW" not in trace_calls(dc)
    ok(cli("backup", "--server", "DC01", "-o", url, "--overwrite"))


def test_retain_locks_the_archive(s3, lock_bucket, dc, tmp_path):
    prefix = f"r-{os.urandom(3).hex()}"
    url = f"s3://{lock_bucket}/{prefix}/old.tar.zst"
    sign = last_json(ok(cli("key", "generate", "--signing", "-o", tmp_path / "s.key",
                            "--json", text=True)))
    summary = last_json(ok(cli("backup", "--server", "DC01", "-o", url, "--retain", "1d",
                               "--sign-key", tmp_path / "s.key", "--json", text=True)))
    assert summary["lock"]["mode"] == "COMPLIANCE"
    client = s3.client()
    for key in (f"{prefix}/old.tar.zst", f"{prefix}/old.tar.zst.minisig"):
        head = client.head_object(Bucket=lock_bucket, Key=key)
        assert head.get("ObjectLockMode") == "COMPLIANCE" or client.get_object_retention(
            Bucket=lock_bucket, Key=key)["Retention"]["Mode"] == "COMPLIANCE"
    version = client.head_object(Bucket=lock_bucket, Key=f"{prefix}/old.tar.zst")["VersionId"]
    with pytest.raises(Exception) as refused:
        client.delete_object(Bucket=lock_bucket, Key=f"{prefix}/old.tar.zst", VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    verified = last_json(ok(cli("verify", url, "--trusted-key", sign["public_file"],
                                "--json", text=True)))
    assert verified["lock"]["mode"] == "COMPLIANCE"
    assert "COMPLIANCE until" in ok(cli("ls", url, text=True)).stdout
    # A newer, unlocked backup: the old one is then no DC's newest, and
    # still prune cannot remove it.
    ok(cli("backup", "--server", "DC01", "-o", f"s3://{lock_bucket}/{prefix}/new.tar.zst"))
    pruned = last_json(ok(cli("prune", f"s3://{lock_bucket}/{prefix}", "--keep-last", "1",
                              "--json", text=True)))
    assert {d["name"]: d["reason"] for d in pruned["kept"]} == \
        {"new.tar.zst": "last #1", "old.tar.zst": "locked"}
    assert pruned["removed"] == []
    assert not s3.missing(lock_bucket, f"{prefix}/old.tar.zst")


def test_retain_on_a_plain_bucket_is_refused_before_the_dc_is_touched(s3, bucket, dc):
    enable_trace(dc)
    url = f"s3://{bucket}/{_key('nolock')}"
    r = cli("backup", "--server", "DC01", "-o", url, "--retain", "30d", text=True)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "object lock" in r.stderr
    assert "DsBackupPrepareW" not in trace_calls(dc)
    assert s3.missing(bucket, url.split("/", 3)[3])


def _slow_dc(make_dc):
    """A DC whose archive takes several parts and a few seconds to stream."""
    dc = make_dc("SLOW1", size=224 << 20)          # an archive of three 16 MiB parts
    set_faults(dc, bandwidth=48 << 20)
    return dc


def _wait_for_upload(bucket: str, key: str, proc, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(u.location.key == key for u in pending_uploads(bucket, "t/")):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the upload never started")


def test_sigkill_mid_upload_leaves_no_object(s3, bucket, make_dc):
    _slow_dc(make_dc)
    key = _key("killed")
    proc = popen("backup", "--server", "SLOW1", "-o", f"s3://{bucket}/{key}",
                 stdout=-1, stderr=-1)
    _wait_for_upload(bucket, key, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert s3.missing(bucket, key)
    aborted = abort_stale_uploads(bucket, "t/")
    assert key in [u.location.key for u in aborted]
    assert not [u for u in pending_uploads(bucket, "t/") if u.location.key == key]


def test_server_gone_during_a_backup_exits_7_with_no_object(s3, bucket, make_dc, rgw_restarted):
    _slow_dc(make_dc)
    key = _key("gone")
    proc = popen("backup", "--server", "SLOW1", "-o", f"s3://{bucket}/{key}",
                 stdout=-1, stderr=-1, text=True)
    _wait_for_upload(bucket, key, proc)
    s3.stop_rgw()
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == EXIT_IO, err
    s3.start_rgw()
    assert s3.missing(bucket, key)
    abort_stale_uploads(bucket, "t/")          # what the abort could not reach


def test_list_and_prune_a_bucket_of_500_archives(s3, bucket, emu_root, tmp_path):
    from ntdsbackup.emulator import EmulatedDC
    from ntdsbackup.phases.backup import backup

    prefix = f"fleet-{os.urandom(3).hex()}"
    client = s3.client()
    for i in range(20):
        dc = EmulatedDC(f"F{i:02d}", emu_root)
        dc.create(1 << 20, log_size=128 << 10, log_count=2)
        local = tmp_path / f"F{i:02d}.tar.zst"
        backup(f"F{i:02d}", local, truncate=False)
        first = f"{prefix}/F{i:02d}-00.tar.zst"
        client.upload_file(str(local), bucket, first)
        for j in range(1, 25):
            client.copy_object(Bucket=bucket, Key=f"{prefix}/F{i:02d}-{j:02d}.tar.zst",
                               CopySource={"Bucket": bucket, "Key": first})
    t0 = time.monotonic()
    fleet = last_json(ok(cli("list", f"s3://{bucket}/{prefix}", "--json", text=True)))
    seconds = time.monotonic() - t0
    assert len(fleet["archives"]) == 500 and len(fleet["servers"]) == 20
    assert all(not s["flagged"] for s in fleet["servers"])
    print(f"list of 500 archives: {seconds:.1f} s (command), {fleet['seconds']:.1f} s (scan)")
    assert seconds < 60
    pruned = last_json(ok(cli("prune", f"s3://{bucket}/{prefix}", "--keep-last", "2",
                              "--json", text=True)))
    assert len(pruned["kept"]) == 40 and len(pruned["removed"]) == 460
    left = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["KeyCount"]
    assert left == 40


def test_ls_and_list_of_encrypted_objects_read_by_ranges_with_no_spool(s3, bucket, make_dc,
                                                                       tmp_path):
    """ls -i of an age-encrypted object reads its header, its final chunk
    and the chunks holding the documents by ranged GETs: no spool file,
    a small part of the object read.  list -i reads each encrypted
    archive's own documents; a key that does not open one is its row's
    problem only."""
    from ntdsbackup.archive import describe
    from ntdsbackup.archive.age_ranges import AgeRanges
    from ntdsbackup.archive.envelope import DecryptionKeys
    from ntdsbackup.archive.remote import open_source
    from ntdsbackup.crypto import X25519Identity
    from ntdsbackup.errors import DecryptionError
    from ntdsbackup.phases.backup import backup

    mine, theirs = X25519Identity.generate(), X25519Identity.generate()
    (tmp_path / "mine.txt").write_text(mine.text + "\n")
    (tmp_path / "theirs.txt").write_text(theirs.text + "\n")
    make_dc("ENC1", size=48 << 20)
    prefix = f"enc-{os.urandom(3).hex()}"
    url = f"s3://{bucket}/{prefix}/ENC1.tar.zst.age"
    summary = backup("ENC1", url, truncate=False, recipients=[mine.recipient])
    size = summary.bytes_written
    assert size > 8 << 20
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "TMPDIR": str(spool)}
    listed = last_json(ok(cli("ls", url, "-i", tmp_path / "mine.txt", "--spool-dir", spool,
                              "--json", text=True, env=env)))
    assert listed["manifest"]["server"] == "ENC1" and listed["verified"] is False
    assert [f["name"] for f in listed["trailer"]["files"]] == \
        [f["name"] for f in summary.files]
    assert list(spool.iterdir()) == []
    r = cli("ls", url, "-i", tmp_path / "theirs.txt", "--spool-dir", spool, env=env)
    assert r.returncode == 5 and b"no identity matches" in r.stderr, r.stderr
    assert list(spool.iterdir()) == []
    # In the library: what was read, and how many GETs.
    keys = DecryptionKeys([mine])
    with open_source(url, keys=keys) as src, src.source.reader() as plain:
        assert isinstance(plain, AgeRanges)
        docs = describe(src.source, keys=keys)
        assert docs["manifest"]["server"] == "ENC1"
        s3reader = plain._pread_stored.__self__          # the S3Reader under it
        print(f"ls of {size} bytes: {plain.stored_read} read by ranges, "
              f"{s3reader.gets} GETs")
        assert plain.stored_read < size // 10
        assert s3reader.gets * (256 << 10) < size // 4
    with pytest.raises(DecryptionError, match="no identity matches"), \
            open_source(url, keys=DecryptionKeys([theirs])):
        pass
    assert list(spool.iterdir()) == []
    # list -i over the bucket: a second archive to another key.
    make_dc("ENC2")
    backup("ENC2", f"s3://{bucket}/{prefix}/ENC2.tar.zst.age", truncate=False,
           recipients=[theirs.recipient])
    fleet = last_json(ok(cli("list", f"s3://{bucket}/{prefix}", "-i",
                             tmp_path / "mine.txt", "--json", text=True, env=env)))
    rows = {r["name"]: r for r in fleet["archives"]}
    assert rows["ENC1.tar.zst.age"]["server"] == "ENC1"
    assert rows["ENC1.tar.zst.age"]["restorable"] and rows["ENC1.tar.zst.age"]["encrypted"]
    assert 179 < rows["ENC1.tar.zst.age"]["days_left"] <= 180
    assert rows["ENC2.tar.zst.age"]["problem"] == "could not be decrypted: no identity matches"
    assert rows["ENC2.tar.zst.age"]["server"] is None
    assert [s["server"] for s in fleet["servers"]] == ["ENC1"]
    fleet = last_json(ok(cli("list", f"s3://{bucket}/{prefix}", "-i", tmp_path / "mine.txt",
                             "-i", tmp_path / "theirs.txt", "--json", text=True, env=env)))
    assert {r["name"]: r["server"] for r in fleet["archives"]} == \
        {"ENC1.tar.zst.age": "ENC1", "ENC2.tar.zst.age": "ENC2"}
    without = last_json(ok(cli("list", f"s3://{bucket}/{prefix}", "--json", text=True)))
    assert all(r["server"] is None and r["problem"].startswith("encrypted, and no cached")
               for r in without["archives"])
    assert list(spool.iterdir()) == []
