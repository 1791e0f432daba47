/*
 * emu_os_posix.c - emu_os.h on POSIX: descriptors, flock, link(2), fsync of
 * directories, and OpenSSL's PBKDF2.  emu_os_win32.c is the Windows half.
 */
#ifdef _WIN32
#  error "emu_os_posix.c is the POSIX half of emu_os.h; build emu_os_win32.c on Windows"
#endif
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE /* flock, getline, O_CLOEXEC */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "emu_internal.h" /* emu_join */
#include "emu_os.h"

/* ---- files ------------------------------------------------------------- */

int emu_os_open_read(const char *path, emu_fd *fd)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    return *fd < 0 ? -1 : 0;
}

int emu_os_create(const char *path, unsigned mode, emu_fd *fd)
{
    *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    return *fd < 0 ? -1 : 0;
}

int emu_os_fstat(emu_fd fd, emu_file_info *info)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return -1;
    info->size = (int64_t)st.st_size;
    info->mode = (unsigned)(st.st_mode & 0777);
    info->regular = S_ISREG(st.st_mode);
    return 0;
}

int emu_os_pread_full(emu_fd fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int emu_os_write_all(emu_fd fd, const void *buf, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = write(fd, (const char *)buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int emu_os_set_size(emu_fd fd, uint64_t size)
{
    return ftruncate(fd, (off_t)size);
}

int emu_os_sync(emu_fd fd)
{
    return fsync(fd);
}

int emu_os_close(emu_fd fd)
{
    return close(fd);
}

int emu_os_is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int emu_os_rename(const char *from, const char *to)
{
    return rename(from, to);
}

int emu_os_link(const char *from, const char *to)
{
    return link(from, to);
}

int emu_os_remove(const char *path)
{
    return unlink(path);
}

void emu_os_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

FILE *emu_os_fopen_read(const char *path)
{
    return fopen(path, "re");
}

long emu_os_getline(char **line, size_t *cap, FILE *f)
{
    return (long)getline(line, cap, f);
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
        emu_os_sync_dir(dir);
out:
    free(tmp);
    free(path);
    errno = err;
    return err ? -1 : 0;
}

void emu_os_append(const char *path, const char *line, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        return;
    /* O_APPEND: each write(2) lands whole at the end, whoever else appends. */
    if (write(fd, line, len) < 0) {
        /* ignored on purpose: see emu_os.h */
    }
    close(fd);
}

int emu_os_lock_try(const char *path, emu_fd *fd)
{
    int f, r;

    *fd = -1;
    f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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

/* ---- directories ------------------------------------------------------- */

struct emu_dir {
    DIR *d;
};

emu_dir *emu_os_opendir(const char *path)
{
    emu_dir *d = malloc(sizeof *d);

    if (!d)
        return NULL;
    d->d = opendir(path);
    if (!d->d) {
        int e = errno;
        free(d);
        errno = e;
        return NULL;
    }
    return d;
}

const char *emu_os_readdir(emu_dir *d)
{
    struct dirent *e = readdir(d->d);
    return e ? e->d_name : NULL;
}

void emu_os_closedir(emu_dir *d)
{
    closedir(d->d);
    free(d);
}

int emu_os_folds_case(void)
{
    return 0;
}

int emu_os_name_unsafe(const char *name)
{
    (void)name; /* every name without '/' is a plain directory entry */
    return 0;
}

/* ---- process, environment, time --------------------------------------- */

long emu_os_pid(void)
{
    return (long)getpid();
}

char *emu_os_getenv(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

int emu_os_gmtime(int64_t t, struct tm *out)
{
    time_t tt = (time_t)t;
    return gmtime_r(&tt, out) ? 0 : -1;
}

void emu_os_sleep_us(uint64_t us)
{
    struct timespec ts, rem;

    ts.tv_sec = (time_t)(us / 1000000u);
    ts.tv_nsec = (long)(us % 1000000u) * 1000L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}

/* ---- password hashes ---------------------------------------------------- */

int emu_os_pbkdf2_sha256(const char *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                         uint32_t iterations, uint8_t out[32])
{
    return PKCS5_PBKDF2_HMAC(pw, (int)pw_len, salt, (int)salt_len,
                             (int)(iterations > 0x7FFFFFFFu ? 0x7FFFFFFFu : iterations),
                             EVP_sha256(), 32, out)
               ? 0
               : -1;
}

void emu_os_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

int emu_os_memeq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
