/*
 * emu_api_misc.c - the entry points outside the backup/restore handles:
 * DsIsNTDSOnlineW, DsSetCurrentBackupLogW, DsSetAuthIdentityW.
 */
#include "emu_internal.h"

NTDSB_EMU_EXPORT HRESULT DsIsNTDSOnlineW(LPCWSTR szServerName, BOOL *pfNTDSOnline)
{
    static const char fn[] = "DsIsNTDSOnlineW";
    emu_conf *c;
    HRESULT hr;

    if (!pfNTDSOnline)
        return ERROR_INVALID_PARAMETER;
    hr = emu_dc_open(szServerName, &c);
    if (hr)
        return hr;
    emu_fault_latency(c);
    /* Any valid identity may ask; no privilege needed. */
    hr = emu_auth_check(c, 0, 0);
    if (!hr)
        *pfNTDSOnline = emu_dc_online(c) ? TRUE : FALSE;
    emu_trace(c, fn, 0, hr);
    emu_conf_free(c);
    return hr;
}

NTDSB_EMU_EXPORT HRESULT DsSetCurrentBackupLogW(LPCWSTR szServerName, DWORD dwCurrentLog)
{
    static const char fn[] = "DsSetCurrentBackupLogW";
    emu_conf *c;
    HRESULT hr;

    hr = emu_dc_open(szServerName, &c);
    if (hr)
        return hr;
    emu_fault_latency(c);
    /* Used after a restore, or to disable incrementals: a backup or a
     * restore operator may do it. */
    hr = emu_auth_check(c, 0, EMU_PRIV_BACKUP | EMU_PRIV_RESTORE);
    if (!hr)
        hr = emu_current_log_write(c, dwCurrentLog);
    emu_trace(c, fn, 0, hr);
    emu_conf_free(c);
    return hr;
}

NTDSB_EMU_EXPORT HRESULT DsSetAuthIdentityW(LPCWSTR szUserName, LPCWSTR szDomainName,
                                            LPCWSTR szPassword)
{
    /* Stored, not verified: the next server call checks it (reference §4).
     * Not traced: it reaches no DC. */
    return emu_identity_set(szUserName, szDomainName, szPassword);
}
