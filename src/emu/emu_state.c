/*
 * emu_state.c - the DC's small state files besides dc.conf: `mode`
 * (online/dsrm), restore.state, current_backup_log, and the emulated clock.
 *
 * Every file the emulator writes goes through emu_write_atomic (tmp file,
 * fsync, rename, fsync dir): the Python side may read them at any moment and
 * must see either the old or the new content, never half.
 */
#include "emu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int64_t emu_now(const emu_conf *c)
{
    return (int64_t)time(NULL) + c->clock_offset;
}

int emu_dc_online(const emu_conf *c)
{
    char *p = emu_join(c->dcdir, "mode");
    char buf[64];
    ssize_t n;
    int fd;
    size_t b = 0, e;

    if (!p)
        return 1;
    fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return 1; /* absent: online (a freshly created DC runs) */
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 1;
    e = (size_t)n;
    while (b < e && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r' || buf[b] == '\n'))
        b++;
    while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r' ||
                     buf[e - 1] == '\n'))
        e--;
    /* Only "dsrm" means offline: an unknown word is not a reason to stop. */
    return !(e - b == 4 && emu_ascii_ncasecmp(buf + b, "dsrm", 4) == 0);
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int emu_write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    static unsigned long counter; /* distinct tmp names for concurrent threads */
    unsigned long k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    char *path = emu_join(dir, name), *tmp;
    int fd, err = 0;
    size_t off = 0;

    if (!path)
        return -1;
    tmp = malloc(strlen(path) + 64);
    if (!tmp) {
        free(path);
        return -1;
    }
    sprintf(tmp, "%s.tmp.%ld.%lu", path, (long)getpid(), k);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        off += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        unlink(tmp);
    else
        fsync_dir(dir);
out:
    free(tmp);
    free(path);
    errno = err;
    return err ? -1 : 0;
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

int emu_lock_try(const emu_conf *c, const char *name, int *fd)
{
    char *p = emu_join(c->dcdir, name);
    int f, r;

    *fd = -1;
    if (!p)
        return -1;
    f = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(p);
    if (f < 0)
        return -1;
    /* flock locks belong to the open file description: two handles of one
     * process exclude each other just like two processes do. */
    do
        r = flock(f, LOCK_EX | LOCK_NB);
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        int busy = errno == EWOULDBLOCK;
        close(f);
        return busy ? 1 : -1;
    }
    *fd = f;
    return 0;
}
