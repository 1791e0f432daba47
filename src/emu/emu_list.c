/*
 * emu_list.c - the multi-string lists of reference §6 (UTF-16LE, one BFT code
 * unit + UNC path + NUL per entry, one extra NUL at the end; the byte size
 * handed back counts the whole buffer, final NUL included).
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

static int reserve(emu_wlist *l, size_t more)
{
    size_t cap;
    WCHAR *nb;

    if (l->len + more <= l->cap)
        return 0;
    cap = l->cap ? l->cap : 128;
    while (cap < l->len + more)
        cap *= 2;
    nb = realloc(l->buf, cap * sizeof *nb);
    if (!nb)
        return -1;
    l->buf = nb;
    l->cap = cap;
    return 0;
}

static void push(emu_wlist *l, WCHAR w)
{
    if (l->failed || reserve(l, 1) != 0) {
        l->failed = 1;
        return;
    }
    l->buf[l->len++] = w;
}

void emu_wlist_add(emu_wlist *l, WCHAR bft, const char *path)
{
    const unsigned char *p = (const unsigned char *)path;

    push(l, bft);
    while (*p && !l->failed) {
        uint32_t c = *p;
        size_t n, i;
        /* The path came from dc.conf / the folder name, validated as UTF-8
         * when the conf was loaded; decode without re-validating. */
        if (c < 0x80)
            n = 1;
        else if ((c & 0xE0) == 0xC0)
            n = 2, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0)
            n = 3, c &= 0x0F;
        else
            n = 4, c &= 0x07;
        for (i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                l->failed = 1;
                return;
            }
            c = (c << 6) | (p[i] & 0x3F);
        }
        p += n;
        if (c >= 0x10000) {
            c -= 0x10000;
            push(l, (WCHAR)(0xD800 + (c >> 10)));
            push(l, (WCHAR)(0xDC00 + (c & 0x3FF)));
        } else {
            push(l, (WCHAR)c);
        }
    }
    push(l, 0);
}

HRESULT emu_wlist_finish(emu_wlist *l, const emu_handle *h, LPWSTR *out, LPDWORD pcb)
{
    WCHAR *res;
    size_t bytes;

    push(l, 0);
    if (l->failed) {
        free(l->buf);
        memset(l, 0, sizeof *l);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    bytes = l->len * sizeof(WCHAR);
    /* Copied into a tracked allocation so DsBackupFree can tell our buffers
     * from anything else it is handed. */
    res = emu_alloc(bytes, h);
    if (!res) {
        free(l->buf);
        memset(l, 0, sizeof *l);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    memcpy(res, l->buf, bytes);
    free(l->buf);
    memset(l, 0, sizeof *l);
    *out = res;
    *pcb = (DWORD)bytes;
    return 0;
}
