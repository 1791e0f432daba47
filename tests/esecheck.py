"""Independent, deliberately plain re-implementation of the ESE checksums.

Written straight from the reference (ese-format.md sections 4.1-4.4) and used
only to check the project's C code and generated files.  It must not import
anything from ntdsbackup: a shared bug would then pass unnoticed.  It is slow
(clarity first): callers check samples and small files, not gigabytes.
"""

from __future__ import annotations

import struct

HEADER_SEED = 0x89ABCDEF
FLAG_NEW_CHECKSUM = 0x2000

PAGE_OK = 0
PAGE_OK_OLD = 1
PAGE_UNINIT = 2
PAGE_BAD_CHECKSUM = -1
PAGE_BAD_PGNO = -2


def _words(buf: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(buf) // 4}I", bytes(buf[: len(buf) // 4 * 4]))


def parity(v: int) -> int:
    return bin(v).count("1") & 1


def header_checksum(buf: bytes) -> int:
    """4.1: seed 0x89ABCDEF XOR every u32 except the first."""
    x = HEADER_SEED
    for w in _words(buf)[1:]:
        x ^= w
    return x


def ecc_block(block: bytes, pgno: int, is_header_block: bool) -> int:
    """4.4, row by row and bit by bit, exactly as written."""
    cb = len(block)
    w = list(_words(block))
    if is_header_block:
        w[0] = w[1] = 0
    p = 0
    c0 = c1 = c2 = c3 = 0
    for r in range(cb // 16):
        a, b, c, d = w[4 * r : 4 * r + 4]
        c0 ^= a
        c1 ^= b
        c2 ^= c
        c3 ^= d
        if parity(a ^ b ^ c ^ d):
            p ^= ((~r & 0x1FF) << 23) | (r << 7)
    p &= 0xFFFFFFFF
    if parity(c0 ^ c1):
        p |= 0x00400000
    if parity(c2 ^ c3):
        p |= 0x00000040
    r0 = c0 ^ c2
    r1 = c1 ^ c3
    if parity(r0):
        p |= 0x00200000
    if parity(r1):
        p |= 0x00000020
    x = r0 ^ r1
    q = 0
    for i in range(32):
        if (x >> i) & 1:
            q ^= ((~i & 0x1F) << 16) | i
    mask = ((cb << 19) - 1) & 0xFFFFFFFF
    ecc = (p & 0xFFE0FFE0 & mask) | (q & 0x001F001F)
    return (ecc << 32) | ((x ^ pgno) & 0xFFFFFFFF)


def _u32(buf: bytes, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0]


def _u64(buf: bytes, off: int) -> int:
    return struct.unpack_from("<Q", buf, off)[0]


def large_blocks(cb_page: int) -> list[tuple[int, int]]:
    """(start, end) of each checksum block of a page > 8 KiB (4.2)."""
    bs = 4096 if cb_page <= 16384 else 8192
    out = [(0, bs)]
    k = 1
    while k <= 3 and k * bs < cb_page:
        out.append((k * bs, min((k + 1) * bs, cb_page)))
        k += 1
    return out


def page_checksums(page: bytes, pgno: int) -> list[int]:
    """The checksum value(s) a new-format page should store."""
    cb = len(page)
    if cb <= 8192:
        return [ecc_block(page, pgno, True)]
    return [ecc_block(page[s:e], pgno, s == 0) for s, e in large_blocks(cb)]


def set_page_checksum(page: bytearray, pgno: int, store_pgno: bool = True) -> None:
    """Blocks 1..3 first, then block 0 (which covers their stored values).
    ESE's page code, not its checksum routine, stores the pgno at 64; the
    known-answer vectors (4.5) are computed without it: store_pgno=False."""
    cb = len(page)
    if cb <= 8192:
        struct.pack_into("<Q", page, 0, ecc_block(bytes(page), pgno, True))
        return
    if store_pgno:
        struct.pack_into("<I", page, 64, pgno)
    blocks = large_blocks(cb)
    for k, (s, e) in enumerate(blocks[1:], start=1):
        struct.pack_into("<Q", page, 40 + 8 * (k - 1), ecc_block(bytes(page[s:e]), pgno, False))
    s, e = blocks[0]
    struct.pack_into("<Q", page, 0, ecc_block(bytes(page[s:e]), pgno, True))


def verify_page(page: bytes, pgno: int) -> int:
    cb = len(page)
    if not any(page):
        return PAGE_UNINIT
    if not (_u32(page, 36) & FLAG_NEW_CHECKSUM):
        x = HEADER_SEED
        for w in _words(page)[1:]:
            x ^= w
        ok = _u32(page, 0) == x and _u32(page, 4) == pgno
        return PAGE_OK_OLD if ok else PAGE_BAD_CHECKSUM
    if cb <= 8192:
        return PAGE_OK if _u64(page, 0) == ecc_block(page, pgno, True) else PAGE_BAD_CHECKSUM
    sums = page_checksums(page, pgno)
    stored = [_u64(page, 0)] + [_u64(page, 40 + 8 * k) for k in range(len(sums) - 1)]
    if stored != sums:
        return PAGE_BAD_CHECKSUM
    if _u32(page, 64) != pgno:
        return PAGE_BAD_PGNO
    return PAGE_OK


def verify_file_pages(data: bytes, cb_page: int) -> dict[int, int]:
    """Verify pgno 1.. of a whole database image; returns {result: count}."""
    counts: dict[int, int] = {}
    npages = len(data) // cb_page
    for i in range(2, npages):
        r = verify_page(data[i * cb_page : (i + 1) * cb_page], i - 1)
        counts[r] = counts.get(r, 0) + 1
    return counts


def verify_log_segments(data: bytes, cb_sec: int, csec_header: int) -> tuple[int, int, int]:
    """5.2: v8 segments, page rule with pgno = segment index; returns
    (ok, zero, bad)."""
    ok = zero = bad = 0
    for isec in range(csec_header, len(data) // cb_sec):
        seg = data[isec * cb_sec : (isec + 1) * cb_sec]
        if not any(seg):
            zero += 1
        elif _u64(seg, 0) in (ecc_block(seg, isec, True), ecc_block(seg, isec - 1, True)):
            ok += 1
        else:
            bad += 1
    return ok, zero, bad
