"""The `ntdsbackup dc` commands end to end, including a DC built around a real
ESE database (--from), backed up, restored and started."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

from conftest import ese_sample


def cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "ntdsbackup", *args], capture_output=True,
                       text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_create_status_stop_start_activity(emu_root):
    out = cli("dc", "create", "DC07", "--size", "4MiB", "--log-size", "256KiB", "--json")
    created = json.loads(out.stdout)
    assert created["status"]["database"]["page_size"] == 8192
    st = json.loads(cli("dc", "status", "DC07", "--json").stdout)
    assert st["online"] and st["database"]["size"] == 4 << 20
    assert "online (directory service running)" in cli("dc", "status", "DC07").stdout
    cli("dc", "stop", "DC07")
    assert json.loads(cli("dc", "status", "DC07", "--json").stdout)["mode"] == "dsrm"
    r = cli("dc", "activity", "DC07", "--pages", "5%", check=False)
    assert r.returncode == 3 and "DSRM" in r.stderr
    cli("dc", "start", "DC07")
    before = json.loads(cli("dc", "status", "DC07", "--json").stdout)["database"]
    cli("dc", "activity", "DC07", "--pages", "5%", "--seed", "3")
    after = json.loads(cli("dc", "status", "DC07", "--json").stdout)["database"]
    assert after["log_current"] > before["log_current"]


def test_dc_create_refuses_to_overwrite_and_bad_names(emu_root):
    cli("dc", "create", "DC08", "--size", "2MiB", "--log-size", "256KiB")
    r = cli("dc", "create", "DC08", "--size", "2MiB", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    r = cli("dc", "create", "DC_08", "--size", "2MiB", check=False)
    assert r.returncode != 0 and "invalid DC name" in r.stderr
    assert not [p for p in emu_root.iterdir() if p.name.startswith(".")]


def test_dc_create_refuses_more_than_the_free_space(emu_root):
    r = cli("dc", "create", "HUGE", "--size", "16TiB", check=False)
    assert r.returncode == 7, r.stderr
    assert "not enough free space" in r.stderr and "16.0 TiB" in r.stderr
    assert "free" in r.stderr and "Traceback" not in r.stderr
    assert list(emu_root.iterdir()) == []


def test_dc_from_a_real_ese_database(emu_root, tmp_path):
    dit = tmp_path / "basic.edb"
    with gzip.open(ese_sample("basic.edb.gz")) as src:
        dit.write_bytes(src.read())
    cli("dc", "create", "IFM01", "--from", str(dit), "--log-size", "256KiB")
    st = json.loads(cli("dc", "status", "IFM01", "--json").stdout)
    assert st["database"]["page_size"] == 4096 and st["database"]["size"] == dit.stat().st_size
    archive = tmp_path / "ifm.tar.zst"
    cli("backup", "--server", "IFM01", "-o", str(archive), "--chunk-size", "64KiB")
    cli("verify", str(archive))
    cli("dc", "stop", "IFM01")
    cli("restore", str(archive), "--server", "IFM01")
    # Byte for byte before the DC starts (starting attaches it: its header changes).
    restored = (emu_root / "IFM01" / "NTDS" / "ntds.dit").read_bytes()
    assert restored == dit.read_bytes()
    out = cli("dc", "start", "IFM01", "--json").stdout
    started = json.loads(out)
    assert started["checked"] and started["report"]["pages_bad"] == 0


def test_accounts_and_faults_from_the_cli(emu_root, tmp_path):
    cli("dc", "create", "DC09", "--size", "2MiB", "--log-size", "256KiB")
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    cli("dc", "account", "DC09", "CORP\\op", "--privileges", "backup", "--password-file",
        str(password))
    cli("dc", "account", "DC09", "CORP\\nobody", "--default-privileges", "--privileges", "")
    file_ok = cli("backup", "--server", "DC09", "-o", str(tmp_path / "a.tar.zst"), "--user",
                  "CORP\\op", "--password-file", str(password), check=False)
    assert file_ok.returncode == 0, file_ok.stderr
    bad = subprocess.run([sys.executable, "-m", "ntdsbackup", "backup", "--server", "DC09",
                          "-o", str(tmp_path / "b.tar.zst"), "--user", "CORP\\op"],
                         env={**os.environ, "NTDSB_PASSWORD": "wrong"}, capture_output=True,
                         text=True)
    assert bad.returncode == 4 and "ERROR_ACCESS_DENIED" in bad.stderr
    anonymous = cli("backup", "--server", "DC09", "-o", str(tmp_path / "c.tar.zst"),
                    check=False)
    assert anonymous.returncode == 4
    cli("dc", "fault", "DC09", "--read-hr", "0xC7FF000D", "--read-after", "0", "--trace", "on")
    cfg = (emu_root / "DC09" / "dc.conf").read_text()
    assert "fault_read_hr=0xC7FF000D" in cfg and "trace=1" in cfg
    cli("dc", "fault", "DC09", "--clear")
    lines = (emu_root / "DC09" / "dc.conf").read_text().splitlines()
    assert not [line for line in lines if line.startswith("fault_")]
