"""A real Ceph cluster for the object-storage tests: one monitor, one
BlueStore OSD on a sparse 10 GiB file and a radosgw on a loopback port, all
under one temporary directory (its own ceph.conf, keyrings, data, sockets
and logs), run as the current user without systemd and stopped by PID.

Why each setting: pool size 1 and 8 placement groups because there is one
OSD; the autoscaler is off because there is no manager to run it; cephx is
on because radosgw waits for ever for a cluster with authentication off;
BlueStore on a sparse file rather than memstore, which never frees what is
deleted; a short garbage-collection wait so that deleted objects give their
space back during a session; no metadata cache, whose notifications would
wait for a killed gateway's watch to expire.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

# The daemons and tools the cluster needs (Debian: ceph-mon, ceph-osd,
# radosgw, ceph-common); `make deps-test` installs them.
CEPH_PROGRAMS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph",
                 "ceph-authtool", "monmaptool")
START_TIMEOUT = 120.0
RGW_NAME = "client.rgw.test"
OSD_BLOCK_BYTES = 10 << 30          # sparse: only what is written takes space


class CephError(RuntimeError):
    """The cluster could not be started; the message ends with the logs' tails."""


def missing_programs() -> list[str]:
    return [p for p in CEPH_PROGRAMS if shutil.which(p) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _conf(root: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_port}]
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {root}/$name.keyring
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
log to stderr = false
err to stderr = false
mon data = {root}/mon.$id
osd data = {root}/osd.$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = {OSD_BLOCK_BYTES}
bluestore cache autotune = false
bluestore cache size = 67108864
osd memory target = 939524096
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd op num shards = 1
osd op num threads per shard = 2

[{RGW_NAME}]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw thread pool size = 32
rgw gc obj min wait = 5
rgw gc processor period = 10
rgw enable usage log = false
rgw lc debug interval = -1
# One gateway: nothing to keep coherent.  With the cache on, every metadata
# change (a new bucket) notifies the watchers of the control objects, and a
# gateway killed by a test stays a watcher until its watch times out (30 s).
rgw cache enabled = false
"""


class CephS3:
    """The cluster, its radosgw and one S3 user.  start() returns when an S3
    request is answered; stop() ends every daemon by PID."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "ceph.conf"
        self.rgw_port = 0
        self.endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.startup_seconds = 0.0
        self._client = None

    # -- commands -------------------------------------------------------
    def _run(self, *argv: str, timeout: float = 60.0) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  cwd=self.root)
        except subprocess.TimeoutExpired as exc:
            raise CephError(f"{' '.join(argv[:3])} timed out after {timeout:.0f} s"
                            f"{self.log_tails()}") from exc
        if done.returncode != 0:
            raise CephError(f"{' '.join(argv[:4])} failed ({done.returncode}): "
                            f"{done.stderr.strip()[-2000:]}{self.log_tails()}")
        return done.stdout

    def ceph(self, *args: str, timeout: float = 30.0) -> str:
        return self._run("ceph", "-c", str(self.conf), "--connect-timeout", "20", *args,
                         timeout=timeout)

    def _daemon(self, name: str, *argv: str) -> None:
        """A daemon in the foreground (-f), so that its PID is ours to end."""
        log = open(self.root / "log" / f"{name}.stdout", "ab")
        try:
            self.procs[name] = subprocess.Popen([*argv, "-f", "-c", str(self.conf)],
                                                stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=self.root,
                                                start_new_session=True)
        finally:
            log.close()

    # -- start ----------------------------------------------------------
    def start(self) -> None:
        t0 = time.monotonic()
        try:
            self._create()
            self.start_rgw()
            self._create_user()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def _create(self) -> None:
        for sub in ("run", "log", "mon.a", "osd.0"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        mon_port = free_port()
        self.rgw_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.rgw_port}"
        self.conf.write_text(_conf(self.root, fsid, mon_port, self.rgw_port))
        mon_keyring = str(self.root / "mon.a.keyring")
        admin_keyring = str(self.root / "client.admin.keyring")
        self._run("ceph-authtool", "--create-keyring", mon_keyring, "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")
        self._run("ceph-authtool", "--create-keyring", admin_keyring, "--gen-key",
                  "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                  "--cap", "mgr", "allow *")
        self._run("ceph-authtool", mon_keyring, "--import-keyring", admin_keyring)
        monmap = str(self.root / "monmap")
        self._run("monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{mon_port}]",
                  "--fsid", fsid, monmap)
        self._run("ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", monmap,
                  "--keyring", mon_keyring)
        self._daemon("mon.a", "ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph("osd", "new", osd_uuid, timeout=60).strip()
        self.ceph("auth", "get-or-create", f"osd.{osd_id}", "mon", "allow profile osd",
                  "osd", "allow *", "mgr", "allow profile osd",
                  "-o", str(self.root / f"osd.{osd_id}.keyring"))
        self._run("ceph-osd", "-c", str(self.conf), "-i", osd_id, "--mkfs",
                  "--osd-uuid", osd_uuid, timeout=120)
        self._daemon(f"osd.{osd_id}", "ceph-osd", "-i", osd_id)
        self.ceph("auth", "get-or-create", RGW_NAME, "mon", "allow rw", "osd", "allow rwx",
                  "-o", str(self.root / f"{RGW_NAME}.keyring"))
        self._wait(self._osd_up, "the OSD to come up")

    def _osd_up(self) -> bool:
        stat = json.loads(self.ceph("osd", "stat", "--format", "json"))
        return int(stat.get("num_up_osds", 0)) >= 1 and int(stat.get("num_in_osds", 0)) >= 1

    def _create_user(self) -> None:
        out = self._run("radosgw-admin", "-c", str(self.conf), "user", "create",
                        "--uid", "ntdsb-test", "--display-name", "ntdsbackup tests")
        keys = json.loads(out)["keys"][0]
        self.access_key, self.secret_key = keys["access_key"], keys["secret_key"]

    def _wait(self, ready, what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise CephError(f"{name} exited ({proc.returncode}) while waiting for "
                                    f"{what}{self.log_tails()}")
            with contextlib.suppress(CephError, OSError, ValueError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise CephError(f"timed out after {timeout:.0f} s waiting for {what}"
                                f"{self.log_tails()}")
            time.sleep(0.25)

    def _rgw_answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.rgw_port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1")

    # -- radosgw alone, for the tests that take the server away ---------
    def start_rgw(self, timeout: float = START_TIMEOUT) -> None:
        """Start radosgw and wait until it answers HTTP (at most timeout)."""
        if "rgw" in self.procs and self.procs["rgw"].poll() is None:
            return
        self.procs.pop("rgw", None)
        self._daemon("rgw", "radosgw", "-n", RGW_NAME)
        self._wait(self._rgw_answers, "radosgw to answer on " + self.endpoint, timeout)

    def missing(self, bucket: str, key: str) -> bool:
        """True when HEAD says there is no object under the key."""
        try:
            self.client().head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            return code in ("404", "NoSuchKey")
        return False

    def stop_rgw(self, *, kill: bool = True) -> None:
        """End radosgw (SIGKILL by default: a crash, not a clean shutdown)."""
        proc = self.procs.pop("rgw", None)
        if proc is not None:
            _end(proc, signal.SIGKILL if kill else signal.SIGTERM)

    # -- stop -----------------------------------------------------------
    def stop(self) -> None:
        """rgw first, then the OSD, then the monitor: each by its PID."""
        for name in sorted(self.procs, key=lambda n: ("rgw", "osd", "mon").index(n[:3])):
            _end(self.procs[name], signal.SIGTERM)
        self.procs.clear()

    # -- for the tests ------------------------------------------------
    def environment(self) -> dict[str, str]:
        """What points the package at this server through the standard
        chains only, and shuts out the machine's own AWS settings."""
        return {"NTDSB_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        """A boto3 client of the tests' own (not the package's), path-style;
        made once (a client takes a good part of a second to make)."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    _buckets = itertools.count(1)

    def create_bucket(self, *, object_lock: bool = False) -> str:
        """A new bucket; with object_lock, lock-enabled (and so versioned)."""
        name = f"ntdsb-{'lock' if object_lock else 'plain'}-{next(self._buckets)}"
        extra = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        self.client().create_bucket(Bucket=name, **extra)
        return name

    def rss_bytes(self) -> int:
        """The daemons' resident memory together (from /proc)."""
        total = 0
        for proc in self.procs.values():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for log in sorted((self.root / "log").glob("*")):
            with contextlib.suppress(OSError):
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                if tail:
                    out.append(f"--- {log.name}\n" + "\n".join(tail))
        return ("\n" + "\n".join(out)) if out else ""


def _end(proc: subprocess.Popen[bytes], sig: int, grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(grace)
