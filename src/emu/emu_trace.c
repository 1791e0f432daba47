/*
 * emu_trace.c - calls.log: one line per API call when dc.conf says trace=1.
 *
 * O_APPEND and a single write() per line: lines from concurrent threads and
 * processes interleave whole, never mixed, so tests can count and order them.
 * Tracing never changes a call's result: failures to log are ignored.
 */
#include "emu_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void emu_trace_file(const char *path, const char *fn, uint64_t serial, HRESULT hr)
{
    char line[160], h[24];
    int n, fd;

    if (serial)
        snprintf(h, sizeof h, "%llu", (unsigned long long)serial);
    else
        snprintf(h, sizeof h, "-");
    n = snprintf(line, sizeof line, "%ld %s h=%s hr=0x%08X\n", (long)getpid(), fn, h,
                 (unsigned)hr);
    if (n <= 0 || (size_t)n >= sizeof line)
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) < 0) {
        /* ignored on purpose: see the file comment */
    }
    close(fd);
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
