/*
 * native_test.h - the tiny harness test_pipeline.c and test_restore.c share:
 * the counters and CHECK macros of native_check.h (which the Windows driver
 * uses alone), a temporary file holding given bytes, a monotonic clock, sleeps, the process's thread count (every
 * engine call must leave it where it was) and timing a shell command for the
 * benchmarks.
 *
 * Included by exactly one translation unit per test binary: everything here is
 * static (inline where it is a function, so that a test not using one does
 * not trip -Wunused-function).  The includer defines _GNU_SOURCE first.
 */
#ifndef NTDSB_NATIVE_TEST_H
#define NTDSB_NATIVE_TEST_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "native_check.h"

/* A deleted temporary file holding the n bytes at b, positioned at 0. */
static inline int file_from_bytes(const uint8_t *b, size_t n)
{
    char path[] = "/tmp/ntdsb_native_XXXXXX";
    int fd = mkstemp(path);
    size_t done = 0;
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    unlink(path);
    while (done < n) {
        ssize_t w = write(fd, b + done, n - done);
        if (w <= 0) {
            perror("write");
            exit(2);
        }
        done += (size_t)w;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Threads of this process: after every engine call it must be back to
 * g_base_threads (test_restore: one more while a pipe feeder runs). */
static inline int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Thread count once the engine's threads are gone.  pthread_join returns when
 * the kernel clears the thread's tid, a moment before /proc drops its entry
 * (the kernel reaps it asynchronously): give it up to 200 ms to settle down to
 * `want` before calling it a leak (a leak never settles). */
static inline int threads_settled(int want)
{
    int i, n = thread_count();
    for (i = 0; i < 400 && n > want; i++) {
        sleep_us(500);
        n = thread_count();
    }
    return n;
}

static inline void *idle_thread(void *arg)
{
    return arg;
}

/* Set g_base_threads, before any test.  Sanitizer runtimes start a helper
 * thread with the first pthread_create: start (and join) one first, then
 * count. */
static inline void count_base_threads(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) == 0)
        pthread_join(t, NULL);
    sleep_us(20000);
    g_base_threads = thread_count();
}

/* Wall seconds of system(cmd) (benchmarks), or -1 if it failed. */
static inline double time_cmd(const char *cmd)
{
    double t0 = now();
    if (system(cmd) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        return -1;
    }
    return now() - t0;
}

#endif /* NTDSB_NATIVE_TEST_H */
