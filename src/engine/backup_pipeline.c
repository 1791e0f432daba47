/*
 * backup_pipeline.c - ntdsb_backup_file(): one file, no Python, no GIL.
 *
 *   reader thread ──> ring of slots ──> N workers ──> writer (calling thread)
 *   DsBackupRead       (FREE→READING→    XXH3-128 +     in order: header+frame
 *   + whole-file XXH3   FILLED→BUSY→     ZSTD_compress2  to the sink, chunk
 *                       DONE→FREE)                       table, cancel hook
 *
 * Chunk k always lives in slot k % nslots and chunk boundaries are fixed by
 * chunk_size, so the bytes written never depend on timing, thread count or
 * ring depth: each chunk is an independent zstd frame made with the same
 * parameters.  The writer frees slot k only after chunk k reached the sink, so
 * at most nslots chunks exist at once: memory is bounded by the ring.
 *
 * Synchronisation (ring_sync.c, shared with the restore pipeline) is one
 * mutex and three condition variables, each with a single kind of waiter
 * (cv_free: the reader, cv_work: workers, cv_done: the writer).  At 1 MiB per
 * chunk that is a few hundred lock round trips per second, so a lock-free ring
 * would buy nothing measurable.  Errors: the first failure is copied into
 * p->rs.err under the mutex, `stop` is set and every condition variable is
 * broadcast; everyone leaves at their next check and the calling thread joins
 * all threads before returning.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "engine_internal.h"

/* Successful zero-byte reads in a row, before the announced size, that we
 * accept before calling the file short.  A provider that keeps returning
 * nothing without ERROR_HANDLE_EOF would otherwise spin forever. */
#define MAX_EMPTY_READS 100

/*
 * One ring slot.  Aligned to a cache line so that workers finishing
 * neighbouring chunks do not bounce each other's lines.
 */
typedef struct slot {
    alignas(NTDSB_CACHE_LINE) uint8_t *in; /* chunk_size bytes: the DsBackupRead buffer */
    uint8_t *out;                          /* 48-byte header, then the zstd frame */
    uint64_t seq;                          /* chunk index it holds */
    uint32_t raw_size;
    uint32_t frame_size;
    int pages_checked;                     /* ntdsb_pages_worker checked its units */
    int state;                             /* enum ntdsb_slot_state; under p->rs.mu */
} slot;

typedef struct worker {
    alignas(NTDSB_CACHE_LINE) struct pipeline *p;
    ZSTD_CCtx *cctx;
    double compress_seconds; /* own counter, summed after the join */
    ntdsb_page_tally tally;  /* own page results, merged after the join */
} worker;

typedef struct pipeline {
    /* Read-only after setup. */
    const ntdsb_provider *prov;
    HBC hbc;
    uint64_t file_size;
    uint64_t nchunks;
    uint32_t chunk_size;
    uint32_t nslots;
    uint32_t nworkers;
    size_t out_cap; /* bytes of each slot's out buffer */
    slot *slots;
    worker *workers;
    const ntdsb_sink *sink;
    ntdsb_pages *pages; /* cfg->pages: NULL or the caller's checker */

    /* Reader-owned (the reader thread, or the caller in serial mode).  Read
     * by others only after the join. */
    alignas(NTDSB_CACHE_LINE) uint8_t *stage; /* chunk_size bytes: short-read carry-over */
    uint32_t stage_off, stage_len;            /* pending bytes of the next chunk in stage */
    int eof_seen;                             /* provider said ERROR_HANDLE_EOF */
    XXH3_state_t *file_state;
    uint64_t bytes_read, read_calls;
    double read_seconds, reader_wait;

    /* Writer-owned (the calling thread). */
    alignas(NTDSB_CACHE_LINE) ntdsb_chunk_table *table;
    uint64_t stream_offset;
    uint64_t bytes_written;
    uint64_t chunks_written;
    double write_seconds, writer_wait;
    ntdsb_cancel_poll cancel; /* also called by the caller in serial mode */

    /* Shared, under rs.mu.  rs.reader_done: all chunks published and the end
     * checked.  rs.stop is also read without the lock by the reader between
     * reads (in serial mode too, where the locks are never initialised). */
    alignas(NTDSB_CACHE_LINE) ntdsb_ring_sync rs;
} pipeline;

/* ---- the three steps, shared by the threaded and the serial modes ------------- */

/* off: the chunk's offset, or file_size for the end-of-file check. */
static int provider_error(ntdsb_error *e, HRESULT hr, uint64_t seq, uint64_t off)
{
    ntdsb_err_set(e, NTDSB_E_PROVIDER, "DsBackupRead", seq, off,
                  "DsBackupRead failed with 0x%08X at chunk %llu (offset %llu)",
                  (unsigned)(uint32_t)hr, (unsigned long long)seq, (unsigned long long)off);
    e->hr = hr;
    return NTDSB_E_PROVIDER;
}

static int overrun_error(pipeline *p, ntdsb_error *e, DWORD n, uint64_t seq)
{
    uint64_t off = seq * p->chunk_size;
    ntdsb_err_set(e, NTDSB_E_PROVIDER, "DsBackupRead", seq, off,
                  "DsBackupRead reported %lu bytes read into a %u-byte buffer at chunk %llu "
                  "(offset %llu)",
                  (unsigned long)n, p->chunk_size, (unsigned long long)seq,
                  (unsigned long long)off);
    return NTDSB_E_PROVIDER;
}

static int long_error(pipeline *p, ntdsb_error *e, uint64_t seq)
{
    ntdsb_err_set(e, NTDSB_E_LONG_FILE, "DsBackupRead", seq, seq * p->chunk_size,
                  "DsBackupRead returned more than the %llu bytes DsBackupOpenFile announced "
                  "(chunk %llu)",
                  (unsigned long long)p->file_size, (unsigned long long)seq);
    return NTDSB_E_LONG_FILE;
}

static int short_error(pipeline *p, ntdsb_error *e, uint64_t seq, uint64_t got, const char *why)
{
    ntdsb_err_set(e, NTDSB_E_SHORT_FILE, "DsBackupRead", seq, seq * p->chunk_size,
                  "DsBackupRead %s after %llu of the %llu bytes DsBackupOpenFile announced "
                  "(chunk %llu)",
                  why, (unsigned long long)got, (unsigned long long)p->file_size,
                  (unsigned long long)seq);
    return NTDSB_E_SHORT_FILE;
}

/* One DsBackupRead, timed and counted.  cbBuffer is always chunk_size (the
 * API wants a multiple of 8192, >= 24576, and the size given to
 * DsBackupOpenFile as the hint). */
static HRESULT timed_read(pipeline *p, void *buf, DWORD *n)
{
    double t0 = ntdsb_now();
    HRESULT hr;
    *n = 0;
    hr = p->prov->BackupRead(p->hbc, buf, p->chunk_size, n);
    p->read_seconds += ntdsb_now() - t0;
    p->read_calls++;
    return hr;
}

/*
 * Fill s->in with chunk `seq` (chunk_size bytes, or the rest of the file).
 *
 * The first read of a chunk goes straight into the slot.  If it comes back
 * short, the rest cannot be read in place: DsBackupRead still needs a
 * chunk_size buffer, and the slot has only chunk_size - fill bytes left.  So
 * later reads of the chunk go into the staging buffer and are copied; what
 * does not fit is kept there as the start of the next chunk.  With a provider
 * that always fills the buffer nothing is ever copied.
 */
static int read_chunk(pipeline *p, slot *s, uint64_t seq, ntdsb_error *e)
{
    const uint64_t off = seq * p->chunk_size;
    const uint32_t want = (uint32_t)(p->file_size - off < p->chunk_size ? p->file_size - off
                                                                         : p->chunk_size);
    const int last = off + want == p->file_size;
    uint32_t fill = 0;
    int empty = 0;

    if (p->stage_len > 0) {
        uint32_t take = p->stage_len < want ? p->stage_len : want;
        memcpy(s->in, p->stage + p->stage_off, take);
        p->stage_off += take;
        p->stage_len -= take;
        fill = take;
    }
    while (fill < want) {
        uint8_t *dst = fill == 0 ? s->in : p->stage;
        DWORD n;
        HRESULT hr;

        if (atomic_load_explicit(&p->rs.stop, memory_order_relaxed))
            return NTDSB_STEP_STOPPED;
        hr = timed_read(p, dst, &n);
        if (hr != 0 && hr != ERROR_HANDLE_EOF)
            return provider_error(e, hr, seq, off);
        if (n > p->chunk_size)
            return overrun_error(p, e, n, seq);
        p->bytes_read += n;
        if (dst == s->in) {
            if (n > want) /* only possible in the last chunk */
                return long_error(p, e, seq);
            fill = n;
        } else {
            uint32_t take = n < want - fill ? n : want - fill;
            memcpy(s->in + fill, p->stage, take);
            fill += take;
            p->stage_off = take;
            p->stage_len = n - take;
        }
        if (hr == ERROR_HANDLE_EOF) {
            p->eof_seen = 1;
            if (fill < want)
                return short_error(p, e, seq, off + fill, "reported end of file");
        } else if (n == 0 && ++empty >= MAX_EMPTY_READS) {
            return short_error(p, e, seq, off + fill, "kept returning no data");
        } else if (n != 0) {
            empty = 0;
        }
    }
    if (last && p->stage_len > 0)
        return long_error(p, e, seq);
    if (p->eof_seen && !last)
        return short_error(p, e, seq, off + fill, "reported end of file");

    s->seq = seq;
    s->raw_size = want;
    /* The whole-file hash is updated here, in file order, so no reordering
     * is needed; XXH3 runs at memory speed, far ahead of zstd. */
    XXH3_128bits_update(p->file_state, s->in, want);
    return NTDSB_OK;
}

/* After the announced size: one more read must say end of file (or return 0
 * bytes).  Data means the file grew: NTDSB_E_LONG_FILE. */
static int check_end(pipeline *p, ntdsb_error *e)
{
    DWORD n;
    HRESULT hr;

    if (p->eof_seen)
        return NTDSB_OK; /* the provider already said so with the last data */
    if (atomic_load_explicit(&p->rs.stop, memory_order_relaxed))
        return NTDSB_STEP_STOPPED;
    hr = timed_read(p, p->stage, &n);
    if (hr != 0 && hr != ERROR_HANDLE_EOF)
        return provider_error(e, hr, p->nchunks, p->file_size);
    if (n > p->chunk_size)
        return overrun_error(p, e, n, p->nchunks);
    p->bytes_read += n;
    if (n > 0)
        return long_error(p, e, p->nchunks);
    return NTDSB_OK;
}

/* Hash and compress the chunk in s, and put its header in front of the frame. */
static int compress_chunk(pipeline *p, worker *w, slot *s, ntdsb_error *e)
{
    double t0 = ntdsb_now();
    ntdsb_chunk_header h;
    size_t r;

    ntdsb_hash_canonical(XXH3_128bits(s->in, s->raw_size), &h.hash);
    /* Page checks right after the hash, while the chunk is still in cache.
     * Before the geometry is known this does nothing and the writer checks
     * the chunk instead (the slot remembers which). */
    s->pages_checked = p->pages != NULL &&
                       ntdsb_pages_worker(p->pages, &w->tally, s->in, s->raw_size,
                                          s->seq * p->chunk_size);
    r = ZSTD_compress2(w->cctx, s->out + NTDSB_CHUNK_HEADER_SIZE,
                       p->out_cap - NTDSB_CHUNK_HEADER_SIZE, s->in, s->raw_size);
    w->compress_seconds += ntdsb_now() - t0;
    if (ZSTD_isError(r)) {
        uint64_t off = s->seq * p->chunk_size;
        ntdsb_err_set(e, NTDSB_E_ZSTD, "ZSTD_compress2", s->seq, off,
                      "ZSTD_compress2 failed: %s at chunk %llu (offset %llu)",
                      ZSTD_getErrorName(r), (unsigned long long)s->seq,
                      (unsigned long long)off);
        e->lib_code = r;
        return NTDSB_E_ZSTD;
    }
    s->frame_size = (uint32_t)r;
    h.raw_size = s->raw_size;
    h.frame_size = s->frame_size;
    h.chunk_index = s->seq;
    ntdsb_chunk_header_encode(&h, s->out);
    return NTDSB_OK;
}

/* Header and frame are contiguous in s->out, so the sink gets one write(2)
 * or one callback call per chunk. */
static int write_chunk(pipeline *p, slot *s, ntdsb_error *e)
{
    const size_t len = NTDSB_CHUNK_HEADER_SIZE + (size_t)s->frame_size;
    const uint64_t off = s->seq * p->chunk_size;
    ntdsb_chunk_entry ent;
    int sys_errno = 0;
    double t0 = ntdsb_now();
    int rc = ntdsb_sink_put(p->sink, s->out, len, &sys_errno);

    p->write_seconds += ntdsb_now() - t0;
    if (rc == NTDSB_E_WRITE) {
        ntdsb_err_set(e, rc, "write", s->seq, off,
                      "writing chunk %llu (offset %llu) to the output failed (errno %d)",
                      (unsigned long long)s->seq, (unsigned long long)off, sys_errno);
        e->sys_errno = sys_errno;
        return rc;
    }
    if (rc != NTDSB_OK) {
        ntdsb_err_set(e, rc, "write callback", s->seq, off,
                      "the write callback failed at chunk %llu (offset %llu)",
                      (unsigned long long)s->seq, (unsigned long long)off);
        return rc;
    }
    ent.raw_offset = off;
    ent.raw_size = s->raw_size;
    ent.frame_size = s->frame_size;
    ent.stream_offset = p->stream_offset;
    memcpy(ent.hash.bytes, s->out + 32, sizeof ent.hash.bytes); /* header's hash field */
    p->stream_offset += len;
    p->bytes_written += len;
    p->chunks_written++;
    /* In order, with the raw chunk still in the slot: the head, units across
     * chunk boundaries, and whatever no worker checked. */
    if (p->pages != NULL)
        ntdsb_pages_in_order(p->pages, s->in, s->raw_size, off, s->pages_checked);
    if (p->table != NULL && ntdsb_chunk_table_append(p->table, &ent) != NTDSB_OK) {
        ntdsb_err_set(e, NTDSB_E_NOMEM, "realloc", s->seq, off,
                      "out of memory growing the chunk table at chunk %llu",
                      (unsigned long long)s->seq);
        return NTDSB_E_NOMEM;
    }
    return NTDSB_OK;
}

/* Chunk seq starts at seq * chunk_size: the offset the cancel message names. */
static int cancelled(pipeline *p, uint64_t seq, ntdsb_error *e)
{
    return ntdsb_cancel_check(&p->cancel, seq, seq * p->chunk_size, e);
}

/* ---- serial mode: one slot, no threads ------------------------------------------ */

static int run_serial(pipeline *p, ntdsb_error *e)
{
    slot *s = &p->slots[0];
    uint64_t seq;
    int rc;

    for (seq = 0; seq < p->nchunks; seq++) {
        if (cancelled(p, seq, e))
            return NTDSB_E_CANCELLED;
        if ((rc = read_chunk(p, s, seq, e)) != NTDSB_OK)
            return rc;
        if ((rc = compress_chunk(p, &p->workers[0], s, e)) != NTDSB_OK)
            return rc;
        if ((rc = write_chunk(p, s, e)) != NTDSB_OK)
            return rc;
    }
    return check_end(p, e);
}

/* ---- threaded mode --------------------------------------------------------------- */

static void *reader_main(void *arg)
{
    pipeline *p = arg;
    ntdsb_error e;
    uint64_t seq;
    int rc;

    for (seq = 0; seq < p->nchunks; seq++) {
        slot *s = &p->slots[seq % p->nslots];
        double t0 = ntdsb_now();

        ntdsb_mutex_lock(&p->rs.mu);
        ntdsb_ring_wait_free_locked(&p->rs, &s->state);
        p->reader_wait += ntdsb_now() - t0;
        if (atomic_load(&p->rs.stop)) {
            ntdsb_mutex_unlock(&p->rs.mu);
            return NULL;
        }
        s->state = NTDSB_SLOT_READING;
        ntdsb_mutex_unlock(&p->rs.mu);

        rc = read_chunk(p, s, seq, &e); /* the slot is ours: no lock while reading */
        if (rc != NTDSB_OK) {
            if (rc != NTDSB_STEP_STOPPED)
                ntdsb_ring_fail(&p->rs, &e);
            return NULL;
        }
        ntdsb_ring_publish(&p->rs, &s->state, seq);
    }

    rc = check_end(p, &e);
    if (rc != NTDSB_OK) {
        if (rc != NTDSB_STEP_STOPPED)
            ntdsb_ring_fail(&p->rs, &e);
        return NULL;
    }
    ntdsb_mutex_lock(&p->rs.mu);
    ntdsb_ring_reader_done_locked(&p->rs);
    ntdsb_mutex_unlock(&p->rs.mu);
    return NULL;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pipeline *p = w->p;
    ntdsb_error e;
    uint64_t seq;

    ntdsb_mutex_lock(&p->rs.mu);
    while (ntdsb_ring_take_locked(&p->rs, &seq)) {
        slot *s = &p->slots[seq % p->nslots];
        int rc;

        s->state = NTDSB_SLOT_BUSY;
        ntdsb_mutex_unlock(&p->rs.mu);

        rc = compress_chunk(p, w, s, &e);

        ntdsb_mutex_lock(&p->rs.mu);
        if (rc != NTDSB_OK) {
            ntdsb_ring_fail_locked(&p->rs, &e);
            break;
        }
        ntdsb_ring_done_locked(&p->rs, &s->state, s->seq);
    }
    ntdsb_mutex_unlock(&p->rs.mu);
    return NULL;
}

/* The writer: the calling thread.  Returns when every chunk is written and
 * the reader checked the end (NTDSB_OK), or on any failure (recorded). */
static void run_writer(void *arg)
{
    pipeline *p = arg;
    ntdsb_error e;
    uint64_t ws = 0;

    for (;;) {
        slot *s = &p->slots[ws % p->nslots];
        double t0;
        int ready;

        /* Between chunks. */
        if (cancelled(p, ws, &e)) {
            ntdsb_ring_fail(&p->rs, &e);
            return;
        }

        t0 = ntdsb_now();
        ntdsb_mutex_lock(&p->rs.mu);
        ready = ntdsb_ring_writer_wait_locked(&p->rs, &s->state, &s->seq, ws, &p->cancel,
                                              ws * p->chunk_size);
        p->writer_wait += ntdsb_now() - t0;
        ntdsb_mutex_unlock(&p->rs.mu);
        if (!ready)
            return; /* a failure, or the reader is done and everything is written */

        if (write_chunk(p, s, &e) != NTDSB_OK) {
            ntdsb_ring_fail(&p->rs, &e);
            return;
        }
        ws++;
        ntdsb_ring_release(&p->rs, &s->state, ws);
    }
}

static void thread_error(ntdsb_error *e, const char *call, const char *what, int rc)
{
    ntdsb_err_set(e, NTDSB_E_THREAD, call, 0, 0, "could not %s (error %d)", what, rc);
}

/* Every thread is joined when it returns. */
static int run_threaded(pipeline *p, ntdsb_error *err)
{
    /* The reader's blocking call is DsBackupRead: never cancelled under it. */
    const ntdsb_ring_roles roles = {worker_main, p->workers, sizeof *p->workers, p->nworkers,
                                    reader_main, run_writer, p, thread_error, 0};
    return ntdsb_ring_run(&p->rs, &roles, err);
}

/* ---- setup and teardown ---------------------------------------------------------- */

static void teardown(pipeline *p)
{
    uint32_t i;
    if (p->slots != NULL) {
        for (i = 0; i < p->nslots; i++) {
            ntdsb_free_aligned(p->slots[i].in);
            ntdsb_free_aligned(p->slots[i].out);
        }
        ntdsb_free_aligned(p->slots);
    }
    if (p->workers != NULL) {
        for (i = 0; i < p->nworkers; i++)
            ZSTD_freeCCtx(p->workers[i].cctx);
        ntdsb_free_aligned(p->workers);
    }
    ntdsb_free_aligned(p->stage);
    if (p->file_state != NULL)
        XXH3_freeState(p->file_state);
}

static int setup(pipeline *p, const ntdsb_backup_config *cfg, ntdsb_error *e)
{
    uint32_t i;
    size_t largest = p->file_size < p->chunk_size ? (size_t)p->file_size : p->chunk_size;

    /* No more slots or workers than chunks: a log file of one chunk needs one
     * buffer, not threads + 2 of them (the output does not depend on it). */
    p->nslots = cfg->serial ? 1u : cfg->ring_depth;
    if (p->nslots > p->nchunks)
        p->nslots = p->nchunks > 0 ? (uint32_t)p->nchunks : 1u;
    p->nworkers = cfg->serial ? 1u : cfg->threads;
    if (p->nworkers > p->nslots)
        p->nworkers = p->nslots; /* more could never all be busy at once */
    /* Sized for the largest chunk this file has; the rest are not larger. */
    p->out_cap = NTDSB_CHUNK_HEADER_SIZE + ZSTD_compressBound(largest > 0 ? largest : 1);

    p->slots = ntdsb_alloc_zeroed(p->nslots, sizeof *p->slots);
    if (p->slots == NULL)
        return ntdsb_err_nomem(e, "malloc", "the ring");
    for (i = 0; i < p->nslots; i++) {
        /* `in` is always a full chunk_size: DsBackupRead is always given
         * cbBuffer = chunk_size, even for the last, shorter chunk. */
        p->slots[i].in = ntdsb_alloc_aligned(p->chunk_size);
        p->slots[i].out = ntdsb_alloc_aligned(p->out_cap);
        if (p->slots[i].in == NULL || p->slots[i].out == NULL)
            return ntdsb_err_nomem(e, "malloc", "the ring");
    }
    p->stage = ntdsb_alloc_aligned(p->chunk_size);
    if (p->stage == NULL)
        return ntdsb_err_nomem(e, "malloc", "the staging buffer");

    p->workers = ntdsb_alloc_zeroed(p->nworkers, sizeof *p->workers);
    if (p->workers == NULL)
        return ntdsb_err_nomem(e, "malloc", "the workers");
    for (i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        size_t r;
        w->p = p;
        w->cctx = ZSTD_createCCtx();
        if (w->cctx == NULL)
            return ntdsb_err_nomem(e, "ZSTD_createCCtx", "a zstd context");
        /* Same parameters in every worker, and no zstd-internal threads:
         * the frames must not depend on which worker made them. */
        r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, cfg->level);
        if (!ZSTD_isError(r))
            r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
        if (!ZSTD_isError(r))
            r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
        if (ZSTD_isError(r)) {
            ntdsb_err_set(e, NTDSB_E_ZSTD, "ZSTD_CCtx_setParameter", 0, 0,
                          "ZSTD_CCtx_setParameter failed: %s", ZSTD_getErrorName(r));
            e->lib_code = r;
            return NTDSB_E_ZSTD;
        }
    }

    p->file_state = XXH3_createState();
    if (p->file_state == NULL)
        return ntdsb_err_nomem(e, "XXH3_createState", "the file hash state");
    if (XXH3_128bits_reset(p->file_state) != XXH_OK)
        return ntdsb_err_nomem(e, "XXH3_128bits_reset", "the file hash state");
    return NTDSB_OK;
}

int ntdsb_backup_file(const ntdsb_provider *prov, HBC hbc, uint64_t file_size,
                      const ntdsb_backup_config *cfg, const ntdsb_sink *sink,
                      ntdsb_cancel_fn cancel, void *cancel_ctx,
                      ntdsb_backup_stats *stats, ntdsb_hash128 *file_hash,
                      ntdsb_chunk_table *table, ntdsb_error *err)
{
    const double t_start = ntdsb_now();
    ntdsb_error local_err;
    ntdsb_backup_config rc_cfg;
    pipeline *p;
    int rc;
    uint32_t i;

    err = ntdsb_outputs_reset(err, &local_err, stats, sizeof *stats, file_hash);
    if (table != NULL) {
        table->entries = NULL;
        table->count = 0;
        table->capacity = 0;
    }

    if (prov == NULL || prov->BackupRead == NULL) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "provider has no DsBackupRead");
        return NTDSB_E_CONFIG;
    }
    if ((rc = ntdsb_config_resolve(cfg, &rc_cfg, err)) != NTDSB_OK)
        return rc;
    if ((rc = ntdsb_sink_check(sink, err)) != NTDSB_OK)
        return rc;

    /* The pipeline holds cache-line-aligned members: allocate it aligned
     * rather than trusting the caller's stack alignment. */
    p = ntdsb_alloc_zeroed(1, sizeof *p);
    if (p == NULL)
        return ntdsb_err_nomem(err, "malloc", "the pipeline");
    p->prov = prov;
    p->hbc = hbc;
    p->file_size = file_size;
    p->chunk_size = rc_cfg.chunk_size;
    p->nchunks = file_size / rc_cfg.chunk_size + (file_size % rc_cfg.chunk_size != 0);
    p->sink = sink;
    p->cancel.fn = cancel;
    p->cancel.ctx = cancel_ctx;
    p->table = table;
    p->pages = rc_cfg.pages;
    atomic_init(&p->rs.stop, 0);
    ntdsb_err_clear(&p->rs.err);

    rc = setup(p, &rc_cfg, err);
    if (rc == NTDSB_OK && table != NULL)
        /* One allocation for the usual case; capped so a bogus size cannot
         * ask for gigabytes before the first byte is read. */
        ntdsb_chunk_table_reserve(table, p->nchunks < 65536u ? p->nchunks : 65536u);

    if (rc == NTDSB_OK) {
        /* A file of at most one chunk has nothing to overlap: serial mode
         * gives the same bytes without starting threads. */
        if (rc_cfg.serial || p->nchunks <= 1)
            rc = run_serial(p, err);
        else
            rc = run_threaded(p, err);
    }

    if (p->pages != NULL) {
        /* Every thread is joined: the worker tallies are final. */
        ntdsb_pages_finish(p->pages);
        for (i = 0; p->workers != NULL && i < p->nworkers; i++)
            ntdsb_pages_merge(p->pages, &p->workers[i].tally);
    }
    if (rc == NTDSB_OK && file_hash != NULL)
        ntdsb_hash_canonical(XXH3_128bits_digest(p->file_state), file_hash);
    if (stats != NULL) {
        stats->bytes_read = p->bytes_read;
        stats->bytes_written = p->bytes_written;
        stats->chunks = p->chunks_written;
        stats->read_calls = p->read_calls;
        stats->read_seconds = p->read_seconds;
        for (i = 0; p->workers != NULL && i < p->nworkers; i++)
            stats->compress_seconds += p->workers[i].compress_seconds;
        stats->write_seconds = p->write_seconds;
        stats->reader_wait_seconds = p->reader_wait;
        stats->writer_wait_seconds = p->writer_wait;
    }
    teardown(p);
    ntdsb_free_aligned(p);
    if (stats != NULL)
        stats->wall_seconds = ntdsb_now() - t_start;
    return rc;
}
