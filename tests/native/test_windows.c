/*
 * test_windows.c - the Windows driver: the engine and the emulated DC, both
 * built for Windows with mingw-w64 (tests/native/build_windows.sh), run under
 * Wine by tests/test_windows.py (`make test-windows`, and so `make test`).
 *
 * It is linked against mingw-w64's import library of the real DLL
 * (libntdsbcli.a), so every Ds* call below goes through the import table to
 * whatever ntdsbcli.dll the loader finds first: the emulator, built as
 * ntdsbcli.dll beside this program.  The engine is also handed the same
 * library through its own loader (ntdsb_provider_open: LoadLibraryW +
 * GetProcAddress), which must find the very functions the import table holds.
 *
 *   test_windows engine SCRATCH
 *       the platform layer (locks, timed waits, threads, positioned I/O on
 *       HANDLEs, pipes, cancelled reads), then the engine against an
 *       in-process provider: backups that are byte-identical whatever the
 *       thread count, restores through files and pipes, a cancel while the
 *       input stalls, and every hostile input of restore_cases.h.
 *   test_windows backup SERVER NTDS_DIR OUT_DIR DLL [USER PASSWORD]
 *       the identity checks when USER (DOMAIN\user, a backup operator of the
 *       DC) and PASSWORD are given (PBKDF2 through bcrypt), then
 *       the full backup sequence on an emulated DC (the DC's folder is read
 *       directly to check every hash): DsIsNTDSOnline, DsBackupPrepare, the
 *       database and the logs through the threaded engine, DsBackupTruncateLogs,
 *       DsBackupEnd; writes OUT_DIR\manifest.txt, token.bin and <file>.frames.
 *   test_windows restore SERVER NTDS_DIR OUT_DIR DLL
 *       the full restore sequence on the same DC, now in DSRM: DsRestorePrepare
 *       with the token, the locations, every file through the threaded restore
 *       pipeline into staging files, DsRestoreRegister, the swap,
 *       DsRestoreRegisterComplete, DsRestoreEnd.
 *
 * Lines "file NAME SIZE HASH" (backup) and "restored NAME SIZE HASH" (restore)
 * give the caller what to compare with its own hashes of the DC's files; the
 * last line is "N passed, N failed", and the exit status is 0 only when
 * nothing failed.  Paths are Windows paths (Wine: Z:\ is /).
 */
#include <windows.h>
#include <tlhelp32.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "ntdsb_engine.h"
#include "ntdsb_ese.h"
#include "ntdsb_provider.h"
#include "ntdsb_restore.h"
#include "platform.h"
#include "fake_provider.h"
#include "restore_cases.h" /* native_check.h: CHECK, CHECK_EQ_INT, test_report */

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

static const char *g_scratch = "."; /* where the engine mode's temporary files go */

#define CHECK_HR(expr, want)                                                             \
    do {                                                                                 \
        HRESULT got_ = (expr), want_ = (HRESULT)(want);                                  \
        if (got_ == want_) {                                                             \
            g_passed++;                                                                  \
        } else {                                                                         \
            const char *n_ = ntdsb_hresult_name(got_);                                   \
            g_failed++;                                                                  \
            fprintf(stderr, "FAIL [%s] %s:%d: %s = 0x%08X (%s), want 0x%08X\n", g_test,  \
                    __FILE__, __LINE__, #expr, (unsigned)got_, n_ ? n_ : "?",            \
                    (unsigned)want_);                                                    \
        }                                                                                \
    } while (0)

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_windows: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (Windows error %lu)\n", (unsigned long)GetLastError());
    va_end(ap);
    exit(2);
}

/* ---- small helpers ---------------------------------------------------------------- */

static char *joinf(const char *fmt, ...)
{
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

static HANDLE open_path(const char *path, DWORD access, DWORD disposition, DWORD flags)
{
    wchar_t *w = ntdsb_utf8_to_wide(path);
    HANDLE h;
    if (!w)
        die("bad path %s", path);
    h = CreateFileW(w, access, SHARE_ALL, NULL, disposition,
                    flags ? flags : FILE_ATTRIBUTE_NORMAL, NULL);
    free(w);
    return h;
}

static ntdsb_file F(HANDLE h)
{
    return (ntdsb_file)h;
}

static int64_t file_pos(HANDLE h)
{
    LARGE_INTEGER zero, pos;
    zero.QuadPart = 0;
    if (!SetFilePointerEx(h, zero, &pos, FILE_CURRENT))
        return -1;
    return pos.QuadPart;
}

static void seek_to(HANDLE h, int64_t off)
{
    LARGE_INTEGER at;
    at.QuadPart = off;
    SetFilePointerEx(h, at, NULL, FILE_BEGIN);
}

static int64_t file_size(HANDLE h)
{
    LARGE_INTEGER sz;
    return GetFileSizeEx(h, &sz) ? sz.QuadPart : -1;
}

static void write_all(HANDLE h, const void *buf, size_t n)
{
    int err = 0;
    if (ntdsb_file_write_all(F(h), buf, n, &err) != 0)
        die("write failed");
}

/* A temporary file in the scratch folder, removed when closed. */
static HANDLE temp_file(void)
{
    static unsigned long k;
    HANDLE h = open_path(joinf("%s\\ntdsb-%lu-%lu.tmp", g_scratch,
                               (unsigned long)GetCurrentProcessId(), ++k),
                         GENERIC_READ | GENERIC_WRITE, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE);
    if (h == INVALID_HANDLE_VALUE)
        die("cannot create a file in %s", g_scratch);
    return h;
}

static HANDLE file_from_bytes(const uint8_t *b, size_t n)
{
    HANDLE h = temp_file();
    write_all(h, b, n);
    seek_to(h, 0);
    return h;
}

/* Whole-file XXH3-128 of a file by path (canonical).  0 or -1. */
static int hash_path(const char *path, ntdsb_hash128 *out, int64_t *size)
{
    HANDLE h = open_path(path, GENERIC_READ, OPEN_EXISTING, 0);
    XXH3_state_t *st;
    static uint8_t buf[1 << 20];
    XXH128_canonical_t c;
    DWORD n;

    if (h == INVALID_HANDLE_VALUE)
        return -1;
    st = XXH3_createState();
    XXH3_128bits_reset(st);
    *size = 0;
    while (ReadFile(h, buf, sizeof buf, &n, NULL) && n > 0) {
        XXH3_128bits_update(st, buf, n);
        *size += n;
    }
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
    memcpy(out->bytes, c.digest, 16);
    XXH3_freeState(st);
    CloseHandle(h);
    return 0;
}

static const char *hex(const ntdsb_hash128 *h)
{
    static char buf[4][33];
    static int k;
    char *b = buf[k++ % 4];
    int i;
    for (i = 0; i < 16; i++)
        snprintf(b + 2 * i, 3, "%02x", h->bytes[i]);
    return b;
}

static int hash_eq(const ntdsb_hash128 *a, const ntdsb_hash128 *b)
{
    return memcmp(a->bytes, b->bytes, 16) == 0;
}

/* Threads of this process, as the system lists them. */
static int thread_count(void)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    THREADENTRY32 te;
    DWORD me = GetCurrentProcessId();
    int n = 0;

    if (snap == INVALID_HANDLE_VALUE)
        return -1;
    te.dwSize = sizeof te;
    if (Thread32First(snap, &te)) {
        do {
            if (te.th32OwnerProcessID == me)
                n++;
            te.dwSize = sizeof te;
        } while (Thread32Next(snap, &te));
    }
    CloseHandle(snap);
    return n;
}

/* Once the engine's threads are joined the count must come back to `want`;
 * give the system up to a second to drop the ended ones from its list. */
static int threads_settled(int want)
{
    int i, n = thread_count();
    for (i = 0; i < 100 && n > want; i++) {
        Sleep(10);
        n = thread_count();
    }
    return n;
}

/* ---- the engine against an in-process provider ------------------------------------ */

typedef struct membuf {
    uint8_t *p;
    size_t len, cap;
    int calls;
} membuf;

static int mem_write(void *ctx, const void *buf, size_t len)
{
    membuf *m = ctx;
    if (m->len + len > m->cap) {
        size_t cap = (m->len + len) * 2;
        uint8_t *np = realloc(m->p, cap);
        if (!np)
            return -1;
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    m->calls++;
    return 0;
}

static int backup_mem(const uint8_t *data, uint64_t size, uint32_t chunk, uint32_t threads,
                      int serial, membuf *out, ntdsb_hash128 *hash, ntdsb_chunk_table *table)
{
    ntdsb_provider prov;
    ntdsb_backup_config c;
    ntdsb_sink sink;
    ntdsb_error err;
    fake f = {data, size, 0};
    int rc;

    memset(&prov, 0, sizeof prov);
    prov.BackupRead = fake_read;
    ntdsb_backup_config_init(&c);
    c.chunk_size = chunk;
    c.threads = threads;
    c.serial = serial;
    memset(out, 0, sizeof *out);
    sink.fd = NTDSB_NO_FILE;
    sink.write = mem_write;
    sink.ctx = out;
    rc = ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, hash, table, &err);
    if (rc != NTDSB_OK)
        fprintf(stderr, "  backup: %s\n", err.message);
    return rc;
}

/* The engine's stream of data[0..size), the marker after it (restore_cases.h). */
static void make_stream(stream *s, const uint8_t *data, uint64_t size, uint32_t chunk)
{
    membuf m;
    if (backup_mem(data, size, chunk, 2, 0, &m, NULL, NULL) != NTDSB_OK ||
        mem_write(&m, MARKER, MARKER_LEN) != 0)
        die("backup engine failed");
    s->buf = m.p;
    s->len = m.len - MARKER_LEN;
    stream_index(s);
}

static uint8_t *gen_data(uint64_t size, uint64_t seed)
{
    const size_t page = 8192;
    size_t npages = (size_t)((size + page - 1) / page);
    uint8_t *buf = malloc(npages * page + 1);
    if (!buf)
        die("out of memory");
    if (npages > 0)
        ntdsb_ese_generate_pages(buf, page, 1, (uint32_t)npages, seed, 1000 + seed);
    return buf;
}

typedef struct result {
    int rc;
    ntdsb_error err;
    ntdsb_restore_stats st;
    ntdsb_hash128 hash;
    char tail[256]; /* what the input held after the call */
    size_t tail_len;
} result;

static void read_rest(HANDLE h, result *r)
{
    DWORD n;
    r->tail_len = 0;
    while (r->tail_len < sizeof r->tail &&
           ReadFile(h, r->tail + r->tail_len, (DWORD)(sizeof r->tail - r->tail_len), &n, NULL) &&
           n > 0)
        r->tail_len += n;
}

static int at_marker(const result *r)
{
    return r->tail_len == MARKER_LEN && memcmp(r->tail, MARKER, MARKER_LEN) == 0;
}

static ntdsb_restore_config rcfg(uint32_t threads, uint32_t depth, uint32_t max_raw)
{
    ntdsb_restore_config c;
    c.threads = threads;
    c.ring_depth = depth;
    c.max_raw_size = max_raw;
    c.pages = NULL;
    return c;
}

static void restore_bytes(result *r, const uint8_t *bytes, size_t total, uint64_t file_size,
                          HANDLE out, const ntdsb_restore_config *c)
{
    HANDLE in = file_from_bytes(bytes, total);
    memset(r, 0, sizeof *r);
    r->rc = ntdsb_restore_file(F(in), out ? F(out) : NTDSB_NO_FILE, file_size, c, NULL, NULL,
                               &r->st, &r->hash, &r->err);
    read_rest(in, r);
    CloseHandle(in);
}

static int file_equals(HANDLE h, const uint8_t *data, uint64_t size)
{
    uint8_t *buf;
    size_t got = 0;
    int err = 0, ok;
    if (file_size(h) != (int64_t)size)
        return 0;
    if (size == 0)
        return 1;
    buf = malloc((size_t)size);
    ok = buf && ntdsb_file_pread(F(h), buf, (size_t)size, 0, &got, &err) == 0 && got == size &&
         memcmp(buf, data, (size_t)size) == 0;
    free(buf);
    return ok;
}

/* A thread that writes a buffer into a pipe in odd pieces, and may stall. */
typedef struct feeder {
    HANDLE w;
    const uint8_t *buf;
    size_t len;          /* bytes before the stall (or all) */
    size_t total;
    int stall;           /* after `len` bytes wait for `release` */
    atomic_int release;  /* 1: go on, 2: close without the rest */
    uint64_t rng;
} feeder;

static void *feeder_main(void *arg)
{
    feeder *f = arg;
    size_t off = 0;
    while (off < f->total) {
        size_t n;
        DWORD w;
        if (f->stall && off == f->len) {
            while (!atomic_load(&f->release))
                Sleep(1);
            if (atomic_load(&f->release) == 2)
                break;
        }
        f->rng = f->rng * 6364136223846793005ULL + 1442695040888963407ULL;
        n = 1 + (size_t)(f->rng >> 33) % 100000;
        if (n > f->total - off)
            n = f->total - off;
        if (f->stall && off < f->len && n > f->len - off)
            n = f->len - off;
        if (!WriteFile(f->w, f->buf + off, (DWORD)n, &w, NULL))
            break;
        off += w;
    }
    CloseHandle(f->w);
    return NULL;
}

static void start_feeder(feeder *f, ntdsb_thread *t, HANDLE *rd, const uint8_t *buf,
                         size_t total, size_t stall_at, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    if (!CreatePipe(rd, &f->w, NULL, 0))
        die("CreatePipe");
    f->buf = buf;
    f->total = total;
    f->len = stall_at ? stall_at : total;
    f->stall = stall_at != 0;
    f->rng = seed;
    atomic_init(&f->release, 0);
    if (ntdsb_thread_start(t, feeder_main, f) != 0)
        die("thread");
}

/* ---- the platform layer ----------------------------------------------------------- */

typedef struct blocked_read {
    HANDLE rd;
    atomic_int stop;
    int io;
} blocked_read;

static void *blocked_reader(void *arg)
{
    blocked_read *b = arg;
    char buf[16];
    size_t got;
    int err = 0;
    b->io = ntdsb_file_read_some(F(b->rd), buf, sizeof buf, &got, 1, &b->stop, &err);
    return NULL;
}

static void *set_flag(void *arg)
{
    *(int *)arg = 42;
    return NULL;
}

static void test_platform(void)
{
    g_test = "locks and timed waits";
    {
        ntdsb_mutex m;
        ntdsb_cond c;
        double t0, dt, deadline;
        CHECK_EQ_INT(ntdsb_mutex_init(&m), 0);
        CHECK_EQ_INT(ntdsb_cond_init(&c), 0);
        ntdsb_mutex_lock(&m);
        t0 = ntdsb_now();
        ntdsb_cond_wait_for(&c, &m, 0.2);
        dt = ntdsb_now() - t0;
        CHECK(dt < 2.0); /* a timed wait ends (early wakeups are allowed) */
        /* As the pipelines wait: re-check against a deadline. */
        deadline = ntdsb_now() + 0.1;
        while (ntdsb_now() < deadline)
            ntdsb_cond_wait_for(&c, &m, deadline - ntdsb_now());
        CHECK(ntdsb_now() >= deadline);
        ntdsb_cond_wait_for(&c, &m, 0); /* returns at once */
        ntdsb_mutex_unlock(&m);
        ntdsb_cond_destroy(&c);
        ntdsb_mutex_destroy(&m);
    }

    g_test = "threads, memory, CPUs";
    {
        ntdsb_thread t;
        int flag = 0;
        void *p = ntdsb_alloc_aligned(100000);
        CHECK_EQ_INT(ntdsb_thread_start(&t, set_flag, &flag), 0);
        ntdsb_thread_join(&t);
        CHECK_EQ_INT(flag, 42);
        CHECK(p != NULL && ((uintptr_t)p & 4095u) == 0);
        ntdsb_free_aligned(p);
        ntdsb_free_aligned(NULL);
        CHECK(ntdsb_os_cpus() >= 1);
        CHECK(ntdsb_cpu_count() >= 1 && ntdsb_cpu_count() <= NTDSB_THREADS_MAX);
    }

    g_test = "positioned I/O on a HANDLE";
    {
        HANDLE h = temp_file();
        ntdsb_file twin;
        char got[8] = {0};
        size_t n = 0;
        int err = 0;
        write_all(h, "abc", 3);
        CHECK_EQ_INT(file_pos(h), 3);
        CHECK(ntdsb_file_valid(F(h)) && ntdsb_file_is_regular(F(h)));
        CHECK(!ntdsb_file_valid(NTDSB_NO_FILE) && !ntdsb_file_valid(0));
        twin = ntdsb_file_pos_open(F(h));
        CHECK(twin != F(h)); /* ReOpenFile gave a handle of its own */
        CHECK_EQ_INT(ntdsb_file_pwrite_all(twin, "zz", 2, 100, &err), 0);
        CHECK_EQ_INT(ntdsb_file_pread(twin, got, sizeof got, 99, &n, &err), 0);
        CHECK(n == 3 && got[0] == 0 && got[1] == 'z' && got[2] == 'z');
        CHECK_EQ_INT(ntdsb_file_pread(twin, got, sizeof got, 500, &n, &err), 0);
        CHECK_EQ_INT(n, 0); /* past the end: no bytes, no error */
        ntdsb_file_pos_close(twin, F(h));
        CHECK_EQ_INT(file_pos(h), 3); /* the caller's file pointer did not move */
        CHECK_EQ_INT(file_size(h), 102);
        CloseHandle(h);
    }

    g_test = "pipes";
    {
        HANDLE rd, wr;
        atomic_int stop;
        char buf[16];
        size_t got = 0;
        int err = 0;
        atomic_init(&stop, 0);
        if (!CreatePipe(&rd, &wr, NULL, 0))
            die("CreatePipe");
        CHECK(!ntdsb_file_is_regular(F(rd)));
        write_all(wr, "hello", 5);
        CHECK_EQ_INT(ntdsb_file_read_some(F(rd), buf, sizeof buf, &got, 1, &stop, &err),
                     NTDSB_IO_DATA);
        CHECK(got == 5 && memcmp(buf, "hello", 5) == 0);
        CloseHandle(wr);
        CHECK_EQ_INT(ntdsb_file_read_some(F(rd), buf, sizeof buf, &got, 1, &stop, &err),
                     NTDSB_IO_EOF);
        atomic_store(&stop, 1);
        CHECK_EQ_INT(ntdsb_file_read_some(F(rd), buf, sizeof buf, &got, 1, &stop, &err),
                     NTDSB_IO_STOPPED);
        CloseHandle(rd);
    }

    g_test = "a read blocked on a pipe is cancelled by the join";
    {
        blocked_read b;
        HANDLE wr;
        ntdsb_thread t;
        double t0;
        memset(&b, 0, sizeof b);
        atomic_init(&b.stop, 0);
        b.io = -1;
        if (!CreatePipe(&b.rd, &wr, NULL, 0))
            die("CreatePipe");
        CHECK_EQ_INT(ntdsb_thread_start(&t, blocked_reader, &b), 0);
        Sleep(100); /* let it block in ReadFile */
        t0 = ntdsb_now();
        atomic_store(&b.stop, 1);
        ntdsb_thread_join_cancelling_io(&t);
        CHECK(ntdsb_now() - t0 < 2.0);
        CHECK_EQ_INT(b.io, NTDSB_IO_STOPPED);
        CloseHandle(wr);
        CloseHandle(b.rd);
    }

    g_test = "text";
    {
        char buf[256];
        const char *m = ntdsb_strerror(ERROR_FILE_NOT_FOUND, buf, sizeof buf);
        size_t n = strlen(m);
        wchar_t *w = ntdsb_utf8_to_wide("DC\xC3\x9C" "01");
        char *back = w ? ntdsb_wide_to_utf8(w) : NULL;
        CHECK(n > 0 && m[n - 1] != '.' && m[n - 1] != '\n' && m[n - 1] != '\r');
        CHECK(w != NULL && wcslen(w) == 5 && w[2] == 0x00DC);
        CHECK(back != NULL && strcmp(back, "DC\xC3\x9C" "01") == 0);
        CHECK(ntdsb_utf8_to_wide("\xC3") == NULL); /* not UTF-8 */
        free(w);
        free(back);
    }
}

/* ---- the engine ----------------------------------------------------------------------- */

static void test_backup_engine(const uint8_t *data, uint64_t size, uint32_t chunk)
{
    static const uint32_t threads[] = {1, 2, 4};
    ntdsb_hash128 want = xxh128_canon(data, size), h;
    ntdsb_chunk_table table = {0};
    membuf ref, m;
    size_t i;

    g_test = "backup: the same bytes whatever the threads";
    CHECK_EQ_INT(backup_mem(data, size, chunk, 1, 1, &ref, &h, &table), NTDSB_OK);
    CHECK(hash_eq(&h, &want));
    CHECK_EQ_INT(table.count, size / chunk + (size % chunk != 0));
    CHECK_EQ_INT(ref.calls, table.count); /* one sink call per chunk */
    ntdsb_chunk_table_free(&table);
    for (i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        CHECK_EQ_INT(backup_mem(data, size, chunk, threads[i], 0, &m, &h, NULL), NTDSB_OK);
        CHECK(hash_eq(&h, &want));
        CHECK(m.len == ref.len && memcmp(m.p, ref.p, ref.len) == 0);
        CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
        free(m.p);
    }

    g_test = "backup: a HANDLE sink";
    {
        ntdsb_provider prov;
        ntdsb_backup_config c;
        ntdsb_sink sink;
        ntdsb_error err;
        fake f = {data, size, 0};
        HANDLE out = temp_file();
        memset(&prov, 0, sizeof prov);
        prov.BackupRead = fake_read;
        ntdsb_backup_config_init(&c);
        c.chunk_size = chunk;
        c.threads = 2;
        sink.fd = F(out);
        sink.write = NULL;
        sink.ctx = NULL;
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, &h, NULL,
                                       &err),
                     NTDSB_OK);
        CHECK(hash_eq(&h, &want));
        CHECK(file_equals(out, ref.p, ref.len));
        CloseHandle(out);
        /* Both or neither of fd and write: refused. */
        sink.fd = NTDSB_NO_FILE;
        CHECK_EQ_INT(ntdsb_backup_file(&prov, &f, size, &c, &sink, NULL, NULL, NULL, NULL, NULL,
                                       &err),
                     NTDSB_E_CONFIG);
    }
    free(ref.p);
}

static void test_restore_files(const stream *s, const uint8_t *data, uint64_t size)
{
    static const uint32_t threads[] = {1, 2, 4};
    ntdsb_hash128 want = xxh128_canon(data, size);
    size_t i;

    g_test = "restore: file to file";
    for (i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        ntdsb_restore_config c = rcfg(threads[i], 0, 0);
        HANDLE out = temp_file();
        result r;
        restore_bytes(&r, s->buf, s->len + MARKER_LEN, size, out, &c);
        CHECK_EQ_INT(r.rc, NTDSB_OK);
        if (r.rc != NTDSB_OK)
            fprintf(stderr, "  threads %u: %s\n", threads[i], r.err.message);
        CHECK_EQ_INT(file_pos(out), 0); /* positioned writes left the pointer alone */
        CHECK(hash_eq(&r.hash, &want));
        CHECK(file_equals(out, data, size)); /* (a positioned read: moves it) */
        CHECK(at_marker(&r)); /* exactly the file's frames were consumed */
        CHECK_EQ_INT(r.st.bytes_in, s->len);
        CHECK_EQ_INT(r.st.bytes_out, size);
        CHECK_EQ_INT(r.st.chunks, s->nchunks);
        CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
        CloseHandle(out);
    }

    g_test = "restore: verify only";
    {
        ntdsb_restore_config c = rcfg(2, 0, 0);
        result r;
        restore_bytes(&r, s->buf, s->len + MARKER_LEN, size, NULL, &c);
        CHECK_EQ_INT(r.rc, NTDSB_OK);
        CHECK(hash_eq(&r.hash, &want));
        CHECK(at_marker(&r));
    }

    g_test = "restore: refused arguments";
    {
        ntdsb_restore_config c = rcfg(1, 1, 0);
        ntdsb_error err;
        HANDLE in = file_from_bytes(s->buf, s->len + MARKER_LEN);
        CHECK_EQ_INT(ntdsb_restore_file(F(in), NTDSB_NO_FILE, size, &c, NULL, NULL, NULL, NULL,
                                        &err),
                     NTDSB_E_CONFIG);
        c = rcfg(1, 2, 0);
        CHECK_EQ_INT(ntdsb_restore_file(NTDSB_NO_FILE, NTDSB_NO_FILE, size, &c, NULL, NULL, NULL,
                                        NULL, &err),
                     NTDSB_E_CONFIG);
        CHECK_EQ_INT(file_pos(in), 0); /* nothing was read */
        CloseHandle(in);
    }
}

static void test_restore_pipes(const stream *s, const uint8_t *data, uint64_t size)
{
    ntdsb_hash128 want = xxh128_canon(data, size);
    uint32_t threads;

    g_test = "restore: from a pipe";
    for (threads = 1; threads <= 4; threads *= 2) {
        ntdsb_restore_config c = rcfg(threads, threads + 1, 0);
        HANDLE rd, out = temp_file();
        ntdsb_thread t;
        feeder f;
        result r;
        start_feeder(&f, &t, &rd, s->buf, s->len + MARKER_LEN, 0, threads);
        memset(&r, 0, sizeof r);
        r.rc = ntdsb_restore_file(F(rd), F(out), size, &c, NULL, NULL, &r.st, &r.hash, &r.err);
        read_rest(rd, &r);
        ntdsb_thread_join(&t);
        CloseHandle(rd);
        CHECK_EQ_INT(r.rc, NTDSB_OK);
        CHECK(hash_eq(&r.hash, &want));
        CHECK(file_equals(out, data, size));
        CHECK(at_marker(&r));
        CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
        CloseHandle(out);
    }

    g_test = "restore: a pipe that ends inside a frame";
    {
        ntdsb_restore_config c = rcfg(2, 3, 0);
        size_t k = s->nchunks / 2;
        HANDLE rd;
        ntdsb_thread t;
        feeder f;
        result r;
        start_feeder(&f, &t, &rd, s->buf, s->hdr_off[k] + NTDSB_CHUNK_HEADER_SIZE + 7, 0, 7);
        memset(&r, 0, sizeof r);
        r.rc = ntdsb_restore_file(F(rd), NTDSB_NO_FILE, size, &c, NULL, NULL, &r.st, &r.hash,
                                  &r.err);
        ntdsb_thread_join(&t);
        CloseHandle(rd);
        CHECK_EQ_INT(r.rc, NTDSB_E_CORRUPT);
        CHECK_EQ_INT(r.err.chunk_index, k);
        CHECK(strstr(r.err.message, "truncated") != NULL);
    }

    g_test = "restore: to a pipe (the in-order writer)";
    {
        ntdsb_restore_config c = rcfg(2, 0, 0);
        HANDLE in = file_from_bytes(s->buf, s->len + MARKER_LEN), rd, wr;
        uint8_t *got = malloc((size_t)size + 1);
        size_t have = 0;
        ntdsb_error err;
        ntdsb_hash128 h;
        int rc;
        /* Big enough for the whole file: the restore never waits for a reader. */
        if (!got || !CreatePipe(&rd, &wr, NULL, (DWORD)size + 65536))
            die("CreatePipe");
        rc = ntdsb_restore_file(F(in), F(wr), size, &c, NULL, NULL, NULL, &h, &err);
        CloseHandle(wr);
        for (;;) {
            DWORD n;
            if (!ReadFile(rd, got + have, (DWORD)(size + 1 - have), &n, NULL) || n == 0)
                break;
            have += n;
        }
        CloseHandle(rd);
        CloseHandle(in);
        CHECK_EQ_INT(rc, NTDSB_OK);
        CHECK(have == size && memcmp(got, data, (size_t)size) == 0);
        CHECK(hash_eq(&h, &want));
        free(got);
    }
}

typedef struct cancel_ctx {
    int calls;
    double stop_after, first_yes, last_call, max_gap;
} cancel_ctx;

static int cancel_hook(void *arg)
{
    cancel_ctx *c = arg;
    double t = ntdsb_now();
    if (c->last_call > 0 && t - c->last_call > c->max_gap)
        c->max_gap = t - c->last_call;
    c->last_call = t;
    c->calls++;
    if (t >= c->stop_after) {
        if (c->first_yes == 0)
            c->first_yes = t;
        return 1;
    }
    return 0;
}

static void test_cancel_stalled_pipe(const stream *s, uint64_t size)
{
    ntdsb_restore_config c = rcfg(2, 3, 0);
    cancel_ctx cc;
    HANDLE rd;
    ntdsb_thread t;
    feeder f;
    ntdsb_error err;
    double t_end;
    int rc;

    /* Two chunks, then nothing: the reader is blocked in ReadFile on the pipe
     * when the hook says stop, and the call must still return promptly. */
    g_test = "restore: cancel while the pipe stalls";
    start_feeder(&f, &t, &rd, s->buf, s->len + MARKER_LEN, s->hdr_off[2], 3);
    memset(&cc, 0, sizeof cc);
    cc.stop_after = ntdsb_now() + 0.5;
    rc = ntdsb_restore_file(F(rd), NTDSB_NO_FILE, size, &c, cancel_hook, &cc, NULL, NULL, &err);
    t_end = ntdsb_now();
    atomic_store(&f.release, 2);
    ntdsb_thread_join(&t);
    CloseHandle(rd);
    CHECK_EQ_INT(rc, NTDSB_E_CANCELLED);
    CHECK_EQ_INT(err.chunk_index, 2);
    CHECK(cc.first_yes > 0 && t_end - cc.first_yes < 0.5);
    CHECK(cc.max_gap < 0.35); /* the hook every 100 ms */
    CHECK(cc.calls >= 4);
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
    if (t_end - cc.first_yes >= 0.5 || cc.max_gap >= 0.35)
        fprintf(stderr, "  cancel took %.3f s, max gap %.3f s\n", t_end - cc.first_yes,
                cc.max_gap);
}

/* restore_cases.h's check, on HANDLEs: CORRUPT at chunk k whatever the threads. */
static void expect_corrupt(const char *name, const uint8_t *bytes, size_t total,
                           uint64_t file_size, uint32_t chunk, uint32_t max_raw, size_t k,
                           const char *needle)
{
    uint32_t threads;
    g_test = name;
    for (threads = 1; threads <= 4; threads *= 2) {
        ntdsb_restore_config c = rcfg(threads, threads == 4 ? 8 : threads + 1, max_raw);
        HANDLE out = temp_file();
        char prefix[64];
        uint8_t *got = malloc(chunk);
        size_t n = 0, i;
        int err = 0, zero;
        result r;
        restore_bytes(&r, bytes, total, file_size, out, &c);
        CHECK_EQ_INT(r.rc, NTDSB_E_CORRUPT);
        CHECK_EQ_INT(r.err.status, NTDSB_E_CORRUPT);
        CHECK_EQ_INT(r.err.chunk_index, k);
        CHECK_EQ_INT(r.err.offset, (uint64_t)k * chunk);
        if (needle != NULL && strstr(r.err.message, needle) == NULL) {
            g_failed++;
            fprintf(stderr, "FAIL [%s] message \"%s\" lacks \"%s\"\n", name, r.err.message,
                    needle);
        } else {
            g_passed++;
        }
        snprintf(prefix, sizeof prefix, "chunk %llu (offset %llu): ", (unsigned long long)k,
                 (unsigned long long)k * chunk);
        CHECK(strncmp(r.err.message, prefix, strlen(prefix)) == 0);
        CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
        /* The bad chunk itself never reached the output. */
        zero = got && ntdsb_file_pread(F(out), got, chunk, (uint64_t)k * chunk, &n, &err) == 0;
        for (i = 0; zero && i < n; i++)
            zero = got[i] == 0;
        CHECK(zero);
        free(got);
        CloseHandle(out);
    }
}

static int run_engine(void)
{
    const uint32_t chunk = 64 * 1024;
    const uint64_t size = 20 * (uint64_t)chunk + 12345; /* 21 chunks, a short last one */
    uint8_t *data = gen_data(size + chunk, 1);
    stream s;

    g_base_threads = thread_count();
    printf("threads at start: %d\n", g_base_threads);
    test_platform();
    test_backup_engine(data, size, chunk);
    make_stream(&s, data, size, chunk);
    test_restore_files(&s, data, size);
    test_restore_pipes(&s, data, size);
    test_cancel_stalled_pipe(&s, size);
    {
        int before = g_passed + g_failed;
        hostile_cases(&s, data, size, chunk, expect_corrupt);
        printf("hostile inputs: %d checks\n", g_passed + g_failed - before);
    }
    free(s.buf);
    free(data);
    return test_report();
}

/* ---- the emulated DC: backup ------------------------------------------------------------ */

static char *read_text(const char *path);

#define CHUNK (64u * 1024u) /* 128 chunks of ntds.dit, 16 of each 1 MiB log */

/* The imported functions (libntdsbcli.a): the provider struct the engine gets. */
static void imported_provider(ntdsb_provider *p)
{
    memset(p, 0, sizeof *p);
    p->IsNTDSOnlineW = DsIsNTDSOnlineW;
    p->BackupPrepareW = DsBackupPrepareW;
    p->BackupGetDatabaseNamesW = DsBackupGetDatabaseNamesW;
    p->BackupOpenFileW = DsBackupOpenFileW;
    p->BackupRead = DsBackupRead;
    p->BackupClose = DsBackupClose;
    p->BackupGetBackupLogsW = DsBackupGetBackupLogsW;
    p->BackupTruncateLogs = DsBackupTruncateLogs;
    p->BackupEnd = DsBackupEnd;
    p->BackupFree = DsBackupFree;
    p->RestoreGetDatabaseLocationsW = DsRestoreGetDatabaseLocationsW;
    p->RestorePrepareW = DsRestorePrepareW;
    p->RestoreRegisterW = DsRestoreRegisterW;
    p->RestoreRegisterComplete = DsRestoreRegisterComplete;
    p->RestoreEnd = DsRestoreEnd;
    p->SetCurrentBackupLogW = DsSetCurrentBackupLogW;
    p->SetAuthIdentityW = DsSetAuthIdentityW;
}

/* The engine's own loader must reach the same functions as the import table. */
static void check_loader(const char *dll, const ntdsb_provider *imp)
{
    ntdsb_provider dyn;
    char err[512];
    g_test = "the engine's loader finds the imported DLL";
    CHECK_EQ_INT(ntdsb_provider_open(&dyn, dll, err, sizeof err), NTDSB_PROVIDER_OK);
    if (dyn.module == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(memcmp((char *)&dyn + sizeof dyn.module, (const char *)imp + sizeof imp->module,
                 sizeof dyn - sizeof dyn.module) == 0);
    ntdsb_provider_close(&dyn);
    CHECK(dyn.module == NULL);
}

typedef struct entry {
    int bft;
    char path[512];
} entry;

/* Parse a list of reference section 6: BFT code unit, path, NUL; a NUL ends it. */
static int parse_list(const WCHAR *l, DWORD cb, entry *out, int max)
{
    size_t units = cb / sizeof(WCHAR), i = 0;
    int n = 0;
    while (i < units && l[i] != 0 && n < max) {
        size_t len = wcslen(l + i + 1);
        char *u8 = ntdsb_wide_to_utf8(l + i + 1);
        out[n].bft = l[i];
        snprintf(out[n].path, sizeof out[n].path, "%s", u8 ? u8 : "?");
        free(u8);
        n++;
        i += len + 2;
    }
    /* The byte count covers the whole buffer, the final NUL included. */
    return i + 1 == units ? n : -1;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '\\');
    return b ? b + 1 : path;
}

static wchar_t *wide(const char *s)
{
    wchar_t *w = ntdsb_utf8_to_wide(s);
    if (!w)
        die("not UTF-8: %s", s);
    return w;
}

typedef struct manifest_line {
    int bft;
    char name[64];
    char unc[512];
    uint64_t size;
    ntdsb_hash128 hash;
} manifest_line;

/* Back up one file of the DC with the threaded engine into OUT\<name>.frames
 * and check it against the DC's own copy. */
static void backup_one(const ntdsb_provider *prov, HBC hbc, const entry *e, const char *ntds,
                       const char *outdir, manifest_line *ml)
{
    const char *name = base_name(e->path);
    wchar_t *w = wide(e->path);
    LARGE_INTEGER li;
    ntdsb_backup_config c;
    ntdsb_backup_stats st;
    ntdsb_chunk_table table = {0};
    ntdsb_error err;
    ntdsb_sink sink;
    ntdsb_hash128 h, local;
    int64_t local_size = -1;
    HANDLE out;
    int rc;

    memset(ml, 0, sizeof *ml);
    ml->bft = e->bft;
    snprintf(ml->name, sizeof ml->name, "%s", name);
    snprintf(ml->unc, sizeof ml->unc, "%s", e->path);
    li.QuadPart = -1;
    CHECK_HR(DsBackupOpenFileW(hbc, w, CHUNK, &li), 0);
    free(w);
    out = open_path(joinf("%s\\%s.frames", outdir, name), GENERIC_WRITE, CREATE_ALWAYS, 0);
    if (out == INVALID_HANDLE_VALUE)
        die("cannot create %s\\%s.frames", outdir, name);
    ntdsb_backup_config_init(&c);
    c.chunk_size = CHUNK;
    c.threads = 2; /* the threaded engine: a reader thread and two workers */
    sink.fd = F(out);
    sink.write = NULL;
    sink.ctx = NULL;
    rc = ntdsb_backup_file(prov, hbc, (uint64_t)li.QuadPart, &c, &sink, NULL, NULL, &st, &h,
                           &table, &err);
    CHECK_EQ_INT(rc, NTDSB_OK);
    if (rc != NTDSB_OK)
        fprintf(stderr, "  %s: %s\n", name, err.message);
    CHECK_EQ_INT(table.count, (uint64_t)li.QuadPart / CHUNK + ((uint64_t)li.QuadPart % CHUNK != 0));
    CHECK(table.count > 1); /* more than one chunk: the threads really ran */
    CHECK_EQ_INT(st.bytes_read, li.QuadPart);
    CHECK_EQ_INT(file_size(out), st.bytes_written);
    ntdsb_chunk_table_free(&table);
    CloseHandle(out);
    CHECK_HR(DsBackupClose(hbc), 0);
    CHECK_EQ_INT(hash_path(joinf("%s\\%s", ntds, name), &local, &local_size), 0);
    CHECK_EQ_INT(local_size, li.QuadPart);
    CHECK(hash_eq(&h, &local));
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
    ml->size = (uint64_t)li.QuadPart;
    ml->hash = h;
    printf("file %s %llu %s\n", name, (unsigned long long)ml->size, hex(&h));
}

/* Closed logs (edbXXXXX.log) in the DC's NTDS folder, as a bit set of gens < 4096. */
static void closed_logs(const char *ntds, unsigned char present[4096])
{
    WIN32_FIND_DATAW fd;
    wchar_t *pat = wide(joinf("%s\\edb?????.log", ntds));
    HANDLE f = FindFirstFileW(pat, &fd);
    memset(present, 0, 4096);
    free(pat);
    if (f == INVALID_HANDLE_VALUE)
        return;
    do {
        unsigned g;
        if (swscanf(fd.cFileName, L"edb%5x.log", &g) == 1 && g < 4096)
            present[g] = 1;
    } while (FindNextFileW(f, &fd));
    FindClose(f);
}

static unsigned log_gen(const char *name)
{
    unsigned g = 0;
    return sscanf(name, "edb%5x.log", &g) == 1 ? g : 0;
}

/* DsSetAuthIdentity: stored, then checked by the next call that reaches the DC
 * (the emulator's PBKDF2-HMAC-SHA256, bcrypt on Windows). */
static void test_identity(const wchar_t *wserver, const char *user, const char *password)
{
    const char *bs = strchr(user, '\\');
    char domain[64];
    wchar_t *wu, *wd, *wp;
    BOOL online = FALSE;

    g_test = "DsSetAuthIdentity";
    if (!bs || (size_t)(bs - user) >= sizeof domain) {
        CHECK(!"USER is DOMAIN\\user");
        return;
    }
    memcpy(domain, user, (size_t)(bs - user));
    domain[bs - user] = 0;
    wu = wide(bs + 1);
    wd = wide(domain);
    wp = wide(password);
    CHECK_HR(DsSetAuthIdentityW(wu, wd, L"not the password"), 0);
    CHECK_HR(DsIsNTDSOnlineW(wserver, &online), ERROR_ACCESS_DENIED);
    CHECK_HR(DsSetAuthIdentityW(wu, wd, wp), 0);
    CHECK_HR(DsIsNTDSOnlineW(wserver, &online), 0);
    CHECK_EQ_INT(online, TRUE);
    /* A backup operator, not a restore operator. */
    CHECK_HR(DsSetCurrentBackupLogW(wserver, 7), 0);
    /* The ANSI form, with the domain in the user name. */
    CHECK_HR(DsSetAuthIdentityA(user, NULL, "not the password"), 0);
    CHECK_HR(DsIsNTDSOnlineW(wserver, &online), ERROR_ACCESS_DENIED);
    CHECK_HR(DsSetAuthIdentityA(user, NULL, password), 0);
    CHECK_HR(DsIsNTDSOnlineW(wserver, &online), 0);
    /* Back to the process identity. */
    CHECK_HR(DsSetAuthIdentityW(NULL, NULL, NULL), 0);
    free(wu);
    free(wd);
    free(wp);
}

static int run_backup(const char *server, const char *ntds, const char *outdir, const char *dll,
                      const char *user, const char *password)
{
    ntdsb_provider prov;
    wchar_t *wserver = wide(server);
    manifest_line files[64];
    int nfiles = 0, i, n;
    PVOID tok = NULL;
    DWORD cbtok = 0;
    HBC hbc = NULL, other = NULL;
    BOOL online = FALSE;
    LPWSTR list = NULL;
    LPSTR alist = NULL;
    DWORD cb = 0, acb = 0;
    entry ents[64];
    unsigned lo = 0, hi = 0;
    unsigned char before[4096], after[4096];
    FILE *mf;

    g_base_threads = thread_count();
    imported_provider(&prov);
    check_loader(dll, &prov);

    g_test = "DsIsNTDSOnline";
    CHECK_HR(DsIsNTDSOnlineW(wserver, &online), 0);
    CHECK_EQ_INT(online, TRUE);
    online = FALSE;
    CHECK_HR(DsIsNTDSOnlineA(server, &online), 0); /* the ANSI form reaches the same DC */
    CHECK_EQ_INT(online, TRUE);
    CHECK_HR(DsIsNTDSOnlineW(L"NO_SUCH_DC", &online), RPC_S_INVALID_BINDING);
    if (user != NULL)
        test_identity(wserver, user, password);

    g_test = "DsSetCurrentBackupLog";
    CHECK_HR(DsSetCurrentBackupLogA(server, 42), 0);
    CHECK(strcmp(read_text(joinf("%s\\..\\current_backup_log", ntds)), "42\n") == 0);
    CHECK_HR(DsSetCurrentBackupLogW(wserver, BACKUP_DISABLE_INCREMENTAL), 0);
    CHECK(strcmp(read_text(joinf("%s\\..\\current_backup_log", ntds)), "4294967295\n") == 0);
    {
        /* Server names fold case, on a file system that folds it too. */
        char lower[64];
        wchar_t *wl;
        size_t i;
        snprintf(lower, sizeof lower, "%s", server);
        for (i = 0; lower[i]; i++)
            if (lower[i] >= 'A' && lower[i] <= 'Z')
                lower[i] = (char)(lower[i] - 'A' + 'a');
        wl = wide(joinf("\\\\%s", lower));
        online = FALSE;
        CHECK_HR(DsIsNTDSOnlineW(wl, &online), 0);
        CHECK_EQ_INT(online, TRUE);
        free(wl);
    }

    g_test = "DsBackupPrepare";
    CHECK_HR(DsBackupPrepareW(wserver, 0, BACKUP_TYPE_FULL, &tok, &cbtok, &hbc), 0);
    CHECK(hbc != NULL && tok != NULL && cbtok == 64);
    if (hbc == NULL)
        return test_report();
    /* One backup at a time: the DC's lock (LockFileEx) refuses a second one
     * (and zeroes its outputs: hence other variables). */
    {
        PVOID tok2 = NULL;
        DWORD cb2 = 0;
        CHECK_HR(DsBackupPrepareW(wserver, 0, BACKUP_TYPE_FULL, &tok2, &cb2, &other),
                 hrBackupInProgress);
        CHECK(tok2 == NULL && cb2 == 0 && other == NULL);
    }
    {
        HANDLE t = open_path(joinf("%s\\token.bin", outdir), GENERIC_WRITE, CREATE_ALWAYS, 0);
        if (t == INVALID_HANDLE_VALUE)
            die("cannot write the token");
        write_all(t, tok, cbtok);
        CloseHandle(t);
    }

    g_test = "DsBackupGetDatabaseNames";
    CHECK_HR(DsBackupGetDatabaseNamesW(hbc, &list, &cb), 0);
    n = list ? parse_list(list, cb, ents, 64) : -1;
    CHECK_EQ_INT(n, 1);
    CHECK(n == 1 && ents[0].bft == BFT_NTDS_DATABASE &&
          strcmp(ents[0].path, joinf("\\\\%s\\C$\\Windows\\NTDS\\ntds.dit", server)) == 0);
    CHECK_HR(DsBackupGetDatabaseNamesA(hbc, &alist, &acb), 0);
    CHECK(alist != NULL && acb == cb / 2 && alist[0] == 'D' &&
          strcmp(alist + 1, ents[0].path) == 0 && alist[acb - 1] == 0);
    DsBackupFree(alist);
    DsBackupFree(list);
    list = NULL;

    g_test = "back up the database";
    for (i = 0; i < n; i++)
        backup_one(&prov, hbc, &ents[i], ntds, outdir, &files[nfiles++]);

    g_test = "DsBackupGetBackupLogs";
    closed_logs(ntds, before);
    CHECK_HR(DsBackupGetBackupLogsW(hbc, &list, &cb), 0);
    n = list ? parse_list(list, cb, ents, 64) : -1;
    CHECK(n >= 1);
    for (i = 0; i < n; i++) {
        unsigned g = log_gen(base_name(ents[i].path));
        CHECK_EQ_INT(ents[i].bft, BFT_LOG);
        CHECK(g > 0 && (i == 0 || g == hi + 1)); /* consecutive generations */
        if (i == 0)
            lo = g;
        hi = g;
    }
    DsBackupFree(list);
    closed_logs(ntds, after);
    /* The current log was closed: its generation is now the last one listed. */
    CHECK(hi < 4096 && after[hi] && !before[hi]);
    {
        ntdsb_hash128 hh;
        int64_t sz;
        CHECK_EQ_INT(hash_path(joinf("%s\\edb.log", ntds), &hh, &sz), 0);
    }
    printf("logs %u..%u\n", lo, hi);

    g_test = "back up the logs";
    for (i = 0; i < n; i++)
        backup_one(&prov, hbc, &ents[i], ntds, outdir, &files[nfiles++]);

    g_test = "DsBackupTruncateLogs";
    {
        unsigned g, removed = 0;
        CHECK_HR(DsBackupTruncateLogs(hbc), 0);
        closed_logs(ntds, after);
        for (g = 1; g < 4096; g++) {
            if (g < lo && before[g]) {
                CHECK(!after[g]); /* below the checkpoint: deleted */
                removed++;
            }
            if (g >= lo && g <= hi)
                CHECK(after[g]); /* what the backup holds stays */
        }
        CHECK(removed > 0);
        printf("truncated %u logs below generation %u\n", removed, lo);
    }

    g_test = "DsBackupEnd";
    CHECK_HR(DsBackupEnd(hbc), 0);
    CHECK_HR(DsBackupEnd(hbc), ERROR_INVALID_PARAMETER);
    DsBackupFree(tok);
    /* The lock went with the handle. */
    CHECK_HR(DsBackupPrepareW(wserver, 0, BACKUP_TYPE_FULL, &tok, &cbtok, &other), 0);
    CHECK(other != NULL);
    CHECK_HR(DsBackupEnd(other), 0);
    DsBackupFree(tok);

    mf = fopen(joinf("%s\\manifest.txt", outdir), "wb");
    if (!mf)
        die("cannot write the manifest");
    for (i = 0; i < nfiles; i++)
        fprintf(mf, "%d %s %llu %s %s\n", files[i].bft, files[i].name,
                (unsigned long long)files[i].size, hex(&files[i].hash), files[i].unc);
    fclose(mf);
    free(wserver);
    return test_report();
}

/* ---- the emulated DC: restore ----------------------------------------------------------- */

static int parse_hash(const char *s, ntdsb_hash128 *h)
{
    int i;
    unsigned v;
    if (strlen(s) != 32)
        return -1;
    for (i = 0; i < 16; i++) {
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        h->bytes[i] = (uint8_t)v;
    }
    return 0;
}

static int read_manifest(const char *outdir, manifest_line *files, int max)
{
    FILE *f = fopen(joinf("%s\\manifest.txt", outdir), "rb");
    char hash[64];
    unsigned long long size;
    int n = 0;
    if (!f)
        die("no manifest in %s", outdir);
    while (n < max && fscanf(f, "%d %63s %llu %63s %511s", &files[n].bft, files[n].name, &size,
                             hash, files[n].unc) == 5) {
        files[n].size = size;
        if (parse_hash(hash, &files[n].hash) != 0)
            die("bad hash in the manifest");
        n++;
    }
    fclose(f);
    return n;
}

static char *read_text(const char *path)
{
    HANDLE h = open_path(path, GENERIC_READ, OPEN_EXISTING, 0);
    static char buf[8192];
    DWORD n = 0;
    buf[0] = 0;
    if (h == INVALID_HANDLE_VALUE)
        return buf;
    if (ReadFile(h, buf, sizeof buf - 1, &n, NULL))
        buf[n] = 0;
    CloseHandle(h);
    return buf;
}

/* Restore one archived file with the threaded pipeline into NTDS\<name>.ntdsb-stage. */
static void restore_one(const manifest_line *m, const char *ntds, const char *outdir)
{
    ntdsb_restore_config c = rcfg(2, 0, 0);
    ntdsb_restore_stats st;
    ntdsb_error err;
    ntdsb_hash128 h;
    HANDLE in = open_path(joinf("%s\\%s.frames", outdir, m->name), GENERIC_READ, OPEN_EXISTING, 0);
    HANDLE out = open_path(joinf("%s\\%s.ntdsb-stage", ntds, m->name),
                           GENERIC_READ | GENERIC_WRITE, CREATE_ALWAYS, 0);
    int rc;

    if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE)
        die("cannot open the frames or the staging file of %s", m->name);
    rc = ntdsb_restore_file(F(in), F(out), m->size, &c, NULL, NULL, &st, &h, &err);
    CHECK_EQ_INT(rc, NTDSB_OK);
    if (rc != NTDSB_OK)
        fprintf(stderr, "  %s: %s\n", m->name, err.message);
    CHECK(hash_eq(&h, &m->hash));
    CHECK_EQ_INT(file_pos(in), file_size(in)); /* every frame consumed */
    CHECK_EQ_INT(file_size(out), m->size);
    CHECK(st.chunks > 1);
    CHECK_EQ_INT(threads_settled(g_base_threads), g_base_threads);
    FlushFileBuffers(out);
    CloseHandle(out);
    CloseHandle(in);
    printf("restored %s %llu %s\n", m->name, (unsigned long long)m->size, hex(&h));
}

/* The same frames through a pipe, verify only: the reader blocks on ReadFile. */
static void verify_through_pipe(const manifest_line *m, const char *outdir)
{
    HANDLE f = open_path(joinf("%s\\%s.frames", outdir, m->name), GENERIC_READ, OPEN_EXISTING, 0);
    int64_t n = file_size(f);
    uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
    ntdsb_restore_config c = rcfg(2, 0, 0);
    size_t got = 0;
    int err = 0, rc;
    ntdsb_thread t;
    feeder fd;
    HANDLE rd;
    ntdsb_error e;
    ntdsb_hash128 h;

    if (!buf || ntdsb_file_pread(F(f), buf, (size_t)n, 0, &got, &err) != 0 || got != (size_t)n)
        die("cannot read %s.frames", m->name);
    CloseHandle(f);
    start_feeder(&fd, &t, &rd, buf, (size_t)n, 0, 11);
    rc = ntdsb_restore_file(F(rd), NTDSB_NO_FILE, m->size, &c, NULL, NULL, NULL, &h, &e);
    ntdsb_thread_join(&t);
    CloseHandle(rd);
    CHECK_EQ_INT(rc, NTDSB_OK);
    CHECK(hash_eq(&h, &m->hash));
    free(buf);
}

static int remove_old_ese_files(const char *ntds)
{
    static const wchar_t *const patterns[] = {L"edb*.log", L"edb.chk"};
    int removed = 0;
    size_t i;
    for (i = 0; i < 2; i++) {
        WIN32_FIND_DATAW fd;
        wchar_t *pat = wide(joinf("%s\\%ls", ntds, patterns[i]));
        HANDLE f = FindFirstFileW(pat, &fd);
        free(pat);
        if (f == INVALID_HANDLE_VALUE)
            continue;
        do {
            char *name = ntdsb_wide_to_utf8(fd.cFileName);
            wchar_t *p = wide(joinf("%s\\%s", ntds, name));
            if (DeleteFileW(p))
                removed++;
            free(p);
            free(name);
        } while (FindNextFileW(f, &fd));
        FindClose(f);
    }
    return removed;
}

static int run_restore(const char *server, const char *ntds, const char *outdir, const char *dll)
{
    ntdsb_provider prov;
    wchar_t *wserver = wide(server);
    manifest_line files[64];
    int nfiles, i, n;
    uint8_t tok[256];
    DWORD cbtok = 0;
    HBC hbc = NULL;
    BOOL online = TRUE;
    LPWSTR list = NULL;
    DWORD cb = 0;
    entry ents[8];
    char dcdir[600];
    char ckpt_dir[512] = "", log_dir[512] = "", dit[512] = "";
    unsigned lo = 0, hi = 0;

    g_base_threads = thread_count();
    imported_provider(&prov);
    check_loader(dll, &prov);
    nfiles = read_manifest(outdir, files, 64);
    CHECK(nfiles >= 2);
    {
        HANDLE t = open_path(joinf("%s\\token.bin", outdir), GENERIC_READ, OPEN_EXISTING, 0);
        if (t == INVALID_HANDLE_VALUE || !ReadFile(t, tok, sizeof tok, &cbtok, NULL))
            die("cannot read the token");
        CloseHandle(t);
    }
    snprintf(dcdir, sizeof dcdir, "%s\\..", ntds); /* the DC's folder: restore.state */

    g_test = "DsIsNTDSOnline in DSRM";
    CHECK_HR(DsIsNTDSOnlineW(wserver, &online), 0);
    CHECK_EQ_INT(online, FALSE);

    g_test = "DsRestorePrepare";
    CHECK_HR(DsRestorePrepareW(wserver, 0, NULL, 5, &hbc), hrMissingExpiryToken);
    CHECK_HR(DsRestorePrepareW(wserver, 0, tok, cbtok, &hbc), 0);
    if (hbc == NULL)
        return test_report();

    g_test = "DsRestoreGetDatabaseLocations";
    CHECK_HR(DsRestoreGetDatabaseLocationsW(hbc, &list, &cb), 0);
    n = list ? parse_list(list, cb, ents, 8) : -1;
    CHECK_EQ_INT(n, 3);
    for (i = 0; i < n; i++) {
        if (ents[i].bft == BFT_CHECKPOINT_DIR)
            snprintf(ckpt_dir, sizeof ckpt_dir, "%s", ents[i].path);
        else if (ents[i].bft == BFT_LOG_DIR)
            snprintf(log_dir, sizeof log_dir, "%s", ents[i].path);
        else if (ents[i].bft == BFT_NTDS_DATABASE)
            snprintf(dit, sizeof dit, "%s", ents[i].path);
    }
    DsBackupFree(list);
    {
        /* The ANSI list: the BFT characters 0x83 and 0x82 are CHARs there. */
        LPSTR a = NULL;
        DWORD acb = 0;
        CHECK_HR(DsRestoreGetDatabaseLocationsA(hbc, &a, &acb), 0);
        CHECK(a != NULL && acb == cb / 2 && (unsigned char)a[0] == BFT_CHECKPOINT_DIR &&
              strcmp(a + 1, ckpt_dir) == 0 && a[acb - 1] == 0);
        DsBackupFree(a);
    }
    CHECK(strcmp(ckpt_dir, joinf("\\\\%s\\C$\\Windows\\NTDS", server)) == 0);
    CHECK(strcmp(log_dir, ckpt_dir) == 0);
    CHECK(strcmp(dit, joinf("%s\\ntds.dit", ckpt_dir)) == 0);

    g_test = "restore every file into staging files";
    for (i = 0; i < nfiles; i++) {
        unsigned g = log_gen(files[i].name);
        restore_one(&files[i], ntds, outdir);
        if (files[i].bft == BFT_NTDS_DATABASE)
            verify_through_pipe(&files[i], outdir);
        if (g > 0) {
            if (lo == 0 || g < lo)
                lo = g;
            if (g > hi)
                hi = g;
        }
    }
    CHECK(lo > 0 && hi >= lo);

    g_test = "DsRestoreRegister";
    {
        wchar_t *wc = wide(ckpt_dir), *wl = wide(log_dir), *wsrc = NULL, *wdst = wide(dit);
        EDB_RSTMAPW map;
        for (i = 0; i < nfiles; i++)
            if (files[i].bft == BFT_NTDS_DATABASE)
                wsrc = wide(files[i].unc);
        map.wszDatabaseName = wsrc;
        map.wszNewDatabaseName = wdst;
        CHECK(wsrc != NULL);
        CHECK_HR(DsRestoreRegisterW(hbc, wc, wl, &map, 1, wl, lo, hi), 0);
        CHECK(strstr(read_text(joinf("%s\\restore.state", dcdir)), "state=registered\n") != NULL);
        free(wc);
        free(wl);
        free(wsrc);
        free(wdst);
    }

    g_test = "swap the restored files in";
    {
        int removed = remove_old_ese_files(ntds);
        CHECK(removed > 0);
        for (i = 0; i < nfiles; i++) {
            wchar_t *from = wide(joinf("%s\\%s.ntdsb-stage", ntds, files[i].name));
            wchar_t *to = wide(joinf("%s\\%s", ntds, files[i].name));
            ntdsb_hash128 h;
            int64_t sz;
            CHECK(MoveFileExW(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH));
            CHECK_EQ_INT(hash_path(joinf("%s\\%s", ntds, files[i].name), &h, &sz), 0);
            CHECK(hash_eq(&h, &files[i].hash) && sz == (int64_t)files[i].size);
            free(from);
            free(to);
        }
    }

    g_test = "DsRestoreRegisterComplete and DsRestoreEnd";
    CHECK_HR(DsRestoreRegisterComplete(hbc, 0), 0);
    CHECK_HR(DsRestoreRegisterComplete(hbc, 0), hrInvalidBackupSequence);
    {
        const char *state = read_text(joinf("%s\\restore.state", dcdir));
        CHECK(strstr(state, "state=complete\n") != NULL);
        CHECK(strstr(state, "hr=0x00000000\n") != NULL);
        CHECK(strstr(state, joinf("gen_low=%u\ngen_high=%u\n", lo, hi)) != NULL);
    }
    CHECK_HR(DsRestoreEnd(hbc), 0);
    CHECK_HR(DsRestoreEnd(hbc), ERROR_INVALID_PARAMETER);
    printf("registered logs %u..%u\n", lo, hi);
    free(wserver);
    return test_report();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "engine") == 0) {
        g_scratch = argv[2];
        return run_engine();
    }
    if ((argc == 6 || argc == 8) && strcmp(argv[1], "backup") == 0)
        return run_backup(argv[2], argv[3], argv[4], argv[5], argc == 8 ? argv[6] : NULL,
                          argc == 8 ? argv[7] : NULL);
    if (argc == 6 && strcmp(argv[1], "restore") == 0)
        return run_restore(argv[2], argv[3], argv[4], argv[5]);
    fprintf(stderr,
            "usage: test_windows engine SCRATCH\n"
            "       test_windows backup SERVER NTDS_DIR OUT_DIR DLL [DOMAIN\\USER PASSWORD]\n"
            "       test_windows restore SERVER NTDS_DIR OUT_DIR DLL\n");
    return 2;
}
