/*
 * engine_internal.h - declarations shared by the engine's C files only.
 *
 * Not part of the contract (include/ntdsb_engine.h is); nothing here is seen
 * by Cython.
 */
#ifndef NTDSB_ENGINE_INTERNAL_H
#define NTDSB_ENGINE_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <xxhash.h>

#include "ntdsb_engine.h"
#include "platform.h" /* locks, threads, clock, aligned memory, file I/O */

/* printf-style checking of the error messages.  mingw-w64: the engine is
 * built with __USE_MINGW_ANSI_STDIO=1, so vsnprintf is the C99 one (%zu,
 * %llu) and the format to check is GNU's, not the Microsoft runtime's. */
#if defined(__MINGW32__)
#  include <stdio.h> /* __MINGW_PRINTF_FORMAT: gnu_printf or ms_printf, as the build chose */
#  define NTDSB_PRINTF(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#elif defined(__GNUC__) || defined(__clang__)
#  define NTDSB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define NTDSB_PRINTF(f, a)
#endif

/* Reset *e to "no error". */
void ntdsb_err_clear(ntdsb_error *e);

/*
 * Fill *e completely (status, call, chunk, offset, message; hr, lib_code and
 * sys_errno are zeroed and the caller sets the one that applies afterwards).
 * The caller decides whether this record becomes the reported one: the
 * pipeline publishes only the first (see backup_pipeline.c).
 */
void ntdsb_err_set(ntdsb_error *e, int status, const char *call, uint64_t chunk_index,
                   uint64_t offset, const char *fmt, ...) NTDSB_PRINTF(6, 7);

/*
 * The start of a pipeline's entry point: returns the error record to use (err,
 * or local when err is NULL), cleared; *stats (stats_size bytes) and
 * *file_hash are zeroed when given, so that nothing stale is left on failure.
 */
ntdsb_error *ntdsb_outputs_reset(ntdsb_error *err, ntdsb_error *local, void *stats,
                                 size_t stats_size, ntdsb_hash128 *file_hash);

/*
 * Check *in and resolve its defaults (ring_depth 0 -> threads + 2, capped at
 * NTDSB_RING_MAX) into *out.  NTDSB_OK or NTDSB_E_CONFIG with *err naming the
 * field and the value.
 */
int ntdsb_config_resolve(const ntdsb_backup_config *in, ntdsb_backup_config *out,
                         ntdsb_error *err);

/* Check a sink: exactly one of fd >= 0 or write != NULL.  NTDSB_OK or NTDSB_E_CONFIG. */
int ntdsb_sink_check(const ntdsb_sink *sink, ntdsb_error *err);

/*
 * Give `len` bytes to the sink.  fd: write(2) until all is taken, retrying
 * EINTR and short writes.  Callback: one call.  Returns NTDSB_OK,
 * NTDSB_E_WRITE (*sys_errno set) or NTDSB_E_CALLBACK.
 */
int ntdsb_sink_put(const ntdsb_sink *sink, const void *buf, size_t len, int *sys_errno);

/* *out = h in canonical (big-endian) form: how chunk headers, the chunk table
 * and the caller's file hash hold an XXH3-128. */
void ntdsb_hash_canonical(XXH128_hash_t h, ntdsb_hash128 *out);

/* Append one entry, growing geometrically.  NTDSB_OK or NTDSB_E_NOMEM. */
int ntdsb_chunk_table_append(ntdsb_chunk_table *t, const ntdsb_chunk_entry *e);

/* Make room for `n` entries up front (a hint: failure is not an error). */
void ntdsb_chunk_table_reserve(ntdsb_chunk_table *t, uint64_t n);

/* ---- memory shared by the pipelines (engine_util.c) ------------------------- */

/* ntdsb_alloc_aligned (platform.h), zeroed: count elements of size bytes (the
 * product must fit).  Freed with ntdsb_free_aligned. */
void *ntdsb_alloc_zeroed(size_t count, size_t size);

/* Fill *e with "out of memory allocating <what>" (call: the failed call) and
 * return NTDSB_E_NOMEM. */
int ntdsb_err_nomem(ntdsb_error *e, const char *call, const char *what);

/* ---- the ring both pipelines run (ring_sync.c) ------------------------------
 *
 *   reader thread ──> ring of slots ──> N workers ──> writer (calling thread)
 *
 * Chunk k lives in slot k % nslots.  One mutex and three condition variables,
 * each with a single kind of waiter (cv_free: the reader, cv_work: the
 * workers, cv_done: the writer).  At 1 MiB per chunk that is a few thousand
 * lock round trips per second at most, so a lock-free ring would buy nothing
 * measurable.  The slots themselves (buffers, seq, state) belong to each
 * pipeline; these helpers only see a slot's `state` and `seq` fields.
 */

/* The cancel hook is called at least this often while the writer waits. */
#define NTDSB_CANCEL_INTERVAL 0.100

/* Internal result of a pipeline step: another thread already failed (or the
 * writer stopped us), leave quietly (its error is the one reported). */
#define NTDSB_STEP_STOPPED 1

/* What each thread owns (the slots, the workers, the reader's and the
 * writer's state, the shared ring state) starts on its own cache line, so
 * that threads working side by side do not bounce each other's lines. */
#define NTDSB_CACHE_LINE 64

/* A slot's life.  The backup reader marks its slot READING while it fills it;
 * the restore reader reads into a FREE slot and publishes it FILLED. */
enum ntdsb_slot_state {
    NTDSB_SLOT_FREE,
    NTDSB_SLOT_READING,
    NTDSB_SLOT_FILLED,
    NTDSB_SLOT_BUSY,
    NTDSB_SLOT_DONE
};

typedef struct ntdsb_ring_sync {
    ntdsb_mutex mu;
    ntdsb_cond cv_free;     /* a slot became FREE: reader */
    ntdsb_cond cv_work;     /* a slot became FILLED, or the reader finished: workers */
    ntdsb_cond cv_done;     /* a slot became DONE, or the reader finished: writer */
    uint64_t produced;      /* chunks published by the reader */
    uint64_t next_work;     /* next chunk a worker takes */
    uint64_t write_seq;     /* chunk the writer waits for */
    int reader_done;        /* the reader published its last chunk (or gave up) */
    int failed;
    ntdsb_error err;        /* the first (reported) failure */
    atomic_int stop;        /* also read without the lock, between reads */
} ntdsb_ring_sync;

/* All of it is zeroed by the owner (atomic_init for `stop`) before use: a
 * serial run reads `stop` without the locks ever being initialised. */

/* Broadcast all three condition variables.  Caller holds mu. */
void ntdsb_ring_wake_all_locked(ntdsb_ring_sync *rs);

/* Record *e if it is the first failure, set `stop` and wake everyone: each
 * thread leaves at its next check.  _locked: the caller holds mu. */
void ntdsb_ring_fail_locked(ntdsb_ring_sync *rs, const ntdsb_error *e);
void ntdsb_ring_fail(ntdsb_ring_sync *rs, const ntdsb_error *e);

/* Reader: wait until *state is FREE or `stop` is set.  Caller holds mu. */
void ntdsb_ring_wait_free_locked(ntdsb_ring_sync *rs, const int *state);

/* Reader: chunk seq is in its slot (*state): mark it FILLED, publish it and
 * wake a worker.  Takes mu. */
void ntdsb_ring_publish(ntdsb_ring_sync *rs, int *state, uint64_t seq);

/* Reader: nothing more will be published; idle workers can leave and the
 * writer may be waiting for the end.  Caller holds mu. */
void ntdsb_ring_reader_done_locked(ntdsb_ring_sync *rs);

/* Worker: wait for a published chunk and claim it (*seq).  Returns 0 when the
 * worker should leave instead: `stop` is set, or the reader is done and
 * nothing is left.  Caller holds mu. */
int ntdsb_ring_take_locked(ntdsb_ring_sync *rs, uint64_t *seq);

/* Worker: the chunk seq in the slot (*state) is DONE.  Caller holds mu. */
void ntdsb_ring_done_locked(ntdsb_ring_sync *rs, int *state, uint64_t seq);

/* The cancel hook as the writer polls it: `last` is when it was last called. */
typedef struct ntdsb_cancel_poll {
    ntdsb_cancel_fn fn;
    void *ctx;
    double last;
} ntdsb_cancel_poll;

/* Call the hook (if any) and note the time.  1 when it asks to stop, with *e
 * set to NTDSB_E_CANCELLED at chunk seq (raw offset off); else 0. */
int ntdsb_cancel_check(ntdsb_cancel_poll *c, uint64_t seq, uint64_t off, ntdsb_error *e);

/*
 * Writer: wait for chunk ws, whose slot's fields are *state and *seq, calling
 * the cancel hook at least every NTDSB_CANCEL_INTERVAL (off: the chunk's raw
 * offset, for the message); a cancel is recorded with ntdsb_ring_fail_locked.
 * Returns with mu held (as on entry) once chunk ws is DONE (1), or `stop` is
 * set or the reader is done and ws == produced (0).
 */
int ntdsb_ring_writer_wait_locked(ntdsb_ring_sync *rs, const int *state, const uint64_t *seq,
                                  uint64_t ws, ntdsb_cancel_poll *c, uint64_t off);

/* Writer: chunk ws - 1 is out, its slot (*state) is FREE again and the writer
 * now waits for chunk ws; wake the reader.  Takes mu. */
void ntdsb_ring_release(ntdsb_ring_sync *rs, int *state, uint64_t ws);

/* What ntdsb_ring_run runs, and how the pipeline words a thread failure. */
typedef struct ntdsb_ring_roles {
    void *(*worker_main)(void *); /* run on each of workers[0 .. nworkers - 1] */
    void *workers;                /* nworkers elements of worker_size bytes */
    size_t worker_size;
    uint32_t nworkers;
    void *(*reader_main)(void *); /* run on arg */
    void (*writer)(void *);       /* run on arg, by the calling thread */
    void *arg;
    /* Fill *e (NTDSB_E_THREAD) for the call `call` that failed with the
     * system error rc, trying to `what` ("initialise the pipeline's locks",
     * "start an engine thread"); sys_errno is set to rc afterwards. */
    void (*thread_error)(ntdsb_error *e, const char *call, const char *what, int rc);
    /* The reader's only blocking calls are reads of the caller's input, which
     * may be a pipe: join it with ntdsb_thread_join_cancelling_io.  0 for a
     * reader that calls the provider (DsBackupRead is never cancelled). */
    int reader_io_cancellable;
} ntdsb_ring_roles;

/*
 * Run the ring: initialise rs's locks (its counters, `failed`, `err` and
 * `stop` must be zero), start the workers and then the reader
 * (ntdsb_thread_start: asynchronous signals blocked), run the writer on the
 * calling thread, then
 * set `stop`, wake everyone, join every thread that started and destroy the
 * locks.  Returns NTDSB_OK, or the recorded failure's status with *err set to
 * it (NTDSB_E_THREAD when the locks or a thread could not be made; the writer
 * did not run then).
 */
int ntdsb_ring_run(ntdsb_ring_sync *rs, const ntdsb_ring_roles *roles, ntdsb_error *err);

#endif /* NTDSB_ENGINE_INTERNAL_H */
