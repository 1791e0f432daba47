# ESE page checksums, page verification and the page / log-segment generator
# (include/ntdsb_ese.h, docs/ESE.md).  Included into ntdsbackup._ntdsbcli.
#
# Every function takes any buffer-protocol object through a typed memoryview
# (read-only where it only reads), checks sizes with the GIL held, then does
# the whole job in one `with nogil:` block so other threads keep running
# while a gigabyte is checked or generated.

from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t


cdef extern from "ntdsb_ese.h" nogil:
    uint32_t ntdsb_ese_header_checksum(const uint8_t *buf, size_t len)
    uint64_t ntdsb_ese_ecc_block(const uint8_t *block, size_t cb, uint32_t pgno,
                                 int is_header_block)
    void ntdsb_ese_set_page_checksum(uint8_t *page, size_t cb_page, uint32_t pgno)
    int ntdsb_ese_verify_page(const uint8_t *page, size_t cb_page, uint32_t pgno)
    uint64_t ntdsb_ese_verify_pages(const uint8_t *pages, size_t cb_page, uint32_t first_pgno,
                                    uint32_t count, uint32_t *first_bad, uint64_t counts[3])
    void ntdsb_ese_generate_pages(uint8_t *pages, size_t cb_page, uint32_t first_pgno,
                                  uint32_t count, uint64_t seed, uint64_t dbtime)
    void ntdsb_ese_generate_log_segments(uint8_t *buf, size_t cb_sec, uint32_t first_isec,
                                         uint32_t count, int32_t generation, uint64_t seed,
                                         const uint8_t *logtime8)

    enum:
        NTDSB_ESE_PAGE_OK
        NTDSB_ESE_PAGE_OK_OLD
        NTDSB_ESE_PAGE_UNINIT
        NTDSB_ESE_PAGE_BAD_CHECKSUM
        NTDSB_ESE_PAGE_BAD_PGNO


ESE_PAGE_OK = NTDSB_ESE_PAGE_OK
ESE_PAGE_OK_OLD = NTDSB_ESE_PAGE_OK_OLD
ESE_PAGE_UNINIT = NTDSB_ESE_PAGE_UNINIT
ESE_PAGE_BAD_CHECKSUM = NTDSB_ESE_PAGE_BAD_CHECKSUM
ESE_PAGE_BAD_PGNO = NTDSB_ESE_PAGE_BAD_PGNO

# Page sizes ESE knows (2 KiB .. 32 KiB); AD uses 8 KiB and 32 KiB.
ESE_PAGE_SIZES = (2048, 4096, 8192, 16384, 32768)


cdef int _check_page_size(Py_ssize_t page_size) except -1:
    if page_size not in (2048, 4096, 8192, 16384, 32768):
        raise ValueError(f"page_size must be one of 2048..32768 (a power of two), got {page_size}")
    return 0


cdef int _check_pgno(object pgno) except -1:
    if not 0 <= pgno <= 0xFFFFFFFF:
        raise ValueError(f"pgno must fit in 32 bits, got {pgno}")
    return 0


def ese_header_checksum(const unsigned char[::1] buf not None):
    """Header checksum (DB header/shadow, log header, checkpoint copy) of buf.

    0x89ABCDEF XOR every little-endian u32 except the first; len(buf) must be
    a multiple of 4.
    """
    cdef Py_ssize_t n = buf.shape[0]
    cdef uint32_t r
    if n % 4:
        raise ValueError(f"buffer length must be a multiple of 4, got {n}")
    if n == 0:
        return 0x89ABCDEF  # nothing but the seed
    with nogil:
        r = ntdsb_ese_header_checksum(&buf[0], <size_t>n)
    return r


def ese_ecc_block(const unsigned char[::1] buf not None, pgno, bint is_header_block):
    """64-bit XOR+ECC checksum of one block (1024..8192 bytes, a power of two)."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef uint64_t r
    _check_pgno(pgno)
    cdef uint32_t pg = pgno
    if n not in (1024, 2048, 4096, 8192):
        raise ValueError(f"ECC block must be 1024, 2048, 4096 or 8192 bytes, got {n}")
    with nogil:
        r = ntdsb_ese_ecc_block(&buf[0], <size_t>n, pg, is_header_block)
    return r


def ese_set_page_checksum(unsigned char[::1] page not None, pgno):
    """Write the checksum(s) of one database page in place.

    The page (a writable buffer of one page size) must already have flag
    0x2000 set; pages over 8 KiB also get pgno stored at offset 64.
    """
    cdef Py_ssize_t n = page.shape[0]
    _check_page_size(n)
    _check_pgno(pgno)
    cdef uint32_t pg = pgno
    with nogil:
        ntdsb_ese_set_page_checksum(&page[0], <size_t>n, pg)


def ese_verify_page(const unsigned char[::1] page not None, pgno):
    """Verify one page; returns ESE_PAGE_OK, _OK_OLD, _UNINIT, _BAD_CHECKSUM or _BAD_PGNO."""
    cdef Py_ssize_t n = page.shape[0]
    cdef int r
    _check_page_size(n)
    _check_pgno(pgno)
    cdef uint32_t pg = pgno
    with nogil:
        r = ntdsb_ese_verify_page(&page[0], <size_t>n, pg)
    return r


def ese_verify_pages(const unsigned char[::1] buf not None, Py_ssize_t page_size, first_pgno):
    """Verify len(buf) // page_size consecutive pages starting at first_pgno.

    Returns (bad_count, first_bad_pgno or 0, ok, ok_old, uninit).
    """
    cdef Py_ssize_t n = buf.shape[0]
    _check_page_size(page_size)
    _check_pgno(first_pgno)
    if n % page_size:
        raise ValueError(f"buffer length {n} is not a multiple of the page size {page_size}")
    cdef Py_ssize_t count = n // page_size
    if first_pgno + count - 1 > 0xFFFFFFFF:
        raise ValueError("page numbers would exceed 32 bits")
    cdef uint32_t first = first_pgno
    cdef uint32_t first_bad = 0
    cdef uint64_t counts[3]
    cdef uint64_t bad = 0
    counts[0] = counts[1] = counts[2] = 0
    if count:
        with nogil:
            bad = ntdsb_ese_verify_pages(&buf[0], <size_t>page_size, first, <uint32_t>count,
                                         &first_bad, counts)
    return (bad, first_bad, counts[0], counts[1], counts[2])


def ese_generate_pages(unsigned char[::1] out not None, Py_ssize_t page_size, first_pgno,
                       uint64_t seed, uint64_t dbtime):
    """Fill out (a writable buffer, len(out) // page_size pages) with generated
    directory pages for pgno first_pgno.. with valid checksums.

    Deterministic in (seed, pgno, dbtime).
    """
    cdef Py_ssize_t n = out.shape[0]
    _check_page_size(page_size)
    _check_pgno(first_pgno)
    if n % page_size:
        raise ValueError(f"buffer length {n} is not a multiple of the page size {page_size}")
    cdef Py_ssize_t count = n // page_size
    if first_pgno < 1 or first_pgno + count - 1 > 0xFFFFFFFF:
        raise ValueError("page numbers must be in 1..2**32-1")
    cdef uint32_t first = first_pgno
    if count:
        with nogil:
            ntdsb_ese_generate_pages(&out[0], <size_t>page_size, first, <uint32_t>count,
                                     seed, dbtime)


def ese_generate_log_segments(unsigned char[::1] out not None, Py_ssize_t cb_sec, first_isec,
                              int32_t generation, uint64_t seed, logtime=None):
    """Fill out (len(out) // cb_sec segments) with v8 log segments isec first_isec..
    of log generation `generation`; logtime is the 8-byte LOGTIME stored in each
    segment header (None: zero).  Deterministic in (seed, generation, isec).
    """
    cdef Py_ssize_t n = out.shape[0]
    if cb_sec not in (1024, 2048, 4096, 8192):
        raise ValueError(f"cb_sec must be 1024, 2048, 4096 or 8192, got {cb_sec}")
    if n % cb_sec:
        raise ValueError(f"buffer length {n} is not a multiple of cb_sec {cb_sec}")
    cdef Py_ssize_t count = n // cb_sec
    if first_isec < 1 or first_isec + count - 1 > 0xFFFF:
        raise ValueError("segment indices must be in 1..65535 (LGPOS isec is 16 bits)")
    cdef uint32_t first = first_isec
    cdef bytes lt = b""
    cdef const uint8_t *ltp = NULL
    if logtime is not None:
        lt = bytes(logtime)
        if len(lt) != 8:
            raise ValueError(f"logtime must be 8 bytes, got {len(lt)}")
        ltp = <const uint8_t *>lt
    if count:
        with nogil:
            ntdsb_ese_generate_log_segments(&out[0], <size_t>cb_sec, first, <uint32_t>count,
                                            generation, seed, ltp)
