/*
 * emu_token.c - the expiry token (layout v1, docs/EMULATOR.md).
 *
 * The real token's layout is not documented (reference §9); ours carries what
 * the API needs - backup time and tombstone lifetime - plus the database
 * signature, and a check word so a damaged token reads as "unknown format"
 * instead of a wrong date.  64 bytes, little-endian:
 *   0 "NTDSBEXP" | 8 u32 version 1 | 12 u32 size 64 | 16 i64 backup time
 *   24 u32 tombstone days | 28 u32 0 | 32 signDb[28] | 60 u32 FNV-1a(0..59)
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

static const char magic[8] = {'N', 'T', 'D', 'S', 'B', 'E', 'X', 'P'};

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 0x811C9DC5u;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x01000193u;
    }
    return h;
}

/* signDb = bytes 24..51 of the ntds.dit header; zeros if unreadable. */
static void read_signature(const emu_conf *c, uint8_t out[28])
{
    char *p = emu_join(c->dcdir, "NTDS/ntds.dit");
    emu_fd fd;
    size_t got = 0;
    int err = 0;

    memset(out, 0, 28);
    if (!p)
        return;
    if (emu_os_open_read(p, &fd) != 0) {
        free(p);
        return;
    }
    free(p);
    if (ntdsb_file_pread(fd, out, 28, 24, &got, &err) != 0 || got != 28)
        memset(out, 0, 28);
    emu_os_close(fd);
}

void emu_token_build(const emu_conf *c, uint8_t out[EMU_TOKEN_SIZE])
{
    memset(out, 0, EMU_TOKEN_SIZE);
    memcpy(out, magic, 8);
    emu_put_le32(out + 8, EMU_TOKEN_VERSION);
    emu_put_le32(out + 12, EMU_TOKEN_SIZE);
    emu_put_le64(out + 16, (uint64_t)emu_now(c));
    emu_put_le32(out + 24, c->tombstone_days);
    read_signature(c, out + 32);
    emu_put_le32(out + 60, fnv1a(out, 60));
}

HRESULT emu_token_check(const emu_conf *c, const void *pv, DWORD cb)
{
    const uint8_t *t = pv;
    int64_t when, age;
    uint32_t days;

    if (!pv || cb == 0)
        return hrMissingExpiryToken;
    if (cb != EMU_TOKEN_SIZE || memcmp(t, magic, 8) != 0 ||
        emu_le32(t + 8) != EMU_TOKEN_VERSION || emu_le32(t + 12) != EMU_TOKEN_SIZE ||
        emu_le32(t + 60) != fnv1a(t, 60))
        return hrUnknownExpiryTokenFormat;
    when = (int64_t)emu_le64(t + 16);
    days = emu_le32(t + 24);
    /* The lifetime recorded at backup time decides (reference §9), not the
     * DC's current setting.  Saturating: a far-past token cannot wrap. */
    if (__builtin_sub_overflow(emu_now(c), when, &age))
        return hrContentsExpired;
    if (age > (int64_t)days * 86400)
        return hrContentsExpired;
    return 0;
}
