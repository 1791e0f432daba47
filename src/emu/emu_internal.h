/*
 * emu_internal.h - shared declarations of the emulated domain controller
 * (libntdsbemu.so).  Nothing here is exported: only the Ds* entry points,
 * marked NTDSB_EMU_EXPORT, are visible outside the library.
 *
 * The emulator plays a DC over a folder (docs/EMULATOR.md):
 *   ROOT/<DC>/dc.conf, mode, NTDS/, restore.state, calls.log, *.lock
 * Every function that can fail returns an HRESULT of the real API (0 = OK),
 * so the entry points can hand errors through unchanged.
 */
#ifndef NTDSB_EMU_INTERNAL_H
#define NTDSB_EMU_INTERNAL_H

#ifndef _GNU_SOURCE
#  define _GNU_SOURCE
#endif

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Windows: this library *is* ntdsbcli.dll, so the SDK header must declare
 * its functions plainly, not as imports (the switch the SDK has for that). */
#ifdef _WIN32
#  define _NTDSBCLI_DEFINED
#endif
#include "ntdsbcli_abi.h"
#include "emu_os.h"   /* files, directories, locks, time, PBKDF2 */
#include "platform.h" /* ntdsb_mutex */

/* What a client can call.  ELF: default visibility for the Ds* functions,
 * hidden for everything else.  Windows: the export list is ntdsbcli.def
 * (exactly the real DLL's names), so nothing needs marking. */
#ifdef _WIN32
#  define NTDSB_EMU_EXPORT
#else
#  define NTDSB_EMU_EXPORT __attribute__((visibility("default")))
#endif

/* Everything declared below stays inside the library whatever -fvisibility
 * the build uses, so a provider never leaks helper symbols. */
#pragma GCC visibility push(hidden)

/* Longest string (in UTF-16 code units) accepted from a caller: the Windows
 * long-path limit.  Longer strings are refused rather than scanned forever. */
#define EMU_MAX_WCHARS 32767u

/* Privilege bits (dc.conf `default_privileges=` and `account=` lines). */
#define EMU_PRIV_BACKUP  0x1u
#define EMU_PRIV_RESTORE 0x2u
#define EMU_PRIV_ADMIN   0x4u

/* Expiry token v1 (docs/EMULATOR.md). */
#define EMU_TOKEN_SIZE    64u
#define EMU_TOKEN_VERSION 1u

/* Size of an ESE log / checkpoint header copy. */
#define EMU_LOG_HEADER 4096u
#define EMU_MAX_GEN    0xFFFFFu

/* ---- dc.conf snapshot (emu_state.c) ----------------------------------- */

typedef struct emu_account {
    char *domain;         /* NULL: the DC's own domain (`domain=`) */
    char *user;
    unsigned privs;
    uint32_t iterations;
    uint8_t *salt;
    size_t salt_len;
    uint8_t hash[32];
} emu_account;

typedef struct emu_conf {
    char *dcdir;          /* ROOT/<folder>, no trailing slash */
    char *name;           /* canonical server name (UNC), UTF-8 */
    char *domain;         /* NetBIOS domain, UTF-8 (may be "") */
    uint32_t tombstone_days;
    int64_t clock_offset;
    unsigned default_privs;
    emu_account *accounts;
    size_t naccounts;
    int trace;
    /* faults; has_* = the key was given */
    int has_read_after;
    uint64_t read_after;
    HRESULT read_hr;
    uint32_t short_read;
    uint64_t latency_us;
    uint64_t bandwidth;
    int has_offline_after;
    uint64_t offline_after;
    HRESULT truncate_hr;  /* 0 = no fault */
    HRESULT register_hr;  /* 0 = no fault */
} emu_conf;

/* Resolve a server name to its DC folder and read its dc.conf.
 * ERROR_INVALID_PARAMETER (NULL), RPC_S_INVALID_BINDING (bad name),
 * hrCouldNotConnect (no such DC, unreadable dc.conf), ERROR_NOT_ENOUGH_MEMORY. */
HRESULT emu_dc_open(LPCWSTR server, emu_conf **out);
HRESULT emu_conf_load(const char *dcdir, const char *folder, emu_conf **out);
void emu_conf_free(emu_conf *c);

/* `mode` file: 1 = online (also when absent), 0 = dsrm. */
int emu_dc_online(const emu_conf *c);
/* Write `mode` = dsrm atomically (fault_offline_after). */
int emu_dc_set_dsrm(const emu_conf *c);

/* Emulated clock: the real clock plus clock_offset. */
int64_t emu_now(const emu_conf *c);

/* restore.state: state=..., hr=..., then `body` (checkpoint_dir= ... map=
 * lines, each ending in '\n'), registered_at=, completed_at=. */
HRESULT emu_restore_state_write(const emu_conf *c, const char *state, HRESULT hr,
                                const char *body, int64_t registered_at, int64_t completed_at);
/* emu_os_lock_try on ROOT/<DC>/<name>: 0 with *fd held, 1 when held by
 * someone else (any thread or process), -1 on error.  The lock dies with the
 * file, so a crashed process never leaves it behind. */
int emu_lock_try(const emu_conf *c, const char *name, emu_fd *fd);
/* ROOT/<DC>/current_backup_log (decimal). */
HRESULT emu_current_log_write(const emu_conf *c, uint32_t value);

/* ---- strings and paths (emu_paths.c, emu_list.c) ---------------------- */

/* UTF-16LE (NUL-terminated) -> malloc'd UTF-8.  0, ERROR_INVALID_PARAMETER
 * (NULL, unpaired surrogate, too long) or ERROR_NOT_ENOUGH_MEMORY. */
HRESULT emu_utf16_to_utf8(LPCWSTR s, char **out);
/* 1 when s is valid UTF-8. */
int emu_utf8_valid(const char *s);
int emu_ascii_casecmp(const char *a, const char *b);
int emu_ascii_ncasecmp(const char *a, const char *b, size_t n);
/* malloc'd "a/b"; NULL when out of memory. */
char *emu_join(const char *a, const char *b);
/* Emulator root (NTDSB_EMU_ROOT, XDG_DATA_HOME, HOME); malloc'd or NULL. */
char *emu_root(void);
/* malloc'd UNC directory "\\<name>\C$\Windows\NTDS" of the DC. */
char *emu_unc_dir(const emu_conf *c);

/* Result of emu_unc_map. */
#define EMU_UNC_FILE    0   /* *file = malloc'd local file name in NTDS/ */
#define EMU_UNC_DIR     1   /* the NTDS directory itself */
#define EMU_UNC_OUTSIDE (-1) /* not this DC's NTDS directory, or unsafe */
#define EMU_UNC_NOMEM   (-2)
int emu_unc_map(const emu_conf *c, const char *unc, char **file);

/* UTF-16 multi-string list of §6: entries of (BFT code unit + path + NUL),
 * then one extra NUL. */
typedef struct emu_wlist {
    WCHAR *buf;
    size_t len;   /* code units used */
    size_t cap;
    int failed;   /* an append ran out of memory or met bad UTF-8 */
} emu_wlist;
void emu_wlist_add(emu_wlist *l, WCHAR bft, const char *path_utf8);
/* Terminate and move the buffer into a DsBackupFree-able allocation owned by
 * `h`.  0 or ERROR_NOT_ENOUGH_MEMORY / hrError; the list is always emptied. */
struct emu_handle;
HRESULT emu_wlist_finish(emu_wlist *l, const struct emu_handle *h, LPWSTR *out, LPDWORD pcb);

/* ---- handles (emu_handles.c) ------------------------------------------ */

#define EMU_KIND_BACKUP  0x1u
#define EMU_KIND_RESTORE 0x2u

typedef struct emu_handle {
    struct emu_handle *next; /* registry list, under the registry mutex */
    unsigned refs;           /* registry mutex */
    uint64_t serial;         /* 1, 2, ... (trace lines) */
    unsigned kind;
    emu_conf *conf;          /* snapshot taken at Prepare; immutable */
    ntdsb_mutex mu;          /* serializes every call on this handle */
    int ended;               /* under mu */
    emu_fd lock_fd;          /* backup.lock / restore.lock, EMU_NO_FD if none */

    /* backup */
    emu_fd fd;               /* open file, EMU_NO_FD if none */
    int64_t size, pos;
    uint64_t returned;       /* bytes returned by DsBackupRead, all files */
    int offline;             /* fault_offline_after fired */
    int logs_listed;         /* DsBackupGetBackupLogsW succeeded */
    uint32_t ckpt_gen, high_gen;
    uint64_t prng;           /* fault_short_read */
    int bw_started;
    double bw_start;         /* ntdsb_now() at the first read */

    /* restore */
    int restricted;          /* prepared without a token */
    int registered, completed;
    char *reg_body;          /* restore.state lines of the registration */
    int64_t registered_at;
} emu_handle;

/* New handle owning `conf` (taken over even on failure); registered and
 * returned with one reference held by the registry.  NULL on OOM. */
emu_handle *emu_handle_create(unsigned kind, emu_conf *conf);
/*
 * Start a call on `hbc`: checks it against the registry without touching
 * unknown pointers, checks the kind, applies fault_latency_us, locks the
 * handle.  0 with *out locked and referenced, or ERROR_INVALID_PARAMETER.
 */
HRESULT emu_handle_begin(HBC hbc, unsigned kinds, const char *fn, emu_handle **out);
/* Trace the call, unlock, drop the reference; returns hr. */
HRESULT emu_handle_finish(emu_handle *h, const char *fn, HRESULT hr);
/* Mark ended, close its files and lock, unregister (mu held). */
void emu_handle_end(emu_handle *h);
/* Drop a reference taken by create when a Prepare fails half way. */
void emu_handle_discard(emu_handle *h);

/* DsBackupFree-able allocations, remembered with the DC that made them (so
 * DsBackupFree can be traced). */
void *emu_alloc(size_t n, const emu_handle *h);
/* 1 if p was ours (now freed), 0 otherwise (left alone). */
int emu_alloc_release(void *p);
/* A new DsBackupFree-able buffer of n bytes that takes over p's record (the
 * DC it is traced to), p freed untraced: for an ANSI list made from a W one.
 * NULL (p untouched and still registered) when out of memory or p is not ours. */
void *emu_alloc_replace(void *p, size_t n);

/* ---- identity (emu_auth.c) -------------------------------------------- */

HRESULT emu_identity_set(LPCWSTR user, LPCWSTR domain, LPCWSTR password);
/* 0 when the caller's identity is valid on this DC and holds all `need`
 * privileges; ERROR_ACCESS_DENIED or ERROR_NOT_ENOUGH_MEMORY otherwise.
 * need_any: at least one of these bits too (0 = no extra requirement). */
HRESULT emu_auth_check(const emu_conf *c, unsigned need, unsigned need_any);
void emu_identity_clear(void);

/* ---- trace (emu_trace.c) ---------------------------------------------- */

/* One line `<pid> <fn> h=<serial|-> hr=0x%08X` in calls.log if trace=1.
 * serial 0 prints "-". */
void emu_trace(const emu_conf *c, const char *fn, uint64_t serial, HRESULT hr);
void emu_trace_file(const char *path, const char *fn, uint64_t serial, HRESULT hr);

/* ---- faults (emu_faults.c) -------------------------------------------- */

void emu_fault_latency(const emu_conf *c);
/* Before a read: 0 to go on with *max capped so no threshold is crossed, or
 * the fault's HRESULT. */
HRESULT emu_fault_before_read(emu_handle *h, uint32_t *max);
/* After a read of n bytes: sleep as fault_bandwidth demands. */
void emu_fault_pace(emu_handle *h, uint32_t n);
void emu_sleep_us(uint64_t us);

/* ---- logs (emu_logs.c) ------------------------------------------------ */

/* Close the current log and find the generations to back up. */
HRESULT emu_logs_roll(const emu_conf *c, uint32_t *ckpt_gen, uint32_t *closed_gen);
/* Delete closed logs below ckpt_gen. */
HRESULT emu_logs_truncate(const emu_conf *c, uint32_t ckpt_gen);
/* Parse "edbXXXXX.log" (5 uppercase hex digits); 1 with *gen, else 0. */
int emu_log_name_gen(const char *name, uint32_t *gen);
/* ESE header checksum wrapper (ntdsb_ese_header_checksum). */
uint32_t emu_header_checksum(const uint8_t *buf, size_t len);

/* ---- token (emu_token.c) ---------------------------------------------- */

void emu_token_build(const emu_conf *c, uint8_t out[EMU_TOKEN_SIZE]);
/* 0, hrMissingExpiryToken, hrUnknownExpiryTokenFormat or hrContentsExpired. */
HRESULT emu_token_check(const emu_conf *c, const void *pv, DWORD cb);

/* ---- little-endian helpers -------------------------------------------- */

static inline uint32_t emu_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void emu_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void emu_put_le64(uint8_t *p, uint64_t v)
{
    emu_put_le32(p, (uint32_t)v);
    emu_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t emu_le64(const uint8_t *p)
{
    return (uint64_t)emu_le32(p) | (uint64_t)emu_le32(p + 4) << 32;
}

#pragma GCC visibility pop

#endif /* NTDSB_EMU_INTERNAL_H */
