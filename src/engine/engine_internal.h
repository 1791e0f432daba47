/*
 * engine_internal.h - declarations shared by the engine's C files only.
 *
 * Not part of the contract (include/ntdsb_engine.h is); nothing here is seen
 * by Cython.
 */
#ifndef NTDSB_ENGINE_INTERNAL_H
#define NTDSB_ENGINE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

#endif /* NTDSB_ENGINE_INTERNAL_H */
