"""AgeRanges: the plaintext of an age file by positioned reads of its stored
bytes.  Round trips against files of stock age (every chunk-boundary size)
and of our own backup -r; the same bytes as the engine's reader
(envelope.Plaintext) at random offsets; and the damage the engine refuses,
refused at open or at the chunk, with the engine's exception and words."""

from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from ntdsbackup.archive.age_ranges import CHUNK_SIZE, SEALED_SIZE, AgeRanges
from ntdsbackup.archive.envelope import DecryptionKeys, open_plaintext
from ntdsbackup.archive.frameinput import ENCRYPTED_NEEDS_A_KEY
from ntdsbackup.archive.ops import read_documents
from ntdsbackup.crypto import X25519Identity
from ntdsbackup.errors import DecryptionError
from ntdsbackup.phases.backup import backup

DAMAGED = "the encrypted archive is damaged or was altered: "


class Stored:
    """A pread over bytes in memory that counts what it was asked for."""

    def __init__(self, data: bytes):
        self.data, self.calls, self.bytes = data, 0, 0

    def __call__(self, size: int, offset: int) -> bytes:
        self.calls += 1
        out = self.data[offset:offset + size]
        self.bytes += len(out)
        return out


@pytest.fixture(scope="module")
def identity() -> X25519Identity:
    return X25519Identity.generate()


@pytest.fixture(scope="module")
def keys(identity) -> DecryptionKeys:
    return DecryptionKeys([identity])


def _stock_age(plain: bytes, identity: X25519Identity, tmp_path) -> bytes:
    if shutil.which("age") is None:
        pytest.skip("stock age is not installed")
    src = tmp_path / "plain"
    src.write_bytes(plain)
    out = tmp_path / "sealed.age"
    subprocess.run(["age", "-r", identity.recipient.text, "-o", out, src], check=True)
    return out.read_bytes()


def _payload_start(data: bytes) -> int:
    mac = data.index(b"\n--- ") + 1
    return data.index(b"\n", mac) + 1 + 16


def _engine(data: bytes, keys: DecryptionKeys, tmp_path, name: str = "engine.age"):
    """What the engine's reader makes of the same bytes: (plaintext, None)
    or (None, the exception it raised), opening and reading everything."""
    path = tmp_path / name
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        plain = open_plaintext(fd, keys)
        assert plain is not None
        with plain:
            return plain.read(), None
    except DecryptionError as exc:
        return None, exc
    finally:
        os.close(fd)


def _ours(data: bytes, keys: DecryptionKeys | None):
    try:
        with AgeRanges(Stored(data), len(data), keys) as plain:
            return plain.read(), None
    except DecryptionError as exc:
        return None, exc


SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE - 1,
         2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 12345]


@pytest.mark.parametrize("size", SIZES)
def test_every_chunk_boundary_size_round_trips(size, identity, keys, tmp_path):
    plain = random.Random(size).randbytes(size)
    data = _stock_age(plain, identity, tmp_path)
    stored = Stored(data)
    with AgeRanges(stored, len(data), keys) as reader:
        assert reader.size == size and reader.seekable() and reader.readable()
        assert reader.nchunks == max(1, -(-size // CHUNK_SIZE))
        assert reader.header_size == reader.payload_start == _payload_start(data)
        assert len(reader.payload_key) == 32
        assert reader.sealed_size == len(data) - reader.header_size
        assert reader.read() == plain and reader.tell() == size
        assert reader.read(10) == b""
        assert reader.pread(7, size) == b"" and reader.pread(10**12, 0) == plain
        if size:
            assert reader.seek(-1, os.SEEK_END) == size - 1 and reader.read(5) == plain[-1:]
            half = size // 2
            reader.seek(half)
            buf = bytearray(300)
            n = reader.readinto(buf)
            assert bytes(buf[:n]) == plain[half:half + 300] and reader.tell() == half + n
    assert _engine(data, keys, tmp_path) == (plain, None)


def test_the_final_chunk_is_read_and_authenticated_at_open(identity, keys, tmp_path):
    plain = random.Random(1).randbytes(40 * CHUNK_SIZE + 99)
    data = _stock_age(plain, identity, tmp_path)
    stored = Stored(data)
    reader = AgeRanges(stored, len(data), keys)
    start = _payload_start(data)
    # The header (its parser reads a little ahead), the nonce and the
    # final chunk: nothing else.
    assert stored.bytes <= start + 48 + (len(data) - start - 40 * SEALED_SIZE)
    assert reader.stored_read == stored.bytes
    before = stored.bytes
    assert reader.pread(10, 20 * CHUNK_SIZE + 5) == plain[20 * CHUNK_SIZE + 5:][:10]
    assert stored.bytes - before == SEALED_SIZE              # exactly the one chunk
    assert reader.pread(10, 20 * CHUNK_SIZE + 100) == plain[20 * CHUNK_SIZE + 100:][:10]
    assert stored.bytes - before == SEALED_SIZE              # then from the cache


def test_the_cache_stays_bounded_on_a_full_read(identity, keys, tmp_path):
    plain = random.Random(2).randbytes(100 * CHUNK_SIZE + 1)
    data = _stock_age(plain, identity, tmp_path)
    stored = Stored(data)
    with AgeRanges(stored, len(data), keys, cache_chunks=3) as reader:
        got = bytearray()
        while block := reader.read(100_000):
            got += block
            assert len(reader._cache) <= 3
        assert bytes(got) == plain
        # A read bigger than the cache is served whole, each chunk read once.
        before = stored.bytes
        assert reader.pread(50 * CHUNK_SIZE, 10 * CHUNK_SIZE) == \
            plain[10 * CHUNK_SIZE:60 * CHUNK_SIZE]
        assert stored.bytes - before == 50 * SEALED_SIZE and len(reader._cache) <= 3
    with pytest.raises(ValueError, match="closed"):
        reader.pread(1, 0)
    with pytest.raises(ValueError):
        AgeRanges(Stored(data), len(data), keys, cache_chunks=0)


@pytest.fixture(scope="module")
def own_archive(tmp_path_factory, identity):
    """An archive of a small emulated DC by our own backup, encrypted to
    `identity` (several MiB: dozens of chunks)."""
    from ntdsbackup.emulator import EmulatedDC

    root = tmp_path_factory.mktemp("emu")
    old = os.environ.get("NTDSB_EMU_ROOT")
    os.environ["NTDSB_EMU_ROOT"] = str(root)
    try:
        dc = EmulatedDC("AGE1", root)
        dc.create(6 << 20, log_size=256 << 10, log_count=4)
        path = root / "AGE1.tar.zst.age"
        backup("AGE1", path, truncate=False, recipients=[identity.recipient],
               chunk_size=128 << 10)
    finally:
        if old is None:
            os.environ.pop("NTDSB_EMU_ROOT", None)
        else:
            os.environ["NTDSB_EMU_ROOT"] = old
    return path


def test_an_archive_of_our_backup_reads_as_the_engine_reads_it(own_archive, keys):
    data = own_archive.read_bytes()
    fd = os.open(own_archive, os.O_RDONLY)
    try:
        engine = open_plaintext(fd, keys)
        assert engine is not None
        with engine, AgeRanges(lambda n, off: os.pread(fd, n, off),
                               os.fstat(fd).st_size, keys) as ours:
            engine.seek(0, os.SEEK_END)
            assert ours.size == engine.tell() > 20 * CHUNK_SIZE
            rng = random.Random(5)
            for _ in range(200):
                offset = rng.randrange(ours.size + 10)
                n = rng.choice([1, 15, 4096, CHUNK_SIZE - 1, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
                assert ours.pread(n, offset) == engine.pread(n, offset), (offset, n)
            # The documents, read by ranges: only a few chunks of dozens.
            fresh = AgeRanges(Stored(data), len(data), keys)
            docs = read_documents(fresh)
            engine.seek(0)
            assert docs == read_documents(engine)
            assert docs["manifest"]["server"] == "AGE1"
            assert fresh.stored_read < len(data) // 4
    finally:
        os.close(fd)


def _cases(data: bytes) -> dict[str, bytes]:
    start = _payload_start(data)
    chunks = (len(data) - start) // SEALED_SIZE
    assert chunks >= 3

    def flipped(at: int) -> bytes:
        out = bytearray(data)
        out[at] ^= 0x04
        return bytes(out)

    return {"cut at a chunk boundary": data[:start + 2 * SEALED_SIZE],
            "cut inside the last chunk": data[:-100],
            "cut to the header": data[:start],
            "cut inside the nonce": data[:start - 3],
            "cut 10 bytes into the payload": data[:start + 10],
            "an appended byte": data + b"\0",
            "flipped bit in the last tag": flipped(len(data) - 1),
            "flipped bit in the header MAC": flipped(start - 20),
            "flipped bit in the nonce": flipped(start - 5)}


EXPECTED = {
    "cut at a chunk boundary": DAMAGED + "age chunk 1 (plaintext offset 65536): truncated "
                               "(the input ends after this chunk, which is not the final one)",
    "cut inside the last chunk": DAMAGED + "age chunk 3 (plaintext offset 196608): "
                                 "authentication failed",
    "cut to the header": DAMAGED + "age payload of 0 bytes: no valid payload has that "
                         "length (truncated or trailing bytes)",
    "cut inside the nonce": "truncated age file: the header is not followed by a nonce",
    "cut 10 bytes into the payload": DAMAGED + "age payload of 10 bytes: no valid payload "
                                     "has that length (truncated or trailing bytes)",
    "an appended byte": DAMAGED + "age chunk 3 (plaintext offset 196608): authentication "
                        "failed",
    "flipped bit in the last tag": DAMAGED + "age chunk 3 (plaintext offset 196608): "
                                   "authentication failed",
    "flipped bit in the header MAC": "header MAC mismatch",
    "flipped bit in the nonce": DAMAGED + "age chunk 3 (plaintext offset 196608): "
                                "authentication failed",
}


def test_damage_is_refused_at_open_as_the_engine_refuses_it(identity, keys, tmp_path):
    plain = random.Random(3).randbytes(3 * CHUNK_SIZE + 4000)
    data = _stock_age(plain, identity, tmp_path)
    for name, bad in _cases(data).items():
        stored = Stored(bad)
        with pytest.raises(DecryptionError) as caught:
            AgeRanges(stored, len(bad), keys)
        assert str(caught.value) == EXPECTED[name], name
        # Refused before any chunk but the final one was read.
        assert stored.bytes <= _payload_start(data) + 48 + 2 * SEALED_SIZE, name
        ours, engine = _ours(bad, keys), _engine(bad, keys, tmp_path, "e.age")
        assert ours[0] is None and engine[0] is None, name
        assert type(ours[1]) is type(engine[1]) and str(ours[1]) == str(engine[1]), name


def test_a_flipped_bit_in_a_middle_chunk_fails_that_chunk_only(identity, keys, tmp_path):
    plain = random.Random(4).randbytes(5 * CHUNK_SIZE + 77)
    data = bytearray(_stock_age(plain, identity, tmp_path))
    start = _payload_start(bytes(data))
    data[start + 2 * SEALED_SIZE + 1000] ^= 0x80
    bad = bytes(data)
    with AgeRanges(Stored(bad), len(bad), keys) as reader:      # the open succeeds
        assert reader.pread(CHUNK_SIZE, 0) == plain[:CHUNK_SIZE]
        assert reader.pread(100, 4 * CHUNK_SIZE) == plain[4 * CHUNK_SIZE:][:100]
        with pytest.raises(DecryptionError) as caught:
            reader.pread(10, 2 * CHUNK_SIZE + 5)
        assert str(caught.value) == DAMAGED + \
            "age chunk 2 (plaintext offset 131072): authentication failed"
        with pytest.raises(DecryptionError, match="age chunk 2 "):
            reader.pread(3 * CHUNK_SIZE, CHUNK_SIZE)            # a read across it fails too
        assert reader.pread(10, 3 * CHUNK_SIZE) == plain[3 * CHUNK_SIZE:][:10]
    ours, engine = _ours(bad, keys), _engine(bad, keys, tmp_path)
    assert str(ours[1]) == str(engine[1]) and isinstance(ours[1], DecryptionError)


def test_swapped_chunks_and_a_chunk_appended_after_a_full_final_one(identity, keys, tmp_path):
    plain = random.Random(6).randbytes(3 * CHUNK_SIZE)
    data = _stock_age(plain, identity, tmp_path)
    start = _payload_start(data)
    swapped = bytearray(data)
    a, b = start, start + SEALED_SIZE
    swapped[a:a + SEALED_SIZE], swapped[b:b + SEALED_SIZE] = data[b:b + SEALED_SIZE], \
        data[a:a + SEALED_SIZE]
    with AgeRanges(Stored(bytes(swapped)), len(swapped), keys) as reader, \
            pytest.raises(DecryptionError, match=r"age chunk 0 \(plaintext offset 0\): "
                                                 "authentication failed"):
        reader.read()
    # A whole chunk of another file after a full final chunk: the length is
    # one a payload can have, and the new last chunk fails at open.
    other = _stock_age(random.Random(7).randbytes(CHUNK_SIZE - 1), identity, tmp_path)
    extra = data + other[_payload_start(other):]
    ours, engine = _ours(extra, keys), _engine(extra, keys, tmp_path)
    assert type(ours[1]) is type(engine[1]) is DecryptionError
    assert str(ours[1]) == str(engine[1]) == DAMAGED + \
        "age chunk 3 (plaintext offset 196608): authentication failed"


def test_wrong_key_no_key_and_not_an_age_file(identity, keys, tmp_path):
    data = _stock_age(b"x" * 1000, identity, tmp_path)
    other = DecryptionKeys([X25519Identity.generate()])
    with pytest.raises(DecryptionError, match="^no identity matches$"):
        AgeRanges(Stored(data), len(data), other)
    with pytest.raises(DecryptionError, match="the file is not encrypted with a passphrase"):
        AgeRanges(Stored(data), len(data), DecryptionKeys(passphrase="pw"))
    for nothing in (None, DecryptionKeys()):
        with pytest.raises(DecryptionError) as caught:
            AgeRanges(Stored(data), len(data), nothing)
        assert str(caught.value) == ENCRYPTED_NEEDS_A_KEY
    plain_archive = b"(\xb5/\xfd" + bytes(100)
    with pytest.raises(DecryptionError, match="not an age file"):
        AgeRanges(Stored(plain_archive), len(plain_archive), keys)
    assert _engine(data, other, tmp_path)[1].args == ("no identity matches",)


def test_a_huge_claimed_size_allocates_nothing(identity, keys, tmp_path):
    data = _stock_age(b"y" * 70000, identity, tmp_path)
    start = _payload_start(data)
    for claimed in (1 << 62, (1 << 64) + start, 1 << 80):
        stored = Stored(data)
        with pytest.raises(DecryptionError) as caught:
            AgeRanges(stored, claimed, keys)
        text = str(caught.value)
        # Either no valid payload has that length, or (one that could) its
        # final chunk is past the end of what is there.
        assert text.startswith(DAMAGED), text
        assert ("no valid payload has that length" in text
                or "truncated (end of file inside the payload)" in text), text
        assert stored.bytes <= len(data)
    # A hostile header is bounded by the header parser.
    endless = b"age-encryption.org/v1\n-> X25519 " + b"A" * (4 << 20)
    with pytest.raises(DecryptionError, match="malformed age header"):
        AgeRanges(Stored(endless), len(endless), keys)


def test_reads_from_several_threads_agree(identity, keys, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    plain = random.Random(8).randbytes(30 * CHUNK_SIZE + 3)
    data = _stock_age(plain, identity, tmp_path)
    reader = AgeRanges(Stored(data), len(data), keys, cache_chunks=2)
    spots = [(random.Random(i).randrange(len(plain)), 5000) for i in range(200)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda s: reader.pread(s[1], s[0]), spots))
    assert got == [plain[o:o + n] for o, n in spots]
