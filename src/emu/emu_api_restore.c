/*
 * emu_api_restore.c - the restore entry points (reference §4, §7 restore
 * sequence): Prepare (expiry token), database locations, Register,
 * RegisterComplete, End.  The emulator does not copy files: the caller does
 * (§7 step 6); it records the registration in restore.state, which the
 * Python side's `dc start` reads.
 */
#include "emu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

NTDSB_EMU_EXPORT HRESULT DsRestorePrepareW(LPCWSTR szServerName, ULONG rtFlag, PVOID pvExpiryToken,
                                           DWORD cbExpiryTokenSize, HBC *phbc)
{
    static const char fn[] = "DsRestorePrepareW";
    emu_conf *c;
    emu_handle *h;
    uint64_t serial;
    int restricted = 0;
    HRESULT hr;

    if (phbc)
        *phbc = NULL;
    /* 0 or CATCHUP; AUTHORATATIVE and ONLINE are documented unsupported. */
    if ((rtFlag != 0 && rtFlag != RESTORE_TYPE_CATCHUP) || !phbc)
        return ERROR_INVALID_PARAMETER;
    hr = emu_dc_open(szServerName, &c);
    if (hr)
        return hr;
    emu_fault_latency(c);
    /* Restore is offline only (DSRM). */
    if (emu_dc_online(c))
        hr = hrError;
    else
        hr = emu_auth_check(c, EMU_PRIV_RESTORE | EMU_PRIV_ADMIN, 0);
    if (!hr) {
        if (!pvExpiryToken && cbExpiryTokenSize == 0)
            restricted = 1; /* good only for GetDatabaseLocations and End */
        else
            hr = emu_token_check(c, pvExpiryToken, cbExpiryTokenSize);
    }
    if (hr) {
        emu_trace(c, fn, 0, hr);
        emu_conf_free(c);
        return hr;
    }
    h = emu_handle_create(EMU_KIND_RESTORE, c);
    if (!h)
        return ERROR_NOT_ENOUGH_MEMORY;
    h->restricted = restricted;
    serial = h->serial;
    emu_trace(h->conf, fn, serial, 0);
    *phbc = h;
    return 0;
}

NTDSB_EMU_EXPORT HRESULT DsRestoreGetDatabaseLocationsW(HBC hbc, LPWSTR *pszDatabaseLocationList,
                                                        LPDWORD pcbSize)
{
    static const char fn[] = "DsRestoreGetDatabaseLocationsW";
    emu_wlist l = {0};
    emu_handle *h;
    char *dir, *dit;
    /* The 2000 SDK allows a backup handle here too. */
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP | EMU_KIND_RESTORE, fn, &h);

    if (hr)
        return hr;
    if (!pszDatabaseLocationList || *pszDatabaseLocationList || !pcbSize)
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    dir = emu_unc_dir(h->conf);
    dit = dir ? malloc(strlen(dir) + sizeof "\\ntds.dit") : NULL;
    if (!dit) {
        free(dir);
        return emu_handle_finish(h, fn, ERROR_NOT_ENOUGH_MEMORY);
    }
    strcpy(dit, dir);
    strcat(dit, "\\ntds.dit");
    emu_wlist_add(&l, BFT_CHECKPOINT_DIR, dir);
    emu_wlist_add(&l, BFT_LOG_DIR, dir);
    emu_wlist_add(&l, BFT_NTDS_DATABASE, dit);
    free(dir);
    free(dit);
    hr = emu_wlist_finish(&l, h, pszDatabaseLocationList, pcbSize);
    return emu_handle_finish(h, fn, hr);
}

/* Growable text buffer for the restore.state body. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} textbuf;

static void tb_add(textbuf *t, const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) + 1 : 0) + 2;
    char *ns;

    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        ns = realloc(t->s, cap);
        if (!ns) {
            t->failed = 1;
            return;
        }
        t->s = ns;
        t->cap = cap;
    }
    t->len += (size_t)sprintf(t->s + t->len, c ? "%s%s|%s\n" : "%s%s\n", a, b, c ? c : "");
}

/* A registration path must be this DC's NTDS directory in UNC form: that is
 * where BFT_CHECKPOINT_DIR / BFT_LOG_DIR pointed. */
static HRESULT ntds_dir_arg(const emu_conf *c, LPCWSTR w, char **out)
{
    char *file = NULL;
    HRESULT hr = emu_utf16_to_utf8(w, out);
    int m;

    if (hr)
        return hr;
    m = emu_unc_map(c, *out, &file);
    free(file);
    if (m == EMU_UNC_DIR)
        return 0;
    free(*out);
    *out = NULL;
    return m == EMU_UNC_NOMEM ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER;
}

/* restore.state is line-based with '|' between map halves: refuse strings
 * that would break its syntax (no Windows path contains them anyway). */
static HRESULT map_arg(LPCWSTR w, char **out)
{
    HRESULT hr = emu_utf16_to_utf8(w, out);

    if (hr)
        return hr;
    if (!**out || strpbrk(*out, "|\r\n")) {
        free(*out);
        *out = NULL;
        return ERROR_INVALID_PARAMETER;
    }
    return 0;
}

static HRESULT build_body(const emu_conf *c, LPCWSTR ckpt, LPCWSTR log, EDB_RSTMAPW *map,
                          LONG n, LPCWSTR bklog, ULONG lo, ULONG hi, char **body)
{
    textbuf t = {0};
    char *a = NULL, *b = NULL, *d = NULL, num[16];
    HRESULT hr;
    LONG i;

    *body = NULL;
    hr = ntds_dir_arg(c, ckpt, &a);
    if (!hr)
        hr = ntds_dir_arg(c, log, &b);
    if (!hr)
        hr = ntds_dir_arg(c, bklog, &d);
    if (!hr) {
        tb_add(&t, "checkpoint_dir=", a, NULL);
        tb_add(&t, "log_dir=", b, NULL);
        tb_add(&t, "backup_log_dir=", d, NULL);
        snprintf(num, sizeof num, "%u", (unsigned)lo);
        tb_add(&t, "gen_low=", num, NULL);
        snprintf(num, sizeof num, "%u", (unsigned)hi);
        tb_add(&t, "gen_high=", num, NULL);
    }
    for (i = 0; !hr && i < n; i++) {
        char *o = NULL, *nw = NULL;
        if (!map[i].wszDatabaseName || !map[i].wszNewDatabaseName) {
            hr = ERROR_INVALID_PARAMETER;
            break;
        }
        hr = map_arg(map[i].wszDatabaseName, &o);
        if (!hr)
            hr = map_arg(map[i].wszNewDatabaseName, &nw);
        if (!hr)
            tb_add(&t, "map=", o, nw);
        free(o);
        free(nw);
    }
    free(a);
    free(b);
    free(d);
    if (!hr && t.failed)
        hr = ERROR_NOT_ENOUGH_MEMORY;
    if (hr) {
        free(t.s);
        return hr;
    }
    *body = t.s;
    return 0;
}

NTDSB_EMU_EXPORT HRESULT DsRestoreRegisterW(HBC hbc, LPCWSTR szCheckPointFilePath,
                                            LPCWSTR szLogPath, EDB_RSTMAPW rgrstmap[],
                                            LONG crstmap, LPCWSTR szBackupLogPath, ULONG genLow,
                                            ULONG genHigh)
{
    static const char fn[] = "DsRestoreRegisterW";
    emu_handle *h;
    char *body;
    emu_fd fd;
    int r;
    int64_t now;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_RESTORE, fn, &h);

    if (hr)
        return hr;
    if (!szCheckPointFilePath || !szLogPath || !szBackupLogPath || crstmap < 0 ||
        (crstmap > 0 && !rgrstmap) || genLow > genHigh || genHigh > EMU_MAX_GEN)
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    hr = build_body(h->conf, szCheckPointFilePath, szLogPath, rgrstmap, crstmap, szBackupLogPath,
                    genLow, genHigh, &body);
    if (hr)
        return emu_handle_finish(h, fn, hr);
    if (h->restricted)
        hr = hrMissingExpiryToken;
    else if (h->registered)
        hr = hrRestoreInProgress;
    else if (h->conf->register_hr)
        hr = h->conf->register_hr;
    if (hr) {
        free(body);
        return emu_handle_finish(h, fn, hr);
    }
    r = emu_lock_try(h->conf, "restore.lock", &fd);
    if (r) {
        free(body);
        return emu_handle_finish(h, fn, r > 0 ? hrRestoreInProgress : hrDiskIO);
    }
    now = emu_now(h->conf);
    hr = emu_restore_state_write(h->conf, "registered", 0, body, now, 0);
    if (hr) {
        emu_os_close(fd);
        free(body);
        return emu_handle_finish(h, fn, hr);
    }
    h->lock_fd = fd;
    h->registered = 1;
    h->reg_body = body;
    h->registered_at = now;
    return emu_handle_finish(h, fn, 0);
}

NTDSB_EMU_EXPORT HRESULT DsRestoreRegisterComplete(HBC hbc, HRESULT hrRestoreState)
{
    static const char fn[] = "DsRestoreRegisterComplete";
    emu_handle *h;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_RESTORE, fn, &h);

    if (hr)
        return hr;
    /* Completing needs a registration of this handle, once. */
    if (!h->registered || h->completed)
        return emu_handle_finish(h, fn, hrInvalidBackupSequence);
    hr = emu_restore_state_write(h->conf, "complete", hrRestoreState, h->reg_body,
                                 h->registered_at, emu_now(h->conf));
    if (!hr)
        h->completed = 1;
    return emu_handle_finish(h, fn, hr);
}

NTDSB_EMU_EXPORT HRESULT DsRestoreEnd(HBC hbc)
{
    static const char fn[] = "DsRestoreEnd";
    emu_handle *h;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_RESTORE, fn, &h);

    if (hr)
        return hr;
    /* A registration never completed stays "registered" in restore.state:
     * the DC then refuses to start, as a real one would. */
    emu_handle_end(h);
    return emu_handle_finish(h, fn, 0);
}
