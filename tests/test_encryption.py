"""Encrypted archives end to end: age files the DC itself cannot read, read
by stock age and pyrage, read back by every command with an identity or the
passphrase, and refused whole (exit 5, nothing written or changed) when
anything about them is wrong."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import tarfile

import pytest

from dctools import cli, snapshot
from ntdsbackup import errors
from ntdsbackup.archive import verify
from ntdsbackup.archive.envelope import DecryptionKeys
from ntdsbackup.crypto import X25519Identity, read_identities
from ntdsbackup.phases.backup import backup
from ntdsbackup.phases.restore import restore

CHUNK = 128 * 1024
SEALED = 65536 + 16
PASS = "correct horse battery staple 7f3a"


def keygen(path) -> str:
    done = cli("key", "generate", "-o", path)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().split()[-1]          # the recipient, printed last


@pytest.fixture
def age_dc(make_dc, tmp_path):
    """A DC and an archive of it encrypted to a new identity."""
    dc = make_dc("DC01", size=6 << 20)
    key = tmp_path / "key.txt"
    recipient = keygen(key)
    archive = tmp_path / "DC01.tar.zst.age"
    done = cli("backup", "--server", "DC01", "-o", archive, "-r", recipient,
               "--chunk-size", "128KiB", "--no-truncate")
    assert done.returncode == 0, done.stderr
    files = {p.name: p.read_bytes() for p in dc.ntds_dir.iterdir() if p.is_file()}
    return dc, archive, key, files


def _header_end(data: bytes) -> int:
    """Offset of the first payload byte (after the MAC line and the nonce)."""
    mac = data.index(b"\n--- ") + 1
    return data.index(b"\n", mac) + 1 + 16


def test_key_generate_writes_a_private_identity_and_refuses_to_replace_it(tmp_path):
    key = tmp_path / "key.txt"
    recipient = keygen(key)
    assert recipient.startswith("age1") and len(recipient) == 62
    assert os.stat(key).st_mode & 0o777 == 0o600
    (identity,) = read_identities(key.read_bytes())
    assert identity.recipient.text == recipient
    again = cli("key", "public", key)
    assert again.returncode == 0 and again.stdout.decode().strip() == recipient
    before = key.read_bytes()
    refused = cli("key", "generate", "-o", key)
    assert refused.returncode == 2 and key.read_bytes() == before


def test_an_encrypted_backup_is_an_age_file_that_stock_tools_read(age_dc, tmp_path):
    dc, archive, key, files = age_dc
    data = archive.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n-> X25519 ")
    assert b"ntds.dit" not in data and b"ntdsbackup" not in data[:_header_end(data)]
    plain = tmp_path / "plain.tar.zst"
    with open(plain, "wb") as out:
        subprocess.run(["age", "-d", "-i", key, archive], stdout=out, check=True)
    out_dir = tmp_path / "x"
    out_dir.mkdir()
    tar = subprocess.run(f"zstd -dc '{plain}' | tar -x -C '{out_dir}'", shell=True)
    assert tar.returncode == 0
    assert (out_dir / "database" / "ntds.dit").read_bytes() == files["ntds.dit"]
    import pyrage

    identity = pyrage.x25519.Identity.from_str(read_identities(key.read_bytes())[0].text)
    assert pyrage.decrypt(data, [identity]) == plain.read_bytes()


def test_every_reader_opens_it_with_the_identity(age_dc, tmp_path):
    dc, archive, key, files = age_dc
    done = cli("verify", archive, "-i", key, "--json")
    assert done.returncode == 0, done.stderr
    assert b'"encrypted":true' in done.stdout.replace(b" ", b"")
    listed = cli("ls", archive, "-i", key)
    assert listed.returncode == 0 and b"ntds.dit" in listed.stdout
    out = tmp_path / "out"
    done = cli("extract", archive, out, "-i", key)
    assert done.returncode == 0, done.stderr
    assert (out / "database" / "ntds.dit").read_bytes() == files["ntds.dit"]
    # The pure reader and the engine agree on an encrypted archive too.
    keys = DecryptionKeys(read_identities(key.read_bytes()))
    fast, pure = verify(archive, keys=keys), verify(archive, keys=keys, pure=True)
    assert [f.xxh3_128 for f in fast.files] == [f.xxh3_128 for f in pure.files]
    assert fast.encrypted and pure.encrypted


def test_restore_decrypts_in_its_verification_pass(age_dc):
    dc, archive, key, files = age_dc
    dc.activity(0.05, seed=3)
    dc.stop()
    done = cli("restore", archive, "--server", "DC01", "-i", key)
    assert done.returncode == 0, done.stderr
    assert (dc.ntds_dir / "ntds.dit").read_bytes() == files["ntds.dit"]
    assert cli("dc", "start", "DC01").returncode == 0


def test_restore_of_an_encrypted_archive_from_standard_input(age_dc):
    dc, archive, key, files = age_dc
    dc.stop()
    with open(archive, "rb") as fh:
        done = cli("restore", "-", "--server", "DC01", "-i", key, stdin=fh)
    assert done.returncode == 0, done.stderr
    assert (dc.ntds_dir / "ntds.dit").read_bytes() == files["ntds.dit"]


def test_verify_and_extract_read_an_encrypted_stream(age_dc, tmp_path):
    dc, archive, key, files = age_dc
    with open(archive, "rb") as fh:
        done = cli("verify", "-", "-i", key, stdin=fh)
    assert done.returncode == 0, done.stderr
    with open(archive, "rb") as fh:
        done = cli("extract", "-", tmp_path / "o", "-i", key, stdin=fh)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "database" / "ntds.dit").read_bytes() == files["ntds.dit"]


def test_without_a_key_the_archive_is_named_encrypted(age_dc):
    _, archive, _, _ = age_dc
    for argv in (["verify", archive], ["ls", archive]):
        done = cli(*argv)
        assert done.returncode == 5 and b"encrypted" in done.stderr, done.stderr
    with open(archive, "rb") as fh:
        done = cli("verify", "-", stdin=fh)
    assert done.returncode == 5 and b"encrypted" in done.stderr


def test_a_wrong_identity_is_refused_before_anything_changes(age_dc, tmp_path):
    dc, archive, _, _ = age_dc
    other = tmp_path / "other.txt"
    keygen(other)
    out = tmp_path / "out"
    done = cli("extract", archive, out, "-i", other)
    assert done.returncode == 5 and b"identity" in done.stderr
    assert not out.exists() or not any(out.iterdir())
    dc.stop()
    before = snapshot(dc.ntds_dir)
    done = cli("restore", archive, "--server", "DC01", "-i", other)
    assert done.returncode == 5
    assert snapshot(dc.ntds_dir) == before


def _damaged(archive, tmp_path, name, change) -> object:
    data = bytearray(archive.read_bytes())
    change(data)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def _flip(offset):
    def change(data):
        data[offset] ^= 0x04
    return change


def test_a_flipped_bit_anywhere_is_refused(age_dc, tmp_path):
    dc, archive, key, _ = age_dc
    size = archive.stat().st_size
    start = _header_end(archive.read_bytes())
    rng = random.Random(12)
    # The version line, a stanza, the MAC, the nonce, and payload bytes
    # (first chunk, random chunks, the last chunk's tag).
    spots = [3, 30, start - 40, start - 5] + [start + rng.randrange(size - start)
                                              for _ in range(6)] + [size - 1]
    for n, spot in enumerate(spots):
        bad = _damaged(archive, tmp_path, f"bad{n}.age", _flip(spot))
        done = cli("verify", bad, "-i", key)
        assert done.returncode == 5, (spot, done.stderr)
        assert b"Traceback" not in done.stderr
    dc.stop()
    before = snapshot(dc.ntds_dir)
    bad = _damaged(archive, tmp_path, "late.age", _flip(size - SEALED // 2))
    done = cli("restore", bad, "--server", "DC01", "-i", key)
    assert done.returncode == 5, done.stderr
    assert snapshot(dc.ntds_dir) == before


def test_truncation_and_swapped_chunks_are_refused(age_dc, tmp_path):
    dc, archive, key, _ = age_dc
    data = archive.read_bytes()
    start = _header_end(data)
    chunks = (len(data) - start) // SEALED
    assert chunks >= 3
    cuts = {"at a boundary": start + SEALED * (chunks - 1), "inside": len(data) - 100,
            "to the header": start}
    for name, cut in cuts.items():
        path = tmp_path / f"cut-{name.replace(' ', '-')}.age"
        path.write_bytes(data[:cut])
        done = cli("verify", path, "-i", key)
        assert done.returncode == 5, (name, done.stderr)

    def swap(buf):
        a, b = start, start + SEALED
        buf[a:a + SEALED], buf[b:b + SEALED] = buf[b:b + SEALED], buf[a:a + SEALED]
    swapped = _damaged(archive, tmp_path, "swapped.age", swap)
    done = cli("verify", swapped, "-i", key)
    assert done.returncode == 5
    trailing = tmp_path / "trailing.age"
    trailing.write_bytes(data + b"\0")
    assert cli("verify", trailing, "-i", key).returncode == 5


def test_passphrase_round_trip_and_never_shown(make_dc, tmp_path):
    make_dc("DC01", size=4 << 20)
    archive = tmp_path / "p.tar.zst.age"
    env = {**os.environ, "NTDSB_PASSPHRASE": PASS}
    done = cli("backup", "--server", "DC01", "-o", archive, "--passphrase", "--json",
               "--no-truncate", env=env)
    assert done.returncode == 0, done.stderr
    assert archive.read_bytes().startswith(b"age-encryption.org/v1\n-> scrypt ")
    pass_file = tmp_path / "pass"
    pass_file.write_text(PASS + "\n")
    ok = cli("verify", archive, "--passphrase-file", pass_file, "--json")
    assert ok.returncode == 0, ok.stderr
    wrong = cli("verify", archive, "--passphrase", env={**os.environ,
                                                        "NTDSB_PASSPHRASE": PASS + "x"})
    assert wrong.returncode == 5
    for out in (done, ok, wrong):
        assert PASS.encode() not in out.stdout + out.stderr
    import pyrage

    plain = pyrage.passphrase.decrypt(archive.read_bytes(), PASS)
    assert plain[:4] == bytes.fromhex("5d2a4d18")     # our first frame header


def test_several_recipients_each_decrypt(make_dc, tmp_path):
    make_dc("DC01", size=4 << 20)
    keys = [tmp_path / f"k{i}.txt" for i in range(3)]
    recipients = [keygen(k) for k in keys]
    rfile = tmp_path / "recipients"
    rfile.write_text("# the backup team\n" + "\n".join(recipients[1:]) + "\n")
    archive = tmp_path / "m.tar.zst.age"
    done = cli("backup", "--server", "DC01", "-o", archive, "-r", recipients[0],
               "-R", rfile, "--no-truncate")
    assert done.returncode == 0, done.stderr
    assert archive.read_bytes().count(b"\n-> X25519 ") == 3
    for k in keys:
        assert cli("verify", archive, "-i", k).returncode == 0


def test_an_archive_encrypted_by_stock_age_is_read(make_dc, tmp_path):
    dc = make_dc("DC01", size=4 << 20)
    plain = tmp_path / "plain.tar.zst"
    backup("DC01", plain, chunk_size=CHUNK, truncate=False)
    identity = X25519Identity.generate()
    archive = tmp_path / "theirs.age"
    subprocess.run(["age", "-r", identity.recipient.text, "-o", archive, plain], check=True)
    keys = DecryptionKeys([identity])
    report = verify(archive, keys=keys)
    assert report.encrypted and report.manifest["server"] == "DC01"
    dc.stop()
    result = restore(archive, "DC01", keys=keys)
    assert not result.dry_run
    digest = hashlib.sha256((dc.ntds_dir / "ntds.dit").read_bytes()).hexdigest()
    with tarfile.open(fileobj=_zstd_stream(plain)) as tf:
        member = tf.extractfile("database/ntds.dit")
        assert hashlib.sha256(member.read()).hexdigest() == digest


def _zstd_stream(path):
    import io

    # Every frame, as stock zstd reads the archive (skippable ones skipped).
    done = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True)
    return io.BytesIO(done.stdout)


def test_library_refuses_recipients_with_a_passphrase(make_dc, tmp_path):
    make_dc("DC01", size=2 << 20)
    identity = X25519Identity.generate()
    with pytest.raises(ValueError):
        backup("DC01", tmp_path / "x.age", recipients=[identity.recipient], passphrase=PASS)
    assert not any(p.name.startswith(("x.age", ".x.age")) for p in tmp_path.iterdir())


def test_an_encrypted_archive_needs_its_key_in_the_library(age_dc):
    _, archive, _, _ = age_dc
    with pytest.raises(errors.DecryptionError):
        verify(archive)
