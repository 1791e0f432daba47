/*
 * emu_os.h - what the emulated DC asks of the operating system beyond the
 * engine's platform layer (src/engine/platform.h: locks, the clock,
 * positioned reads): files by path, directories, the DC's locks, atomic
 * replacement, hard links, the environment, time, and the PBKDF2 that checks
 * passwords.  emu_os_posix.c and emu_os_win32.c implement it; exactly one is
 * built.  The rest of src/emu has no #ifdef for these concerns.
 *
 * Errors are reported the POSIX way on both systems: -1 with errno set (the
 * Windows half maps GetLastError() onto ENOENT, EACCES, EEXIST, ENOSPC,
 * ENOMEM, ENOTDIR or EIO), so the emulator maps them to HRESULTs in one way.
 *
 * Paths are UTF-8 everywhere.  On Windows they go through the W calls (never
 * the ANSI code page), files are opened in binary mode with every sharing
 * flag (a reader must not stop a rename), and '/' separators are fine.
 */
#ifndef NTDSB_EMU_OS_H
#define NTDSB_EMU_OS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "platform.h" /* ntdsb_file: a descriptor on POSIX, a HANDLE on Windows */

#pragma GCC visibility push(hidden)

/* An open file of the emulator; EMU_NO_FD when none. */
typedef ntdsb_file emu_fd;
#define EMU_NO_FD NTDSB_NO_FILE

typedef struct emu_file_info {
    int64_t size;
    unsigned mode;   /* permission bits (0644 ...); 0 on Windows */
    int regular;     /* a regular file (not a directory, device or pipe) */
} emu_file_info;

/* ---- files ------------------------------------------------------------- */

/* Open for reading.  0 with *fd, or -1 with errno. */
int emu_os_open_read(const char *path, emu_fd *fd);
/* Create or truncate for writing (mode: permission bits, POSIX only).
 * 0 with *fd, or -1 with errno. */
int emu_os_create(const char *path, unsigned mode, emu_fd *fd);
int emu_os_fstat(emu_fd fd, emu_file_info *info);           /* 0 or -1 errno */
/* Read exactly n bytes at off: 0, or -1 (an error or a short file). */
int emu_os_pread_full(emu_fd fd, void *buf, size_t n, uint64_t off);
/* Write all n bytes at the file position: 0 or -1 errno. */
int emu_os_write_all(emu_fd fd, const void *buf, size_t n);
int emu_os_set_size(emu_fd fd, uint64_t size);              /* ftruncate: 0 or -1 errno */
int emu_os_sync(emu_fd fd);                                 /* fsync: 0 or -1 errno */
int emu_os_close(emu_fd fd);                                /* 0 or -1 errno */

/* 1 when path names a regular file (following links), else 0. */
int emu_os_is_regular(const char *path);
/* Rename, replacing `to` if it exists (an open `to` may refuse on Windows:
 * close it first).  0 or -1 errno. */
int emu_os_rename(const char *from, const char *to);
/* Hard link `to` -> the file `from`; EEXIST when `to` exists.  0 or -1 errno. */
int emu_os_link(const char *from, const char *to);
int emu_os_remove(const char *path);                        /* 0 or -1 errno */
/* Make a directory's entries durable (fsync on POSIX; nothing on Windows,
 * where renames are made with MOVEFILE_WRITE_THROUGH instead). */
void emu_os_sync_dir(const char *dir);

/* fopen(path, "r") in binary mode, close-on-exec where that exists; NULL with
 * errno.  Lines come from emu_os_getline (getline(3)'s contract). */
FILE *emu_os_fopen_read(const char *path);
long emu_os_getline(char **line, size_t *cap, FILE *f);

/*
 * Write dir/name atomically: a temporary file beside it, fsync, rename over
 * the old one, fsync of the directory.  A reader sees the old content or the
 * new, never part of it.  0 or -1 errno.
 */
int emu_write_atomic(const char *dir, const char *name, const char *data, size_t len);

/* Append one line with a single write to a file opened for appending only, so
 * lines from several threads and processes never mix.  Failures are ignored
 * (the trace never changes a result). */
void emu_os_append(const char *path, const char *line, size_t len);

/*
 * Take the lock file `path` (created if missing), exclusively and without
 * waiting.  0 with *fd holding it, 1 when another handle holds it (in this or
 * any other process), -1 on error.  The lock belongs to the open file, so two
 * handles of one process exclude each other, and it dies with the file (or
 * the process): a crash never leaves it behind.
 */
int emu_os_lock_try(const char *path, emu_fd *fd);

/* ---- directories ------------------------------------------------------- */

typedef struct emu_dir emu_dir;
/* NULL with errno when the directory cannot be listed. */
emu_dir *emu_os_opendir(const char *path);
/* The next entry's name (UTF-8, "." and ".." included), valid until the next
 * call; NULL at the end. */
const char *emu_os_readdir(emu_dir *d);
void emu_os_closedir(emu_dir *d);

/* 1 when the file system folds case (Windows): `ROOT/dc01` then opens
 * `ROOT/DC01`, so the emulator asks the directory for a name's real spelling
 * instead of trusting a successful open. */
int emu_os_folds_case(void);
/* 1 when a single file name (no separators) would not name a plain file of
 * the directory: on Windows "ntds.dit:stream" (an alternate data stream),
 * device names (CON, NUL, COM1 ...) and names ending in a dot or a space. */
int emu_os_name_unsafe(const char *name);

/* ---- process, environment, time --------------------------------------- */

long emu_os_pid(void);
/* A malloc'd UTF-8 copy of the variable, or NULL when unset (or no memory). */
char *emu_os_getenv(const char *name);
/* gmtime for the emulated clock: 0, or -1 when t cannot be represented. */
int emu_os_gmtime(int64_t t, struct tm *out);
void emu_os_sleep_us(uint64_t us);

/* ---- password hashes ---------------------------------------------------- */

/* PBKDF2-HMAC-SHA256(pw, salt, iterations, 32 bytes) into out.  0 or -1. */
int emu_os_pbkdf2_sha256(const char *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
                         uint32_t iterations, uint8_t out[32]);
/* Overwrite n bytes in a way the compiler keeps. */
void emu_os_wipe(void *p, size_t n);
/* Constant-time comparison: 1 when equal. */
int emu_os_memeq(const void *a, const void *b, size_t n);

#pragma GCC visibility pop

#endif /* NTDSB_EMU_OS_H */
