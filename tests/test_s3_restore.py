"""restore from object storage reads the object in place: the documents by
ranged reads, each pass a download, nothing spooled to local disk; and a
download that fails at any point leaves the DC as it was.  Against the real
radosgw of the `s3` fixture."""

from __future__ import annotations

import os
import socket
import threading
import time

from dctools import cli, enable_trace, last_json, ok, popen, snapshot, trace_calls
from ntdsbackup.cli.common import EXIT_ARCHIVE, EXIT_IO


def _url(bucket: str, name: str, suffix: str = "") -> str:
    return f"s3://{bucket}/r/{name}-{os.urandom(3).hex()}.tar.zst{suffix}"


def _no_local_room(tmp_path):
    """--spool-dir and TMPDIR where nothing can be created: a restore that
    tried to spool the object would fail."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    env = {**os.environ, "TMPDIR": str(blocker / "tmp")}
    return ("--spool-dir", blocker / "spool"), env


def test_a_plain_object_is_restored_with_nothing_spooled(s3, bucket, make_dc, tmp_path):
    dc = make_dc("RS1", size=16 << 20)
    url = _url(bucket, "plain")
    ok(cli("backup", "--server", "RS1", "-o", url))
    database = (dc.ntds_dir / "ntds.dit").read_bytes()
    ok(cli("dc", "activity", "RS1"))   # the DC moves on past the backup
    ok(cli("dc", "stop", "RS1"))
    spool, env = _no_local_room(tmp_path)
    dry = last_json(ok(cli("restore", url, "--server", "RS1", "--dry-run", *spool, "--json",
                           text=True, env=env)))
    assert dry["dry_run"] and dry["archive"] == url
    restored = last_json(ok(cli("restore", url, "--server", "RS1", *spool, "--json",
                                text=True, env=env)))
    assert restored["archive"] == url and not restored["dry_run"]
    assert (dc.ntds_dir / "ntds.dit").read_bytes() == database
    ok(cli("dc", "start", "RS1"))


def test_an_encrypted_signed_object_is_restored_with_nothing_spooled(s3, bucket, make_dc,
                                                                    tmp_path):
    dc = make_dc("RS2", size=8 << 20)
    ok(cli("key", "generate", "-o", tmp_path / "id.txt"))
    public = ok(cli("key", "public", tmp_path / "id.txt", text=True)).stdout.split()[-1]
    ok(cli("key", "generate", "--signing", "-o", tmp_path / "s.key"))
    url = _url(bucket, "sealed", ".age")
    ok(cli("backup", "--server", "RS2", "-o", url, "-r", public, "--sign-key",
           tmp_path / "s.key"))
    database = (dc.ntds_dir / "ntds.dit").read_bytes()
    ok(cli("dc", "activity", "RS2"))
    ok(cli("dc", "stop", "RS2"))
    spool, env = _no_local_room(tmp_path)
    reading = ("-i", tmp_path / "id.txt", "--trusted-key", tmp_path / "s.key.pub", *spool)
    # The readers too: the signature over a download, then ranges or a pipe.
    verified = last_json(ok(cli("verify", url, *reading, "--json", text=True,
                                env=env)))
    assert verified["ok"] and verified["encrypted"] and verified["signed"]["server"] == "RS2"
    listed = last_json(ok(cli("ls", url, *reading, "--json", text=True,
                              env=env)))
    assert listed["manifest"]["server"] == "RS2"
    ok(cli("extract", url, tmp_path / "x", *reading, env=env))
    assert (tmp_path / "x" / "database" / "ntds.dit").read_bytes() == database
    ok(cli("restore", url, "--server", "RS2", "--dry-run", *reading, env=env))
    ok(cli("restore", url, "--server", "RS2", *reading, env=env))
    assert (dc.ntds_dir / "ntds.dit").read_bytes() == database
    ok(cli("dc", "start", "RS2"))


def test_a_bad_signature_is_refused_before_the_dc_is_asked(s3, bucket, make_dc, tmp_path):
    dc = make_dc("RS3")
    ok(cli("key", "generate", "--signing", "-o", tmp_path / "s.key"))
    ok(cli("key", "generate", "--signing", "-o", tmp_path / "other.key"))
    url = _url(bucket, "signed")
    ok(cli("backup", "--server", "RS3", "-o", url, "--sign-key", tmp_path / "s.key"))
    ok(cli("dc", "stop", "RS3"))
    enable_trace(dc)
    before = snapshot(dc.ntds_dir)
    r = cli("restore", url, "--server", "RS3", "--trusted-key", tmp_path / "other.key.pub",
            text=True)
    assert r.returncode == EXIT_ARCHIVE, r.stderr
    assert "not trusted" in r.stderr
    assert not [c for c in trace_calls(dc) if c.startswith("DsRestore")]
    assert snapshot(dc.ntds_dir) == before
    # A missing key for an encrypted object is named before the DC is asked.
    sealed = _url(bucket, "nokey", ".age")
    ok(cli("key", "generate", "-o", tmp_path / "id.txt"))
    public = ok(cli("key", "public", tmp_path / "id.txt", text=True)).stdout.split()[-1]
    ok(cli("dc", "start", "RS3"))
    ok(cli("backup", "--server", "RS3", "-o", sealed, "-r", public))
    ok(cli("dc", "stop", "RS3"))
    r = cli("restore", sealed, "--server", "RS3", text=True)
    assert r.returncode != 0 and "-i/--identity" in r.stderr
    assert not [c for c in trace_calls(dc) if c.startswith("DsRestore")]


class _SlowProxy:
    """A loopback TCP proxy to radosgw that passes at most `rate` bytes a
    second towards the client, so a restore's download lasts long enough
    for the test to take the server away in the middle of it."""

    def __init__(self, target_port: int, rate: int):
        self.target_port, self.rate = target_port, rate
        self.sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(16 << 10):
                dst.sendall(data)
                if slow:
                    self.sent += len(data)
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._closing = True
        self._listener.close()


def test_server_gone_in_the_middle_of_the_staging_download(s3, bucket, make_dc, rgw_restarted,
                                                           tmp_path):
    dc = make_dc("RS4", size=64 << 20)
    url = _url(bucket, "big")
    ok(cli("backup", "--server", "RS4", "-o", url))
    size = s3.client().head_object(Bucket=bucket, Key=url.split("/", 3)[3])["ContentLength"]
    ok(cli("dc", "stop", "RS4"))
    enable_trace(dc)
    before = snapshot(dc.ntds_dir)
    proxy = _SlowProxy(s3.rgw_port, rate=max(size // 4, 1 << 20))   # about 4 s in all
    try:
        env = {**os.environ, "NTDSB_S3_ENDPOINT": f"http://127.0.0.1:{proxy.port}"}
        proc = popen("restore", url, "--server", "RS4", "--json", stdout=-1, stderr=-1,
                     text=True, env=env)
        # Wait until the staging pass is under way, half the object still to come.
        end = time.monotonic() + 60
        while proxy.sent < size // 3 and time.monotonic() < end:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        assert "DsRestorePrepareW" in trace_calls(dc)
        s3.stop_rgw()
        out, err = proc.communicate(timeout=180)
    finally:
        proxy.close()
    assert proc.returncode == EXIT_IO, (out, err)
    assert url in err
    assert snapshot(dc.ntds_dir) == before
    calls = trace_calls(dc)
    assert "DsRestoreRegisterW" not in calls and calls.count("DsRestoreEnd") == 1
    # The DC still boots on its own files.
    ok(cli("dc", "start", "RS4"))
