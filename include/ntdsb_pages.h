/*
 * ntdsb_pages.h - a per-file ESE page checker that runs inside the backup and
 * restore pipelines (ntdsb_backup_config.pages, ntdsb_restore_config.pages).
 * No Python here, no I/O, no locks: the pipelines call it from their worker
 * threads and from their one in-order thread.
 *
 * A "unit" is a database page (cbPage bytes) or a log segment (cbSec bytes).
 * Database (ntds.dit): file unit 0 is the header, 1 the shadow, unit i >= 2
 * holds pgno i - 1; the last unit of the file may be a streamed backup's
 * trailer page.  Log (edbXXXXX.log, version >= 8.4000): units from isec =
 * csecHeader on are segments checksummed with pgno = isec (isec - 1 is also
 * accepted, as ESE does).  Facts: docs/ESE.md (reference sections 1-5, 7, 8).
 *
 * How the work is split (so that good data costs one verify pass per unit):
 *   - the in-order thread sees every chunk in file order: it keeps the head
 *     of the file, finds the geometry from it, checks units straddling chunk
 *     boundaries (a one-unit carry buffer), and whole units of chunks no
 *     worker checked;
 *   - once the geometry is known (published with a release store), workers
 *     check the whole units of their own chunks into their own tally.
 * The result does not depend on which side checked what: the caller merges
 * every worker tally into pg after the threads are joined.
 */
#ifndef NTDSB_PAGES_H
#define NTDSB_PAGES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of file. */
#define NTDSB_PAGES_NONE     0
#define NTDSB_PAGES_DATABASE 1 /* ntds.dit */
#define NTDSB_PAGES_LOG      2 /* edbXXXXX.log */

#define NTDSB_PAGES_LISTED   64     /* problems kept per file: the lowest page numbers */
#define NTDSB_PAGES_HEAD_MAX 65536  /* DB: header + shadow of 32 KiB pages; log: 4096 used */
#define NTDSB_PAGES_UNIT_MAX 32768  /* largest unit (32 KiB database pages) */
#define NTDSB_PAGES_LOG_HEAD 4096   /* bytes of a log file header */

/* Reasons of a problem. */
#define NTDSB_PAGE_BAD_CHECKSUM 1   /* checksum wrong, no further diagnosis */
#define NTDSB_PAGE_CORRECTABLE  2   /* single-bit error ECC corrects; detail = bit offset in the page */
#define NTDSB_PAGE_MISPLACED    3   /* checksum valid for another page number; detail = that pgno
                                       (stale/misplaced page) */
#define NTDSB_PAGE_BAD_PGNO     4   /* large page: checksum fine but stored pgno @64 differs;
                                       detail = stored pgno */
#define NTDSB_PAGE_FLAG_FLIPPED 5   /* valid once flag 0x2000 (new checksum format) is toggled back */

typedef struct ntdsb_page_problem {
    uint32_t pgno;   /* database: logical pgno; log: segment index isec */
    int32_t reason;  /* NTDSB_PAGE_* */
    uint64_t detail; /* see the reasons */
} ntdsb_page_problem;

typedef struct ntdsb_page_tally {
    uint64_t ok, ok_old, uninit;   /* valid new format, valid old XOR format, all zero */
    uint64_t bad;                  /* units that are not valid (correctable ones included) */
    uint64_t correctable;          /* of bad: every failing block single-bit correctable */
    uint32_t listed;               /* entries used in problems[], ascending pgno */
    ntdsb_page_problem problems[NTDSB_PAGES_LISTED];
} ntdsb_page_tally;

typedef struct ntdsb_pages {
    /* ---- results: read by the caller after the pipeline returned ---------------- */
    int kind;                /* NTDSB_PAGES_* as given to ntdsb_pages_init */
    int geometry;            /* 1: header usable, units checked; 0: not (header unusable,
                                old log version, or file too short for header + shadow) */
    int trailer;             /* DB: the last unit is a header-checksummed trailer page
                                (copied to trailer_page, not counted bad) */
    uint32_t unit_size;      /* cbPage or cbSec (when geometry) */
    uint32_t first_unit;     /* units before the first checked one: 2 (DB), csecHeader (log) */
    uint32_t head_len;       /* bytes in head: min(bytes seen, file_size, HEAD limit) */
    uint32_t tail_bytes;     /* bytes after the last whole unit: file_size % unit_size */
    uint64_t file_size;
    ntdsb_page_tally tally;  /* merged: the in-order side's + every worker's */
    uint8_t head[NTDSB_PAGES_HEAD_MAX];          /* first min(file_size, 65536) bytes
                                                    (log: 4096) */
    uint8_t trailer_page[NTDSB_PAGES_UNIT_MAX];  /* unit_size bytes when trailer */

    /* ---- private: owned by ntdsb_pages_* ----------------------------------------- */
    atomic_int ready;        /* geometry decided (release store by the in-order side;
                                workers acquire-load it before reading the fields above) */
    int decided;             /* the in-order side's own copy of `ready` */
    int broken;              /* in-order calls were not contiguous: checking stopped */
    uint32_t head_want;      /* bytes head must hold before the geometry is decided */
    uint64_t fed;            /* bytes the in-order side has seen */
    uint64_t carry_unit;     /* unit being assembled from several chunks */
    uint32_t carry_len;      /* its bytes so far in carry (0: none) */
    uint8_t carry[NTDSB_PAGES_UNIT_MAX];
} ntdsb_pages;

/* Reset *pg for a file of `kind` and `file_size` bytes.  Call before the
 * pipeline starts (the threads' start orders it before every worker call). */
void ntdsb_pages_init(ntdsb_pages *pg, int kind, uint64_t file_size);

/*
 * Worker thread, for the chunk data[0..len) at file offset off: if the
 * geometry is already known, check every unit lying wholly inside the chunk
 * (and at or after first_unit) into the worker's own tally *t and return 1;
 * else return 0 (nothing done: the in-order side checks that chunk).  Pass
 * the result to ntdsb_pages_in_order as worker_checked.  A worker must take
 * its chunks in ascending file order (both pipelines' workers do), so that
 * its problems[] are its lowest pgnos.
 */
int ntdsb_pages_worker(ntdsb_pages *pg, ntdsb_page_tally *t, const uint8_t *data, size_t len,
                       uint64_t off);

/*
 * ONE thread, for every chunk in file order (contiguous: off = the sum of the
 * earlier lengths; any chunk sizes work): fills head, decides the geometry as
 * soon as head holds min(file_size, 65536) bytes (DB) or 4096 (log) and then
 * checks the units already seen, checks units straddling chunk boundaries,
 * and, if !worker_checked, every whole unit of the chunk.  Its tally is
 * pg->tally.
 */
void ntdsb_pages_in_order(ntdsb_pages *pg, const uint8_t *data, size_t len, uint64_t off,
                          int worker_checked);

/* After the last chunk (on success or failure): a file shorter than the head
 * decides the geometry from what it has (then checks); tail_bytes set.  The
 * pipelines call it and merge their workers' tallies themselves; a pipeline
 * call refused before it starts (a bad config) leaves *pg as init left it,
 * which reads the same: geometry 0, nothing checked. */
void ntdsb_pages_finish(ntdsb_pages *pg);

/* Add a worker's tally into pg->tally: counts summed, problems merged keeping
 * the lowest NTDSB_PAGES_LISTED pgnos in ascending order.  After the join. */
void ntdsb_pages_merge(ntdsb_pages *pg, const ntdsb_page_tally *t);

/* Check file unit `unit_index` (unit_size bytes at unit) as the pipelines do
 * (pgno derived from the index as described above; the trailer rule applies
 * when the unit ends the file) into *t.  Exposed for tests and tools; only
 * meaningful once pg->geometry is 1. */
void ntdsb_pages_check_unit(ntdsb_pages *pg, ntdsb_page_tally *t, const uint8_t *unit,
                            uint64_t unit_index);

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_PAGES_H */
