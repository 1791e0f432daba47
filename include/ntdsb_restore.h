/*
 * ntdsb_restore.h - the restore/verify pipeline: one file's chunk frames from
 * an archive stream, decompressed in parallel, each chunk verified, written in
 * order.  No Python here.  Shares status codes, the error record, hashes and
 * the chunk-header layout with ntdsb_engine.h.
 */
#ifndef NTDSB_RESTORE_H
#define NTDSB_RESTORE_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ntdsb_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ntdsb_restore_config {
    uint32_t threads;      /* decompress/verify workers, >= 1 (0 = CPU count) */
    uint32_t ring_depth;   /* frames in flight, >= 2 (0 = threads + 2) */
    uint32_t max_raw_size; /* largest raw_size a chunk header may claim (hostile-input
                              bound; 0 = NTDSB_CHUNK_MAX) */
    ntdsb_pages *pages;    /* NULL: no page checking.  Else the caller has
                              ntdsb_pages_init()ed it for this file: the workers check
                              each verified chunk's ESE units, the calling thread the
                              rest in order (ntdsb_pages.h); the results are valid when
                              the call returns, on success or failure (after a failure
                              they cover the chunks that got that far).  Set it (NULL)
                              explicitly: a config filled field by field must not
                              leave it uninitialised. */
} ntdsb_restore_config;

typedef struct ntdsb_restore_stats {
    uint64_t bytes_in;           /* archive bytes consumed (chunk headers + frames) */
    uint64_t bytes_out;          /* raw bytes produced (and written when out_fd is open) */
    uint64_t chunks;
    double wall_seconds;
    double read_seconds;         /* reading the input */
    double decompress_seconds;   /* decompressing + hashing, summed over workers */
    double write_seconds;        /* writing the output */
} ntdsb_restore_stats;

/*
 * Consume, from `in_fd` at its current position, exactly the run of chunk
 * frames (48-byte chunk header + zstd frame, NTDSB_CHUNK_MAGIC) that hold one
 * file of `file_size` raw bytes, and nothing after them: on success the
 * descriptor is positioned at the first byte after the last frame.  Reads use
 * read(2) (ReadFile on Windows), so pipes work; nothing seeks.
 *
 * A reader thread reads frames into a ring; `threads` workers decompress each
 * (ZSTD_decompressDCtx, content checksum verified by zstd) and check its
 * XXH3-128 against the header; the calling thread, in order, updates the
 * whole-file XXH3-128 into *file_hash.  The data goes to `out_fd` unless it is
 * NTDSB_NO_FILE: on a regular file the workers pwrite() verified chunks at
 * their offsets, one worker at a time (one finding a write in progress queues
 * its chunk and decompresses the next), through a second handle on Windows so
 * that the caller's file pointer stays where it was; on anything else (a
 * pipe) the calling thread write()s in order.  EINTR and short writes are
 * retried.  stats->bytes_out is kept current during the call, so the cancel
 * hook can report progress from it.
 *
 * Validation (hostile input): magic, payload size 40, format 1, reserved 0,
 * raw_size in 1..max_raw_size, frame_size <= ZSTD_compressBound(raw_size),
 * chunk_index == 0, 1, 2 ... in order, every chunk but the last of the file
 * has the same raw_size as the first (and the last is not larger), the raw
 * sizes add up to exactly file_size (a zero-byte file has no chunks and reads
 * nothing), the zstd frame records its content size, equal to raw_size, and
 * is exactly frame_size bytes, the decompressed size equals raw_size.
 * Violations are NTDSB_E_CORRUPT with chunk_index and offset (= raw offset of
 * the chunk in the file) set; an early end of input is NTDSB_E_CORRUPT with
 * "truncated" in the message; read errors NTDSB_E_READ; write errors
 * NTDSB_E_WRITE (err.sys_errno set for both).  Messages start with
 * "chunk K (offset O): ", e.g. "chunk 3 (offset 3145728): XXH3-128 mismatch",
 * "...: truncated (end of input after 20 of the 48 header bytes)",
 * "...: bad chunk header: magic", "...: zstd: <ZSTD_getErrorName>" (err.lib_code
 * set).  Errors are reported in file order: the first bad chunk of the file,
 * whatever the thread count or timing.  After a failure the output holds
 * every chunk before the bad one and, on a regular file, possibly some after
 * it: write to a staging file and delete it on failure.
 *
 * The cancel hook is called from the calling thread between chunks and at
 * least every 100 ms while waiting (NTDSB_E_CANCELLED).  A reader blocked on a
 * pipe or socket notices a stop within 100 ms (it polls; on Windows its read
 * is cancelled when the call stops), so a stalled input cannot keep the call
 * from returning.  Memory is bounded by the ring: at most
 * min(ring_depth, chunks) slots of raw_size + ZSTD_compressBound(raw_size)
 * bytes of the FIRST chunk (so <= max_raw_size + bound), allocated when first
 * used, plus one zstd context per worker.  Every thread has stopped before
 * the call returns.  On a regular file in_fd gets posix_fadvise SEQUENTIAL
 * (POSIX).  in_fd and out_fd are descriptors on POSIX and OS HANDLEs on
 * Windows (ntdsb_file).
 *
 * cfg NULL is NTDSB_E_CONFIG; stats, file_hash and err may be NULL.
 * *file_hash is set only on success.  Engine threads block asynchronous
 * signals, so SIGINT reaches the calling thread.
 */
int ntdsb_restore_file(ntdsb_file in_fd, ntdsb_file out_fd, uint64_t file_size,
                       const ntdsb_restore_config *cfg,
                       ntdsb_cancel_fn cancel, void *cancel_ctx,
                       ntdsb_restore_stats *stats, ntdsb_hash128 *file_hash,
                       ntdsb_error *err);

/*
 * The input of ntdsb_restore_from: exactly one of an open file (fd, read as
 * ntdsb_restore_file reads in_fd) or a read callback (fd = NTDSB_NO_FILE).
 *
 * read(ctx, buf, len, got, err): up to `len` (> 0) bytes into buf, *got set;
 * *got = 0 means the end of the input.  Returns NTDSB_OK, or a failure status
 * with *err filled, which the restore reports as it is (status, message,
 * chunk_index and offset are the callback's).  Called from one engine thread
 * (the reader), in order, never concurrently; the restore never asks for a
 * byte beyond the file's last frame, as with a descriptor.  `stop` is the
 * restore's own flag: a callback that may block (on a pipe) watches it, so
 * that a cancel or another thread's failure ends the call within
 * NTDSB_IO_POLL_MS (it then returns NTDSB_E_CANCELLED).
 * ntdsb_age_in_source_read (ntdsb_age.h) is one.
 */
typedef int (*ntdsb_read_fn)(void *ctx, void *buf, size_t len, size_t *got,
                             atomic_int *stop, ntdsb_error *err);

typedef struct ntdsb_source {
    ntdsb_file fd;      /* NTDSB_NO_FILE when read is used */
    ntdsb_read_fn read;
    void *ctx;
} ntdsb_source;

/* ntdsb_restore_file over either kind of input; everything above applies
 * (a callback input is never a "regular file": no fadvise, no polling). */
int ntdsb_restore_from(const ntdsb_source *in, ntdsb_file out_fd, uint64_t file_size,
                       const ntdsb_restore_config *cfg,
                       ntdsb_cancel_fn cancel, void *cancel_ctx,
                       ntdsb_restore_stats *stats, ntdsb_hash128 *file_hash,
                       ntdsb_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_RESTORE_H */
