# The ESE page checker (include/ntdsb_pages.h): given to backup_file and
# restore_file (pages=), whose workers check every page of the chunks they
# handle with the GIL released, or fed a file's bytes in order (feed) for a
# check of a file on disk.  Included into ntdsbackup._ntdsbcli.

from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free


cdef extern from "ntdsb_pages.h" nogil:
    enum:
        NTDSB_PAGES_NONE
        NTDSB_PAGES_DATABASE
        NTDSB_PAGES_LOG
        NTDSB_PAGES_LISTED

    ctypedef struct ntdsb_page_problem:
        uint32_t pgno
        int32_t reason
        uint64_t detail

    ctypedef struct ntdsb_page_tally:
        uint64_t ok
        uint64_t ok_old
        uint64_t uninit
        uint64_t bad
        uint64_t correctable
        uint32_t listed
        ntdsb_page_problem problems[NTDSB_PAGES_LISTED]

    ctypedef struct ntdsb_pages:
        int kind
        int geometry
        int trailer
        uint32_t unit_size
        uint32_t first_unit
        uint32_t head_len
        uint32_t tail_bytes
        uint64_t file_size
        ntdsb_page_tally tally
        uint8_t head[1]          # NTDSB_PAGES_HEAD_MAX bytes; head_len of them used
        uint8_t trailer_page[1]  # unit_size bytes when trailer

    void ntdsb_pages_init(ntdsb_pages *pg, int kind, uint64_t file_size)
    void ntdsb_pages_in_order(ntdsb_pages *pg, const uint8_t *data, size_t len, uint64_t off,
                              int worker_checked)
    void ntdsb_pages_finish(ntdsb_pages *pg)


PAGES_NONE = NTDSB_PAGES_NONE
PAGES_DATABASE = NTDSB_PAGES_DATABASE
PAGES_LOG = NTDSB_PAGES_LOG


cdef class PageChecker:
    """The page checks of one file (kind PAGES_DATABASE or PAGES_LOG, of
    file_size bytes).  Either give it to one backup_file / restore_file call
    (pages=) or feed() it the file's bytes in order and finish(); then
    result().  One file per checker."""

    cdef ntdsb_pages *pg
    cdef readonly int kind
    cdef readonly unsigned long long file_size
    cdef unsigned long long fed
    cdef bint taken      # given to a pipeline, or fed
    cdef bint done       # finished (by the pipeline or by finish())

    def __cinit__(self, int kind, unsigned long long file_size):
        if kind not in (NTDSB_PAGES_DATABASE, NTDSB_PAGES_LOG):
            raise ValueError(f"kind must be PAGES_DATABASE or PAGES_LOG, got {kind}")
        self.pg = <ntdsb_pages *>calloc(1, sizeof(ntdsb_pages))
        if self.pg == NULL:
            raise MemoryError()
        ntdsb_pages_init(self.pg, kind, file_size)
        self.kind = kind
        self.file_size = file_size

    def __dealloc__(self):
        free(self.pg)

    cdef ntdsb_pages *_for_pipeline(self) except NULL:
        """The checker for one engine call, which finishes it."""
        if self.taken:
            raise ValueError("a PageChecker checks one file once")
        self.taken = True
        self.done = True
        return self.pg

    def feed(self, const unsigned char[::1] data not None, unsigned long long offset):
        """The next len(data) bytes of the file, at `offset` (the bytes fed so
        far); checked with the GIL released."""
        cdef Py_ssize_t n = data.shape[0]
        if self.done:
            raise ValueError("this PageChecker is finished")
        if offset != self.fed:
            raise ValueError(f"feed at offset {offset}, expected {self.fed} (in order)")
        if n == 0:
            return
        self.taken = True
        with nogil:
            ntdsb_pages_in_order(self.pg, &data[0], <size_t>n, offset, 0)
        self.fed += n

    def finish(self):
        if not self.done:
            self.taken = self.done = True
            with nogil:
                ntdsb_pages_finish(self.pg)

    def result(self):
        """The findings: counts, the first problems (pgno, reason, detail) in
        page order, the file's first bytes and the trailer page, if any."""
        cdef ntdsb_pages *pg = self.pg
        cdef uint32_t i
        if not self.done:
            raise ValueError("result() before the check finished")
        return {
            "kind": pg.kind, "file_size": pg.file_size, "geometry": bool(pg.geometry),
            "unit_size": pg.unit_size, "first_unit": pg.first_unit,
            "ok": pg.tally.ok, "ok_old": pg.tally.ok_old, "uninit": pg.tally.uninit,
            "bad": pg.tally.bad, "correctable": pg.tally.correctable,
            "problems": [(pg.tally.problems[i].pgno, pg.tally.problems[i].reason,
                          pg.tally.problems[i].detail) for i in range(pg.tally.listed)],
            "head": (<const char *>pg.head)[:pg.head_len],
            "trailer": (<const char *>pg.trailer_page)[:pg.unit_size] if pg.trailer else None,
            "tail_bytes": pg.tail_bytes,
        }


cdef ntdsb_pages *_pages_arg(object pages) except? NULL:
    """pages= of the engine calls: None, or a PageChecker (used once)."""
    if pages is None:
        return NULL
    if not isinstance(pages, PageChecker):
        raise TypeError(f"pages must be a PageChecker or None, not {type(pages).__name__}")
    return (<PageChecker>pages)._for_pipeline()
