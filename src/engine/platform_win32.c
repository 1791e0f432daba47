/*
 * platform_win32.c - platform.h on Windows: SRW locks and condition
 * variables, native threads, QueryPerformanceCounter, _aligned_malloc, and
 * I/O on OS HANDLEs.  Nothing here needs a POSIX layer (no winpthreads), so
 * the same file builds with MSVC and with mingw-w64.  platform_posix.c is the
 * other half.
 */
#ifndef _WIN32
#  error "platform_win32.c is the Windows half of platform.h; build platform_posix.c elsewhere"
#endif
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

/* One ReadFile/WriteFile moves at most this much (the DWORD count, kept well
 * below 4 GiB so that a short transfer cannot be mistaken for a full one). */
#define IO_STEP 0x40000000u

static HANDLE as_handle(ntdsb_file f)
{
    return (HANDLE)f;
}

/* ---- locks --------------------------------------------------------------------- */

int ntdsb_mutex_init(ntdsb_mutex *m)
{
    InitializeSRWLock(m); /* cannot fail, needs no destruction */
    return 0;
}

void ntdsb_mutex_destroy(ntdsb_mutex *m)
{
    (void)m;
}

void ntdsb_mutex_lock(ntdsb_mutex *m)
{
    AcquireSRWLockExclusive(m);
}

void ntdsb_mutex_unlock(ntdsb_mutex *m)
{
    ReleaseSRWLockExclusive(m);
}

int ntdsb_cond_init(ntdsb_cond *c)
{
    /* Waits take a relative timeout in milliseconds, measured by the kernel
     * on the interrupt clock: they never jump with the wall clock. */
    InitializeConditionVariable(c);
    return 0;
}

void ntdsb_cond_destroy(ntdsb_cond *c)
{
    (void)c;
}

void ntdsb_cond_wait(ntdsb_cond *c, ntdsb_mutex *m)
{
    SleepConditionVariableSRW(c, m, INFINITE, 0);
}

void ntdsb_cond_wait_for(ntdsb_cond *c, ntdsb_mutex *m, double seconds)
{
    double ms = seconds * 1000.0;
    DWORD wait;

    if (ms <= 0)
        wait = 0;
    else if (ms >= 86400000.0)
        wait = 86400000u; /* a day; the callers' timeouts are far shorter */
    else
        wait = (DWORD)ms + 1u; /* round up: never return before the timeout */
    SleepConditionVariableSRW(c, m, wait, 0);
}

void ntdsb_cond_signal(ntdsb_cond *c)
{
    WakeConditionVariable(c);
}

void ntdsb_cond_broadcast(ntdsb_cond *c)
{
    WakeAllConditionVariable(c);
}

/* ---- threads ------------------------------------------------------------------- */

static DWORD WINAPI thread_main(LPVOID arg)
{
    ntdsb_thread *t = arg;
    (void)t->fn(t->arg);
    return 0;
}

int ntdsb_thread_start(ntdsb_thread *t, void *(*fn)(void *), void *arg)
{
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
    return t->handle != NULL ? 0 : (int)GetLastError();
}

void ntdsb_thread_join(ntdsb_thread *t)
{
    WaitForSingleObject(t->handle, INFINITE);
    CloseHandle(t->handle);
    t->handle = NULL;
}

void ntdsb_thread_join_cancelling_io(ntdsb_thread *t)
{
    /* A thread blocked in ReadFile on a pipe does not look at any flag: cancel
     * its synchronous I/O until it ends.  Cancelling once is not enough: the
     * thread may not have entered its read yet, or may start another one
     * before it sees the stop flag. */
    while (WaitForSingleObject(t->handle, 50) == WAIT_TIMEOUT)
        CancelSynchronousIo(t->handle);
    CloseHandle(t->handle);
    t->handle = NULL;
}

/* ---- time, CPUs, memory ------------------------------------------------------- */

double ntdsb_now(void)
{
    LARGE_INTEGER freq, c;
    /* The frequency is fixed at boot and cheap to ask for: no cache to race on. */
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)freq.QuadPart;
}

long ntdsb_os_cpus(void)
{
    DWORD_PTR process, system;
    long n = 0;

    /* The affinity mask says which CPUs this process may use (64 at most: one
     * processor group, which is also all the engine's thread limit needs). */
    if (GetProcessAffinityMask(GetCurrentProcess(), &process, &system)) {
        for (; process != 0; process &= process - 1)
            n++;
    }
    if (n < 1) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        n = (long)si.dwNumberOfProcessors;
    }
    return n < 1 ? 1 : n;
}

void *ntdsb_alloc_aligned(size_t n)
{
    return _aligned_malloc(n != 0 ? n : 1, 4096);
}

void ntdsb_free_aligned(void *p)
{
    _aligned_free(p);
}

/* ---- files --------------------------------------------------------------------- */

int ntdsb_file_valid(ntdsb_file f)
{
    /* -1 is INVALID_HANDLE_VALUE; 0 is what GetStdHandle gives for "none". */
    return f != NTDSB_NO_FILE && f != 0;
}

int ntdsb_file_is_regular(ntdsb_file f)
{
    return GetFileType(as_handle(f)) == FILE_TYPE_DISK;
}

void ntdsb_file_advise_sequential(ntdsb_file f)
{
    (void)f; /* FILE_FLAG_SEQUENTIAL_SCAN exists only at CreateFile */
}

int ntdsb_file_write_all(ntdsb_file f, const void *buf, size_t len, int *sys_err)
{
    const unsigned char *p = buf;

    while (len > 0) {
        DWORD step = len > IO_STEP ? IO_STEP : (DWORD)len, n = 0;
        if (!WriteFile(as_handle(f), p, step, &n, NULL)) {
            *sys_err = (int)GetLastError();
            return -1;
        }
        if (n == 0) {
            *sys_err = ERROR_WRITE_FAULT; /* taking nothing would loop for ever */
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

ntdsb_file ntdsb_file_pos_open(ntdsb_file f)
{
    /* A positioned WriteFile moves the handle's file pointer: give the
     * positioned calls their own handle (their own file object), so the
     * caller's position does not change under it.  Sharing everything: the
     * caller's handle is open too, with whatever access it has. */
    HANDLE twin = ReOpenFile(as_handle(f), GENERIC_READ | GENERIC_WRITE,
                             FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, 0);
    if (twin == INVALID_HANDLE_VALUE)
        twin = ReOpenFile(as_handle(f), GENERIC_WRITE,
                          FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, 0);
    return twin != INVALID_HANDLE_VALUE ? (ntdsb_file)twin : f;
}

void ntdsb_file_pos_close(ntdsb_file twin, ntdsb_file f)
{
    if (twin != f)
        CloseHandle(as_handle(twin));
}

static OVERLAPPED at_offset(uint64_t off)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    return ov;
}

int ntdsb_file_pwrite_all(ntdsb_file f, const void *buf, size_t len, uint64_t off,
                          int *sys_err)
{
    const unsigned char *p = buf;

    while (len > 0) {
        DWORD step = len > IO_STEP ? IO_STEP : (DWORD)len, n = 0;
        OVERLAPPED ov = at_offset(off);
        if (!WriteFile(as_handle(f), p, step, &n, &ov)) {
            *sys_err = (int)GetLastError();
            return -1;
        }
        if (n == 0) {
            *sys_err = ERROR_WRITE_FAULT;
            return -1;
        }
        p += n;
        len -= n;
        off += n;
    }
    return 0;
}

int ntdsb_file_pread(ntdsb_file f, void *buf, size_t len, uint64_t off, size_t *got,
                     int *sys_err)
{
    DWORD step = len > IO_STEP ? IO_STEP : (DWORD)len, n = 0;
    OVERLAPPED ov = at_offset(off);

    *got = 0;
    if (!ReadFile(as_handle(f), buf, step, &n, &ov)) {
        DWORD e = GetLastError();
        if (e == ERROR_HANDLE_EOF)
            return 0; /* at or past the end: no bytes, not an error */
        *sys_err = (int)e;
        return -1;
    }
    *got = n;
    return 0;
}

int ntdsb_file_read_some(ntdsb_file f, void *buf, size_t len, size_t *got, int may_block,
                         atomic_int *stop, int *sys_err)
{
    (void)may_block; /* a blocking read is cancelled by the joiner instead */
    *got = 0;
    for (;;) {
        DWORD step = len > IO_STEP ? IO_STEP : (DWORD)len, n = 0, e;
        if (atomic_load_explicit(stop, memory_order_relaxed))
            return NTDSB_IO_STOPPED;
        if (ReadFile(as_handle(f), buf, step, &n, NULL)) {
            if (n == 0)
                return NTDSB_IO_EOF;
            *got = n;
            return NTDSB_IO_DATA;
        }
        e = GetLastError();
        switch (e) {
        case ERROR_BROKEN_PIPE:   /* the writer closed its end */
        case ERROR_HANDLE_EOF:
            return NTDSB_IO_EOF;
        case ERROR_OPERATION_ABORTED:
            /* CancelSynchronousIo: the loop's stop check says whether it
             * was ours; otherwise read again. */
            continue;
        case ERROR_NO_DATA:
            /* A pipe in non-blocking mode, empty: wait, don't spin. */
            Sleep(10);
            continue;
        default:
            *sys_err = (int)e;
            return NTDSB_IO_ERROR;
        }
    }
}

/* ---- text ---------------------------------------------------------------------- */

const char *ntdsb_strerror(int code, char *buf, size_t len)
{
    DWORD n;

    if (len == 0)
        return "";
    n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                       (DWORD)code, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), buf,
                       (DWORD)len, NULL);
    /* The system's messages end in ".\r\n"; ours never end in a period. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        snprintf(buf, len, "Windows error %d", code);
    return buf;
}

wchar_t *ntdsb_utf8_to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w;

    if (n <= 0)
        return NULL;
    w = malloc((size_t)n * sizeof *w);
    if (w != NULL && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

char *ntdsb_wide_to_utf8(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, NULL, 0, NULL, NULL);
    char *s;

    if (n <= 0)
        return NULL;
    s = malloc((size_t)n);
    if (s != NULL &&
        WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, s, n, NULL, NULL) != n) {
        free(s);
        s = NULL;
    }
    return s;
}
