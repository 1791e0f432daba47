/*
 * emu_abi_check.c - compile-time proof that every export has exactly the
 * signature of its ntdsb_fn_* typedef (ntdsbcli_abi.h), the same types the
 * engine's provider struct calls through.  A mismatch is a build error here
 * rather than stack corruption at run time.  No code is generated.
 */
#include "emu_internal.h"

HRESULT DsIsNTDSOnlineW(LPCWSTR, BOOL *);
HRESULT DsBackupPrepareW(LPCWSTR, ULONG, ULONG, PVOID *, LPDWORD, HBC *);
HRESULT DsBackupGetDatabaseNamesW(HBC, LPWSTR *, LPDWORD);
HRESULT DsBackupOpenFileW(HBC, LPCWSTR, DWORD, LARGE_INTEGER *);
HRESULT DsBackupRead(HBC, PVOID, DWORD, PDWORD);
HRESULT DsBackupClose(HBC);
HRESULT DsBackupGetBackupLogsW(HBC, LPWSTR *, LPDWORD);
HRESULT DsBackupTruncateLogs(HBC);
HRESULT DsBackupEnd(HBC);
void DsBackupFree(PVOID);
HRESULT DsRestoreGetDatabaseLocationsW(HBC, LPWSTR *, LPDWORD);
HRESULT DsRestorePrepareW(LPCWSTR, ULONG, PVOID, DWORD, HBC *);
HRESULT DsRestoreRegisterW(HBC, LPCWSTR, LPCWSTR, EDB_RSTMAPW[], LONG, LPCWSTR, ULONG, ULONG);
HRESULT DsRestoreRegisterComplete(HBC, HRESULT);
HRESULT DsRestoreEnd(HBC);
HRESULT DsSetCurrentBackupLogW(LPCWSTR, DWORD);
HRESULT DsSetAuthIdentityW(LPCWSTR, LPCWSTR, LPCWSTR);

#define EMU_SAME_TYPE(fn, type) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " != " #type)

EMU_SAME_TYPE(DsIsNTDSOnlineW, ntdsb_fn_IsNTDSOnlineW);
EMU_SAME_TYPE(DsBackupPrepareW, ntdsb_fn_BackupPrepareW);
EMU_SAME_TYPE(DsBackupGetDatabaseNamesW, ntdsb_fn_BackupGetDatabaseNamesW);
EMU_SAME_TYPE(DsBackupOpenFileW, ntdsb_fn_BackupOpenFileW);
EMU_SAME_TYPE(DsBackupRead, ntdsb_fn_BackupRead);
EMU_SAME_TYPE(DsBackupClose, ntdsb_fn_BackupClose);
EMU_SAME_TYPE(DsBackupGetBackupLogsW, ntdsb_fn_BackupGetBackupLogsW);
EMU_SAME_TYPE(DsBackupTruncateLogs, ntdsb_fn_BackupTruncateLogs);
EMU_SAME_TYPE(DsBackupEnd, ntdsb_fn_BackupEnd);
EMU_SAME_TYPE(DsBackupFree, ntdsb_fn_BackupFree);
EMU_SAME_TYPE(DsRestoreGetDatabaseLocationsW, ntdsb_fn_RestoreGetDatabaseLocationsW);
EMU_SAME_TYPE(DsRestorePrepareW, ntdsb_fn_RestorePrepareW);
EMU_SAME_TYPE(DsRestoreRegisterW, ntdsb_fn_RestoreRegisterW);
EMU_SAME_TYPE(DsRestoreRegisterComplete, ntdsb_fn_RestoreRegisterComplete);
EMU_SAME_TYPE(DsRestoreEnd, ntdsb_fn_RestoreEnd);
EMU_SAME_TYPE(DsSetCurrentBackupLogW, ntdsb_fn_SetCurrentBackupLogW);
EMU_SAME_TYPE(DsSetAuthIdentityW, ntdsb_fn_SetAuthIdentityW);
