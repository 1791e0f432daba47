/*
 * sink.c - giving bytes to the caller's sink: a file descriptor (no callback,
 * no GIL) or a callback (the embedding case).
 */
#include <errno.h>

#ifdef _WIN32
#  include <io.h>
#else
#  include <unistd.h>
#endif

#include "engine_internal.h"

int ntdsb_sink_check(const ntdsb_sink *sink, ntdsb_error *err)
{
    if (sink == NULL || (sink->fd >= 0) == (sink->write != NULL)) {
        ntdsb_err_set(err, NTDSB_E_CONFIG, NULL, 0, 0,
                      "sink is invalid: give exactly one of fd >= 0 or a write callback");
        return NTDSB_E_CONFIG;
    }
    return NTDSB_OK;
}

int ntdsb_sink_put(const ntdsb_sink *sink, const void *buf, size_t len, int *sys_errno)
{
    const unsigned char *p = buf;

    *sys_errno = 0;
    if (sink->write != NULL)
        return sink->write(sink->ctx, buf, len) == 0 ? NTDSB_OK : NTDSB_E_CALLBACK;

    while (len > 0) {
#ifdef _WIN32
        unsigned int step = len > 0x40000000u ? 0x40000000u : (unsigned int)len;
        int n = _write(sink->fd, p, step);
#else
        ssize_t n = write(sink->fd, p, len);
#endif
        if (n < 0) {
            /* EINTR: a signal arrived (the Python handler only sets a flag;
             * the cancel hook acts on it between chunks), so retry. */
            if (errno == EINTR)
                continue;
            *sys_errno = errno;
            return NTDSB_E_WRITE;
        }
        if (n == 0) {
            /* write(2) taking nothing for len > 0 would loop forever. */
            *sys_errno = EIO;
            return NTDSB_E_WRITE;
        }
        /* A short write (pipe, socket, quota) is not an error: send the rest. */
        p += n;
        len -= (size_t)n;
    }
    return NTDSB_OK;
}
