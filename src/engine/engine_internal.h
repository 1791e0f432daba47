/*
 * engine_internal.h - declarations shared by the engine's C files only.
 *
 * Not part of the contract (include/ntdsb_engine.h is); nothing here is seen
 * by Cython.
 */
#ifndef NTDSB_ENGINE_INTERNAL_H
#define NTDSB_ENGINE_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ntdsb_engine.h"

#if defined(__GNUC__) || defined(__clang__)
#  define NTDSB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define NTDSB_PRINTF(f, a)
#endif

/* Seconds on a monotonic clock (only differences mean anything). */
double ntdsb_now(void);

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

/* Append one entry, growing geometrically.  NTDSB_OK or NTDSB_E_NOMEM. */
int ntdsb_chunk_table_append(ntdsb_chunk_table *t, const ntdsb_chunk_entry *e);

/* Make room for `n` entries up front (a hint: failure is not an error). */
void ntdsb_chunk_table_reserve(ntdsb_chunk_table *t, uint64_t n);

/* ---- thread plumbing shared by the pipelines (engine_util.c) ---------------- */

/* n bytes aligned to a page, freed with free(); NULL when out of memory. */
void *ntdsb_alloc_aligned(size_t n);

/* pthread_cond_init on CLOCK_MONOTONIC (pair with ntdsb_deadline_after).
 * Returns 0 or the pthread error. */
int ntdsb_cond_init_monotonic(pthread_cond_t *cv);

/* *ts = CLOCK_MONOTONIC now + seconds: an absolute deadline for
 * pthread_cond_timedwait on a condition made by ntdsb_cond_init_monotonic. */
void ntdsb_deadline_after(struct timespec *ts, double seconds);

/* Block the asynchronous signals in the calling thread (saving its mask) around
 * pthread_create, so engine threads never take SIGINT; restore right after. */
typedef struct ntdsb_sigmask {
#ifndef _WIN32
    sigset_t old;
#else
    int unused;
#endif
} ntdsb_sigmask;
void ntdsb_block_async_signals(ntdsb_sigmask *saved);
void ntdsb_restore_signal_mask(const ntdsb_sigmask *saved);

#endif /* NTDSB_ENGINE_INTERNAL_H */
