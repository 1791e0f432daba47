/*
 * emu_state.c - the DC's small state files besides dc.conf: `mode`
 * (online/dsrm), restore.state, current_backup_log, and the emulated clock.
 *
 * Every file the emulator writes goes through emu_write_atomic (tmp file,
 * fsync, rename, fsync dir): the Python side may read them at any moment and
 * must see either the old or the new content, never half.
 */
#include "emu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t emu_now(const emu_conf *c)
{
    return (int64_t)time(NULL) + c->clock_offset;
}

int emu_dc_online(const emu_conf *c)
{
    char *p = emu_join(c->dcdir, "mode");
    char buf[64];
    size_t n = 0, b = 0, e;
    emu_fd fd;
    int err = 0, r;

    if (!p)
        return 1;
    r = emu_os_open_read(p, &fd);
    free(p);
    if (r != 0)
        return 1; /* absent: online (a freshly created DC runs) */
    r = ntdsb_file_pread(fd, buf, sizeof buf - 1, 0, &n, &err);
    emu_os_close(fd);
    if (r != 0 || n == 0)
        return 1;
    e = n;
    while (b < e && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r' || buf[b] == '\n'))
        b++;
    while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r' ||
                     buf[e - 1] == '\n'))
        e--;
    /* Only "dsrm" means offline: an unknown word is not a reason to stop. */
    return !(e - b == 4 && emu_ascii_ncasecmp(buf + b, "dsrm", 4) == 0);
}

int emu_dc_set_dsrm(const emu_conf *c)
{
    return emu_write_atomic(c->dcdir, "mode", "dsrm\n", 5);
}

HRESULT emu_restore_state_write(const emu_conf *c, const char *state, HRESULT hr,
                                const char *body, int64_t registered_at, int64_t completed_at)
{
    size_t cap = strlen(body) + 160;
    char *buf = malloc(cap);
    int n, r;

    if (!buf)
        return ERROR_NOT_ENOUGH_MEMORY;
    n = snprintf(buf, cap, "state=%s\nhr=0x%08X\n%sregistered_at=%lld\ncompleted_at=%lld\n", state,
                 (unsigned)hr, body, (long long)registered_at, (long long)completed_at);
    if (n < 0 || (size_t)n >= cap) {
        free(buf);
        return hrError;
    }
    r = emu_write_atomic(c->dcdir, "restore.state", buf, (size_t)n);
    free(buf);
    return r ? hrDiskIO : 0;
}

HRESULT emu_current_log_write(const emu_conf *c, uint32_t value)
{
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%u\n", (unsigned)value);

    return emu_write_atomic(c->dcdir, "current_backup_log", buf, (size_t)n) ? hrDiskIO : 0;
}

int emu_lock_try(const emu_conf *c, const char *name, emu_fd *fd)
{
    char *p = emu_join(c->dcdir, name);
    int r;

    *fd = EMU_NO_FD;
    if (!p)
        return -1;
    r = emu_os_lock_try(p, fd);
    free(p);
    return r;
}
