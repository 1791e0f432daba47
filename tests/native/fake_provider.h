/*
 * fake_provider.h - DsBackupRead over bytes in memory: what the native tests
 * give the backup engine to make archives of known content (the HBC is a
 * `fake *`).  Shared by the POSIX tests and the Windows driver.
 */
#ifndef NTDSB_FAKE_PROVIDER_H
#define NTDSB_FAKE_PROVIDER_H

#include <stdint.h>
#include <string.h>

#include "ntdsb_provider.h" /* HRESULT, HBC, NTDSB_WINAPI, ERROR_HANDLE_EOF */

typedef struct fake {
    const uint8_t *data;
    uint64_t size, pos;
} fake;

/* The next min(cb, what is left) bytes; ERROR_HANDLE_EOF once all were read. */
static inline HRESULT NTDSB_WINAPI fake_read(HBC hbc, PVOID pv, DWORD cb, PDWORD pcb)
{
    fake *f = hbc;
    uint64_t n = f->size - f->pos < cb ? f->size - f->pos : cb;
    *pcb = 0;
    if (n == 0)
        return ERROR_HANDLE_EOF;
    memcpy(pv, f->data + f->pos, (size_t)n);
    f->pos += n;
    *pcb = (DWORD)n;
    return 0;
}

#endif /* NTDSB_FAKE_PROVIDER_H */
