/*
 * restore_pipeline.c - ntdsb_restore_file() / ntdsb_restore_from(): one
 * file's chunk frames from an archive stream, decompressed and verified in
 * parallel, written in order.
 * No Python, no GIL.
 *
 *   reader thread ──> ring of slots ──> N workers ──> writer (calling thread)
 *   read(2) header     (FREE→FILLED→     ZSTD_decompressDCtx  in order: write(2),
 *   + frame, checks     BUSY→DONE→FREE)  + XXH3-128 check     whole-file XXH3,
 *   the header                                                cancel hook
 *
 * Chunk k lives in slot k % nslots; the writer frees slot k only after chunk k
 * is written, so at most nslots chunks exist at once and memory is bounded by
 * the ring.  Slot buffers are allocated on first use, sized from the first
 * chunk header (every later chunk is the same size or, the last, smaller), so
 * a one-chunk file costs one slot and nothing is allocated per chunk.
 *
 * The input is a descriptor or, through ntdsb_restore_from, a read callback
 * (an age payload being decrypted, say); the reader treats both alike.
 *
 * The descriptor is shared with the Python layer, which reads the archive's
 * metadata frames before and after this call with unbuffered os.read.  So the
 * reader never reads a byte beyond the file's last frame: it reads a header,
 * then exactly its frame, and stops when the raw sizes reach file_size.  (Two
 * read(2) calls per chunk: at 1 MiB chunks a handful of microseconds per
 * millisecond of decompression, not worth any cleverness.)
 *
 * Errors are reported in file order, not in time order: a failing worker
 * leaves its error in the slot and the reader leaves a failure at chunk k as
 * "the stream ends at k with this error"; the writer reports it when it gets
 * to that chunk.  So the error names the FIRST bad chunk of the file whatever
 * the thread count or timing (a reader running ahead cannot report chunk 7
 * before a worker reports chunk 3), at the price of finishing at most a ring
 * of earlier chunks.  Failures of the writer itself (write, cancel) stop
 * everyone at once.  Every path joins every thread before returning.
 *
 * Synchronisation is backup_pipeline.c's (ring_sync.c): one mutex, three
 * condition variables with one kind of waiter each (cv_free: reader, cv_work:
 * workers, cv_done: writer).  At 1 MiB chunks that is a few thousand lock
 * round trips per second at most.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h> /* ZSTD_getErrorCode, ZSTD_error_memory_allocation */

#include "engine_internal.h"
#include "ntdsb_restore.h"

typedef struct slot {
    alignas(NTDSB_CACHE_LINE) uint8_t *frame; /* frame_cap bytes: the zstd frame */
    uint8_t *raw;                             /* raw_cap bytes: the decompressed chunk */
    uint64_t seq;                             /* chunk index it holds */
    uint64_t offset;                          /* raw offset of the chunk in the file */
    uint32_t raw_size;
    uint32_t frame_size;
    ntdsb_hash128 hash;                       /* from the chunk header */
    int pages_checked;                        /* ntdsb_pages_worker checked its units */
    int rc;                                   /* worker's result (NTDSB_OK or the error in err) */
    int state;                                /* enum ntdsb_slot_state; under p->rs.mu */
    ntdsb_error err;                          /* the worker's failure, reported in order */
} slot;

typedef struct worker {
    alignas(NTDSB_CACHE_LINE) struct rpipe *p;
    ZSTD_DCtx *dctx;
    double seconds;       /* own counters, summed after the join */
    double write_seconds; /* pwrite() of its chunks (regular-file outputs) */
    ntdsb_page_tally tally; /* own page results, merged after the join */
} worker;

typedef struct rpipe {
    /* Read-only after setup. */
    ntdsb_file in_fd;     /* NTDSB_NO_FILE when in_read is used */
    ntdsb_read_fn in_read; /* the caller's read callback (ntdsb_restore_from) */
    void *in_ctx;
    int in_may_block; /* not a regular file: a read may wait for ever (platform.h) */
    uint64_t file_size;
    uint32_t max_raw;
    uint32_t nslots;
    uint32_t nworkers;
    slot *slots;
    worker *workers;
    ntdsb_sink out; /* {out_fd, NULL, NULL}: ntdsb_sink_put's write loop */
    int out_positional; /* out_fd is a regular file: workers pwrite() their own chunks */
    ntdsb_file out_pos; /* what they pwrite() to: out_fd's positional twin (platform.h) */
    ntdsb_restore_stats *live; /* caller's stats: bytes_out kept current for the hook */
    ntdsb_pages *pages;   /* cfg->pages: NULL or the caller's checker */

    /* Reader-owned; read by others only after the join (or, raw_cap /
     * frame_cap, through a slot published under the mutex). */
    alignas(NTDSB_CACHE_LINE) uint32_t first_raw; /* raw_size of chunk 0: the chunk size */
    size_t raw_cap, frame_cap;
    uint64_t bytes_in;
    double read_seconds;

    /* Writer-owned (the calling thread). */
    alignas(NTDSB_CACHE_LINE) XXH3_state_t *file_state;
    uint64_t bytes_out, chunks;
    double write_seconds;
    ntdsb_cancel_poll cancel;

    /* Shared, under rs.mu.  rs.err is the reported failure (the first in
     * file order, see above); rs.stop is also read without the lock between
     * reads. */
    alignas(NTDSB_CACHE_LINE) ntdsb_ring_sync rs;
    int reader_rc;          /* NTDSB_OK, or the failure at chunk `rs.produced` */
    ntdsb_error reader_err;
    /* Positional output: decoded chunks waiting for a pwrite(), and whether a
     * worker is writing them (see write_pending_locked). */
    slot *pending[NTDSB_RING_MAX];
    uint32_t npending;
    int writing;
} rpipe;

/* ---- errors -------------------------------------------------------------------- */

/* A corrupt-input error.  The message starts "chunk K (offset O): " so that a
 * report names the place without the caller formatting chunk_index/offset. */
static int corrupt(ntdsb_error *e, uint64_t seq, uint64_t off, const char *call,
                   const char *fmt, const char *detail)
{
    ntdsb_err_set(e, NTDSB_E_CORRUPT, call, seq, off, "chunk %llu (offset %llu): %s%s",
                  (unsigned long long)seq, (unsigned long long)off, fmt,
                  detail != NULL ? detail : "");
    return NTDSB_E_CORRUPT;
}

/* ---- the reader ------------------------------------------------------------------ */

/*
 * Read exactly `want` bytes unless the input ends first.  *got = bytes read.
 * NTDSB_OK (check *got for an early end), NTDSB_E_READ (e filled) or
 * NTDSB_STEP_STOPPED.  On a pipe, socket or terminal a read could wait for
 * ever; ntdsb_file_read_some still notices `stop` within NTDSB_IO_POLL_MS (as
 * often as the writer calls the cancel hook), so the join never hangs on it.
 */
static int read_full(rpipe *p, uint8_t *buf, size_t want, size_t *got, uint64_t seq,
                     uint64_t off, ntdsb_error *e)
{
    double t0 = ntdsb_now();
    size_t have = 0;
    int rc = NTDSB_OK;

    while (have < want) {
        size_t n = 0;
        int en = 0;
        int io;

        if (p->in_read != NULL) {
            /* A callback: its failure is reported as it worded it. */
            if (atomic_load(&p->rs.stop)) {
                rc = NTDSB_STEP_STOPPED;
                break;
            }
            ntdsb_err_clear(e);
            rc = p->in_read(p->in_ctx, buf + have, want - have, &n, &p->rs.stop, e);
            if (rc != NTDSB_OK) {
                if (e->status == NTDSB_OK) /* a callback that said nothing */
                    ntdsb_err_set(e, rc < 0 ? rc : NTDSB_E_CALLBACK, "read callback", seq, off,
                                  "chunk %llu (offset %llu): the input callback failed",
                                  (unsigned long long)seq, (unsigned long long)off);
                rc = e->status;
                break;
            }
            if (n == 0)
                break; /* end of input */
            have += n > want - have ? want - have : n;
            continue;
        }
        io = ntdsb_file_read_some(p->in_fd, buf + have, want - have, &n, p->in_may_block,
                                      &p->rs.stop, &en);
        if (io == NTDSB_IO_DATA) {
            have += n;
            continue;
        }
        if (io == NTDSB_IO_EOF)
            break; /* end of input */
        if (io == NTDSB_IO_STOPPED) {
            rc = NTDSB_STEP_STOPPED;
            break;
        }
        {
            char text[128];
            ntdsb_err_set(e, NTDSB_E_READ, "read", seq, off,
                          "chunk %llu (offset %llu): reading the archive failed: %s",
                          (unsigned long long)seq, (unsigned long long)off,
                          ntdsb_strerror(en, text, sizeof text));
            e->sys_errno = en;
            rc = NTDSB_E_READ;
            break;
        }
    }
    p->bytes_in += have;
    p->read_seconds += ntdsb_now() - t0;
    *got = have;
    return rc;
}

/* Allocate slot s's buffers from the first chunk's size (reader-owned slot). */
static int slot_alloc(rpipe *p, slot *s, uint64_t seq, uint64_t off, ntdsb_error *e)
{
    s->frame = ntdsb_alloc_aligned(p->frame_cap);
    s->raw = ntdsb_alloc_aligned(p->raw_cap);
    if (s->frame == NULL || s->raw == NULL) {
        ntdsb_err_set(e, NTDSB_E_NOMEM, "malloc", seq, off,
                      "chunk %llu (offset %llu): out of memory allocating a ring slot "
                      "(%zu + %zu bytes)",
                      (unsigned long long)seq, (unsigned long long)off, p->frame_cap,
                      p->raw_cap);
        return NTDSB_E_NOMEM;
    }
    return NTDSB_OK;
}

/*
 * Read and check chunk `seq` (raw offset `off`) into slot s, which the reader
 * owns (FREE).  Every header check is done before the frame is read, so a
 * hostile size never makes us allocate or read more than the limits allow.
 */
static int read_chunk(rpipe *p, slot *s, uint64_t seq, uint64_t off, ntdsb_error *e)
{
    uint8_t hdr[NTDSB_CHUNK_HEADER_SIZE];
    ntdsb_chunk_header h;
    const char *why;
    char detail[160];
    size_t got, bound;
    int last, rc;

    rc = read_full(p, hdr, sizeof hdr, &got, seq, off, e);
    if (rc != NTDSB_OK)
        return rc;
    if (got < sizeof hdr) {
        snprintf(detail, sizeof detail, " (end of input after %zu of the %u header bytes)", got,
                 NTDSB_CHUNK_HEADER_SIZE);
        return corrupt(e, seq, off, "read", "truncated", detail);
    }
    if (ntdsb_chunk_header_decode(hdr, sizeof hdr, &h, &why) != NTDSB_OK) {
        /* "bad chunk header: magic", not "bad chunk header: bad chunk header magic". */
        if (strncmp(why, "bad chunk header ", 17) == 0)
            why += 17;
        return corrupt(e, seq, off, NULL, "bad chunk header: ", why);
    }
    if (h.raw_size > p->max_raw) {
        snprintf(detail, sizeof detail, "raw_size %u is above the limit %u", h.raw_size,
                 p->max_raw);
        return corrupt(e, seq, off, NULL, "bad chunk header: ", detail);
    }
    if (h.chunk_index != seq) {
        snprintf(detail, sizeof detail, "chunk_index %llu where %llu was expected",
                 (unsigned long long)h.chunk_index, (unsigned long long)seq);
        return corrupt(e, seq, off, NULL, "bad chunk header: ", detail);
    }
    if (h.raw_size > p->file_size - off) {
        snprintf(detail, sizeof detail, "raw_size %u goes past the file size %llu",
                 h.raw_size, (unsigned long long)p->file_size);
        return corrupt(e, seq, off, NULL, "bad chunk header: ", detail);
    }
    last = h.raw_size == p->file_size - off;
    if (seq == 0) {
        p->first_raw = h.raw_size;
    } else if (h.raw_size != p->first_raw && !(last && h.raw_size < p->first_raw)) {
        /* Only the last chunk may differ, and only by being shorter: the
         * backup engine cuts every chunk at chunk_size. */
        snprintf(detail, sizeof detail, "raw_size %u differs from the first chunk's %u%s",
                 h.raw_size, p->first_raw, last ? "" : " and it is not the last chunk");
        return corrupt(e, seq, off, NULL, "bad chunk header: ", detail);
    }
    bound = ZSTD_compressBound(h.raw_size);
    if (h.frame_size > bound) {
        snprintf(detail, sizeof detail, "frame_size %u is above ZSTD_compressBound(%u) = %zu",
                 h.frame_size, h.raw_size, bound);
        return corrupt(e, seq, off, NULL, "bad chunk header: ", detail);
    }

    if (p->frame_cap == 0) {
        /* The first chunk fixes the slot size for the whole file (the header
         * checks above keep every later chunk within it). */
        p->raw_cap = p->first_raw;
        p->frame_cap = ZSTD_compressBound(p->first_raw);
    }
    if (s->frame == NULL && (rc = slot_alloc(p, s, seq, off, e)) != NTDSB_OK)
        return rc;

    rc = read_full(p, s->frame, h.frame_size, &got, seq, off, e);
    if (rc != NTDSB_OK)
        return rc;
    if (got < h.frame_size) {
        snprintf(detail, sizeof detail, " (end of input after %zu of the %u frame bytes)", got,
                 h.frame_size);
        return corrupt(e, seq, off, "read", "truncated", detail);
    }
    s->seq = seq;
    s->offset = off;
    s->raw_size = h.raw_size;
    s->frame_size = h.frame_size;
    s->hash = h.hash;
    return NTDSB_OK;
}

/* The reader leaves its failure for the writer, who reports it after every
 * earlier chunk (whose own errors come first).  NTDSB_STEP_STOPPED: nothing to say. */
static void reader_finish(rpipe *p, int rc, const ntdsb_error *e)
{
    ntdsb_mutex_lock(&p->rs.mu);
    if (rc != NTDSB_OK && rc != NTDSB_STEP_STOPPED) {
        p->reader_rc = rc;
        p->reader_err = *e;
    }
    ntdsb_ring_reader_done_locked(&p->rs);
    ntdsb_mutex_unlock(&p->rs.mu);
}

static void *reader_main(void *arg)
{
    rpipe *p = arg;
    ntdsb_error e;
    uint64_t seq = 0, off = 0;
    int rc = NTDSB_OK;

    ntdsb_err_clear(&e);
    while (off < p->file_size) {
        slot *s = &p->slots[seq % p->nslots];

        ntdsb_mutex_lock(&p->rs.mu);
        ntdsb_ring_wait_free_locked(&p->rs, &s->state);
        ntdsb_mutex_unlock(&p->rs.mu);
        if (atomic_load(&p->rs.stop)) {
            rc = NTDSB_STEP_STOPPED;
            break;
        }

        rc = read_chunk(p, s, seq, off, &e); /* the slot is ours: no lock while reading */
        if (rc != NTDSB_OK)
            break;
        ntdsb_ring_publish(&p->rs, &s->state, seq);
        off += s->raw_size;
        seq++;
    }
    reader_finish(p, rc, &e);
    return NULL;
}

/* ---- the workers ------------------------------------------------------------------ */

/* Record a failed write of chunk s (both output paths word it the same). */
static int write_error(ntdsb_error *e, const slot *s, const char *call, int sys_errno)
{
    char text[128];
    ntdsb_err_set(e, NTDSB_E_WRITE, call, s->seq, s->offset,
                  "chunk %llu (offset %llu): writing the output failed: %s",
                  (unsigned long long)s->seq, (unsigned long long)s->offset,
                  ntdsb_strerror(sys_errno, text, sizeof text));
    e->sys_errno = sys_errno;
    return NTDSB_E_WRITE;
}

/*
 * Write a verified chunk at its own offset.  Used when the output is a regular
 * file: each worker writes what it decoded, so the kernel's cost of taking new
 * pages into the file is spread over the workers instead of serialising on
 * the in-order writer (on a 2-core machine that cost rivals decompression).
 * A failure is reported in file order like any other; chunks after a bad one
 * may already be written, which is why outputs are staging files.
 */
static int write_at(rpipe *p, slot *s, ntdsb_error *e)
{
    int sys_errno = 0;

    if (ntdsb_file_pwrite_all(p->out_pos, s->raw, s->raw_size, s->offset, &sys_errno) != 0)
        return write_error(e, s, "pwrite", sys_errno);
    return NTDSB_OK;
}

/* Decompress and verify the chunk in s.  Result in s->rc / s->err. */
static int decode_chunk(worker *w, slot *s)
{
    const uint64_t seq = s->seq, off = s->offset;
    ntdsb_error *e = &s->err;
    unsigned long long fcs;
    ntdsb_hash128 got;
    char detail[160];
    size_t n;

    s->pages_checked = 0; /* the slot's last chunk may have set it */

    /* The header is only a claim about the frame: check the frame's own
     * content size, and that frame_size covers exactly one frame (one-shot
     * decompression would otherwise happily decode a second frame, or a
     * skippable one, hidden behind the first). */
    fcs = ZSTD_getFrameContentSize(s->frame, s->frame_size);
    if (fcs == ZSTD_CONTENTSIZE_ERROR)
        return corrupt(e, seq, off, "ZSTD_getFrameContentSize", "not a zstd frame", NULL);
    if (fcs == ZSTD_CONTENTSIZE_UNKNOWN)
        return corrupt(e, seq, off, "ZSTD_getFrameContentSize",
                       "the zstd frame does not record its content size", NULL);
    if (fcs != s->raw_size) {
        snprintf(detail, sizeof detail, "the zstd frame holds %llu bytes, the header says %u",
                 fcs, s->raw_size);
        return corrupt(e, seq, off, "ZSTD_getFrameContentSize", "", detail);
    }
    n = ZSTD_findFrameCompressedSize(s->frame, s->frame_size);
    if (ZSTD_isError(n)) {
        corrupt(e, seq, off, "ZSTD_findFrameCompressedSize", "zstd: ", ZSTD_getErrorName(n));
        e->lib_code = n;
        return NTDSB_E_CORRUPT;
    }
    if (n != s->frame_size) {
        snprintf(detail, sizeof detail, "the zstd frame is %zu bytes, the header says %u", n,
                 s->frame_size);
        return corrupt(e, seq, off, "ZSTD_findFrameCompressedSize", "", detail);
    }

    n = ZSTD_decompressDCtx(w->dctx, s->raw, s->raw_size, s->frame, s->frame_size);
    if (ZSTD_isError(n)) {
        /* Damaged input is CORRUPT (zstd's content checksum catches most of
         * it); only an allocation failure inside zstd is not the archive's fault. */
        int nomem = ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation;
        ntdsb_err_set(e, nomem ? NTDSB_E_NOMEM : NTDSB_E_CORRUPT, "ZSTD_decompressDCtx", seq,
                      off, "chunk %llu (offset %llu): zstd: %s", (unsigned long long)seq,
                      (unsigned long long)off, ZSTD_getErrorName(n));
        e->lib_code = n;
        return e->status;
    }
    if (n != s->raw_size) {
        snprintf(detail, sizeof detail, "decompressed %zu bytes, the header says %u", n,
                 s->raw_size);
        return corrupt(e, seq, off, "ZSTD_decompressDCtx", "", detail);
    }
    /* Hashed here, right after decompression, while the chunk is in cache. */
    ntdsb_hash_canonical(XXH3_128bits(s->raw, s->raw_size), &got);
    if (memcmp(got.bytes, s->hash.bytes, sizeof s->hash.bytes) != 0)
        return corrupt(e, seq, off, "XXH3_128bits", "XXH3-128 mismatch", NULL);
    /* Only verified data is page-checked, also while still in cache.  Before
     * the geometry is known the writer does it (the slot remembers which). */
    s->pages_checked = w->p->pages != NULL &&
                       ntdsb_pages_worker(w->p->pages, &w->tally, s->raw, s->raw_size, off);
    return NTDSB_OK;
}

/*
 * Positional output: write every decoded chunk waiting in p->pending, then
 * mark it DONE; called with rs.mu held by a worker that found nobody writing.
 *
 * One worker writes at a time and the others go on decompressing.  Writes to
 * one file are serialised by the kernel anyway (the inode lock), and a worker
 * that blocks on that lock spins while the owner is on a CPU: measured on a
 * 2-core VM, up to a fifth of the restore's CPU time went to that spinning
 * whenever writing was slow (new pages the host has to fault in), CPU the
 * other worker needed to decompress.  Here a worker that finds a write in
 * progress queues its chunk and takes the next one instead.
 */
static void write_pending_locked(worker *w)
{
    rpipe *p = w->p;
    slot *batch[NTDSB_RING_MAX];
    uint32_t i, n;

    p->writing = 1;
    while (p->npending > 0) {
        n = p->npending;
        memcpy(batch, p->pending, n * sizeof *batch);
        p->npending = 0;
        ntdsb_mutex_unlock(&p->rs.mu);
        for (i = 0; i < n; i++) {
            double t0 = ntdsb_now();
            batch[i]->rc = write_at(p, batch[i], &batch[i]->err);
            w->write_seconds += ntdsb_now() - t0;
        }
        ntdsb_mutex_lock(&p->rs.mu);
        for (i = 0; i < n; i++)
            ntdsb_ring_done_locked(&p->rs, &batch[i]->state, batch[i]->seq);
    }
    p->writing = 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    rpipe *p = w->p;
    uint64_t seq;

    ntdsb_mutex_lock(&p->rs.mu);
    while (ntdsb_ring_take_locked(&p->rs, &seq)) {
        slot *s = &p->slots[seq % p->nslots];
        double t0;

        s->state = NTDSB_SLOT_BUSY;
        ntdsb_mutex_unlock(&p->rs.mu);

        t0 = ntdsb_now();
        s->rc = decode_chunk(w, s);
        w->seconds += ntdsb_now() - t0;

        ntdsb_mutex_lock(&p->rs.mu);
        if (s->rc == NTDSB_OK && p->out_positional) {
            /* At most nslots chunks exist, so pending never overflows. */
            p->pending[p->npending++] = s;
            if (!p->writing)
                write_pending_locked(w);
        } else {
            /* Even a failed chunk becomes DONE: the writer reports it in order. */
            ntdsb_ring_done_locked(&p->rs, &s->state, s->seq);
        }
    }
    /* Leaving with chunks queued would strand them: a writer drains the queue
     * before it clears `writing`, and every queueing worker saw it set. */
    ntdsb_mutex_unlock(&p->rs.mu);
    return NULL;
}

/* ---- the writer (calling thread) ----------------------------------------------------- */

/* Hash the chunk into the whole-file state and write it out. */
static int write_chunk(rpipe *p, slot *s, ntdsb_error *e)
{
    XXH3_128bits_update(p->file_state, s->raw, s->raw_size);
    /* In order, and s->raw is still the chunk: the slot is released only
     * after this returns (positional writers pwrite() it but keep it). */
    if (p->pages != NULL)
        ntdsb_pages_in_order(p->pages, s->raw, s->raw_size, s->offset, s->pages_checked);
    if (ntdsb_file_valid(p->out.fd) && !p->out_positional) {
        int sys_errno = 0;
        double t0 = ntdsb_now();
        int rc = ntdsb_sink_put(&p->out, s->raw, s->raw_size, &sys_errno);
        p->write_seconds += ntdsb_now() - t0;
        if (rc != NTDSB_OK) {
            return write_error(e, s, "write", sys_errno);
        }
    }
    p->bytes_out += s->raw_size;
    p->chunks++;
    if (p->live != NULL)
        p->live->bytes_out = p->bytes_out; /* read by the cancel hook, on this thread */
    return NTDSB_OK;
}

/* Returns when every chunk is written (NTDSB_OK) or on the first failure in
 * file order (recorded with ntdsb_ring_fail). */
static void run_writer(void *arg)
{
    rpipe *p = arg;
    ntdsb_error e;
    uint64_t ws = 0;

    for (;;) {
        slot *s = &p->slots[ws % p->nslots];
        int ready, at_end;

        /* Between chunks.  Chunk ws starts at bytes_out: every earlier one is written. */
        if (ntdsb_cancel_check(&p->cancel, ws, p->bytes_out, &e)) {
            ntdsb_ring_fail(&p->rs, &e);
            return;
        }

        ntdsb_mutex_lock(&p->rs.mu);
        ready = ntdsb_ring_writer_wait_locked(&p->rs, &s->state, &s->seq, ws, &p->cancel,
                                              p->bytes_out);
        at_end = !ready && !atomic_load(&p->rs.stop) && p->rs.reader_done &&
                 ws == p->rs.produced;
        if (at_end && p->reader_rc != NTDSB_OK) /* the stream ended badly at chunk ws */
            ntdsb_ring_fail_locked(&p->rs, &p->reader_err);
        ntdsb_mutex_unlock(&p->rs.mu);
        if (!ready)
            return; /* stopped, or the end (good or bad) */

        if (s->rc != NTDSB_OK) {
            ntdsb_ring_fail(&p->rs, &s->err);
            return;
        }
        if (write_chunk(p, s, &e) != NTDSB_OK) {
            ntdsb_ring_fail(&p->rs, &e);
            return;
        }
        ws++;
        ntdsb_ring_release(&p->rs, &s->state, ws);
    }
}

/* ---- setup, threads, teardown ----------------------------------------------------- */

static void thread_error(ntdsb_error *e, const char *call, const char *what, int rc)
{
    char text[128];
    ntdsb_err_set(e, NTDSB_E_THREAD, call, 0, 0, "could not %s: %s", what,
                  ntdsb_strerror(rc, text, sizeof text));
}

/* Every thread is joined when it returns. */
static int run_threaded(rpipe *p, ntdsb_error *err)
{
    /* The reader blocks only in reads of in_fd, which may be a pipe. */
    const ntdsb_ring_roles roles = {worker_main, p->workers, sizeof *p->workers, p->nworkers,
                                    reader_main, run_writer, p, thread_error,
                                    p->in_may_block};
    return ntdsb_ring_run(&p->rs, &roles, err);
}

static int setup(rpipe *p, uint32_t threads, uint32_t depth, ntdsb_error *e)
{
    uint32_t i;

    p->nslots = depth;
    /* More workers than slots could never all be busy. */
    p->nworkers = threads < depth ? threads : depth;
    /* Only the slot array now: its buffers come with the first chunk header. */
    p->slots = ntdsb_alloc_zeroed(p->nslots, sizeof *p->slots);
    if (p->slots == NULL)
        return ntdsb_err_nomem(e, "malloc", "the ring");

    p->workers = ntdsb_alloc_zeroed(p->nworkers, sizeof *p->workers);
    if (p->workers == NULL)
        return ntdsb_err_nomem(e, "malloc", "the workers");
    for (i = 0; i < p->nworkers; i++) {
        p->workers[i].p = p;
        p->workers[i].dctx = ZSTD_createDCtx();
        if (p->workers[i].dctx == NULL)
            return ntdsb_err_nomem(e, "ZSTD_createDCtx", "a zstd context");
    }
    return NTDSB_OK;
}

static void teardown(rpipe *p)
{
    uint32_t i;
    if (p->slots != NULL) {
        for (i = 0; i < p->nslots; i++) {
            ntdsb_free_aligned(p->slots[i].frame);
            ntdsb_free_aligned(p->slots[i].raw);
        }
        ntdsb_free_aligned(p->slots);
    }
    if (p->workers != NULL) {
        for (i = 0; i < p->nworkers; i++)
            ZSTD_freeDCtx(p->workers[i].dctx);
        ntdsb_free_aligned(p->workers);
    }
    if (p->file_state != NULL)
        XXH3_freeState(p->file_state);
}

int ntdsb_restore_file(ntdsb_file in_fd, ntdsb_file out_fd, uint64_t file_size,
                       const ntdsb_restore_config *cfg,
                       ntdsb_cancel_fn cancel, void *cancel_ctx,
                       ntdsb_restore_stats *stats, ntdsb_hash128 *file_hash,
                       ntdsb_error *err)
{
    ntdsb_source in;
    in.fd = in_fd;
    in.read = NULL;
    in.ctx = NULL;
    return ntdsb_restore_from(&in, out_fd, file_size, cfg, cancel, cancel_ctx, stats,
                              file_hash, err);
}

int ntdsb_restore_from(const ntdsb_source *in, ntdsb_file out_fd, uint64_t file_size,
                       const ntdsb_restore_config *cfg,
                       ntdsb_cancel_fn cancel, void *cancel_ctx,
                       ntdsb_restore_stats *stats, ntdsb_hash128 *file_hash,
                       ntdsb_error *err)
{
    const double t_start = ntdsb_now();
    ntdsb_error local_err;
    uint32_t threads, depth, max_raw;
    rpipe *p;
    int rc;
    uint32_t i;

    err = ntdsb_outputs_reset(err, &local_err, stats, sizeof *stats, file_hash);

    if (cfg == NULL) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "config is NULL");
        return NTDSB_E_CONFIG;
    }
    if (in == NULL || (in->read != NULL && ntdsb_file_valid(in->fd))) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "the input is invalid: give exactly one of a file or a read callback");
        return NTDSB_E_CONFIG;
    }
    if (in->read == NULL && !ntdsb_file_valid(in->fd)) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0, "in_fd %lld is invalid",
                      (long long)in->fd);
        return NTDSB_E_CONFIG;
    }
    threads = cfg->threads != 0 ? cfg->threads : ntdsb_cpu_count();
    if (threads > NTDSB_THREADS_MAX) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "threads %u is invalid: it must be 0 (CPU count) or between 1 and %u",
                      cfg->threads, NTDSB_THREADS_MAX);
        return NTDSB_E_CONFIG;
    }
    depth = cfg->ring_depth;
    if (depth == 0)
        depth = threads + 2u > NTDSB_RING_MAX ? NTDSB_RING_MAX : threads + 2u;
    if (depth < NTDSB_RING_MIN || depth > NTDSB_RING_MAX) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "ring_depth %u is invalid: it must be 0 (threads + 2) or between %u and %u",
                      cfg->ring_depth, NTDSB_RING_MIN, NTDSB_RING_MAX);
        return NTDSB_E_CONFIG;
    }
    max_raw = cfg->max_raw_size != 0 ? cfg->max_raw_size : NTDSB_CHUNK_MAX;
    if (max_raw > NTDSB_CHUNK_MAX) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "max_raw_size %u is invalid: it must be 0 (%u) or at most %u",
                      cfg->max_raw_size, NTDSB_CHUNK_MAX, NTDSB_CHUNK_MAX);
        return NTDSB_E_CONFIG;
    }

    /* The pipeline holds cache-line-aligned members: allocate it aligned. */
    p = ntdsb_alloc_zeroed(1, sizeof *p);
    if (p == NULL)
        return ntdsb_err_nomem(err, "malloc", "the pipeline");
    p->in_fd = in->read != NULL ? NTDSB_NO_FILE : in->fd;
    p->in_read = in->read;
    p->in_ctx = in->ctx;
    p->file_size = file_size;
    p->max_raw = max_raw;
    p->out.fd = out_fd;
    p->out_pos = NTDSB_NO_FILE;
    p->live = stats;
    p->pages = cfg->pages;
    if (ntdsb_file_valid(out_fd) && ntdsb_file_is_regular(out_fd)) {
        p->out_positional = 1;
        p->out_pos = ntdsb_file_pos_open(out_fd);
    }
    p->cancel.fn = cancel;
    p->cancel.ctx = cancel_ctx;
    atomic_init(&p->rs.stop, 0);

    if (p->in_read != NULL) {
        /* A callback: nothing to advise.  It may sit on a pipe (an age reader
         * does): join the reader as one that may block in a read. */
        p->in_may_block = 1;
    } else if (ntdsb_file_is_regular(p->in_fd)) {
        /* We read it once, front to back: ask for aggressive read-ahead.  It
         * only changes the kernel's read-ahead window of this open file,
         * which the Python layer also reads sequentially. */
        ntdsb_file_advise_sequential(p->in_fd);
    } else {
        p->in_may_block = 1; /* pipe, socket, terminal (or unknown): never block blind */
    }

    p->file_state = XXH3_createState();
    if (p->file_state == NULL || XXH3_128bits_reset(p->file_state) != XXH_OK)
        rc = ntdsb_err_nomem(err, "XXH3_createState", "the file hash state");
    else if (file_size == 0)
        rc = NTDSB_OK; /* no chunks: read nothing, start nothing */
    else if ((rc = setup(p, threads, depth, err)) == NTDSB_OK)
        rc = run_threaded(p, err);

    if (p->pages != NULL) {
        /* Every thread is joined: the worker tallies are final. */
        ntdsb_pages_finish(p->pages);
        for (i = 0; p->workers != NULL && i < p->nworkers; i++)
            ntdsb_pages_merge(p->pages, &p->workers[i].tally);
    }
    if (rc == NTDSB_OK && file_hash != NULL)
        ntdsb_hash_canonical(XXH3_128bits_digest(p->file_state), file_hash);
    if (stats != NULL) {
        stats->bytes_in = p->bytes_in;
        stats->bytes_out = p->bytes_out;
        stats->chunks = p->chunks;
        stats->read_seconds = p->read_seconds;
        stats->write_seconds = p->write_seconds;
        for (i = 0; p->workers != NULL && i < p->nworkers; i++) {
            stats->decompress_seconds += p->workers[i].seconds;
            stats->write_seconds += p->workers[i].write_seconds;
        }
    }
    if (p->out_positional)
        ntdsb_file_pos_close(p->out_pos, out_fd);
    teardown(p);
    ntdsb_free_aligned(p);
    if (stats != NULL)
        stats->wall_seconds = ntdsb_now() - t_start;
    return rc;
}
