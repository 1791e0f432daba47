/*
 * test_emu.c - the emulated DC's contract, tested through the same loader the
 * engine uses (ntdsb_provider_open).
 *
 *   test_emu [LIBRARY [SCRATCH_ROOT]]
 *   env: NTDSB_EMU_LIB, NTDSB_EMU_TEST_ROOT (used when the arguments are absent)
 *
 * Builds its own tiny DC folders under the scratch root (files only need the
 * right names and some bytes; logs get a valid 4096-byte header), runs every
 * entry point through its documented errors, sequence violations, faults,
 * threads and a second process, and prints "N passed, N failed" last.
 * Exit status 0 only when nothing failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ntdsb_ese.h"
#include "ntdsb_provider.h"

static ntdsb_provider P;
static int npass, nfail;
static char root[4096];

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond)                                                                    \
            npass++;                                                                 \
        else {                                                                       \
            nfail++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                            \
    } while (0)

static void check_hr(HRESULT got, HRESULT want, const char *expr, int line)
{
    if (got == want) {
        npass++;
        return;
    }
    nfail++;
    fprintf(stderr, "FAIL %s:%d: %s = 0x%08X (%s), want 0x%08X (%s)\n", __FILE__, line, expr,
            (unsigned)got, ntdsb_hresult_name(got) ? ntdsb_hresult_name(got) : "?",
            (unsigned)want, ntdsb_hresult_name(want) ? ntdsb_hresult_name(want) : "?");
}
#define CHECK_HR(expr, want) check_hr((expr), (HRESULT)(want), #expr, __LINE__)

/* ---- helpers ----------------------------------------------------------- */

/* UTF-8 -> UTF-16 strings, freed at exit (valgrind-clean). */
static WCHAR *wpool[8192];
static size_t nwpool;
static pthread_mutex_t wpool_mu = PTHREAD_MUTEX_INITIALIZER;

static WCHAR *W(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    WCHAR *w = calloc(strlen(s) + 1, sizeof *w), *o = w;

    while (*p) {
        uint32_t c = *p;
        if (c < 0x80) {
            p += 1;
        } else if ((c & 0xE0) == 0xC0) {
            c = (c & 0x1F) << 6 | (p[1] & 0x3F);
            p += 2;
        } else if ((c & 0xF0) == 0xE0) {
            c = (c & 0x0F) << 12 | (p[1] & 0x3F) << 6 | (p[2] & 0x3F);
            p += 3;
        } else {
            c = (c & 0x07) << 18 | (p[1] & 0x3F) << 12 | (p[2] & 0x3F) << 6 | (p[3] & 0x3F);
            p += 4;
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            *o++ = (WCHAR)(0xD800 + (c >> 10));
            *o++ = (WCHAR)(0xDC00 + (c & 0x3FF));
        } else {
            *o++ = (WCHAR)c;
        }
    }
    pthread_mutex_lock(&wpool_mu);
    if (nwpool < sizeof wpool / sizeof wpool[0])
        wpool[nwpool++] = w;
    else
        fprintf(stderr, "test_emu: W() pool full, leaking\n");
    pthread_mutex_unlock(&wpool_mu);
    return w;
}

static char *pathf(const char *fmt, ...)
{
    static __thread char buf[8][4096];
    static __thread int k;
    char *b = buf[k++ % 8];
    va_list ap;
    int n = snprintf(b, 4096, "%s/", root);

    va_start(ap, fmt);
    vsnprintf(b + n, 4096 - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    close(fd);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long n;

    *len = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p)
{
    nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define DIT_SIZE (5 * 8192 + 1234)
#define LOG_SIZE 8192

static void make_log(uint8_t *b, uint32_t gen)
{
    memset(b, 0, LOG_SIZE);
    put32(b + 4, gen);
    b[8] = 0x00, b[9] = 0x10; /* cbSec 4096 */
    /* tmCreate: 10:20:30 on day `gen` of March 2020 */
    b[16] = 30, b[17] = 20, b[18] = 10, b[19] = (uint8_t)gen, b[20] = 3, b[21] = 120, b[22] = 1;
    if (gen > 1)
        b[24] = 30, b[25] = 20, b[26] = 10, b[27] = (uint8_t)(gen - 1), b[28] = 3, b[29] = 120,
        b[30] = 1;
    memset(b + 44, 0x5A, 28); /* signLog */
    memset(b + 4096 + 100, 0x77, 200); /* "records" beyond the header */
    put32(b, ntdsb_ese_header_checksum(b, 4096));
}

/* A DC folder: dc.conf, mode, NTDS/ with ntds.dit, edb.chk (checkpoint gen
 * 3), closed logs 1..5 and edb.log of generation 6. */
static void make_dc(const char *folder, const char *conf)
{
    uint8_t *b = malloc(DIT_SIZE);
    uint32_t g;
    size_t i;

    rm_rf(pathf("%s", folder));
    mkdir(pathf("%s", folder), 0755);
    mkdir(pathf("%s/NTDS", folder), 0755);
    write_file(pathf("%s/dc.conf", folder), conf, strlen(conf));
    for (i = 0; i < DIT_SIZE; i++)
        b[i] = (uint8_t)(i * 7 + 13 + i / 8192);
    for (i = 24; i < 52; i++)
        b[i] = (uint8_t)(0xA0 + i);
    write_file(pathf("%s/NTDS/ntds.dit", folder), b, DIT_SIZE);
    memset(b, 0, 8192);
    put32(b + 16, 3);
    put32(b, ntdsb_ese_header_checksum(b, 4096));
    memcpy(b + 4096, b, 4096);
    write_file(pathf("%s/NTDS/edb.chk", folder), b, 8192);
    for (g = 1; g <= 6; g++) {
        make_log(b, g);
        if (g < 6)
            write_file(pathf("%s/NTDS/edb%05X.log", folder, g), b, LOG_SIZE);
        else
            write_file(pathf("%s/NTDS/edb.log", folder), b, LOG_SIZE);
    }
    free(b);
}

static void set_mode(const char *folder, const char *mode)
{
    write_file(pathf("%s/mode", folder), mode, strlen(mode));
}

static void set_conf(const char *folder, const char *conf)
{
    write_file(pathf("%s/dc.conf", folder), conf, strlen(conf));
}

/* Parse a §6 list; returns the entry count or -1 when malformed.  Checks
 * that *pcbSize is the whole buffer, final NUL included. */
static int parse_list(const WCHAR *l, DWORD cb, int bft[], char paths[][512], int max)
{
    size_t i = 0, units = cb / 2;
    int n = 0;

    if (!l || cb % 2)
        return -1;
    while (i < units && l[i] != 0) {
        size_t o = 0;
        if (n >= max)
            return -1;
        bft[n] = l[i++];
        while (i < units && l[i] != 0) {
            WCHAR c = l[i++];
            if (c < 0x80) {
                paths[n][o++] = (char)c;
            } else if (c < 0x800) {
                paths[n][o++] = (char)(0xC0 | (c >> 6));
                paths[n][o++] = (char)(0x80 | (c & 0x3F));
            } else {
                paths[n][o++] = (char)(0xE0 | (c >> 12));
                paths[n][o++] = (char)(0x80 | ((c >> 6) & 0x3F));
                paths[n][o++] = (char)(0x80 | (c & 0x3F));
            }
            if (o > 500)
                return -1;
        }
        paths[n][o] = 0;
        if (i >= units)
            return -1; /* entry not terminated */
        i++;
        n++;
    }
    /* i is at the final NUL: it must be the last unit. */
    if (i + 1 != units || l[i] != 0)
        return -1;
    return n;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 0x811C9DC5u;
    while (n--) {
        h ^= *p++;
        h *= 0x01000193u;
    }
    return h;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *CONF_DC01 = "# test DC\nformat=1\nname=DC01\ndomain=CORP\ntombstone_days=180\n"
                               "future_key=ignored\n\n";

/* Read a whole open file through DsBackupRead; returns bytes, -1 on error. */
static long read_all(HBC h, uint8_t *out, size_t cap, DWORD cb, HRESULT *last)
{
    uint8_t *buf = malloc(cb);
    long total = 0;
    HRESULT hr;

    for (;;) {
        DWORD got = 12345;
        hr = P.BackupRead(h, buf, cb, &got);
        if (hr != 0) {
            if (got != 0)
                total = -1;
            break;
        }
        if (got == 0 || got > cb || (size_t)total + got > cap) {
            total = -1;
            hr = -1;
            break;
        }
        memcpy(out + total, buf, got);
        total += got;
    }
    free(buf);
    *last = hr;
    return total;
}

/* ---- tests ------------------------------------------------------------- */

static void test_server_names(void)
{
    BOOL on = 7;

    CHECK_HR(P.IsNTDSOnlineW(W("\\\\DC01"), NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.IsNTDSOnlineW(NULL, &on), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.IsNTDSOnlineW(W("\\\\DC01"), &on), 0);
    CHECK(on == TRUE);
    CHECK_HR(P.IsNTDSOnlineW(W("DC01"), &on), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("\\\\dc01"), &on), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DC_01"), &on), RPC_S_INVALID_BINDING);
    CHECK_HR(P.IsNTDSOnlineW(W(""), &on), RPC_S_INVALID_BINDING);
    CHECK_HR(P.IsNTDSOnlineW(W("\\\\"), &on), RPC_S_INVALID_BINDING);
    CHECK_HR(P.IsNTDSOnlineW(W("\\\\DC01\\x"), &on), RPC_S_INVALID_BINDING);
    CHECK_HR(P.IsNTDSOnlineW(W(".."), &on), RPC_S_INVALID_BINDING);
    CHECK_HR(P.IsNTDSOnlineW(W("a/b"), &on), RPC_S_INVALID_BINDING);
    {
        WCHAR lone[] = {'D', 0xD800, 'C', 0};
        CHECK_HR(P.IsNTDSOnlineW(lone, &on), RPC_S_INVALID_BINDING);
    }
    CHECK_HR(P.IsNTDSOnlineW(W("\\\\NOPE"), &on), hrCouldNotConnect);
    /* A folder without dc.conf is not a DC. */
    mkdir(pathf("EMPTY"), 0755);
    CHECK_HR(P.IsNTDSOnlineW(W("EMPTY"), &on), hrCouldNotConnect);
    /* format other than 1: refuse rather than half-understand. */
    make_dc("DCFMT", "format=2\n");
    CHECK_HR(P.IsNTDSOnlineW(W("DCFMT"), &on), hrCouldNotConnect);
    /* Non-ASCII server name; the folder is UTF-8; ASCII folding only. */
    make_dc("DCÜ01", "format=1\ndomain=CORP\n");
    CHECK_HR(P.IsNTDSOnlineW(W("\\\\DCÜ01"), &on), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("dcÜ01"), &on), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("dcü01"), &on), hrCouldNotConnect);
    set_mode("DC01", "dsrm\n");
    CHECK_HR(P.IsNTDSOnlineW(W("DC01"), &on), 0);
    CHECK(on == FALSE);
    set_mode("DC01", "online\n");
    CHECK_HR(P.IsNTDSOnlineW(W("DC01"), &on), 0);
    CHECK(on == TRUE);
    unlink(pathf("DC01/mode"));
}

static void test_prepare_errors(void)
{
    PVOID tok = (PVOID)1;
    DWORD cb = 1;
    HBC h = (HBC)1;

    CHECK_HR(P.BackupPrepareW(W("DC01"), 1, BACKUP_TYPE_FULL, &tok, &cb, &h), ERROR_INVALID_PARAMETER);
    CHECK(h == NULL && tok == NULL && cb == 0);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_LOGS_ONLY, &tok, &cb, &h),
             ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_INCREMENTAL, &tok, &cb, &h),
             ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, 0, &tok, &cb, &h), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, &cb, NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, NULL, &cb, &h), hrInvalidParam);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, NULL, &h), hrInvalidParam);
    CHECK_HR(P.BackupPrepareW(W("DC_1"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), RPC_S_INVALID_BINDING);
    CHECK_HR(P.BackupPrepareW(W("NOPE"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), hrCouldNotConnect);
    set_mode("DC01", "dsrm");
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), hrCouldNotConnect);
    CHECK(h == NULL);
    set_mode("DC01", "online");
}

static void test_bad_handles(void)
{
    int local;
    HBC bogus[] = {NULL, (HBC)&local, (HBC)(uintptr_t)0x10};
    size_t i;
    LPWSTR l = NULL;
    DWORD cb = 0;
    LARGE_INTEGER sz = 0;
    uint8_t buf[24576];

    for (i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
        HBC b = bogus[i];
        CHECK_HR(P.BackupGetDatabaseNamesW(b, &l, &cb), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.BackupOpenFileW(b, W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 24576, &sz),
                 ERROR_INVALID_PARAMETER);
        CHECK_HR(P.BackupRead(b, buf, sizeof buf, &cb), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.BackupClose(b), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.BackupGetBackupLogsW(b, &l, &cb), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.BackupTruncateLogs(b), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.BackupEnd(b), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.RestoreGetDatabaseLocationsW(b, &l, &cb), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.RestoreRegisterW(b, W("x"), W("x"), NULL, 0, W("x"), 0, 0), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.RestoreRegisterComplete(b, 0), ERROR_INVALID_PARAMETER);
        CHECK_HR(P.RestoreEnd(b), ERROR_INVALID_PARAMETER);
    }
    CHECK(l == NULL);
    /* DsBackupFree: NULL and foreign pointers are no-ops. */
    P.BackupFree(NULL);
    P.BackupFree(&local);
    npass++;
}

static void test_full_backup(void)
{
    PVOID tok = NULL, tok2 = NULL;
    DWORD cbtok = 0, cb = 0, cbtok2 = 0;
    HBC h = NULL, h2 = NULL;
    LPWSTR list = NULL, junk = (LPWSTR)1;
    int bft[16], n;
    char paths[16][512];
    LARGE_INTEGER sz = -1;
    uint8_t *out = malloc(1 << 20), rbuf[32768];
    unsigned char *dit, *oldlog, *newlog, *closed;
    size_t ditlen, oldlen, newlen, closedlen;
    HRESULT last;
    long got;
    DWORD rd;
    uint32_t g;
    time_t t0 = time(NULL);

    dit = read_file(pathf("DC01/NTDS/ntds.dit"), &ditlen);
    oldlog = read_file(pathf("DC01/NTDS/edb.log"), &oldlen);

    CHECK_HR(P.BackupPrepareW(W("\\\\DC01"), 0, BACKUP_TYPE_FULL, &tok, &cbtok, &h), 0);
    CHECK(h != NULL && tok != NULL && cbtok == 64);
    if (!h) {
        free(out);
        return;
    }
    /* Token v1. */
    {
        const uint8_t *t = tok;
        int64_t when = (int64_t)((uint64_t)get32(t + 16) | (uint64_t)get32(t + 20) << 32);
        CHECK(memcmp(t, "NTDSBEXP", 8) == 0);
        CHECK(get32(t + 8) == 1 && get32(t + 12) == 64);
        CHECK(when >= t0 && when <= time(NULL));
        CHECK(get32(t + 24) == 180 && get32(t + 28) == 0);
        CHECK(memcmp(t + 32, dit + 24, 28) == 0);
        CHECK(get32(t + 60) == fnv1a(t, 60));
    }
    /* One backup per DC at a time. */
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok2, &cbtok2, &h2), hrBackupInProgress);
    CHECK(h2 == NULL && tok2 == NULL);

    /* Database names: argument rules, then the exact list. */
    CHECK_HR(P.BackupGetDatabaseNamesW(h, NULL, &cb), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupGetDatabaseNamesW(h, &list, NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupGetDatabaseNamesW(h, &junk, &cb), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupGetDatabaseNamesW(h, &list, &cb), 0);
    n = parse_list(list, cb, bft, paths, 16);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(bft[0] == BFT_NTDS_DATABASE);
        CHECK(strcmp(paths[0], "\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit") == 0);
        CHECK(cb == 2 * (1 + strlen(paths[0]) + 1 + 1));
    }
    P.BackupFree(list);
    list = NULL;

    /* Open: argument and path rules. */
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 8192, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 24577, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 0, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, NULL, 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 24576, NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("D\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\..\\dc.conf"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS/ntds.dit"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDSX\\ntds.dit"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC02\\C$\\Windows\\NTDS\\ntds.dit"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("C:\\Windows\\NTDS\\ntds.dit"), 24576, &sz), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\nope.dit"), 24576, &sz), hrFileNotFound);
    /* Read/Close with nothing open. */
    CHECK_HR(P.BackupRead(h, rbuf, 24576, &rd), hrInvalidHandle);
    CHECK_HR(P.BackupClose(h), hrInvalidHandle);
    /* Case-insensitive prefix and file name. */
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\dc01\\c$\\windows\\ntds\\NTDS.DIT"), 32768, &sz), 0);
    CHECK(sz == DIT_SIZE);
    CHECK_HR(P.BackupOpenFileW(h, W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit"), 24576, &sz), hrAlreadyOpen);
    CHECK_HR(P.BackupRead(h, rbuf, 8192, &rd), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupRead(h, rbuf, 24576 + 4096, &rd), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupRead(h, NULL, 24576, &rd), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupRead(h, rbuf, 24576, NULL), ERROR_INVALID_PARAMETER);
    /* Truncate before the logs were listed: out of sequence. */
    CHECK_HR(P.BackupTruncateLogs(h), hrInvalidBackupSequence);
    got = read_all(h, out, 1 << 20, 24576, &last);
    CHECK(got == DIT_SIZE && last == ERROR_HANDLE_EOF);
    CHECK(got == DIT_SIZE && memcmp(out, dit, DIT_SIZE) == 0);
    rd = 99;
    CHECK_HR(P.BackupRead(h, rbuf, 24576, &rd), ERROR_HANDLE_EOF);
    CHECK(rd == 0);
    CHECK_HR(P.BackupClose(h), 0);
    CHECK_HR(P.BackupClose(h), hrInvalidHandle);

    /* Backup logs: closes edb.log (gen 6) and lists 3..6. */
    CHECK_HR(P.BackupGetBackupLogsW(h, &junk, &cb), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), 0);
    n = parse_list(list, cb, bft, paths, 16);
    CHECK(n == 4);
    for (g = 3; n == 4 && g <= 6; g++) {
        char want[128];
        snprintf(want, sizeof want, "\\\\DC01\\C$\\Windows\\NTDS\\edb%05X.log", g);
        CHECK(bft[g - 3] == BFT_LOG);
        CHECK(strcmp(paths[g - 3], want) == 0);
    }
    closed = read_file(pathf("DC01/NTDS/edb00006.log"), &closedlen);
    newlog = read_file(pathf("DC01/NTDS/edb.log"), &newlen);
    CHECK(closed && closedlen == oldlen && memcmp(closed, oldlog, oldlen) == 0);
    CHECK(newlog && newlen == oldlen);
    if (newlog && newlen == LOG_SIZE) {
        struct tm tm;
        time_t now = time(NULL);
        size_t i;
        int zero = 1;
        gmtime_r(&now, &tm);
        CHECK(get32(newlog + 4) == 7);
        CHECK(get32(newlog) == ntdsb_ese_header_checksum(newlog, 4096));
        CHECK(memcmp(newlog + 24, oldlog + 16, 8) == 0); /* tmPrevGen = old tmCreate */
        CHECK(newlog[21] == (uint8_t)tm.tm_year && newlog[20] == tm.tm_mon + 1);
        CHECK(memcmp(newlog + 44, oldlog + 44, 4096 - 44) == 0); /* rest of header kept */
        for (i = 4096; i < LOG_SIZE; i++)
            zero &= newlog[i] == 0;
        CHECK(zero);
    }
    free(closed);
    free(newlog);
    /* Stream every listed log. */
    for (g = 0; n == 4 && g < 4; g++) {
        unsigned char *want;
        size_t wl;
        want = read_file(pathf("DC01/NTDS/edb%05X.log", g + 3), &wl);
        CHECK_HR(P.BackupOpenFileW(h, W(paths[g]), 24576, &sz), 0);
        CHECK(sz == (LARGE_INTEGER)wl);
        got = read_all(h, out, 1 << 20, 24576, &last);
        CHECK(got == (long)wl && want && memcmp(out, want, wl) == 0);
        if (g == 0)
            CHECK_HR(P.BackupTruncateLogs(h), hrInvalidBackupSequence); /* file open */
        CHECK_HR(P.BackupClose(h), 0);
        free(want);
    }
    P.BackupFree(list);
    list = NULL;
    /* Locations with a backup handle (2000 SDK). */
    CHECK_HR(P.RestoreGetDatabaseLocationsW(h, &list, &cb), 0);
    CHECK(parse_list(list, cb, bft, paths, 16) == 3);
    P.BackupFree(list);
    list = NULL;
    /* Wrong kind. */
    CHECK_HR(P.RestoreRegisterW(h, W("x"), W("x"), NULL, 0, W("x"), 0, 0), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterComplete(h, 0), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreEnd(h), ERROR_INVALID_PARAMETER);

    CHECK_HR(P.BackupTruncateLogs(h), 0);
    CHECK(!file_exists(pathf("DC01/NTDS/edb00001.log")));
    CHECK(!file_exists(pathf("DC01/NTDS/edb00002.log")));
    for (g = 3; g <= 6; g++)
        CHECK(file_exists(pathf("DC01/NTDS/edb%05X.log", g)));
    CHECK(file_exists(pathf("DC01/NTDS/edb.log")));
    CHECK_HR(P.BackupTruncateLogs(h), 0); /* idempotent */

    CHECK_HR(P.BackupEnd(h), 0);
    CHECK_HR(P.BackupEnd(h), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupClose(h), ERROR_INVALID_PARAMETER);
    P.BackupFree(tok);
    P.BackupFree(tok); /* second free of the same pointer: ignored */

    /* The lock went with End: a new backup starts and lists 3..7. */
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, &cbtok, &h), 0);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), 0);
    n = parse_list(list, cb, bft, paths, 16);
    CHECK(n == 5 && strstr(paths[n - 1], "edb00007.log") != NULL);
    P.BackupFree(list);
    CHECK_HR(P.BackupEnd(h), 0);
    P.BackupFree(tok);
    free(dit);
    free(oldlog);
    free(out);
}

static void test_log_errors(void)
{
    PVOID tok;
    DWORD cbtok, cb;
    HBC h;
    LPWSTR list = NULL;
    uint8_t b[LOG_SIZE];
    unsigned char *before, *after;
    size_t lb, la;
    int bft[16], n;
    char paths[16][512];

    make_dc("DCL", "format=1\nname=DCL\n");
    /* Missing generation 4 between checkpoint 3 and edb.log: refused, and
     * nothing is rolled. */
    unlink(pathf("DCL/NTDS/edb00004.log"));
    before = read_file(pathf("DCL/NTDS/edb.log"), &lb);
    CHECK_HR(P.BackupPrepareW(W("DCL"), 0, BACKUP_TYPE_FULL, &tok, &cbtok, &h), 0);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), hrMissingLogFile);
    after = read_file(pathf("DCL/NTDS/edb.log"), &la);
    CHECK(la == lb && memcmp(before, after, lb) == 0 && !file_exists(pathf("DCL/NTDS/edb00006.log")));
    free(before);
    free(after);
    /* Corrupt header checksum. */
    make_log(b, 4);
    write_file(pathf("DCL/NTDS/edb00004.log"), b, LOG_SIZE);
    make_log(b, 6);
    b[100] ^= 1;
    write_file(pathf("DCL/NTDS/edb.log"), b, LOG_SIZE);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), hrLogFileCorrupt);
    /* Missing edb.log. */
    unlink(pathf("DCL/NTDS/edb.log"));
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), hrMissingLogFile);
    /* The closed generation already exists: never overwritten. */
    make_log(b, 5);
    write_file(pathf("DCL/NTDS/edb.log"), b, LOG_SIZE);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), hrInvalidLogSequence);
    CHECK(file_exists(pathf("DCL/NTDS/edb.log")) && !file_exists(pathf("DCL/NTDS/edb.log.roll")));
    CHECK(list == NULL);
    CHECK_HR(P.BackupTruncateLogs(h), hrInvalidBackupSequence);
    /* Without edb.chk: from the lowest closed generation. */
    make_log(b, 6);
    write_file(pathf("DCL/NTDS/edb.log"), b, LOG_SIZE);
    unlink(pathf("DCL/NTDS/edb.chk"));
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), 0);
    n = parse_list(list, cb, bft, paths, 16);
    CHECK(n == 6 && strstr(paths[0], "edb00001.log") && strstr(paths[5], "edb00006.log"));
    P.BackupFree(list);
    CHECK_HR(P.BackupTruncateLogs(h), 0);
    CHECK(file_exists(pathf("DCL/NTDS/edb00001.log"))); /* nothing below gen 1 */
    CHECK_HR(P.BackupEnd(h), 0);
    P.BackupFree(tok);
}

static void test_restore(void)
{
    PVOID tok = NULL;
    DWORD cbtok = 0, cb = 0;
    HBC hb = NULL, hr1 = NULL, hr2 = NULL, hx = (HBC)1;
    LPWSTR list = NULL;
    int bft[8], n;
    char paths[8][512];
    uint8_t bad[64];
    unsigned char *st;
    size_t stl;
    EDB_RSTMAPW map[1];
    const char *dir = "\\\\DC02\\C$\\Windows\\NTDS";
    WCHAR *wd = W(dir);
    char conf_exp[256];

    make_dc("DC02", "format=1\nname=DC02\ndomain=CORP\ntombstone_days=180\n");
    CHECK_HR(P.BackupPrepareW(W("DC02"), 0, BACKUP_TYPE_FULL, &tok, &cbtok, &hb), 0);
    CHECK_HR(P.BackupEnd(hb), 0);

    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, cbtok, &hx), hrError); /* DS online */
    CHECK(hx == NULL);
    set_mode("DC02", "dsrm\n");
    CHECK_HR(P.RestorePrepareW(W("DC02"), RESTORE_TYPE_AUTHORATATIVE, tok, cbtok, &hx), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestorePrepareW(W("DC02"), RESTORE_TYPE_ONLINE, tok, cbtok, &hx), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, cbtok, NULL), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestorePrepareW(W("DC_2"), 0, tok, cbtok, &hx), RPC_S_INVALID_BINDING);
    CHECK_HR(P.RestorePrepareW(W("NOPE"), 0, tok, cbtok, &hx), hrCouldNotConnect);
    /* Token errors. */
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, NULL, 64, &hx), hrMissingExpiryToken);
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, 0, &hx), hrMissingExpiryToken);
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, 63, &hx), hrUnknownExpiryTokenFormat);
    memcpy(bad, tok, 64);
    bad[17] ^= 1; /* time changed, check word not updated */
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, bad, 64, &hx), hrUnknownExpiryTokenFormat);
    memcpy(bad, tok, 64);
    bad[0] = 'X';
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, bad, 64, &hx), hrUnknownExpiryTokenFormat);
    /* Expired: 181 days later; the token's own lifetime (180) decides even
     * though the DC now says 365. */
    set_conf("DC02", "format=1\nname=DC02\ntombstone_days=365\nclock_offset=15638400\n");
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, cbtok, &hx), hrContentsExpired);
    set_conf("DC02", "format=1\nname=DC02\ntombstone_days=365\nclock_offset=15465600\n"); /* 179 days */
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, cbtok, &hr1), 0);
    CHECK_HR(P.RestoreEnd(hr1), 0);
    set_conf("DC02", "format=1\nname=DC02\ndomain=CORP\n");

    /* Restricted handle (no token): locations only. */
    CHECK_HR(P.RestorePrepareW(W("DC02"), RESTORE_TYPE_CATCHUP, NULL, 0, &hr1), 0);
    CHECK_HR(P.RestoreGetDatabaseLocationsW(hr1, &list, &cb), 0);
    n = parse_list(list, cb, bft, paths, 8);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(bft[0] == BFT_CHECKPOINT_DIR && strcmp(paths[0], dir) == 0);
        CHECK(bft[1] == BFT_LOG_DIR && strcmp(paths[1], dir) == 0);
        CHECK(bft[2] == BFT_NTDS_DATABASE && strcmp(paths[2], "\\\\DC02\\C$\\Windows\\NTDS\\ntds.dit") == 0);
    }
    P.BackupFree(list);
    list = NULL;
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, 0, wd, 3, 7), hrMissingExpiryToken);
    CHECK_HR(P.RestoreRegisterComplete(hr1, 0), hrInvalidBackupSequence);
    CHECK_HR(P.BackupEnd(hr1), ERROR_INVALID_PARAMETER); /* wrong kind */
    CHECK_HR(P.BackupRead(hr1, bad, 24576, &cb), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreEnd(hr1), 0);
    CHECK_HR(P.RestoreEnd(hr1), ERROR_INVALID_PARAMETER);

    /* Full handle. */
    CHECK_HR(P.RestorePrepareW(W("\\\\DC02"), 0, tok, cbtok, &hr1), 0);
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, cbtok, &hr2), 0);
    CHECK_HR(P.RestoreRegisterComplete(hr1, 0), hrInvalidBackupSequence);
    CHECK_HR(P.RestoreRegisterW(hr1, NULL, wd, NULL, 0, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, NULL, NULL, 0, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, 0, NULL, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, W("\\\\DC01\\C$\\Windows\\NTDS"), wd, NULL, 0, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, W("C:\\Windows\\NTDS"), NULL, 0, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, -1, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, 1, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, 0, wd, 8, 7), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, 0, wd, 3, 0x100000), ERROR_INVALID_PARAMETER);
    map[0].wszDatabaseName = W("x|y");
    map[0].wszNewDatabaseName = W("z");
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, map, 1, wd, 3, 7), ERROR_INVALID_PARAMETER);
    map[0].wszDatabaseName = NULL;
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, map, 1, wd, 3, 7), ERROR_INVALID_PARAMETER);
    CHECK(!file_exists(pathf("DC02/restore.state")));
    map[0].wszDatabaseName = W("C:\\Windows\\NTDS\\ntds.dit");
    map[0].wszNewDatabaseName = W("C:\\Windows\\NTDS\\ntds.dit");
    /* Trailing backslash and case differences are the same directory. */
    CHECK_HR(P.RestoreRegisterW(hr1, wd, W("\\\\dc02\\c$\\windows\\ntds\\"), map, 1, wd, 3, 0xFFFFF), 0);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, map, 1, wd, 3, 7), hrRestoreInProgress);
    CHECK_HR(P.RestoreRegisterW(hr2, wd, wd, map, 1, wd, 3, 7), hrRestoreInProgress);
    st = read_file(pathf("DC02/restore.state"), &stl);
    CHECK(st != NULL);
    if (st) {
        snprintf(conf_exp, sizeof conf_exp,
                 "state=registered\nhr=0x00000000\ncheckpoint_dir=%s\nlog_dir=\\\\dc02\\c$\\windows\\ntds\\\n"
                 "backup_log_dir=%s\ngen_low=3\ngen_high=1048575\n"
                 "map=C:\\Windows\\NTDS\\ntds.dit|C:\\Windows\\NTDS\\ntds.dit\nregistered_at=",
                 dir, dir);
        CHECK(strncmp((char *)st, conf_exp, strlen(conf_exp)) == 0);
        CHECK(strstr((char *)st, "\ncompleted_at=0\n") != NULL);
        free(st);
    }
    CHECK_HR(P.RestoreRegisterComplete(hr1, (HRESULT)0xC8000226u), 0);
    CHECK_HR(P.RestoreRegisterComplete(hr1, 0), hrInvalidBackupSequence);
    st = read_file(pathf("DC02/restore.state"), &stl);
    CHECK(st && strncmp((char *)st, "state=complete\nhr=0xC8000226\n", 29) == 0);
    CHECK(st && strstr((char *)st, "\ncompleted_at=0\n") == NULL && strstr((char *)st, "\ncompleted_at=") != NULL);
    free(st);
    CHECK_HR(P.RestoreEnd(hr1), 0);
    /* The lock went with End. */
    CHECK_HR(P.RestoreRegisterW(hr2, wd, wd, NULL, 0, wd, 1, 1), 0);
    st = read_file(pathf("DC02/restore.state"), &stl);
    CHECK(st && strncmp((char *)st, "state=registered\n", 17) == 0 && !strstr((char *)st, "map="));
    free(st);
    CHECK_HR(P.RestoreEnd(hr2), 0);
    /* Never completed: stays "registered". */
    st = read_file(pathf("DC02/restore.state"), &stl);
    CHECK(st && strncmp((char *)st, "state=registered\n", 17) == 0);
    free(st);

    /* fault_register_hr. */
    set_conf("DC02", "format=1\nname=DC02\nfault_register_hr=0xC7FF000D\n");
    unlink(pathf("DC02/restore.state"));
    CHECK_HR(P.RestorePrepareW(W("DC02"), 0, tok, cbtok, &hr1), 0);
    CHECK_HR(P.RestoreRegisterW(hr1, wd, wd, NULL, 0, wd, 1, 2), hrCommunicationError);
    CHECK(!file_exists(pathf("DC02/restore.state")));
    CHECK_HR(P.RestoreEnd(hr1), 0);
    P.BackupFree(tok);
}

static char salt_hex[] = "00112233445566778899aabbccddeeff";

static void account_line(char *out, size_t n, const char *who, const char *privs, const char *pw)
{
    uint8_t salt[16], h[32];
    char hex[65];
    int i;

    for (i = 0; i < 16; i++)
        salt[i] = (uint8_t)(i * 0x11);
    PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, 16, 1000, EVP_sha256(), 32, h);
    for (i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", h[i]);
    snprintf(out, n, "account=%s:%s:1000:%s:%s\n", who, privs, salt_hex, hex);
}

static void test_auth(void)
{
    char conf[2048], line[256];
    BOOL on;
    PVOID tok;
    DWORD cb;
    HBC h;

    snprintf(conf, sizeof conf, "format=1\nname=DCA\ndomain=CORP\ndefault_privileges=\n");
    account_line(line, sizeof line, "CORP\\alice", "backup", "S3cret-ü");
    strcat(conf, line);
    account_line(line, sizeof line, "CORP\\root", "backup, restore ,admin", "toor");
    strcat(conf, line);
    account_line(line, sizeof line, "bob", "restore", "pw");
    strcat(conf, line);
    strcat(conf, "account=broken:line\n");
    make_dc("DCA", conf);

    /* Process identity: default_privileges is empty. */
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), 0);
    CHECK_HR(P.BackupPrepareW(W("DCA"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), ERROR_ACCESS_DENIED);
    CHECK_HR(P.SetCurrentBackupLogW(W("DCA"), 1), ERROR_ACCESS_DENIED);

    CHECK_HR(P.SetAuthIdentityW(W("alice"), W("CORP"), W("S3cret-ü")), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), 0);
    CHECK_HR(P.BackupPrepareW(W("DCA"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), 0);
    CHECK_HR(P.BackupEnd(h), 0);
    P.BackupFree(tok);
    CHECK_HR(P.SetAuthIdentityW(W("ALICE"), W("corp"), W("S3cret-ü")), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), 0);
    CHECK_HR(P.SetAuthIdentityW(W("CORP\\alice"), NULL, W("S3cret-ü")), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), 0);
    CHECK_HR(P.SetAuthIdentityW(W("alice"), W("CORP"), W("S3CRET-ü")), 0); /* stored, not checked */
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), ERROR_ACCESS_DENIED);
    CHECK_HR(P.SetAuthIdentityW(W("alice"), W("OTHER"), W("S3cret-ü")), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), ERROR_ACCESS_DENIED);
    CHECK_HR(P.SetAuthIdentityW(W("mallory"), W("CORP"), W("x")), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DCA"), &on), ERROR_ACCESS_DENIED);

    set_mode("DCA", "dsrm");
    CHECK_HR(P.SetAuthIdentityW(W("alice"), W("CORP"), W("S3cret-ü")), 0);
    CHECK_HR(P.RestorePrepareW(W("DCA"), 0, NULL, 0, &h), ERROR_ACCESS_DENIED);
    CHECK_HR(P.SetAuthIdentityW(W("bob"), NULL, W("pw")), 0); /* account without domain */
    CHECK_HR(P.RestorePrepareW(W("DCA"), 0, NULL, 0, &h), ERROR_ACCESS_DENIED); /* not admin */
    CHECK_HR(P.SetCurrentBackupLogW(W("DCA"), 5), 0);
    CHECK_HR(P.SetAuthIdentityW(W("root"), W("corp"), W("toor")), 0);
    CHECK_HR(P.RestorePrepareW(W("DCA"), 0, NULL, 0, &h), 0);
    CHECK_HR(P.RestoreEnd(h), 0);
    CHECK_HR(P.SetAuthIdentityW(NULL, NULL, NULL), 0); /* back to the process identity */
    CHECK_HR(P.RestorePrepareW(W("DCA"), 0, NULL, 0, &h), ERROR_ACCESS_DENIED);
    {
        WCHAR lone[] = {'a', 0xDC00, 0};
        CHECK_HR(P.SetAuthIdentityW(lone, W("CORP"), W("x")), ERROR_INVALID_PARAMETER);
    }
}

static void test_set_current_log(void)
{
    unsigned char *s;
    size_t n;

    CHECK_HR(P.SetCurrentBackupLogW(W("DC01"), 42), 0);
    s = read_file(pathf("DC01/current_backup_log"), &n);
    CHECK(s && strcmp((char *)s, "42\n") == 0);
    free(s);
    CHECK_HR(P.SetCurrentBackupLogW(W("\\\\DC01"), BACKUP_DISABLE_INCREMENTAL), 0);
    s = read_file(pathf("DC01/current_backup_log"), &n);
    CHECK(s && strcmp((char *)s, "4294967295\n") == 0);
    free(s);
    CHECK_HR(P.SetCurrentBackupLogW(W("DC_01"), 1), RPC_S_INVALID_BINDING);
    CHECK_HR(P.SetCurrentBackupLogW(W("NOPE"), 1), hrCouldNotConnect);
    CHECK_HR(P.SetCurrentBackupLogW(NULL, 1), ERROR_INVALID_PARAMETER);
}

static HBC open_dit(const char *dc, PVOID *tok)
{
    DWORD cb;
    HBC h = NULL;
    LARGE_INTEGER sz;
    char p[128];

    CHECK_HR(P.BackupPrepareW(W(dc), 0, BACKUP_TYPE_FULL, tok, &cb, &h), 0);
    snprintf(p, sizeof p, "\\\\%s\\C$\\Windows\\NTDS\\ntds.dit", dc);
    if (h)
        CHECK_HR(P.BackupOpenFileW(h, W(p), 24576, &sz), 0);
    return h;
}

static void end_dit(HBC h, PVOID tok)
{
    CHECK_HR(P.BackupEnd(h), 0);
    P.BackupFree(tok);
}

static void test_faults(void)
{
    uint8_t buf[65536], *out = malloc(1 << 20);
    unsigned char *dit, *m;
    size_t ditlen, ml;
    DWORD rd, counts[2][8];
    PVOID tok;
    HBC h;
    HRESULT last;
    LPWSTR list = NULL;
    DWORD cb;
    BOOL on;
    double t;
    long got;
    int k, i, ok;

    make_dc("DCF", "format=1\nname=DCF\nfault_read_hr=0xC8000404\nfault_read_after=30000\n");
    dit = read_file(pathf("DCF/NTDS/ntds.dit"), &ditlen);
    /* read_after: exactly 30000 bytes, then the fault, again and again,
     * across files. */
    h = open_dit("DCF", &tok);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), 0);
    CHECK(rd == 24576);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), 0);
    CHECK(rd == 30000 - 24576 && memcmp(buf, dit + 24576, rd) == 0);
    rd = 5;
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), (HRESULT)0xC8000404u);
    CHECK(rd == 0);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), (HRESULT)0xC8000404u);
    CHECK_HR(P.BackupClose(h), 0);
    end_dit(h, tok);
    /* Decimal HRESULT, fault before any byte. */
    set_conf("DCF", "format=1\nname=DCF\nfault_read_hr=3355443203\nfault_read_after=0\n");
    h = open_dit("DCF", &tok);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), (HRESULT)0xC8000003u);
    end_dit(h, tok);

    /* short reads: each in 1..N, never 0 before EOF, same sequence on
     * every handle. */
    set_conf("DCF", "format=1\nname=DCF\nfault_short_read=1000\n");
    for (k = 0; k < 2; k++) {
        h = open_dit("DCF", &tok);
        got = 0;
        ok = 1;
        for (i = 0;; i++) {
            HRESULT r = P.BackupRead(h, buf, 24576, &rd);
            if (r == ERROR_HANDLE_EOF)
                break;
            if (r != 0 || rd < 1 || rd > 1000) {
                ok = 0;
                break;
            }
            if (i < 8)
                counts[k][i] = rd;
            memcpy(out + got, buf, rd);
            got += rd;
        }
        CHECK(ok && got == DIT_SIZE && memcmp(out, dit, DIT_SIZE) == 0);
        end_dit(h, tok);
    }
    CHECK(memcmp(counts[0], counts[1], sizeof counts[0]) == 0);
    CHECK(counts[0][0] != counts[0][1] || counts[0][1] != counts[0][2]);

    /* latency: every server or handle call sleeps first. */
    set_conf("DCF", "format=1\nname=DCF\nfault_latency_us=60000\n");
    t = now_s();
    CHECK_HR(P.IsNTDSOnlineW(W("DCF"), &on), 0);
    CHECK(now_s() - t >= 0.055);
    h = open_dit("DCF", &tok);
    t = now_s();
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), 0);
    CHECK(now_s() - t >= 0.055);
    end_dit(h, tok);

    /* bandwidth: 200 kB/s over 42194 bytes >= ~0.16 s (burst 10 kB). */
    set_conf("DCF", "format=1\nname=DCF\nfault_bandwidth=200000\n");
    h = open_dit("DCF", &tok);
    t = now_s();
    got = read_all(h, out, 1 << 20, 65536, &last);
    t = now_s() - t;
    CHECK(got == DIT_SIZE && last == ERROR_HANDLE_EOF);
    CHECK(t >= 0.15 && t < 2.0);
    end_dit(h, tok);

    /* offline_after: 30000 bytes, then the DC is in DSRM. */
    set_conf("DCF", "format=1\nname=DCF\nfault_offline_after=30000\n");
    h = open_dit("DCF", &tok);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), 0);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), 0);
    CHECK(rd == 30000 - 24576);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), hrCommunicationError);
    CHECK(rd == 0);
    m = read_file(pathf("DCF/mode"), &ml);
    CHECK(m && strncmp((char *)m, "dsrm", 4) == 0);
    free(m);
    CHECK_HR(P.IsNTDSOnlineW(W("DCF"), &on), 0);
    CHECK(on == FALSE);
    CHECK_HR(P.BackupRead(h, buf, 24576, &rd), hrCommunicationError);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), hrCommunicationError);
    CHECK_HR(P.BackupClose(h), 0);
    end_dit(h, tok);
    set_mode("DCF", "online");

    /* truncate fault: nothing deleted. */
    set_conf("DCF", "format=1\nname=DCF\nfault_truncate_hr=0xC8000208\n");
    CHECK_HR(P.BackupPrepareW(W("DCF"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), 0);
    CHECK_HR(P.BackupGetBackupLogsW(h, &list, &cb), 0);
    P.BackupFree(list);
    CHECK_HR(P.BackupTruncateLogs(h), hrNoBackup);
    CHECK(file_exists(pathf("DCF/NTDS/edb00001.log")) && file_exists(pathf("DCF/NTDS/edb00002.log")));
    end_dit(h, tok);
    free(dit);
    free(out);
}

static void test_trace(void)
{
    PVOID tok;
    DWORD cb;
    HBC h;
    BOOL on;
    LPWSTR list = NULL;
    unsigned char *log;
    size_t n;
    char want[512];
    unsigned long serial = 0;
    char *p;

    make_dc("DCT", "format=1\nname=DCT\ntrace=1\n");
    CHECK_HR(P.SetAuthIdentityW(NULL, NULL, NULL), 0);
    CHECK_HR(P.IsNTDSOnlineW(W("DCT"), &on), 0);
    CHECK_HR(P.BackupPrepareW(W("DCT"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), 0);
    CHECK_HR(P.BackupGetDatabaseNamesW(h, &list, &cb), 0);
    P.BackupFree(list);
    CHECK_HR(P.BackupClose(h), hrInvalidHandle);
    CHECK_HR(P.RestoreEnd(h), ERROR_INVALID_PARAMETER);
    CHECK_HR(P.BackupEnd(h), 0);
    P.BackupFree(tok);
    log = read_file(pathf("DCT/calls.log"), &n);
    CHECK(log != NULL);
    if (!log)
        return;
    p = strstr((char *)log, " DsBackupPrepareW h=");
    if (p)
        serial = strtoul(p + 20, NULL, 10);
    CHECK(serial > 0);
    snprintf(want, sizeof want,
             "%ld DsIsNTDSOnlineW h=- hr=0x00000000\n"
             "%ld DsBackupPrepareW h=%lu hr=0x00000000\n"
             "%ld DsBackupGetDatabaseNamesW h=%lu hr=0x00000000\n"
             "%ld DsBackupFree h=%lu hr=0x00000000\n"
             "%ld DsBackupClose h=%lu hr=0xC7FF0003\n"
             "%ld DsRestoreEnd h=%lu hr=0x00000057\n"
             "%ld DsBackupEnd h=%lu hr=0x00000000\n"
             "%ld DsBackupFree h=%lu hr=0x00000000\n",
             (long)getpid(), (long)getpid(), serial, (long)getpid(), serial, (long)getpid(), serial,
             (long)getpid(), serial, (long)getpid(), serial, (long)getpid(), serial,
             (long)getpid(), serial);
    CHECK(strcmp((char *)log, want) == 0);
    if (strcmp((char *)log, want) != 0)
        fprintf(stderr, "calls.log:\n%s\nwanted:\n%s\n", log, want);
    free(log);
    /* No trace for DCs without trace=1. */
    CHECK(!file_exists(pathf("DC01/calls.log")));
}

/* ---- threads and processes -------------------------------------------- */

static pthread_barrier_t barrier;

struct prep_arg {
    HRESULT hr;
    HBC h;
    PVOID tok;
};

static void *prep_thread(void *a)
{
    struct prep_arg *p = a;
    DWORD cb;

    pthread_barrier_wait(&barrier);
    p->hr = P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &p->tok, &cb, &p->h);
    return NULL;
}

struct read_arg {
    HBC h;
    long bytes;
    int bad;
};

static void *read_thread(void *a)
{
    struct read_arg *r = a;
    uint8_t *buf = malloc(24576);
    DWORD rd;

    pthread_barrier_wait(&barrier);
    for (;;) {
        HRESULT hr = P.BackupRead(r->h, buf, 24576, &rd);
        if (hr == ERROR_HANDLE_EOF)
            break;
        if (hr != 0) {
            r->bad++;
            break;
        }
        r->bytes += rd;
    }
    free(buf);
    return NULL;
}

/* Keeps reading (reopening at EOF) until the handle is ended under it. */
static void *race_thread(void *a)
{
    struct read_arg *r = a;
    uint8_t *buf = malloc(24576);
    DWORD rd;
    LARGE_INTEGER sz;
    WCHAR *dit = W("\\\\DC01\\C$\\Windows\\NTDS\\ntds.dit");

    pthread_barrier_wait(&barrier);
    for (;;) {
        HRESULT hr = P.BackupRead(r->h, buf, 24576, &rd);
        if (hr == ERROR_HANDLE_EOF) {
            P.BackupClose(r->h);
            hr = P.BackupOpenFileW(r->h, dit, 24576, &sz);
        }
        if (hr == ERROR_INVALID_PARAMETER)
            break;
        if (hr != 0 && hr != ERROR_HANDLE_EOF) {
            r->bad++;
            break;
        }
        r->bytes++;
    }
    free(buf);
    return NULL;
}

struct cycle_arg {
    const char *dc;
    int ok;
};

static void *cycle_thread(void *a)
{
    struct cycle_arg *c = a;
    uint8_t *out = malloc(1 << 20);
    PVOID tok;
    HBC h;
    HRESULT last;
    int i;

    c->ok = 1;
    for (i = 0; i < 5; i++) {
        h = NULL;
        DWORD cb;
        LARGE_INTEGER sz;
        char p[128];
        if (P.BackupPrepareW(W(c->dc), 0, BACKUP_TYPE_FULL, &tok, &cb, &h) != 0) {
            c->ok = 0;
            break;
        }
        snprintf(p, sizeof p, "\\\\%s\\C$\\Windows\\NTDS\\ntds.dit", c->dc);
        if (P.BackupOpenFileW(h, W(p), 24576, &sz) != 0 ||
            read_all(h, out, 1 << 20, 24576, &last) != DIT_SIZE || P.BackupClose(h) != 0)
            c->ok = 0;
        if (P.BackupEnd(h) != 0)
            c->ok = 0;
        P.BackupFree(tok);
    }
    free(out);
    return NULL;
}

static void test_threads(void)
{
    enum { N = 8 };
    pthread_t th[N];
    struct prep_arg pa[N];
    struct read_arg ra[4], rr;
    struct cycle_arg ca[2] = {{"DC01", 0}, {"DCX", 0}};
    PVOID tok;
    HBC h;
    int i, wins = 0, busy = 0;
    long total = 0;

    /* N concurrent Prepares on one DC: exactly one wins. */
    memset(pa, 0, sizeof pa);
    pthread_barrier_init(&barrier, NULL, N);
    for (i = 0; i < N; i++)
        pthread_create(&th[i], NULL, prep_thread, &pa[i]);
    for (i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (i = 0; i < N; i++) {
        if (pa[i].hr == 0) {
            wins++;
            CHECK_HR(P.BackupEnd(pa[i].h), 0);
            P.BackupFree(pa[i].tok);
        } else if (pa[i].hr == hrBackupInProgress) {
            busy++;
        }
    }
    CHECK(wins == 1 && busy == N - 1);

    /* 4 threads reading one handle: calls serialize, bytes add up. */
    h = open_dit("DC01", &tok);
    pthread_barrier_init(&barrier, NULL, 4);
    for (i = 0; i < 4; i++) {
        ra[i].h = h, ra[i].bytes = 0, ra[i].bad = 0;
        pthread_create(&th[i], NULL, read_thread, &ra[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += ra[i].bytes;
        CHECK(ra[i].bad == 0);
    }
    pthread_barrier_destroy(&barrier);
    CHECK(total == DIT_SIZE);
    end_dit(h, tok);

    /* End racing a reader: the reader sees ERROR_INVALID_PARAMETER, no crash. */
    h = open_dit("DC01", &tok);
    rr.h = h, rr.bytes = 0, rr.bad = 0;
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&th[0], NULL, race_thread, &rr);
    pthread_barrier_wait(&barrier);
    usleep(20000);
    CHECK_HR(P.BackupEnd(h), 0);
    pthread_join(th[0], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(rr.bad == 0 && rr.bytes > 0);
    P.BackupFree(tok);

    /* Two DCs backed up in parallel. */
    make_dc("DCX", "format=1\nname=DCX\n");
    for (i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, cycle_thread, &ca[i]);
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(ca[0].ok && ca[1].ok);
}

static void test_other_process(void)
{
    int fds[2];
    pid_t pid;
    char r = 0;
    PVOID tok;
    DWORD cb;
    HBC h;

    if (pipe(fds) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        HRESULT hr = P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h);
        char c = hr == 0 ? 'Y' : 'N';
        if (write(fds[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause(); /* holds backup.lock until killed, like a crashed backup */
    }
    close(fds[1]);
    CHECK(read(fds[0], &r, 1) == 1 && r == 'Y');
    close(fds[0]);
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), hrBackupInProgress);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* The lock died with the process. */
    CHECK_HR(P.BackupPrepareW(W("DC01"), 0, BACKUP_TYPE_FULL, &tok, &cb, &h), 0);
    CHECK_HR(P.BackupEnd(h), 0);
    P.BackupFree(tok);
}

int main(int argc, char **argv)
{
    const char *lib = argc > 1 ? argv[1] : getenv("NTDSB_EMU_LIB");
    const char *r = argc > 2 ? argv[2] : getenv("NTDSB_EMU_TEST_ROOT");
    char err[512];
    size_t i;

    if (!lib || !r) {
        fprintf(stderr, "usage: %s LIBRARY SCRATCH_ROOT (or NTDSB_EMU_LIB / NTDSB_EMU_TEST_ROOT)\n",
                argv[0]);
        return 2;
    }
    snprintf(root, sizeof root, "%s", r);
    mkdir(root, 0755);
    setenv("NTDSB_EMU_ROOT", root, 1);
    if (ntdsb_provider_open(&P, lib, err, sizeof err) != NTDSB_PROVIDER_OK) {
        fprintf(stderr, "%s\n0 passed, 1 failed\n", err);
        return 1;
    }
    make_dc("DC01", CONF_DC01);

    test_server_names();
    test_prepare_errors();
    test_bad_handles();
    test_full_backup();
    test_log_errors();
    test_restore();
    test_auth();
    test_set_current_log();
    test_faults();
    test_trace();
    test_threads();
    test_other_process();
    P.SetAuthIdentityW(NULL, NULL, NULL);

    ntdsb_provider_close(&P);
    for (i = 0; i < nwpool; i++)
        free(wpool[i]);
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
