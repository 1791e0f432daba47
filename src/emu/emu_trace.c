/*
 * emu_trace.c - calls.log: one line per API call when dc.conf says trace=1.
 *
 * One append-only write per line (emu_os_append): lines from concurrent
 * threads and processes interleave whole, never mixed, so tests can count and
 * order them.
 * Tracing never changes a call's result: failures to log are ignored.
 */
#include "emu_internal.h"

#include <stdio.h>
#include <stdlib.h>

void emu_trace_file(const char *path, const char *fn, uint64_t serial, HRESULT hr)
{
    char line[160], h[24];
    int n;

    if (serial)
        snprintf(h, sizeof h, "%llu", (unsigned long long)serial);
    else
        snprintf(h, sizeof h, "-");
    n = snprintf(line, sizeof line, "%ld %s h=%s hr=0x%08X\n", emu_os_pid(), fn, h,
                 (unsigned)hr);
    if (n <= 0 || (size_t)n >= sizeof line)
        return;
    emu_os_append(path, line, (size_t)n); /* failures ignored: see the file comment */
}

void emu_trace(const emu_conf *c, const char *fn, uint64_t serial, HRESULT hr)
{
    char *path;

    if (!c || !c->trace)
        return;
    path = emu_join(c->dcdir, "calls.log");
    if (!path)
        return;
    emu_trace_file(path, fn, serial, hr);
    free(path);
}
