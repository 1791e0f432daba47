/*
 * native_check.h - the pass/fail counters and CHECK macros of the native test
 * programs, and the canonical XXH3-128 of a buffer.  Portable C only: the
 * POSIX tests include it through native_test.h, the Windows driver
 * (test_windows.c) directly.
 *
 * Included by exactly one translation unit per test binary: everything here is
 * static (inline where it is a function).
 */
#ifndef NTDSB_NATIVE_CHECK_H
#define NTDSB_NATIVE_CHECK_H

#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "ntdsb_engine.h"

static int g_passed, g_failed;
static int g_base_threads = 1; /* threads before any test (TSan adds one of its own) */
static const char *g_test = "";

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            g_passed++;                                                                  \
        } else {                                                                         \
            g_failed++;                                                                  \
            fprintf(stderr, "FAIL [%s] %s:%d: %s\n", g_test, __FILE__, __LINE__, #cond); \
        }                                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ == b_) {                                                                  \
            g_passed++;                                                                  \
        } else {                                                                         \
            g_failed++;                                                                  \
            fprintf(stderr, "FAIL [%s] %s:%d: %s == %s (%lld != %lld)\n", g_test,        \
                    __FILE__, __LINE__, #a, #b, a_, b_);                                 \
        }                                                                                \
    } while (0)

/* The last line of a test run, and its exit status. */
static inline int test_report(void)
{
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

static inline ntdsb_hash128 xxh128_canon(const void *p, size_t n)
{
    XXH128_canonical_t c;
    ntdsb_hash128 h;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(h.bytes, c.digest, 16);
    return h;
}

#endif /* NTDSB_NATIVE_CHECK_H */
