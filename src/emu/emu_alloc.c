/*
 * emu_alloc.c - buffers handed to the caller (expiry token, name lists) and
 * freed by DsBackupFree.
 *
 * Each allocation is remembered with the trace file of the DC whose handle
 * produced it, so DsBackupFree - which takes no server and no handle - can be
 * traced to the right calls.log.  Remembering them also lets DsBackupFree
 * ignore a pointer it never handed out (or a double free) instead of
 * corrupting the heap: on Windows that would be undefined behaviour, here a
 * no-op (docs/EMULATOR.md).
 */
#include "emu_internal.h"

#include <stdlib.h>

struct emu_alloc_rec {
    struct emu_alloc_rec *next;
    void *p;
    char *trace_path; /* calls.log of a traced DC, or NULL */
    uint64_t serial;
};

static ntdsb_mutex alloc_mu = NTDSB_MUTEX_INIT;
static struct emu_alloc_rec *alloc_head;

void *emu_alloc(size_t n, const emu_handle *h)
{
    struct emu_alloc_rec *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->p = malloc(n ? n : 1);
    if (!r->p) {
        free(r);
        return NULL;
    }
    if (h && h->conf->trace) {
        r->trace_path = emu_join(h->conf->dcdir, "calls.log");
        r->serial = h->serial;
    }
    ntdsb_mutex_lock(&alloc_mu);
    r->next = alloc_head;
    alloc_head = r;
    ntdsb_mutex_unlock(&alloc_mu);
    return r->p;
}

void *emu_alloc_replace(void *p, size_t n)
{
    struct emu_alloc_rec *r;
    void *np = malloc(n ? n : 1);

    if (!np)
        return NULL;
    ntdsb_mutex_lock(&alloc_mu);
    for (r = alloc_head; r; r = r->next) {
        if (r->p == p) {
            r->p = np;
            break;
        }
    }
    ntdsb_mutex_unlock(&alloc_mu);
    if (!r) {
        free(np);
        return NULL;
    }
    free(p);
    return np;
}

int emu_alloc_release(void *p)
{
    struct emu_alloc_rec **pp, *r = NULL;

    ntdsb_mutex_lock(&alloc_mu);
    for (pp = &alloc_head; *pp; pp = &(*pp)->next) {
        if ((*pp)->p == p) {
            r = *pp;
            *pp = r->next;
            break;
        }
    }
    ntdsb_mutex_unlock(&alloc_mu);
    if (!r)
        return 0;
    if (r->trace_path)
        emu_trace_file(r->trace_path, "DsBackupFree", r->serial, 0);
    free(r->p);
    free(r->trace_path);
    free(r);
    return 1;
}
