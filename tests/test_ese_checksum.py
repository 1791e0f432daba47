"""ESE checksums: the independent checker against the reference's known
answers and real sample databases, then the C code against the checker."""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import pytest

import esecheck as E

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "ese-samples"
VECTOR_PGNO = 0x98765431

# (page size, stored block checksums) - ese-format.md 4.5 vectors 3-5
LARGE_VECTORS = [
    (32768, [0xF9CE063147B6B865, 0x69AF69AFCDD590E4, 0x770988F62EA1A9E2, 0x7CB77CB77B839A0E]),
    (16384, [0x7B807B80651E03FC, 0x7C347C34BC66A14B, 0x6C7E6C7ECB3A6C94, 0x05D105D19E99A841]),
    (28672, [0xF9D80627E9C2387E, 0x69AF69AFCDD590E4, 0x770988F62EA1A9E2, 0x1F311F31B6717993]),
]
SAMPLE_FACTS = [
    # name, page size, header checksum, initialised pages, zero pages
    ("basic.edb.gz", 4096, 0x98A810D4, 23, 231),
    ("large.edb.gz", 32768, 0x93349835, 381, 385),
]


def vector1_buffer() -> bytearray:
    b = bytearray(8192)
    for i in range(4096):
        b[i] = i % 256
    b[37] |= 0x20
    return b


def large_vector_buffer(n: int) -> bytearray:
    b = bytearray((i + i // 13) % 256 for i in range(n))
    b[37] |= 0x20
    return b


def stored_blocks(page: bytes, n: int) -> list[int]:
    return [struct.unpack_from("<Q", page, off)[0] for off in (0, 40, 48, 56)[:n]]


def load_sample(name: str) -> bytes:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample {path} not available")
    with gzip.open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def C():
    return pytest.importorskip("ntdsbackup._ntdsbcli", reason="extension not built")


# ------------------------------------------------------------ independent checker


def test_checker_vector1_small_page():
    assert E.ecc_block(bytes(vector1_buffer()), 9876, True) == 0x0000000004042290


def test_checker_vector2_header_xor():
    b = vector1_buffer()
    struct.pack_into("<II", b, 0, 0x89123456, 0x12345678)
    assert E.header_checksum(bytes(b)) == 0x9F9B9F93


@pytest.mark.parametrize("n,expected", LARGE_VECTORS)
def test_checker_large_vectors(n, expected):
    b = large_vector_buffer(n)
    E.set_page_checksum(b, VECTOR_PGNO, store_pgno=False)
    assert stored_blocks(b, 4) == expected


@pytest.mark.parametrize("name,cb,hcs,n_ok,n_zero", SAMPLE_FACTS)
def test_checker_on_samples(name, cb, hcs, n_ok, n_zero):
    data = load_sample(name)
    assert E.header_checksum(data[:cb]) == hcs == struct.unpack_from("<I", data, 0)[0]
    assert data[:cb] == data[cb : 2 * cb]
    assert E.verify_file_pages(data, cb) == {E.PAGE_OK: n_ok, E.PAGE_UNINIT: n_zero}


# ------------------------------------------------------------ C against the vectors


def test_c_vector1_and_2(C):
    b = vector1_buffer()
    assert C.ese_ecc_block(b, 9876, True) == 0x0000000004042290
    struct.pack_into("<II", b, 0, 0x89123456, 0x12345678)
    assert C.ese_header_checksum(b) == 0x9F9B9F93
    # any buffer type, read-only included
    assert C.ese_header_checksum(bytes(b)) == C.ese_header_checksum(memoryview(b)) == 0x9F9B9F93


@pytest.mark.parametrize("n,expected", LARGE_VECTORS)
def test_c_large_vectors(C, n, expected):
    b = large_vector_buffer(n)
    bs = 4096 if n <= 16384 else 8192
    # Blocks 1..3 then block 0, with the plain block function (no pgno store).
    blocks = E.large_blocks(n)
    for k, (s, e) in enumerate(blocks[1:], start=1):
        struct.pack_into("<Q", b, 40 + 8 * (k - 1), C.ese_ecc_block(b[s:e], VECTOR_PGNO, False))
    struct.pack_into("<Q", b, 0, C.ese_ecc_block(b[:bs], VECTOR_PGNO, True))
    assert stored_blocks(b, 4) == expected


@pytest.mark.parametrize("n", [16384, 32768])
def test_c_set_page_checksum_matches_checker(C, n):
    a = large_vector_buffer(n)
    b = bytearray(a)
    C.ese_set_page_checksum(a, VECTOR_PGNO)
    E.set_page_checksum(b, VECTOR_PGNO)
    assert a == b
    assert struct.unpack_from("<I", a, 64)[0] == VECTOR_PGNO
    assert C.ese_verify_page(a, VECTOR_PGNO) == C.ESE_PAGE_OK
    assert E.verify_page(bytes(a), VECTOR_PGNO) == E.PAGE_OK


# ------------------------------------------------------------ C against the samples


@pytest.mark.parametrize("name,cb,hcs,n_ok,n_zero", SAMPLE_FACTS)
def test_c_on_samples(C, name, cb, hcs, n_ok, n_zero):
    data = load_sample(name)
    assert C.ese_header_checksum(data[:cb]) == hcs
    npages = len(data) // cb - 2
    assert C.ese_verify_pages(memoryview(data)[2 * cb :], cb, 1) == (0, 0, n_ok, 0, n_zero)
    for pgno in range(1, npages + 1):
        page = data[(pgno + 1) * cb : (pgno + 2) * cb]
        assert C.ese_verify_page(page, pgno) == E.verify_page(page, pgno)


@pytest.mark.parametrize("name,cb", [(n, cb) for n, cb, *_ in SAMPLE_FACTS])
def test_c_flipped_bits_on_samples(C, name, cb):
    data = load_sample(name)
    rng = random.Random(7)
    pages = [p for p in range(1, len(data) // cb - 1) if any(data[(p + 1) * cb : (p + 2) * cb])]
    for pgno in rng.sample(pages, 8):
        page = bytearray(data[(pgno + 1) * cb : (pgno + 2) * cb])
        flag = bytearray(page)
        flag[37] ^= 0x20  # the new-checksum flag bit
        assert C.ese_verify_page(flag, pgno) < 0
        assert E.verify_page(bytes(flag), pgno) < 0
        bit = rng.randrange(64 * 8, cb * 8)  # a data bit past the headers
        page[bit // 8] ^= 1 << (bit % 8)
        assert C.ese_verify_page(page, pgno) == E.verify_page(bytes(page), pgno) < 0
        # the right page, at the wrong place
        assert C.ese_verify_page(bytes(data[(pgno + 1) * cb : (pgno + 2) * cb]), pgno + 1) < 0


# ------------------------------------------------------------ C against the checker, random


@pytest.mark.parametrize("cb", [4096, 8192, 16384, 32768])
def test_c_random_pages(C, cb):
    rng = random.Random(cb)
    for _ in range(6):
        pgno = rng.randrange(1, 1 << 32)
        page = bytearray(rng.randbytes(cb))
        page[37] |= 0x20
        ref = bytearray(page)
        C.ese_set_page_checksum(page, pgno)
        E.set_page_checksum(ref, pgno)
        assert page == ref
        assert C.ese_verify_page(page, pgno) == E.PAGE_OK
        for k in range(cb // 1024 if cb <= 8192 else 1):
            blk = bytes(page[k * 1024 : (k + 1) * 1024])
            assert C.ese_ecc_block(blk, pgno, k == 0) == E.ecc_block(blk, pgno, k == 0)
        # header checksum over the same random bytes
        assert C.ese_header_checksum(page) == E.header_checksum(bytes(page))


def test_c_old_format_pages(C):
    rng = random.Random(3)
    for cb in (4096, 8192):
        page = bytearray(rng.randbytes(cb))
        page[37] &= ~0x20 & 0xFF
        pgno = 1234
        struct.pack_into("<I", page, 4, pgno)
        struct.pack_into("<I", page, 0, E.header_checksum(bytes(page)))
        assert E.verify_page(bytes(page), pgno) == E.PAGE_OK_OLD
        assert C.ese_verify_page(page, pgno) == C.ESE_PAGE_OK_OLD
        assert C.ese_verify_page(page, pgno + 1) == C.ESE_PAGE_BAD_CHECKSUM
        page[100] ^= 4
        assert C.ese_verify_page(page, pgno) == C.ESE_PAGE_BAD_CHECKSUM


def test_c_bad_pgno_on_large_page(C):
    page = large_vector_buffer(32768)
    C.ese_set_page_checksum(page, 77)
    # The pgno at 64 lies in block 0: recompute block 0 so only the pgno check fails.
    struct.pack_into("<I", page, 64, 78)
    b0 = C.ese_ecc_block(page[:8192], 77, True)
    struct.pack_into("<Q", page, 0, b0)
    assert C.ese_verify_page(page, 77) == C.ESE_PAGE_BAD_PGNO
    assert E.verify_page(bytes(page), 77) == E.PAGE_BAD_PGNO


def test_c_verify_pages_counts(C):
    cb = 8192
    buf = bytearray(cb * 12)
    C.ese_generate_pages(buf, cb, 100, 5, 1 << 20)
    buf[3 * cb : 4 * cb] = bytes(cb)  # pgno 103 uninitialised
    buf[5 * cb + 500] ^= 1  # pgno 105 bad
    buf[9 * cb + 37] ^= 0x20  # pgno 109 bad (flag)
    assert C.ese_verify_pages(buf, cb, 100) == (2, 105, 9, 0, 1)
    assert C.ese_verify_page(memoryview(buf)[5 * cb : 6 * cb], 105) == C.ESE_PAGE_BAD_CHECKSUM


def test_c_argument_checks(C):
    with pytest.raises(ValueError):
        C.ese_header_checksum(b"abc")
    with pytest.raises(ValueError):
        C.ese_verify_pages(bytes(8193), 8192, 1)
    with pytest.raises(ValueError):
        C.ese_verify_page(bytes(5000), 1)
    with pytest.raises(ValueError):
        C.ese_ecc_block(bytes(3000), 1, True)
    with pytest.raises((TypeError, BufferError, ValueError)):
        C.ese_set_page_checksum(bytes(8192), 1)  # read-only buffer
    with pytest.raises(ValueError):
        C.ese_generate_pages(bytearray(8192), 8192, 0, 1, 1)  # pgno 0 is the header
    assert C.ese_header_checksum(b"") == 0x89ABCDEF


# ------------------------------------------------------------ log segments


def test_c_log_segments_verify(C):
    lt = bytes([1, 2, 3, 4, 5, 124, 1, 0])
    buf = bytearray(4096 * 20)
    C.ese_generate_log_segments(buf, 4096, 1, 7, 42, lt)
    data = bytes(4096) + bytes(buf)  # a zero "header" sector in front
    assert E.verify_log_segments(data, 4096, 1) == (20, 0, 0)
    for i in range(20):
        seg = buf[i * 4096 : (i + 1) * 4096]
        ib, isec, gen = struct.unpack_from("<HHi", seg, 8)
        assert (ib, isec, gen) == (0, i + 1, 7)
        assert seg[16:24] == lt
        assert struct.unpack_from("<I", seg, 36)[0] & 0x2000
    again = bytearray(len(buf))
    C.ese_generate_log_segments(again, 4096, 1, 7, 42, lt)
    assert again == buf
