/*
 * emu_handles.c - the handle registry.
 *
 * An HBC handed out by Prepare is a pointer to an emu_handle, but a caller can
 * hand back anything: NULL, a freed handle, garbage.  So a pointer is only
 * dereferenced after it was found in the registry (compared by value).
 *
 * Lifetime: the registry holds one reference; each call in progress holds
 * another (taken under the registry mutex).  End marks the handle ended and
 * drops the registry's reference; the memory goes when the last call leaves,
 * so a call racing End on another thread never touches freed memory - it
 * sees `ended` and fails with ERROR_INVALID_PARAMETER.
 *
 * Lock order: a handle's mu may be held while taking the registry mutex,
 * never the reverse.
 */
#include "emu_internal.h"

#include <stdlib.h>

static ntdsb_mutex reg_mu = NTDSB_MUTEX_INIT;
static emu_handle *reg_head;
static uint64_t reg_serial;

emu_handle *emu_handle_create(unsigned kind, emu_conf *conf)
{
    emu_handle *h = calloc(1, sizeof *h);

    if (!h || ntdsb_mutex_init(&h->mu) != 0) {
        free(h);
        emu_conf_free(conf);
        return NULL;
    }
    h->kind = kind;
    h->conf = conf;
    h->lock_fd = EMU_NO_FD;
    h->fd = EMU_NO_FD;
    h->refs = 1;
    /* fault_short_read must repeat run after run: a fixed seed. */
    h->prng = 0x9E3779B97F4A7C15ull;
    ntdsb_mutex_lock(&reg_mu);
    h->serial = ++reg_serial;
    h->next = reg_head;
    reg_head = h;
    ntdsb_mutex_unlock(&reg_mu);
    return h;
}

static void destroy(emu_handle *h)
{
    if (h->fd != EMU_NO_FD)
        emu_os_close(h->fd);
    if (h->lock_fd != EMU_NO_FD)
        emu_os_close(h->lock_fd);
    ntdsb_mutex_destroy(&h->mu);
    emu_conf_free(h->conf);
    free(h->reg_body);
    free(h);
}

static void unref(emu_handle *h)
{
    int last;

    ntdsb_mutex_lock(&reg_mu);
    last = --h->refs == 0;
    ntdsb_mutex_unlock(&reg_mu);
    if (last)
        destroy(h);
}

/* Remove from the list (registry mutex held); 1 if it was there. */
static int unlink_locked(emu_handle *h)
{
    emu_handle **pp;

    for (pp = &reg_head; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            h->next = NULL;
            return 1;
        }
    }
    return 0;
}

HRESULT emu_handle_begin(HBC hbc, unsigned kinds, const char *fn, emu_handle **out)
{
    emu_handle *h;

    *out = NULL;
    if (!hbc)
        return ERROR_INVALID_PARAMETER;
    ntdsb_mutex_lock(&reg_mu);
    for (h = reg_head; h; h = h->next) {
        if ((void *)h == hbc)
            break;
    }
    if (h)
        h->refs++;
    ntdsb_mutex_unlock(&reg_mu);
    if (!h)
        return ERROR_INVALID_PARAMETER;

    /* kind, conf and serial never change after create: no lock needed. */
    emu_fault_latency(h->conf);
    if (!(h->kind & kinds)) {
        emu_trace(h->conf, fn, h->serial, ERROR_INVALID_PARAMETER);
        unref(h);
        return ERROR_INVALID_PARAMETER;
    }
    ntdsb_mutex_lock(&h->mu);
    if (h->ended) {
        /* Ended while we waited for the lock. */
        ntdsb_mutex_unlock(&h->mu);
        unref(h);
        return ERROR_INVALID_PARAMETER;
    }
    *out = h;
    return 0;
}

HRESULT emu_handle_finish(emu_handle *h, const char *fn, HRESULT hr)
{
    emu_trace(h->conf, fn, h->serial, hr);
    ntdsb_mutex_unlock(&h->mu);
    unref(h);
    return hr;
}

void emu_handle_end(emu_handle *h)
{
    int listed;

    h->ended = 1;
    /* Release the DC's lock now, not when the last reference goes: End is
     * the moment another backup/restore may start. */
    if (h->fd != EMU_NO_FD) {
        emu_os_close(h->fd);
        h->fd = EMU_NO_FD;
    }
    if (h->lock_fd != EMU_NO_FD) {
        emu_os_close(h->lock_fd);
        h->lock_fd = EMU_NO_FD;
    }
    ntdsb_mutex_lock(&reg_mu);
    listed = unlink_locked(h);
    if (listed)
        h->refs--; /* the registry's reference; the caller still holds one */
    ntdsb_mutex_unlock(&reg_mu);
}

void emu_handle_discard(emu_handle *h)
{
    ntdsb_mutex_lock(&h->mu);
    emu_handle_end(h);
    ntdsb_mutex_unlock(&h->mu);
    /* create's reference was the registry's, dropped by end; nothing else
     * can hold one because the pointer was never handed out. */
    ntdsb_mutex_lock(&reg_mu);
    h->refs++;
    ntdsb_mutex_unlock(&reg_mu);
    unref(h);
}
