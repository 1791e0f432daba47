/*
 * test_pipeline.c - standalone tests (and a benchmark) of ntdsb_backup_file().
 *
 * An in-process fake provider serves deterministic, compressible data through
 * a ntdsb_provider whose BackupRead points at fake_read(); switches make it
 * return short reads, fail with an HRESULT at a chosen chunk, sleep, or serve
 * more or fewer bytes than it announced.  Every stream the engine writes is
 * parsed and checked independently: chunk headers, frames decompressed with
 * ZSTD_decompress, XXH3-128 recomputed, the chunk table compared.
 *
 *   ./test_pipeline                 run the tests; last line "N passed, N failed"
 *   ./test_pipeline --bench MB [--chunk KiB] [--depth N] [--level L] [--file PATH] [--runs N]
 *                  [--cmd 'COMMAND %s']  also time COMMAND on the data file (e.g. a Python loop)
 *                                   throughput vs `zstd -1 -T1/-T2` on the same data
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "ntdsb_engine.h"
#include "native_test.h"

/* ---- tiny harness (the rest is in native_test.h) ---------------------------------- */

static double g_slack = 1.0; /* NTDSB_TEST_TIMING_SCALE: timing bounds x this (valgrind) */
static int g_quick;          /* NTDSB_TEST_QUICK=1: fewer combinations (helgrind) */
static uint64_t g_data_cap = UINT64_MAX; /* bytes of the tests' data buffer */

/* ---- data -------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, fast, good enough for test data. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/*
 * Something shaped like a database file: 8 KiB pages with a small random
 * header, records made of words from a small vocabulary, numbers and GUID-like
 * random fields, and free space (zeros) at the end of each page.  zstd -1
 * compresses it about 3:1, in the range of a real ntds.dit; pure random data
 * or all zeros would flatter or punish the compressor.
 */
static void gen_data(uint8_t *buf, size_t size, uint64_t seed)
{
    static const char *words[] = {
        "CN=",  "OU=",   "DC=",     "user",   "group",   "computer", "contoso", "com",
        "Admin", "Domain", "Users",  "member", "objectClass", "top", "person",
        "organizationalPerson", "sAMAccountName", "whenCreated", "uSNChanged",
        "servicePrincipalName", "HOST/", "ldap", "Sites", "Default-First-Site-Name",
        "Configuration", "Schema", "displayName", "description", "mail", "@", ".",
        ",", " ", "0", "1", "2", "Smith", "John", "Mary", "S-1-5-21-"};
    const size_t nwords = sizeof words / sizeof words[0];
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t pos = 0;

    while (pos < size) {
        size_t page_end = pos + 8192 < size ? pos + 8192 : size;
        size_t used = 8192 * (50 + rng_next(&s) % 45) / 100; /* 50..94 % full */
        size_t stop = pos + used < page_end ? pos + used : page_end;
        size_t i;

        for (i = 0; i < 40 && pos < stop; i++) /* page header: checksum, flags... */
            buf[pos++] = (uint8_t)rng_next(&s);
        while (pos < stop) {
            uint64_t r = rng_next(&s);
            if (r % 16 == 0) { /* a GUID or SID-like random field */
                size_t n = 16;
                while (n-- && pos < stop)
                    buf[pos++] = (uint8_t)rng_next(&s);
            } else if (r % 16 == 1) { /* a little-endian number */
                uint32_t v = (uint32_t)(r >> 20) % 100000u;
                for (i = 0; i < 4 && pos < stop; i++)
                    buf[pos++] = (uint8_t)(v >> (8 * i));
            } else {
                const char *w = words[(r >> 8) % nwords];
                while (*w && pos < stop)
                    buf[pos++] = (uint8_t)*w++;
            }
        }
        while (pos < page_end)
            buf[pos++] = 0;
    }
}

/* ---- the fake provider ------------------------------------------------------------ */

enum eof_mode {
    EOF_SEPARATE,   /* ERROR_HANDLE_EOF with 0 bytes after the data (the usual) */
    EOF_ZERO_OK,    /* hr 0 with 0 bytes after the data */
    EOF_WITH_DATA,  /* ERROR_HANDLE_EOF together with the last bytes */
};

typedef struct fake {
    const uint8_t *data;     /* what it serves (NULL: pread from fd) */
    int fd;
    uint64_t size;           /* bytes it really has (may differ from the announced size) */
    uint64_t pos;
    uint32_t chunk_size;     /* what the engine should pass as cbBuffer */
    int short_reads;         /* return random shorter counts */
    uint64_t rng;
    int64_t fail_chunk;      /* fail the read that serves this chunk (-1: never) */
    uint64_t fail_at_pos;    /* or the read at this position, when fail_chunk == -2 */
    HRESULT fail_hr;
    unsigned latency_us;     /* sleep in every read */
    unsigned first_latency_us; /* sleep in the first read only */
    int eof_mode;
    int eof_returned;
    /* observations */
    int bad_cb;              /* calls with a cbBuffer not obeying the API / the hint */
    int after_eof;           /* calls after EOF was reported */
    uint64_t calls;
    void *bufs[600];         /* distinct buffers seen */
    int nbufs;
    atomic_uint_fast64_t *written; /* chunks the sink has taken (shared with the sink) */
    int64_t max_in_flight;
} fake;

static HRESULT fake_read(HBC hbc, PVOID pv, DWORD cb, PDWORD pcb)
{
    fake *f = hbc;
    uint64_t avail, n;
    int i;

    f->calls++;
    if (f->first_latency_us && f->calls == 1)
        sleep_us(f->first_latency_us);
    if (f->latency_us)
        sleep_us(f->latency_us);
    if (cb != f->chunk_size || cb % NTDSB_READ_GRANULE != 0 || cb < NTDSB_READ_MIN)
        f->bad_cb++;
    if (f->eof_returned)
        f->after_eof++;
    for (i = 0; i < f->nbufs && f->bufs[i] != pv; i++) {
    }
    if (i == f->nbufs && f->nbufs < (int)(sizeof f->bufs / sizeof f->bufs[0]))
        f->bufs[f->nbufs++] = pv;
    if (f->written != NULL && f->pos < f->size) {
        /* The chunk being read, and every chunk read but not yet written,
         * occupies one ring slot. */
        int64_t inflight =
            (int64_t)(f->pos / f->chunk_size) - (int64_t)atomic_load(f->written) + 1;
        if (inflight > f->max_in_flight)
            f->max_in_flight = inflight;
    }
    *pcb = 0;
    if ((f->fail_chunk >= 0 && f->pos / f->chunk_size == (uint64_t)f->fail_chunk) ||
        (f->fail_chunk == -2 && f->pos == f->fail_at_pos))
        return f->fail_hr;
    avail = f->size - f->pos;
    if (avail == 0) {
        if (f->eof_mode == EOF_ZERO_OK)
            return 0;
        f->eof_returned = 1;
        return ERROR_HANDLE_EOF;
    }
    n = avail < cb ? avail : cb;
    if (f->short_reads && n > 1) {
        uint64_t r = rng_next(&f->rng);
        if (r % 3 != 0)
            n = 1 + (r >> 8) % n; /* anything from 1 byte up to the request */
    }
    if (f->data != NULL) {
        memcpy(pv, f->data + f->pos, (size_t)n);
    } else {
        ssize_t got = pread(f->fd, pv, (size_t)n, (off_t)f->pos);
        if (got < 0)
            return hrDiskIO;
        n = (uint64_t)got;
    }
    f->pos += n;
    *pcb = (DWORD)n;
    if (f->eof_mode == EOF_WITH_DATA && f->pos == f->size) {
        f->eof_returned = 1;
        return ERROR_HANDLE_EOF;
    }
    return 0;
}

static void fake_init(fake *f, const uint8_t *data, uint64_t size, uint32_t chunk_size)
{
    if (data != NULL && size > g_data_cap) {
        fprintf(stderr, "test bug: fake of %llu bytes over a %llu-byte buffer\n",
                (unsigned long long)size, (unsigned long long)g_data_cap);
        abort();
    }
    memset(f, 0, sizeof *f);
    f->data = data;
    f->fd = -1;
    f->size = size;
    f->chunk_size = chunk_size;
    f->fail_chunk = -1;
    f->rng = 12345;
}

static ntdsb_provider make_provider(void)
{
    ntdsb_provider p;
    memset(&p, 0, sizeof p);
    p.BackupRead = fake_read;
    return p;
}

/* ---- sinks --------------------------------------------------------------------------- */

typedef struct mem_sink {
    uint8_t *buf;
    size_t len, cap;
    uint64_t calls;
    int64_t fail_call;       /* return -1 on this call (0-based), -1 never */
    unsigned latency_us;
    int bad_call;            /* a call whose length is not one header + its frame */
    atomic_uint_fast64_t written;
} mem_sink;

static int mem_write(void *ctx, const void *buf, size_t len)
{
    mem_sink *m = ctx;
    const uint8_t *b = buf;
    if (m->latency_us)
        sleep_us(m->latency_us);
    if (m->fail_call >= 0 && m->calls == (uint64_t)m->fail_call) {
        m->calls++;
        return -1;
    }
    m->calls++;
    /* One call per chunk, header and frame together. */
    if (len < NTDSB_CHUNK_HEADER_SIZE ||
        len != NTDSB_CHUNK_HEADER_SIZE + ((uint32_t)b[16] | (uint32_t)b[17] << 8 |
                                          (uint32_t)b[18] << 16 | (uint32_t)b[19] << 24))
        m->bad_call++;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + len)
            cap *= 2;
        m->buf = realloc(m->buf, cap);
        if (m->buf == NULL)
            abort();
        m->cap = cap;
    }
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    atomic_fetch_add(&m->written, 1);
    return 0;
}

static void mem_init(mem_sink *m)
{
    memset(m, 0, sizeof *m);
    m->fail_call = -1;
    atomic_init(&m->written, 0);
}

static void mem_free(mem_sink *m)
{
    free(m->buf);
    m->buf = NULL;
}

/* ---- independent verification of a stream ---------------------------------------- */

/* Parse `stream`, decompress every frame and compare with `data`; check the
 * hashes and the chunk table.  Returns 1 when everything matches. */
static int verify_stream(const uint8_t *stream, size_t len, const uint8_t *data, uint64_t size,
                         uint32_t chunk_size, const ntdsb_chunk_table *t,
                         const ntdsb_hash128 *file_hash)
{
    size_t pos = 0;
    uint64_t idx = 0, off = 0;
    uint8_t *out = malloc(chunk_size);
    int ok = 1;
    ntdsb_hash128 fh = xxh128_canon(data, (size_t)size);

    if (out == NULL)
        abort();
    if (memcmp(fh.bytes, file_hash->bytes, 16) != 0) {
        fprintf(stderr, "  whole-file hash differs\n");
        ok = 0;
    }
    while (ok && pos < len) {
        ntdsb_chunk_header h;
        const char *why = NULL;
        uint32_t want = (uint32_t)(size - off < chunk_size ? size - off : chunk_size);
        size_t r;
        ntdsb_hash128 ch;

        if (ntdsb_chunk_header_decode(stream + pos, len - pos, &h, &why) != NTDSB_OK) {
            fprintf(stderr, "  chunk %llu: %s\n", (unsigned long long)idx, why);
            ok = 0;
            break;
        }
        if (h.chunk_index != idx || h.raw_size != want ||
            pos + NTDSB_CHUNK_HEADER_SIZE + h.frame_size > len) {
            fprintf(stderr, "  chunk %llu: bad header fields\n", (unsigned long long)idx);
            ok = 0;
            break;
        }
        if (ZSTD_getFrameContentSize(stream + pos + NTDSB_CHUNK_HEADER_SIZE, h.frame_size) !=
            h.raw_size) {
            fprintf(stderr, "  chunk %llu: frame content size missing/wrong\n",
                    (unsigned long long)idx);
            ok = 0;
        }
        r = ZSTD_decompress(out, chunk_size, stream + pos + NTDSB_CHUNK_HEADER_SIZE,
                            h.frame_size);
        if (ZSTD_isError(r) || r != want || memcmp(out, data + off, want) != 0) {
            fprintf(stderr, "  chunk %llu: frame does not give the data back\n",
                    (unsigned long long)idx);
            ok = 0;
            break;
        }
        ch = xxh128_canon(data + off, want);
        if (memcmp(ch.bytes, h.hash.bytes, 16) != 0) {
            fprintf(stderr, "  chunk %llu: hash differs\n", (unsigned long long)idx);
            ok = 0;
        }
        if (t != NULL) {
            const ntdsb_chunk_entry *e = idx < t->count ? &t->entries[idx] : NULL;
            if (e == NULL || e->raw_offset != off || e->raw_size != want ||
                e->frame_size != h.frame_size || e->stream_offset != pos ||
                memcmp(e->hash.bytes, ch.bytes, 16) != 0) {
                fprintf(stderr, "  chunk %llu: table entry differs\n", (unsigned long long)idx);
                ok = 0;
            }
        }
        pos += NTDSB_CHUNK_HEADER_SIZE + h.frame_size;
        off += want;
        idx++;
    }
    if (ok && (off != size || (t != NULL && t->count != idx))) {
        fprintf(stderr, "  stream covers %llu of %llu bytes, %llu chunks\n",
                (unsigned long long)off, (unsigned long long)size, (unsigned long long)idx);
        ok = 0;
    }
    /* Stock zstd view: the chunk headers are skippable frames, so the whole
     * stream decompresses in one call to exactly the file. */
    if (ok && size > 0) {
        uint8_t *all = malloc((size_t)size);
        size_t r;
        if (all == NULL)
            abort();
        r = ZSTD_decompress(all, (size_t)size, stream, len);
        if (ZSTD_isError(r) || r != size || memcmp(all, data, (size_t)size) != 0) {
            fprintf(stderr, "  the stream as a whole does not decompress to the file\n");
            ok = 0;
        }
        free(all);
    }
    free(out);
    return ok;
}

/* ---- one run ---------------------------------------------------------------------- */

typedef struct run {
    int rc;
    ntdsb_error err;
    ntdsb_backup_stats stats;
    ntdsb_hash128 hash;
    ntdsb_chunk_table table;
    mem_sink sink;
    fake f;
    int threads_after;
} run;

typedef struct cancel_ctl {
    int after;              /* return 1 from this call on (0-based); -1 never */
    int calls;
    double fired_at;        /* when it first returned 1 */
    double last, max_gap;   /* gaps between calls */
} cancel_ctl;

static int cancel_hook(void *ctx)
{
    cancel_ctl *c = ctx;
    double t = now();
    if (c->last > 0 && t - c->last > c->max_gap)
        c->max_gap = t - c->last;
    c->last = t;
    if (c->after >= 0 && c->calls++ >= c->after) {
        if (c->fired_at == 0)
            c->fired_at = t;
        return 1;
    }
    if (c->after < 0)
        c->calls++;
    return 0;
}

static ntdsb_backup_config cfg_make(uint32_t chunk, uint32_t threads, uint32_t depth, int serial)
{
    ntdsb_backup_config c;
    ntdsb_backup_config_init(&c);
    c.chunk_size = chunk;
    c.threads = threads;
    c.ring_depth = depth;
    c.serial = serial;
    c.level = 1;
    return c;
}

/* Run the engine with a callback sink over fake *f (already set up). */
static void do_run(run *r, uint64_t announced, const ntdsb_backup_config *cfg,
                   cancel_ctl *cancel)
{
    ntdsb_provider prov = make_provider();
    ntdsb_sink sink;

    sink.fd = -1;
    sink.write = mem_write;
    sink.ctx = &r->sink;
    r->f.written = &r->sink.written;
    r->rc = ntdsb_backup_file(&prov, &r->f, announced, cfg, &sink,
                              cancel ? cancel_hook : NULL, cancel, &r->stats, &r->hash,
                              &r->table, &r->err);
    r->threads_after = threads_settled(g_base_threads);
}

static void run_free(run *r)
{
    ntdsb_chunk_table_free(&r->table);
    mem_free(&r->sink);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_names_and_defaults(void)
{
    ntdsb_backup_config c;
    g_test = "names_defaults";
    CHECK(strcmp(ntdsb_status_name(NTDSB_OK), "NTDSB_OK") == 0);
    CHECK(strcmp(ntdsb_status_name(NTDSB_E_PROVIDER), "NTDSB_E_PROVIDER") == 0);
    CHECK(strcmp(ntdsb_status_name(NTDSB_E_READ), "NTDSB_E_READ") == 0);
    CHECK(ntdsb_status_name(12345) != NULL);
    ntdsb_backup_config_init(&c);
    CHECK_EQ_INT(c.chunk_size, 1024 * 1024);
    CHECK_EQ_INT(c.level, 1);
    CHECK_EQ_INT(c.ring_depth, 0);
    CHECK_EQ_INT(c.serial, 0);
    CHECK(c.threads >= 1 && c.threads == ntdsb_cpu_count());
}

static void test_header_codec(void)
{
    ntdsb_chunk_header h, g;
    uint8_t buf[NTDSB_CHUNK_HEADER_SIZE];
    const char *why = NULL;
    int i;
    static const uint8_t expect_prefix[24] = {
        0x5E, 0x2A, 0x4D, 0x18, 40, 0, 0, 0, 1, 0, 0, 0,
        0x00, 0x00, 0x10, 0x00, 0x34, 0x12, 0x00, 0x00, 0, 0, 0, 0};

    g_test = "header_codec";
    memset(&h, 0, sizeof h);
    h.raw_size = 0x100000;
    h.frame_size = 0x1234;
    h.chunk_index = 0x0102030405060708ULL;
    for (i = 0; i < 16; i++)
        h.hash.bytes[i] = (uint8_t)(0xA0 + i);
    ntdsb_chunk_header_encode(&h, buf);
    CHECK(memcmp(buf, expect_prefix, sizeof expect_prefix) == 0);
    CHECK(buf[24] == 0x08 && buf[31] == 0x01); /* chunk_index little-endian */
    CHECK(buf[32] == 0xA0 && buf[47] == 0xAF);
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, sizeof buf, &g, &why), NTDSB_OK);
    CHECK(why == NULL);
    CHECK(g.raw_size == h.raw_size && g.frame_size == h.frame_size &&
          g.chunk_index == h.chunk_index && memcmp(g.hash.bytes, h.hash.bytes, 16) == 0);
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, 47, &g, &why), NTDSB_E_CORRUPT);
    CHECK(why != NULL);
    buf[0] ^= 1;
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, sizeof buf, &g, NULL), NTDSB_E_CORRUPT);
    buf[0] ^= 1;
    buf[8] = 2; /* format */
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, sizeof buf, &g, &why), NTDSB_E_CORRUPT);
    buf[8] = 1;
    buf[21] = 1; /* reserved */
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, sizeof buf, &g, &why), NTDSB_E_CORRUPT);
    buf[21] = 0;
    buf[4] = 41; /* payload size */
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, sizeof buf, &g, &why), NTDSB_E_CORRUPT);
    buf[4] = 40;
    CHECK_EQ_INT(ntdsb_chunk_header_decode(buf, sizeof buf, &g, &why), NTDSB_OK);
}

static void test_config_validation(void)
{
    static const uint8_t data[1] = {0};
    ntdsb_provider prov = make_provider();
    ntdsb_backup_config base = cfg_make(65536, 2, 0, 0), c;
    ntdsb_sink sink = {-1, mem_write, NULL};
    ntdsb_error err;
    mem_sink m;
    fake f;
    int i;
    struct {
        uint32_t chunk, threads, depth;
        int level;
    } bad[] = {
        {0, 2, 0, 1},          {8192, 2, 0, 1},       {24576 + 1, 2, 0, 1},
        {32768 + 4096, 2, 0, 1}, {NTDSB_CHUNK_MAX + 8192, 2, 0, 1},
        {65536, 0, 0, 1},      {65536, 257, 0, 1},    {65536, 2, 1, 1},
        {65536, 2, 257, 1},    {65536, 2, 0, 1000},   {65536, 2, 0, -1000000},
    };

    g_test = "config";
    mem_init(&m);
    sink.ctx = &m;
    fake_init(&f, data, 1, 65536);
    for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        c = base;
        c.chunk_size = bad[i].chunk;
        c.threads = bad[i].threads;
        c.ring_depth = bad[i].depth;
        c.level = bad[i].level;
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, 1, &c, &sink, NULL, NULL, NULL, NULL, NULL,
                                       &err),
                     NTDSB_E_CONFIG);
        CHECK(err.status == NTDSB_E_CONFIG && err.message[0] != 0);
    }
    /* Limits themselves are fine. */
    c = base;
    c.chunk_size = NTDSB_CHUNK_MIN;
    c.ring_depth = NTDSB_RING_MIN;
    CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, 1, &c, &sink, NULL, NULL, NULL, NULL, NULL, &err),
                 NTDSB_OK);
    CHECK_EQ_INT(f.calls, 2);
    /* Sinks: both, neither. */
    {
        ntdsb_sink both = {1, mem_write, &m}, none = {-1, NULL, NULL};
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, 1, &base, &both, NULL, NULL, NULL, NULL,
                                       NULL, &err),
                     NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, 1, &base, &none, NULL, NULL, NULL, NULL,
                                       NULL, &err),
                     NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, 1, &base, NULL, NULL, NULL, NULL, NULL, NULL,
                                       &err),
                     NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_backup_file(NULL, &f, 1, &base, &sink, NULL, NULL, NULL, NULL, NULL,
                                       &err),
                     NTDSB_E_CONFIG);
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, 1, NULL, &sink, NULL, NULL, NULL, NULL, NULL,
                                       NULL),
                     NTDSB_E_CONFIG);
    }
    mem_free(&m);
}

/* The reference stream for data of `size` bytes, serial mode. */
static void reference(run *r, const uint8_t *data, uint64_t size, uint32_t chunk)
{
    ntdsb_backup_config c = cfg_make(chunk, 1, 0, 1);
    memset(r, 0, sizeof *r);
    mem_init(&r->sink);
    fake_init(&r->f, data, size, chunk);
    do_run(r, size, &c, NULL);
}

static void test_determinism(const uint8_t *data, uint64_t size, uint32_t chunk)
{
    static const uint32_t threads[] = {1, 2, 4, 8};
    static const uint32_t depths[] = {0, 2, 3, 8};
    run ref;
    size_t ti, di;
    int sr;
    char name[96];

    snprintf(name, sizeof name, "determinism size=%llu chunk=%u", (unsigned long long)size,
             chunk);
    g_test = name;
    reference(&ref, data, size, chunk);
    CHECK_EQ_INT(ref.rc, NTDSB_OK);
    CHECK(verify_stream(ref.sink.buf, ref.sink.len, data, size, chunk, &ref.table, &ref.hash));
    CHECK_EQ_INT(ref.stats.bytes_read, size);
    CHECK_EQ_INT(ref.stats.bytes_written, ref.sink.len);
    CHECK_EQ_INT(ref.stats.chunks, (size + chunk - 1) / chunk);
    CHECK_EQ_INT(ref.table.count, ref.stats.chunks);
    CHECK_EQ_INT(ref.sink.calls, ref.stats.chunks);
    CHECK_EQ_INT(ref.sink.bad_call, 0);
    CHECK_EQ_INT(ref.f.bad_cb, 0);
    CHECK_EQ_INT(ref.f.after_eof, 0);
    CHECK_EQ_INT(ref.stats.read_calls, ref.stats.chunks + 1); /* + the end check */

    for (sr = 0; sr < 2; sr++) {
        for (ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
            for (di = 0; di < sizeof depths / sizeof depths[0]; di++) {
                if (g_quick && (ti == 2 || di == 2))
                    continue;
                ntdsb_backup_config c = cfg_make(chunk, threads[ti], depths[di], 0);
                uint32_t slots = depths[di] ? depths[di] : threads[ti] + 2;
                run r;
                memset(&r, 0, sizeof r);
                mem_init(&r.sink);
                fake_init(&r.f, data, size, chunk);
                r.f.short_reads = sr;
                r.f.rng = 1000 + ti * 10 + di;
                do_run(&r, size, &c, NULL);
                CHECK_EQ_INT(r.rc, NTDSB_OK);
                if (r.rc != NTDSB_OK)
                    fprintf(stderr, "  %s\n", r.err.message);
                CHECK(r.sink.len == ref.sink.len &&
                      memcmp(r.sink.buf, ref.sink.buf, ref.sink.len) == 0);
                CHECK(memcmp(r.hash.bytes, ref.hash.bytes, 16) == 0);
                CHECK(r.table.count == ref.table.count &&
                      (ref.table.count == 0 ||
                       memcmp(r.table.entries, ref.table.entries,
                              sizeof *ref.table.entries * ref.table.count) == 0));
                CHECK_EQ_INT(r.f.bad_cb, 0);
                CHECK_EQ_INT(r.f.after_eof, 0);
                CHECK(r.f.max_in_flight <= (int64_t)slots);
                /* Ring slots + the reader's staging buffer, nothing more. */
                CHECK(r.f.nbufs <= (int)slots + 1);
                CHECK_EQ_INT(r.threads_after, g_base_threads);
                CHECK_EQ_INT(r.stats.bytes_read, size);
                if (sr)
                    CHECK(r.stats.read_calls >= ref.stats.read_calls);
                run_free(&r);
            }
        }
        /* serial, with short reads too */
        {
            ntdsb_backup_config c = cfg_make(chunk, 4, 0, 1);
            run r;
            memset(&r, 0, sizeof r);
            mem_init(&r.sink);
            fake_init(&r.f, data, size, chunk);
            r.f.short_reads = sr;
            do_run(&r, size, &c, NULL);
            CHECK_EQ_INT(r.rc, NTDSB_OK);
            CHECK(r.sink.len == ref.sink.len &&
                  memcmp(r.sink.buf, ref.sink.buf, ref.sink.len) == 0);
            CHECK(r.f.nbufs <= 2);
            run_free(&r);
        }
    }
    run_free(&ref);
}

static void test_eof_modes(const uint8_t *data)
{
    static const uint64_t sizes[] = {0, 1, 65535, 65536, 65537, 3 * 65536, 5 * 65536 + 77};
    size_t i;
    int mode;
    g_test = "eof_modes";
    for (mode = EOF_SEPARATE; mode <= EOF_WITH_DATA; mode++) {
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            int serial;
            for (serial = 0; serial < 2; serial++) {
                ntdsb_backup_config c = cfg_make(65536, 2, 3, serial);
                run r;
                memset(&r, 0, sizeof r);
                mem_init(&r.sink);
                fake_init(&r.f, data, sizes[i], 65536);
                r.f.eof_mode = mode;
                do_run(&r, sizes[i], &c, NULL);
                CHECK_EQ_INT(r.rc, NTDSB_OK);
                if (r.rc != NTDSB_OK)
                    fprintf(stderr, "  mode %d size %llu: %s\n", mode,
                            (unsigned long long)sizes[i], r.err.message);
                CHECK(verify_stream(r.sink.buf, r.sink.len, data, sizes[i], 65536, &r.table,
                                    &r.hash));
                CHECK_EQ_INT(r.f.after_eof, 0);
                if (sizes[i] == 0)
                    CHECK(r.sink.calls == 0 && r.table.count == 0);
                CHECK_EQ_INT(r.threads_after, g_base_threads);
                run_free(&r);
            }
        }
    }
}

typedef struct pipe_reader {
    int fd;
    const uint8_t *expect;
    size_t len, got;
    int ok;
} pipe_reader;

static void *pipe_reader_main(void *arg)
{
    pipe_reader *pr = arg;
    uint8_t piece[1000];
    ssize_t n;
    pr->ok = 1;
    while ((n = read(pr->fd, piece, sizeof piece)) > 0) {
        if (pr->got + (size_t)n > pr->len || memcmp(piece, pr->expect + pr->got, (size_t)n) != 0)
            pr->ok = 0;
        pr->got += (size_t)n;
    }
    return NULL;
}

/* NULL stats / hash / table are allowed; an fd sink gives the same bytes. */
static void test_fd_sink_and_nulls(const uint8_t *data, uint64_t size)
{
    ntdsb_provider prov = make_provider();
    ntdsb_backup_config c = cfg_make(65536, 2, 0, 0);
    ntdsb_sink sink;
    ntdsb_error err;
    run ref;
    fake f;
    char path[] = "/tmp/ntdsb_test_XXXXXX";
    int fd = mkstemp(path);
    struct stat st;
    uint8_t *back;

    g_test = "fd_sink";
    CHECK(fd >= 0);
    reference(&ref, data, size, 65536);
    fake_init(&f, data, size, 65536);
    sink.fd = fd;
    sink.write = NULL;
    sink.ctx = NULL;
    CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, NULL, NULL,
                                   &err),
                 NTDSB_OK);
    CHECK(fstat(fd, &st) == 0 && (size_t)st.st_size == ref.sink.len);
    back = malloc(ref.sink.len);
    CHECK(back != NULL && pread(fd, back, ref.sink.len, 0) == (ssize_t)ref.sink.len &&
          memcmp(back, ref.sink.buf, ref.sink.len) == 0);
    free(back);
    close(fd);
    unlink(path);

    /* A pipe, read in small pieces by another thread, must still get every
     * byte in order (write(2) to a pipe may take less than asked). */
    {
        int pfd[2];
        pthread_t t;
        pipe_reader pr;
        CHECK(pipe(pfd) == 0);
        memset(&pr, 0, sizeof pr);
        pr.fd = pfd[0];
        pr.expect = ref.sink.buf;
        pr.len = ref.sink.len;
        CHECK(pthread_create(&t, NULL, pipe_reader_main, &pr) == 0);
        fake_init(&f, data, size, 65536);
        sink.fd = pfd[1];
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, NULL,
                                       NULL, &err),
                     NTDSB_OK);
        close(pfd[1]);
        pthread_join(t, NULL);
        close(pfd[0]);
        CHECK(pr.ok && pr.got == ref.sink.len);
    }
    run_free(&ref);
}

static void check_provider_failure(const uint8_t *data, uint64_t size, uint32_t chunk,
                                   int64_t fail_chunk, const ntdsb_backup_config *c)
{
    run r;
    memset(&r, 0, sizeof r);
    mem_init(&r.sink);
    fake_init(&r.f, data, size, chunk);
    r.f.fail_chunk = fail_chunk;
    if ((uint64_t)fail_chunk * chunk >= size) { /* the end-of-file check */
        r.f.fail_chunk = -2;
        r.f.fail_at_pos = size;
    }
    r.f.fail_hr = hrCommunicationError;
    do_run(&r, size, c, NULL);
    CHECK_EQ_INT(r.rc, NTDSB_E_PROVIDER);
    CHECK_EQ_INT(r.err.status, NTDSB_E_PROVIDER);
    CHECK_EQ_INT((uint32_t)r.err.hr, 0xC7FF000Du);
    CHECK(r.err.call != NULL && strcmp(r.err.call, "DsBackupRead") == 0);
    CHECK_EQ_INT(r.err.chunk_index, fail_chunk);
    CHECK_EQ_INT(r.err.offset, (uint64_t)fail_chunk * chunk < size ? (uint64_t)fail_chunk * chunk : size);
    {
        char expect[128];
        snprintf(expect, sizeof expect, "DsBackupRead failed with 0xC7FF000D at chunk %lld",
                 (long long)fail_chunk);
        CHECK(strstr(r.err.message, expect) != NULL);
        if (strstr(r.err.message, expect) == NULL)
            fprintf(stderr, "  message: %s\n", r.err.message);
    }
    CHECK_EQ_INT(r.threads_after, g_base_threads);
    /* What the sink got is a valid prefix: exactly the chunks before K. */
    CHECK(r.table.count <= (uint64_t)fail_chunk);
    CHECK_EQ_INT(r.stats.chunks, r.table.count);
    run_free(&r);
}

static void test_provider_faults(const uint8_t *data)
{
    const uint32_t chunk = 65536;
    const uint64_t size = 10 * 65536 + 100; /* 11 chunks */
    int serial;
    g_test = "provider_faults";
    for (serial = 0; serial < 2; serial++) {
        ntdsb_backup_config c = cfg_make(chunk, 2, 3, serial);
        check_provider_failure(data, size, chunk, 0, &c);
        check_provider_failure(data, size, chunk, 5, &c);
        check_provider_failure(data, size, chunk, 10, &c);
        /* at the end-of-file check: chunk index = number of chunks */
        check_provider_failure(data, size, chunk, 11, &c);
    }
    {
        ntdsb_backup_config c = cfg_make(chunk, 8, 8, 0);
        check_provider_failure(data, size, chunk, 3, &c);
    }
    /* With short reads the failure may come in the middle of a chunk. */
    {
        ntdsb_backup_config c = cfg_make(chunk, 2, 0, 0);
        run r;
        memset(&r, 0, sizeof r);
        mem_init(&r.sink);
        fake_init(&r.f, data, size, chunk);
        r.f.short_reads = 1;
        r.f.fail_chunk = 4;
        r.f.fail_hr = (HRESULT)ERROR_ACCESS_DENIED; /* positive Win32 code: still failure */
        do_run(&r, size, &c, NULL);
        CHECK_EQ_INT(r.rc, NTDSB_E_PROVIDER);
        CHECK_EQ_INT(r.err.hr, ERROR_ACCESS_DENIED);
        CHECK(r.err.chunk_index == 3 || r.err.chunk_index == 4);
        CHECK_EQ_INT(r.threads_after, g_base_threads);
        run_free(&r);
    }
}

static void test_sink_faults(const uint8_t *data)
{
    const uint32_t chunk = 65536;
    const uint64_t size = 9 * 65536;
    int serial;
    g_test = "sink_faults";
    for (serial = 0; serial < 2; serial++) {
        ntdsb_backup_config c = cfg_make(chunk, 2, 0, serial);
        int64_t k;
        for (k = 0; k < 9; k += 4) {
            run r;
            memset(&r, 0, sizeof r);
            mem_init(&r.sink);
            r.sink.fail_call = k;
            fake_init(&r.f, data, size, chunk);
            do_run(&r, size, &c, NULL);
            CHECK_EQ_INT(r.rc, NTDSB_E_CALLBACK);
            CHECK_EQ_INT(r.err.chunk_index, k);
            CHECK_EQ_INT(r.err.offset, (uint64_t)k * chunk);
            CHECK_EQ_INT(r.table.count, k);
            CHECK_EQ_INT(r.threads_after, g_base_threads);
            CHECK(r.err.message[0] != 0);
            run_free(&r);
        }
        /* fd sink: /dev/full fails every write with ENOSPC */
        {
            ntdsb_provider prov = make_provider();
            ntdsb_sink sink = {open("/dev/full", O_WRONLY), NULL, NULL};
            ntdsb_chunk_table t;
            ntdsb_error err;
            fake f;
            fake_init(&f, data, size, chunk);
            CHECK(sink.fd >= 0);
            CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, NULL,
                                           &t, &err),
                         NTDSB_E_WRITE);
            CHECK_EQ_INT(err.sys_errno, ENOSPC);
            CHECK_EQ_INT(err.chunk_index, 0);
            CHECK_EQ_INT(t.count, 0);
            CHECK_EQ_INT(thread_count(), g_base_threads);
            ntdsb_chunk_table_free(&t);
            close(sink.fd);
        }
    }
}

static void test_size_mismatch(const uint8_t *data)
{
    const uint32_t chunk = 65536;
    struct {
        uint64_t actual, announced;
        int status;
        int mode;
    } cases[] = {
        {5 * 65536, 6 * 65536, NTDSB_E_SHORT_FILE, EOF_SEPARATE},
        {5 * 65536 + 10, 6 * 65536, NTDSB_E_SHORT_FILE, EOF_SEPARATE},
        {5 * 65536, 5 * 65536 + 10, NTDSB_E_SHORT_FILE, EOF_WITH_DATA},
        {5 * 65536, 6 * 65536, NTDSB_E_SHORT_FILE, EOF_ZERO_OK}, /* never says EOF */
        {0, 100, NTDSB_E_SHORT_FILE, EOF_SEPARATE},
        {6 * 65536, 5 * 65536, NTDSB_E_LONG_FILE, EOF_SEPARATE},
        {5 * 65536 + 1, 5 * 65536, NTDSB_E_LONG_FILE, EOF_SEPARATE},
        {5 * 65536 + 1, 5 * 65536 - 1, NTDSB_E_LONG_FILE, EOF_SEPARATE},
        {5 * 65536 + 20, 5 * 65536 + 10, NTDSB_E_LONG_FILE, EOF_WITH_DATA},
        {1, 0, NTDSB_E_LONG_FILE, EOF_SEPARATE},
    };
    size_t i;
    int serial, sr;
    g_test = "size_mismatch";
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (serial = 0; serial < 2; serial++) {
            for (sr = 0; sr < 2; sr++) {
                ntdsb_backup_config c = cfg_make(chunk, 2, 0, serial);
                run r;
                memset(&r, 0, sizeof r);
                mem_init(&r.sink);
                fake_init(&r.f, data, cases[i].actual, chunk);
                r.f.eof_mode = cases[i].mode;
                r.f.short_reads = sr;
                do_run(&r, cases[i].announced, &c, NULL);
                CHECK_EQ_INT(r.rc, cases[i].status);
                if (r.rc != cases[i].status)
                    fprintf(stderr, "  case %zu serial %d short %d: %s\n", i, serial, sr,
                            r.err.message);
                CHECK(r.err.call != NULL && strcmp(r.err.call, "DsBackupRead") == 0);
                CHECK_EQ_INT(r.threads_after, g_base_threads);
                CHECK_EQ_INT(r.f.after_eof, 0);
                run_free(&r);
            }
        }
    }
}

static void test_cancel(const uint8_t *data)
{
    const uint32_t chunk = 65536;
    const uint64_t size = 40 * 65536;
    int serial;
    g_test = "cancel";
    for (serial = 0; serial < 2; serial++) {
        ntdsb_backup_config c = cfg_make(chunk, 2, 0, serial);
        cancel_ctl cc;
        run r;
        double t_end;
        memset(&r, 0, sizeof r);
        memset(&cc, 0, sizeof cc);
        cc.after = 5;
        mem_init(&r.sink);
        fake_init(&r.f, data, size, chunk);
        r.f.latency_us = 20000; /* 20 ms per read: the whole file would take 0.8 s */
        do_run(&r, size, &c, &cc);
        t_end = now();
        CHECK_EQ_INT(r.rc, NTDSB_E_CANCELLED);
        CHECK_EQ_INT(r.err.status, NTDSB_E_CANCELLED);
        CHECK(cc.fired_at > 0 && t_end - cc.fired_at < 0.25 * g_slack);
        CHECK(r.table.count <= 6);
        CHECK_EQ_INT(r.threads_after, g_base_threads);
        run_free(&r);
    }
    /* While the writer waits (a 700 ms first read), the hook runs at least
     * every 100 ms; a hook that never cancels lets the backup finish. */
    {
        ntdsb_backup_config c = cfg_make(chunk, 2, 0, 0);
        cancel_ctl cc;
        run r;
        memset(&r, 0, sizeof r);
        memset(&cc, 0, sizeof cc);
        cc.after = -1;
        mem_init(&r.sink);
        fake_init(&r.f, data, 4 * 65536, chunk);
        r.f.first_latency_us = 700000;
        do_run(&r, 4 * 65536, &c, &cc);
        CHECK_EQ_INT(r.rc, NTDSB_OK);
        CHECK(cc.calls >= 6);
        CHECK(cc.max_gap < 0.2 * g_slack); /* 100 ms plus scheduling slack */
        CHECK(r.stats.writer_wait_seconds >= 0.6);
        CHECK(verify_stream(r.sink.buf, r.sink.len, data, 4 * 65536, chunk, &r.table, &r.hash));
        run_free(&r);
    }
    /* Cancel during that long wait: returns as soon as the read comes back. */
    {
        ntdsb_backup_config c = cfg_make(chunk, 2, 0, 0);
        cancel_ctl cc;
        run r;
        double t0 = now();
        memset(&r, 0, sizeof r);
        memset(&cc, 0, sizeof cc);
        cc.after = 2;
        mem_init(&r.sink);
        fake_init(&r.f, data, 4 * 65536, chunk);
        r.f.first_latency_us = 500000;
        do_run(&r, 4 * 65536, &c, &cc);
        CHECK_EQ_INT(r.rc, NTDSB_E_CANCELLED);
        CHECK(now() - t0 < 0.9 * g_slack);
        CHECK_EQ_INT(r.threads_after, g_base_threads);
        run_free(&r);
    }
}

/* A slow sink makes the reader run ahead: it must stop at ring_depth chunks. */
static void test_memory_bound(const uint8_t *data)
{
    const uint32_t chunk = 65536;
    const uint64_t size = 40 * 65536;
    static const uint32_t depths[] = {2, 3, 8};
    size_t i;
    g_test = "memory_bound";
    for (i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        ntdsb_backup_config c = cfg_make(chunk, 2, depths[i], 0);
        run r;
        memset(&r, 0, sizeof r);
        mem_init(&r.sink);
        r.sink.latency_us = 3000;
        fake_init(&r.f, data, size, chunk);
        do_run(&r, size, &c, NULL);
        CHECK_EQ_INT(r.rc, NTDSB_OK);
        CHECK_EQ_INT(r.f.max_in_flight, depths[i]); /* reached, never exceeded */
        CHECK(r.f.nbufs <= (int)depths[i] + 1);
        CHECK(r.stats.reader_wait_seconds > 0.0);
        CHECK(r.stats.write_seconds >= 40 * 0.003 * 0.9);
        CHECK(verify_stream(r.sink.buf, r.sink.len, data, size, chunk, &r.table, &r.hash));
        run_free(&r);
    }
}

static void test_stats(const uint8_t *data)
{
    const uint32_t chunk = 65536;
    const uint64_t size = 20 * 65536 + 5;
    ntdsb_backup_config c = cfg_make(chunk, 2, 0, 0);
    run r;
    g_test = "stats";
    memset(&r, 0, sizeof r);
    mem_init(&r.sink);
    fake_init(&r.f, data, size, chunk);
    r.f.latency_us = 1000;
    do_run(&r, size, &c, NULL);
    CHECK_EQ_INT(r.rc, NTDSB_OK);
    CHECK_EQ_INT(r.stats.bytes_read, size);
    CHECK_EQ_INT(r.stats.bytes_written, r.sink.len);
    CHECK_EQ_INT(r.stats.chunks, 21);
    CHECK_EQ_INT(r.stats.read_calls, 22);
    CHECK(r.stats.read_seconds >= 22 * 0.001 * 0.9);
    CHECK(r.stats.compress_seconds > 0);
    CHECK(r.stats.write_seconds >= 0);
    CHECK(r.stats.writer_wait_seconds > 0);
    CHECK(r.stats.reader_wait_seconds >= 0);
    CHECK(r.stats.wall_seconds >= r.stats.read_seconds);
    run_free(&r);
}

static int run_tests(void)
{
    const char *scale = getenv("NTDSB_TEST_TIMING_SCALE");
    const char *quick = getenv("NTDSB_TEST_QUICK");
    uint64_t big;
    uint8_t *data;

    if (scale != NULL && atof(scale) >= 1.0)
        g_slack = atof(scale);
    g_quick = quick != NULL && strcmp(quick, "1") == 0;
    big = 3 * 1024 * 1024 + 12345;
    g_data_cap = big;
    data = malloc(big);
    if (data == NULL)
        return 2;
    gen_data(data, big, 1);
    signal(SIGPIPE, SIG_IGN);
    count_base_threads();

    test_names_and_defaults();
    test_header_codec();
    test_config_validation();
    test_determinism(data, big, 65536);
    test_determinism(data, 2 * 1024 * 1024, 1024 * 1024);
    test_determinism(data, 100000, NTDSB_CHUNK_MIN);
    test_eof_modes(data);
    test_fd_sink_and_nulls(data, big);
    test_provider_faults(data);
    test_sink_faults(data);
    test_size_mismatch(data);
    test_cancel(data);
    test_memory_bound(data);
    test_stats(data);

    free(data);
    return test_report();
}

/* ---- benchmark -------------------------------------------------------------------- */

typedef struct bench_mode {
    const char *name;
    uint32_t threads;  /* 0: an external zstd command */
    int serial;
    int from_memory;   /* fake provider copies from memory instead of pread */
    uint32_t depth;    /* ring_depth (0: threads + 2), unless --depth is given */
    double t[64];
    ntdsb_backup_stats st[64];
    uint64_t out;
} bench_mode;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*
 * Throughput of the engine against `zstd -L -T1/-T2` on the same file.  Runs
 * are interleaved round by round (this VM's speed drifts by +-20 % over
 * seconds, so measuring one mode after the other would mostly measure the
 * drift); best and median are printed.  The sink is /dev/null for everyone.
 */
static int bench(int argc, char **argv)
{
    uint64_t size_mb = 256, size;
    uint32_t chunk_kib = 1024, depth = 0;
    const char *extra_cmd = NULL; /* another contender, '%s' = the data file */
    int level = 1, runs = 5, i, r;
    const char *file = NULL;
    const char *tmp = "/tmp/ntdsb_bench.bin";
    uint8_t *data;
    int fd, devnull;
    bench_mode modes[] = {
        {"engine serial", 1, 1, 0, 0, {0}, {{0}}, 0},
        {"engine threads=1", 1, 0, 0, 0, {0}, {{0}}, 0},
        {"engine threads=2", 2, 0, 0, 0, {0}, {{0}}, 0},
        {"engine threads=2 mem", 2, 0, 1, 0, {0}, {{0}}, 0},
        {"engine threads=2 d=8", 2, 0, 0, 8, {0}, {{0}}, 0},
        {"zstd -T1", 0, 1, 0, 0, {0}, {{0}}, 0},
        {"zstd -T2", 0, 2, 0, 0, {0}, {{0}}, 0},
        {"--cmd COMMAND", 0, 0, 0, 0, {0}, {{0}}, 0},
    };
    size_t nmodes = sizeof modes / sizeof modes[0];
    size_t m;
    char cmd[512];

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
            chunk_kib = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc)
            level = atoi(argv[++i]);
        else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc)
            depth = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--cmd") == 0 && i + 1 < argc)
            extra_cmd = argv[++i];
        else
            size_mb = (uint64_t)atoll(argv[i]);
    }
    if (runs < 1 || runs > 64)
        runs = 5;
    if (extra_cmd == NULL)
        nmodes--; /* the last mode is the optional --cmd */
    if (file != NULL) {
        struct stat st;
        fd = open(file, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0) {
            perror(file);
            return 2;
        }
        size = (uint64_t)st.st_size;
        data = malloc(size);
        if (data == NULL || pread(fd, data, size, 0) != (ssize_t)size)
            return 2;
        close(fd);
        tmp = file;
    } else {
        size = size_mb * 1024 * 1024;
        data = malloc(size);
        if (data == NULL)
            return 2;
        gen_data(data, size, 7);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size)
            return 2;
        close(fd);
    }
    devnull = open("/dev/null", O_WRONLY);
    printf("data: %s, %.1f MiB, chunk %u KiB, ring_depth %u, level %d, %u CPUs, %d interleaved "
           "rounds\n",
           tmp, size / 1048576.0, chunk_kib, depth, level, ntdsb_cpu_count(), runs);

    for (r = 0; r < runs; r++) {
        for (m = 0; m < nmodes; m++) {
            bench_mode *b = &modes[m];
            if (b->threads == 0 && b->serial == 0) {
                snprintf(cmd, sizeof cmd, extra_cmd, tmp);
                b->t[r] = time_cmd(cmd);
            } else if (b->threads == 0) {
                snprintf(cmd, sizeof cmd, "zstd -q -%d -T%d -c '%s' > /dev/null", level,
                         b->serial, tmp);
                b->t[r] = time_cmd(cmd);
            } else {
                ntdsb_provider prov = make_provider();
                ntdsb_backup_config c =
                    cfg_make(chunk_kib * 1024, b->threads, depth ? depth : b->depth, b->serial);
                ntdsb_sink sink = {devnull, NULL, NULL};
                ntdsb_error err;
                ntdsb_hash128 h;
                fake f;
                c.level = level;
                fake_init(&f, b->from_memory ? data : NULL, size, c.chunk_size);
                if (!b->from_memory)
                    f.fd = open(tmp, O_RDONLY);
                if (ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, &b->st[r], &h,
                                      NULL, &err) != NTDSB_OK) {
                    fprintf(stderr, "engine failed: %s\n", err.message);
                    return 1;
                }
                if (f.fd >= 0)
                    close(f.fd);
                b->t[r] = b->st[r].wall_seconds;
                b->out = b->st[r].bytes_written;
            }
        }
    }
    for (m = 0; m < nmodes; m++) {
        bench_mode *b = &modes[m];
        double sorted[64];
        int best = 0;
        for (r = 0; r < runs; r++) {
            sorted[r] = b->t[r];
            if (b->t[r] < b->t[best])
                best = r;
        }
        qsort(sorted, (size_t)runs, sizeof sorted[0], cmp_double);
        if (b->threads == 0) {
            printf("%-22s best %7.1f MB/s  median %7.1f MB/s\n", b->name, size / sorted[0] / 1e6,
                   size / sorted[runs / 2] / 1e6);
        } else {
            ntdsb_backup_stats *st = &b->st[best];
            printf("%-22s best %7.1f MB/s  median %7.1f MB/s  ratio %.2f  [best run: read %.2fs "
                   "compress %.2fs write %.2fs reader_wait %.2fs writer_wait %.2fs]\n",
                   b->name, size / sorted[0] / 1e6, size / sorted[runs / 2] / 1e6,
                   (double)size / (double)b->out, st->read_seconds, st->compress_seconds,
                   st->write_seconds, st->reader_wait_seconds, st->writer_wait_seconds);
        }
    }
    close(devnull);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
        return bench(argc, argv);
    return run_tests();
}
