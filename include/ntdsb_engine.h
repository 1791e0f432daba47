/*
 * ntdsb_engine.h - the engine's contract: status codes, configuration,
 * statistics, the error record, and the one-call-per-file backup pipeline.
 *
 * No Python here.  The Cython layer (src/_ntdsbcli.pyx) owns Python objects and
 * exceptions; it calls ntdsb_backup_file() with the GIL released and turns the
 * error record into one exception once the GIL is back.
 *
 * Ownership: every buffer the engine allocates is freed before the call
 * returns, except ntdsb_chunk_table.entries, which the caller frees with
 * ntdsb_chunk_table_free().
 */
#ifndef NTDSB_ENGINE_H
#define NTDSB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "ntdsb_pages.h"
#include "ntdsb_provider.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes.  0 is success; every failure is negative. */
#define NTDSB_OK               0
#define NTDSB_E_NOMEM         (-1)  /* allocation failed */
#define NTDSB_E_PROVIDER      (-2)  /* a provider call failed; err.hr holds its HRESULT */
#define NTDSB_E_ZSTD          (-3)  /* libzstd failed; err.lib_code holds the zstd code */
#define NTDSB_E_WRITE         (-4)  /* the sink failed or wrote short; err.sys_errno */
#define NTDSB_E_SHORT_FILE    (-5)  /* end of file before the size DsBackupOpenFile gave */
#define NTDSB_E_LONG_FILE     (-6)  /* more bytes than the size DsBackupOpenFile gave */
#define NTDSB_E_CANCELLED     (-7)  /* the cancel hook asked to stop (Ctrl-C) */
#define NTDSB_E_THREAD        (-8)  /* a thread could not be started; err.sys_errno */
#define NTDSB_E_CONFIG        (-9)  /* invalid configuration (message says which field) */
#define NTDSB_E_CALLBACK      (-10) /* the sink callback failed (its caller holds the reason) */
#define NTDSB_E_CORRUPT       (-11) /* a hash or frame does not match (restore/verify) */
#define NTDSB_E_READ          (-12) /* reading an input descriptor failed; err.sys_errno */

/*
 * An open file as the engine takes it from its caller: a file descriptor on
 * POSIX, an OS HANDLE on Windows (its value as an integer: what
 * msvcrt.get_osfhandle() returns).  Not a descriptor on Windows, because a
 * descriptor indexes the table of one C runtime, and the engine's (msvcrt
 * under mingw-w64, say) need not be the caller's (CPython's ucrt).
 * NTDSB_NO_FILE (-1, also INVALID_HANDLE_VALUE) means "none".
 */
#ifdef _WIN32
typedef intptr_t ntdsb_file;
#else
typedef int ntdsb_file;
#endif
#define NTDSB_NO_FILE ((ntdsb_file)-1)

/* Name of a status code ("NTDSB_E_ZSTD"), never NULL. */
const char *ntdsb_status_name(int status);

/*
 * The error record.  Filled by the first failure inside the pipeline (later
 * ones are ignored) and read by the caller after the call returns.
 */
typedef struct ntdsb_error {
    int status;           /* NTDSB_E_*, or NTDSB_OK */
    HRESULT hr;           /* for NTDSB_E_PROVIDER */
    const char *call;     /* provider or library function that failed, or NULL */
    size_t lib_code;      /* for NTDSB_E_ZSTD: the failing call's return value, as
                             ZSTD_isError()/ZSTD_getErrorName() take it */
    int sys_errno;        /* for NTDSB_E_WRITE / NTDSB_E_THREAD / NTDSB_E_READ: errno on
                             POSIX, the GetLastError() code on Windows */
    uint64_t chunk_index; /* chunk being processed when it failed */
    uint64_t offset;      /* byte offset in the file of that chunk */
    char message[256];    /* human-readable detail, NUL-terminated */
} ntdsb_error;

/* Limits of the configuration. */
#define NTDSB_CHUNK_MIN      NTDSB_READ_MIN          /* 24 KiB */
#define NTDSB_CHUNK_MAX      (64u * 1024u * 1024u)   /* 64 MiB */
#define NTDSB_RING_MIN       2u                      /* double buffering */
#define NTDSB_RING_MAX       256u
#define NTDSB_THREADS_MAX    256u

typedef struct ntdsb_backup_config {
    uint32_t chunk_size;   /* bytes per chunk and per DsBackupRead buffer: a multiple
                              of 8192, NTDSB_CHUNK_MIN..NTDSB_CHUNK_MAX */
    uint32_t ring_depth;   /* buffers in the ring, >= 2; 0 = threads + 2 */
    uint32_t threads;      /* hash/compress workers, >= 1 */
    int level;             /* zstd compression level */
    int serial;            /* 1: one buffer, no threads: read, hash, compress, write
                              in turn (the no-overlap baseline) */
    ntdsb_pages *pages;    /* NULL: no page checking.  Else the caller has
                              ntdsb_pages_init()ed it for this file; the workers and
                              the writer check every ESE unit of the file as it passes
                              (ntdsb_pages.h), and the results are valid when
                              ntdsb_backup_file returns, on success or failure (after
                              a failure they cover the chunks that got that far).  The
                              archive bytes do not change.  Not shared between
                              concurrent calls. */
} ntdsb_backup_config;

/* Fill *cfg with the defaults (1 MiB chunks, level 1, threads = CPU count,
 * pages = NULL). */
void ntdsb_backup_config_init(ntdsb_backup_config *cfg);

/* Number of online CPUs (at least 1). */
uint32_t ntdsb_cpu_count(void);

/* Per-file statistics; times in seconds (monotonic clock). */
typedef struct ntdsb_backup_stats {
    uint64_t bytes_read;        /* raw bytes from DsBackupRead */
    uint64_t bytes_written;     /* bytes given to the sink (frames + chunk headers) */
    uint64_t chunks;
    uint64_t read_calls;        /* DsBackupRead calls (short reads make more) */
    double wall_seconds;        /* the whole call */
    double read_seconds;        /* inside DsBackupRead */
    double compress_seconds;    /* hashing + compressing, summed over workers */
    double write_seconds;       /* inside the sink */
    double reader_wait_seconds; /* reader waiting for a free buffer (compression is slower) */
    double writer_wait_seconds; /* writer waiting for the next chunk (reading is slower) */
} ntdsb_backup_stats;

/* 128-bit XXH3 digest, canonical (big-endian) byte order as XXH128_canonicalFromHash. */
typedef struct ntdsb_hash128 {
    uint8_t bytes[16];
} ntdsb_hash128;

/* One entry per chunk, in file order: what the archive's seek index needs. */
typedef struct ntdsb_chunk_entry {
    uint64_t raw_offset;        /* offset of the chunk in the file */
    uint32_t raw_size;          /* bytes of file data in the chunk */
    uint32_t frame_size;        /* bytes of its zstd frame */
    uint64_t stream_offset;     /* offset of its chunk header relative to the first byte
                                   this call gave the sink */
    ntdsb_hash128 hash;         /* XXH3-128 of the raw chunk */
} ntdsb_chunk_entry;

typedef struct ntdsb_chunk_table {
    ntdsb_chunk_entry *entries;
    uint64_t count;
    uint64_t capacity;
} ntdsb_chunk_table;

void ntdsb_chunk_table_free(ntdsb_chunk_table *t);

/*
 * The sink.  Exactly one of an open fd (not NTDSB_NO_FILE) or write != NULL.
 *   - fd: frames are written with write(2) (retrying EINTR and short writes;
 *     WriteFile on Windows); no callback, no GIL.
 *   - write(ctx, buf, len): returns 0 when all `len` bytes were taken, -1 on
 *     failure (the callback's owner keeps the reason; the engine reports
 *     NTDSB_E_CALLBACK).  Called from the thread that called
 *     ntdsb_backup_file(), in order, never concurrently.
 */
typedef int (*ntdsb_write_fn)(void *ctx, const void *buf, size_t len);

typedef struct ntdsb_sink {
    ntdsb_file fd;     /* NTDSB_NO_FILE when write is used */
    ntdsb_write_fn write;
    void *ctx;
} ntdsb_sink;

/*
 * Cancel hook: called from the calling thread between chunks and at least every
 * 100 ms while it waits.  Returns nonzero to stop (NTDSB_E_CANCELLED).  May be
 * NULL.  The Cython layer uses it to take the GIL and run PyErr_CheckSignals.
 */
typedef int (*ntdsb_cancel_fn)(void *ctx);

/*
 * Chunk header: what the engine writes before each chunk's zstd frame.  It is
 * a zstd skippable frame (stock zstd ignores it):
 *   u32 LE magic  NTDSB_CHUNK_MAGIC (0x184D2A5E, a skippable-frame magic)
 *   u32 LE size   NTDSB_CHUNK_HEADER_PAYLOAD (40)
 *   payload:
 *     u32 LE  format           NTDSB_CHUNK_FORMAT (1)
 *     u32 LE  raw_size         bytes of file data in the chunk
 *     u32 LE  frame_size       bytes of the zstd frame that follows
 *     u32 LE  reserved         0
 *     u64 LE  chunk_index      0-based, within the file
 *     u8[16]  xxh3_128         canonical (big-endian) XXH3-128 of the raw chunk
 * Total NTDSB_CHUNK_HEADER_SIZE (48) bytes.  See docs/FORMAT.md.
 */
#define NTDSB_CHUNK_MAGIC          0x184D2A5Eu
#define NTDSB_CHUNK_FORMAT         1u
#define NTDSB_CHUNK_HEADER_PAYLOAD 40u
#define NTDSB_CHUNK_HEADER_SIZE    48u

/* The variable fields of a chunk header (magic, size, format and reserved are fixed). */
typedef struct ntdsb_chunk_header {
    uint32_t raw_size;
    uint32_t frame_size;
    uint64_t chunk_index;
    ntdsb_hash128 hash;   /* canonical XXH3-128 of the raw chunk */
} ntdsb_chunk_header;

/* Write the NTDSB_CHUNK_HEADER_SIZE bytes of the header for *h into out. */
void ntdsb_chunk_header_encode(const ntdsb_chunk_header *h,
                               uint8_t out[NTDSB_CHUNK_HEADER_SIZE]);

/*
 * Parse a chunk header from the first NTDSB_CHUNK_HEADER_SIZE bytes of buf.
 * Returns NTDSB_OK with *h filled, or NTDSB_E_CORRUPT (len too small, wrong
 * magic, payload size, format, nonzero reserved field, raw_size of 0 or above
 * NTDSB_CHUNK_MAX, frame_size of 0) with *why (if not NULL) pointing to a
 * static description.  Checking frame_size against the bytes that follow is
 * the caller's job.
 */
int ntdsb_chunk_header_decode(const uint8_t *buf, size_t len, ntdsb_chunk_header *h,
                              const char **why);

/*
 * Back up the file currently open on `hbc` (DsBackupOpenFileW already called
 * with cbReadHintSize == cfg->chunk_size, returning `file_size`).
 *
 * The calling thread is the in-order writer; a reader thread calls
 * DsBackupRead into a ring of cfg->ring_depth buffers, filling each buffer to
 * chunk_size (short reads are accumulated, so chunk boundaries never depend on
 * timing) except the last; cfg->threads workers compute XXH3-128 and compress
 * each chunk as an independent zstd frame (content checksum on).  For every
 * chunk the sink receives the 48-byte chunk header and then the frame.
 *
 * Output is deterministic: the same bytes for the same input, chunk_size and
 * level, whatever threads, ring_depth, serial or timing.  Each chunk goes to
 * the sink in ONE write (fd) or ONE callback call: the 48-byte header and its
 * frame contiguous.  An empty file gives no chunks and no sink call.
 *
 * After file_size bytes one more DsBackupRead checks the end (unless the
 * provider already returned ERROR_HANDLE_EOF): ERROR_HANDLE_EOF or 0 bytes is
 * the end, data is NTDSB_E_LONG_FILE.  ERROR_HANDLE_EOF before file_size is
 * NTDSB_E_SHORT_FILE.
 *
 * Memory: at most min(ring_depth, chunks) slots of chunk_size +
 * ZSTD_compressBound(chunk_size) + 48 bytes, one chunk_size staging buffer for
 * the reader (touched only by short reads and the end-of-file check) and one
 * zstd context per worker, whatever the file size.
 *
 * stats, file_hash and table may be NULL.  *table is overwritten (not
 * appended to); on failure it keeps the entries of the chunks the sink did
 * receive, so the caller calls ntdsb_chunk_table_free() on every path (safe
 * on an empty table).  *file_hash is set on success only (zeroed otherwise).
 * err may be NULL.  A failure of the end-of-file check has chunk_index = the
 * number of chunks and offset = file_size.
 *
 * Threads: DsBackupRead is called from an engine thread, not the caller's
 * (serial mode and files of at most one chunk excepted); the sink and the
 * cancel hook only from the calling thread.  Engine threads block
 * asynchronous signals, so SIGINT reaches the calling thread.  A DsBackupRead
 * in progress cannot be interrupted: cancelling or a failure waits for it to
 * return.
 *
 * On return: *stats filled, file_hash = XXH3-128 of the whole file (computed
 * in order), table = one entry per chunk (caller frees).  Returns NTDSB_OK or
 * a status with *err filled.  Every engine thread has stopped before it
 * returns, on every path.  DsBackupClose is NOT called: the caller owns the
 * sequencing.
 */
int ntdsb_backup_file(const ntdsb_provider *prov, HBC hbc, uint64_t file_size,
                      const ntdsb_backup_config *cfg, const ntdsb_sink *sink,
                      ntdsb_cancel_fn cancel, void *cancel_ctx,
                      ntdsb_backup_stats *stats, ntdsb_hash128 *file_hash,
                      ntdsb_chunk_table *table, ntdsb_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_ENGINE_H */
