/*
 * emu_os_win32.c - emu_os.h on Windows: UTF-16 paths and the W calls,
 * HANDLEs opened with every sharing flag, LockFileEx for the DC's locks,
 * MoveFileExW for atomic replacement, CreateHardLinkW, and bcrypt's PBKDF2.
 * emu_os_posix.c is the POSIX half.
 *
 * What differs from POSIX and how it is met here:
 *   - rename() does not replace: MoveFileExW(MOVEFILE_REPLACE_EXISTING |
 *     MOVEFILE_WRITE_THROUGH), which also makes the rename durable (there is
 *     no directory fsync);
 *   - a file that is open cannot always be renamed over or deleted: every
 *     open here shares read, write and delete, and the emulator closes what it
 *     reads before it replaces it;
 *   - O_APPEND is not atomic across processes through the C runtime: the
 *     trace opens with FILE_APPEND_DATA only, which appends every WriteFile
 *     whole at the end of the file;
 *   - the C runtime reads narrow paths in the ANSI code page and opens files
 *     in text mode: nothing here uses the C runtime's file calls except
 *     _wfopen(..., L"rb") for dc.conf.
 */
#ifndef _WIN32
#  error "emu_os_win32.c is the Windows half of emu_os.h; build emu_os_posix.c elsewhere"
#endif
#include "emu_internal.h" /* emu_join, emu_ascii_casecmp; <windows.h> */
#include "emu_os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bcrypt.h> /* after <windows.h>, which it needs */

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* GetLastError() as the errno values the emulator distinguishes. */
static int errno_of(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_BAD_NETPATH:
    case ERROR_INVALID_DRIVE:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_PRIVILEGE_NOT_HELD:
        return EACCES;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
        return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    case ERROR_DIRECTORY:
        return ENOTDIR;
    default:
        return EIO;
    }
}

/* -1 with errno from GetLastError(). */
static int fail(void)
{
    errno = errno_of(GetLastError());
    return -1;
}

static wchar_t *wpath(const char *path)
{
    wchar_t *w = ntdsb_utf8_to_wide(path);
    if (!w)
        errno = GetLastError() == ERROR_NO_UNICODE_TRANSLATION ? ENOENT : ENOMEM;
    return w;
}

static HANDLE h_of(emu_fd fd)
{
    return (HANDLE)fd;
}

static int open_handle(const char *path, DWORD access, DWORD disposition, emu_fd *fd)
{
    wchar_t *w = wpath(path);
    HANDLE h;

    *fd = EMU_NO_FD;
    if (!w)
        return -1;
    h = CreateFileW(w, access, SHARE_ALL, NULL, disposition, FILE_ATTRIBUTE_NORMAL, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE)
        return fail();
    *fd = (emu_fd)h;
    return 0;
}

static int is_directory(const char *path)
{
    wchar_t *w = ntdsb_utf8_to_wide(path);
    DWORD a;

    if (!w)
        return 0;
    a = GetFileAttributesW(w);
    free(w);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

/* ---- files ------------------------------------------------------------- */

int emu_os_open_read(const char *path, emu_fd *fd)
{
    if (open_handle(path, GENERIC_READ, OPEN_EXISTING, fd) != 0) {
        /* A directory cannot be opened as a file (access denied): to the
         * emulator it is simply not a file, as on POSIX. */
        if (errno == EACCES && is_directory(path))
            errno = ENOENT;
        return -1;
    }
    if (GetFileType(h_of(*fd)) != FILE_TYPE_DISK) {
        CloseHandle(h_of(*fd)); /* CON, NUL, a pipe: not a file of the DC */
        *fd = EMU_NO_FD;
        errno = ENOENT;
        return -1;
    }
    return 0;
}

int emu_os_create(const char *path, unsigned mode, emu_fd *fd)
{
    (void)mode; /* the folder's ACL decides */
    return open_handle(path, GENERIC_WRITE, CREATE_ALWAYS, fd);
}

int emu_os_fstat(emu_fd fd, emu_file_info *info)
{
    BY_HANDLE_FILE_INFORMATION bi;

    if (!GetFileInformationByHandle(h_of(fd), &bi))
        return fail();
    info->size = (int64_t)((uint64_t)bi.nFileSizeHigh << 32 | bi.nFileSizeLow);
    info->mode = 0;
    info->regular = !(bi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE));
    return 0;
}

int emu_os_pread_full(emu_fd fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        size_t r = 0;
        int err = 0;
        if (ntdsb_file_pread(fd, (char *)buf + got, n - got, off + got, &r, &err) != 0 || r == 0)
            return -1;
        got += r;
    }
    return 0;
}

int emu_os_write_all(emu_fd fd, const void *buf, size_t n)
{
    int err = 0;

    if (ntdsb_file_write_all(fd, buf, n, &err) != 0) {
        errno = errno_of((DWORD)err);
        return -1;
    }
    return 0;
}

int emu_os_set_size(emu_fd fd, uint64_t size)
{
    FILE_END_OF_FILE_INFO eof;

    eof.EndOfFile.QuadPart = (LONGLONG)size;
    return SetFileInformationByHandle(h_of(fd), FileEndOfFileInfo, &eof, sizeof eof) ? 0 : fail();
}

int emu_os_sync(emu_fd fd)
{
    return FlushFileBuffers(h_of(fd)) ? 0 : fail();
}

int emu_os_close(emu_fd fd)
{
    return CloseHandle(h_of(fd)) ? 0 : fail();
}

int emu_os_is_regular(const char *path)
{
    wchar_t *w = ntdsb_utf8_to_wide(path);
    DWORD a;

    if (!w)
        return 0;
    a = GetFileAttributesW(w);
    free(w);
    return a != INVALID_FILE_ATTRIBUTES &&
           !(a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE));
}

int emu_os_rename(const char *from, const char *to)
{
    wchar_t *wf = wpath(from), *wt = wf ? wpath(to) : NULL;
    BOOL ok;

    if (!wt) {
        free(wf);
        return -1;
    }
    ok = MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
    free(wf);
    free(wt);
    return ok ? 0 : fail();
}

int emu_os_link(const char *from, const char *to)
{
    wchar_t *wf = wpath(from), *wt = wf ? wpath(to) : NULL;
    BOOL ok;

    if (!wt) {
        free(wf);
        return -1;
    }
    ok = CreateHardLinkW(wt, wf, NULL);
    free(wf);
    free(wt);
    return ok ? 0 : fail();
}

int emu_os_remove(const char *path)
{
    wchar_t *w = wpath(path);
    BOOL ok;

    if (!w)
        return -1;
    ok = DeleteFileW(w);
    free(w);
    return ok ? 0 : fail();
}

void emu_os_sync_dir(const char *dir)
{
    (void)dir; /* renames are MOVEFILE_WRITE_THROUGH */
}

FILE *emu_os_fopen_read(const char *path)
{
    wchar_t *w = wpath(path);
    FILE *f;

    if (!w)
        return NULL;
    f = _wfopen(w, L"rb");
    free(w);
    return f;
}

long emu_os_getline(char **line, size_t *cap, FILE *f)
{
    size_t n = 0;
    int c;

    /* getline(3): the line with its '\n', NUL-terminated; -1 at end of file. */
    while ((c = getc(f)) != EOF) {
        if (n + 2 > *cap) {
            size_t nc = *cap ? *cap * 2 : 128;
            char *nl = realloc(*line, nc);
            if (!nl) {
                errno = ENOMEM;
                return -1;
            }
            *line = nl;
            *cap = nc;
        }
        (*line)[n++] = (char)c;
        if (c == '\n')
            break;
    }
    if (n == 0)
        return -1;
    (*line)[n] = '\0';
    return (long)n;
}

int emu_write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    static volatile LONG counter; /* distinct tmp names for concurrent threads */
    unsigned long k = (unsigned long)InterlockedIncrement(&counter);
    char *path = emu_join(dir, name), *tmp;
    emu_fd fd;
    int err = 0;

    if (!path)
        return -1;
    tmp = malloc(strlen(path) + 64);
    if (!tmp) {
        free(path);
        return -1;
    }
    sprintf(tmp, "%s.tmp.%lu.%lu", path, (unsigned long)GetCurrentProcessId(), k);
    if (emu_os_create(tmp, 0644, &fd) != 0) {
        err = errno;
        goto out;
    }
    if (emu_os_write_all(fd, data, len) != 0 || emu_os_sync(fd) != 0)
        err = errno;
    if (emu_os_close(fd) != 0 && !err)
        err = errno;
    if (!err && emu_os_rename(tmp, path) != 0)
        err = errno;
    if (err)
        emu_os_remove(tmp);
out:
    free(tmp);
    free(path);
    errno = err;
    return err ? -1 : 0;
}

void emu_os_append(const char *path, const char *line, size_t len)
{
    emu_fd fd;
    DWORD n;

    /* FILE_APPEND_DATA without FILE_WRITE_DATA: every WriteFile goes whole
     * to the current end of the file, whoever else appends. */
    if (open_handle(path, FILE_APPEND_DATA | SYNCHRONIZE, OPEN_ALWAYS, &fd) != 0)
        return;
    (void)WriteFile(h_of(fd), line, (DWORD)len, &n, NULL);
    CloseHandle(h_of(fd));
}

int emu_os_lock_try(const char *path, emu_fd *fd)
{
    OVERLAPPED ov;
    emu_fd f;

    *fd = EMU_NO_FD;
    if (open_handle(path, GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS, &f) != 0)
        return -1;
    /* A byte-range lock belongs to the handle: two handles of one process
     * exclude each other just like two processes do, and it goes with the
     * handle (or the process). */
    memset(&ov, 0, sizeof ov);
    if (!LockFileEx(h_of(f), LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov)) {
        DWORD e = GetLastError();
        CloseHandle(h_of(f));
        return e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING ? 1 : -1;
    }
    *fd = f;
    return 0;
}

/* ---- directories ------------------------------------------------------- */

struct emu_dir {
    HANDLE find;
    int first;            /* data holds the first entry, not yet returned */
    WIN32_FIND_DATAW data;
    char *name;           /* the last entry returned, UTF-8 */
};

emu_dir *emu_os_opendir(const char *path)
{
    size_t n = strlen(path);
    char *pattern = malloc(n + 3);
    wchar_t *w;
    emu_dir *d;

    if (!pattern) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(pattern, path, n);
    memcpy(pattern + n, "\\*", 3);
    w = wpath(pattern);
    free(pattern);
    if (!w)
        return NULL;
    d = calloc(1, sizeof *d);
    if (!d) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    d->find = FindFirstFileW(w, &d->data);
    free(w);
    if (d->find == INVALID_HANDLE_VALUE) {
        free(d);
        fail();
        return NULL;
    }
    d->first = 1;
    return d;
}

const char *emu_os_readdir(emu_dir *d)
{
    free(d->name);
    d->name = NULL;
    for (;;) {
        if (d->first)
            d->first = 0;
        else if (!FindNextFileW(d->find, &d->data))
            return NULL;
        d->name = ntdsb_wide_to_utf8(d->data.cFileName);
        if (d->name)
            return d->name;
        /* A name that is not valid UTF-16 matches nothing of ours: skip it. */
    }
}

void emu_os_closedir(emu_dir *d)
{
    FindClose(d->find);
    free(d->name);
    free(d);
}

int emu_os_folds_case(void)
{
    return 1;
}

int emu_os_name_unsafe(const char *name)
{
    static const char *const devices[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"};
    size_t n = strlen(name), base = strcspn(name, "."), i;

    if (strchr(name, ':') || strchr(name, '\\') || n == 0 || name[n - 1] == '.' ||
        name[n - 1] == ' ')
        return 1;
    /* A device name opens the device, whatever the folder and extension. */
    for (i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        if (strlen(devices[i]) == base && emu_ascii_ncasecmp(name, devices[i], base) == 0)
            return 1;
    }
    if (base == 4 && (emu_ascii_ncasecmp(name, "COM", 3) == 0 ||
                      emu_ascii_ncasecmp(name, "LPT", 3) == 0) &&
        name[3] >= '0' && name[3] <= '9')
        return 1;
    return 0;
}

/* ---- process, environment, time --------------------------------------- */

long emu_os_pid(void)
{
    return (long)GetCurrentProcessId();
}

char *emu_os_getenv(const char *name)
{
    wchar_t *wn = ntdsb_utf8_to_wide(name), *v;
    char *r = NULL;

    if (!wn)
        return NULL;
    /* _wgetenv: the variable in UTF-16, not squeezed through the ANSI code page. */
    v = _wgetenv(wn);
    if (v)
        r = ntdsb_wide_to_utf8(v);
    free(wn);
    return r;
}

int emu_os_gmtime(int64_t t, struct tm *out)
{
    __time64_t tt = (__time64_t)t;
    return _gmtime64_s(out, &tt) == 0 ? 0 : -1;
}

void emu_os_sleep_us(uint64_t us)
{
    /* Milliseconds are the finest sleep Windows has: round up, so a latency
     * fault never vanishes. */
    uint64_t ms = (us + 999u) / 1000u;
    Sleep(ms > 0xFFFFFFFEu ? 0xFFFFFFFEu : (DWORD)ms);
}

/* ---- password hashes ---------------------------------------------------- */

int emu_os_pbkdf2_sha256(const char *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                         uint32_t iterations, uint8_t out[32])
{
    static const UCHAR empty[1] = {0};
    BCRYPT_ALG_HANDLE alg;
    NTSTATUS st;

    if (pw_len > 0xFFFFFFFFu || salt_len > 0xFFFFFFFFu)
        return -1;
    st = BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM, NULL,
                                     BCRYPT_ALG_HANDLE_HMAC_FLAG);
    if (st < 0)
        return -1;
    /* bcrypt wants pointers even for empty inputs. */
    st = BCryptDeriveKeyPBKDF2(alg, pw_len ? (PUCHAR)pw : (PUCHAR)empty, (ULONG)pw_len,
                               salt_len ? (PUCHAR)salt : (PUCHAR)empty, (ULONG)salt_len,
                               iterations > 0x7FFFFFFFu ? 0x7FFFFFFFu : iterations, out, 32, 0);
    BCryptCloseAlgorithmProvider(alg, 0);
    return st < 0 ? -1 : 0;
}

void emu_os_wipe(void *p, size_t n)
{
    SecureZeroMemory(p, n);
}

int emu_os_memeq(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    size_t i;

    for (i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}
