/*
 * chunk_header.c - the 48-byte chunk header (a zstd skippable frame), encoded
 * byte by byte in little-endian order so the format does not depend on the
 * host's endianness or on struct layout.
 */
#include <string.h>

#include "ntdsb_engine.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

void ntdsb_chunk_header_encode(const ntdsb_chunk_header *h, uint8_t out[NTDSB_CHUNK_HEADER_SIZE])
{
    put_u32(out + 0, NTDSB_CHUNK_MAGIC);
    put_u32(out + 4, NTDSB_CHUNK_HEADER_PAYLOAD);
    put_u32(out + 8, NTDSB_CHUNK_FORMAT);
    put_u32(out + 12, h->raw_size);
    put_u32(out + 16, h->frame_size);
    put_u32(out + 20, 0); /* reserved */
    put_u64(out + 24, h->chunk_index);
    memcpy(out + 32, h->hash.bytes, 16);
}

int ntdsb_chunk_header_decode(const uint8_t *buf, size_t len, ntdsb_chunk_header *h,
                              const char **why)
{
    const char *bad = NULL;

    if (len < NTDSB_CHUNK_HEADER_SIZE)
        bad = "truncated chunk header";
    else if (get_u32(buf) != NTDSB_CHUNK_MAGIC)
        bad = "bad chunk header magic";
    else if (get_u32(buf + 4) != NTDSB_CHUNK_HEADER_PAYLOAD)
        bad = "bad chunk header payload size";
    else if (get_u32(buf + 8) != NTDSB_CHUNK_FORMAT)
        bad = "unknown chunk header format";
    else if (get_u32(buf + 20) != 0)
        bad = "nonzero reserved field in chunk header";
    else if (get_u32(buf + 12) == 0 || get_u32(buf + 12) > NTDSB_CHUNK_MAX)
        bad = "chunk raw_size out of range";
    else if (get_u32(buf + 16) == 0)
        bad = "chunk frame_size is 0";
    if (bad != NULL) {
        if (why != NULL)
            *why = bad;
        return NTDSB_E_CORRUPT;
    }
    h->raw_size = get_u32(buf + 12);
    h->frame_size = get_u32(buf + 16);
    h->chunk_index = get_u64(buf + 24);
    memcpy(h->hash.bytes, buf + 32, 16);
    if (why != NULL)
        *why = NULL;
    return NTDSB_OK;
}
