"""minisign-compatible signatures: the known answers of
shared/reference/age-minisign.md section 4.2 byte for byte, every rejection
of sections 3.4-3.5, and interop with minisign itself, run for real."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import subprocess
from pathlib import Path

import pytest

from ntdsbackup.cli.common import EXIT_ARCHIVE, exit_code_for
from ntdsbackup.crypto import (
    PublicKey,
    Signature,
    SigningKey,
    blake2b_file,
    format_key_id,
    sign,
    verify,
)
from ntdsbackup.crypto import minisign as ms
from ntdsbackup.errors import KeyFormatError, SignatureError
from ntdsbackup.platform.files import FileExists

KAT_SEED = bytes(range(32))
KAT_KEY_ID = bytes(range(1, 9))
KAT_PUBLIC = "RWQBAgMEBQYHCAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KAT_SECRET = ("RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQIDBAUGBwgA"
              "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHwOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
              "UuhoZ0oj6XehkwAxqgcDfOhmwCrPXeYwQwAwVY5NB98=")
KAT_MESSAGE = b"minisign test vector\n"
KAT_SIG_LINE = ("RUQBAgMEBQYHCOdRwELpYZC/juWVUqfPp00+EHXfuyKdrloYuBkVYk8FOkiCunKYWY6QEXAoy0mvs33KRc"
                "+cXTaYe+Cdrbiqpwk=")
KAT_GLOBAL_LINE = ("KSi4rk1hfIJ3J/FgOXL/OtwC5xysCCkogVYQ7cHYBjrWKTkD1nCwEClo8EWZbqZ1XDu5AuMGep"
                   "/etI3tJb3NBA==")


def kat_key() -> SigningKey:
    return SigningKey(KAT_KEY_ID, KAT_SEED)


def kat_digest() -> bytes:
    return hashlib.blake2b(KAT_MESSAGE).digest()


def kat_signature() -> str:
    return sign(kat_key(), kat_digest(), "kat")


def with_line(text: str, index: int, line: str) -> str:
    lines = text.split("\n")
    lines[index] = line
    return "\n".join(lines)


def reject(text: str | bytes, match: str, digest: bytes | None = None,
           keys=None) -> SignatureError:
    with pytest.raises(SignatureError, match=match) as info:
        verify(text, kat_digest() if digest is None else digest,
               [kat_key().public_key] if keys is None else keys)
    assert exit_code_for(info.value) == EXIT_ARCHIVE
    return info.value


# -- known answers ------------------------------------------------------------

class TestKnownAnswers:
    def test_public_key(self):
        public = kat_key().public_key
        assert public.line == KAT_PUBLIC
        assert public.text == ("untrusted comment: minisign public key "
                               f"{format_key_id(KAT_KEY_ID)}\n{KAT_PUBLIC}\n")
        assert format_key_id(KAT_KEY_ID) == "0807060504030201"

    def test_key_id_printing(self):
        assert format_key_id(bytes.fromhex("e5eb3b7dc8400bb3")) == "B30B40C87D3BEBE5"

    def test_secret_key(self):
        text = kat_key().secret_key_text()
        assert text.split("\n")[1] == KAT_SECRET
        assert text.startswith("untrusted comment: ")
        key = SigningKey.from_secret_key_text(text)
        assert key.key_id == KAT_KEY_ID and key.public_key.line == KAT_PUBLIC

    def test_signature_lines(self):
        digest = kat_digest()
        assert digest.hex().startswith("e8cc8f78") and digest.hex().endswith("4135fb4b")
        lines = kat_signature().split("\n")
        assert lines == ["untrusted comment: signature from minisign secret key",
                         KAT_SIG_LINE, "trusted comment: kat", KAT_GLOBAL_LINE, ""]
        assert verify(kat_signature(), digest, [kat_key().public_key]) == kat_key().public_key

    def test_pickparams(self):
        # The SENSITIVE defaults give N = 2^20, r = 8, p = 1 (reference 3.3).
        assert ms._pickparams(33554432, 1073741824) == (20, 8, 1)
        # minisign halves both limits on low memory.
        assert ms._pickparams(33554432 // 2, 1073741824 // 2) == (19, 8, 1)
        # The ops-bound branch: p = 1, maxN = ops / 32.
        assert ms._pickparams(1 << 20, 1 << 30) == (15, 8, 1)
        # ops below the floor are raised to 32 768.
        assert ms._pickparams(0, 1 << 30) == (10, 8, 1)
        # The memory-bound branch with p above 1.
        assert ms._pickparams(1 << 30, 1 << 24) == (14, 8, 2048)


# -- round trips and parsing ----------------------------------------------------

class TestRoundTrip:
    def test_generated(self):
        key = SigningKey.generate()
        digest = hashlib.blake2b(b"backup").digest()
        text = sign(key, digest, "timestamp:1\tfile:x.age\thashed", untrusted_comment="hello")
        parsed = Signature.parse(text)
        assert parsed.algorithm == b"ED" and parsed.key_id == key.key_id
        assert parsed.trusted_comment == "timestamp:1\tfile:x.age\thashed"
        assert parsed.untrusted_comment == "hello"
        assert verify(parsed, digest, [SigningKey.generate().public_key, key.public_key]) \
            == key.public_key
        other = SigningKey.generate()
        assert other.key_id != key.key_id
        again = SigningKey.from_secret_key_text(key.secret_key_text())
        assert again.public_key == key.public_key

    def test_public_key_forms(self):
        public = kat_key().public_key
        assert PublicKey.from_text(public.text) == public
        assert PublicKey.from_text(KAT_PUBLIC) == public
        assert PublicKey.from_text(KAT_PUBLIC + "\n") == public
        assert PublicKey.from_text(public.text.replace("\n", "\r\n").encode()) == public
        assert PublicKey.from_text("untrusted comment: anything\n" + KAT_PUBLIC) == public
        assert KAT_PUBLIC in repr(public)

    @pytest.mark.parametrize("text, match", [
        ("", "expected"),
        ("comment: x\n" + KAT_PUBLIC + "\n", "expected"),
        (KAT_PUBLIC[:-1], "42 bytes"),
        (KAT_PUBLIC + "AAAA", "42 bytes"),
        (base64.b64encode(b"ED" + bytes(40)).decode(), "algorithm"),
        ("untrusted comment: x\n" + KAT_PUBLIC + "\rx\n", "carriage return"),
    ])
    def test_bad_public_keys(self, text, match):
        with pytest.raises(KeyFormatError, match=match):
            PublicKey.from_text(text)

    def test_crlf_extra_lines_untrusted_comment(self):
        text = kat_signature()
        verify(text.replace("\n", "\r\n"), kat_digest(), [kat_key().public_key])
        verify(text + "more\nlines\n", kat_digest(), [kat_key().public_key])
        verify(with_line(text, 0, "untrusted comment: changed"), kat_digest(),
               [kat_key().public_key])
        verify(text.rstrip("\n"), kat_digest(), [kat_key().public_key])

    def test_blake2b_file(self):
        data = os.urandom(3 << 20 | 7)
        f = io.BytesIO(data)
        assert blake2b_file(f.read) == hashlib.blake2b(data).digest()
        f = io.BytesIO(data)
        assert blake2b_file(f.read, chunk_size=1000) == hashlib.blake2b(data).digest()
        assert blake2b_file(io.BytesIO(b"").read) == hashlib.blake2b(b"").digest()

    def test_sign_arguments(self):
        key, digest = kat_key(), kat_digest()
        with pytest.raises(ValueError, match="64 bytes"):
            sign(key, hashlib.sha256(b"").digest(), "x")
        for bad in ("two\nlines", "cr\r", "bell\x07", "x" * 8174):
            with pytest.raises(ValueError):
                sign(key, digest, bad)
        with pytest.raises(ValueError):
            sign(key, digest, "ok", untrusted_comment="x" * 1004)
        sign(key, digest, "x" * 8173)                 # 17 + 8173 + LF = 8191
        sign(key, digest, "ok", untrusted_comment="x" * 1003)
        with pytest.raises(ValueError, match="64 bytes"):
            verify(kat_signature(), digest[:32], [key.public_key])


# -- rejections (reference 3.4, 3.5) ---------------------------------------------

class TestRejections:
    def test_untrusted_key(self):
        err = reject(kat_signature(), "signed by key 0807060504030201, which is not trusted",
                     keys=[SigningKey.generate().public_key])
        assert "0807060504030201" in str(err)
        reject(kat_signature(), "not trusted", keys=[])

    def test_flipped_key_id_bit(self):
        blob = bytearray(base64.b64decode(KAT_SIG_LINE))
        blob[2] ^= 0x01
        reject(with_line(kat_signature(), 1, base64.b64encode(bytes(blob)).decode()),
               "which is not trusted")

    def test_same_key_id_other_key(self):
        impostor = SigningKey(KAT_KEY_ID, bytes(32)).public_key
        reject(kat_signature(), "does not verify", keys=[impostor])
        assert verify(kat_signature(), kat_digest(), [impostor, kat_key().public_key]) \
            == kat_key().public_key

    def test_changed_message(self):
        reject(kat_signature(), r"signature by key \w+ does not verify",
               digest=hashlib.blake2b(b"minisign test vector!\n").digest())

    def test_flipped_signature_bit(self):
        blob = bytearray(base64.b64decode(KAT_SIG_LINE))
        blob[40] ^= 0x04
        reject(with_line(kat_signature(), 1, base64.b64encode(bytes(blob)).decode()),
               "^signature by key .* does not verify")

    def test_changed_trusted_comment(self):
        reject(with_line(kat_signature(), 2, "trusted comment: kaT"),
               "trusted comment signature")
        reject(with_line(kat_signature(), 2, "trusted comment: kat "),
               "trusted comment signature")

    def test_flipped_global_bit(self):
        blob = bytearray(base64.b64decode(KAT_GLOBAL_LINE))
        blob[0] ^= 0x01
        reject(with_line(kat_signature(), 3, base64.b64encode(bytes(blob)).decode()),
               "trusted comment signature")

    @pytest.mark.parametrize("alg, match", [(b"Ex", "unsupported algorithm"),
                                            (b"ed", "unsupported algorithm"),
                                            (b"Ed", "legacy")])
    def test_algorithms(self, alg, match):
        blob = alg + base64.b64decode(KAT_SIG_LINE)[2:]
        reject(with_line(kat_signature(), 1, base64.b64encode(blob).decode()), match)

    def test_legacy_even_when_valid(self):
        # A real legacy signature (over the raw message), made here: refused.
        key = kat_key()
        sig = key.sign_raw(KAT_MESSAGE)
        text = ("untrusted comment: legacy\n"
                + base64.b64encode(b"Ed" + key.key_id + sig).decode() + "\n"
                + "trusted comment: kat\n"
                + base64.b64encode(key.sign_raw(sig + b"kat")).decode() + "\n")
        assert Signature.parse(text).algorithm == b"Ed"
        reject(text, "legacy")

    @pytest.mark.parametrize("index, line, match", [
        (0, "untrusted comment:x", "no untrusted comment"),
        (0, "Untrusted comment: x", "no untrusted comment"),
        (2, "trusted_comment: kat", "no trusted comment"),
        (2, "trusted comment:kat", "no trusted comment"),
        (1, KAT_SIG_LINE[:-1], "line 2"),                       # a missing '='
        (1, KAT_SIG_LINE + "AAAA", "line 2"),                   # 77 bytes
        (1, KAT_SIG_LINE[:-4], "line 2"),                       # 72 bytes
        (1, KAT_SIG_LINE[:-2] + "l=", "line 2"),                # non-canonical trailing bits
        (1, " " + KAT_SIG_LINE, "line 2"),
        (3, KAT_GLOBAL_LINE[:-2], "line 4"),                    # missing '=='
        (3, KAT_GLOBAL_LINE[:-4], "line 4"),
        (3, KAT_GLOBAL_LINE[:-3] + "B==", "line 4"),            # BA== -> BB== (minisign: ok)
        (3, "", "line 4"),
        (2, "trusted comment: k\x01t", "printable"),
        (2, "trusted comment: k\x7ft", "printable"),
        (0, "untrusted comment: " + "x" * 1004, "untrusted comment line too long"),
        (2, "trusted comment: " + "x" * 8174, "trusted comment line too long"),
    ])
    def test_malformed_lines(self, index, line, match):
        reject(with_line(kat_signature(), index, line), match)

    def test_line_limits_exact(self):
        # 1 022 bytes and the LF fit the 1 024-byte buffer; so do 8 190 + LF.
        ok = with_line(kat_signature(), 0, "untrusted comment: " + "x" * 1003)
        verify(ok, kat_digest(), [kat_key().public_key])
        key = kat_key()
        long_comment = "x" * 8173
        verify(sign(key, kat_digest(), long_comment), kat_digest(), [key.public_key])

    def test_structure(self):
        text = kat_signature()
        reject("\n".join(text.split("\n")[:3]) + "\n", "fewer than four lines")
        reject(text.replace("\n", "\r\r\n", 1), "carriage return")
        reject(text.replace("kat", "k\rat"), "carriage return")
        reject(text.encode() + b"\n" * (64 << 10), "longer than")
        reject(text.encode().replace(b"kat", b"k\xffat"), "printable")
        reject("", "fewer than four lines")

    def test_every_single_byte_change_is_caught(self):
        # Outside the untrusted comment's text, every change to a signature
        # file (a flipped bit, a deleted byte) must fail as a SignatureError.
        text = kat_signature().encode()
        free = range(len("untrusted comment: "), text.index(b"\n"))
        keys = [kat_key().public_key]
        for i in range(len(text)):
            if i in free:
                continue
            for data in [text[:i] + bytes([text[i] ^ d]) + text[i + 1:] for d in (1, 0x20, 0x80)] \
                    + [text[:i] + text[i + 1:]]:
                if data == text.rstrip(b"\n") and i == len(text) - 1:
                    continue        # the final LF removed: still the same four lines
                with pytest.raises(SignatureError):
                    verify(data, kat_digest(), keys)

    def test_unicode_comment_round_trip(self):
        key = kat_key()
        text = sign(key, kat_digest(), "café\t✓")
        assert Signature.parse(text).trusted_comment == "café\t✓"
        verify(text.encode(), kat_digest(), [key.public_key])


# -- secret key files -----------------------------------------------------------

def secret_blob(text: str) -> bytearray:
    return bytearray(base64.b64decode(text.split("\n")[1]))


def secret_text(blob: bytes) -> str:
    return "untrusted comment: x\n" + base64.b64encode(bytes(blob)).decode() + "\n"


class TestSecretKeys:
    def test_zero_checksum_accepted(self):
        blob = secret_blob(kat_key().secret_key_text())
        blob[126:158] = bytes(32)                 # what minisign -G -W writes
        assert SigningKey.from_secret_key_text(secret_text(blob)).key_id == KAT_KEY_ID

    @pytest.mark.parametrize("offset, value, match", [
        (0, b"ED", "algorithm"),
        (4, b"B3", "algorithm"),
        (2, b"Xx", "key derivation"),
        (130, b"\x01", "checksum"),
        (100, b"\x00", "checksum"),               # the public half changed
        (2, b"Sc", "password"),
    ])
    def test_bad_fields(self, offset, value, match):
        blob = secret_blob(kat_key().secret_key_text())
        blob[offset:offset + len(value)] = value
        with pytest.raises(KeyFormatError, match=match):
            SigningKey.from_secret_key_text(secret_text(blob))

    def test_public_half_must_match(self):
        blob = secret_blob(kat_key().secret_key_text())
        blob[100] ^= 1
        blob[126:158] = bytes(32)                 # no checksum to catch it
        with pytest.raises(KeyFormatError, match="public half"):
            SigningKey.from_secret_key_text(secret_text(blob))

    def test_bad_files(self):
        with pytest.raises(KeyFormatError, match="expected"):
            SigningKey.from_secret_key_text(KAT_SECRET)
        with pytest.raises(KeyFormatError, match="158 bytes"):
            SigningKey.from_secret_key_text("untrusted comment: x\n" + KAT_PUBLIC + "\n")
        with pytest.raises(KeyFormatError, match="longer"):
            SigningKey.from_secret_key_text("#" * (65 << 10))

    def test_encrypted_round_trip(self):
        key = SigningKey.generate()
        text = key.secret_key_text(password="pw", opslimit=32768, memlimit=1 << 24)
        blob = secret_blob(text)
        assert blob[2:4] == b"Sc" and blob[4:6] == b"B2"
        assert blob[54:62] != key.key_id                 # masked
        assert ms._pickparams(32768, 1 << 24) == (10, 8, 1)
        assert SigningKey.from_secret_key_text(text, password=b"pw").public_key \
            == key.public_key
        with pytest.raises(KeyFormatError, match="wrong password"):
            SigningKey.from_secret_key_text(text, password="pW")
        with pytest.raises(ValueError, match="empty"):
            key.secret_key_text(password="")
        assert key.secret_key_text(password="pw", opslimit=32768, memlimit=1 << 24) != text

    def test_secret_never_in_repr(self):
        key = kat_key()
        assert KAT_SECRET[60:80] not in repr(key)
        assert repr(key) == "SigningKey(0807060504030201)"

    def test_hostile_scrypt_limits_refused(self):
        blob = secret_blob(kat_key().secret_key_text())
        blob[2:4] = b"Sc"
        blob[38:54] = (1 << 40).to_bytes(8, "little") + (1 << 40).to_bytes(8, "little")
        with pytest.raises(KeyFormatError, match="out of range"):
            SigningKey.from_secret_key_text(secret_text(blob), password="x")

    def test_write_private(self, tmp_path):
        key = SigningKey.generate()
        sec, pub = tmp_path / "key", tmp_path / "key.pub"
        key.write(sec, pub)
        assert stat.S_IMODE(os.lstat(sec).st_mode) == 0o600
        assert SigningKey.from_secret_key_text(sec.read_text()).public_key == key.public_key
        assert PublicKey.from_text(pub.read_text()) == key.public_key
        with pytest.raises(FileExists):
            SigningKey.generate().write(sec, tmp_path / "other.pub")
        assert not (tmp_path / "other.pub").exists()
        target = tmp_path / "target"
        target.write_text("untouched")
        (tmp_path / "link").symlink_to(target)
        with pytest.raises(FileExists):
            key.write(tmp_path / "link", tmp_path / "link.pub")
        assert target.read_text() == "untouched"


# -- interop with minisign 0.11, run for real ----------------------------------------

def minisign(*args: str, data: bytes | None = None, check: bool = True):
    return subprocess.run(["minisign", *args], input=data, capture_output=True,
                          check=check, timeout=120)


class TestInterop:
    def test_our_signature_verifies_with_minisign(self, tmp_path):
        key = SigningKey.generate()
        (tmp_path / "pub").write_text(key.public_key.text)
        data = os.urandom(100_000)
        (tmp_path / "file").write_bytes(data)
        sig = sign(key, hashlib.blake2b(data).digest(), "timestamp:0\tfile:file\thashed")
        (tmp_path / "file.minisig").write_text(sig)
        out = minisign("-V", "-p", str(tmp_path / "pub"), "-m", str(tmp_path / "file"))
        assert b"Signature and comment signature verified" in out.stdout
        assert b"timestamp:0\tfile:file\thashed" in out.stdout
        minisign("-V", "-H", "-P", key.public_key.line, "-m", str(tmp_path / "file"))
        # ... and minisign refuses it once the file changes.
        (tmp_path / "file").write_bytes(data + b"!")
        bad = minisign("-V", "-p", str(tmp_path / "pub"), "-m", str(tmp_path / "file"),
                       check=False)
        assert bad.returncode != 0

    def test_kat_signature_verifies_with_minisign(self, tmp_path):
        (tmp_path / "m").write_bytes(KAT_MESSAGE)
        (tmp_path / "m.minisig").write_text(kat_signature())
        out = minisign("-V", "-P", KAT_PUBLIC, "-m", str(tmp_path / "m"))
        assert b"Trusted comment: kat" in out.stdout

    def test_minisign_key_pair_verifies_with_us(self, tmp_path):
        pub, sec = tmp_path / "pub", tmp_path / "sec"
        minisign("-G", "-W", "-p", str(pub), "-s", str(sec))
        data = b"signed by minisign\n" * 1000
        (tmp_path / "f").write_bytes(data)
        minisign("-S", "-s", str(sec), "-m", str(tmp_path / "f"), "-t", "from minisign")
        public = PublicKey.from_text(pub.read_text())
        sig = (tmp_path / "f.minisig").read_text()
        digest = blake2b_file(io.BytesIO(data).read)
        assert verify(sig, digest, [public]) == public
        assert Signature.parse(sig).trusted_comment == "from minisign"
        # Its unencrypted secret key (zero checksum) is read by us, and signs
        # exactly what minisign signs (Ed25519 is deterministic).
        ours = SigningKey.from_secret_key_text(sec.read_bytes())
        assert ours.public_key == public
        assert sign(ours, digest, "from minisign").split("\n")[1:4] == sig.split("\n")[1:4]

    def test_minisign_legacy_refused(self, tmp_path):
        pub, sec = tmp_path / "pub", tmp_path / "sec"
        minisign("-G", "-W", "-p", str(pub), "-s", str(sec))
        (tmp_path / "f").write_bytes(b"legacy\n")
        minisign("-S", "-l", "-s", str(sec), "-m", str(tmp_path / "f"))
        sig = (tmp_path / "f.minisig").read_text()
        with pytest.raises(SignatureError, match="legacy"):
            verify(sig, hashlib.blake2b(b"legacy\n").digest(),
                   [PublicKey.from_text(pub.read_text())])

    def test_our_secret_key_used_by_minisign(self, tmp_path):
        key = SigningKey.generate()
        sec, pub = tmp_path / "key", tmp_path / "key.pub"
        key.write(sec, pub)
        (tmp_path / "f").write_bytes(b"signed by minisign with our key\n")
        minisign("-S", "-s", str(sec), "-m", str(tmp_path / "f"), "-t", "ours")
        sig = (tmp_path / "f.minisig").read_text()
        digest = hashlib.blake2b(b"signed by minisign with our key\n").digest()
        assert verify(sig, digest, [key.public_key]) == key.public_key
        minisign("-V", "-p", str(pub), "-m", str(tmp_path / "f"))
        # minisign -R recreates the same public key from our secret key file.
        recreated = tmp_path / "recreated.pub"
        minisign("-R", "-s", str(sec), "-p", str(recreated))
        assert PublicKey.from_text(recreated.read_text()) == key.public_key

    def test_our_encrypted_key_used_by_minisign(self, tmp_path):
        key = SigningKey.generate()
        sec, pub = tmp_path / "key", tmp_path / "key.pub"
        key.write(sec, pub, password="open sesame")      # minisign's default limits
        assert stat.S_IMODE(os.lstat(sec).st_mode) == 0o600
        (tmp_path / "f").write_bytes(b"x" * 1000)
        minisign("-S", "-s", str(sec), "-m", str(tmp_path / "f"), "-t", "enc",
                 data=b"open sesame\n")
        sig = (tmp_path / "f.minisig").read_text()
        assert verify(sig, hashlib.blake2b(b"x" * 1000).digest(), [key.public_key]) \
            == key.public_key
        wrong = minisign("-S", "-s", str(sec), "-m", str(tmp_path / "f"), "-x",
                         str(tmp_path / "g.minisig"), data=b"open sesamE\n", check=False)
        assert wrong.returncode != 0

    def test_encrypted_minisign_key(self, tmp_path):
        # minisign -G with a password (read from standard input when it is not
        # a terminal): scrypt N = 2^20, r = 8, p = 1 on decryption.
        pub, sec = tmp_path / "pub", tmp_path / "sec"
        minisign("-G", "-p", str(pub), "-s", str(sec), data=b"pass word\npass word\n")
        blob = base64.b64decode(sec.read_text().split("\n")[1])
        assert blob[2:4] == b"Sc"
        key = SigningKey.from_secret_key_text(sec.read_text(), password="pass word")
        assert key.public_key == PublicKey.from_text(pub.read_text())
        with pytest.raises(KeyFormatError, match="wrong password"):
            SigningKey.from_secret_key_text(sec.read_text(), password="pass wore")
        with pytest.raises(KeyFormatError, match="password is needed"):
            SigningKey.from_secret_key_text(sec.read_text())


def test_exports():
    import ntdsbackup.crypto as crypto

    assert {"PublicKey", "Signature", "SigningKey", "sign", "verify", "blake2b_file"} \
        <= set(crypto.__all__)
    assert Path(ms.__file__).name == "minisign.py"
