"""Shared fixtures: an emulator root per test, small emulated DCs, the provider."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ESE_SAMPLES = SHARED_DATA / "ese-samples"

@pytest.fixture
def emu_root(tmp_path, monkeypatch) -> Path:
    """A fresh emulator root, exported as NTDSB_EMU_ROOT for the emulator library."""
    root = tmp_path / "emu"
    root.mkdir()
    monkeypatch.setenv("NTDSB_EMU_ROOT", str(root))
    return root

@pytest.fixture
def provider():
    from ntdsbackup import open_provider

    return open_provider()

@pytest.fixture
def make_dc(emu_root):
    """make_dc(name="DC01", size=4 MiB, **create kwargs) -> EmulatedDC (online)."""
    from ntdsbackup.emulator import EmulatedDC

    def make(name: str = "DC01", size: int = 4 << 20, **kwargs) -> EmulatedDC:
        kwargs.setdefault("log_size", 256 << 10)
        kwargs.setdefault("log_count", 4)
        dc = EmulatedDC(name, emu_root)
        dc.create(size, **kwargs)
        return dc

    return make

@pytest.fixture
def dc(make_dc):
    return make_dc()

def ese_sample(name: str) -> Path:
    path = ESE_SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared sample {name} is not present next to the project")
    return path

# Variables the object-storage fixture replaces: the machine's own AWS
# settings must not reach the tests' Ceph, nor its credentials leak there.
_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                  "AWS_REGION")


@pytest.fixture(scope="session")
def s3():
    """A real Ceph cluster (tests/s3server.py) for the session: one monitor,
    one OSD, radosgw on a loopback port and an S3 user, exported through
    the standard variables (the package reads nothing else).  Stopped by
    PID and removed at the end.  Missing Ceph packages fail the test."""
    from ntdsbackup.storage.client import forget_clients
    from s3server import CephS3, missing_programs

    missing = missing_programs()
    if missing:
        pytest.fail(f"the object-storage tests need a Ceph cluster, and {', '.join(missing)} "
                    "is not installed: run `make deps-test` (Debian packages ceph-mon, "
                    "ceph-osd, radosgw, ceph-common)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="ntdsb-ceph-"))
    server = CephS3(root)
    saved = {k: os.environ.get(k) for k in (*_AWS_VARIABLES, *server.environment())}
    try:
        server.start()
        for name in _AWS_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(server.environment())
        forget_clients()
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forget_clients()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def bucket(s3) -> str:
    """A plain bucket of the s3 server, one per test module."""
    return s3.create_bucket()


@pytest.fixture(scope="module")
def lock_bucket(s3) -> str:
    """A bucket with object lock (and so versioning), one per test module."""
    return s3.create_bucket(object_lock=True)


@pytest.fixture
def rgw_restarted(s3):
    """For tests that take radosgw away: it is running again afterwards."""
    yield s3
    s3.start_rgw()
