/*
 * emu_api_backup.c - the backup entry points (reference §4, §7 backup
 * sequence): Prepare, database names, open/read/close, backup logs,
 * truncate, end.
 */
#include "emu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad_buffer_size(DWORD cb)
{
    return cb < NTDSB_READ_MIN || cb % NTDSB_READ_GRANULE != 0;
}

NTDSB_EMU_EXPORT HRESULT DsBackupPrepareW(LPCWSTR szBackupServer, ULONG grbit, ULONG btFlag,
                                          PVOID *ppvExpiryToken, LPDWORD pcbExpiryTokenSize,
                                          HBC *phbc)
{
    static const char fn[] = "DsBackupPrepareW";
    emu_conf *c;
    emu_handle *h;
    uint8_t *tok;
    uint64_t serial;
    HRESULT hr;
    emu_fd fd = EMU_NO_FD;
    int r;

    if (phbc)
        *phbc = NULL;
    if (ppvExpiryToken)
        *ppvExpiryToken = NULL;
    if (pcbExpiryTokenSize)
        *pcbExpiryTokenSize = 0;
    /* Full backups only: LOGS_ONLY is "not supported" today, INCREMENTAL is
     * documented as ERROR_INVALID_PARAMETER. */
    if (grbit != 0 || btFlag != BACKUP_TYPE_FULL || !phbc)
        return ERROR_INVALID_PARAMETER;
    if (!ppvExpiryToken || !pcbExpiryTokenSize)
        return hrInvalidParam;
    hr = emu_dc_open(szBackupServer, &c);
    if (hr)
        return hr;
    emu_fault_latency(c);
    /* In DSRM the DS and its backup RPC endpoint are not running. */
    if (!emu_dc_online(c))
        hr = hrCouldNotConnect;
    else
        hr = emu_auth_check(c, EMU_PRIV_BACKUP, 0);
    if (!hr) {
        r = emu_lock_try(c, "backup.lock", &fd);
        if (r)
            hr = r > 0 ? hrBackupInProgress : hrDiskIO;
    }
    if (hr) {
        emu_trace(c, fn, 0, hr);
        emu_conf_free(c);
        return hr;
    }
    h = emu_handle_create(EMU_KIND_BACKUP, c); /* owns c from here */
    if (!h) {
        emu_os_close(fd);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    h->lock_fd = fd;
    tok = emu_alloc(EMU_TOKEN_SIZE, h);
    if (!tok) {
        emu_handle_discard(h);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    emu_token_build(h->conf, tok);
    serial = h->serial;
    emu_trace(h->conf, fn, serial, 0);
    *ppvExpiryToken = tok;
    *pcbExpiryTokenSize = EMU_TOKEN_SIZE;
    *phbc = h;
    return 0;
}

NTDSB_EMU_EXPORT HRESULT DsBackupGetDatabaseNamesW(HBC hbc, LPWSTR *pszAttachmentInfo,
                                                   LPDWORD pcbSize)
{
    static const char fn[] = "DsBackupGetDatabaseNamesW";
    emu_wlist l = {0};
    emu_handle *h;
    char *dir, *dit;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);

    if (hr)
        return hr;
    if (!pszAttachmentInfo || *pszAttachmentInfo || !pcbSize)
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    if (h->offline)
        return emu_handle_finish(h, fn, hrCommunicationError);
    dir = emu_unc_dir(h->conf);
    dit = dir ? malloc(strlen(dir) + sizeof "\\ntds.dit") : NULL;
    if (!dit) {
        free(dir);
        return emu_handle_finish(h, fn, ERROR_NOT_ENOUGH_MEMORY);
    }
    strcpy(dit, dir);
    strcat(dit, "\\ntds.dit");
    emu_wlist_add(&l, BFT_NTDS_DATABASE, dit);
    free(dir);
    free(dit);
    hr = emu_wlist_finish(&l, h, pszAttachmentInfo, pcbSize);
    return emu_handle_finish(h, fn, hr);
}

/* Open NTDS/<file>, falling back to a case-insensitive match (Windows file
 * names are).  0 with *fd, or -1 with errno. */
static int open_ntds_file(const emu_conf *c, const char *file, emu_fd *fd)
{
    char *ntds = emu_join(c->dcdir, "NTDS"), *p;
    emu_dir *d;
    const char *entry;
    int r, err;

    *fd = EMU_NO_FD;
    if (!ntds) {
        errno = ENOMEM;
        return -1;
    }
    p = emu_join(ntds, file);
    if (!p) {
        free(ntds);
        errno = ENOMEM;
        return -1;
    }
    r = emu_os_open_read(p, fd);
    err = errno;
    free(p);
    if (r != 0 && err == ENOENT && (d = emu_os_opendir(ntds)) != NULL) {
        while ((entry = emu_os_readdir(d)) != NULL) {
            if (emu_ascii_casecmp(entry, file) == 0) {
                p = emu_join(ntds, entry);
                if (!p) {
                    err = ENOMEM;
                    break;
                }
                r = emu_os_open_read(p, fd);
                err = errno;
                free(p);
                break;
            }
        }
        emu_os_closedir(d);
    }
    free(ntds);
    errno = err;
    return r;
}

NTDSB_EMU_EXPORT HRESULT DsBackupOpenFileW(HBC hbc, LPCWSTR szAttachmentName,
                                           DWORD cbReadHintSize, LARGE_INTEGER *pliFileSize)
{
    static const char fn[] = "DsBackupOpenFileW";
    emu_handle *h;
    char *u8 = NULL, *file = NULL;
    emu_file_info st;
    emu_fd fd;
    int m, r;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);

    if (hr)
        return hr;
    if (!szAttachmentName || !pliFileSize || bad_buffer_size(cbReadHintSize))
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    if (h->offline)
        return emu_handle_finish(h, fn, hrCommunicationError);
    if (h->fd != EMU_NO_FD)
        return emu_handle_finish(h, fn, hrAlreadyOpen);
    hr = emu_utf16_to_utf8(szAttachmentName, &u8);
    if (hr)
        return emu_handle_finish(h, fn, hr);
    /* Names come without the BFT prefix (reference §4, INFERENCE from
     * MS-CSRA); a prefixed name is just a path that does not map. */
    m = emu_unc_map(h->conf, u8, &file);
    free(u8);
    if (m == EMU_UNC_NOMEM)
        return emu_handle_finish(h, fn, ERROR_NOT_ENOUGH_MEMORY);
    if (m != EMU_UNC_FILE)
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    r = open_ntds_file(h->conf, file, &fd);
    free(file);
    if (r != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            hr = hrFileNotFound;
        else if (errno == EACCES || errno == EPERM)
            hr = hrFileAccessDenied;
        else if (errno == ENOMEM)
            hr = ERROR_NOT_ENOUGH_MEMORY;
        else
            hr = hrDiskIO;
        return emu_handle_finish(h, fn, hr);
    }
    if (emu_os_fstat(fd, &st) != 0 || !st.regular) {
        emu_os_close(fd);
        return emu_handle_finish(h, fn, hrFileNotFound);
    }
    h->fd = fd;
    h->size = st.size;
    h->pos = 0;
    NTDSB_LI_QUAD(*pliFileSize) = st.size;
    return emu_handle_finish(h, fn, 0);
}

NTDSB_EMU_EXPORT HRESULT DsBackupRead(HBC hbc, PVOID pvBuffer, DWORD cbBuffer, PDWORD pcbRead)
{
    static const char fn[] = "DsBackupRead";
    emu_handle *h;
    uint32_t max = cbBuffer, got = 0;
    uint64_t want;
    HRESULT hr;

    if (pcbRead)
        *pcbRead = 0;
    hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);
    if (hr)
        return hr;
    if (!pvBuffer || !pcbRead || bad_buffer_size(cbBuffer))
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    if (h->fd == EMU_NO_FD)
        return emu_handle_finish(h, fn, hrInvalidHandle);
    hr = emu_fault_before_read(h, &max);
    if (hr)
        return emu_handle_finish(h, fn, hr);
    if (h->pos >= h->size)
        return emu_handle_finish(h, fn, ERROR_HANDLE_EOF);
    /* Never past the size DsBackupOpenFile reported, even if the file grew. */
    want = (uint64_t)(h->size - h->pos);
    if (want > max)
        want = max;
    while (got < want) {
        size_t r = 0;
        int err = 0;
        if (ntdsb_file_pread(h->fd, (char *)pvBuffer + got, (size_t)(want - got),
                             (uint64_t)h->pos + got, &r, &err) != 0)
            return emu_handle_finish(h, fn, hrDiskIO);
        if (r == 0)
            break; /* the file shrank: report what there is, then EOF */
        got += (uint32_t)r;
    }
    if (got == 0)
        return emu_handle_finish(h, fn, ERROR_HANDLE_EOF);
    h->pos += got;
    h->returned += got;
    emu_fault_pace(h, got);
    *pcbRead = got;
    return emu_handle_finish(h, fn, 0);
}

NTDSB_EMU_EXPORT HRESULT DsBackupClose(HBC hbc)
{
    static const char fn[] = "DsBackupClose";
    emu_handle *h;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);

    if (hr)
        return hr;
    if (h->fd == EMU_NO_FD)
        return emu_handle_finish(h, fn, hrInvalidHandle);
    emu_os_close(h->fd);
    h->fd = EMU_NO_FD;
    return emu_handle_finish(h, fn, 0);
}

NTDSB_EMU_EXPORT HRESULT DsBackupGetBackupLogsW(HBC hbc, LPWSTR *pszBackupLogFiles,
                                                LPDWORD pcbSize)
{
    static const char fn[] = "DsBackupGetBackupLogsW";
    emu_wlist l = {0};
    emu_handle *h;
    uint32_t ckpt, closed, g;
    char *dir, *path;
    size_t ld;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);

    if (hr)
        return hr;
    if (!pszBackupLogFiles || *pszBackupLogFiles || !pcbSize)
        return emu_handle_finish(h, fn, ERROR_INVALID_PARAMETER);
    if (h->offline)
        return emu_handle_finish(h, fn, hrCommunicationError);
    dir = emu_unc_dir(h->conf);
    path = dir ? malloc(strlen(dir) + 16) : NULL;
    if (!path) {
        free(dir);
        return emu_handle_finish(h, fn, ERROR_NOT_ENOUGH_MEMORY);
    }
    /* Close the current log first so the backup's log set ends on a closed
     * generation that no later write can change. */
    hr = emu_logs_roll(h->conf, &ckpt, &closed);
    if (hr) {
        free(dir);
        free(path);
        return emu_handle_finish(h, fn, hr);
    }
    ld = strlen(dir);
    memcpy(path, dir, ld);
    for (g = ckpt; g <= closed; g++) {
        snprintf(path + ld, 16, "\\edb%05X.log", (unsigned)g);
        emu_wlist_add(&l, BFT_LOG, path);
    }
    free(dir);
    free(path);
    hr = emu_wlist_finish(&l, h, pszBackupLogFiles, pcbSize);
    if (!hr) {
        h->logs_listed = 1;
        h->ckpt_gen = ckpt;
        h->high_gen = closed;
    }
    return emu_handle_finish(h, fn, hr);
}

NTDSB_EMU_EXPORT HRESULT DsBackupTruncateLogs(HBC hbc)
{
    static const char fn[] = "DsBackupTruncateLogs";
    emu_handle *h;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);

    if (hr)
        return hr;
    /* Truncation is only safe once the logs were listed (and so copied) and
     * no file transfer is in progress. */
    if (!h->logs_listed || h->fd != EMU_NO_FD)
        return emu_handle_finish(h, fn, hrInvalidBackupSequence);
    if (h->offline)
        return emu_handle_finish(h, fn, hrCommunicationError);
    if (h->conf->truncate_hr)
        return emu_handle_finish(h, fn, h->conf->truncate_hr);
    hr = emu_logs_truncate(h->conf, h->ckpt_gen);
    return emu_handle_finish(h, fn, hr);
}

NTDSB_EMU_EXPORT HRESULT DsBackupEnd(HBC hbc)
{
    static const char fn[] = "DsBackupEnd";
    emu_handle *h;
    HRESULT hr = emu_handle_begin(hbc, EMU_KIND_BACKUP, fn, &h);

    if (hr)
        return hr;
    emu_handle_end(h);
    return emu_handle_finish(h, fn, 0);
}

NTDSB_EMU_EXPORT void DsBackupFree(PVOID pvBuffer)
{
    if (pvBuffer)
        emu_alloc_release(pvBuffer);
}
