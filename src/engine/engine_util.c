/*
 * engine_util.c - small helpers of the engine: status names, configuration
 * defaults and checks, CPU count, the chunk table, the error record and the
 * zeroed buffers the pipelines share.  What the operating system provides
 * (threads, clock, aligned memory, files) is in platform.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "engine_internal.h"

const char *ntdsb_status_name(int status)
{
    switch (status) {
    case NTDSB_OK: return "NTDSB_OK";
    case NTDSB_E_NOMEM: return "NTDSB_E_NOMEM";
    case NTDSB_E_PROVIDER: return "NTDSB_E_PROVIDER";
    case NTDSB_E_ZSTD: return "NTDSB_E_ZSTD";
    case NTDSB_E_WRITE: return "NTDSB_E_WRITE";
    case NTDSB_E_SHORT_FILE: return "NTDSB_E_SHORT_FILE";
    case NTDSB_E_LONG_FILE: return "NTDSB_E_LONG_FILE";
    case NTDSB_E_CANCELLED: return "NTDSB_E_CANCELLED";
    case NTDSB_E_THREAD: return "NTDSB_E_THREAD";
    case NTDSB_E_CONFIG: return "NTDSB_E_CONFIG";
    case NTDSB_E_CALLBACK: return "NTDSB_E_CALLBACK";
    case NTDSB_E_CORRUPT: return "NTDSB_E_CORRUPT";
    case NTDSB_E_READ: return "NTDSB_E_READ";
    default: return "NTDSB_E_UNKNOWN";
    }
}

uint32_t ntdsb_cpu_count(void)
{
    long n = ntdsb_os_cpus(); /* at least 1 */

    if (n > (long)NTDSB_THREADS_MAX)
        n = (long)NTDSB_THREADS_MAX;
    return (uint32_t)n;
}

void ntdsb_backup_config_init(ntdsb_backup_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* 1 MiB: large enough that per-chunk costs (header, frame header, locking,
     * wakeups) vanish and zstd -1 keeps its ratio, small enough that the ring
     * stays a few MiB.  See the measurements in the report of
     * tests/native/test_pipeline.c --bench. */
    cfg->chunk_size = 1024u * 1024u;
    cfg->ring_depth = 0; /* threads + 2 */
    cfg->threads = ntdsb_cpu_count();
    cfg->level = 1;
    cfg->serial = 0;
    cfg->pages = NULL;
}

int ntdsb_config_resolve(const ntdsb_backup_config *in, ntdsb_backup_config *out,
                         ntdsb_error *err)
{
    if (in == NULL) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "config is NULL");
        return NTDSB_E_CONFIG;
    }
    if (in->chunk_size < NTDSB_CHUNK_MIN || in->chunk_size > NTDSB_CHUNK_MAX ||
        in->chunk_size % NTDSB_READ_GRANULE != 0) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "chunk_size %u is invalid: it must be a multiple of %u between %u and %u",
                      in->chunk_size, NTDSB_READ_GRANULE, NTDSB_CHUNK_MIN, NTDSB_CHUNK_MAX);
        return NTDSB_E_CONFIG;
    }
    if (in->threads < 1 || in->threads > NTDSB_THREADS_MAX) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "threads %u is invalid: it must be between 1 and %u", in->threads,
                      NTDSB_THREADS_MAX);
        return NTDSB_E_CONFIG;
    }
    if (in->ring_depth != 0 &&
        (in->ring_depth < NTDSB_RING_MIN || in->ring_depth > NTDSB_RING_MAX)) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "ring_depth %u is invalid: it must be 0 (threads + 2) or between %u and %u",
                      in->ring_depth, NTDSB_RING_MIN, NTDSB_RING_MAX);
        return NTDSB_E_CONFIG;
    }
    if (in->level < ZSTD_minCLevel() || in->level > ZSTD_maxCLevel()) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "level %d is invalid: zstd accepts %d to %d", in->level, ZSTD_minCLevel(),
                      ZSTD_maxCLevel());
        return NTDSB_E_CONFIG;
    }
    *out = *in; /* pages too: the pipeline checks into the caller's ntdsb_pages */
    if (out->ring_depth == 0) {
        uint32_t d = in->threads + 2u;
        out->ring_depth = d > NTDSB_RING_MAX ? NTDSB_RING_MAX : d;
    }
    out->serial = in->serial ? 1 : 0;
    return NTDSB_OK;
}

ntdsb_error *ntdsb_outputs_reset(ntdsb_error *err, ntdsb_error *local, void *stats,
                                 size_t stats_size, ntdsb_hash128 *file_hash)
{
    if (err == NULL)
        err = local;
    ntdsb_err_clear(err);
    if (stats != NULL)
        memset(stats, 0, stats_size);
    if (file_hash != NULL)
        memset(file_hash, 0, sizeof *file_hash);
    return err;
}

void ntdsb_hash_canonical(XXH128_hash_t h, ntdsb_hash128 *out)
{
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, h);
    memcpy(out->bytes, canon.digest, sizeof out->bytes);
}

void ntdsb_chunk_table_free(ntdsb_chunk_table *t)
{
    if (t == NULL)
        return;
    free(t->entries);
    t->entries = NULL;
    t->count = 0;
    t->capacity = 0;
}

void ntdsb_chunk_table_reserve(ntdsb_chunk_table *t, uint64_t n)
{
    ntdsb_chunk_entry *p;
    if (n <= t->capacity || n > SIZE_MAX / sizeof *p)
        return;
    p = realloc(t->entries, (size_t)n * sizeof *p);
    if (p != NULL) {
        t->entries = p;
        t->capacity = n;
    }
}

int ntdsb_chunk_table_append(ntdsb_chunk_table *t, const ntdsb_chunk_entry *e)
{
    if (t->count == t->capacity) {
        uint64_t cap = t->capacity ? t->capacity * 2u : 64u;
        ntdsb_chunk_entry *p;
        if (cap > SIZE_MAX / sizeof *p)
            return NTDSB_E_NOMEM;
        p = realloc(t->entries, (size_t)cap * sizeof *p);
        if (p == NULL)
            return NTDSB_E_NOMEM;
        t->entries = p;
        t->capacity = cap;
    }
    t->entries[t->count++] = *e;
    return NTDSB_OK;
}

void ntdsb_err_clear(ntdsb_error *e)
{
    memset(e, 0, sizeof *e);
    e->status = NTDSB_OK;
}

void ntdsb_err_set(ntdsb_error *e, int status, const char *call, uint64_t chunk_index,
                   uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    if (e == NULL)
        return;
    ntdsb_err_clear(e);
    e->status = status;
    e->call = call;
    e->chunk_index = chunk_index;
    e->offset = offset;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* ---- shared by the pipelines (backup_pipeline.c, restore_pipeline.c) ---------- */

void *ntdsb_alloc_zeroed(size_t count, size_t size)
{
    void *ptr = ntdsb_alloc_aligned(count * size);
    if (ptr != NULL)
        memset(ptr, 0, count * size);
    return ptr;
}

int ntdsb_err_nomem(ntdsb_error *e, const char *call, const char *what)
{
    ntdsb_err_set(e, NTDSB_E_NOMEM, call, 0, 0, "out of memory allocating %s", what);
    return NTDSB_E_NOMEM;
}
