"""Signed archives: a minisign signature beside the archive that stock
minisign verifies, and readers that, given a trusted key, refuse anything
else before a byte is written or the DC is touched: no signature, another
key, an archive relabelled and re-signed, a signature of another archive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from dctools import cli, snapshot
from ntdsbackup import errors
from ntdsbackup.archive import signing, verify
from ntdsbackup.archive.signing import Trust
from ntdsbackup.crypto import PublicKey, SigningKey
from ntdsbackup.phases.backup import backup


def signing_pair(tmp_path, name="sign"):
    secret = tmp_path / f"{name}.key"
    done = cli("key", "generate", "--signing", "-o", secret)
    assert done.returncode == 0, done.stderr
    return secret, tmp_path / f"{name}.key.pub"


@pytest.fixture
def signed(make_dc, tmp_path):
    dc = make_dc("DC01", size=4 << 20)
    secret, public = signing_pair(tmp_path)
    archive = tmp_path / "DC01.tar.zst"
    done = cli("backup", "--server", "DC01", "-o", archive, "--sign-key", secret,
               "--no-truncate", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["signature"] == str(archive) + ".minisig"
    return dc, archive, secret, public


def test_signing_keys_are_private_and_minisign_verifies_the_signature(signed):
    dc, archive, secret, public = signed
    assert os.stat(secret).st_mode & 0o777 == 0o600
    sig = archive.with_name(archive.name + ".minisig")
    assert sig.is_file()
    done = subprocess.run(["minisign", "-V", "-p", public, "-m", archive], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b"server:DC01" in done.stdout and b"format:ntdsbackup-1" in done.stdout
    again = cli("key", "public", secret)
    assert again.stdout.decode().strip() == PublicKey.from_text(public.read_bytes()).line


def test_readers_accept_a_valid_signature(signed, tmp_path):
    dc, archive, _, public = signed
    done = cli("verify", archive, "--trusted-key", public, "--json")
    assert done.returncode == 0, done.stderr
    event = json.loads(done.stdout.splitlines()[-1])
    assert event["signed"]["server"] == "DC01"
    assert cli("ls", archive, "--trusted-key", public).returncode == 0
    out = tmp_path / "out"
    assert cli("extract", archive, out, "--trusted-key", public).returncode == 0
    dc.stop()
    done = cli("restore", archive, "--server", "DC01", "--trusted-key", public)
    assert done.returncode == 0, done.stderr


def test_an_unsigned_archive_is_refused_when_a_key_is_trusted(make_dc, tmp_path):
    dc = make_dc("DC01", size=4 << 20)
    _, public = signing_pair(tmp_path)
    archive = tmp_path / "plain.tar.zst"
    backup("DC01", archive, truncate=False)
    dc.stop()
    before = snapshot(dc.ntds_dir)
    for argv in (["verify", archive], ["restore", archive, "--server", "DC01"],
                 ["extract", archive, tmp_path / "o"]):
        done = cli(*argv, "--trusted-key", public)
        assert done.returncode == 5 and b"not signed" in done.stderr, done.stderr
    assert snapshot(dc.ntds_dir) == before
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_signature_by_an_untrusted_key_is_refused(signed, tmp_path):
    dc, archive, _, _ = signed
    _, other_public = signing_pair(tmp_path, "other")
    done = cli("verify", archive, "--trusted-key", other_public)
    assert done.returncode == 5 and b"not trusted" in done.stderr


def test_a_relabelled_archive_resigned_by_an_untrusted_key_is_refused(signed, make_dc,
                                                                        tmp_path):
    dc, archive, _, public = signed
    # The attacker backs up another DC, names it like DC01's and signs it
    # with a key of their own.
    make_dc("DC02", size=4 << 20)
    evil_secret, _ = signing_pair(tmp_path, "evil")
    forged = tmp_path / "forged.tar.zst"
    done = cli("backup", "--server", "DC02", "-o", forged, "--sign-key", evil_secret,
               "--no-truncate")
    assert done.returncode == 0, done.stderr
    shutil.copy(forged, archive)
    shutil.copy(str(forged) + ".minisig", str(archive) + ".minisig")
    dc.stop()
    before = snapshot(dc.ntds_dir)
    done = cli("restore", archive, "--server", "DC01", "--trusted-key", public,
               "--allow-other-server")
    assert done.returncode == 5 and b"not trusted" in done.stderr
    assert snapshot(dc.ntds_dir) == before


def test_a_valid_signature_of_another_archive_is_refused(signed, tmp_path):
    dc, archive, secret, public = signed
    second = tmp_path / "second.tar.zst"
    done = cli("backup", "--server", "DC01", "-o", second, "--sign-key", secret,
               "--no-truncate")
    assert done.returncode == 0, done.stderr
    # Archive 1 presented with archive 2's (valid, trusted) signature.
    shutil.copy(str(second) + ".minisig", str(archive) + ".minisig")
    done = cli("verify", archive, "--trusted-key", public)
    assert done.returncode == 5 and b"signature" in done.stderr


def test_a_changed_byte_breaks_the_signature(signed, tmp_path):
    _, archive, _, public = signed
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(errors.SignatureError):
        verify(archive, trust=Trust([PublicKey.from_text(public.read_bytes())]))


def test_signed_facts_must_match_the_manifest():
    facts = signing.SignedFacts("0000000000000001", "DC01", 100, signing.token_digest(b"t"),
                                "a.tar.zst")
    good = {"server": "DC01", "created_unix": 100, "expiry_token": "dA=="}
    signing.check_manifest(facts, good)
    for change in ({"server": "DC02"}, {"created_unix": 101}, {"expiry_token": "dQ=="}):
        with pytest.raises(errors.SignatureError):
            signing.check_manifest(facts, {**good, **change})


def test_an_encrypted_and_signed_archive_verifies_with_minisign_as_stored(make_dc, tmp_path):
    make_dc("DC01", size=4 << 20)
    from ntdsbackup.archive.envelope import DecryptionKeys
    from ntdsbackup.crypto import X25519Identity

    key = SigningKey.generate()
    identity = X25519Identity.generate()
    archive = tmp_path / "both.tar.zst.age"
    summary = backup("DC01", archive, recipients=[identity.recipient], signing_key=key,
                     truncate=False)
    assert summary.encrypted and summary.signature == str(archive) + ".minisig"
    pub = tmp_path / "k.pub"
    pub.write_text(key.public_key.text)
    done = subprocess.run(["minisign", "-V", "-p", pub, "-m", archive], capture_output=True)
    assert done.returncode == 0, done.stderr
    report = verify(archive, keys=DecryptionKeys([identity]), trust=Trust([key.public_key]))
    assert report.signed.server == "DC01" and report.encrypted


@pytest.fixture
def signed_stream(make_dc, tmp_path):
    """A signed (and, second, also encrypted) backup written to standard output."""
    dc = make_dc("DC01", size=4 << 20)
    secret, public = signing_pair(tmp_path)
    stream = tmp_path / "stream.tar.zst"
    with open(stream, "wb") as out:
        done = cli("backup", "--server", "DC01", "-o", "-", "--sign-key", secret,
                   "--no-truncate", "--json", stdout=out, stderr=subprocess.PIPE,
                   capture_output=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.splitlines()[-1])["signature"] == "embedded"
    return dc, stream, public


def test_a_signed_stream_carries_its_signature_inside(signed_stream, tmp_path):
    dc, stream, public = signed_stream
    assert not os.path.exists(str(stream) + ".minisig")
    # Stock zstd skips the signature frame: the emergency path still works.
    out = tmp_path / "x"
    out.mkdir()
    assert subprocess.run(f"zstd -dc '{stream}' | tar -x -C '{out}'", shell=True).returncode == 0
    assert (out / "database" / "ntds.dit").read_bytes() == (dc.ntds_dir / "ntds.dit").read_bytes()
    with open(stream, "rb") as fh:
        done = cli("verify", "-", "--trusted-key", public, "--json", stdin=fh)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["signed"]["server"] == "DC01"
    assert cli("verify", stream, "--trusted-key", public).returncode == 0
    assert cli("verify", stream).returncode == 0          # no key asked: just a frame
    assert cli("ls", stream, "--trusted-key", public).returncode == 0
    dc.stop()
    with open(stream, "rb") as fh:
        done = cli("restore", "-", "--server", "DC01", "--trusted-key", public, stdin=fh)
    assert done.returncode == 0, done.stderr


def test_a_signed_stream_altered_or_stripped_is_refused(signed_stream, tmp_path):
    dc, stream, public = signed_stream
    data = stream.read_bytes()
    sig_at = data.rindex(b"\x5b\x2a\x4d\x18")           # the signature frame's magic
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 1
    stripped = data[:sig_at]
    _, other = signing_pair(tmp_path, "other")
    cases = {"flipped": (bytes(flipped), public), "stripped": (stripped, public),
             "other key": (data, other), "trailing": (data + b"x", public)}
    for name, (content, key) in cases.items():
        path = tmp_path / f"{name}.tar.zst"
        path.write_bytes(content)
        done = cli("verify", path, "--trusted-key", key)
        assert done.returncode == 5, (name, done.stderr)
    dc.stop()
    before = snapshot(dc.ntds_dir)
    done = cli("restore", tmp_path / "flipped.tar.zst", "--server", "DC01", "--trusted-key",
               public)
    assert done.returncode == 5
    assert snapshot(dc.ntds_dir) == before


def test_an_encrypted_signed_stream_round_trips(make_dc, tmp_path):
    make_dc("DC01", size=4 << 20)
    from ntdsbackup.archive.envelope import DecryptionKeys
    from ntdsbackup.crypto import X25519Identity

    identity = X25519Identity.generate()
    key = SigningKey.generate()
    import io

    sink = io.BytesIO()
    summary = backup("DC01", sink, recipients=[identity.recipient], signing_key=key,
                     truncate=False)
    assert summary.signature == "embedded" and summary.encrypted
    path = tmp_path / "s.age"
    path.write_bytes(sink.getvalue())
    report = verify(path, keys=DecryptionKeys([identity]), trust=Trust([key.public_key]))
    assert report.signed.server == "DC01"
    other = SigningKey.generate()
    with pytest.raises(errors.SignatureError):
        verify(path, keys=DecryptionKeys([identity]), trust=Trust([other.public_key]))


def test_hostile_signature_frames_are_refused_by_every_reader(make_dc, tmp_path):
    import struct

    from ntdsbackup.archive.framing import SIGNATURE_MAGIC, pack_signature

    make_dc("DC01", size=2 << 20)
    plain = tmp_path / "plain.tar.zst"
    backup("DC01", plain, truncate=False)
    data = plain.read_bytes()
    frame = pack_signature("untrusted comment: x\n")
    huge = struct.pack("<II", SIGNATURE_MAGIC, 1 << 30) + b"\0" * 64
    bad_footer = frame[:-8] + b"NTDSBSGX"
    cases = {"two frames": data + frame + frame, "huge": data + huge,
             "bad footer": data + bad_footer, "after a frame": data + frame + b"\0" * 16,
             "not utf-8": data + pack_signature("x")[:8] + b"\xff" + frame[9:]}
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.tar.zst"
        path.write_bytes(content)
        for argv in (["verify", path], ["verify", path, "--pure"], ["ls", path]):
            done = cli(*argv)
            assert done.returncode == 5, (name, argv, done.stderr)
            assert b"Traceback" not in done.stderr
    # One well-formed frame is accepted (it is only checked with a trusted key).
    ok = tmp_path / "one.tar.zst"
    ok.write_bytes(data + frame)
    assert cli("verify", ok).returncode == 0 and cli("ls", ok).returncode == 0
    _, public = signing_pair(tmp_path)
    done = cli("verify", ok, "--trusted-key", public)
    assert done.returncode == 5 and b"signature" in done.stderr
