"""The age layer: bech32, keys and key files, the header (writing, strict
parsing, unwrapping), byte for byte against the known answers of
shared/reference/age-minisign.md section 4.1, and against age and rage.

The payload is the engine's; the few tests that need one seal or open it
here with ChaCha20-Poly1305, following the reference's section 1.6."""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import io
import os
import re
import select
import stat
import subprocess
import termios
import time
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ntdsbackup.cli.common import EXIT_ARCHIVE, exit_code_for
from ntdsbackup.crypto import (
    X25519Identity,
    X25519Recipient,
    bech32,
    identity_file_text,
    new_header,
    read_header,
    read_identities,
    read_nonce,
    read_recipients,
    unwrap,
    write_identity_file,
)
from ntdsbackup.crypto import age_header as ah
from ntdsbackup.errors import DecryptionError, KeyFormatError
from ntdsbackup.platform.files import FileExists

# -- known answers (reference section 4.1) ------------------------------------
KAT_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
KAT_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
KAT_EPHEMERAL = b"\x01" * 32
KAT_FILE_KEY = bytes(range(16))
KAT_NONCE = b"\xaa" * 16
KAT_SHARE = bytes.fromhex("a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209")
KAT_WRAP_KEY = bytes.fromhex("4d7e8284d798f1d8e1054a2a3f8ee68a287e6061eea5c5f6ef985b26d23cd667")
KAT_PAYLOAD_KEY = bytes.fromhex(
    "10c0b07f6870e5aecbac224763cae0b772965342b92e22919c4b5d4b60cfe74b")
KAT_HEADER = (b"age-encryption.org/v1\n"
              b"-> X25519 pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk\n"
              b"v4z6cVJwfIERh476BYl106tofN1IE2OED0vvzVg4rSc\n"
              b"--- u/nfgwh3bxuPipocyR2rv4Mr1/14LEoC16ddmZfFq3g\n")
KAT_SCRYPT_TAIL = (b"-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\n"
                   b"mQ3F6oBXsbDFUI5YIEsOnWmfkvKNLOCl8nSnBaYNEf4\n"
                   b"--- 0iE0wd+wiiZpJozh3Q4YtuEWAcepBQJaNAGpVIy9ZQ0\n")

CHUNK = 65536


# -- a test-only STREAM (reference 1.6) ----------------------------------------

def _chunk_nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def seal_payload(key: bytes, plaintext: bytes) -> bytes:
    aead = ChaCha20Poly1305(key)
    chunks = [plaintext[i:i + CHUNK] for i in range(0, len(plaintext), CHUNK)] or [b""]
    return b"".join(aead.encrypt(_chunk_nonce(i, i == len(chunks) - 1), c, None)
                    for i, c in enumerate(chunks))


def open_first_chunk(key: bytes, payload: bytes) -> bytes:
    """Chunk 0 of a payload: final if it is all there is."""
    first = payload[:CHUNK + 16]
    return ChaCha20Poly1305(key).decrypt(_chunk_nonce(0, len(payload) <= CHUNK + 16),
                                         first, None)


def kat_header() -> ah.NewHeader:
    identity = X25519Identity.from_text(KAT_IDENTITY)
    stanza = ah.wrap_x25519(identity.recipient, KAT_FILE_KEY, ephemeral=KAT_EPHEMERAL)
    return ah.assemble(KAT_FILE_KEY, [stanza], KAT_NONCE)


def parse(data: bytes, **kw) -> ah.Header:
    return read_header(io.BytesIO(data).read, **kw)


def open_file(data: bytes, identities=(), passphrase=None, **kw) -> tuple[bytes, int]:
    """(payload key, header length) of a whole age file."""
    f = io.BytesIO(data)
    header = read_header(f.read)
    assert f.tell() == header.length        # not a byte of the nonce taken
    nonce = read_nonce(f.read)
    return unwrap(header, nonce, identities, passphrase, **kw), header.length


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def header_with(stanza_lines: bytes, mac: bytes = b"A" * 43) -> bytes:
    return b"age-encryption.org/v1\n" + stanza_lines + b"--- " + mac + b"\n"


# -- bech32 ---------------------------------------------------------------------

class TestBech32:
    @pytest.mark.parametrize("text", ["A12UEL5L", "a12uel5l",
                                      "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"])
    def test_bip173_valid(self, text):
        hrp, data = bech32.decode(text)
        assert bech32.encode(hrp, data) == text

    @pytest.mark.parametrize("text", ["pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v",
                                      "li1dgmt3", "A1G7SGD8", "10a06t8", "1qzzfhee",
                                      "A12uEL5L", "a12uel5", "de1lg7wt\xff"])
    def test_bip173_invalid(self, text):
        with pytest.raises(bech32.Bech32Error):
            bech32.decode(text)

    def test_no_length_limit_and_case(self):
        data = bytes(range(256))
        text = bech32.encode("age", data)
        assert len(text) > 90
        assert bech32.decode(text) == ("age", data)
        upper = bech32.encode("AGE", data)
        assert upper == text.upper()
        assert bech32.decode(upper) == ("AGE", data)

    def test_not_bech32m(self):
        # The same data under the bech32m constant must fail the checksum.
        assert bech32._polymod(bech32._hrp_expand("a") + [0] * 6) != 1
        with pytest.raises(bech32.Bech32Error, match="checksum"):
            bech32.decode("a1lqfn3a")          # a valid bech32m string (BIP-350)

    def test_nonzero_padding_rejected(self):
        # One 5-bit value holds 5 bits: more padding than a byte string makes.
        text = bech32.encode("a", b"")
        values = [bech32._VALUE["l"]]
        chk = bech32._polymod(bech32._hrp_expand("a") + values + [0] * 6) ^ 1
        tail = "".join(bech32._CHARSET[(chk >> 5 * (5 - i)) & 31] for i in range(6))
        with pytest.raises(bech32.Bech32Error, match="padding"):
            bech32.decode("a1l" + tail)
        assert bech32.decode(text) == ("a", b"")


# -- keys -------------------------------------------------------------------------

class TestKeys:
    def test_known_identity(self):
        identity = X25519Identity.from_text(KAT_IDENTITY)
        assert identity.text == KAT_IDENTITY
        assert identity.recipient.text == KAT_RECIPIENT
        assert identity.recipient.raw.hex().startswith("132c442b")
        assert identity.recipient.raw.hex().endswith("9993f472")
        assert X25519Recipient.from_text(KAT_RECIPIENT) == identity.recipient
        assert len(KAT_IDENTITY) == 74 and len(KAT_RECIPIENT) == 62

    def test_generate_round_trip(self):
        identity = X25519Identity.generate()
        text = identity.text
        assert text.startswith("AGE-SECRET-KEY-1") and text == text.upper()
        assert X25519Identity.from_text(text) == identity
        assert identity.recipient.text.startswith("age1")
        assert X25519Identity.generate() != identity

    def test_canonical_case_only(self):
        with pytest.raises(KeyFormatError):
            X25519Identity.from_text(KAT_IDENTITY.lower())
        with pytest.raises(KeyFormatError):
            X25519Recipient.from_text(KAT_RECIPIENT.upper())

    def test_wrong_kinds(self):
        with pytest.raises(KeyFormatError):
            X25519Identity.from_text(KAT_RECIPIENT)
        with pytest.raises(KeyFormatError):
            X25519Recipient.from_text(KAT_IDENTITY)
        short = bech32.encode("age", bytes(31))
        with pytest.raises(KeyFormatError, match="not an X25519"):
            X25519Recipient.from_text(short)

    def test_secret_never_in_repr_or_errors(self):
        identity = X25519Identity.from_text(KAT_IDENTITY)
        body = KAT_IDENTITY[len("AGE-SECRET-KEY-1"):]
        assert body not in repr(identity) and body not in str(identity)
        bad = KAT_IDENTITY[:-1] + ("A" if KAT_IDENTITY[-1] != "A" else "C")
        for text in (bad, KAT_IDENTITY + " ", bad + "\n"):
            with pytest.raises(KeyFormatError) as info:
                read_identities(text)
            assert body[:10] not in str(info.value)
        with pytest.raises(KeyFormatError) as info:
            X25519Identity.from_text(bad)
        assert body[:10] not in str(info.value)


class TestIdentityFile:
    def test_keygen_layout(self):
        identity = X25519Identity.from_text(KAT_IDENTITY)
        when = dt.datetime(2026, 12, 1, 11, 48, 16, 123, tzinfo=dt.timezone.utc)
        text = identity_file_text(identity, when)
        assert text == ("# created: 2026-12-01T11:48:16Z\n"
                        f"# public key: {KAT_RECIPIENT}\n{KAT_IDENTITY}\n")
        assert read_identities(text) == [identity]
        with pytest.raises(ValueError):
            identity_file_text(identity, dt.datetime(2026, 1, 1))
        offset = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        assert "# created: 2026-01-01T00:00:00+01:00\n" in identity_file_text(identity, offset)

    def test_several_keys_comments_crlf(self):
        a, b = X25519Identity.generate(), X25519Identity.generate()
        text = f"# one\n\n{a.text}\r\n#{b.text}\r\n\r\n{b.text}"
        assert read_identities(text) == [a, b]
        assert read_identities(text.encode()) == [a, b]

    @pytest.mark.parametrize("line, what", [
        (" " + KAT_IDENTITY, "whitespace"),
        (KAT_IDENTITY + "\t", "whitespace"),
        ("  # indented comment", "whitespace"),
        ("AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "plugin"),
        ("AGE-SECRET-KEY-PQ-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "post-quantum"),
        ("AGE-SECRET-KEY-1QQQQ", "malformed"),
        ("ssh-ed25519 AAAA", "not an age identity"),
    ])
    def test_bad_line_named_not_echoed(self, line, what):
        text = f"# created: x\n\n{line}\n"
        with pytest.raises(KeyFormatError, match=what) as info:
            read_identities(text)
        assert "line 3" in str(info.value)
        assert line.strip()[6:] not in str(info.value)

    def test_limits_and_encoding(self):
        with pytest.raises(KeyFormatError, match="larger"):
            read_identities("#" * (16 << 20) + "\n" + KAT_IDENTITY)
        assert read_identities("#" * ((16 << 20) - 76) + "\n" + KAT_IDENTITY + "\n")
        with pytest.raises(KeyFormatError, match="UTF-8"):
            read_identities(b"#\xff\n" + KAT_IDENTITY.encode())
        with pytest.raises(KeyFormatError, match="no identity"):
            read_identities("# nothing\n\n")

    def test_recipients_file(self):
        a, b = X25519Identity.generate().recipient, X25519Identity.generate().recipient
        text = f"# backups\n{a.text}\r\n\n# old\n{b.text}\n"
        assert read_recipients(text) == [a, b]
        for bad, what in ((f" {a.text}", "whitespace"), ("age1pq1qqqq", "post-quantum"),
                          ("ssh-ed25519 AAAA", "SSH"), (a.text.upper(), "not an age"),
                          ("age1qqqq", "malformed")):
            with pytest.raises(KeyFormatError, match=what) as info:
                read_recipients(f"{a.text}\n{bad}\n")
            assert "line 2" in str(info.value)
        with pytest.raises(KeyFormatError, match="no recipient"):
            read_recipients("\n# none\n")

    def test_write_identity_file_private(self, tmp_path):
        identity = X25519Identity.generate()
        path = tmp_path / "key.txt"
        write_identity_file(path, identity)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert read_identities(path.read_text()) == [identity]
        with pytest.raises(FileExists):
            write_identity_file(path, X25519Identity.generate())
        assert read_identities(path.read_text()) == [identity]
        target = tmp_path / "target"
        target.write_text("untouched")
        (tmp_path / "link").symlink_to(target)
        with pytest.raises(FileExists):
            write_identity_file(tmp_path / "link", identity)
        assert target.read_text() == "untouched"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["key.txt", "link", "target"]


# -- the header: known answers ---------------------------------------------------

class TestHeaderKnownAnswers:
    def test_x25519_header_bytes(self):
        made = kat_header()
        assert made.header == KAT_HEADER and len(made.header) == 168
        assert made.nonce == KAT_NONCE
        assert made.payload_key == KAT_PAYLOAD_KEY

    def test_share_and_wrap_key(self):
        e = X25519PrivateKey.from_private_bytes(KAT_EPHEMERAL)
        assert e.public_key().public_bytes_raw() == KAT_SHARE
        recipient = X25519Recipient.from_text(KAT_RECIPIENT).raw
        shared = e.exchange(X25519PublicKey.from_public_bytes(recipient))
        wrap_key = HKDF(hashes.SHA256(), 32, KAT_SHARE + recipient,
                        b"age-encryption.org/v1/X25519").derive(shared)
        assert wrap_key == KAT_WRAP_KEY
        stanza = parse(KAT_HEADER).stanzas[0]
        assert stanza.args == (b64(KAT_SHARE),)
        assert ChaCha20Poly1305(KAT_WRAP_KEY).decrypt(bytes(12), stanza.body, None) \
            == KAT_FILE_KEY

    @pytest.mark.parametrize("plaintext, size, tag", [
        (b"age test vector\n", 48, "5cb8a125dc41913772cc228c8d1d7e53"),
        (b"a" * 65536, 65568, "824ee9d02f8f45d933af48c50440dc93"),
        (b"", 32, "9e192adbbc8f3e48002730b8e0864f53"),
    ])
    def test_payloads(self, plaintext, size, tag):
        payload = KAT_NONCE + seal_payload(KAT_PAYLOAD_KEY, plaintext)
        assert len(payload) == size
        assert payload[-16:].hex() == tag
        if plaintext == b"age test vector\n":
            assert payload[16:32].hex() == "f79759ffd43b928c55c61c03add23d3c"

    def test_three_chunk_payload(self):
        payload = KAT_NONCE + seal_payload(KAT_PAYLOAD_KEY, b"a" * 131073)
        assert len(payload) == 131137
        tags = [payload[16:][i:i + CHUNK + 16][-16:].hex() for i in range(0, 131121, CHUNK + 16)]
        assert tags[0].startswith("84218e89") and tags[0].endswith("99e083f8")
        assert tags[1].startswith("57966f5b") and tags[1].endswith("ccb6dd17")
        assert tags[2].startswith("214bb6e8") and tags[2].endswith("64969819")
        digest = hashlib.sha256(KAT_HEADER + payload).hexdigest()
        assert digest.startswith("a5721357") and digest.endswith("49d2b59a")

    def test_file_digest(self):
        data = KAT_HEADER + KAT_NONCE + seal_payload(KAT_PAYLOAD_KEY, b"age test vector\n")
        digest = hashlib.sha256(data).hexdigest()
        assert digest.startswith("0264d2cd") and digest.endswith("79e3e868")

    def test_scrypt_vector(self):
        stanza = ah.wrap_scrypt("pw", KAT_FILE_KEY, 10, salt=bytes(16))
        made = ah.assemble(KAT_FILE_KEY, [stanza], KAT_NONCE)
        assert made.header == b"age-encryption.org/v1\n" + KAT_SCRYPT_TAIL
        data = made.header + made.nonce + seal_payload(made.payload_key, b"x")
        assert len(data) == 183
        assert open_file(data, passphrase="pw") == (made.payload_key, len(made.header))
        assert open_file(data, passphrase=b"pw")[0] == made.payload_key

    def test_unwrap_known_header(self):
        identity = X25519Identity.from_text(KAT_IDENTITY)
        key, length = open_file(KAT_HEADER + KAT_NONCE, [identity])
        assert key == KAT_PAYLOAD_KEY and length == 168


# -- the header: writing and reading --------------------------------------------

class TestHeaderRoundTrip:
    def test_recipients(self):
        ids = [X25519Identity.generate() for _ in range(3)]
        made = new_header([i.recipient for i in ids])
        assert len(made.nonce) == 16 and len(made.payload_key) == 32
        assert made.header.count(b"\n-> X25519 ") == 3
        for identity in ids:
            assert open_file(made.header + made.nonce, [identity])[0] == made.payload_key
        other = new_header([ids[0].recipient])
        assert other.payload_key != made.payload_key and other.nonce != made.nonce

    def test_passphrase(self):
        made = new_header(passphrase="correct horse", work_factor=10)
        parsed = parse(made.header)
        assert [s.type for s in parsed.stanzas] == ["scrypt"]
        assert parsed.stanzas[0].args[1] == "10"
        assert open_file(made.header + made.nonce, passphrase="correct horse")[0] \
            == made.payload_key

    def test_default_work_factor(self):
        assert ah.DEFAULT_WORK_FACTOR == 18
        stanza = ah.wrap_scrypt("pw", KAT_FILE_KEY, work_factor=1)
        assert stanza.args[1] == "1"

    def test_bad_arguments(self):
        r = X25519Identity.generate().recipient
        with pytest.raises(ValueError, match="not both"):
            new_header([r], passphrase="pw")
        with pytest.raises(ValueError):
            new_header([])
        with pytest.raises(ValueError, match="empty passphrase"):
            new_header(passphrase="")
        for wf in (0, 23, "18"):
            with pytest.raises(ValueError):
                new_header(passphrase="pw", work_factor=wf)
        for bad in (ah.Stanza("", (), b""), ah.Stanza("a b", (), b""),
                    ah.Stanza("x", ("",), b""), ah.Stanza("x", ("\u00e9",), b"")):
            with pytest.raises(ValueError, match="printable ASCII"):
                ah.assemble(KAT_FILE_KEY, [bad], KAT_NONCE)
        with pytest.raises(ValueError, match="low order"):
            new_header([X25519Recipient(bytes(32))])
        with pytest.raises(ValueError):
            unwrap(parse(KAT_HEADER), KAT_NONCE)

    def test_reads_exactly_the_header(self):
        rest = KAT_NONCE + b"payload"
        f = io.BytesIO(KAT_HEADER + rest)
        header = read_header(f.read)
        assert header.length == 168 and f.read() == rest
        assert header.mac_input == KAT_HEADER[:KAT_HEADER.rindex(b"---") + 3]
        assert len(header.mac) == 32

    def test_reads_are_few_and_bounded(self):
        asked = []
        f = io.BytesIO(KAT_HEADER + KAT_NONCE)

        def read(n: int) -> bytes:
            asked.append(n)
            return f.read(n)

        read_header(read)
        assert f.tell() == 168 and len(asked) < 10 and max(asked) <= 48

    def test_one_byte_reads(self):
        f = io.BytesIO(KAT_HEADER + KAT_NONCE)
        header = read_header(lambda n: f.read(1))
        assert read_nonce(lambda n: f.read(1)) == KAT_NONCE
        assert header == parse(KAT_HEADER)

    def test_body_lengths(self):
        # Bodies of 0, 47, 48, 49 and 96 bytes in unknown stanzas: each must
        # survive the round trip, the 48·k ones through their empty last line.
        identity = X25519Identity.generate()
        stanzas = [ah.Stanza("other", ("a", "b"), bytes(range(n))) for n in (0, 47, 48, 49, 96)]
        stanzas.append(ah.wrap_x25519(identity.recipient, KAT_FILE_KEY))
        made = ah.assemble(KAT_FILE_KEY, stanzas, KAT_NONCE)
        assert b"-> other a b\n\n" in made.header
        parsed = parse(made.header)
        assert [s.body for s in parsed.stanzas[:5]] == [s.body for s in stanzas[:5]]
        assert open_file(made.header + made.nonce, [identity])[0] == made.payload_key

    def test_unknown_stanza_first_is_skipped(self):
        identity = X25519Identity.generate()
        stanzas = [ah.Stanza("mlkem768x25519", ("x",), os.urandom(80)),
                   ah.wrap_x25519(identity.recipient, KAT_FILE_KEY)]
        made = ah.assemble(KAT_FILE_KEY, stanzas, KAT_NONCE)
        assert open_file(made.header + made.nonce, [identity])[0] == made.payload_key


# -- the header: rejections ------------------------------------------------------

def reject(data: bytes, match: str, identities=None, passphrase=None, **kw) -> DecryptionError:
    if identities is None and passphrase is None:
        identities = [X25519Identity.from_text(KAT_IDENTITY)]
    with pytest.raises(DecryptionError, match=match) as info:
        open_file(data + KAT_NONCE, identities or (), passphrase, **kw)
    assert exit_code_for(info.value) == EXIT_ARCHIVE
    return info.value


def kat_lines() -> list[bytes]:
    return KAT_HEADER.split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


class TestHeaderRejections:
    def test_flipped_mac_bit(self):
        mac = bytearray(parse(KAT_HEADER).mac)
        mac[5] ^= 0x01
        lines = kat_lines()
        lines[3] = b"--- " + b64(bytes(mac)).encode()
        reject(join(lines), "header MAC mismatch")

    def test_changed_stanza_breaks_mac(self):
        identity = X25519Identity.from_text(KAT_IDENTITY)
        made = ah.assemble(KAT_FILE_KEY, [ah.Stanza("x", ("1",), b""),
                                          ah.wrap_x25519(identity.recipient, KAT_FILE_KEY)],
                           KAT_NONCE)
        reject(made.header.replace(b"-> x 1", b"-> x 2"), "header MAC mismatch")

    def test_non_canonical_share(self):
        lines = kat_lines()
        assert lines[1].endswith(b"ogk")
        lines[1] = lines[1][:-1] + b"l"       # same bytes, unused bits set
        reject(join(lines), "malformed age header: invalid X25519 share")

    def test_non_canonical_body_and_mac(self):
        lines = kat_lines()
        body = lines[2]
        last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(
            chr(body[-1]))
        lines[2] = body[:-1] + bytes([b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      b"0123456789+/"[last ^ 1]])
        reject(join(lines), "malformed age header: invalid stanza body")
        lines = kat_lines()
        lines[3] = lines[3][:-1] + bytes([lines[3][-1] ^ 0x01])
        assert lines[3] != kat_lines()[3]
        reject(join(lines), "malformed age header")

    def test_padding_rejected(self):
        lines = kat_lines()
        lines[1] += b"="
        reject(join(lines), "malformed age header")
        lines = kat_lines()
        lines[2] += b"="
        reject(join(lines), "malformed age header")

    @pytest.mark.parametrize("where", [0, 1, 2, 3])
    def test_carriage_return(self, where):
        lines = kat_lines()
        lines[where] += b"\r"
        reject(join(lines), "malformed age header: carriage return")

    @pytest.mark.parametrize("line", [b"-> X25519  pOCS", b"-> X25519 pOCS ", b"->  X25519",
                                      b"->", b"-> ", b"->X25519 pOCS", b"-> X25519 p\x7fCS",
                                      b"-> X25519 p\xc3\xa9"])
    def test_bad_argument_lines(self, line):
        lines = kat_lines()
        lines[1] = line
        reject(join(lines), "malformed age header")

    def test_long_body_line(self):
        data = header_with(b"-> other\n" + b"A" * 68 + b"\n\n")
        reject(data, "malformed age header: line too long")

    def test_missing_empty_line_after_48_byte_body(self):
        body = b64(bytes(48)).encode()
        assert len(body) == 64
        reject(header_with(b"-> other\n" + body + b"\n"), "malformed age header")
        # With it, the header parses (and then no identity matches).
        reject(header_with(b"-> other\n" + body + b"\n\n"), "no identity matches")

    @pytest.mark.parametrize("first, match", [
        (b"age-encryption.org/v2", "unsupported version"),
        (b"age-encryption.org/v1 ", "unsupported version"),
        (b"age-encryption.org/", "unsupported version"),
        (b"AGE-ENCRYPTION.ORG/v1", "not an age file"),
        (b"-----BEGIN AGE ENCRYPTED FILE-----", "armored"),
    ])
    def test_version_line(self, first, match):
        lines = kat_lines()
        lines[0] = first
        reject(join(lines), match)

    def test_mac_line(self):
        lines = kat_lines()
        for bad in (lines[3] + b" x", b"---", b"--- ", b"----" + lines[3][3:],
                    b"--- " + b64(bytes(31)).encode(), b"---  " + lines[3][4:]):
            reject(join(lines[:3] + [bad]), "malformed age header")

    def test_no_stanza_truncation_and_garbage(self):
        reject(b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n", "no stanzas")
        for cut in (0, 10, 22, 30, 80, 120, 167):
            with pytest.raises(DecryptionError, match="malformed age header: truncated"):
                parse(KAT_HEADER[:cut])
        reject(b"age-encryption.org/v1\nhello\n", "expected a stanza")
        reject(b"age-encryption.org/v1\n->\n", "malformed age header")
        reject(b"\x00" * 300, "not an age file|too long")

    def test_size_and_stanza_caps(self):
        with pytest.raises(DecryptionError, match="longer than 100 bytes"):
            parse(KAT_HEADER, max_size=100)
        assert parse(KAT_HEADER, max_size=168).length == 168
        two = header_with(b"-> a\n\n-> b\n\n")
        with pytest.raises(DecryptionError, match="more than 1 stanzas"):
            parse(two, max_stanzas=1)
        endless = io.BytesIO(b"age-encryption.org/v1\n-> " + b"a" * (2 << 20))
        with pytest.raises(DecryptionError, match="longer than"):
            read_header(endless.read)
        assert endless.tell() <= (1 << 20) + 48

    def test_x25519_stanza_shape(self):
        share = b64(KAT_SHARE).encode()
        body32 = b64(bytes(32)).encode()
        reject(header_with(b"-> X25519 " + share + b" extra\n" + body32 + b"\n"),
               "exactly one argument")
        reject(header_with(b"-> X25519\n" + body32 + b"\n"), "exactly one argument")
        reject(header_with(b"-> X25519 " + share + b"\n" + b64(bytes(33)).encode() + b"\n"),
               "body must be 32 bytes")
        reject(header_with(b"-> X25519 " + b64(bytes(31)).encode() + b"\n" + body32 + b"\n"),
               "invalid X25519 share")

    def test_low_order_share(self):
        zero = b64(bytes(32)).encode()
        reject(header_with(b"-> X25519 " + zero + b"\n" + zero + b"\n"), "low-order")
        one = b64(b"\x01" + bytes(31)).encode()          # u = 1: order 4
        reject(header_with(b"-> X25519 " + one + b"\n" + zero + b"\n"), "low-order")

    def test_wrong_identity(self):
        reject(KAT_HEADER, "no identity matches", identities=[X25519Identity.generate()])
        reject(KAT_HEADER, "not encrypted with a passphrase", passphrase="pw")

    def scrypt_file(self, passphrase: str = "pw") -> bytes:
        stanza = ah.wrap_scrypt(passphrase, KAT_FILE_KEY, 10, salt=bytes(16))
        return ah.assemble(KAT_FILE_KEY, [stanza], KAT_NONCE).header

    def test_wrong_passphrase_not_echoed(self):
        err = reject(self.scrypt_file("secret-pass"), "incorrect passphrase",
                     passphrase="other-pass")
        assert "pass" not in str(err).replace("passphrase", "")
        reject(self.scrypt_file(), "encrypted with a passphrase",
               identities=[X25519Identity.from_text(KAT_IDENTITY)])

    @pytest.mark.parametrize("log_n", [b"010", b"0", b"+10", b"1e1", b"10.0", b"-1", b"x"])
    def test_scrypt_log_n_syntax(self, log_n):
        data = self.scrypt_file().replace(b" 10\n", b" " + log_n + b"\n")
        reject(data, "malformed age header: invalid scrypt work factor", passphrase="pw")

    @pytest.mark.parametrize("log_n", [b"23", b"64", b"99999999999999999999"])
    def test_scrypt_log_n_cap(self, log_n):
        data = self.scrypt_file().replace(b" 10\n", b" " + log_n + b"\n")
        start = time.monotonic()
        err = reject(data, "passphrase: scrypt work factor .* exceeds the limit",
                     passphrase="pw")
        assert time.monotonic() - start < 1
        assert "pw" not in str(err)
        # The caller's cap is honoured too.
        reject(self.scrypt_file(), "exceeds the limit", passphrase="pw", max_work_factor=9)

    def test_scrypt_stanza_shape(self):
        data = self.scrypt_file()
        salt = b"AAAAAAAAAAAAAAAAAAAAAA"
        reject(data.replace(salt + b" 10", salt), "exactly two arguments", passphrase="pw")
        reject(data.replace(b" 10\n", b" 10 x\n"), "exactly two arguments", passphrase="pw")
        reject(data.replace(salt, b64(bytes(15)).encode()), "invalid scrypt salt",
               passphrase="pw")
        reject(data.replace(salt, b64(bytes(17)).encode()), "invalid scrypt salt",
               passphrase="pw")
        lines = data.split(b"\n")
        lines[2] = b64(bytes(33)).encode()
        reject(b"\n".join(lines), "body must be 32 bytes", passphrase="pw")

    def test_mixed_scrypt_and_x25519(self):
        identity = X25519Identity.from_text(KAT_IDENTITY)
        stanzas = [ah.wrap_scrypt("pw", KAT_FILE_KEY, 10),
                   ah.wrap_x25519(identity.recipient, KAT_FILE_KEY)]
        made = ah.assemble(KAT_FILE_KEY, stanzas, KAT_NONCE)
        reject(made.header, "scrypt stanza must be the only stanza", passphrase="pw")
        reject(made.header, "scrypt stanza must be the only stanza", identities=[identity])
        two = ah.assemble(KAT_FILE_KEY, stanzas[:1] * 2, KAT_NONCE)
        reject(two.header, "only stanza", passphrase="pw")

    def test_every_single_byte_change_is_caught(self):
        # Each byte of the header is covered by the MAC or is the MAC: any
        # change, deletion or insertion must fail as a DecryptionError (and
        # never as an IndexError, UnicodeDecodeError...).
        identity = [X25519Identity.from_text(KAT_IDENTITY)]
        variants = []
        for i in range(len(KAT_HEADER)):
            for delta in (0x01, 0x20, 0x80):
                variants.append(KAT_HEADER[:i] + bytes([KAT_HEADER[i] ^ delta])
                                + KAT_HEADER[i + 1:])
            variants.append(KAT_HEADER[:i] + KAT_HEADER[i + 1:])
            variants.append(KAT_HEADER[:i] + b"\n" + KAT_HEADER[i:])
            variants.append(KAT_HEADER[:i] + b"A" + KAT_HEADER[i:])
        for data in variants:
            if data.startswith(KAT_HEADER):
                continue        # an LF inserted beside the last one: a payload change
            with pytest.raises(DecryptionError):
                open_file(data + KAT_NONCE + b"payload", identity)

    def test_truncated_nonce(self):
        f = io.BytesIO(KAT_HEADER + KAT_NONCE[:5])
        read_header(f.read)
        with pytest.raises(DecryptionError, match="nonce"):
            read_nonce(f.read)
        with pytest.raises(DecryptionError, match="nonce"):
            unwrap(parse(KAT_HEADER), b"short", [X25519Identity.from_text(KAT_IDENTITY)])


# -- interop with age 1.1.1 and rage (pyrage), run for real ---------------------

def run(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True,
                          timeout=120).stdout


def run_on_tty(args: list[str], answers: list[str], timeout: float = 120) -> int:
    """Run `args` with a pseudo-terminal as its controlling terminal (age reads
    passphrases from /dev/tty), typing one answer at each passphrase prompt."""
    master, slave = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=take_terminal)
    os.close(slave)
    seen = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
            prompts = len(re.findall(rb"passphrase[^\n]*: ", seen, re.IGNORECASE))
            if prompts > answered and answered < len(answers):
                os.write(master, answers[answered].encode() + b"\n")
                answered += 1
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


class TestInterop:
    def test_our_identity_file_with_age(self, tmp_path):
        identity = X25519Identity.generate()
        key = tmp_path / "key.txt"
        write_identity_file(key, identity)
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert run("age-keygen", "-y", str(key)).decode().strip() == identity.recipient.text
        encrypted = run("age", "-r", identity.recipient.text, data=b"hello from age\n")
        assert run("age", "-d", "-i", str(key), data=encrypted) == b"hello from age\n"

    def test_age_keygen_identity_read_by_us(self, tmp_path):
        key = tmp_path / "keygen.txt"
        run("age-keygen", "-o", str(key))
        identities = read_identities(key.read_bytes())
        public = run("age-keygen", "-y", str(key)).decode().strip()
        assert [i.recipient.text for i in identities] == [public]
        assert f"# public key: {public}\n" in key.read_text()

    def test_our_header_decrypts_with_age_and_rage(self, tmp_path):
        identity = X25519Identity.generate()
        key = tmp_path / "key.txt"
        write_identity_file(key, identity)
        plain = os.urandom(CHUNK + 1000)
        made = new_header([identity.recipient, X25519Identity.generate().recipient])
        data = made.header + made.nonce + seal_payload(made.payload_key, plain)
        assert run("age", "-d", "-i", str(key), data=data) == plain
        rage_id = pyrage.x25519.Identity.from_str(identity.text)
        assert pyrage.decrypt(data, [rage_id]) == plain

    def test_known_header_decrypts_with_age_and_rage(self, tmp_path):
        key = tmp_path / "kat.txt"
        key.write_text(KAT_IDENTITY + "\n")
        data = KAT_HEADER + KAT_NONCE + seal_payload(KAT_PAYLOAD_KEY, b"age test vector\n")
        assert run("age", "-d", "-i", str(key), data=data) == b"age test vector\n"
        assert pyrage.decrypt(data, [pyrage.x25519.Identity.from_str(KAT_IDENTITY)]) \
            == b"age test vector\n"

    @pytest.mark.parametrize("size", [0, 10, CHUNK, CHUNK + 1])
    def test_age_output_unwrapped_by_us(self, size):
        identity = X25519Identity.generate()
        plain = os.urandom(size)
        data = run("age", "-r", identity.recipient.text, data=plain)
        key, length = open_file(data, [identity])
        assert length == 168
        assert len(data) == {0: 200, 10: 210, CHUNK: 65736, CHUNK + 1: 65753}[size]
        assert open_first_chunk(key, data[length + 16:]) == plain[:CHUNK]

    def test_rage_output_unwrapped_by_us(self):
        ids = [X25519Identity.generate() for _ in range(2)]
        plain = b"from rage\n" * 100
        data = pyrage.encrypt(plain, [pyrage.x25519.Recipient.from_str(i.recipient.text)
                                      for i in ids])
        for identity in ids:
            key, length = open_file(data, [identity])
            assert open_first_chunk(key, data[length + 16:]) == plain

    def test_rage_passphrase_unwrapped_by_us(self):
        plain = b"secret payload"
        data = pyrage.passphrase.encrypt(plain, "hunter2 hunter2")
        key, length = open_file(data, passphrase="hunter2 hunter2")
        assert open_first_chunk(key, data[length + 16:]) == plain
        with pytest.raises(DecryptionError, match="incorrect passphrase"):
            open_file(data, passphrase="hunter3")

    def test_our_passphrase_header_with_rage(self):
        made = new_header(passphrase="pw pw pw", work_factor=12)
        data = made.header + made.nonce + seal_payload(made.payload_key, b"scrypt me")
        assert pyrage.passphrase.decrypt(data, "pw pw pw") == b"scrypt me"

    def test_age_passphrase_both_ways(self, tmp_path):
        plain_path = tmp_path / "plain"
        plain_path.write_bytes(b"typed at a terminal\n")
        out = tmp_path / "out.age"
        rc = run_on_tty(["age", "-p", "-o", str(out), str(plain_path)], ["tty pass", "tty pass"])
        assert rc == 0 and out.exists()
        data = out.read_bytes()
        key, length = open_file(data, passphrase="tty pass")
        assert open_first_chunk(key, data[length + 16:]) == b"typed at a terminal\n"
        assert parse(data).stanzas[0].args[1] == "18"     # what age writes

        made = new_header(passphrase="ours", work_factor=10)
        ours = tmp_path / "ours.age"
        ours.write_bytes(made.header + made.nonce + seal_payload(made.payload_key, b"ours\n"))
        back = tmp_path / "back"
        rc = run_on_tty(["age", "-d", "-o", str(back), str(ours)], ["ours"])
        assert rc == 0 and back.read_bytes() == b"ours\n"

    def test_age_and_rage_reject_what_we_reject(self, tmp_path):
        # A spot check that the strictness matches: a flipped MAC bit.
        key = tmp_path / "kat.txt"
        key.write_text(KAT_IDENTITY + "\n")
        lines = kat_lines()
        mac = bytearray(parse(KAT_HEADER).mac)
        mac[0] ^= 0x80
        lines[3] = b"--- " + b64(bytes(mac)).encode()
        data = join(lines) + KAT_NONCE + seal_payload(KAT_PAYLOAD_KEY, b"x")
        proc = subprocess.run(["age", "-d", "-i", str(key)], input=data,
                              capture_output=True, timeout=60)
        assert proc.returncode != 0
        with pytest.raises(pyrage.DecryptError):
            pyrage.decrypt(data, [pyrage.x25519.Identity.from_str(KAT_IDENTITY)])
        with pytest.raises(DecryptionError, match="MAC"):
            open_file(data, [X25519Identity.from_text(KAT_IDENTITY)])


def test_module_exports():
    import ntdsbackup.crypto as crypto

    for name in crypto.__all__:
        assert hasattr(crypto, name)
    assert Path(crypto.__file__).parent.name == "crypto"


def test_a_reader_refuses_scrypt_work_above_its_limit_unread(monkeypatch):
    """A hostile header may ask for scrypt at age's 2^22 (4 GiB): refused by
    default before any scrypt runs; 2^20 is the largest accepted."""
    from ntdsbackup.crypto import age_header as ah

    def no_scrypt(*args):
        raise AssertionError("scrypt ran")

    assert ah.READ_WORK_FACTOR == 20
    made = ah.assemble(KAT_FILE_KEY, [ah.wrap_scrypt("pw", KAT_FILE_KEY, work_factor=1)],
                       b"\xaa" * 16)
    monkeypatch.setattr(ah, "_scrypt_key", no_scrypt)
    for wf in (21, 22):
        text = made.header.replace(b" 1\n", f" {wf}\n".encode(), 1)
        header = ah.read_header(io.BytesIO(text).read)
        with pytest.raises(DecryptionError, match="exceeds the limit"):
            ah.unwrap(header, b"\xaa" * 16, passphrase="pw")
