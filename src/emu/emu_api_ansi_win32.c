/*
 * emu_api_ansi_win32.c - the ...A entry points of ntdsbcli.dll (Windows build
 * of the emulator only), so the emulated DLL exports what the real one does.
 *
 * Each converts its strings from the process's ANSI code page (CP_ACP) to
 * UTF-16, calls the W entry point and, for the lists, converts the result
 * back: one CHAR for the BFT code unit (BFT is a CHAR in the ANSI API, so
 * 0x82 and 0x83 come out as negative CHARs: compare them as unsigned), the
 * path in the ANSI code page (characters it lacks become its default
 * character, as WideCharToMultiByte does), a NUL, and one more NUL at the end;
 * the byte size counts the whole buffer, as for the W lists.  Argument errors
 * are the W function's: a NULL string stays NULL.  The engine itself uses the
 * W forms only (ntdsbcli_abi.h).
 */
#include "emu_internal.h"

#include <stdlib.h>
#include <string.h>

/* ANSI -> malloc'd UTF-16 (NULL stays NULL).  0, ERROR_INVALID_PARAMETER or
 * ERROR_NOT_ENOUGH_MEMORY. */
static HRESULT widen(LPCSTR s, WCHAR **out)
{
    int n;

    *out = NULL;
    if (!s)
        return 0;
    n = MultiByteToWideChar(CP_ACP, 0, s, -1, NULL, 0);
    if (n <= 0 || (unsigned)n > EMU_MAX_WCHARS + 1u)
        return ERROR_INVALID_PARAMETER;
    *out = malloc((size_t)n * sizeof(WCHAR));
    if (!*out)
        return ERROR_NOT_ENOUGH_MEMORY;
    if (MultiByteToWideChar(CP_ACP, 0, s, -1, *out, n) != n) {
        free(*out);
        *out = NULL;
        return ERROR_INVALID_PARAMETER;
    }
    return 0;
}

/* Free a widened string, wiping it first (it may be a password). */
static void drop(WCHAR *w)
{
    if (w) {
        emu_os_wipe(w, wcslen(w) * sizeof *w);
        free(w);
    }
}

/*
 * Replace the W list *pw (from a W entry point, DsBackupFree-able) by its
 * ANSI form in *out / *pcb.  The new buffer takes over the W list's record,
 * so DsBackupFree of the A list is traced like that of the W list would be.
 */
static HRESULT narrow_list(LPWSTR w, LPSTR *out, LPDWORD pcb)
{
    size_t total = 1, i = 0, o = 0;
    char *tmp, *res;

    while (w[i]) { /* entries: BFT, path, NUL */
        size_t len = wcslen(w + i + 1);
        int n = WideCharToMultiByte(CP_ACP, 0, w + i + 1, (int)len + 1, NULL, 0, NULL, NULL);
        if (n <= 0)
            goto fail;
        total += 1 + (size_t)n;
        i += len + 2;
    }
    tmp = malloc(total);
    if (!tmp)
        goto fail;
    for (i = 0; w[i];) {
        size_t len = wcslen(w + i + 1);
        tmp[o++] = (char)(w[i] & 0xFF);
        o += (size_t)WideCharToMultiByte(CP_ACP, 0, w + i + 1, (int)len + 1, tmp + o,
                                         (int)(total - o), NULL, NULL);
        i += len + 2;
    }
    tmp[o] = '\0';
    res = emu_alloc_replace(w, total);
    if (!res) {
        free(tmp);
        goto fail;
    }
    memcpy(res, tmp, total);
    free(tmp);
    *out = res;
    *pcb = (DWORD)total;
    return 0;
fail:
    DsBackupFree(w);
    return ERROR_NOT_ENOUGH_MEMORY;
}

/* The W list call behind an A one: *out must be NULL on entry, as there. */
typedef HRESULT (*list_fn)(HBC, LPWSTR *, LPDWORD);

static HRESULT list_a(list_fn fn, HBC hbc, LPSTR *out, LPDWORD pcb)
{
    LPWSTR w = NULL;
    /* A non-NULL *out goes through as it is, so the W function refuses it. */
    LPWSTR *pw = !out ? NULL : *out ? (LPWSTR *)out : &w;
    HRESULT hr = fn(hbc, pw, pcb);

    if (hr || pw != &w)
        return hr;
    return narrow_list(w, out, pcb);
}

HRESULT DsIsNTDSOnlineA(LPCSTR szServerName, BOOL *pfNTDSOnline)
{
    WCHAR *s;
    HRESULT hr = widen(szServerName, &s);

    if (!hr)
        hr = DsIsNTDSOnlineW(s, pfNTDSOnline);
    drop(s);
    return hr;
}

HRESULT DsBackupPrepareA(LPCSTR szBackupServer, ULONG grbit, ULONG btFlag, PVOID *ppvExpiryToken,
                         LPDWORD pcbExpiryTokenSize, HBC *phbc)
{
    WCHAR *s;
    HRESULT hr = widen(szBackupServer, &s);

    if (!hr)
        hr = DsBackupPrepareW(s, grbit, btFlag, ppvExpiryToken, pcbExpiryTokenSize, phbc);
    drop(s);
    return hr;
}

HRESULT DsBackupGetDatabaseNamesA(HBC hbc, LPSTR *pszAttachmentInfo, LPDWORD pcbSize)
{
    return list_a(DsBackupGetDatabaseNamesW, hbc, pszAttachmentInfo, pcbSize);
}

HRESULT DsBackupOpenFileA(HBC hbc, LPCSTR szAttachmentName, DWORD cbReadHintSize,
                          LARGE_INTEGER *pliFileSize)
{
    WCHAR *s;
    HRESULT hr = widen(szAttachmentName, &s);

    if (!hr)
        hr = DsBackupOpenFileW(hbc, s, cbReadHintSize, pliFileSize);
    drop(s);
    return hr;
}

HRESULT DsBackupGetBackupLogsA(HBC hbc, LPSTR *pszBackupLogFiles, LPDWORD pcbSize)
{
    return list_a(DsBackupGetBackupLogsW, hbc, pszBackupLogFiles, pcbSize);
}

HRESULT DsRestoreGetDatabaseLocationsA(HBC hbc, LPSTR *pszDatabaseLocationList,
                                       LPDWORD pcbSize)
{
    return list_a(DsRestoreGetDatabaseLocationsW, hbc, pszDatabaseLocationList, pcbSize);
}

HRESULT DsRestorePrepareA(LPCSTR szServerName, ULONG rtFlag, PVOID pvExpiryToken,
                          DWORD cbExpiryTokenSize, HBC *phbc)
{
    WCHAR *s;
    HRESULT hr = widen(szServerName, &s);

    if (!hr)
        hr = DsRestorePrepareW(s, rtFlag, pvExpiryToken, cbExpiryTokenSize, phbc);
    drop(s);
    return hr;
}

HRESULT DsRestoreRegisterA(HBC hbc, LPCSTR szCheckPointFilePath, LPCSTR szLogPath,
                           EDB_RSTMAPA rgrstmap[], LONG crstmap, LPCSTR szBackupLogPath,
                           ULONG genLow, ULONG genHigh)
{
    WCHAR *ckpt = NULL, *log = NULL, *bklog = NULL;
    EDB_RSTMAPW *map = NULL;
    LONG i;
    HRESULT hr = widen(szCheckPointFilePath, &ckpt);

    if (!hr)
        hr = widen(szLogPath, &log);
    if (!hr)
        hr = widen(szBackupLogPath, &bklog);
    /* A negative count or a NULL map goes through: the W function refuses it. */
    if (!hr && crstmap > 0 && rgrstmap) {
        map = calloc((size_t)crstmap, sizeof *map);
        if (!map)
            hr = ERROR_NOT_ENOUGH_MEMORY;
        for (i = 0; !hr && i < crstmap; i++) {
            hr = widen(rgrstmap[i].szDatabaseName, &map[i].wszDatabaseName);
            if (!hr)
                hr = widen(rgrstmap[i].szNewDatabaseName, &map[i].wszNewDatabaseName);
        }
    }
    if (!hr)
        hr = DsRestoreRegisterW(hbc, ckpt, log, map ? map : (EDB_RSTMAPW *)rgrstmap, crstmap,
                                bklog, genLow, genHigh);
    for (i = 0; map && i < crstmap; i++) { /* calloc'd: unconverted entries are NULL */
        drop(map[i].wszDatabaseName);
        drop(map[i].wszNewDatabaseName);
    }
    free(map);
    drop(ckpt);
    drop(log);
    drop(bklog);
    return hr;
}

HRESULT DsSetCurrentBackupLogA(LPCSTR szServerName, DWORD dwCurrentLog)
{
    WCHAR *s;
    HRESULT hr = widen(szServerName, &s);

    if (!hr)
        hr = DsSetCurrentBackupLogW(s, dwCurrentLog);
    drop(s);
    return hr;
}

HRESULT DsSetAuthIdentityA(LPCSTR szUserName, LPCSTR szDomainName, LPCSTR szPassword)
{
    WCHAR *u = NULL, *d = NULL, *p = NULL;
    HRESULT hr = widen(szUserName, &u);

    if (!hr)
        hr = widen(szDomainName, &d);
    if (!hr)
        hr = widen(szPassword, &p);
    if (!hr)
        hr = DsSetAuthIdentityW(u, d, p);
    drop(u);
    drop(d);
    drop(p); /* wiped: the W call keeps its own copy */
    return hr;
}
