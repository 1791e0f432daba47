/*
 * platform.h - everything the engine and the emulated DC ask of the operating
 * system, behind one interface with two implementations: platform_posix.c
 * (Linux and other POSIX systems) and platform_win32.c (Windows, built with
 * MSVC or mingw-w64).  Exactly one of the two is compiled into a binary; the
 * rest of the C code has no #ifdef for these concerns.
 *
 *   locks        ntdsb_mutex, ntdsb_cond (timed waits take a relative timeout
 *                and never jump with the wall clock)
 *   threads      ntdsb_thread (POSIX: started with the asynchronous signals
 *                blocked, so SIGINT reaches the caller's thread)
 *   time, CPUs   ntdsb_now (monotonic seconds), ntdsb_os_cpus
 *   memory       page-aligned buffers (ntdsb_alloc_aligned / ntdsb_free_aligned:
 *                Windows' aligned allocations need their own free)
 *   files        I/O on an ntdsb_file (ntdsb_engine.h): whole writes, positioned
 *                reads and writes, reads that give up when told to stop
 *   text         a system error code as a message; UTF-8 <-> UTF-16 (Windows paths)
 *
 * Error codes: every function that can fail returns (or stores) a system error
 * code - an errno value on POSIX, a GetLastError() value on Windows - which
 * ntdsb_strerror turns into text.  0 is never an error.
 *
 * Not part of the engine's contract (include/ntdsb_*.h); Cython never sees it.
 */
#ifndef NTDSB_PLATFORM_H
#define NTDSB_PLATFORM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ntdsb_engine.h" /* ntdsb_file, NTDSB_NO_FILE */

#ifdef _WIN32
/* ntdsb_engine.h already brought <windows.h> in (through ntdsbcli_abi.h). */
typedef SRWLOCK ntdsb_mutex;
typedef CONDITION_VARIABLE ntdsb_cond;
#  define NTDSB_MUTEX_INIT SRWLOCK_INIT
typedef struct ntdsb_thread {
    HANDLE handle;
    void *(*fn)(void *); /* read by the new thread: *t must not move until joined */
    void *arg;
} ntdsb_thread;
/* The system calls behind ntdsb_thread_start / ntdsb_mutex_init and
 * ntdsb_cond_init, as error records name them. */
#  define NTDSB_OS_THREAD_CALL "CreateThread"
#  define NTDSB_OS_LOCK_CALL "InitializeSRWLock"
#else
#  include <pthread.h>
typedef pthread_mutex_t ntdsb_mutex;
typedef pthread_cond_t ntdsb_cond;
#  define NTDSB_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
typedef struct ntdsb_thread {
    pthread_t id;
} ntdsb_thread;
#  define NTDSB_OS_THREAD_CALL "pthread_create"
#  define NTDSB_OS_LOCK_CALL "pthread_mutex_init"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- locks --------------------------------------------------------------------- */

/* Initialise (0, or a system error code: nothing to destroy then).  A static
 * mutex may instead be initialised with NTDSB_MUTEX_INIT.  The mutex is not
 * recursive. */
int ntdsb_mutex_init(ntdsb_mutex *m);
void ntdsb_mutex_destroy(ntdsb_mutex *m);
void ntdsb_mutex_lock(ntdsb_mutex *m);
void ntdsb_mutex_unlock(ntdsb_mutex *m);

/* A condition variable whose timed waits use a monotonic clock.  0 or a
 * system error code. */
int ntdsb_cond_init(ntdsb_cond *c);
void ntdsb_cond_destroy(ntdsb_cond *c);
/* Wait (m held on entry and on return).  Wakeups may be spurious: callers
 * re-check their predicate in a loop. */
void ntdsb_cond_wait(ntdsb_cond *c, ntdsb_mutex *m);
/* The same, giving up after about `seconds` (<= 0: return at once). */
void ntdsb_cond_wait_for(ntdsb_cond *c, ntdsb_mutex *m, double seconds);
void ntdsb_cond_signal(ntdsb_cond *c);
void ntdsb_cond_broadcast(ntdsb_cond *c);

/* ---- threads ------------------------------------------------------------------- */

/*
 * Start fn(arg) on a new thread; 0 or a system error code.  On POSIX the
 * thread starts with every asynchronous signal blocked (faults stay
 * unblocked so a crash still reaches the sanitizers), so SIGINT and friends go
 * to the caller's thread, where Python's handler and the cancel hooks live.
 * Windows has no such signals.  *t stays where it is until it is joined.
 */
int ntdsb_thread_start(ntdsb_thread *t, void *(*fn)(void *), void *arg);
/* Wait for the thread to end; fn's result is discarded. */
void ntdsb_thread_join(ntdsb_thread *t);
/*
 * Join a thread that may be blocked in a read of a pipe, a socket or a
 * terminal.  POSIX: the same as ntdsb_thread_join (such readers poll and see
 * the stop flag themselves, see ntdsb_file_read_some).  Windows: while the
 * thread has not ended, its blocking synchronous I/O is cancelled every 50 ms
 * (CancelSynchronousIo), which ntdsb_file_read_some reports as
 * NTDSB_IO_STOPPED once the stop flag is set.  Only for threads whose
 * blocking calls are reads of the caller's input, never provider calls.
 */
void ntdsb_thread_join_cancelling_io(ntdsb_thread *t);

/* ---- time, CPUs, memory ------------------------------------------------------- */

/* Seconds on a monotonic clock (only differences mean anything). */
double ntdsb_now(void);

/* CPUs this process may run on (a cpuset or an affinity mask may allow fewer
 * than are online); at least 1. */
long ntdsb_os_cpus(void);

/* n bytes aligned to a 4096-byte page (n == 0 allowed); NULL when out of
 * memory.  Freed with ntdsb_free_aligned only (free(NULL)-like for NULL). */
void *ntdsb_alloc_aligned(size_t n);
void ntdsb_free_aligned(void *p);

/* ---- files --------------------------------------------------------------------- */

/* 1 when f can be an open file (>= 0 on POSIX; not -1 or 0 on Windows). */
int ntdsb_file_valid(ntdsb_file f);

/* 1 for a regular file (a disk file on Windows), 0 for anything else: a pipe,
 * a socket, a terminal, or a handle that cannot be asked. */
int ntdsb_file_is_regular(ntdsb_file f);

/* Tell the system the file is about to be read once, front to back (POSIX:
 * posix_fadvise SEQUENTIAL; Windows: nothing, it can only be asked at open). */
void ntdsb_file_advise_sequential(ntdsb_file f);

/* Write all `len` bytes at the file's position, retrying interrupted and short
 * writes.  0, or -1 with *sys_err set (a write that takes nothing is an I/O
 * error rather than a loop). */
int ntdsb_file_write_all(ntdsb_file f, const void *buf, size_t len, int *sys_err);

/*
 * Positioned I/O.  Open a file's positional twin with ntdsb_file_pos_open and
 * give it to the two calls below, then close it with ntdsb_file_pos_close:
 * POSIX pread/pwrite never move the file position, so the twin is f itself;
 * a positioned ReadFile/WriteFile does move it, so on Windows the twin is a
 * second handle to the same file (ReOpenFile; f itself if that is refused)
 * and the caller's position stays where it was.
 */
ntdsb_file ntdsb_file_pos_open(ntdsb_file f);
void ntdsb_file_pos_close(ntdsb_file twin, ntdsb_file f);
/* Write all `len` bytes at offset `off`.  0, or -1 with *sys_err set. */
int ntdsb_file_pwrite_all(ntdsb_file f, const void *buf, size_t len, uint64_t off,
                          int *sys_err);
/* One read of up to `len` bytes at `off` (interruptions retried): 0 with
 * *got bytes (0: end of file), or -1 with *sys_err set. */
int ntdsb_file_pread(ntdsb_file f, void *buf, size_t len, uint64_t off, size_t *got,
                     int *sys_err);

/* Results of ntdsb_file_read_some. */
#define NTDSB_IO_DATA     0  /* *got > 0 bytes were read */
#define NTDSB_IO_EOF      1  /* end of input (a closed pipe, the end of a file) */
#define NTDSB_IO_STOPPED  2  /* *stop was set: nothing was read */
#define NTDSB_IO_ERROR    3  /* *sys_err set */

/* How long a read that may block waits before looking at *stop again. */
#define NTDSB_IO_POLL_MS 100

/*
 * Read up to `len` (> 0) bytes at the file's position, retrying interruptions
 * and, on a non-blocking descriptor, waiting for data instead of spinning.
 * *stop is checked first and whenever the read had to wait.  may_block: f is
 * not a regular file, so a read can wait for ever; POSIX then polls every
 * NTDSB_IO_POLL_MS for *stop, Windows reads blocking and relies on the thread
 * being joined with ntdsb_thread_join_cancelling_io.
 */
int ntdsb_file_read_some(ntdsb_file f, void *buf, size_t len, size_t *got, int may_block,
                         atomic_int *stop, int *sys_err);

/* ---- text ---------------------------------------------------------------------- */

/* The message of a system error code, without a trailing newline or period.
 * Returns buf or a static string. */
const char *ntdsb_strerror(int code, char *buf, size_t len);

#ifdef _WIN32
/* UTF-8 -> malloc'd NUL-terminated UTF-16 (for the W file calls); NULL when s
 * is not valid UTF-8 (errno-free: GetLastError says why) or out of memory. */
wchar_t *ntdsb_utf8_to_wide(const char *s);
/* UTF-16 -> malloc'd UTF-8; NULL on unpaired surrogates or out of memory. */
char *ntdsb_wide_to_utf8(const wchar_t *w);
#endif

#ifdef __cplusplus
}
#endif
#endif /* NTDSB_PLATFORM_H */
