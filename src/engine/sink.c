/*
 * sink.c - giving bytes to the caller's sink: a file (no callback, no GIL;
 * a descriptor on POSIX, a HANDLE on Windows) or a callback (the embedding
 * case).
 */
#include "engine_internal.h"

int ntdsb_sink_check(const ntdsb_sink *sink, ntdsb_error *err)
{
    if (sink == NULL || ntdsb_file_valid(sink->fd) == (sink->write != NULL)) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "sink is invalid: give exactly one of fd >= 0 or a write callback");
        return NTDSB_E_CONFIG;
    }
    return NTDSB_OK;
}

int ntdsb_sink_put(const ntdsb_sink *sink, const void *buf, size_t len, int *sys_errno)
{
    *sys_errno = 0;
    if (sink->write != NULL)
        return sink->write(sink->ctx, buf, len) == 0 ? NTDSB_OK : NTDSB_E_CALLBACK;
    /* Interrupted and short writes (pipe, socket, quota) are retried there. */
    return ntdsb_file_write_all(sink->fd, buf, len, sys_errno) == 0 ? NTDSB_OK : NTDSB_E_WRITE;
}
