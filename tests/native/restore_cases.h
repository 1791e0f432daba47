/*
 * restore_cases.h - the restore streams and hostile inputs that the POSIX
 * restore test (test_restore.c) and the Windows driver (test_windows.c)
 * share: a stream of the backup engine's chunk frames followed by a marker
 * that stands for the archive's next metadata frame, frames the engine never
 * makes (built here with libzstd), and the list of damaged streams every
 * restore must refuse with NTDSB_E_CORRUPT at the right chunk.
 *
 * How a case is run (descriptors, HANDLEs, what is checked after it) is each
 * program's: hostile_cases() calls its expect function once per case.
 * Portable C only; included by exactly one translation unit per program.
 */
#ifndef NTDSB_RESTORE_CASES_H
#define NTDSB_RESTORE_CASES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "native_check.h" /* xxh128_canon */
#include "ntdsb_engine.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char MARKER[] = "NTDSB-NEXT-METADATA-FRAME:the bytes after the file's chunk frames";
#define MARKER_LEN (sizeof MARKER - 1)

typedef struct stream {
    uint8_t *buf;           /* chunk frames, then MARKER */
    size_t len;             /* bytes of chunk frames (the marker follows) */
    size_t nchunks;
    size_t hdr_off[4096];   /* offset of each chunk header in buf */
} stream;

static void stream_index(stream *s)
{
    size_t off = 0;
    s->nchunks = 0;
    while (off < s->len && s->nchunks < sizeof s->hdr_off / sizeof s->hdr_off[0]) {
        s->hdr_off[s->nchunks++] = off;
        off += NTDSB_CHUNK_HEADER_SIZE + get_u32(s->buf + off + 16);
    }
}

/* Frames the engine never makes, built with libzstd directly. */
enum odd_frame {
    ODD_NONE,        /* same bytes as the engine */
    ODD_NO_SIZE,     /* chunk k's frame without a content size */
    ODD_SHORT,       /* chunk k's frame holds raw_size - 1 bytes */
    ODD_TRAILING,    /* chunk k's frame_size covers a skippable frame after it */
};

static void build_stream(stream *s, const uint8_t *data, uint64_t size, uint32_t chunk,
                         size_t k, int odd)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t cap = (size_t)(size / chunk + 1) * (ZSTD_compressBound(chunk) + 64) + MARKER_LEN;
    uint64_t off = 0;
    size_t idx = 0;

    s->buf = malloc(cap);
    s->len = 0;
    while (off < size) {
        uint32_t raw = (uint32_t)(size - off < chunk ? size - off : chunk);
        uint8_t *hdr = s->buf + s->len;
        uint8_t *fr = hdr + NTDSB_CHUNK_HEADER_SIZE;
        ntdsb_chunk_header h;
        size_t n;
        ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, !(idx == k && odd == ODD_NO_SIZE));
        if (idx == k && odd == ODD_NO_SIZE) {
            /* Content size is written whenever it is known up front: stream
             * it without announcing it. */
            ZSTD_inBuffer in = {data + off, raw, 0};
            ZSTD_outBuffer out = {fr, ZSTD_compressBound(raw) + 32, 0};
            while (ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end) != 0) {
            }
            n = out.pos;
        } else {
            n = ZSTD_compress2(cc, fr, ZSTD_compressBound(raw),
                               data + off, raw - (idx == k && odd == ODD_SHORT));
        }
        if (ZSTD_isError(n)) {
            fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(n));
            exit(2);
        }
        if (idx == k && odd == ODD_TRAILING) {
            put_u32(fr + n, 0x184D2A50u); /* an empty skippable frame */
            put_u32(fr + n + 4, 0);
            n += 8;
        }
        h.raw_size = raw;
        h.frame_size = (uint32_t)n;
        h.chunk_index = idx;
        h.hash = xxh128_canon(data + off, raw);
        ntdsb_chunk_header_encode(&h, hdr);
        s->len += NTDSB_CHUNK_HEADER_SIZE + n;
        off += raw;
        idx++;
    }
    memcpy(s->buf + s->len, MARKER, MARKER_LEN);
    ZSTD_freeCCtx(cc);
    stream_index(s);
}

/*
 * Run one damaged stream: restoring `total` bytes of `bytes` as a file of
 * `file_size` raw bytes (chunk size `chunk`, max_raw_size `max_raw`, 0 = the
 * default) must fail with NTDSB_E_CORRUPT at chunk k, offset k * chunk, with
 * `needle` (if not NULL) in the message.
 */
typedef void (*hostile_expect_fn)(const char *name, const uint8_t *bytes, size_t total,
                                  uint64_t file_size, uint32_t chunk, uint32_t max_raw, size_t k,
                                  const char *needle);

/* Every hostile case, from s (the engine's stream of data[0..size), at
 * least 6 chunks of `chunk` bytes, the last one short). */
static void hostile_cases(const stream *s, const uint8_t *data, uint64_t size, uint32_t chunk,
                          hostile_expect_fn expect)
{
    uint8_t *m;
    size_t total, k, last;
    uint64_t h;

    total = s->len + MARKER_LEN;
    m = malloc(total);
    k = 3;
    last = s->nchunks - 1;
    h = s->hdr_off[k];
#define FRESH() memcpy(m, s->buf, total)

    FRESH();
    m[h + NTDSB_CHUNK_HEADER_SIZE + get_u32(m + h + 16) / 2] ^= 0x10;
    expect("bit flip in a frame", m, total, size, chunk, 0, k, NULL);

    FRESH();
    m[h + 48 + get_u32(m + h + 16) - 2] ^= 0x01; /* inside zstd's own checksum */
    expect("bit flip in the zstd checksum", m, total, size, chunk, 0, k, "zstd: ");

    FRESH();
    m[h + 32 + 5] ^= 0x04;
    expect("bit flip in the stored hash", m, total, size, chunk, 0, k,
           "XXH3-128 mismatch");

    FRESH();
    m[h + 0] ^= 0x01;
    expect("wrong magic", m, total, size, chunk, 0, k, "bad chunk header: ");

    FRESH();
    put_u32(m + h + 4, 41);
    expect("wrong payload size", m, total, size, chunk, 0, k, "bad chunk header: ");

    FRESH();
    put_u32(m + h + 8, 2);
    expect("wrong format", m, total, size, chunk, 0, k, "format");

    FRESH();
    put_u32(m + h + 20, 1);
    expect("reserved != 0", m, total, size, chunk, 0, k, "reserved");

    FRESH();
    put_u32(m + h + 12, 0);
    expect("raw_size 0", m, total, size, chunk, 0, k, "raw_size");

    FRESH();
    put_u32(m + h + 12, NTDSB_CHUNK_MAX + 1);
    expect("raw_size > 64 MiB", m, total, size, chunk, 0, k, "raw_size");

    FRESH();
    put_u32(m + h + 12, chunk + 8192);
    expect("raw_size > max_raw_size", m, total, size, chunk, chunk, k,
           "above the limit");

    FRESH();
    expect("first chunk > max_raw_size", m, total, size, chunk, chunk / 2, 0,
           "above the limit");

    FRESH();
    put_u32(m + h + 16, (uint32_t)ZSTD_compressBound(chunk) + 1);
    expect("frame_size > bound", m, total, size, chunk, 0, k, "ZSTD_compressBound");

    FRESH();
    put_u32(m + h + 16, 0);
    expect("frame_size 0", m, total, size, chunk, 0, k, "frame_size");

    FRESH();
    put_u32(m + h + 16, get_u32(m + h + 16) - 1); /* one byte of the frame is left over */
    expect("frame_size one short", m, total, size, chunk, 0, k, NULL);

    FRESH();
    put_u32(m + h + 24, (uint32_t)k + 1);
    expect("chunk_index out of order", m, total, size, chunk, 0, k, "chunk_index");

    FRESH();
    put_u32(m + h + 28, 1); /* high half of the u64 */
    expect("chunk_index high bits", m, total, size, chunk, 0, k, "chunk_index");

    FRESH();
    put_u32(m + h + 12, chunk - 8192);
    expect("middle chunk with another raw_size", m, total, size, chunk, 0, k,
           "differs");

    FRESH();
    expect("raw sizes exceed file_size", m, total, size - 1, chunk, 0, last,
           "past the file size");

    FRESH();
    expect("file_size below the first chunk", m, total, 1000, chunk, 0, 0,
           "past the file size");

    FRESH();
    put_u32(m + s->hdr_off[last] + 12, chunk + 1); /* a last chunk larger than the first */
    expect("last chunk larger than the first", m, total,
           (uint64_t)last * chunk + chunk + 1, chunk, 0, last, "differs");

    /* Truncation: the input ends (no marker) inside a header, inside a frame,
     * exactly between chunks, and the file is announced larger than it is. */
    expect("truncated inside a header", s->buf, h + 20, size, chunk, 0, k, "truncated");
    expect("truncated inside chunk 0's header", s->buf, 47, size, chunk, 0, 0,
           "truncated");
    expect("empty input", s->buf, 0, size, chunk, 0, 0, "truncated");
    expect("truncated inside a frame", s->buf, h + 48 + 100, size, chunk, 0, k,
           "truncated");
    expect("truncated one byte short", s->buf, s->len - 1, size, chunk, 0, last,
           "truncated");
    expect("truncated between chunks", s->buf, h, size, chunk, 0, k, "truncated");

    /* Two defects: the first in file order is reported, whatever the timing. */
    FRESH();
    m[s->hdr_off[5] + 48 + 10] ^= 0xFF;
    m[s->hdr_off[2] + 32] ^= 0x80;
    expect("two bad chunks", m, total, size, chunk, 0, 2, "XXH3-128 mismatch");
    FRESH();
    m[s->hdr_off[2] + 48 + 10] ^= 0xFF;
    m[s->hdr_off[4] + 1] ^= 0xFF; /* the reader sees this one first */
    expect("bad frame before a bad header", m, total, size, chunk, 0, 2, NULL);

    free(m);
#undef FRESH

    /* Frames the engine never writes. */
    {
        stream b;
        build_stream(&b, data, size, chunk, k, ODD_NO_SIZE);
        expect("frame without content size", b.buf, b.len + MARKER_LEN, size, chunk,
               0, k, "content size");
        free(b.buf);
        build_stream(&b, data, size, chunk, k, ODD_SHORT);
        expect("frame content size != raw_size", b.buf, b.len + MARKER_LEN, size,
               chunk, 0, k, "the header says");
        free(b.buf);
        build_stream(&b, data, size, chunk, k, ODD_TRAILING);
        expect("frame_size covers a second frame", b.buf, b.len + MARKER_LEN, size,
               chunk, 0, k, "the header says");
        free(b.buf);
    }
}

#endif /* NTDSB_RESTORE_CASES_H */
