/*
 * platform_posix.c - platform.h on POSIX: pthreads, CLOCK_MONOTONIC,
 * posix_memalign, file descriptors.  platform_win32.c is the Windows half.
 */
#ifdef _WIN32
#  error "platform_posix.c is the POSIX half of platform.h; build platform_win32.c on Windows"
#endif
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE /* sched_getaffinity / CPU_COUNT, posix_fadvise */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"

/* ---- locks --------------------------------------------------------------------- */

int ntdsb_mutex_init(ntdsb_mutex *m)
{
    return pthread_mutex_init(m, NULL);
}

void ntdsb_mutex_destroy(ntdsb_mutex *m)
{
    pthread_mutex_destroy(m);
}

void ntdsb_mutex_lock(ntdsb_mutex *m)
{
    pthread_mutex_lock(m);
}

void ntdsb_mutex_unlock(ntdsb_mutex *m)
{
    pthread_mutex_unlock(m);
}

int ntdsb_cond_init(ntdsb_cond *c)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    /* Timed waits (the cancel hook's 100 ms) must not jump with the wall clock. */
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

void ntdsb_cond_destroy(ntdsb_cond *c)
{
    pthread_cond_destroy(c);
}

void ntdsb_cond_wait(ntdsb_cond *c, ntdsb_mutex *m)
{
    pthread_cond_wait(c, m);
}

void ntdsb_cond_wait_for(ntdsb_cond *c, ntdsb_mutex *m, double seconds)
{
    struct timespec ts;
    long ns;

    if (seconds < 0)
        seconds = 0;
    /* An absolute deadline on the clock the condition was made with. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns = ts.tv_nsec + (long)(seconds * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(c, m, &ts);
}

void ntdsb_cond_signal(ntdsb_cond *c)
{
    pthread_cond_signal(c);
}

void ntdsb_cond_broadcast(ntdsb_cond *c)
{
    pthread_cond_broadcast(c);
}

/* ---- threads ------------------------------------------------------------------- */

int ntdsb_thread_start(ntdsb_thread *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int rc;

    /* Threads inherit the creator's mask: block the asynchronous signals while
     * creating one so that SIGINT and friends go to the calling thread (where
     * Python's handler and the cancel hook live), never to an engine thread.
     * Faults stay unblocked so a crash still reaches faulthandler / ASan. */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGTRAP);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&t->id, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void ntdsb_thread_join(ntdsb_thread *t)
{
    pthread_join(t->id, NULL);
}

void ntdsb_thread_join_cancelling_io(ntdsb_thread *t)
{
    /* A POSIX reader of a pipe polls and sees the stop flag itself. */
    pthread_join(t->id, NULL);
}

/* ---- time, CPUs, memory ------------------------------------------------------- */

double ntdsb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long ntdsb_os_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef CPU_COUNT
    /* A container or taskset may allow fewer CPUs than are online; more
     * workers than usable CPUs only add context switches. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        long allowed = CPU_COUNT(&set);
        if (allowed > 0 && (n < 1 || allowed < n))
            n = allowed;
    }
#endif
    return n < 1 ? 1 : n;
}

void *ntdsb_alloc_aligned(size_t n)
{
    void *ptr = NULL;
    /* Page alignment: the buffers are large, and whoever fills them (the
     * provider, the RPC layer, read(2), zstd) copies with wide stores. */
    if (posix_memalign(&ptr, 4096, n != 0 ? n : 1) != 0)
        return NULL;
    return ptr;
}

void ntdsb_free_aligned(void *p)
{
    free(p);
}

/* ---- files --------------------------------------------------------------------- */

int ntdsb_file_valid(ntdsb_file f)
{
    return f >= 0;
}

int ntdsb_file_is_regular(ntdsb_file f)
{
    struct stat st;
    return fstat(f, &st) == 0 && S_ISREG(st.st_mode);
}

void ntdsb_file_advise_sequential(ntdsb_file f)
{
    /* Only the read-ahead window of this open file changes. */
    (void)posix_fadvise(f, 0, 0, POSIX_FADV_SEQUENTIAL);
}

int ntdsb_file_write_all(ntdsb_file f, const void *buf, size_t len, int *sys_err)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = write(f, p, len);
        if (n < 0) {
            /* EINTR: a signal arrived (the Python handler only sets a flag;
             * the cancel hook acts on it between chunks), so retry. */
            if (errno == EINTR)
                continue;
            *sys_err = errno;
            return -1;
        }
        if (n == 0) {
            /* write(2) taking nothing for len > 0 would loop forever. */
            *sys_err = EIO;
            return -1;
        }
        /* A short write (pipe, socket, quota) is not an error: send the rest. */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ntdsb_file ntdsb_file_pos_open(ntdsb_file f)
{
    return f; /* pread/pwrite leave the file position alone */
}

void ntdsb_file_pos_close(ntdsb_file twin, ntdsb_file f)
{
    (void)twin;
    (void)f;
}

int ntdsb_file_pwrite_all(ntdsb_file f, const void *buf, size_t len, uint64_t off,
                          int *sys_err)
{
    const uint8_t *p = buf;
    off_t at = (off_t)off;

    while (len > 0) {
        ssize_t n = pwrite(f, p, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *sys_err = n < 0 ? errno : EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

int ntdsb_file_pread(ntdsb_file f, void *buf, size_t len, uint64_t off, size_t *got,
                     int *sys_err)
{
    for (;;) {
        ssize_t n = pread(f, buf, len, (off_t)off);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno != EINTR) {
            *got = 0;
            *sys_err = errno;
            return -1;
        }
    }
}

/* Wait until f is readable, *stop is set, or something is wrong with the
 * descriptor (read() then reports it). */
static int wait_readable(ntdsb_file f, atomic_int *stop)
{
    for (;;) {
        struct pollfd pfd;
        int n;
        if (atomic_load_explicit(stop, memory_order_relaxed))
            return NTDSB_IO_STOPPED;
        pfd.fd = f;
        pfd.events = POLLIN;
        pfd.revents = 0;
        n = poll(&pfd, 1, NTDSB_IO_POLL_MS);
        if (n > 0)
            return NTDSB_IO_DATA; /* data, end of file, POLLHUP or POLLERR: read() says which */
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return NTDSB_IO_DATA; /* let read() report the problem with its errno */
    }
}

int ntdsb_file_read_some(ntdsb_file f, void *buf, size_t len, size_t *got, int may_block,
                         atomic_int *stop, int *sys_err)
{
    *got = 0;
    for (;;) {
        ssize_t n;
        if (may_block) {
            /* A read() blocked on a pipe could otherwise outlive a cancel or
             * a failure for ever, and the join would hang with it. */
            if (wait_readable(f, stop) == NTDSB_IO_STOPPED)
                return NTDSB_IO_STOPPED;
        } else if (atomic_load_explicit(stop, memory_order_relaxed)) {
            return NTDSB_IO_STOPPED;
        }
        n = read(f, buf, len);
        if (n > 0) {
            *got = (size_t)n;
            return NTDSB_IO_DATA;
        }
        if (n == 0)
            return NTDSB_IO_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* A non-blocking descriptor the caller gave us: wait, don't spin. */
            struct pollfd pfd = {f, POLLIN, 0};
            (void)poll(&pfd, 1, NTDSB_IO_POLL_MS);
            continue;
        }
        *sys_err = errno;
        return NTDSB_IO_ERROR;
    }
}

/* ---- text ---------------------------------------------------------------------- */

const char *ntdsb_strerror(int code, char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return strerror(code);
}
