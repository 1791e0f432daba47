/*
 * test_pages.c - standalone tests (and a benchmark) of the ESE page checker
 * (ntdsb_pages.h) on its own and inside both pipelines.
 *
 * Files are synthesised: database headers and shadows built here with the
 * header checksum, pages from ntdsb_ese_generate_pages, v8 log headers built
 * here with segments from ntdsb_ese_generate_log_segments, then damaged at
 * known places.  Every file is checked once as a single chunk (the
 * reference) and then in chunks of many sizes with random "a worker checked
 * this one" patterns: the tallies must be identical every time.
 *
 *   ./test_pages              run the tests; last line "N passed, N failed"
 *   ./test_pages --bench MB   checker throughput on MB of 8 KiB pages, one thread
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ntdsb_engine.h"
#include "ntdsb_ese.h"
#include "ntdsb_pages.h"
#include "ntdsb_restore.h"
#include "fake_provider.h"
#include "native_test.h"

/* ---- helpers ------------------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    /* xorshift64*: reproducible runs */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL) {
        perror("calloc");
        exit(2);
    }
    return p;
}

/* A database header page of cb bytes at h (size_field: what @236 holds). */
static void make_db_header(uint8_t *h, size_t cb, uint32_t size_field)
{
    memset(h, 0, cb);
    put32(h + 4, NTDSB_ESE_DB_MAGIC);
    put32(h + 8, 0x620);
    put32(h + 52, 2); /* dirty */
    put32(h + 104, 1);
    put32(h + 232, 0x14);
    put32(h + 236, size_field);
    h[667] = 1;
    put32(h, ntdsb_ese_header_checksum(h, cb));
}

/* (2 + npages) * cb bytes: header, shadow, pgno 1..npages. */
static uint8_t *make_db(size_t cb, uint32_t npages, uint64_t seed)
{
    uint8_t *f = xmalloc((2 + (size_t)npages) * cb);
    make_db_header(f, cb, cb == 4096 ? 0 : (uint32_t)cb);
    memcpy(f + cb, f, cb);
    if (cb == 8192 || cb == 32768) {
        ntdsb_ese_generate_pages(f + 2 * cb, cb, 1, npages, seed, 5000 + seed);
    } else {
        /* The generator makes 8 and 32 KiB pages: others get random content. */
        for (uint32_t i = 0; i < npages; i++) {
            uint8_t *pg = f + (2 + (size_t)i) * cb;
            for (size_t b = 40; b < cb; b++)
                pg[b] = (uint8_t)rnd();
            memset(pg, 0, 40);
            put32(pg + 36, NTDSB_ESE_FLAG_NEW_CHECKSUM | 0x2);
            ntdsb_ese_set_page_checksum(pg, cb, i + 1);
        }
    }
    return f;
}

static uint8_t *db_page(uint8_t *f, size_t cb, uint32_t pgno)
{
    return f + ((size_t)pgno + 1) * cb;
}

/* A v8 log: 4096-byte header (cbSec, csecHeader = 4096 / cbSec, version
 * major.minor), then nseg segments from isec csecHeader. */
static uint8_t *make_log(size_t cb_sec, uint32_t nseg, uint32_t major, uint32_t minor,
                         size_t *size)
{
    uint32_t csec_header = (uint32_t)(4096 / cb_sec);
    uint8_t *f;
    *size = 4096 + (size_t)nseg * cb_sec;
    f = xmalloc(*size);
    put32(f + 4, 13); /* generation */
    put16(f + 8, (uint32_t)cb_sec);
    put16(f + 10, csec_header);
    put16(f + 12, csec_header + nseg);
    put16(f + 14, 8192);
    put32(f + 32, major);
    put32(f + 36, minor);
    put32(f + 40, 60);
    f[667] = 3;
    put32(f, ntdsb_ese_header_checksum(f, 4096));
    ntdsb_ese_generate_log_segments(f + 4096, cb_sec, csec_header, nseg, 13, 77, NULL);
    return f;
}

/* Turn a valid page into a valid old-format one (flag clear, pgno @4). */
static void make_old_format(uint8_t *p, size_t cb, uint32_t pgno)
{
    put32(p + 36, get32(p + 36) & ~NTDSB_ESE_FLAG_NEW_CHECKSUM);
    put32(p + 4, pgno);
    put32(p, ntdsb_ese_header_checksum(p, cb));
}

static void flip_bit(uint8_t *p, uint32_t bit)
{
    p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* A large page checksummed for pgno but with stored pgno @64 = other. */
static void set_checksum_keep_pgno(uint8_t *p, size_t cb, uint32_t pgno, uint32_t other)
{
    size_t bs = cb <= 16384 ? 4096 : 8192;
    put32(p + 64, other);
    for (size_t k = 1; k <= 3 && k * bs < cb; k++) {
        uint64_t s = ntdsb_ese_ecc_block(p + k * bs, bs, pgno, 0);
        for (int i = 0; i < 8; i++)
            p[40 + 8 * (k - 1) + i] = (uint8_t)(s >> (8 * i));
    }
    uint64_t s0 = ntdsb_ese_ecc_block(p, bs, pgno, 1);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(s0 >> (8 * i));
}

/* A streamed backup's trailer page: zero page header, some fields, header XOR. */
static void make_trailer(uint8_t *p, size_t cb)
{
    memset(p, 0, cb);
    put32(p + 56, 20);  /* bkinfo genLow */
    put32(p + 60, 25);  /* genHigh */
    put32(p + 64, 0xABCD1234); /* signDb random */
    put32(p, ntdsb_ese_header_checksum(p, cb));
}

static int tally_eq(const ntdsb_page_tally *a, const ntdsb_page_tally *b)
{
    if (a->ok != b->ok || a->ok_old != b->ok_old || a->uninit != b->uninit || a->bad != b->bad ||
        a->correctable != b->correctable || a->listed != b->listed)
        return 0;
    for (uint32_t i = 0; i < a->listed; i++)
        if (a->problems[i].pgno != b->problems[i].pgno ||
            a->problems[i].reason != b->problems[i].reason ||
            a->problems[i].detail != b->problems[i].detail)
            return 0;
    return 1;
}

static void tally_print(const char *what, const ntdsb_page_tally *t)
{
    fprintf(stderr, "%s: ok %llu old %llu uninit %llu bad %llu corr %llu listed %u:", what,
            (unsigned long long)t->ok, (unsigned long long)t->ok_old,
            (unsigned long long)t->uninit, (unsigned long long)t->bad,
            (unsigned long long)t->correctable, t->listed);
    for (uint32_t i = 0; i < t->listed && i < 12; i++)
        fprintf(stderr, " %u/%d/%llu", t->problems[i].pgno, t->problems[i].reason,
                (unsigned long long)t->problems[i].detail);
    fprintf(stderr, "\n");
}

/* The problem listed for pgno, or NULL. */
static const ntdsb_page_problem *problem(const ntdsb_page_tally *t, uint32_t pgno)
{
    for (uint32_t i = 0; i < t->listed; i++)
        if (t->problems[i].pgno == pgno)
            return &t->problems[i];
    return NULL;
}

static int problem_is(const ntdsb_page_tally *t, uint32_t pgno, int reason, uint64_t detail)
{
    const ntdsb_page_problem *p = problem(t, pgno);
    if (p == NULL || p->reason != reason || p->detail != detail) {
        fprintf(stderr, "  pgno %u: want reason %d detail %llu, got %s %d %llu\n", pgno, reason,
                (unsigned long long)detail, p ? "" : "(none)", p ? p->reason : 0,
                p ? (unsigned long long)p->detail : 0ull);
        return 0;
    }
    return 1;
}

/* The reference: the whole file as one chunk, nobody else checking. */
static ntdsb_pages *check_whole(const uint8_t *f, size_t size, int kind)
{
    ntdsb_pages *pg = xmalloc(sizeof *pg);
    ntdsb_pages_init(pg, kind, size);
    ntdsb_pages_in_order(pg, f, size, 0, 0);
    ntdsb_pages_finish(pg);
    return pg;
}

#define NFAKE_WORKERS 3

/*
 * In chunks: chunk sizes `chunk` (0: a random size per chunk), and for each
 * chunk a random choice of whether a simulated worker (one of three, each
 * taking its chunks in ascending order) tries it first.  mode: 0 never,
 * 1 always, 2 random.
 */
static ntdsb_pages *check_chunked(const uint8_t *f, size_t size, int kind, size_t chunk,
                                  int mode)
{
    ntdsb_pages *pg = xmalloc(sizeof *pg);
    ntdsb_page_tally *w = xmalloc(NFAKE_WORKERS * sizeof *w);
    size_t off = 0;
    ntdsb_pages_init(pg, kind, size);
    while (off < size) {
        size_t n = chunk ? chunk : 1 + (size_t)(rnd() % 70000);
        int done = 0;
        if (n > size - off)
            n = size - off;
        if (mode == 1 || (mode == 2 && (rnd() & 1)))
            done = ntdsb_pages_worker(pg, &w[rnd() % NFAKE_WORKERS], f + off, n, off);
        ntdsb_pages_in_order(pg, f + off, n, off, done);
        off += n;
    }
    ntdsb_pages_finish(pg);
    for (int i = 0; i < NFAKE_WORKERS; i++)
        ntdsb_pages_merge(pg, &w[i]);
    free(w);
    return pg;
}

/* Chunk sizes of the consistency runs (0: random per chunk). */
static const size_t CHUNKS[] = {4096, 8192, 24576, 40960, 1048576, 0, 1, 777, 65536, 65537};

/* Every chunking and worker pattern gives ref's results. */
static void check_consistent(const char *what, const uint8_t *f, size_t size, int kind,
                             const ntdsb_pages *ref)
{
    size_t nchunks = sizeof CHUNKS / sizeof CHUNKS[0];
    size_t random_size = 8192 + (size_t)(rnd() % 300000);
    for (size_t c = 0; c <= nchunks; c++) {
        size_t chunk = c == nchunks ? random_size : CHUNKS[c];
        for (int mode = 0; mode < 3; mode++) {
            if (chunk == 1 && (size > 300000 || mode != 2))
                continue; /* byte-at-a-time: once, small files */
            ntdsb_pages *pg = check_chunked(f, size, kind, chunk, mode);
            int same = tally_eq(&pg->tally, &ref->tally) && pg->geometry == ref->geometry &&
                       pg->unit_size == ref->unit_size && pg->trailer == ref->trailer &&
                       pg->tail_bytes == ref->tail_bytes && pg->head_len == ref->head_len &&
                       memcmp(pg->head, ref->head, ref->head_len) == 0 &&
                       (!ref->trailer ||
                        memcmp(pg->trailer_page, ref->trailer_page, ref->unit_size) == 0);
            if (!same) {
                fprintf(stderr, "%s: chunk %zu mode %d differs\n", what, chunk, mode);
                tally_print("  want", &ref->tally);
                tally_print("  got ", &pg->tally);
            }
            CHECK(same);
            free(pg);
        }
    }
}

/* ---- known-answer vectors (ese-format.md 4.5) ------------------------------------------- */

static void kat_pattern(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((i + i / 13) % 256);
}

static void test_kat(void)
{
    static const uint64_t v3[4] = {0xF9CE063147B6B865ull, 0x69AF69AFCDD590E4ull,
                                   0x770988F62EA1A9E2ull, 0x7CB77CB77B839A0Eull};
    static const uint64_t v4[4] = {0x7B807B80651E03FCull, 0x7C347C34BC66A14Bull,
                                   0x6C7E6C7ECB3A6C94ull, 0x05D105D19E99A841ull};
    static const uint64_t v5[4] = {0xF9D80627E9C2387Eull, 0x69AF69AFCDD590E4ull,
                                   0x770988F62EA1A9E2ull, 0x1F311F31B6717993ull};
    const uint32_t kpg = 0x98765431u;
    uint8_t *b = xmalloc(32768);
    g_test = "kat";

    /* 1: 8 KiB, i mod 256 for i < 4096, zero after, pgno 9876. */
    for (size_t i = 0; i < 4096; i++)
        b[i] = (uint8_t)i;
    b[37] |= 0x20;
    CHECK(ntdsb_ese_ecc_block(b, 8192, 9876, 1) == 0x0000000004042290ull);
    /* 2: header XOR over 8192 bytes. */
    put32(b, 0x89123456);
    put32(b + 4, 0x12345678);
    CHECK_EQ_INT(ntdsb_ese_header_checksum(b, 8192), 0x9F9B9F93u);
    /* 3-5: large pages.  As ESE's test does: blocks 1..3 first, their sums
     * stored at 40..63 (block 0 covers them), then block 0; the pgno word
     * @64 is NOT written (it stays pattern), unlike ntdsb_ese_set_page_checksum. */
    {
        static const size_t sizes[3] = {32768, 16384, 28672};
        const uint64_t *want[3] = {v3, v4, v5};
        for (int v = 0; v < 3; v++) {
            size_t cb = sizes[v], bs = cb <= 16384 ? 4096 : 8192;
            kat_pattern(b, cb);
            for (size_t k = 1; k < 4; k++) {
                size_t len = cb - k * bs < bs ? cb - k * bs : bs;
                uint64_t s = ntdsb_ese_ecc_block(b + k * bs, len, kpg, 0);
                CHECK(s == want[v][k]);
                for (int i = 0; i < 8; i++)
                    b[40 + 8 * (k - 1) + i] = (uint8_t)(s >> (8 * i));
            }
            CHECK(ntdsb_ese_ecc_block(b, bs, kpg, 1) == want[v][0]);
        }
    }
    free(b);
}

/*
 * The same vectors through ntdsb_pages on whole files.  A vector page put at
 * pgno P of a generated database carries the checksum of its own pgno Q, so
 * the checker must call it MISPLACED with detail Q (E == 0, D == P ^ Q in
 * every block); vector 1 placed at pgno 9876 of a mostly empty file must be
 * valid; vector 2's buffer, which has the header XOR, is accepted as the
 * trailer at the end of a file.
 */
static void test_kat_files(void)
{
    g_test = "kat_files";
    {
        /* Vector 1 at its own pgno 9876: 9878 pages, the others zero. */
        size_t cb = 8192, size = (size_t)(9876 + 2) * cb;
        uint8_t *f = xmalloc(size);
        make_db_header(f, cb, 8192);
        memcpy(f + cb, f, cb);
        uint8_t *p = db_page(f, cb, 9876);
        for (size_t i = 0; i < 4096; i++)
            p[i] = (uint8_t)i;
        p[37] |= 0x20;
        for (int i = 0; i < 8; i++)
            p[i] = (uint8_t)(0x0000000004042290ull >> (8 * i));
        ntdsb_pages *pg = check_whole(f, size, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->geometry, 1);
        CHECK_EQ_INT(pg->tally.ok, 1);
        CHECK_EQ_INT(pg->tally.uninit, 9875);
        CHECK_EQ_INT(pg->tally.bad, 0);
        free(pg);
        /* ... and at pgno 3 of a small file: MISPLACED, detail 9876. */
        uint8_t *g = make_db(cb, 6, 1);
        memcpy(db_page(g, cb, 3), p, cb);
        /* vector 2's buffer as the last page: the trailer */
        uint8_t *t = db_page(g, cb, 6);
        memcpy(t, p, cb);
        put32(t, 0x89123456);
        put32(t + 4, 0x12345678);
        put32(t, 0x9F9B9F93u);
        pg = check_whole(g, 8 * cb, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->tally.ok, 4);
        CHECK_EQ_INT(pg->tally.bad, 1);
        CHECK(problem_is(&pg->tally, 3, NTDSB_PAGE_MISPLACED, 9876));
        CHECK_EQ_INT(pg->trailer, 1);
        CHECK(memcmp(pg->trailer_page, t, cb) == 0);
        free(pg);
        free(g);
        free(f);
    }
    {
        /* Vectors 3 (32 KiB) and 4 (16 KiB) at pgno 2: MISPLACED 0x98765431
         * (E == 0 and D == 2 ^ 0x98765431 in all four blocks).  The vectors
         * leave the pgno word @64 as the pattern, so it stays. */
        static const uint64_t v3[4] = {0xF9CE063147B6B865ull, 0x69AF69AFCDD590E4ull,
                                       0x770988F62EA1A9E2ull, 0x7CB77CB77B839A0Eull};
        static const uint64_t v4[4] = {0x7B807B80651E03FCull, 0x7C347C34BC66A14Bull,
                                       0x6C7E6C7ECB3A6C94ull, 0x05D105D19E99A841ull};
        for (int which = 0; which < 2; which++) {
            size_t cb = which == 0 ? 32768 : 16384;
            const uint64_t *v = which == 0 ? v3 : v4;
            uint8_t *f = make_db(cb, 4, 2);
            uint8_t *p = db_page(f, cb, 2);
            kat_pattern(p, cb);
            for (size_t k = 0; k < 4; k++)
                for (int i = 0; i < 8; i++)
                    p[(k == 0 ? 0 : 40 + 8 * (k - 1)) + i] = (uint8_t)(v[k] >> (8 * i));
            ntdsb_pages *pg = check_whole(f, 6 * cb, NTDSB_PAGES_DATABASE);
            CHECK_EQ_INT(pg->unit_size, cb);
            CHECK_EQ_INT(pg->tally.ok, 3);
            CHECK_EQ_INT(pg->tally.bad, 1);
            CHECK(problem_is(&pg->tally, 2, NTDSB_PAGE_MISPLACED, 0x98765431u));
            free(pg);
            free(f);
        }
    }
}

/* ---- single-bit errors ------------------------------------------------------------------- */

/* A pages object with the geometry of a cb-page database (or cb-segment log). */
static void fake_geometry(ntdsb_pages *pg, int kind, size_t cb, uint64_t file_size)
{
    ntdsb_pages_init(pg, kind, file_size);
    pg->geometry = 1;
    pg->unit_size = (uint32_t)cb;
    pg->first_unit = kind == NTDSB_PAGES_DATABASE ? 2 : 1;
}

/* What the checker says about p (unit u) with bit `bit` flipped. */
static int flipped_reason(ntdsb_pages *pg, const uint8_t *p, uint8_t *copy, uint64_t u,
                          uint32_t bit, uint64_t *detail)
{
    ntdsb_page_tally t;
    memset(&t, 0, sizeof t);
    memcpy(copy, p, pg->unit_size);
    flip_bit(copy, bit);
    ntdsb_pages_check_unit(pg, &t, copy, u);
    if (t.bad != 1 || t.listed != 1) {
        *detail = 0;
        return t.ok ? -1 : -2;
    }
    if ((t.correctable == 1) != (t.problems[0].reason == NTDSB_PAGE_CORRECTABLE))
        return -3;
    *detail = t.problems[0].detail;
    return t.problems[0].reason;
}

/*
 * Expected result of flipping bit b of a valid new-format unit checked as
 * pgno: CORRECTABLE at b, except the stored checksum of block 0 (bytes 0..7,
 * not covered by its own ECC): bits 0..31 look exactly like a page of pgno
 * pgno ^ (1 << b) (MISPLACED), bits 32..63 like a damaged ECC (BAD_CHECKSUM);
 * and bit 301, the new-checksum flag itself, which makes the page an
 * old-format one: FLAG_FLIPPED, never "corrected" (as ESE).
 */
static int expect_flip(uint32_t b, uint32_t pgno, uint64_t *detail)
{
    if (b < 32) {
        *detail = pgno ^ (1u << b);
        return NTDSB_PAGE_MISPLACED;
    }
    if (b < 64) {
        *detail = 0;
        return NTDSB_PAGE_BAD_CHECKSUM;
    }
    if (b == 37 * 8 + 5) {
        *detail = 0;
        return NTDSB_PAGE_FLAG_FLIPPED;
    }
    *detail = b;
    return NTDSB_PAGE_CORRECTABLE;
}

static void flip_sweep(const char *what, int kind, size_t cb, uint32_t step)
{
    ntdsb_pages *pg = xmalloc(sizeof *pg);
    uint8_t *p = xmalloc(cb), *copy = xmalloc(cb);
    const uint64_t u = kind == NTDSB_PAGES_DATABASE ? 7 : 5; /* DB pgno 6; log isec 5 */
    const uint32_t pgno = kind == NTDSB_PAGES_DATABASE ? 6 : 5;
    uint32_t bad = 0, tried = 0;

    fake_geometry(pg, kind, cb, 1u << 30);
    if (kind == NTDSB_PAGES_LOG) {
        ntdsb_ese_generate_log_segments(p, cb, pgno, 1, 13, 9, NULL);
    } else if (cb == 8192 || cb == 32768) {
        ntdsb_ese_generate_pages(p, cb, pgno, 1, 3, 4);
    } else {
        for (size_t i = 40; i < cb; i++)
            p[i] = (uint8_t)rnd();
        put32(p + 36, NTDSB_ESE_FLAG_NEW_CHECKSUM);
        ntdsb_ese_set_page_checksum(p, cb, pgno);
    }
    CHECK_EQ_INT(ntdsb_ese_verify_page(p, cb, pgno), NTDSB_ESE_PAGE_OK);
    for (uint32_t b = 0; b < cb * 8; b += (b < 1024 || b + 1024 >= cb * 8) ? 1 : step) {
        uint64_t want_detail, got_detail;
        int want = expect_flip(b, pgno, &want_detail);
        int got = flipped_reason(pg, p, copy, u, b, &got_detail);
        tried++;
        /* A log also accepts isec - 1: bit 0 of the low half makes the
         * segment one of isec ^ 1 = isec - 1 for an odd isec: valid. */
        if (kind == NTDSB_PAGES_LOG && b < 32 && (pgno ^ (1u << b)) == pgno - 1)
            want = -1;
        if (got != want || (want > 0 && got_detail != want_detail)) {
            if (bad++ < 5)
                fprintf(stderr, "%s: bit %u: want %d/%llu got %d/%llu\n", what, b, want,
                        (unsigned long long)want_detail, got, (unsigned long long)got_detail);
        }
    }
    if (bad)
        fprintf(stderr, "%s: %u of %u bits wrong\n", what, bad, tried);
    CHECK_EQ_INT(bad, 0);
    free(pg);
    free(p);
    free(copy);
}

static void test_single_bits(void)
{
    g_test = "single_bits";
    flip_sweep("8K every bit", NTDSB_PAGES_DATABASE, 8192, 1);
    flip_sweep("16K sample", NTDSB_PAGES_DATABASE, 16384, 37);
    flip_sweep("32K sample", NTDSB_PAGES_DATABASE, 32768, 53);
    flip_sweep("4K every bit", NTDSB_PAGES_DATABASE, 4096, 1);
    flip_sweep("log 4K every bit", NTDSB_PAGES_LOG, 4096, 1);
    flip_sweep("log 1K every bit", NTDSB_PAGES_LOG, 1024, 1);
    flip_sweep("log 2K every bit", NTDSB_PAGES_LOG, 2048, 1);
}

/* ---- databases ----------------------------------------------------------------------------- */

/*
 * An 8 KiB database with one of everything, at known pages; checked whole,
 * then for every chunking.
 */
static void test_db8(void)
{
    const size_t cb = 8192;
    const uint32_t npages = 400;
    size_t size = (2 + (size_t)npages) * cb;
    uint8_t *f = make_db(cb, npages, 11), *tmp = xmalloc(cb);
    g_test = "db8";

    flip_bit(db_page(f, cb, 5), 8003);                    /* CORRECTABLE 8003 */
    memcpy(db_page(f, cb, 17), db_page(f, cb, 30), cb);   /* MISPLACED 30 */
    db_page(f, cb, 40)[37] ^= 0x20;                        /* FLAG_FLIPPED */
    for (size_t i = 0; i < cb; i++)                        /* garbage: BAD_CHECKSUM */
        db_page(f, cb, 41)[i] = (uint8_t)rnd();
    db_page(f, cb, 41)[37] |= 0x20;
    memset(db_page(f, cb, 50), 0, 3 * cb);                 /* 50..52 uninit */
    make_old_format(db_page(f, cb, 60), cb, 60);           /* ok_old */
    make_old_format(db_page(f, cb, 61), cb, 99);           /* old, MISPLACED 99 */
    make_old_format(db_page(f, cb, 62), cb, 62);           /* old, flag set: FLAG_FLIPPED */
    db_page(f, cb, 62)[37] |= 0x20;
    make_trailer(db_page(f, cb, 70), cb);                  /* a trailer, not at the end */
    flip_bit(db_page(f, cb, 80), 100);                     /* two bits: not correctable */
    flip_bit(db_page(f, cb, 80), 40000);
    make_trailer(db_page(f, cb, npages), cb);              /* the real trailer */

    ntdsb_pages *ref = check_whole(f, size, NTDSB_PAGES_DATABASE);
    const ntdsb_page_tally *t = &ref->tally;
    CHECK_EQ_INT(ref->geometry, 1);
    CHECK_EQ_INT(ref->unit_size, 8192);
    CHECK_EQ_INT(ref->first_unit, 2);
    CHECK_EQ_INT(ref->head_len, 65536);
    CHECK(memcmp(ref->head, f, 65536) == 0);
    CHECK_EQ_INT(ref->trailer, 1);
    CHECK(memcmp(ref->trailer_page, db_page(f, cb, npages), cb) == 0);
    CHECK_EQ_INT(ref->tail_bytes, 0);
    CHECK_EQ_INT(t->uninit, 3);
    CHECK_EQ_INT(t->ok_old, 1);
    CHECK_EQ_INT(t->bad, 8);
    CHECK_EQ_INT(t->correctable, 1);
    CHECK_EQ_INT(t->ok, npages - 1 - 3 - 1 - 8);
    CHECK_EQ_INT(t->listed, 8);
    CHECK(problem_is(t, 5, NTDSB_PAGE_CORRECTABLE, 8003));
    CHECK(problem_is(t, 17, NTDSB_PAGE_MISPLACED, 30));
    CHECK(problem_is(t, 40, NTDSB_PAGE_FLAG_FLIPPED, 0));
    CHECK(problem_is(t, 41, NTDSB_PAGE_BAD_CHECKSUM, 0));
    CHECK(problem_is(t, 61, NTDSB_PAGE_MISPLACED, 99));
    CHECK(problem_is(t, 62, NTDSB_PAGE_FLAG_FLIPPED, 0));
    CHECK(problem_is(t, 70, NTDSB_PAGE_MISPLACED, 0)); /* header XOR, pgno word 0 */
    CHECK(problem_is(t, 80, NTDSB_PAGE_BAD_CHECKSUM, 0));
    for (uint32_t i = 1; i < t->listed; i++)
        CHECK(t->problems[i - 1].pgno < t->problems[i].pgno);
    check_consistent("db8", f, size, NTDSB_PAGES_DATABASE, ref);

    /* Tail bytes: 1000 bytes after the last page, which is then not the
     * file's last unit, so no trailer: pgno 400 is bad. */
    {
        uint8_t *g = xmalloc(size + 1000);
        memcpy(g, f, size);
        ntdsb_pages *pt = check_whole(g, size + 1000, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pt->tail_bytes, 1000);
        CHECK_EQ_INT(pt->trailer, 0);
        CHECK_EQ_INT(pt->tally.bad, 9);
        CHECK(problem(&pt->tally, npages) != NULL);
        check_consistent("db8 tail", g, size + 1000, NTDSB_PAGES_DATABASE, pt);
        free(pt);
        free(g);
    }
    free(ref);
    free(tmp);
    free(f);
}

/* More than 64 bad pages: the lowest 64 are listed, whatever the split. */
static void test_many_bad(void)
{
    const size_t cb = 8192;
    const uint32_t npages = 300;
    size_t size = (2 + (size_t)npages) * cb;
    uint8_t *f = make_db(cb, npages, 12);
    g_test = "many_bad";
    for (uint32_t pgno = 3; pgno <= npages; pgno += 3)
        db_page(f, cb, pgno)[5000] ^= 0x10;
    ntdsb_pages *ref = check_whole(f, size, NTDSB_PAGES_DATABASE);
    CHECK_EQ_INT(ref->tally.bad, 100);
    CHECK_EQ_INT(ref->tally.correctable, 100);
    CHECK_EQ_INT(ref->tally.listed, NTDSB_PAGES_LISTED);
    CHECK_EQ_INT(ref->tally.problems[0].pgno, 3);
    CHECK_EQ_INT(ref->tally.problems[63].pgno, 192);
    CHECK_EQ_INT(ref->tally.problems[63].detail, 5000 * 8 + 4);
    check_consistent("many_bad", f, size, NTDSB_PAGES_DATABASE, ref);
    free(ref);
    free(f);
}

/* 32 KiB pages: per-block errors, the stored pgno, stored block checksums. */
static void test_db32(void)
{
    const size_t cb = 32768;
    const uint32_t npages = 60;
    size_t size = (2 + (size_t)npages) * cb;
    uint8_t *f = make_db(cb, npages, 13);
    g_test = "db32";

    set_checksum_keep_pgno(db_page(f, cb, 7), cb, 7, 1234);     /* BAD_PGNO 1234 */
    flip_bit(db_page(f, cb, 9), 2 * 65536 + 777);                /* block 2: CORRECTABLE */
    flip_bit(db_page(f, cb, 10), 44 * 8 + 3);                    /* block 1's stored sum */
    flip_bit(db_page(f, cb, 11), 65 * 8 + 1);                    /* the pgno word itself */
    flip_bit(db_page(f, cb, 12), 70000);                         /* blocks 1 and 3: both */
    flip_bit(db_page(f, cb, 12), 3 * 65536 + 5);                 /* correctable */
    memcpy(db_page(f, cb, 20), db_page(f, cb, 21), cb);          /* MISPLACED 21 */
    db_page(f, cb, 25)[37] ^= 0x20;                               /* FLAG_FLIPPED */
    flip_bit(db_page(f, cb, 26), 1000);                          /* two bits in block 0 */
    flip_bit(db_page(f, cb, 26), 1001);
    memset(db_page(f, cb, 30), 0, cb);
    make_trailer(db_page(f, cb, npages), cb);

    ntdsb_pages *ref = check_whole(f, size, NTDSB_PAGES_DATABASE);
    const ntdsb_page_tally *t = &ref->tally;
    CHECK_EQ_INT(ref->unit_size, 32768);
    CHECK_EQ_INT(ref->trailer, 1);
    CHECK_EQ_INT(t->uninit, 1);
    CHECK_EQ_INT(t->bad, 8);
    CHECK_EQ_INT(t->correctable, 4);
    CHECK_EQ_INT(t->ok, npages - 1 - 1 - 8);
    CHECK(problem_is(t, 7, NTDSB_PAGE_BAD_PGNO, 1234));
    CHECK(problem_is(t, 9, NTDSB_PAGE_CORRECTABLE, 2 * 65536 + 777));
    CHECK(problem_is(t, 10, NTDSB_PAGE_CORRECTABLE, 44 * 8 + 3));
    CHECK(problem_is(t, 11, NTDSB_PAGE_CORRECTABLE, 65 * 8 + 1));
    CHECK(problem_is(t, 12, NTDSB_PAGE_CORRECTABLE, 70000));
    CHECK(problem_is(t, 20, NTDSB_PAGE_MISPLACED, 21));
    CHECK(problem_is(t, 25, NTDSB_PAGE_FLAG_FLIPPED, 0));
    CHECK(problem_is(t, 26, NTDSB_PAGE_BAD_CHECKSUM, 0));
    check_consistent("db32", f, size, NTDSB_PAGES_DATABASE, ref);
    free(ref);
    free(f);
}

/* Header geometry: page-size field, primary/shadow, both bad, short files. */
static void test_geometry(void)
{
    g_test = "geometry";
    static const size_t sizes[] = {4096, 8192, 16384, 32768};
    for (size_t i = 0; i < 4; i++) {
        size_t cb = sizes[i], size = 12 * cb;
        uint8_t *f = make_db(cb, 10, 20 + i);
        ntdsb_pages *pg = check_whole(f, size, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->geometry, 1);
        CHECK_EQ_INT(pg->unit_size, cb);
        CHECK_EQ_INT(pg->tally.ok, 10);
        CHECK_EQ_INT(pg->tally.bad, 0);
        free(pg);

        /* Bad primary, good shadow. */
        f[100] ^= 1;
        pg = check_whole(f, size, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->geometry, 1);
        CHECK_EQ_INT(pg->unit_size, cb);
        CHECK_EQ_INT(pg->tally.ok, 10);
        check_consistent("bad primary", f, size, NTDSB_PAGES_DATABASE, pg);
        free(pg);

        /* Both bad: nothing checked, head still filled. */
        f[cb + 100] ^= 1;
        pg = check_whole(f, size, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->geometry, 0);
        CHECK_EQ_INT(pg->tally.ok + pg->tally.bad + pg->tally.uninit, 0);
        CHECK_EQ_INT(pg->head_len, size < 65536 ? size : 65536);
        CHECK(memcmp(pg->head, f, pg->head_len) == 0);
        CHECK_EQ_INT(pg->tail_bytes, 0);
        check_consistent("both bad", f, size, NTDSB_PAGES_DATABASE, pg);
        free(pg);
        free(f);
    }
    {
        /* A page-size field that disagrees (8192 page, field 16384): the
         * checksum matches every candidate, the field none: geometry 0. */
        uint8_t *f = make_db(8192, 4, 30);
        put32(f + 236, 16384);
        put32(f, ntdsb_ese_header_checksum(f, 8192));
        memcpy(f + 8192, f, 8192);
        ntdsb_pages *pg = check_whole(f, 6 * 8192, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->geometry, 0);
        free(pg);
        /* Field 0 means 4096, not 8192. */
        put32(f + 236, 0);
        put32(f, ntdsb_ese_header_checksum(f, 8192));
        memcpy(f + 8192, f, 8192);
        pg = check_whole(f, 6 * 8192, NTDSB_PAGES_DATABASE);
        CHECK(pg->geometry == 1 && pg->unit_size == 4096);
        free(pg);
        free(f);
    }
    {
        /* Files shorter than the head: 8 KiB pages, 0..5 data pages (16 KiB
         * to 56 KiB), and one cut in the middle of a page. */
        for (uint32_t n = 0; n <= 5; n++) {
            size_t size = (2 + (size_t)n) * 8192;
            uint8_t *f = make_db(8192, n, 40 + n);
            if (n == 5)
                make_trailer(f + 6 * 8192, 8192);
            ntdsb_pages *pg = check_whole(f, size, NTDSB_PAGES_DATABASE);
            CHECK_EQ_INT(pg->geometry, 1);
            CHECK_EQ_INT(pg->head_len, size);
            CHECK_EQ_INT(pg->tally.ok, n == 5 ? 4 : n);
            CHECK_EQ_INT(pg->trailer, n == 5);
            check_consistent("short", f, size, NTDSB_PAGES_DATABASE, pg);
            free(pg);
            pg = check_whole(f, size - 3000, NTDSB_PAGES_DATABASE);
            CHECK_EQ_INT(pg->tally.ok, n == 0 ? 0 : n - 1);
            /* n == 0: no room for header + shadow, so no geometry, no tail */
            CHECK_EQ_INT(pg->geometry, n > 0);
            CHECK_EQ_INT(pg->tail_bytes, n == 0 ? 0 : 8192 - 3000);
            CHECK_EQ_INT(pg->trailer, 0);
            check_consistent("short cut", f, size - 3000, NTDSB_PAGES_DATABASE, pg);
            free(pg);
            free(f);
        }
        /* Header only (no shadow): no geometry.  Empty file: nothing. */
        uint8_t *f = make_db(8192, 0, 50);
        ntdsb_pages *pg = check_whole(f, 8192, NTDSB_PAGES_DATABASE);
        CHECK_EQ_INT(pg->geometry, 0);
        CHECK_EQ_INT(pg->head_len, 8192);
        free(pg);
        pg = xmalloc(sizeof *pg);
        ntdsb_pages_init(pg, NTDSB_PAGES_DATABASE, 0);
        ntdsb_pages_finish(pg);
        CHECK(pg->geometry == 0 && pg->head_len == 0 && pg->tail_bytes == 0);
        free(pg);
        free(f);
    }
    {
        /* The pipeline failed early: 20000 of an announced 1 MiB arrived.
         * finish() decides from what head has. */
        uint8_t *f = make_db(8192, 3, 51);
        ntdsb_pages *pg = xmalloc(sizeof *pg);
        ntdsb_pages_init(pg, NTDSB_PAGES_DATABASE, 1 << 20);
        ntdsb_pages_in_order(pg, f, 20000, 0, 0);
        CHECK_EQ_INT(atomic_load(&pg->ready), 0);
        CHECK_EQ_INT(ntdsb_pages_worker(pg, &pg->tally, f, 10, 0), 0);
        ntdsb_pages_finish(pg);
        CHECK_EQ_INT(pg->geometry, 1);
        CHECK_EQ_INT(pg->head_len, 20000);
        CHECK_EQ_INT(pg->tally.ok, 0);
        free(pg);
        /* A gap in the in-order calls stops the checking, quietly. */
        pg = xmalloc(sizeof *pg);
        ntdsb_pages_init(pg, NTDSB_PAGES_DATABASE, 5 * 8192);
        ntdsb_pages_in_order(pg, f, 8192, 0, 0);
        ntdsb_pages_in_order(pg, f + 16384, 8192, 16384, 0);
        ntdsb_pages_finish(pg);
        CHECK(pg->broken && pg->tally.ok == 0);
        free(pg);
        /* Kind NONE: nothing at all. */
        pg = xmalloc(sizeof *pg);
        ntdsb_pages_init(pg, NTDSB_PAGES_NONE, 5 * 8192);
        CHECK_EQ_INT(ntdsb_pages_worker(pg, &pg->tally, f, 5 * 8192, 0), 1);
        ntdsb_pages_in_order(pg, f, 5 * 8192, 0, 1);
        ntdsb_pages_finish(pg);
        CHECK(pg->head_len == 0 && pg->tally.ok == 0 && pg->geometry == 0);
        free(pg);
        free(f);
    }
}

/* ---- logs ----------------------------------------------------------------------------------- */

static void test_logs(void)
{
    size_t size;
    g_test = "logs";
    {
        uint8_t *f = make_log(4096, 40, 8, 4000, &size);
        uint8_t *seg = f + 4096; /* isec 1 */
        seg[5 * 4096 + 3000] ^= 0x40;                          /* isec 6: CORRECTABLE */
        ntdsb_ese_generate_log_segments(seg + 7 * 4096, 4096, 7, 1, 13, 77, NULL); /* isec 8 as 7 */
        memset(seg + 11 * 4096, 0, 3 * 4096);                   /* isec 12..14 zero */
        make_old_format(seg + 19 * 4096, 4096, 20);             /* isec 20: old only: bad */
        for (size_t i = 0; i < 4096; i++)                       /* isec 25: garbage */
            seg[24 * 4096 + i] = (uint8_t)rnd();
        ntdsb_ese_generate_log_segments(seg + 29 * 4096, 4096, 3, 1, 13, 77, NULL); /* isec 30 as 3 */
        ntdsb_pages *ref = check_whole(f, size, NTDSB_PAGES_LOG);
        const ntdsb_page_tally *t = &ref->tally;
        CHECK_EQ_INT(ref->geometry, 1);
        CHECK_EQ_INT(ref->unit_size, 4096);
        CHECK_EQ_INT(ref->first_unit, 1);
        CHECK_EQ_INT(ref->head_len, 4096);
        CHECK(memcmp(ref->head, f, 4096) == 0);
        CHECK_EQ_INT(t->uninit, 3);
        CHECK_EQ_INT(t->bad, 4);
        CHECK_EQ_INT(t->correctable, 1);
        CHECK_EQ_INT(t->ok, 40 - 3 - 4);
        CHECK(problem_is(t, 6, NTDSB_PAGE_CORRECTABLE, 3000 * 8 + 6));
        CHECK(problem_is(t, 20, NTDSB_PAGE_BAD_CHECKSUM, 0));
        CHECK(problem_is(t, 25, NTDSB_PAGE_BAD_CHECKSUM, 0));
        CHECK(problem_is(t, 30, NTDSB_PAGE_MISPLACED, 3));
        check_consistent("log", f, size, NTDSB_PAGES_LOG, ref);
        free(ref);

        /* Tail bytes: a log with a partial segment at the end. */
        ref = check_whole(f, size - 100, NTDSB_PAGES_LOG);
        CHECK_EQ_INT(ref->tail_bytes, 4096 - 100);
        CHECK_EQ_INT(ref->tally.ok + ref->tally.bad + ref->tally.uninit, 39);
        check_consistent("log tail", f, size - 100, NTDSB_PAGES_LOG, ref);
        free(ref);
        /* Shorter than its header: geometry 0, head filled. */
        ref = check_whole(f, 3000, NTDSB_PAGES_LOG);
        CHECK(ref->geometry == 0 && ref->head_len == 3000 && memcmp(ref->head, f, 3000) == 0);
        free(ref);
        free(f);
    }
    {
        /* 1 KiB sectors: the header is 4 of them, segments from isec 4. */
        uint8_t *f = make_log(1024, 30, 8, 4000, &size);
        f[4096 + 2 * 1024 + 500] ^= 0x01; /* isec 6 */
        ntdsb_pages *ref = check_whole(f, size, NTDSB_PAGES_LOG);
        CHECK_EQ_INT(ref->unit_size, 1024);
        CHECK_EQ_INT(ref->first_unit, 4);
        CHECK_EQ_INT(ref->tally.ok, 29);
        CHECK(problem_is(&ref->tally, 6, NTDSB_PAGE_CORRECTABLE, 500 * 8));
        check_consistent("log 1K", f, size, NTDSB_PAGES_LOG, ref);
        free(ref);
        free(f);
    }
    {
        /* Older versions have no segments: geometry 0; so has a bad header. */
        uint8_t *f = make_log(4096, 5, 8, 3999, &size);
        ntdsb_pages *ref = check_whole(f, size, NTDSB_PAGES_LOG);
        CHECK(ref->geometry == 0 && ref->head_len == 4096 && ref->tally.ok == 0);
        free(ref);
        free(f);
        f = make_log(4096, 5, 9, 0, &size);
        ref = check_whole(f, size, NTDSB_PAGES_LOG);
        CHECK_EQ_INT(ref->geometry, 1);
        free(ref);
        f[700] ^= 1;
        ref = check_whole(f, size, NTDSB_PAGES_LOG);
        CHECK_EQ_INT(ref->geometry, 0);
        check_consistent("log bad header", f, size, NTDSB_PAGES_LOG, ref);
        free(ref);
        free(f);
        f = make_log(4096, 5, 8, 4000, &size);
        put16(f + 8, 3000); /* not a power of two */
        put32(f, ntdsb_ese_header_checksum(f, 4096));
        ref = check_whole(f, size, NTDSB_PAGES_LOG);
        CHECK_EQ_INT(ref->geometry, 0);
        free(ref);
        free(f);
    }
}

/* ---- through the pipelines ---------------------------------------------------------------- */

/* Back up data with the engine into a temp file (pages checked into *pg if
 * not NULL); returns the descriptor at 0, *len = archive bytes. */
static int backup_to_file(const uint8_t *data, uint64_t size, uint32_t chunk, uint32_t threads,
                          int serial, ntdsb_pages *pg, size_t *len)
{
    ntdsb_provider prov;
    ntdsb_backup_config c;
    ntdsb_error err;
    ntdsb_sink sink;
    fake f = {data, size, 0};
    struct stat sb;
    int fd = file_from_bytes(NULL, 0), rc;

    memset(&prov, 0, sizeof prov);
    prov.BackupRead = fake_read;
    ntdsb_backup_config_init(&c);
    CHECK(c.pages == NULL);
    c.chunk_size = chunk;
    c.threads = threads;
    c.serial = serial;
    c.pages = pg;
    sink.fd = fd;
    sink.write = NULL;
    sink.ctx = NULL;
    rc = ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, NULL, NULL, &err);
    CHECK_EQ_INT(rc, NTDSB_OK);
    if (rc != NTDSB_OK)
        fprintf(stderr, "backup: %s\n", err.message);
    fstat(fd, &sb);
    *len = (size_t)sb.st_size;
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static uint8_t *file_bytes(int fd, size_t len)
{
    uint8_t *b = xmalloc(len);
    CHECK(pread(fd, b, len, 0) == (ssize_t)len);
    return b;
}

static void pipeline_case(const char *what, const uint8_t *f, size_t size, int kind,
                          uint32_t chunk)
{
    ntdsb_pages *ref = check_whole(f, size, kind);
    ntdsb_pages *pg = xmalloc(sizeof *pg);
    size_t plain_len, len;
    int plain_fd = backup_to_file(f, size, chunk, 2, 0, NULL, &plain_len);
    uint8_t *plain = file_bytes(plain_fd, plain_len);
    static const struct {
        uint32_t threads;
        int serial;
    } modes[] = {{1, 1}, {1, 0}, {4, 0}};

    for (size_t m = 0; m < 3; m++) {
        ntdsb_pages_init(pg, kind, size);
        int fd = backup_to_file(f, size, chunk, modes[m].threads, modes[m].serial, pg, &len);
        uint8_t *got = file_bytes(fd, len);
        /* Page checking changes nothing in the archive. */
        CHECK(len == plain_len && memcmp(got, plain, len) == 0);
        free(got);
        close(fd);
        if (!tally_eq(&pg->tally, &ref->tally)) {
            fprintf(stderr, "%s: backup threads %u serial %d\n", what, modes[m].threads,
                    modes[m].serial);
            tally_print("  want", &ref->tally);
            tally_print("  got ", &pg->tally);
        }
        CHECK(tally_eq(&pg->tally, &ref->tally));
        CHECK(pg->geometry == ref->geometry && pg->trailer == ref->trailer &&
              pg->tail_bytes == ref->tail_bytes && pg->head_len == ref->head_len);
    }
    for (uint32_t threads = 1; threads <= 4; threads += 3) {
        for (int verify_only = 0; verify_only < 2; verify_only++) {
            ntdsb_restore_config rc;
            ntdsb_error err;
            ntdsb_hash128 h;
            int out = verify_only ? -1 : file_from_bytes(NULL, 0);
            memset(&rc, 0, sizeof rc);
            rc.threads = threads;
            rc.pages = pg;
            ntdsb_pages_init(pg, kind, size);
            lseek(plain_fd, 0, SEEK_SET);
            int r = ntdsb_restore_file(plain_fd, out, size, &rc, NULL, NULL, NULL, &h, &err);
            CHECK_EQ_INT(r, NTDSB_OK);
            if (r != NTDSB_OK)
                fprintf(stderr, "restore: %s\n", err.message);
            if (!tally_eq(&pg->tally, &ref->tally)) {
                fprintf(stderr, "%s: restore threads %u\n", what, threads);
                tally_print("  want", &ref->tally);
                tally_print("  got ", &pg->tally);
            }
            CHECK(tally_eq(&pg->tally, &ref->tally));
            CHECK(pg->geometry == ref->geometry && pg->trailer == ref->trailer &&
                  pg->tail_bytes == ref->tail_bytes && pg->head_len == ref->head_len &&
                  memcmp(pg->head, ref->head, ref->head_len) == 0);
            if (out >= 0)
                close(out);
        }
    }
    /* A restore that fails half way (a frame damaged): results still
     * consistent, and never more than the reference. */
    {
        uint8_t *bad = xmalloc(plain_len);
        ntdsb_restore_config rc;
        memcpy(bad, plain, plain_len);
        bad[plain_len / 2] ^= 0xFF;
        int bfd = file_from_bytes(bad, plain_len);
        memset(&rc, 0, sizeof rc);
        rc.threads = 4;
        rc.pages = pg;
        ntdsb_pages_init(pg, kind, size);
        CHECK(ntdsb_restore_file(bfd, -1, size, &rc, NULL, NULL, NULL, NULL, NULL) != NTDSB_OK);
        CHECK(pg->tally.ok <= ref->tally.ok && pg->tally.bad <= ref->tally.bad);
        close(bfd);
        free(bad);
    }
    close(plain_fd);
    free(plain);
    free(pg);
    free(ref);
}

static void test_pipelines(void)
{
    g_test = "pipelines";
    {
        const size_t cb = 8192;
        const uint32_t n = 700;
        size_t size = (2 + (size_t)n) * cb;
        uint8_t *f = make_db(cb, n, 60);
        flip_bit(db_page(f, cb, 3), 12345);
        flip_bit(db_page(f, cb, 200), 999);
        memcpy(db_page(f, cb, 300), db_page(f, cb, 301), cb);
        db_page(f, cb, 450)[37] ^= 0x20;
        memset(db_page(f, cb, 500), 0, 2 * cb);
        for (uint32_t p = 600; p < 620; p++)
            db_page(f, cb, p)[4000] ^= 0x55;
        make_trailer(db_page(f, cb, n), cb);
        pipeline_case("db8 24K", f, size, NTDSB_PAGES_DATABASE, 24576);
        pipeline_case("db8 40K", f, size, NTDSB_PAGES_DATABASE, 40960);
        pipeline_case("db8 1M", f, size, NTDSB_PAGES_DATABASE, 1048576);
        free(f);
    }
    {
        const size_t cb = 32768;
        const uint32_t n = 90;
        size_t size = (2 + (size_t)n) * cb + 5000; /* with tail bytes */
        uint8_t *f = make_db(cb, n, 61);
        f = realloc(f, size);
        memset(f + size - 5000, 0x5A, 5000);
        flip_bit(db_page(f, cb, 4), 3 * 65536 + 9);
        set_checksum_keep_pgno(db_page(f, cb, 50), cb, 50, 7);
        pipeline_case("db32 40K", f, size, NTDSB_PAGES_DATABASE, 40960);
        pipeline_case("db32 24K", f, size, NTDSB_PAGES_DATABASE, 24576);
        free(f);
    }
    {
        size_t size;
        uint8_t *f = make_log(4096, 2000, 8, 4000, &size);
        f[4096 + 100 * 4096 + 7] ^= 0x80;
        pipeline_case("log 24K", f, size, NTDSB_PAGES_LOG, 24576);
        free(f);
    }
}

/* ---- benchmark --------------------------------------------------------------------------- */

static int bench(size_t mb)
{
    const size_t cb = 8192;
    uint32_t n = (uint32_t)(mb * 1024 * 1024 / cb);
    size_t size = (2 + (size_t)n) * cb;
    uint8_t *f = make_db(cb, n, 70);
    ntdsb_pages *pg = xmalloc(sizeof *pg);
    double best = 1e9, best_v = 1e9;
    for (int run = 0; run < 5; run++) {
        double t0 = now();
        ntdsb_pages_init(pg, NTDSB_PAGES_DATABASE, size);
        for (size_t off = 0; off < size; off += 1048576)
            ntdsb_pages_in_order(pg, f + off, size - off < 1048576 ? size - off : 1048576, off,
                                 0);
        ntdsb_pages_finish(pg);
        double t = now() - t0;
        if (t < best)
            best = t;
        t0 = now();
        uint32_t fb;
        uint64_t counts[3];
        ntdsb_ese_verify_pages(f + 2 * cb, cb, 1, n, &fb, counts);
        t = now() - t0;
        if (t < best_v)
            best_v = t;
    }
    printf("%u pages of 8 KiB (%zu MB): ok %llu bad %llu\n", n, size >> 20,
           (unsigned long long)pg->tally.ok, (unsigned long long)pg->tally.bad);
    printf("ntdsb_pages (1 MiB chunks, one thread): %.0f MB/s\n", (double)size / best / 1e6);
    printf("ntdsb_ese_verify_pages alone:            %.0f MB/s\n",
           (double)(size - 2 * cb) / best_v / 1e6);
    free(pg);
    free(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--bench") == 0)
        return bench((size_t)atol(argv[2]));
    test_kat();
    test_kat_files();
    test_single_bits();
    test_db8();
    test_many_bad();
    test_db32();
    test_geometry();
    test_logs();
    test_pipelines();
    return test_report();
}
